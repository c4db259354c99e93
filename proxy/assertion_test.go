package proxy

import (
	"io"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/gatehouse-proxy/gatehouse/auth"
	"github.com/gatehouse-proxy/gatehouse/auth/assertion"
)

const (
	testIssuer   = "https://gatehouse.example"
	testAudience = "aem-author"
)

// newAssertionHarness is a harness whose Gatehouse signs assertions with a
// real Issuer (assert true) or none.
func newAssertionHarness(t *testing.T, assert bool) *harness {
	t.Helper()
	if !assert {
		return newHarness(t, nil, nil)
	}
	k, err := assertion.GenerateKey(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	is, err := assertion.New(assertion.Config{Issuer: testIssuer, Audience: testAudience}, []assertion.Key{k})
	if err != nil {
		t.Fatal(err)
	}
	return newHarness(t, nil, func(c *Config) { c.Assertion, c.JWKS = is.Assertion, is.JWKS() })
}

// jwks fetches the key set through Gatehouse, as an upstream would.
func (h *harness) jwks(t *testing.T) assertion.KeySet {
	t.Helper()
	res, err := http.Get(h.server.URL + "/gatehouse/jwks.json")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("jwks.json: status %d, body %q", res.StatusCode, b)
	}
	if cc := res.Header.Get("Cache-Control"); cc != "public, max-age=60" {
		t.Errorf("jwks.json Cache-Control %q", cc)
	}
	ks, err := assertion.ParseJWKS(b)
	if err != nil {
		t.Fatal(err)
	}
	return ks
}

func TestHeaderAssertionName(t *testing.T) {
	if HeaderAssertion != assertion.Header {
		t.Fatalf("proxy sends %q, package assertion documents %q", HeaderAssertion, assertion.Header)
	}
}

// TestAssertionForwarded: with the assertion on, the upstream gets one
// that verifies against the JWKS Gatehouse serves and says exactly who the
// user is; a client-sent one never reaches it, whatever its spelling, with
// the assertion on or off.
func TestAssertionForwarded(t *testing.T) {
	spoofed := map[string][]string{
		"X-Gatehouse-Assertion": {"eyJhbGciOiJub25lIn0.eyJzdWIiOiJhZG1pbiJ9."},
		"X_Gatehouse_Assertion": {"forged"},
	}
	tests := []struct {
		name   string
		assert bool
		header map[string][]string
	}{
		{"on", true, nil},
		{"on, client sends its own", true, spoofed},
		{"off, client sends its own", false, spoofed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newAssertionHarness(t, tt.assert)
			req := h.newRequest(t, "GET", "/content/dam.json", nil)
			req.Header.Set("Authorization", "Bearer good")
			for k, v := range tt.header {
				req.Header[k] = v
			}
			res, body := h.do(t, req)
			if res.StatusCode != 200 {
				t.Fatalf("status %d: %s", res.StatusCode, body)
			}
			seen := h.upstream.last(t)
			var got []string
			for k, v := range seen.Header {
				if identityLike(k) && !slices.Contains([]string{HeaderUser, HeaderEmail, HeaderGroups}, k) {
					got = append(got, v...)
					if k != HeaderAssertion || len(v) != 1 {
						t.Errorf("upstream got %s: %q", k, v)
					}
				}
			}
			if !tt.assert {
				if len(got) != 0 {
					t.Fatalf("assertion off, upstream got %q", got)
				}
				if res, _ := http.Get(h.server.URL + "/gatehouse/jwks.json"); res.StatusCode != 404 {
					t.Errorf("assertion off: jwks.json status %d, want 404", res.StatusCode)
				}
				return
			}
			if len(got) != 1 {
				t.Fatalf("upstream got assertions %q, want one", got)
			}
			c, err := assertion.Verify(h.jwks(t), got[0], testIssuer, testAudience, time.Now(), 0)
			if err != nil {
				t.Fatalf("upstream's assertion does not verify: %v", err)
			}
			if c.Subject != testUser.UserID || c.Email != testUser.Email || !slices.Equal(c.Groups, testUser.Groups) {
				t.Errorf("claims sub %q email %q groups %q, want the test user", c.Subject, c.Email, c.Groups)
			}
		})
	}
}

// TestAssertionForwardAuth: forward-auth's 200 carries the same assertion
// a proxied request would; a refusal carries none.
func TestAssertionForwardAuth(t *testing.T) {
	tests := []struct {
		name   string
		header map[string][]string
		status int
	}{
		{"signed in", map[string][]string{"Authorization": {"Bearer good"}, "X-Gatehouse-Assertion": {"forged"}}, 200},
		{"refused", map[string][]string{"X-Gatehouse-Assertion": {"forged"}}, 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newAssertionHarness(t, true)
			req := h.newRequest(t, "GET", "/gatehouse/auth", nil)
			for k, v := range tt.header {
				req.Header[k] = v
			}
			res, body := h.do(t, req)
			if res.StatusCode != tt.status {
				t.Fatalf("status %d, want %d: %s", res.StatusCode, tt.status, body)
			}
			got := res.Header.Values(HeaderAssertion)
			if tt.status != 200 {
				if len(got) != 0 {
					t.Fatalf("refusal carries assertion %q", got)
				}
				return
			}
			if len(got) != 1 {
				t.Fatalf("assertions %q, want one", got)
			}
			c, err := assertion.Verify(h.jwks(t), got[0], testIssuer, testAudience, time.Now(), 0)
			if err != nil {
				t.Fatal(err)
			}
			if c.Subject != testUser.UserID {
				t.Errorf("sub %q", c.Subject)
			}
		})
	}
}

// TestAssertionEmptyNotSent: an Assertion that fails ("") sends no header
// rather than an empty one.
func TestAssertionEmptyNotSent(t *testing.T) {
	h := newHarness(t, nil, func(c *Config) { c.Assertion = func(*auth.Identity) string { return "" } })
	req := h.newRequest(t, "GET", "/x", nil)
	req.Header.Set("Authorization", "Bearer good")
	req.Header.Set(HeaderAssertion, "forged")
	if res, body := h.do(t, req); res.StatusCode != 200 {
		t.Fatalf("status %d: %s", res.StatusCode, body)
	}
	if v, ok := h.upstream.last(t).Header[HeaderAssertion]; ok {
		t.Fatalf("upstream got %q", v)
	}
}

// TestJWKSEndpoint: public, GET and HEAD only, never proxied.
func TestJWKSEndpoint(t *testing.T) {
	h := newAssertionHarness(t, true)
	for _, tt := range []struct {
		method string
		status int
	}{{"GET", 200}, {"HEAD", 200}, {"POST", 405}} {
		req := h.newRequest(t, tt.method, "/gatehouse/jwks.json", nil)
		res, body := h.do(t, req)
		if res.StatusCode != tt.status {
			t.Errorf("%s: status %d, want %d (%s)", tt.method, res.StatusCode, tt.status, body)
		}
	}
	if n := h.upstream.hits.Load(); n != 0 {
		t.Errorf("upstream hit %d times", n)
	}
	if len(h.jwks(t)) != 1 {
		t.Error("want one key")
	}
}
