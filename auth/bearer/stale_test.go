package bearer_test

import (
	"crypto/sha256"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/gatehouse-proxy/gatehouse/auth"
	"github.com/gatehouse-proxy/gatehouse/auth/bearer"
	"github.com/gatehouse-proxy/gatehouse/auth/ims"
	"github.com/gatehouse-proxy/gatehouse/auth/ims/imstest"
)

const (
	staleRecheck = 2 * time.Minute
	staleGrace   = 10 * time.Minute
	// staleRetry is a little more than the least time between two
	// rechecks of a token kept through an outage.
	staleRetry = 6 * time.Second
)

// gate stands between an Authenticator's IMS client and idp. Open, it
// passes requests through; shut, it drops every connection unanswered, as
// an IMS that cannot be reached. It counts the requests that reach it,
// whether or not idp answers them.
type gate struct {
	shut  atomic.Bool
	calls atomic.Int64
	url   string
}

func newGate(t *testing.T) *gate {
	t.Helper()
	g := &gate{}
	target, err := url.Parse(idp.URL)
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(target)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g.calls.Add(1)
		if g.shut.Load() {
			if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
				_ = conn.Close()
			}
			return
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	g.url = srv.URL
	return g
}

// outages are the ways of not answering that StaleIfError covers.
var outages = []struct {
	name string
	set  func(g *gate, on bool)
}{
	{"unreachable", func(g *gate, on bool) { g.shut.Store(on) }},
	{"503", func(_ *gate, on bool) { idp.SetDown(on) }},
	{"429", func(_ *gate, on bool) { idp.SetRateLimited(on) }},
}

// staleFixture is an Authenticator whose remote validation goes through a
// gate, with the given StaleIfError, logging to the returned observer.
func staleFixture(t *testing.T, mode bearer.Mode, grace time.Duration) (*fixture, *gate, *observer.ObservedLogs) {
	t.Helper()
	g := newGate(t)
	client, err := ims.NewClient(g.url, nil)
	if err != nil {
		t.Fatal(err)
	}
	core, logs := observer.New(zap.InfoLevel)
	f := newFixture(t, mode, func(c *bearer.Config) {
		c.Client = client
		c.RecheckInterval = staleRecheck
		c.StaleIfError = grace
		c.Logger = zap.New(core)
	})
	return f, g, logs
}

func mustAuthenticate(t *testing.T, f *fixture, token, when string) {
	t.Helper()
	res, err := f.a.Authenticate(t.Context(), token)
	if err != nil {
		t.Fatalf("%s: %v", when, err)
	}
	if res.Claims.UserID != testUser {
		t.Fatalf("%s: user %q, want %q", when, res.Claims.UserID, testUser)
	}
}

// TestStaleIfErrorKeepsConfirmedToken: a token IMS confirmed keeps working
// through an outage for StaleIfError after its recheck was due, checked
// locally each time, rechecked with IMS at most once per retry interval,
// logged once per outage, counted per request.
func TestStaleIfErrorKeepsConfirmedToken(t *testing.T) {
	for _, o := range outages {
		t.Run(o.name, func(t *testing.T) {
			f, g, logs := staleFixture(t, bearer.ModeBoth, staleGrace)
			token, _ := mint(t, idp, nil)
			mustAuthenticate(t, f, token, "confirmation")
			o.set(g, true)
			t.Cleanup(func() { o.set(g, false) })

			f.clock.Advance(staleRecheck + time.Minute)
			calls, verifies := g.calls.Load(), f.verifies.Load()
			mustAuthenticate(t, f, token, "first request after the recheck was due, IMS away")
			if n := g.calls.Load() - calls; n != 1 {
				t.Errorf("recheck attempts = %d, want 1", n)
			}
			if n := f.a.StaleAccepted(); n != 1 {
				t.Errorf("StaleAccepted = %d, want 1", n)
			}

			f.clock.Advance(time.Second)
			calls, verifies = g.calls.Load(), f.verifies.Load()
			for i := range 3 {
				mustAuthenticate(t, f, token, "burst within the retry interval")
				if n := f.verifies.Load() - verifies; n != int64(i+1) {
					t.Errorf("local verifications after %d stale acceptances = %d: the signature must be checked every time", i+1, n)
				}
			}
			if n := g.calls.Load() - calls; n != 0 {
				t.Errorf("recheck attempts within the retry interval = %d, want 0", n)
			}
			if n := f.a.StaleAccepted(); n != 4 {
				t.Errorf("StaleAccepted = %d, want 4 (one per request)", n)
			}

			f.clock.Advance(staleRetry)
			calls = g.calls.Load()
			mustAuthenticate(t, f, token, "after the retry interval")
			if n := g.calls.Load() - calls; n != 1 {
				t.Errorf("recheck attempts after the retry interval = %d, want 1", n)
			}

			entries := logs.FilterFieldKey("past_due").All()
			if len(entries) != 1 {
				t.Fatalf("stale log entries = %d, want 1 per token per outage: %v", len(entries), logs.All())
			}
			fields := entries[0].ContextMap()
			if fields["token"] != bearer.Hash(sha256.Sum256([]byte(token))).Short() || fields["error"] == "" ||
				fields["past_due"].(time.Duration) < time.Minute {
				t.Errorf("log fields %v: want the token's short hash, the IMS error and how long past due", fields)
			}
			for k, v := range fields {
				if s, ok := v.(string); ok && s == token {
					t.Errorf("log field %s holds the token", k)
				}
			}

			f.clock.Advance(staleGrace)
			accepted := f.a.StaleAccepted()
			_, err := f.a.Authenticate(t.Context(), token)
			wantAuthError(t, err, http.StatusServiceUnavailable, "", auth.ReasonUnavailable, nil)
			if n := f.a.StaleAccepted(); n != accepted {
				t.Errorf("StaleAccepted moved past the grace: %d -> %d", accepted, n)
			}

			// IMS is back: a new confirmation, and the next outage is a
			// new episode, logged again.
			o.set(g, false)
			mustAuthenticate(t, f, token, "after IMS recovered")
			f.clock.Advance(staleRecheck + time.Second)
			o.set(g, true)
			mustAuthenticate(t, f, token, "second outage")
			if n := len(logs.FilterFieldKey("past_due").All()); n != 2 {
				t.Errorf("stale log entries after a second outage = %d, want 2", n)
			}
		})
	}
}

