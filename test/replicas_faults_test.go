package test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-proxy/gatehouse/session"
	"github.com/gatehouse-proxy/gatehouse/session/postgres"
	"github.com/gatehouse-proxy/gatehouse/session/postgres/pgtest"
)

// TestReplicaFaults runs three `gatehouse serve` processes over one
// PostgreSQL schema, with a session cache TTL of 5 minutes so that only a
// change notification can explain a replica refusing a cookie within
// seconds, and checks: a user disabled by `gatehouse users disable` (a
// process of its own) is refused by all three; one new user signing in on
// all three at once, several times on each, ends as one user with one
// copy of each membership; a replica killed with SIGKILL leaves the other
// two working, and one started again on the same schema works too.
func TestReplicaFaults(t *testing.T) {
	t.Parallel()
	url := pgtest.URL(t)
	w := newWorld(t)
	env := map[string]string{"STORE": url, "COOKIE_KEYS": unset, "SESSION_CACHE_TTL": "5m"}
	replicas := []*proc{w.start(t, env), w.start(t, env), w.start(t, env)}
	for _, p := range replicas {
		waitLogged(t, p, listening, 1)
	}
	admin := append(cleanEnv(), "GATEHOUSE_STORE="+url)

	t.Run("users disable", func(t *testing.T) {
		r := replicas[0].do(t, request{path: whoami, bearer: w.mint(t, alice, clientID)})
		wantUser(t, r, alice)
		cookie := r.newCookie(t).value
		for _, p := range replicas { // cached everywhere
			wantUser(t, p.do(t, request{path: whoami, cookie: cookie}), alice)
		}
		start := time.Now()
		if code, _, stderr := runBinary(t, 30*time.Second, admin, "users", "disable", alice.email); code != 0 {
			t.Fatalf("gatehouse users disable: exit status %d; stderr:\n%s", code, stderr)
		}
		exited := time.Now()
		refusals, last := refusedEverywhere(t, replicas, cookie, exited)
		for _, r := range refusals {
			if r.status != http.StatusUnauthorized && r.status != http.StatusForbidden {
				t.Errorf("the disabled user's cookie: %s, want 401 (token revoked) or 403", r)
			}
		}
		t.Logf("users disable (ran %s) refused by A, B and C within %s of its exit (session cache TTL 5m)",
			exited.Sub(start).Round(time.Millisecond), last.Round(time.Millisecond))
		for _, p := range replicas {
			wantAuthError(t, p.do(t, request{path: whoami, bearer: w.mint(t, alice, clientID)}), http.StatusForbidden, "", "USER_DISABLED")
		}
	})

	t.Run("concurrent first sign-in", func(t *testing.T) {
		const perReplica = 4
		carol := newBurstUser(w.ims.Emulator, 0)
		type answer struct {
			status int
			body   string
			err    error
		}
		var (
			wg      sync.WaitGroup
			begin   = make(chan struct{})
			answers = make(chan answer, len(replicas)*perReplica)
		)
		for _, p := range replicas {
			for range perReplica {
				// A token each: no replica can fold two sign-ins into one.
				tok := w.mint(t, carol, clientID)
				wg.Go(func() {
					<-begin
					req, _ := http.NewRequest(http.MethodGet, p.url+whoami, nil)
					req.Header.Set("Authorization", "Bearer "+tok)
					resp, err := p.client.Do(req)
					if err != nil {
						answers <- answer{err: err}
						return
					}
					defer resp.Body.Close()
					body, err := io.ReadAll(resp.Body)
					answers <- answer{resp.StatusCode, string(body), err}
				})
			}
		}
		close(begin)
		wg.Wait()
		close(answers)
		for a := range answers {
			if a.err != nil || a.status != http.StatusOK || !strings.Contains(a.body, carol.id) {
				t.Errorf("a concurrent first sign-in: %d %v %s", a.status, a.err, a.body)
			}
		}

		st := openPostgres(t, url)
		users, err := st.FindUsersByEmail(t.Context(), carol.email)
		if err != nil {
			t.Fatal(err)
		}
		if len(users) != 1 {
			t.Fatalf("%d users with the e-mail %s, want 1", len(users), carol.email)
		}
		u := users[0]
		want := []session.Membership{{Group: "administrators", Source: session.SourceIMS}, {Group: "dam-users", Source: session.SourceIMS}}
		if u.ID != carol.id || !slices.Equal(u.Memberships, want) || !slices.Equal(u.Orgs, []string{orgID}) {
			t.Errorf("the user: id %q memberships %v orgs %v; want %q %v %v", u.ID, u.Memberships, u.Orgs, carol.id, want, []string{orgID})
		}
		toks, err := st.ListLoginTokens(t.Context(), carol.id)
		if err != nil {
			t.Fatal(err)
		}
		if len(toks) != len(replicas)*perReplica {
			t.Errorf("%d login tokens, want one per sign-in (%d)", len(toks), len(replicas)*perReplica)
		}
	})

	t.Run("SIGKILL", func(t *testing.T) {
		r := replicas[0].do(t, request{path: whoami, bearer: w.mint(t, bob, clientID)})
		wantUser(t, r, bob)
		cookie := r.newCookie(t).value
		for _, p := range replicas {
			wantUser(t, p.do(t, request{path: whoami, cookie: cookie}), bob)
		}
		replicas[2].kill(t)
		// The other two carry on: the cookie, a new sign-in on one, its
		// cookie on the other, and a logout that reaches both.
		for i, p := range replicas[:2] {
			wantUser(t, p.do(t, request{path: whoami, cookie: cookie}), bob)
			r := p.do(t, request{path: whoami, bearer: w.mint(t, bob, clientID)})
			wantUser(t, r, bob)
			wantUser(t, replicas[1-i].do(t, request{path: whoami, cookie: r.newCookie(t).value}), bob)
		}
		// Started again on the same schema, it serves the cookie issued
		// before the kill, and signs in.
		c := w.start(t, env)
		wantUser(t, c.do(t, request{path: whoami, cookie: cookie}), bob)
		r = c.do(t, request{path: whoami, bearer: w.mint(t, bob, clientID2)})
		wantUser(t, r, bob)
		fresh := r.newCookie(t).value
		for _, p := range replicas[:2] {
			wantUser(t, p.do(t, request{path: whoami, cookie: fresh}), bob)
		}
		loggingOut := time.Now()
		wantStatus(t, c.do(t, request{method: http.MethodPost, path: "/gatehouse/logout", cookie: fresh}), http.StatusOK)
		refusals, last := refusedEverywhere(t, []*proc{replicas[0], replicas[1], c}, fresh, loggingOut)
		for _, r := range refusals {
			wantAuthError(t, r, http.StatusUnauthorized, "invalid_token", "INVALID_TOKEN")
		}
		t.Logf("logout on the restarted replica refused by all three within %s", last.Round(time.Millisecond))
	})
}

// openPostgres opens the PostgreSQL store at url beside the running
// replicas, for checks of what they wrote.
func openPostgres(t *testing.T, url string) *postgres.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := postgres.Open(ctx, url)
	if err != nil {
		t.Fatal(fmt.Errorf("open the replicas' store: %w", err))
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}
