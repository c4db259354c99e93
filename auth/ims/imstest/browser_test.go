package imstest

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

const (
	webClient   = "web-client"
	webSecret   = "web-secret"
	spaClient   = "spa-client"
	callbackURI = "https://app.example.com/gatehouse/callback"
	verifier    = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFG" // 43 characters
)

func challengeOf(v string) string {
	sum := sha256.Sum256([]byte(v))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

type codeWorld struct {
	t   *testing.T
	srv *Server
	c   *http.Client
	mu  sync.Mutex
	now time.Time
}

func newCodeWorld(t *testing.T) *codeWorld {
	t.Helper()
	w := &codeWorld{t: t, now: time.Now()}
	w.srv = NewServer(Options{Now: func() time.Time { w.mu.Lock(); defer w.mu.Unlock(); return w.now }})
	t.Cleanup(w.srv.Close)
	w.srv.AddUser(User{ID: "U1@AdobeID", Email: "u1@example.com", FirstName: "U"})
	for _, c := range []BrowserClient{
		{ID: webClient, Secret: webSecret, RedirectURIs: []string{callbackURI}},
		{ID: spaClient, RedirectURIs: []string{callbackURI}},
	} {
		if err := w.srv.AddBrowserClient(c); err != nil {
			t.Fatal(err)
		}
	}
	jar, _ := cookiejar.New(nil)
	w.c = &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return w
}

func authzParams(client string) url.Values {
	return url.Values{"client_id": {client}, "redirect_uri": {callbackURI}, "response_type": {"code"},
		"scope": {"openid,AdobeID"}, "state": {"st"}, "code_challenge": {challengeOf(verifier)}, "code_challenge_method": {"S256"}}
}

// code picks the user on the page and returns the redirect back.
func (w *codeWorld) code(p url.Values) *url.URL {
	w.t.Helper()
	form := url.Values{}
	for k, v := range p {
		form[k] = v
	}
	form.Set("user_id", "U1@AdobeID")
	resp, err := w.c.PostForm(w.srv.URL+"/ims/authorize/v2", form)
	if err != nil {
		w.t.Fatal(err)
	}
	resp.Body.Close()
	u, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || resp.StatusCode != http.StatusFound || !strings.HasPrefix(u.String(), callbackURI+"?") {
		w.t.Fatalf("authorize: %d to %q, want a redirect to the callback", resp.StatusCode, resp.Header.Get("Location"))
	}
	return u
}

func (w *codeWorld) exchange(form url.Values) (int, map[string]any) {
	w.t.Helper()
	form.Set("grant_type", "authorization_code")
	resp, err := w.c.PostForm(w.srv.URL+"/ims/token/v3", form)
	if err != nil {
		w.t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&m)
	return resp.StatusCode, m
}

func TestAuthorizationCodeGrant(t *testing.T) {
	good := func(code string) url.Values {
		return url.Values{"code": {code}, "client_id": {spaClient}, "redirect_uri": {callbackURI}, "code_verifier": {verifier}}
	}
	tests := []struct {
		name   string
		client string
		edit   func(w *codeWorld, f url.Values)
		status int
		errStr string
	}{
		{"public client with PKCE", spaClient, nil, http.StatusOK, ""},
		{"web client with secret and PKCE", webClient, func(_ *codeWorld, f url.Values) {
			f.Set("client_id", webClient)
			f.Set("client_secret", webSecret)
		}, http.StatusOK, ""},
		{"wrong verifier", spaClient, func(_ *codeWorld, f url.Values) { f.Set("code_verifier", strings.Repeat("x", 43)) }, http.StatusBadRequest, "invalid_grant"},
		{"no verifier", spaClient, func(_ *codeWorld, f url.Values) { f.Del("code_verifier") }, http.StatusBadRequest, "invalid_grant"},
		{"other redirect_uri", spaClient, func(_ *codeWorld, f url.Values) { f.Set("redirect_uri", callbackURI+"x") }, http.StatusBadRequest, "invalid_grant"},
		{"other client", spaClient, func(_ *codeWorld, f url.Values) {
			f.Set("client_id", webClient)
			f.Set("client_secret", webSecret)
		}, http.StatusBadRequest, "invalid_grant"},
		{"wrong secret", webClient, func(_ *codeWorld, f url.Values) {
			f.Set("client_id", webClient)
			f.Set("client_secret", "nope")
		}, http.StatusUnauthorized, "invalid_client"},
		{"unknown client", spaClient, func(_ *codeWorld, f url.Values) { f.Set("client_id", "nobody") }, http.StatusUnauthorized, "invalid_client"},
		{"unknown code", spaClient, func(_ *codeWorld, f url.Values) { f.Set("code", "abc") }, http.StatusBadRequest, "invalid_grant"},
		{"expired code", spaClient, func(w *codeWorld, _ url.Values) {
			w.mu.Lock()
			w.now = w.now.Add(CodeLifetime + time.Second)
			w.mu.Unlock()
		}, http.StatusBadRequest, "invalid_grant"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newCodeWorld(t)
			back := w.code(authzParams(tt.client))
			if back.Query().Get("state") != "st" {
				t.Errorf("state %q not returned", back.Query().Get("state"))
			}
			f := good(back.Query().Get("code"))
			if tt.edit != nil {
				tt.edit(w, f)
			}
			status, ans := w.exchange(f)
			if status != tt.status || (tt.errStr != "" && ans["error"] != tt.errStr) {
				t.Fatalf("exchange: %d %v, want %d %s", status, ans, tt.status, tt.errStr)
			}
			if status == http.StatusOK {
				claims, err := w.srv.parse(ans["access_token"].(string))
				if err != nil || claims.ClientID != f.Get("client_id") || claims.UserID != "U1@AdobeID" || ans["refresh_token"] == "" {
					t.Errorf("token %v (%v): want one of the client's for U1", claims, err)
				}
				// Used once: the same code again is refused.
				if status, ans := w.exchange(f); status != http.StatusBadRequest || ans["error"] != "invalid_grant" {
					t.Errorf("the code's second exchange: %d %v, want invalid_grant", status, ans)
				}
			}
		})
	}
}

