package metrics

import (
	"context"
	"errors"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"github.com/gatehouse-proxy/gatehouse/auth"
	"github.com/gatehouse-proxy/gatehouse/proxy"
	"github.com/gatehouse-proxy/gatehouse/proxy/plumb"
	"github.com/gatehouse-proxy/gatehouse/session"
	"github.com/gatehouse-proxy/gatehouse/session/sqlite"
)

// sample finds the series of family name with exactly the given labels
// in m's registry; nil when there is none.
func sample(t *testing.T, m *Metrics, name string, labels map[string]string) *dto.Metric {
	t.Helper()
	mfs, err := m.Registry().Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, s := range mf.GetMetric() {
			if len(s.GetLabel()) != len(labels) {
				continue
			}
			for _, l := range s.GetLabel() {
				if v, ok := labels[l.GetName()]; !ok || v != l.GetValue() {
					continue next
				}
			}
			return s
		}
	}
	return nil
}

// value is a counter's or gauge's value, or a histogram's sample count;
// the test fails when the series does not exist.
func value(t *testing.T, m *Metrics, name string, labels map[string]string) float64 {
	t.Helper()
	s := sample(t, m, name, labels)
	switch {
	case s == nil:
		t.Fatalf("no series %s%v", name, labels)
	case s.Counter != nil:
		return s.Counter.GetValue()
	case s.Gauge != nil:
		return s.Gauge.GetValue()
	case s.Histogram != nil:
		return float64(s.Histogram.GetSampleCount())
	}
	t.Fatalf("series %s%v: unexpected type", name, labels)
	return 0
}

func wantValue(t *testing.T, m *Metrics, name string, labels map[string]string, want float64) {
	t.Helper()
	if got := value(t, m, name, labels); got != want {
		t.Errorf("%s%v = %v, want %v", name, labels, got, want)
	}
}

func newTest() *Metrics { return New(BuildInfo{Version: "1.2.3-test"}) }

// TestRequests drives the access log's observer, as the proxy listener
// does, with requests of every outcome.
func TestRequests(t *testing.T) {
	const own = 3 * time.Millisecond
	for _, tc := range []struct {
		name            string
		handler         func(w http.ResponseWriter, rec *plumb.Record)
		outcome, reason string
		upstream        bool // the upstream histogram gets a sample
	}{
		{"forwarded and answered", func(w http.ResponseWriter, rec *plumb.Record) {
			rec.Authenticated, rec.UpstreamAnswered, rec.Own, rec.Upstream = true, true, own, 40*time.Millisecond
			// The upstream's own X-Reason is not a Gatehouse reason.
			w.Header().Set(plumb.HeaderReason, "SOMETHING_OF_THE_UPSTREAM")
			w.WriteHeader(http.StatusOK)
		}, OutcomeUpstream, ReasonNone, true},
		{"forwarded, upstream unreachable", func(w http.ResponseWriter, rec *plumb.Record) {
			rec.Authenticated, rec.Own = true, own
			w.Header().Set(plumb.HeaderReason, proxy.ReasonUpstreamUnavailable)
			w.WriteHeader(http.StatusBadGateway)
		}, OutcomeUpstreamError, proxy.ReasonUpstreamUnavailable, false},
		{"forward-auth 200", func(w http.ResponseWriter, rec *plumb.Record) {
			rec.IdentityAnswered = true
			w.WriteHeader(http.StatusOK)
		}, OutcomeForwardAuth, ReasonNone, false},
		{"refused", func(w http.ResponseWriter, rec *plumb.Record) {
			auth.WriteError(w, &auth.Error{Status: http.StatusUnauthorized, Reason: auth.ReasonExpiredToken})
		}, OutcomeGatehouse, auth.ReasonExpiredToken, false},
		{"not found", func(w http.ResponseWriter, rec *plumb.Record) {
			plumb.WriteText(w, http.StatusNotFound, "not found")
		}, OutcomeGatehouse, ReasonNone, false},
		{"health probe", func(w http.ResponseWriter, rec *plumb.Record) {
			rec.Probe = true
			plumb.WriteText(w, http.StatusOK, "ok")
		}, OutcomeProbe, ReasonNone, false},
		{"unknown reason", func(w http.ResponseWriter, rec *plumb.Record) {
			w.Header().Set(plumb.HeaderReason, "user-7F8F@AdobeID")
			w.WriteHeader(http.StatusForbidden)
		}, OutcomeGatehouse, ReasonOther, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newTest()
			h := plumb.AccessLog(plumb.AccessLogConfig{Observe: m.ObserveRequest})(http.HandlerFunc(
				func(w http.ResponseWriter, r *http.Request) { tc.handler(w, plumb.RecordFrom(r.Context())) }))
			h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/content/a.json", nil))

			wantValue(t, m, "gatehouse_requests_total", map[string]string{"outcome": tc.outcome, "reason": tc.reason}, 1)
			wantValue(t, m, "gatehouse_request_duration_seconds", map[string]string{"outcome": tc.outcome}, 1)
			want := 0.0
			if tc.upstream {
				want = 1
			}
			wantValue(t, m, "gatehouse_upstream_request_duration_seconds", nil, want)
			if tc.outcome == OutcomeUpstream || tc.outcome == OutcomeUpstreamError {
				// Gatehouse's own time is the time before forwarding, not the
				// whole request.
				s := sample(t, m, "gatehouse_request_duration_seconds", map[string]string{"outcome": tc.outcome})
				if got := s.GetHistogram().GetSampleSum(); math.Abs(got-own.Seconds()) > 1e-9 {
					t.Errorf("own time %v s, want %v s", got, own.Seconds())
				}
			}
		})
	}
}

