package ims

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
)

const (
	techClient = "gatehouse-integration"
	techSecret = "p8e-SECRET-never-logged"
	exchangeJW = "eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJvcmcifQ.c2lnbmVkLWp3dA"
)

// opaqueToken has no readable claims: its expiry must come from expires_in.
const opaqueToken = "not-a-jwt-access-token"

// accessToken is an unsigned token whose claims say it expires at exp.
func accessToken(created time.Time, lifetime time.Duration) string {
	payload := `{"id":"1","type":"access_token","client_id":"` + techClient + `","user_id":"ABC@techacct.adobe.com","as":"ims-na1",` +
		`"created_at":"` + itoa(created.UnixMilli()) + `","expires_in":"` + itoa(lifetime.Milliseconds()) + `"}`
	return b64([]byte(`{"alg":"RS256","x5u":"ims_na1-key-at-1.cer"}`)) + "." + b64([]byte(payload)) + ".c2ln"
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

type tokenCall struct {
	name   string
	path   string
	form   url.Values
	unit   time.Duration
	call   func(c *Client) (*TokenResponse, error)
	answer func(expiresIn string, token string) string
}

func tokenCalls() []tokenCall {
	return []tokenCall{
		{
			name: "exchange jwt",
			path: "/ims/exchange/jwt",
			form: url.Values{"client_id": {techClient}, "client_secret": {techSecret}, "jwt_token": {exchangeJW}},
			unit: time.Millisecond,
			call: func(c *Client) (*TokenResponse, error) {
				return c.ExchangeJWT(context.Background(), techClient, techSecret, exchangeJW)
			},
		},
		{
			name: "client credentials",
			path: "/ims/token/v3",
			form: url.Values{"grant_type": {"client_credentials"}, "client_id": {techClient}, "client_secret": {techSecret}, "scope": {"openid,AdobeID,read_organizations"}},
			unit: time.Second,
			call: func(c *Client) (*TokenResponse, error) {
				return c.ClientCredentials(context.Background(), techClient, techSecret, []string{"openid", "AdobeID", "read_organizations"})
			},
		},
		{
			name: "authorization code",
			path: "/ims/token/v3",
			form: url.Values{"grant_type": {"authorization_code"}, "client_id": {techClient}, "client_secret": {techSecret},
				"code": {"the-code"}, "redirect_uri": {"https://aem.example.com/gatehouse/callback"}, "code_verifier": {"the-verifier"}},
			unit: time.Second,
			call: func(c *Client) (*TokenResponse, error) {
				return c.AuthorizationCode(context.Background(), techClient, techSecret, "the-code", "https://aem.example.com/gatehouse/callback", "the-verifier")
			},
		},
		{
			// A public client proves itself by the PKCE verifier alone.
			name: "authorization code without a secret",
			path: "/ims/token/v3",
			form: url.Values{"grant_type": {"authorization_code"}, "client_id": {techClient},
				"code": {"the-code"}, "redirect_uri": {"https://aem.example.com/gatehouse/callback"}, "code_verifier": {"the-verifier"}},
			unit: time.Second,
			call: func(c *Client) (*TokenResponse, error) {
				return c.AuthorizationCode(context.Background(), techClient, "", "the-code", "https://aem.example.com/gatehouse/callback", "the-verifier")
			},
		},
	}
}

func TestTokenEndpointsRequest(t *testing.T) {
	for _, tc := range tokenCalls() {
		t.Run(tc.name, func(t *testing.T) {
			s := newIMSServer(t, http.StatusOK, `{"token_type":"bearer","access_token":"`+opaqueToken+`","expires_in":3600}`)
			s.check = func(t *testing.T, r *http.Request) {
				if r.Method != http.MethodPost || r.URL.Path != tc.path {
					t.Errorf("%s %s, want POST %s", r.Method, r.URL.Path, tc.path)
				}
				if r.URL.RawQuery != "" {
					t.Errorf("query %q: secrets must travel in the body only", r.URL.RawQuery)
				}
				if ct := r.Header.Get("Content-Type"); ct != "application/x-www-form-urlencoded" {
					t.Errorf("Content-Type %q", ct)
				}
				if a := r.Header.Get("Authorization"); a != "" {
					t.Errorf("Authorization %q, want none", a)
				}
				if err := r.ParseForm(); err != nil {
					t.Fatal(err)
				}
				if len(r.PostForm) != len(tc.form) {
					t.Errorf("form %v, want %v", r.PostForm, tc.form)
				}
				for k, v := range tc.form {
					if got := r.PostForm.Get(k); got != v[0] {
						t.Errorf("form %s = %q, want %q", k, got, v[0])
					}
				}
			}
			if _, err := tc.call(newTestClient(t, s)); err != nil {
				t.Fatal(err)
			}
			if s.hits.Load() != 1 {
				t.Errorf("%d requests", s.hits.Load())
			}
		})
	}
}

func TestTokenEndpointsExpiry(t *testing.T) {
	created := time.Now().Add(-time.Minute).Truncate(time.Millisecond)
	claimsToken := accessToken(created, 2*time.Hour)
	for _, tc := range tokenCalls() {
		t.Run(tc.name, func(t *testing.T) {
			for _, st := range []struct {
				name   string
				body   string
				want   time.Time     // exact, when set
				approx time.Duration // else now + approx
			}{
				{"claims win over expires_in", `{"token_type":"bearer","access_token":"` + claimsToken + `","expires_in":5}`, created.Add(2 * time.Hour), 0},
				{"expires_in in the endpoint's unit", `{"token_type":"bearer","access_token":"` + opaqueToken + `","expires_in":3600}`, time.Time{}, 3600 * tc.unit},
				{"expires_in as a string", `{"token_type":"bearer","access_token":"` + opaqueToken + `","expires_in":"7200"}`, time.Time{}, 7200 * tc.unit},
			} {
				t.Run(st.name, func(t *testing.T) {
					s := newIMSServer(t, http.StatusOK, st.body)
					before := time.Now()
					r, err := tc.call(newTestClient(t, s))
					after := time.Now()
					if err != nil {
						t.Fatal(err)
					}
					if r.TokenType != "bearer" || r.AccessToken == "" {
						t.Errorf("answer %+v", r)
					}
					if !st.want.IsZero() {
						if !r.ExpiresAt.Equal(st.want) {
							t.Errorf("ExpiresAt %v, want %v", r.ExpiresAt, st.want)
						}
						return
					}
					if r.ExpiresAt.Before(before.Add(st.approx)) || r.ExpiresAt.After(after.Add(st.approx)) {
						t.Errorf("ExpiresAt %v, want now + %v", r.ExpiresAt, st.approx)
					}
				})
			}
		})
	}
}

func TestTokenEndpointsErrors(t *testing.T) {
	for _, tc := range tokenCalls() {
		t.Run(tc.name, func(t *testing.T) {
			for _, st := range []struct {
				name   string
				status int
				header map[string]string
				body   string
				check  func(t *testing.T, err error)
			}{
				{"400 invalid_scope", 400, nil, `{"error":"invalid_scope","error_description":"metascope ent_x is not allowed"}`, wantTokenError(400, "invalid_scope", "metascope ent_x is not allowed")},
				{"401 invalid_client", 401, nil, `{"error":"invalid_client","error_description":"invalid client_secret parameter"}`, wantTokenError(401, "invalid_client", "invalid client_secret parameter")},
				{"400 without JSON", 400, nil, `<html>bad</html>`, wantTokenError(400, "", "")},
				{"429", 429, map[string]string{"Retry-After": "7"}, `{"error":"too_many_requests"}`, func(t *testing.T, err error) {
					var rl *RateLimitError
					if !errors.Is(err, ErrRateLimited) || !errors.As(err, &rl) || rl.RetryAfter != 7*time.Second {
						t.Errorf("err %v, want a RateLimitError of 7s", err)
					}
				}},
				{"500", 500, nil, `{"error":"server_error"}`, wantUnavailable},
				{"503 HTML", 503, nil, `<html>down</html>`, wantUnavailable},
				{"redirect not followed", 302, map[string]string{"Location": "https://elsewhere.example/"}, ``, wantUnavailable},
				{"200 not JSON", 200, nil, `<html>ok</html>`, wantBadAnswer},
				{"200 without token", 200, nil, `{"token_type":"bearer","expires_in":3600}`, wantBadAnswer},
				{"200 without expiry", 200, nil, `{"token_type":"bearer","access_token":"` + opaqueToken + `"}`, wantBadAnswer},
				{"200 bad expires_in", 200, nil, `{"token_type":"bearer","access_token":"` + opaqueToken + `","expires_in":"soon"}`, wantBadAnswer},
			} {
				t.Run(st.name, func(t *testing.T) {
					s := newIMSServer(t, st.status, st.body)
					s.header = st.header
					_, err := tc.call(newTestClient(t, s))
					if err == nil {
						t.Fatal("no error")
					}
					st.check(t, err)
					if strings.Contains(err.Error(), techSecret) || strings.Contains(err.Error(), exchangeJW) {
						t.Errorf("error %q shows a secret", err)
					}
				})
			}
			t.Run("network", func(t *testing.T) {
				s := newIMSServer(t, 200, `{}`)
				c := newTestClient(t, s)
				s.Close()
				_, err := tc.call(c)
				wantUnavailable(t, err)
				if strings.Contains(err.Error(), techSecret) {
					t.Errorf("error %q shows the secret", err)
				}
			})
		})
	}
}

func wantTokenError(status int, code, desc string) func(t *testing.T, err error) {
	return func(t *testing.T, err error) {
		t.Helper()
		var te *TokenError
		if !errors.As(err, &te) {
			t.Fatalf("err %v (%T), want *TokenError", err, err)
		}
		if te.Status != status || te.Code != code || te.Description != desc {
			t.Errorf("TokenError %+v, want %d %q %q", te, status, code, desc)
		}
		if errors.Is(err, ErrUnavailable) {
			t.Error("a refusal must not count as unavailable")
		}
		if code != "" && !strings.Contains(te.Error(), code) {
			t.Errorf("Error() %q does not name %s", te.Error(), code)
		}
	}
}

func wantUnavailable(t *testing.T, err error) {
	t.Helper()
	if !errors.Is(err, ErrUnavailable) {
		t.Errorf("err %v, want ErrUnavailable", err)
	}
	var te *TokenError
	if errors.As(err, &te) {
		t.Errorf("err %v is a TokenError", err)
	}
}

func wantBadAnswer(t *testing.T, err error) {
	t.Helper()
	if !errors.Is(err, ErrBadAnswer) || errors.Is(err, ErrUnavailable) {
		t.Errorf("err %v, want ErrBadAnswer (and not ErrUnavailable)", err)
	}
}

func TestTokenErrorClipsDescription(t *testing.T) {
	te := tokenError(400, []byte(`{"error":"bad_request","error_description":"`+strings.Repeat("x", 1000)+`"}`))
	if len(te.Description) > maxDescription+3 {
		t.Errorf("description of %d bytes", len(te.Description))
	}
}
