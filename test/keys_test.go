package test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestCookieKeyRotation rotates and drops the cookie keys of a running
// `gatehouse serve` with `gatehouse keys`, run as separate processes on
// its store, and checks on the wire that serve follows without a restart:
// after rotate, old cookies still work and are re-signed when refreshed;
// after drop-old, a cookie only the old pair signed is refused and
// cleared, and every other one keeps working.
func TestCookieKeyRotation(t *testing.T) {
	t.Parallel()
	const ttl = 10 * time.Second // short, so that a refresh comes soon
	w := newWorld(t)
	p := w.start(t, map[string]string{
		"LOGIN_TOKEN_TTL":             ttl.String(),
		"COOKIE_KEYS_RELOAD_INTERVAL": "200ms",
	})
	keysEnv := append(cleanEnv(), "GATEHOUSE_STORE=sqlite:"+w.db)
	keys := func(args ...string) string {
		t.Helper()
		code, stdout, stderr := runBinary(t, 30*time.Second, keysEnv, append([]string{"keys"}, args...)...)
		if code != 0 {
			t.Fatalf("gatehouse keys %s: exit status %d; stderr:\n%s", strings.Join(args, " "), code, stderr)
		}
		return stdout
	}
	storedKeys := func() int {
		t.Helper()
		var rep struct {
			Keys []struct{ Fingerprint string } `json:"keys"`
		}
		if out := keys("list", "--json"); json.Unmarshal([]byte(out), &rep) != nil {
			t.Fatalf("gatehouse keys list --json: not JSON:\n%s", out)
		}
		return len(rep.Keys)
	}

	tokA := w.mint(t, alice, clientID)
	r := p.do(t, request{path: whoami, bearer: tokA})
	wantUser(t, r, alice)
	oldCookie := r.newCookie(t) // signed by the pair serve generated
	wantUser(t, p.do(t, request{path: whoami, cookie: oldCookie.value}), alice)
	if n := storedKeys(); n != 1 {
		t.Fatalf("%d keys stored after serve's first start, want 1", n)
	}

	if out := keys("rotate"); !strings.Contains(out, "rotated: ") {
		t.Fatalf("gatehouse keys rotate printed %q", out)
	}
	waitKeysChanged(t, p, 1)
	wantUser(t, p.do(t, request{path: whoami, cookie: oldCookie.value}), alice)
	r = p.do(t, request{path: whoami, bearer: w.mint(t, bob, clientID)})
	wantUser(t, r, bob)
	newCookie := r.newCookie(t) // signed by the new pair

	// Past half of its lifetime, the old cookie is refreshed: re-signed
	// with the new pair.
	sleepUntil(t, oldCookie.expires(t).Add(-ttl/2), ttl)
	r = p.do(t, request{path: whoami, cookie: oldCookie.value})
	wantUser(t, r, alice)
	refreshed := r.newCookie(t)
	if refreshed.value == oldCookie.value {
		t.Fatal("the refresh sent the old cookie value back")
	}

	if out := keys("drop-old"); !strings.Contains(out, "dropped 1 key") {
		t.Fatalf("gatehouse keys drop-old printed %q", out)
	}
	if n := storedKeys(); n != 1 {
		t.Fatalf("%d keys stored after drop-old, want 1", n)
	}
	// Within the pick-up interval (polled: generously bounded), the old
	// cookie is refused although serve had validated it many times.
	deadline := time.Now().Add(15 * time.Second)
	for {
		r = p.do(t, request{path: whoami, cookie: oldCookie.value})
		if r.status != http.StatusOK || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	wantAuthError(t, r, http.StatusUnauthorized, "invalid_token", "INVALID_TOKEN")
	r.wantClearedCookie(t)
	waitKeysChanged(t, p, 2)

	// Cookies the new pair signed keep working: issued after the rotation,
	// and refreshed after it.
	wantUser(t, p.do(t, request{path: whoami, cookie: newCookie.value}), bob)
	wantUser(t, p.do(t, request{path: whoami, cookie: refreshed.value}), alice)
	// The bearer the old cookie was issued for gets a working one, not the
	// old value again.
	r = p.do(t, request{path: whoami, bearer: tokA})
	wantUser(t, r, alice)
	again := r.newCookie(t)
	if again.value == oldCookie.value {
		t.Fatal("the bearer got the refused cookie again")
	}
	wantUser(t, p.do(t, request{path: whoami, cookie: again.value}), alice)
}

// waitKeysChanged waits until serve has logged n changes of its cookie
// keys, at most 15 s.
func waitKeysChanged(t *testing.T, p *proc, n int) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		seen := 0
		for _, l := range p.logs.lines(t) {
			if l.str("msg") == "cookie keys changed in the store; using them now" {
				seen++
			}
		}
		if seen >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve logged %d changes of its cookie keys within 15s, want %d; its output:\n%s", seen, n, p.logs)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