// Every reason Gatehouse sends has its own label value, and the counters
// were resolved up front for all of them.
func TestReasonLabels(t *testing.T) {
	m := newTest()
	for _, r := range append(knownReasons[:], "", "NOT_A_REASON") {
		h := plumb.AccessLog(plumb.AccessLogConfig{Observe: m.ObserveRequest})(http.HandlerFunc(
			func(w http.ResponseWriter, _ *http.Request) {
				if r != "" {
					w.Header().Set(plumb.HeaderReason, r)
				}
				w.WriteHeader(http.StatusUnauthorized)
			}))
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
	}
	for _, r := range knownReasons {
		wantValue(t, m, "gatehouse_requests_total", map[string]string{"outcome": OutcomeGatehouse, "reason": r}, 1)
	}
	wantValue(t, m, "gatehouse_requests_total", map[string]string{"outcome": OutcomeGatehouse, "reason": ReasonNone}, 1)
	wantValue(t, m, "gatehouse_requests_total", map[string]string{"outcome": OutcomeGatehouse, "reason": ReasonOther}, 1)
	// 4 outcomes x (known reasons + none + other), all present from the start.
	if n, want := testutil.CollectAndCount(newTest().Registry(), "gatehouse_requests_total"), numOutcomes*numReasons; n != want {
		t.Errorf("%d request series at start-up, want %d pre-resolved", n, want)
	}
}

func TestEgress(t *testing.T) {
	m := newTest()
	for _, status := range []int{200, 204, 401, 499, 503, 0} {
		m.ObserveEgress(nil, &plumb.Record{}, status, time.Millisecond)
	}
	for code, want := range map[string]float64{"1xx": 0, "2xx": 2, "3xx": 0, "4xx": 2, "5xx": 2} {
		wantValue(t, m, "gatehouse_egress_requests_total", map[string]string{"code": code}, want)
	}
}

func TestIMSTransport(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/ims/validate_token/v1":
			w.WriteHeader(http.StatusUnauthorized)
		case "/ims/profile/v1":
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	down := httptest.NewServer(http.NotFoundHandler())
	down.Close()

	m := newTest()
	c := &http.Client{Transport: m.IMSTransport(nil, srv.URL+"/ims/keys", srv.URL+"/certs/")}
	for _, u := range []string{
		srv.URL + "/ims/keys", srv.URL + "/ims/keys?x=1", srv.URL + "/ims/validate_token/v1",
		srv.URL + "/ims/profile/v1", srv.URL + "/ims/organizations/v5", srv.URL + "/ims/token/v3",
		srv.URL + "/ims/exchange/jwt", srv.URL + "/certs/abc.crt", srv.URL + "/user/7F8F@AdobeID",
		down.URL + "/ims/keys",
	} {
		if res, err := c.Get(u); err == nil {
			_, _ = io.Copy(io.Discard, res.Body)
			res.Body.Close()
		}
	}
	for _, w := range []struct {
		endpoint, code string
		n              float64
	}{
		{"keys", "2xx", 2}, {"validate_token", "4xx", 1}, {"profile", "5xx", 1}, {"organizations", "2xx", 1},
		{"token", "2xx", 1}, {"exchange_jwt", "2xx", 1}, {"certs", "2xx", 1}, {"other", "2xx", 1},
		{"other", "error", 1}, // the closed server: not this keys URL
	} {
		wantValue(t, m, "gatehouse_ims_requests_total", map[string]string{"endpoint": w.endpoint, "code": w.code}, w.n)
	}
	wantValue(t, m, "gatehouse_ims_request_duration_seconds", map[string]string{"endpoint": "keys"}, 2)
	wantValue(t, m, "gatehouse_ims_key_set_fetches_total", map[string]string{"result": "ok"}, 2)

	// A key-set fetch that gets no answer is a failed fetch.
	m = newTest()
	c = &http.Client{Transport: m.IMSTransport(nil, down.URL+"/ims/keys", "")}
	if _, err := c.Get(down.URL + "/ims/keys"); err == nil {
		t.Fatal("a closed server answered")
	}
	wantValue(t, m, "gatehouse_ims_key_set_fetches_total", map[string]string{"result": "error"}, 1)
	wantValue(t, m, "gatehouse_ims_requests_total", map[string]string{"endpoint": "keys", "code": "error"}, 1)
}

