package test

import (
	"context"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-proxy/gatehouse/auth/assertion"
)

const (
	assertionIssuer   = "https://assets.example.test"
	assertionAudience = "aem-author"
)

// fetchJWKS gets <prefix>jwks.json from the running binary, unauthenticated,
// as an upstream would.
func fetchJWKS(t *testing.T, p *proc) assertion.KeySet {
	t.Helper()
	res, err := http.Get(p.url + "/gatehouse/jwks.json")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if res.StatusCode != http.StatusOK || !strings.HasPrefix(res.Header.Get("Cache-Control"), "public, max-age=") {
		t.Fatalf("jwks.json: %d, Cache-Control %q: %s", res.StatusCode, res.Header.Get("Cache-Control"), b)
	}
	ks, err := assertion.ParseJWKS(b)
	if err != nil {
		t.Fatal(err)
	}
	return ks
}

// TestSignedIdentityAssertion runs the real binary with the assertion on
// and a backend that verifies it against the JWKS: the assertion the
// backend received verifies, says exactly who the user is (hostile group
// names included), is reused for the cookie request that follows, and a
// client's own never reaches the backend. A rotation with `gatehouse keys
// rotate` reaches the running serve without a restart: it signs with the
// new key, and the JWKS still lists the old one.
func TestSignedIdentityAssertion(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	addMallory(w.ims.Emulator)
	p := w.start(t, map[string]string{
		"PUBLIC_URL":                  assertionIssuer,
		"ASSERTION_AUDIENCE":          assertionAudience,
		"COOKIE_KEYS_RELOAD_INTERVAL": "200ms",
	})
	w.backend.RequireAssertion(&assertion.Verifier{
		JWKSURL: p.url + "/gatehouse/jwks.json", Issuer: assertionIssuer, Audience: assertionAudience,
		MinRefetch: time.Nanosecond,
	})
	verify := func(tok string) *assertion.Claims {
		t.Helper()
		c, err := assertion.Verify(fetchJWKS(t, p), tok, assertionIssuer, assertionAudience, time.Now(), 30*time.Second)
		if err != nil {
			t.Fatalf("the assertion the backend received does not verify: %v", err)
		}
		return c
	}

	// A bearer sign-in: the backend verified the assertion (it answers
	// 401 otherwise), and so does the test, independently.
	r := p.do(t, request{path: whoami, bearer: w.mint(t, mallory, clientID),
		header: http.Header{"X-Gatehouse-Assertion": {"forged"}}})
	wantUser(t, r, mallory)
	first := w.lastSeen(t).Assertion
	c := verify(first)
	if c.Subject != mallory.id || c.Email != mallory.email || !slices.Equal(c.Groups, mallory.groups) {
		t.Errorf("claims sub %q email %q groups %q, want %q %q %q", c.Subject, c.Email, c.Groups, mallory.id, mallory.email, mallory.groups)
	}
	if got := w.rec.last(t).Values("X-Gatehouse-Assertion"); len(got) != 1 {
		t.Fatalf("backend got %d assertion headers", len(got))
	}

	// The cookie request that follows gets the cached assertion, and a
	// client's own (any spelling) never reaches the backend.
	cookie := r.newCookie(t).value
	r = p.do(t, request{path: whoami, cookie: cookie, header: http.Header{"X_Gatehouse_Assertion": {"forged"}}})
	wantUser(t, r, mallory)
	if got := w.rec.last(t); got.Get("X-Gatehouse-Assertion") != first || got.Get("X_Gatehouse_Assertion") != "" {
		t.Errorf("cookie request: backend got assertion %q (and %q), want the cached %q", got.Get("X-Gatehouse-Assertion"), got.Get("X_Gatehouse_Assertion"), first)
	}

	// The backend does check: plain headers without Gatehouse's
	// assertion are refused.
	req, _ := http.NewRequestWithContext(context.Background(), "GET", w.upstream+whoami, nil)
	req.Header.Set("X-Forwarded-User", mallory.id)
	req.Header.Set("X-Gatehouse-Assertion", first[:len(first)-4]+"AAAA")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("backend took a forged assertion: %d", res.StatusCode)
	}

	// Rotation, through the store, with serve running.
	oldKids := kidsOf(fetchJWKS(t, p))
	code, _, stderr := runBinary(t, 30*time.Second, append(cleanEnv(), "GATEHOUSE_STORE=sqlite:"+w.db), "keys", "rotate")
	if code != 0 {
		t.Fatalf("gatehouse keys rotate: exit %d: %s", code, stderr)
	}
	deadline := time.Now().Add(15 * time.Second)
	for len(kidsOf(fetchJWKS(t, p))) != 2 {
		if time.Now().After(deadline) {
			t.Fatalf("serve did not pick up the rotated assertion key within 15s; output:\n%s", p.logs)
		}
		time.Sleep(50 * time.Millisecond)
	}
	wantUser(t, p.do(t, request{path: whoami, cookie: cookie}), mallory)
	rotated := w.lastSeen(t).Assertion
	if rotated == first {
		t.Fatal("still the assertion signed with the old key")
	}
	verify(rotated)
	verify(first) // the old key is still published
	if kids := kidsOf(fetchJWKS(t, p)); !slices.Contains(kids, oldKids[0]) {
		t.Errorf("JWKS %v lost the old key %s", kids, oldKids[0])
	}
}

func kidsOf(ks assertion.KeySet) []string {
	var kids []string
	for k := range ks {
		kids = append(kids, k)
	}
	slices.Sort(kids)
	return kids
}
