package test

import (
	"net/http"
	"testing"
	"time"
)

// answerBound is how long any answer may take while PostgreSQL is down
// or frozen: nothing may wait for the server to come back. (A frozen
// server costs a sign-in the store's operation timeout, 5 s; the test
// client gives up after 15 s.)
const answerBound = 10 * time.Second

// TestPostgresDown stops the PostgreSQL server (a private one) under two
// replicas and starts it again. While it is down: readiness turns 503,
// cookies the replicas cached keep working, new sign-ins and a cookie no
// replica cached get 503 STORE_UNAVAILABLE with Retry-After, and nothing
// waits long. Once it is back, both replicas recover without a restart:
// ready again, signing in, listening for changes again, and every user
// and login token written before the outage is still there.
func TestPostgresDown(t *testing.T) {
	t.Parallel()
	pg := newPGServer(t)
	w := newWorld(t)
	env := map[string]string{"STORE": pg.URL, "COOKIE_KEYS": unset, "SESSION_CACHE_TTL": "5m"}
	a, b := w.start(t, env), w.start(t, env)
	replicas := []*proc{a, b}
	for _, p := range replicas {
		waitLogged(t, p, listening, 1)
	}

	// Alice's cookie is cached on both; Bob's is on none (issuing a token
	// does not cache it).
	r := a.do(t, request{path: whoami, bearer: w.mint(t, alice, clientID)})
	wantUser(t, r, alice)
	warm := r.newCookie(t).value
	for _, p := range replicas {
		wantUser(t, p.do(t, request{path: whoami, cookie: warm}), alice)
	}
	r = b.do(t, request{path: whoami, bearer: w.mint(t, bob, clientID)})
	wantUser(t, r, bob)
	cold := r.newCookie(t).value
	carol := newBurstUser(w.ims.Emulator, 0)

	stopped := time.Now()
	pg.stop(t)
	t.Logf("PostgreSQL stopped in %s", time.Since(stopped).Round(time.Millisecond))
	bounded := func(t *testing.T, p *proc, req request) *response {
		t.Helper()
		r := p.do(t, req)
		if r.took > answerBound {
			t.Errorf("%s took %s with PostgreSQL down, want under %s", req.path, r.took.Round(time.Millisecond), answerBound)
		}
		return r
	}
	for _, p := range replicas {
		for {
			r := bounded(t, p, request{path: "/gatehouse/readyz"})
			if r.status == http.StatusServiceUnavailable {
				break
			}
			wantStatus(t, r, http.StatusOK)
			if time.Since(stopped) > 15*time.Second {
				t.Fatal("readiness still 200 15s after PostgreSQL stopped")
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	t.Logf("readiness 503 on both replicas %s after PostgreSQL stopped", time.Since(stopped).Round(time.Millisecond))

	// At once, and again once the listeners' reconnection backoff has
	// grown.
	for _, round := range []struct {
		name  string
		after time.Duration
	}{{"at once", 0}, {"4s down", 4 * time.Second}} {
		t.Run(round.name, func(t *testing.T) {
			sleepUntil(t, stopped.Add(round.after), 10*time.Second)
			for _, p := range replicas {
				wantStatus(t, bounded(t, p, request{path: "/gatehouse/readyz"}), http.StatusServiceUnavailable)
				wantUser(t, bounded(t, p, request{path: whoami, cookie: warm}), alice)
			}
			for _, tc := range []struct {
				name string
				p    *proc
				req  request
			}{
				{"new user's bearer", a, request{path: whoami, bearer: w.mint(t, carol, clientID)}},
				{"known user's new bearer", b, request{path: whoami, bearer: w.mint(t, alice, clientID2)}},
				{"cookie not cached", a, request{path: whoami, cookie: cold}},
			} {
				r := bounded(t, tc.p, tc.req)
				wantAuthError(t, r, http.StatusServiceUnavailable, "", "STORE_UNAVAILABLE")
				if r.header.Get("Retry-After") == "" {
					t.Errorf("%s: 503 without Retry-After", tc.name)
				}
				r.wantNoNewCookie(t)
			}
		})
	}

	// A logout cannot be recorded: the client is told so (503, and its
	// cookie is not cleared), and the replica honours it all the same,
	// while the other still serves the cookie from its cache.
	r = bounded(t, b, request{method: http.MethodPost, path: "/gatehouse/logout", cookie: warm})
	wantAuthError(t, r, http.StatusServiceUnavailable, "", "STORE_UNAVAILABLE")
	if len(r.loginCookies()) != 0 || r.header.Get("Retry-After") == "" {
		t.Errorf("logout: Set-Cookie %q, Retry-After %q; want none, and one", r.header.Values("Set-Cookie"), r.header.Get("Retry-After"))
	}
	wantAuthError(t, bounded(t, b, request{path: whoami, cookie: warm}), http.StatusServiceUnavailable, "", "STORE_UNAVAILABLE")
	wantUser(t, bounded(t, a, request{path: whoami, cookie: warm}), alice)

	restarted := time.Now()
	pg.start(t)
	for _, p := range replicas {
		p.waitReady(t)
	}
	t.Logf("readiness 200 on both replicas %s after PostgreSQL was started again", time.Since(restarted).Round(time.Millisecond))
	for _, p := range replicas {
		waitLogged(t, p, listening, 2)
	}
	const lost = "change notifications lost; reconnecting, and until then cached sessions are trusted for GATEHOUSE_SESSION_CACHE_TTL as without them"
	for _, p := range replicas {
		waitLogged(t, p, lost, 1) // once per outage, not once per attempt
		if n := countLogged(t, p, lost); n != 1 {
			t.Errorf("%q logged %d times in one outage, want 1", lost, n)
		}
	}
	t.Logf("both replicas listening for changes again %s after PostgreSQL was started again", time.Since(restarted).Round(time.Millisecond))

	// Nothing written before the outage is lost: both cookies work on
	// both replicas (their caches were emptied on reconnecting, so this
	// reads the store; the logout was never recorded), and Carol signs in.
	for _, p := range replicas {
		wantUser(t, p.do(t, request{path: whoami, cookie: warm}), alice)
		wantUser(t, p.do(t, request{path: whoami, cookie: cold}), bob)
	}
	r = a.do(t, request{path: whoami, bearer: w.mint(t, carol, clientID)})
	wantUser(t, r, carol)
	// And change notifications flow again: a logout on B reaches A.
	fresh := r.newCookie(t).value
	wantUser(t, a.do(t, request{path: whoami, cookie: fresh}), carol)
	loggingOut := time.Now()
	wantStatus(t, b.do(t, request{method: http.MethodPost, path: "/gatehouse/logout", cookie: fresh}), http.StatusOK)
	refusals, last := refusedEverywhere(t, []*proc{a}, fresh, loggingOut)
	wantAuthError(t, refusals[0], http.StatusUnauthorized, "invalid_token", "INVALID_TOKEN")
	t.Logf("after the outage, a logout on B refused by A within %s (session cache TTL 5m)", last.Round(time.Millisecond))
}

// TestPostgresUnresponsive freezes the PostgreSQL server (SIGSTOP: it
// accepts connections and answers nothing, as a hung host or a dropped
// network would) under a replica: no request may wait on it for long.
// Readiness turns 503, a cached cookie works, a sign-in and a cookie not
// cached get 503 STORE_UNAVAILABLE; thawed, the replica recovers without a restart.
func TestPostgresUnresponsive(t *testing.T) {
	t.Parallel()
	pg := newPGServer(t)
	w := newWorld(t)
	p := w.start(t, map[string]string{"STORE": pg.URL, "COOKIE_KEYS": unset, "SESSION_CACHE_TTL": "5m"})
	// Once it listens, the replica empties its session cache (changes made
	// before are unknown): warm the cookie after that, or it is cold again.
	waitLogged(t, p, listening, 1)
	r := p.do(t, request{path: whoami, bearer: w.mint(t, alice, clientID)})
	wantUser(t, r, alice)
	warm := r.newCookie(t).value
	wantUser(t, p.do(t, request{path: whoami, cookie: warm}), alice)
	r = p.do(t, request{path: whoami, bearer: w.mint(t, bob, clientID2)})
	wantUser(t, r, bob)
	cold := r.newCookie(t).value // issued, not cached

	pg.freeze(t)
	thawed := false
	thaw := func() {
		if !thawed {
			thawed = true
			pg.thaw(t)
		}
	}
	t.Cleanup(thaw) // before the replica stops
	bounded := func(req request) *response {
		t.Helper()
		r := p.do(t, req)
		t.Logf("%s: %d in %s", req.path, r.status, r.took.Round(time.Millisecond))
		if r.took > answerBound {
			t.Errorf("%s took %s with PostgreSQL frozen, want under %s", req.path, r.took.Round(time.Millisecond), answerBound)
		}
		return r
	}
	wantStatus(t, bounded(request{path: "/gatehouse/readyz"}), http.StatusServiceUnavailable)
	wantUser(t, bounded(request{path: whoami, cookie: warm}), alice)
	for _, req := range []request{
		{path: whoami, bearer: w.mint(t, bob, clientID)},
		{path: whoami, cookie: cold},
	} {
		r := bounded(req)
		wantAuthError(t, r, http.StatusServiceUnavailable, "", "STORE_UNAVAILABLE")
		if r.header.Get("Retry-After") == "" {
			t.Error("503 without Retry-After")
		}
	}

	thaw()
	p.waitReady(t)
	wantUser(t, p.do(t, request{path: whoami, bearer: w.mint(t, bob, clientID)}), bob)
	wantUser(t, p.do(t, request{path: whoami, cookie: cold}), bob)
}
