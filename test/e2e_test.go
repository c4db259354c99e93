package test

import (
	"bytes"
	"encoding/json"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-proxy/gatehouse/auth/ims"
)

const whoami = "/libs/granite/security/currentuser.json"

// TestSignInFlow plays the desktop extension's flow against the real
// binary and checks every step on the wire.
func TestSignInFlow(t *testing.T) {
	t.Parallel()

	t.Run("cookie attributes", func(t *testing.T) {
		t.Parallel()
		for _, tc := range []struct {
			name     string
			env      map[string]string
			secure   bool
			sameSite string
		}{
			{"COOKIE_SECURE=false", nil, false, "Lax"},
			{"COOKIE_SECURE default", map[string]string{"COOKIE_SECURE": unset}, true, "Lax"},
			{"COOKIE_SAMESITE=strict", map[string]string{"COOKIE_SAMESITE": "strict"}, false, "Strict"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				w := newWorld(t)
				p := w.start(t, tc.env)
				r := p.do(t, request{path: whoami, bearer: w.mint(t, alice, clientID)})
				wantUser(t, r, alice)
				c := r.newCookie(t)
				wantCookieAttrs(t, c, tc.secure, tc.sameSite)
				maxAge, err := strconv.Atoi(c.attrs["max-age"])
				if err != nil || maxAge < 12*3600-10 || maxAge > 12*3600 {
					t.Errorf("Set-Cookie %q: Max-Age %q, want the default lifetime of 12h", c.raw, c.attrs["max-age"])
				}
				if exp := c.expires(t); exp.Before(time.Now().Add(11*time.Hour)) || exp.After(time.Now().Add(13*time.Hour)) {
					t.Errorf("Set-Cookie %q: Expires is not about 12h from now", c.raw)
				}
			})
		}
	})

	t.Run("flow", func(t *testing.T) {
		t.Parallel()
		w := newWorld(t)
		p := w.start(t, nil)
		tokA := w.mint(t, alice, clientID)

		// Bearer sign-in: validated, provisioned, synced: one call each.
		before := w.calls()
		r := p.do(t, request{path: whoami, bearer: tokA})
		wantUser(t, r, alice)
		w.wantCalls(t, before, imsCalls{1, 1, 1})
		cookieA := r.newCookie(t)
		wantCookieAttrs(t, cookieA, false, "Lax")
		s := w.lastSeen(t)
		if s.User != alice.id || s.Email != alice.email || s.Groups != "administrators,dam-users" {
			t.Errorf("upstream saw X-Forwarded-User %q, -Email %q, -Groups %q; want %q, %q, %q",
				s.User, s.Email, s.Groups, alice.id, alice.email, "administrators,dam-users")
		}
		if s.Authorization || s.LoginTokenCookie {
			t.Errorf("upstream saw Authorization %v, login-token cookie %v; want neither", s.Authorization, s.LoginTokenCookie)
		}

		// The same bearer again, without the cookie: the same login token,
		// at no IMS cost.
		before = w.calls()
		r = p.do(t, request{path: whoami, bearer: tokA})
		wantUser(t, r, alice)
		if c := r.newCookie(t); c.value != cookieA.value {
			t.Errorf("same bearer again: a new login token %q was issued instead of %q", c.value, cookieA.value)
		}
		w.wantCalls(t, before, imsCalls{})

		// Cookie-only work: no IMS call, no new cookie, and the upstream gets
		// the user but neither credential; other cookies pass through.
		before = w.calls()
		asset := "/content/dam/we-retail/en/activities/hiking.jpg"
		for _, step := range []struct {
			name, method, path string
			field              string // a field of the answer to check
			want               any
		}{
			{"browse", "GET", "/content/dam/we-retail.json", "path", "/content/dam/we-retail"},
			{"search", "GET", "/bin/querybuilder.json?fulltext=hiking&path=/content/dam", "results", float64(1)},
			{"check out", "POST", asset + "?:operation=checkout", "checkedOutBy", alice.id},
			{"check in", "POST", asset + "?:operation=checkin", "checkedOutBy", ""},
		} {
			n := w.backend.Requests()
			r := p.do(t, request{method: step.method, path: step.path, cookie: cookieA.value,
				header: map[string][]string{"Cookie": {"aem-pref=blue"}}})
			wantStatus(t, r, http.StatusOK)
			r.wantNoNewCookie(t)
			var body map[string]any
			if err := json.Unmarshal(r.body, &body); err != nil {
				t.Fatalf("%s: answer is not JSON: %s", step.name, r.body)
			}
			if body["user"] != alice.id || body[step.field] != step.want {
				t.Errorf("%s: answer has user %v, %s %v; want %s, %v", step.name, body["user"], step.field, body[step.field], alice.id, step.want)
			}
			if got := w.backend.Requests() - n; got != 1 {
				t.Errorf("%s: the upstream got %d requests, want 1", step.name, got)
			}
			s := w.lastSeen(t)
			if s.User != alice.id || s.Groups != "administrators,dam-users" || s.Authorization || s.LoginTokenCookie {
				t.Errorf("%s: upstream saw %+v", step.name, s)
			}
			if got := w.rec.last(t).Values("Cookie"); !slices.Equal(got, []string{"aem-pref=blue"}) {
				t.Errorf("%s: upstream got Cookie %q, want only the unrelated cookie", step.name, got)
			}
		}
		w.wantCalls(t, before, imsCalls{})

		// Another user's bearer next to Alice's cookie: the bearer wins, and
		// Bob gets a login token of his own. His administrator role in
		// another organization gives him nothing here.
		tokB := w.mint(t, bob, clientID2)
		before = w.calls()
		r = p.do(t, request{path: whoami, bearer: tokB, cookie: cookieA.value})
		wantUser(t, r, bob)
		w.wantCalls(t, before, imsCalls{1, 1, 1})
		cookieB := r.newCookie(t)
		if cookieB.value == cookieA.value {
			t.Fatal("Bob was given Alice's login token")
		}
		wantUser(t, p.do(t, request{path: whoami, cookie: cookieA.value}), alice)
		wantUser(t, p.do(t, request{path: whoami, cookie: cookieB.value}), bob)

		// Logout: GET is refused (a link must not sign anyone out) and
		// revokes nothing.
		n := w.backend.Requests()
		r = p.do(t, request{path: "/gatehouse/logout", cookie: cookieA.value})
		wantStatus(t, r, http.StatusMethodNotAllowed)
		if allow := r.header.Get("Allow"); !strings.Contains(allow, "POST") {
			t.Errorf("405 Allow %q, want POST in it", allow)
		}
		if len(r.loginCookies()) != 0 {
			t.Errorf("GET logout touched the cookie: %q", r.header.Values("Set-Cookie"))
		}
		if w.backend.Requests() != n {
			t.Error("GET /gatehouse/logout reached the upstream")
		}
		wantUser(t, p.do(t, request{path: whoami, cookie: cookieA.value}), alice)

		n = w.backend.Requests()
		r = p.do(t, request{method: "POST", path: "/gatehouse/logout", cookie: cookieA.value})
		wantStatus(t, r, http.StatusOK)
		r.wantClearedCookie(t)
		r = p.do(t, request{path: whoami, cookie: cookieA.value})
		wantAuthError(t, r, http.StatusUnauthorized, "invalid_token", "INVALID_TOKEN")
		if got := w.backend.Requests() - n; got != 0 {
			t.Errorf("logout and the replayed cookie reached the upstream %d times", got)
		}
		// Logout revokes that one login token: Bob's goes on working.
		wantUser(t, p.do(t, request{path: whoami, cookie: cookieB.value}), bob)
		// The bearer the revoked token was handed out for gets a new one,
		// never the revoked token again.
		before = w.calls()
		r = p.do(t, request{path: whoami, bearer: tokA})
		wantUser(t, r, alice)
		w.wantCalls(t, before, imsCalls{})
		cookieA2 := r.newCookie(t)
		if cookieA2.value == cookieA.value {
			t.Fatal("the revoked login token was handed out again")
		}
		wantUser(t, p.do(t, request{path: whoami, cookie: cookieA2.value}), alice)
	})

	t.Run("expiry", func(t *testing.T) {
		t.Parallel()
		w := newWorld(t)
		p := w.start(t, map[string]string{"LOGIN_TOKEN_TTL": "2s"})
		tok1, tok2 := w.mint(t, alice, clientID), w.mint(t, alice, clientID)
		r := p.do(t, request{path: whoami, bearer: tok1})
		wantUser(t, r, alice)
		c1 := r.newCookie(t)
		if c1.attrs["max-age"] != "2" {
			t.Errorf("Set-Cookie %q: Max-Age %q, want 2 (LOGIN_TOKEN_TTL=2s)", c1.raw, c1.attrs["max-age"])
		}
		// A second bearer of the same user: a second login token.
		r = p.do(t, request{path: whoami, bearer: tok2})
		wantUser(t, r, alice)
		c2 := r.newCookie(t)
		if c2.value == c1.value {
			t.Fatal("two bearer tokens share one login token")
		}
		sleepUntil(t, c2.expires(t), 5*time.Second)

		n, before := w.backend.Requests(), w.calls()
		r = p.do(t, request{path: whoami, cookie: c1.value})
		wantAuthError(t, r, http.StatusUnauthorized, "invalid_token", "EXPIRED_TOKEN")
		r.wantClearedCookie(t)
		if w.backend.Requests() != n {
			t.Error("a request with an expired cookie reached the upstream")
		}

		// The client signs in again in the same request: expired cookie and
		// bearer together give a new cookie at once.
		r = p.do(t, request{path: whoami, bearer: tok1, cookie: c2.value})
		wantUser(t, r, alice)
		c3 := r.newCookie(t)
		if c3.value == c1.value || c3.value == c2.value {
			t.Error("re-authentication returned an expired login token")
		}
		w.wantCalls(t, before, imsCalls{})
		wantUser(t, p.do(t, request{path: whoami, cookie: c3.value}), alice)
	})

	t.Run("group change", func(t *testing.T) {
		t.Parallel()
		w := newWorld(t)
		p := w.start(t, map[string]string{"SYNC_INTERVAL": "1s"})
		tok := w.mint(t, alice, clientID)
		r := p.do(t, request{path: whoami, bearer: tok})
		synced := time.Now()
		wantUser(t, r, alice)
		cookie := r.newCookie(t)

		// An administrator changes Alice's groups in IMS: AEM-Admins goes,
		// Marketing comes.
		if err := w.ims.SetGroups(alice.id, orgID, []ims.Group{
			{GroupName: "AEM-Authors", Ident: "4711", Role: "TEAM_MEMBER"},
			{GroupName: "Marketing", Ident: "4713", Role: "TEAM_MEMBER"},
		}); err != nil {
			t.Fatal(err)
		}
		sleepUntil(t, synced.Add(1200*time.Millisecond), 2*time.Second)

		changed := alice
		changed.groups = []string{"Marketing", "dam-users"}
		before := w.calls()
		r = p.do(t, request{path: whoami, bearer: tok})
		wantUser(t, r, changed)
		w.wantCalls(t, before, imsCalls{0, 1, 1})
		if s := w.lastSeen(t); s.Groups != "Marketing,dam-users" {
			t.Errorf("upstream saw X-Forwarded-Groups %q, want Marketing,dam-users", s.Groups)
		}
		r.newCookie(t)
		// Her older login token speaks for the synced groups too.
		wantUser(t, p.do(t, request{path: whoami, cookie: cookie.value}), changed)
	})
}

