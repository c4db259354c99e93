package bearer_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gatehouse-proxy/gatehouse/auth"
	"github.com/gatehouse-proxy/gatehouse/auth/bearer"
)

// FuzzExtract runs bearer.Extract over arbitrary Authorization headers
// (none, one or two): it never panics; it returns a token of RFC 6750's
// b64token syntax within MaxTokenSize, taken from the header as sent, or
// ErrNoCredentials for no header, or a client error (400 or 401), never a
// server error.
func FuzzExtract(f *testing.F) {
	for _, s := range []struct {
		first, second string
		n             uint8
	}{
		{"Bearer eyJhbGciOiJSUzI1NiJ9.eyJ0eXBlIjoiYWNjZXNzX3Rva2VuIn0.c2ln", "", 1},
		{"bearer abc==", "", 1},
		{"  BEARER   abc  ", "", 1},
		{"Basic dXNlcjpwYXNz", "", 1},
		{"Bearer", "", 1},
		{"Bearer a=b", "", 1},
		{"Bearer a b", "", 1},
		{"Bearer \x00", "", 1},
		{"Bearer abc", "Bearer def", 2},
		{"", "", 0},
		{"Bearer " + strings.Repeat("A", bearer.MaxTokenSize+1), "", 1},
	} {
		f.Add(s.first, s.second, s.n)
	}
	f.Fuzz(func(t *testing.T, first, second string, n uint8) {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		switch n % 3 {
		case 1:
			r.Header["Authorization"] = []string{first}
		case 2:
			r.Header["Authorization"] = []string{first, second}
		}
		token, err := bearer.Extract(r)
		if err != nil {
			if token != "" {
				t.Fatalf("token %q returned with error %v", token, err)
			}
			if n%3 == 0 {
				if !errors.Is(err, auth.ErrNoCredentials) {
					t.Fatalf("no header: %v, want ErrNoCredentials", err)
				}
				return
			}
			var ae *auth.Error
			if !errors.As(err, &ae) || (ae.Status != http.StatusBadRequest && ae.Status != http.StatusUnauthorized) || ae.Reason == "" {
				t.Fatalf("error %v: want an *auth.Error of 400 or 401 with a reason", err)
			}
			return
		}
		if n%3 != 1 {
			t.Fatalf("token %q from %d headers", token, n%3)
		}
		if token == "" || len(token) > bearer.MaxTokenSize || !strings.Contains(first, token) {
			t.Fatalf("token %q from header %q", token, first)
		}
		body := strings.TrimRight(token, "=")
		if body == "" || strings.ContainsFunc(body, func(c rune) bool {
			return !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.ContainsRune("-._~+/", c))
		}) {
			t.Fatalf("token %q is not a b64token", token)
		}
		scheme, _, _ := strings.Cut(strings.TrimSpace(first), " ")
		if !strings.EqualFold(scheme, "Bearer") {
			t.Fatalf("token %q taken from scheme %q", token, scheme)
		}
	})
}
