package test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gatehouse-proxy/gatehouse/session"
	"github.com/gatehouse-proxy/gatehouse/session/postgres/pgtest"
)

// TestPostgresReplicas runs two `gatehouse serve` processes over one
// PostgreSQL schema, with the cookie keys left to the store: a cookie one
// issues works on the other at no IMS cost, and a logout on one is
// refused by the other (told by a change notification, or at the latest
// once its session cache TTL has passed: see TestRevocationSpreads).
func TestPostgresReplicas(t *testing.T) {
	t.Parallel()
	url := pgtest.URL(t)
	w := newWorld(t)
	const cacheTTL = 500 * time.Millisecond
	env := map[string]string{"STORE": url, "SESSION_CACHE_TTL": cacheTTL.String(), "COOKIE_KEYS": unset}
	a := w.start(t, env)
	b := w.start(t, env)

	tok := w.mint(t, alice, clientID)
	r := a.do(t, request{path: whoami, bearer: tok})
	wantUser(t, r, alice)
	cookie := r.newCookie(t)

	// B reads the token and the user from the shared store, and opens the
	// cookie with the keys A generated and kept there.
	before := w.calls()
	r = b.do(t, request{path: whoami, cookie: cookie.value})
	wantUser(t, r, alice)
	r.wantNoNewCookie(t)
	w.wantCalls(t, before, imsCalls{})
	if s := w.lastSeen(t); s.User != alice.id || s.Groups != "administrators,dam-users" {
		t.Errorf("upstream behind B saw user %q groups %q", s.User, s.Groups)
	}

	// One user row, one copy of each membership, one set of cookie keys.
	db, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close(context.Background()) })
	for _, c := range []struct {
		query string
		args  []any
		want  int
	}{
		{`SELECT COUNT(*) FROM users`, nil, 1},
		{`SELECT COUNT(*) - COUNT(DISTINCT group_name) FROM memberships`, nil, 0},
		{`SELECT COUNT(*) FROM settings WHERE key = $1`, []any{session.CookieKeysSetting}, 1},
	} {
		var n int
		if err := db.QueryRow(t.Context(), c.query, c.args...).Scan(&n); err != nil {
			t.Fatalf("%s: %v", c.query, err)
		}
		if n != c.want {
			t.Errorf("%s = %d, want %d", c.query, n, c.want)
		}
	}

	// Logout on A: A refuses the cookie at once, B when notified, at the
	// latest once what it cached is older than its TTL. The bound is
	// generous; the time is printed.
	r = a.do(t, request{method: http.MethodPost, path: "/gatehouse/logout", cookie: cookie.value})
	wantStatus(t, r, http.StatusOK)
	loggedOut := time.Now()
	wantAuthError(t, a.do(t, request{path: whoami, cookie: cookie.value}), http.StatusUnauthorized, "invalid_token", "INVALID_TOKEN")
	for {
		r = b.do(t, request{path: whoami, cookie: cookie.value})
		if r.status == http.StatusUnauthorized {
			wantAuthError(t, r, http.StatusUnauthorized, "invalid_token", "INVALID_TOKEN")
			break
		}
		wantUser(t, r, alice)
		if time.Since(loggedOut) > cacheTTL+5*time.Second {
			t.Fatalf("B still accepts the cookie %s after the logout on A", time.Since(loggedOut))
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("B refused the cookie %s after the logout on A (GATEHOUSE_SESSION_CACHE_TTL %s)", time.Since(loggedOut).Round(time.Millisecond), cacheTTL)

	// Readiness asks the shared store.
	wantStatusJSON(t, b.do(t, request{path: "/gatehouse/readyz"}), http.StatusOK, "ready")
}

// TestPostgresStoreErrors: a PostgreSQL store that cannot be used stops
// start-up with a message that names GATEHOUSE_STORE and not the password.
func TestPostgresStoreErrors(t *testing.T) {
	t.Parallel()
	const pw = "s3cr3t-Pa55"
	for _, tc := range []struct{ name, store string }{
		{"unreachable", "postgres://gatehouse:" + pw + "@127.0.0.1:1/gatehouse?sslmode=disable&connect_timeout=5"},
		{"malformed", "postgres://gatehouse:" + pw + "@127.0.0.1:port/gatehouse"},
		{"bad parameter", "postgresql://gatehouse:" + pw + "@127.0.0.1/gatehouse?sslmode=sometimes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			env := cleanEnv()
			for k, v := range map[string]string{
				"LISTEN": "127.0.0.1:0", "UPSTREAM": "http://127.0.0.1:9", "IMS_URL": "http://127.0.0.1:9",
				"STORE": tc.store, "COOKIE_SECURE": "false", "LOG_FORMAT": "json",
			} {
				env = append(env, "GATEHOUSE_"+k+"="+v)
			}
			code, stdout, stderr := runBinary(t, 30*time.Second, env, "serve")
			if code != 1 {
				t.Errorf("exit status %d, want 1; stderr:\n%s", code, stderr)
			}
			if !strings.Contains(stderr, "GATEHOUSE_STORE") {
				t.Errorf("stderr does not name GATEHOUSE_STORE:\n%s", stderr)
			}
			if strings.Contains(stderr+stdout, pw) {
				t.Errorf("output shows the password:\n%s%s", stdout, stderr)
			}
		})
	}
}
