package test

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestIMSOutageAfterSignIn: IMS goes down after Alice signed in. Her
// bearer keeps working past its recheck and her sync's due time for
// GATEHOUSE_IMS_STALE_IF_ERROR, with her stored groups; her cookie keeps
// working throughout without IMS; past the grace the bearer is told to
// retry (503 with Retry-After).
func TestIMSOutageAfterSignIn(t *testing.T) {
	t.Parallel()
	const (
		recheck = time.Second // IMS_RECHECK_INTERVAL and SYNC_INTERVAL
		grace   = 5 * time.Second
	)
	w := newWorld(t)
	p := w.start(t, map[string]string{
		"IMS_RECHECK_INTERVAL": recheck.String(),
		"SYNC_INTERVAL":        recheck.String(),
		"IMS_STALE_IF_ERROR":   grace.String(),
	})
	tok := w.mint(t, alice, clientID)
	signedIn := time.Now() // before the confirmation and the sync
	r := p.do(t, request{path: whoami, bearer: tok})
	wantUser(t, r, alice)
	cookie := r.newCookie(t)
	confirmed := time.Now() // after them

	w.ims.SetDown(true)
	// The recheck and the sync are due; the grace runs until at least
	// signedIn+recheck+grace.
	sleepUntil(t, confirmed.Add(recheck+500*time.Millisecond), 5*time.Second)
	before := w.calls()
	wantUser(t, p.do(t, request{path: whoami, bearer: tok}), alice)
	// Both were tried once, and a burst right after costs IMS nothing.
	w.wantCalls(t, before, imsCalls{1, 1, 1})
	before = w.calls()
	wantUser(t, p.do(t, request{path: whoami, bearer: tok}), alice)
	w.wantCalls(t, before, imsCalls{})
	if time.Now().After(signedIn.Add(recheck + grace)) {
		t.Fatalf("the requests within the grace took until %s past the sign-in; the test's timing is off", time.Since(signedIn))
	}
	wantWarmCookie(t, w, p, cookie.value)

	sleepUntil(t, confirmed.Add(recheck+grace+time.Second), 10*time.Second)
	r = p.do(t, request{path: whoami, bearer: tok})
	wantAuthError(t, r, http.StatusServiceUnavailable, "", "IDENTITY_SERVICE_UNAVAILABLE")
	r.wantNoNewCookie(t)
	if r.header.Get("Retry-After") == "" {
		t.Error("503 without Retry-After")
	}
	wantWarmCookie(t, w, p, cookie.value)

	// IMS is back: the bearer is confirmed and synced again.
	w.ims.SetDown(false)
	wantUser(t, p.do(t, request{path: whoami, bearer: tok}), alice)

	// One outage, one log line for the token (stopped first, so that
	// every line is written out).
	p.stop(t)
	var kept int
	for _, l := range p.logs.lines(t) {
		if strings.Contains(l.str("msg"), "last confirmation") {
			kept++
			if l.str("token") == "" || l.str("error") == "" || l["past_due"] == nil {
				t.Errorf("grace log line %v: want the token's short hash, how long past due and the IMS error", l)
			}
		}
	}
	if strings.Contains(p.logs.String(), tok) {
		t.Error("the bearer token appears in the log")
	}
	if kept != 1 {
		t.Errorf("%d log lines for the bearer's grace, want 1 (once per token per outage)", kept)
	}
}

// wantWarmCookie checks that a login-token cookie is served without any
// IMS call.
func wantWarmCookie(t *testing.T, w *world, p *proc, cookie string) {
	t.Helper()
	before := w.calls()
	for range 3 {
		wantUser(t, p.do(t, request{path: whoami, cookie: cookie}), alice)
	}
	w.wantCalls(t, before, imsCalls{})
}