func openStore(t *testing.T) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "g.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// The store decorator times every call, counts failures (not answers such
// as not found), and reads the sign-in families from SyncUser.
func TestStore(t *testing.T) {
	ctx := t.Context()
	m := newTest()
	raw := openStore(t)
	s := m.Store(raw)
	if _, ok := s.(session.Notifier); ok {
		t.Error("the SQLite store sends no notifications, its decorator claims to")
	}
	now := time.Now()
	p := session.Profile{ID: "u1@AdobeID", Email: "u1@example.com"}
	if _, err := s.SyncUser(ctx, p, []string{"a", "b"}, now); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SyncUser(ctx, p, []string{"b", "c", "d"}, now); err != nil {
		t.Fatal(err)
	}
	wantValue(t, m, "gatehouse_signin_users_created_total", nil, 1)
	wantValue(t, m, "gatehouse_signin_syncs_total", nil, 2)
	wantValue(t, m, "gatehouse_signin_groups_added_total", nil, 4) // a, b; then c, d
	wantValue(t, m, "gatehouse_signin_groups_removed_total", nil, 1)
	wantValue(t, m, "gatehouse_store_call_duration_seconds", map[string]string{"op": "SyncUser"}, 2)

	if _, err := s.GetUser(ctx, "nobody@AdobeID"); !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("GetUser of nobody: %v", err)
	}
	wantValue(t, m, "gatehouse_store_call_duration_seconds", map[string]string{"op": "GetUser"}, 1)
	wantValue(t, m, "gatehouse_store_errors_total", map[string]string{"op": "GetUser"}, 0)

	if err := raw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Ping(ctx); err == nil {
		t.Fatal("Ping of a closed store succeeded")
	}
	wantValue(t, m, "gatehouse_store_errors_total", map[string]string{"op": "Ping"}, 1)
}

// notifier is a store that sends change notifications.
type notifier struct {
	session.Store
	watched atomic.Bool
}

func (n *notifier) WatchChanges(context.Context, func(session.Change)) { n.watched.Store(true) }

func TestStoreKeepsNotifier(t *testing.T) {
	n := &notifier{Store: openStore(t)}
	s := newTest().Store(n)
	sn, ok := s.(session.Notifier)
	if !ok {
		t.Fatal("the decorator hides the store's session.Notifier: replicas would miss each other's changes")
	}
	sn.WatchChanges(t.Context(), func(session.Change) {})
	if !n.watched.Load() {
		t.Error("WatchChanges did not reach the store")
	}
}

// clock is a settable time source.
type clock struct{ ns atomic.Int64 }

func (c *clock) now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *clock) advance(d time.Duration) { c.ns.Add(int64(d)) }

