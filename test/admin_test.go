package test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-proxy/gatehouse/session/postgres/pgtest"
)

// adminBound is how long a running serve may take to notice a change made
// in the store by `gatehouse users` or `gatehouse tokens`. It runs with
// GATEHOUSE_SESSION_CACHE_TTL=1s; the bound is generous, not a timing
// claim.
const adminBound = 15 * time.Second

// TestAdminCommands runs `gatehouse users` and `gatehouse tokens` as
// separate processes on the store of a running serve, SQLite and
// PostgreSQL alike, and checks what the serving side makes of each
// change: a disabled user's new bearer is refused at once with 403
// USER_DISABLED and their cookie within the cache TTL; enabled, they sign
// in again at once; revoked tokens' cookies are refused within the TTL; a
// resync makes the next bearer request call IMS for the profile again.
func TestAdminCommands(t *testing.T) {
	stores := []struct {
		name  string
		store func(t *testing.T, w *world) string // GATEHOUSE_STORE
	}{
		{"sqlite", func(t *testing.T, w *world) string { return "sqlite:" + w.db }},
		{"postgres", func(t *testing.T, w *world) string { return pgtest.URL(t) }}, // a fresh schema
	}
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			w := newWorld(t)
			store := st.store(t, w)
			testAdminCommands(t, w, store)
		})
	}
}

func testAdminCommands(t *testing.T, w *world, store string) {
	p := w.start(t, map[string]string{"STORE": store, "SESSION_CACHE_TTL": "1s"})
	env := append(cleanEnv(), "GATEHOUSE_STORE="+store)
	admin := func(t *testing.T, wantCode int, args ...string) string {
		t.Helper()
		code, stdout, stderr := runBinary(t, 30*time.Second, env, args...)
		if code != wantCode {
			t.Fatalf("gatehouse %s: exit status %d, want %d; stdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, wantCode, stdout, stderr)
		}
		if wantCode != 0 && strings.TrimSpace(stderr) == "" {
			t.Errorf("gatehouse %s failed without a word on stderr", strings.Join(args, " "))
		}
		return stdout
	}
	// signIn signs u in with a new bearer token and returns the cookie.
	signIn := func(t *testing.T, u imsUser) string {
		t.Helper()
		r := p.do(t, request{path: whoami, bearer: w.mint(t, u, clientID)})
		wantUser(t, r, u)
		c := r.newCookie(t).value
		wantUser(t, p.do(t, request{path: whoami, cookie: c}), u) // now in the session cache
		return c
	}
	// refusedWithin polls with the cookie until it is refused, and returns
	// the refusal.
	refusedWithin := func(t *testing.T, what, cookie string) *response {
		t.Helper()
		start := time.Now()
		for {
			r := p.do(t, request{path: whoami, cookie: cookie})
			if r.status != http.StatusOK {
				t.Logf("%s: cookie refused after %s", what, time.Since(start).Round(time.Millisecond))
				return r
			}
			if time.Since(start) > adminBound {
				t.Fatalf("%s: the cookie is still accepted after %s", what, adminBound)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	cookie := signIn(t, alice)
	var list struct {
		Users []struct {
			ID          string `json:"id"`
			LoginTokens int    `json:"login_tokens"`
		} `json:"users"`
	}
	if err := json.Unmarshal([]byte(admin(t, 0, "users", "list", "--json")), &list); err != nil {
		t.Fatal(err)
	}
	if len(list.Users) != 1 || list.Users[0].ID != alice.id || list.Users[0].LoginTokens != 1 {
		t.Fatalf("users list: %+v, want alice with one login token", list.Users)
	}
	if out := admin(t, 0, "users", "show", alice.email); !strings.Contains(out, "dam-users") || !strings.Contains(out, "login tokens (1)") {
		t.Errorf("users show:\n%s", out)
	}
	admin(t, 1, "users", "show", "nobody@example.com")
	admin(t, 2, "users", "frobnicate")

	t.Run("disable", func(t *testing.T) {
		admin(t, 0, "users", "disable", alice.email)
		r := p.do(t, request{path: whoami, bearer: w.mint(t, alice, clientID)})
		wantAuthError(t, r, http.StatusForbidden, "", "USER_DISABLED")
		r.wantNoNewCookie(t)
		r = refusedWithin(t, "disable", cookie)
		if r.status != http.StatusUnauthorized && r.status != http.StatusForbidden {
			t.Errorf("the disabled user's cookie: %s, want 401 (token revoked) or 403", r)
		}
		// Still refused, however the client tries.
		wantAuthError(t, p.do(t, request{path: whoami, bearer: w.mint(t, alice, clientID2)}), http.StatusForbidden, "", "USER_DISABLED")
		wantUser(t, p.do(t, request{path: whoami, bearer: w.mint(t, bob, clientID)}), bob)
	})

	t.Run("enable", func(t *testing.T) {
		admin(t, 0, "users", "enable", alice.id)
		cookie = signIn(t, alice) // at once: a disabled user is never cached
	})

	t.Run("tokens revoke --user", func(t *testing.T) {
		if out := admin(t, 0, "tokens", "revoke", "--user", alice.id); !strings.Contains(out, "revoked 1 login token") {
			t.Errorf("tokens revoke: %s", out)
		}
		r := refusedWithin(t, "tokens revoke --user", cookie)
		wantAuthError(t, r, http.StatusUnauthorized, "invalid_token", "INVALID_TOKEN")
		signIn(t, alice) // not disabled: signs in again
	})

	t.Run("users resync", func(t *testing.T) {
		bearer := w.mint(t, bob, clientID)
		wantUser(t, p.do(t, request{path: whoami, bearer: bearer}), bob)
		before := w.calls()
		admin(t, 0, "users", "resync", bob.email)
		start := time.Now()
		for w.calls().profile == before.profile {
			if time.Since(start) > adminBound {
				t.Fatalf("no IMS profile call within %s of the resync", adminBound)
			}
			time.Sleep(50 * time.Millisecond)
			wantUser(t, p.do(t, request{path: whoami, bearer: bearer}), bob)
		}
		t.Logf("resync: IMS profile called again after %s", time.Since(start).Round(time.Millisecond))
		if out := admin(t, 0, "users", "show", bob.id); strings.Contains(out, "resync pending") {
			t.Errorf("after the sign-in the resync is still pending:\n%s", out)
		}
	})
}
