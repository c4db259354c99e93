package proxy

import (
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/gatehouse-proxy/gatehouse/proxy/plumb"
)

// observed is what the observer was called with for one request.
type observed struct {
	rec    plumb.Record
	status int
	d      time.Duration
}

// The observer gets one call per request, with a record that says who
// answered and, for forwarded requests, Gatehouse's time apart from the
// upstream's: what the metrics are made of.
func TestObserve(t *testing.T) {
	down := newUpstream(t, nil)
	downURL := down.url(t)
	down.Close()
	for _, tc := range []struct {
		name     string
		target   string
		header   http.Header
		upstream *url.URL // nil: the harness's
		status   int
		check    func(t *testing.T, o observed)
	}{
		{"forwarded and answered", "/content/a.json", http.Header{"Authorization": {"Bearer good"}}, nil, 200,
			func(t *testing.T, o observed) {
				if !o.rec.Authenticated || !o.rec.UpstreamAnswered || o.rec.IdentityAnswered {
					t.Errorf("record %+v: want authenticated and answered by the upstream", o.rec)
				}
				if o.rec.Own <= 0 || o.rec.Upstream <= 0 || o.rec.Own+o.rec.Upstream > o.d {
					t.Errorf("own %v + upstream %v, whole request %v: want both set, within the whole", o.rec.Own, o.rec.Upstream, o.d)
				}
			}},
		{"upstream down", "/content/a.json", http.Header{"Authorization": {"Bearer good"}}, downURL, 502,
			func(t *testing.T, o observed) {
				if !o.rec.Authenticated || o.rec.UpstreamAnswered || o.rec.Reason() != ReasonUpstreamUnavailable {
					t.Errorf("record %+v, reason %q: want forwarded, unanswered, %s", o.rec, o.rec.Reason(), ReasonUpstreamUnavailable)
				}
			}},
		{"forward-auth", "/gatehouse/auth", http.Header{"Authorization": {"Bearer good"}}, nil, 200,
			func(t *testing.T, o observed) {
				if !o.rec.IdentityAnswered || o.rec.Authenticated || o.rec.Own != 0 {
					t.Errorf("record %+v: want forward-auth's identity answer, nothing forwarded", o.rec)
				}
			}},
		{"refused", "/content/a.json", nil, nil, 401,
			func(t *testing.T, o observed) {
				if o.rec.Authenticated || o.rec.IdentityAnswered || o.rec.Reason() != "NO_CREDENTIALS" {
					t.Errorf("record %+v, reason %q: want a refusal with NO_CREDENTIALS", o.rec, o.rec.Reason())
				}
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := make(chan observed, 2)
			h := newHarness(t, nil, func(c *Config) {
				if tc.upstream != nil {
					c.Upstream = tc.upstream
				}
				c.Observe = func(_ *http.Request, rec *plumb.Record, status int, d time.Duration) {
					got <- observed{*rec, status, d}
				}
			})
			req := h.newRequest(t, http.MethodGet, tc.target, nil)
			for k, v := range tc.header {
				req.Header[k] = v
			}
			h.do(t, req)
			select {
			case o := <-got:
				if o.status != tc.status {
					t.Errorf("observed status %d, want %d", o.status, tc.status)
				}
				tc.check(t, o)
			case <-time.After(10 * time.Second):
				t.Fatal("the observer was not called")
			}
			if len(got) != 0 {
				t.Error("the observer was called more than once")
			}
		})
	}
}