// TestSessions uses a real login-token manager: what it counts is what the
// login-token and cookie-cache families say.
func TestSessions(t *testing.T) {
	ctx := t.Context()
	m := newTest()
	store := m.Store(openStore(t))
	keys, _, err := session.LoadCookieKeys(ctx, store, "")
	if err != nil {
		t.Fatal(err)
	}
	clk := &clock{}
	clk.ns.Store(time.Now().UnixNano())
	const ttl = time.Hour
	sm, err := session.NewManager(store, keys, session.ManagerConfig{TTL: ttl, CacheTTL: 10 * time.Hour, Now: clk.now})
	if err != nil {
		t.Fatal(err)
	}
	m.WatchSessions(sm)
	r, err := store.SyncUser(ctx, session.Profile{ID: "u1@AdobeID"}, nil, clk.now())
	if err != nil {
		t.Fatal(err)
	}
	tokens := func(event string) map[string]string { return map[string]string{"event": event} }
	cookie := func(result string) map[string]string { return map[string]string{"cache": "cookie", "result": result} }

	c, _, err := sm.Issue(ctx, r.User)
	if err != nil {
		t.Fatal(err)
	}
	wantValue(t, m, "gatehouse_login_tokens_total", tokens("issued"), 1)
	for range 3 {
		if _, err := sm.Validate(ctx, c.Value); err != nil {
			t.Fatal(err)
		}
	}
	wantValue(t, m, "gatehouse_cache_lookups_total", cookie("miss"), 1)
	wantValue(t, m, "gatehouse_cache_lookups_total", cookie("hit"), 2)

	clk.advance(ttl/2 + time.Minute)
	v, err := sm.Validate(ctx, c.Value)
	if err != nil || v.Refresh == nil {
		t.Fatalf("Validate past half the lifetime: %v, refresh %v", err, v.Refresh != nil)
	}
	wantValue(t, m, "gatehouse_login_tokens_total", tokens("refreshed"), 1)

	if err := sm.Revoke(ctx, v.Refresh.Value); err != nil {
		t.Fatal(err)
	}
	wantValue(t, m, "gatehouse_login_tokens_total", tokens("revoked"), 1)

	// Two tokens left to expire, then one cleanup.
	for range 2 {
		if _, _, err := sm.Issue(ctx, r.User); err != nil {
			t.Fatal(err)
		}
	}
	clk.advance(2 * ttl)
	cctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { sm.RunCleanup(cctx, time.Hour); close(done) }()
	for deadline := time.Now().Add(10 * time.Second); value(t, m, "gatehouse_login_tokens_total", tokens("purged")) == 0; {
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done
	wantValue(t, m, "gatehouse_login_tokens_total", tokens("purged"), 2)
}

type fakeBearer struct{ hits, misses uint64 }

func (f fakeBearer) CacheStats() (uint64, uint64) { return f.hits, f.misses }

func TestBearerCache(t *testing.T) {
	m := newTest()
	m.WatchBearer(fakeBearer{hits: 7, misses: 2})
	wantValue(t, m, "gatehouse_cache_lookups_total", map[string]string{"cache": "bearer", "result": "hit"}, 7)
	wantValue(t, m, "gatehouse_cache_lookups_total", map[string]string{"cache": "bearer", "result": "miss"}, 2)
}

type fakeTech struct {
	exp        time.Time
	ok, failed uint64
}

func (f fakeTech) ExpiresAt() time.Time         { return f.exp }
func (f fakeTech) Fetches() (ok, failed uint64) { return f.ok, f.failed }

func TestTechAccount(t *testing.T) {
	m := newTest()
	m.WatchTechAccount(fakeTech{exp: time.Unix(1_900_000_000, 500_000_000), ok: 3, failed: 1})
	wantValue(t, m, "gatehouse_techacct_token_expiry_timestamp_seconds", nil, 1_900_000_000.5)
	wantValue(t, m, "gatehouse_techacct_token_renewals_total", map[string]string{"result": "ok"}, 3)
	wantValue(t, m, "gatehouse_techacct_token_renewals_total", map[string]string{"result": "error"}, 1)

	m = newTest()
	m.WatchTechAccount(fakeTech{})
	wantValue(t, m, "gatehouse_techacct_token_expiry_timestamp_seconds", nil, 0)
}

func TestBuildInfo(t *testing.T) {
	wantValue(t, newTest(), "gatehouse_build_info", map[string]string{"version": "1.2.3-test", "goversion": runtime.Version()}, 1)
}

// Every family follows Prometheus's conventions (base units, _total on
// counters), as promtool would check them.
func TestLint(t *testing.T) {
	m := newTest()
	m.WatchSessions(fakeSessions{})
	m.WatchBearer(fakeBearer{})
	m.WatchTechAccount(fakeTech{})
	problems, err := testutil.GatherAndLint(m.Registry())
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		if strings.HasPrefix(p.Metric, namespace+"_") {
			t.Errorf("%s: %s", p.Metric, p.Text)
		}
	}
}

type fakeSessions struct{}

func (fakeSessions) Stats() session.Stats { return session.Stats{} }

// The handler serves the text format.
func TestHandler(t *testing.T) {
	m := newTest()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "gatehouse_build_info{") ||
		!strings.Contains(rec.Body.String(), "go_goroutines ") {
		t.Errorf("GET /metrics: %d\n%.500s", rec.Code, rec.Body.String())
	}
}

// BenchmarkObserveRequest is what the metrics add to a cookie request
// beside the timed round trip: one observer call for a forwarded request
// the upstream answered, and for a refusal (whose reason is read), from
// every core at once as under load.
func BenchmarkObserveRequest(b *testing.B) {
	m := newTest()
	for _, bc := range []struct {
		name string
		rec  *plumb.Record
	}{
		{"upstream", &plumb.Record{Authenticated: true, UpstreamAnswered: true, Own: 20 * time.Microsecond, Upstream: time.Millisecond}},
		{"refused", &plumb.Record{}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				rec := *bc.rec
				for pb.Next() {
					m.ObserveRequest(nil, &rec, http.StatusOK, 2*time.Millisecond)
				}
			})
		})
	}
}
