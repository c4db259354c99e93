package test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-proxy/gatehouse/auth/ims"
	"github.com/gatehouse-proxy/gatehouse/session/postgres/pgtest"
)

// TestRevocationSpreads runs three `gatehouse serve` processes over one
// PostgreSQL schema with a session cache TTL of 5 minutes and a cookie-key
// poll of an hour, so that only a change notification can explain a
// replica refusing a cookie within seconds: a logout on A reaches B and
// C, and so do a sync on A that changes a user's groups, and `gatehouse
// keys rotate` and `drop-old`. The times are
// printed; the bounds are generous (the aim is under a second).
func TestRevocationSpreads(t *testing.T) {
	t.Parallel()
	url := pgtest.URL(t)
	w := newWorld(t)
	env := map[string]string{"STORE": url, "COOKIE_KEYS": unset, "SYNC_INTERVAL": "1s",
		"SESSION_CACHE_TTL": "5m", "COOKIE_KEYS_RELOAD_INTERVAL": "1h"}
	a := w.start(t, env)
	b := w.start(t, env)
	c := w.start(t, env)
	replicas := []*proc{a, b, c}
	for _, p := range replicas {
		waitLogged(t, p, listening, 1)
	}

	// signIn signs u in on A and has every replica validate (and cache)
	// the cookie.
	signIn := func(u imsUser) *setCookie {
		t.Helper()
		r := a.do(t, request{path: whoami, bearer: w.mint(t, u, clientID)})
		wantUser(t, r, u)
		cookie := r.newCookie(t)
		for _, p := range replicas {
			wantUser(t, p.do(t, request{path: whoami, cookie: cookie.value}), u)
		}
		return cookie
	}
	refusedEverywhere := func(cookie *setCookie, since time.Time, reason string) time.Duration {
		t.Helper()
		refusals, last := refusedEverywhere(t, replicas, cookie.value, since)
		for _, r := range refusals {
			wantAuthError(t, r, http.StatusUnauthorized, "invalid_token", reason)
		}
		return last
	}

	// Timed from the logout request's start: the figure includes the
	// logout itself.
	cookie := signIn(alice)
	loggingOut := time.Now()
	r := a.do(t, request{method: http.MethodPost, path: "/gatehouse/logout", cookie: cookie.value})
	answered := time.Since(loggingOut).Round(time.Millisecond)
	wantStatus(t, r, http.StatusOK)
	t.Logf("logout on A (answered in %s) refused by A, B and C within %s of its start (session cache TTL 5m)",
		answered, refusedEverywhere(cookie, loggingOut, "INVALID_TOKEN").Round(time.Millisecond))

	// A sync on A that changes Alice's groups: B and C see the new groups
	// behind the cookie they cached.
	tok := w.mint(t, alice, clientID)
	r = a.do(t, request{path: whoami, bearer: tok})
	synced := time.Now()
	wantUser(t, r, alice)
	cookie = r.newCookie(t)
	for _, p := range replicas {
		wantUser(t, p.do(t, request{path: whoami, cookie: cookie.value}), alice)
	}
	if err := w.ims.SetGroups(alice.id, orgID, []ims.Group{
		{GroupName: "AEM-Authors", Ident: "4711", Role: "TEAM_MEMBER"},
		{GroupName: "Marketing", Ident: "4713", Role: "TEAM_MEMBER"},
	}); err != nil {
		t.Fatal(err)
	}
	sleepUntil(t, synced.Add(1200*time.Millisecond), 2*time.Second) // the sync is due
	changed := alice
	changed.groups = []string{"Marketing", "dam-users"}
	resync := time.Now()
	wantUser(t, a.do(t, request{path: whoami, bearer: tok}), changed)
	for _, p := range replicas {
		for {
			r := p.do(t, request{path: whoami, cookie: cookie.value})
			wantStatus(t, r, http.StatusOK)
			if u := r.currentUser(t); strings.Join(u.Groups, ",") == "Marketing,dam-users" {
				break
			}
			wantUser(t, r, alice)
			if time.Since(resync) > 5*time.Second {
				t.Fatalf("a replica still serves the old groups %s later", time.Since(resync).Round(time.Millisecond))
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	t.Logf("group change synced on A seen by A, B and C within %s of the sync request's start", time.Since(resync).Round(time.Millisecond))

	// Keys: a cookie signed with the first pair works everywhere after
	// the rotation, and nowhere once that pair is dropped.
	old := signIn(bob)
	keysEnv := append(cleanEnv(), "GATEHOUSE_STORE="+url)
	keys := func(args ...string) time.Time {
		t.Helper()
		code, _, stderr := runBinary(t, 30*time.Second, keysEnv, append([]string{"keys"}, args...)...)
		if code != 0 {
			t.Fatalf("gatehouse keys %s: exit status %d; stderr:\n%s", strings.Join(args, " "), code, stderr)
		}
		return time.Now()
	}
	rotated := keys("rotate")
	for _, p := range replicas {
		waitLogged(t, p, "cookie keys changed in the store; using them now", 1)
	}
	// Logged lines reach the test up to 100 ms late (serve buffers them).
	t.Logf("keys rotate logged as picked up by A, B and C within %s of the command's exit (poll interval 1h)",
		time.Since(rotated).Round(time.Millisecond))
	for _, p := range replicas {
		wantUser(t, p.do(t, request{path: whoami, cookie: old.value}), bob)
	}
	dropped := keys("drop-old")
	t.Logf("keys drop-old: a cookie of the dropped pair refused by A, B and C within %s of the command's exit (poll interval 1h)",
		refusedEverywhere(old, dropped, "INVALID_TOKEN").Round(time.Millisecond))
}

// refusedEverywhere polls every replica every 20 ms until each has
// refused the cookie (answered anything but 200),
// at most 5 s after since. It returns the refusals, one per replica, and
// how long after since the last came.
func refusedEverywhere(t *testing.T, replicas []*proc, cookie string, since time.Time) ([]*response, time.Duration) {
	t.Helper()
	var (
		refusals []*response
		last     time.Duration
	)
	for _, p := range replicas {
		for {
			r := p.do(t, request{path: whoami, cookie: cookie})
			if r.status != http.StatusOK {
				refusals = append(refusals, r)
				last = time.Since(since)
				break
			}
			if time.Since(since) > 5*time.Second {
				t.Fatalf("a replica still accepts the cookie %s later", time.Since(since).Round(time.Millisecond))
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return refusals, last
}

// listening is what a replica logs each time it starts listening for
// change notifications; it empties its session cache then.
const listening = "listening for change notifications; session cache emptied, since changes made meanwhile are unknown"

// waitLogged waits until p has logged msg n times, at most 10 s.
func waitLogged(t *testing.T, p *proc, msg string, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		seen := countLogged(t, p, msg)
		if seen >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%q logged %d times within 10s, want %d; the output:\n%s", msg, seen, n, p.logs)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// countLogged is how many times p has logged msg so far.
func countLogged(t *testing.T, p *proc, msg string) int {
	t.Helper()
	n := 0
	for _, l := range p.logs.lines(t) {
		if l.str("msg") == msg {
			n++
		}
	}
	return n
}