func wantCookieAttrs(t *testing.T, c *setCookie, secure bool, sameSite string) {
	t.Helper()
	if !c.has("httponly") {
		t.Errorf("Set-Cookie %q: not HttpOnly", c.raw)
	}
	if c.attrs["path"] != "/" {
		t.Errorf("Set-Cookie %q: Path %q, want /", c.raw, c.attrs["path"])
	}
	if c.attrs["samesite"] != sameSite {
		t.Errorf("Set-Cookie %q: SameSite %q, want %s", c.raw, c.attrs["samesite"], sameSite)
	}
	if c.has("secure") != secure {
		t.Errorf("Set-Cookie %q: Secure is %v, want %v", c.raw, c.has("secure"), secure)
	}
	if c.has("domain") {
		t.Errorf("Set-Cookie %q: a Domain widens the cookie to other hosts", c.raw)
	}
}

// TestRestartKeepsUsersAndTokens stops Gatehouse and starts a new process on
// the same store: the cookie keys, users and login tokens were kept.
func TestRestartKeepsUsersAndTokens(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	p1 := w.start(t, nil)
	tok := w.mint(t, alice, clientID)
	r := p1.do(t, request{path: whoami, bearer: tok})
	wantUser(t, r, alice)
	cookie := r.newCookie(t)
	p1.stop(t)
	if t.Failed() {
		t.FailNow()
	}

	p2 := w.start(t, nil)
	before := w.calls()
	r = p2.do(t, request{path: whoami, cookie: cookie.value})
	wantUser(t, r, alice)
	r.wantNoNewCookie(t)
	w.wantCalls(t, before, imsCalls{})
	if s := w.lastSeen(t); s.User != alice.id || s.Groups != "administrators,dam-users" {
		t.Errorf("upstream saw %+v after the restart", s)
	}

	// The user was kept as well: signing in again validates the bearer
	// (the validation cache was in memory) but does not provision anew.
	before = w.calls()
	r = p2.do(t, request{path: whoami, bearer: tok})
	wantUser(t, r, alice)
	w.wantCalls(t, before, imsCalls{1, 0, 0})
}

