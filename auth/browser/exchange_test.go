package browser

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/gatehouse-proxy/gatehouse/session"
)

// TestExchangeAnswers: the token endpoint's answer is read as leniently as
// every IMS answer (members Gatehouse does not use, of any type, never
// fail a sign-in) and its failures are sorted by what the person can do.
func TestExchangeAnswers(t *testing.T) {
	for _, tc := range []struct {
		name   string
		status int
		body   string
		want   error // nil: the token
	}{
		{"variant shapes", 200, `{"access_token":"tok","token_type":"bearer","expires_in":"86399","error_description":5,` +
			`"refresh_token":12,"id_token":null,"scope":["openid"]}`, nil},
		{"no token_type", 200, `{"access_token":"tok","expires_in":86399}`, nil},
		{"not a bearer", 200, `{"access_token":"tok","token_type":"mac","expires_in":86399}`, errMisconfigured},
		{"no access token", 200, `{"token_type":"bearer","expires_in":86399}`, errMisconfigured},
		{"not JSON", 200, `<html>`, errMisconfigured},
		{"code used or expired", 400, `{"error":"invalid_grant","error_description":"code expired"}`, errCodeRefused},
		{"client refused", 401, `{"error":"invalid_client"}`, errMisconfigured},
		{"rate limited", 429, ``, errIMSUnavailable},
		{"down", 503, `oops`, errIMSUnavailable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(tc.status)
				_, _ = w.Write([]byte(tc.body))
			}))
			defer srv.Close()
			k, err := session.GenerateKeyPair()
			if err != nil {
				t.Fatal(err)
			}
			h, err := New(Config{IMSURL: srv.URL, ClientID: testClient, PublicURL: testPublic, Keys: []session.KeyPair{k},
				SignIn:  func(http.ResponseWriter, *http.Request, string) error { return nil },
				SignOut: func(http.ResponseWriter, *http.Request) error { return nil }})
			if err != nil {
				t.Fatal(err)
			}
			tok, err := h.exchange(context.Background(), "code", "verifier")
			switch {
			case tc.want == nil && (err != nil || tok != "tok"):
				t.Fatalf("exchange = %q, %v; want the token", tok, err)
			case tc.want != nil && !errors.Is(err, tc.want):
				t.Fatalf("exchange = %q, %v; want %v", tok, err, tc.want)
			}
		})
	}
}