func TestAuthorizeRefusals(t *testing.T) {
	w := newCodeWorld(t)
	get := func(p url.Values) *http.Response {
		t.Helper()
		resp, err := w.c.Get(w.srv.URL + "/ims/authorize/v2?" + p.Encode())
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	p := authzParams(spaClient)
	p.Set("redirect_uri", "https://evil.example/cb")
	if r := get(p); r.StatusCode != http.StatusBadRequest || r.Header.Get("Location") != "" {
		t.Errorf("unregistered redirect_uri: %d to %q, want 400 and no redirect", r.StatusCode, r.Header.Get("Location"))
	}
	p = authzParams("nobody")
	if r := get(p); r.StatusCode != http.StatusBadRequest {
		t.Errorf("unknown client: %d, want 400", r.StatusCode)
	}
	p = authzParams(spaClient)
	p.Del("code_challenge")
	if r := get(p); !strings.Contains(r.Header.Get("Location"), "error=invalid_request") {
		t.Errorf("public client without PKCE: to %q, want error=invalid_request", r.Header.Get("Location"))
	}
	p = authzParams(spaClient)
	p.Set("code_challenge_method", "plain")
	if r := get(p); !strings.Contains(r.Header.Get("Location"), "error=invalid_request") {
		t.Errorf("plain PKCE: to %q, want error=invalid_request", r.Header.Get("Location"))
	}
	// The page, then cancel.
	if r := get(authzParams(spaClient)); r.StatusCode != http.StatusOK {
		t.Errorf("the sign-in page: %d", r.StatusCode)
	}
	form := authzParams(spaClient)
	form.Set("cancel", "1")
	resp, err := w.c.PostForm(w.srv.URL+"/ims/authorize/v2", form)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if l := resp.Header.Get("Location"); !strings.Contains(l, "error=access_denied") || !strings.Contains(l, "state=st") {
		t.Errorf("cancel: to %q, want error=access_denied with the state", l)
	}
}

// After a user was picked the emulator's session answers at once, as
// IMS's does; its logout ends that.
func TestAuthorizeSessionAndLogout(t *testing.T) {
	w := newCodeWorld(t)
	w.code(authzParams(spaClient))
	resp, err := w.c.Get(w.srv.URL + "/ims/authorize/v2?" + authzParams(spaClient).Encode())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if !strings.Contains(resp.Header.Get("Location"), "code=") {
		t.Fatalf("with a session: %d to %q, want a code at once", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp, err = w.c.Get(w.srv.URL + "/ims/logout/v1?redirect_uri=" + url.QueryEscape("https://app.example.com/"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Header.Get("Location") != "https://app.example.com/" {
		t.Errorf("logout: to %q, want the redirect_uri", resp.Header.Get("Location"))
	}
	resp, err = w.c.Get(w.srv.URL + "/ims/authorize/v2?" + authzParams(spaClient).Encode())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("after logout: %d to %q, want the sign-in page again", resp.StatusCode, resp.Header.Get("Location"))
	}
}

// TestCodeAnswerIDToken: with openid in the scope the code's answer has an
// id_token as IMS's does, signed by a published key, for the user and the
// client; without openid it has none.
func TestCodeAnswerIDToken(t *testing.T) {
	for _, scope := range []string{"openid,AdobeID", "AdobeID"} {
		t.Run(scope, func(t *testing.T) {
			w := newCodeWorld(t)
			p := authzParams(spaClient)
			p.Set("scope", scope)
			back := w.code(p)
			status, ans := w.exchange(url.Values{"code": {back.Query().Get("code")}, "client_id": {spaClient},
				"redirect_uri": {callbackURI}, "code_verifier": {verifier}})
			if status != http.StatusOK {
				t.Fatalf("exchange: %d %v", status, ans)
			}
			raw, has := ans["id_token"].(string)
			if scope == "AdobeID" {
				if has {
					t.Errorf("id_token without openid in the scope")
				}
				return
			}
			claims := jwt.MapClaims{}
			_, err := jwt.ParseWithClaims(raw, claims, func(tok *jwt.Token) (any, error) {
				kid, _ := tok.Header["kid"].(string)
				x5u, _ := tok.Header["x5u"].(string)
				k := w.srv.keyFor(kid, x5u)
				if k == nil {
					return nil, errors.New("unknown key")
				}
				return &k.priv.PublicKey, nil
			}, jwt.WithValidMethods([]string{"RS256"}), jwt.WithAudience(spaClient), jwt.WithIssuer(w.srv.URL),
				jwt.WithExpirationRequired(), jwt.WithIssuedAt(), jwt.WithTimeFunc(w.srv.now))
			if err != nil {
				t.Fatalf("id_token: %v", err)
			}
			if claims["sub"] != "U1@AdobeID" || claims["type"] != "id_token" {
				t.Errorf("id_token claims %v", claims)
			}
		})
	}
}