// TestIMSOutage: IMS down means "retry", not "you are not signed in", and
// users who hold a login token do not notice.
func TestIMSOutage(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	p := w.start(t, nil) // the signing keys are loaded
	tokA := w.mint(t, alice, clientID)

	w.ims.SetDown(true)
	n := w.backend.Requests()
	r := p.do(t, request{path: whoami, bearer: tokA})
	wantAuthError(t, r, http.StatusServiceUnavailable, "", "IDENTITY_SERVICE_UNAVAILABLE")
	r.wantNoNewCookie(t)
	if w.backend.Requests() != n {
		t.Error("a request that could not be authenticated reached the upstream")
	}

	// IMS is back: the same token signs in (the outage was not remembered
	// as a verdict on it).
	w.ims.SetDown(false)
	r = p.do(t, request{path: whoami, bearer: tokA})
	wantUser(t, r, alice)
	cookie := r.newCookie(t)

	// Down again: Alice's cookie keeps working without IMS…
	w.ims.SetDown(true)
	before := w.calls()
	for range 3 {
		wantUser(t, p.do(t, request{path: whoami, cookie: cookie.value}), alice)
	}
	w.wantCalls(t, before, imsCalls{})
	// …while Bob, who never signed in, is told to retry.
	r = p.do(t, request{path: whoami, bearer: w.mint(t, bob, clientID)})
	wantAuthError(t, r, http.StatusServiceUnavailable, "", "IDENTITY_SERVICE_UNAVAILABLE")
}

