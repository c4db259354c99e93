package aem

import (
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gatehouse-proxy/gatehouse/auth"
	"github.com/gatehouse-proxy/gatehouse/auth/assertion"
)

// TestRequireAssertion: with RequireAssertion the backend serves only
// requests whose assertion verifies and matches the identity headers.
func TestRequireAssertion(t *testing.T) {
	k, err := assertion.GenerateKey(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	is, err := assertion.New(assertion.Config{Issuer: "https://g.example", Audience: "aem"}, []assertion.Key{k})
	if err != nil {
		t.Fatal(err)
	}
	jwks := httptest.NewServer(is.JWKS())
	defer jwks.Close()
	b := New(nil)
	b.RequireAssertion(&assertion.Verifier{JWKSURL: jwks.URL, Issuer: "https://g.example", Audience: "aem"})
	good := is.Assertion(&auth.Identity{UserID: alice.id, Email: alice.email, Groups: []string{"authors", "dam-users"}})
	bobs := is.Assertion(&auth.Identity{UserID: bob.id, Email: bob.email})
	tests := []struct {
		name   string
		header []string
		status int
	}{
		{"valid", []string{assertion.Header, good}, 200},
		{"none", nil, 401},
		{"another user's", []string{assertion.Header, bobs}, 401},
		{"forged", []string{assertion.Header, good[:len(good)-4] + "AAAA"}, 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := do(t, b, alice, "GET", "/libs/granite/security/currentuser.json", nil, tt.header...)
			if rec.Code != tt.status {
				t.Fatalf("status %d, want %d: %s", rec.Code, tt.status, rec.Body)
			}
		})
	}
	b.RequireAssertion(nil)
	if rec := do(t, b, alice, "GET", "/libs/granite/security/currentuser.json", nil); rec.Code != 200 {
		t.Fatalf("check off: status %d", rec.Code)
	}
}