// TestStaleIfErrorLimits: what the grace never covers. In each case a
// control token confirmed before the outage shows whether the grace is on.
func TestStaleIfErrorLimits(t *testing.T) {
	tests := []struct {
		name  string
		mode  bearer.Mode
		grace time.Duration
		// controlKept says whether the control token is accepted in the
		// outage.
		controlKept bool
		// prepare makes the token under test while IMS answers; check
		// runs with IMS down and the control token past its recheck.
		prepare func(t *testing.T, f *fixture) string
		check   func(t *testing.T, f *fixture, token string)
	}{
		{
			name: "grace off", mode: bearer.ModeBoth, grace: 0,
		},
		{
			name: "remote mode: no local signature check", mode: bearer.ModeRemote, grace: staleGrace,
		},
		{
			name: "token IMS said is invalid", mode: bearer.ModeBoth, grace: staleGrace, controlKept: true,
			prepare: func(t *testing.T, f *fixture) string {
				f.clock.Advance(time.Minute)
				token, _ := mint(t, idp, nil)
				mustAuthenticate(t, f, token, "confirmation")
				idp.Revoke(token)
				f.clock.Advance(staleRecheck + time.Second)
				_, err := f.a.Authenticate(t.Context(), token)
				wantAuthError(t, err, http.StatusUnauthorized, auth.CodeInvalidToken, auth.ReasonInvalidToken, nil)
				return token
			},
			check: func(t *testing.T, f *fixture, token string) {
				_, err := f.a.Authenticate(t.Context(), token)
				wantAuthError(t, err, http.StatusUnauthorized, auth.CodeInvalidToken, auth.ReasonInvalidToken, nil)
				// Once the remembered "invalid" is forgotten, the outage
				// still does not make it valid.
				f.clock.Advance(time.Minute)
				_, err = f.a.Authenticate(t.Context(), token)
				wantAuthError(t, err, http.StatusServiceUnavailable, "", auth.ReasonUnavailable, nil)
			},
		},
		{
			name: "expired token", mode: bearer.ModeBoth, grace: staleGrace, controlKept: true,
			prepare: func(t *testing.T, f *fixture) string {
				token, _ := mint(t, idp, func(r *imstest.TokenRequest) {
					r.CreatedAt = time.Now().Add(-time.Second)
					r.Lifetime = staleRecheck + 2*time.Minute
				})
				mustAuthenticate(t, f, token, "confirmation")
				return token
			},
			check: func(t *testing.T, f *fixture, token string) {
				mustAuthenticate(t, f, token, "still live, within the grace")
				f.clock.Advance(4 * time.Minute) // past expiry and the 1-minute skew
				_, err := f.a.Authenticate(t.Context(), token)
				wantAuthError(t, err, http.StatusUnauthorized, auth.CodeInvalidToken, auth.ReasonExpiredToken, nil)
			},
		},
		{
			name: "bad signature", mode: bearer.ModeBoth, grace: staleGrace, controlKept: true,
			check: func(t *testing.T, f *fixture, _ string) {
				forged, _ := mint(t, forger, nil)
				_, err := f.a.Authenticate(t.Context(), forged)
				wantAuthError(t, err, http.StatusUnauthorized, auth.CodeInvalidToken, auth.ReasonInvalidToken, ims.ErrBadSignature)
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, _, _ := staleFixture(t, tt.mode, tt.grace)
			control, _ := mint(t, idp, nil)
			mustAuthenticate(t, f, control, "control's confirmation")
			start := f.clock.Now()
			var token string
			if tt.prepare != nil {
				token = tt.prepare(t, f)
			}
			idp.SetDown(true)
			t.Cleanup(func() { idp.SetDown(false) })
			// The control token is due for its recheck.
			f.clock.Advance(max(10*time.Second, start.Add(staleRecheck+time.Second).Sub(f.clock.Now())))
			_, err := f.a.Authenticate(t.Context(), control)
			if tt.controlKept {
				if err != nil {
					t.Fatalf("control token during the outage: %v", err)
				}
			} else {
				wantAuthError(t, err, http.StatusServiceUnavailable, "", auth.ReasonUnavailable, nil)
				if n := f.a.StaleAccepted(); n != 0 {
					t.Errorf("StaleAccepted = %d, want 0", n)
				}
			}
			if tt.check != nil {
				tt.check(t, f, token)
			}
		})
	}
}