// TestUpstreamDown: an unreachable upstream is a quick 502 from Gatehouse;
// its own endpoints keep answering.
func TestUpstreamDown(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String()
	ln.Close()
	p := w.start(t, map[string]string{"UPSTREAM": closed})

	r := p.do(t, request{path: whoami, bearer: w.mint(t, alice, clientID)})
	wantBadGateway(t, r)
	// The sign-in itself succeeded: the cookie works, and fails the same way.
	r = p.do(t, request{path: "/content/dam.json", cookie: r.newCookie(t).value})
	wantBadGateway(t, r)

	r = p.do(t, request{path: "/gatehouse/healthz"})
	wantStatus(t, r, http.StatusOK)
}

func wantBadGateway(t *testing.T, r *response) {
	t.Helper()
	wantStatus(t, r, http.StatusBadGateway)
	if len(r.body) == 0 || len(r.body) > 200 {
		t.Errorf("502 body of %d bytes, want a short message: %q", len(r.body), r.body)
	}
	if r.took > 3*time.Second {
		t.Errorf("502 took %s, want it at once (connection refused)", r.took)
	}
}

// TestReadiness: healthz says the process runs, readyz that it can sign
// people in (store and IMS signing keys).
func TestReadiness(t *testing.T) {
	t.Parallel()
	t.Run("IMS up", func(t *testing.T) {
		t.Parallel()
		w := newWorld(t)
		p := w.start(t, nil)
		wantStatusJSON(t, p.do(t, request{path: "/gatehouse/healthz"}), http.StatusOK, "ok")
		wantStatusJSON(t, p.do(t, request{path: "/gatehouse/readyz"}), http.StatusOK, "ready")
	})
	t.Run("IMS down from the start", func(t *testing.T) {
		t.Parallel()
		w := newWorld(t)
		w.ims.SetDown(true)
		p := w.startUnready(t, map[string]string{"IMS_KEYS_MIN_REFRESH": "500ms"})
		wantStatusJSON(t, p.do(t, request{path: "/gatehouse/healthz"}), http.StatusOK, "ok")
		wantStatusJSON(t, p.do(t, request{path: "/gatehouse/readyz"}), http.StatusServiceUnavailable, "unavailable")
		r := p.do(t, request{path: whoami, bearer: w.mint(t, alice, clientID)})
		wantAuthError(t, r, http.StatusServiceUnavailable, "", "IDENTITY_SERVICE_UNAVAILABLE")

		// The key set retries on its own: readiness follows IMS back.
		w.ims.SetDown(false)
		p.waitReady(t)
		wantUser(t, p.do(t, request{path: whoami, bearer: w.mint(t, alice, clientID)}), alice)
	})
}

func wantStatusJSON(t *testing.T, r *response, status int, want string) {
	t.Helper()
	wantStatus(t, r, status)
	var body struct {
		Status string `json:"status"`
	}
	if err := json.Unmarshal(r.body, &body); err != nil || body.Status != want {
		t.Errorf("body %s, want status %q", bytes.TrimSpace(r.body), want)
	}
}
