package imstest

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
)

// Endpoint names of the browser sign-in, as counted by Calls.
const (
	EndpointAuthorize = "authorize" // GET and POST /ims/authorize/v2
	EndpointLogout    = "logout"    // GET /ims/logout/v1
)

// CodeLifetime is how long an authorization code can be exchanged.
const CodeLifetime = 2 * time.Minute

// sessionCookie is the emulator's own sign-in session in the browser, as
// IMS keeps one: while it lasts, the authorization endpoint answers with a
// code at once, without showing its page.
const sessionCookie = "ims_emulator_session"

// BrowserClient is a web or single-page credential of the authorization
// code flow. The JSON names are those of POST /ims/dev/browserclients.
type BrowserClient struct {
	ID string `json:"clientId"`
	// Secret authenticates the code exchange; empty makes a public client,
	// which must use PKCE.
	Secret string `json:"clientSecret"`
	// RedirectURIs are the callbacks codes may be sent to, compared
	// exactly.
	RedirectURIs []string `json:"redirectUris"`
}

// browserState is what the emulator keeps for the browser sign-in.
type browserState struct {
	mu       sync.Mutex
	clients  map[string]BrowserClient
	codes    map[string]*authCode
	sessions map[string]string // session cookie value -> user id
}

type authCode struct {
	clientID, redirectURI, challenge, userID, scope string
	expires                                         time.Time
}

// AddBrowserClient registers c, or replaces the client with its id.
func (e *Emulator) AddBrowserClient(c BrowserClient) error {
	if c.ID == "" || len(c.RedirectURIs) == 0 {
		return errors.New("imstest: browser client: clientId and at least one redirect URI are required")
	}
	for _, u := range c.RedirectURIs {
		if p, err := url.Parse(u); err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" || p.Fragment != "" {
			return fmt.Errorf("imstest: browser client: redirect URI %q: want an absolute http(s) URL", u)
		}
	}
	c.RedirectURIs = slices.Clone(c.RedirectURIs)
	b := &e.browser
	b.mu.Lock()
	defer b.mu.Unlock()
	b.clients[c.ID] = c
	return nil
}

func (e *Emulator) browserClient(id string) (BrowserClient, bool) {
	e.browser.mu.Lock()
	defer e.browser.mu.Unlock()
	c, ok := e.browser.clients[id]
	return c, ok
}

// serveDevAddBrowserClient is POST /ims/dev/browserclients (emulator
// only): body a BrowserClient, answer 201.
func (e *Emulator) serveDevAddBrowserClient(w http.ResponseWriter, r *http.Request) {
	var c BrowserClient
	if !decodeJSON(w, r, &c) {
		return
	}
	if err := e.AddBrowserClient(c); err != nil {
		writeError(w, http.StatusBadRequest, "invalid_request", err.Error())
		return
	}
	w.WriteHeader(http.StatusCreated)
}

// authzRequest is a checked authorization request.
type authzRequest struct {
	client      BrowserClient
	redirectURI string
	state       string
	scope       string
	challenge   string
}

// authzError is a refusal of an authorization request: sent back to the
// redirect URI once that is known good, else shown on a page.
type authzError struct {
	code, desc string
	toClient   bool
}

// checkAuthz checks the authorization request's parameters (from the
// query on GET, the form on POST) as IMS does: a registered client, one
// of its redirect URIs exactly, response_type=code, and PKCE with S256
// (required of a client without a secret).
func (e *Emulator) checkAuthz(v url.Values) (*authzRequest, *authzError) {
	c, ok := e.browserClient(v.Get("client_id"))
	if !ok {
		return nil, &authzError{code: "invalid_client", desc: "unknown client_id"}
	}
	ru := v.Get("redirect_uri")
	if !slices.Contains(c.RedirectURIs, ru) {
		return nil, &authzError{code: "invalid_request", desc: "redirect_uri is not registered for this client"}
	}
	a := &authzRequest{client: c, redirectURI: ru, state: v.Get("state"), scope: v.Get("scope"), challenge: v.Get("code_challenge")}
	switch {
	case v.Get("response_type") != "code":
		return a, &authzError{code: "unsupported_response_type", desc: "response_type must be code", toClient: true}
	case a.challenge != "" && v.Get("code_challenge_method") != "S256":
		return a, &authzError{code: "invalid_request", desc: "code_challenge_method must be S256", toClient: true}
	case a.challenge == "" && c.Secret == "":
		return a, &authzError{code: "invalid_request", desc: "a public client must use PKCE (code_challenge)", toClient: true}
	case a.scope == "":
		return a, &authzError{code: "invalid_scope", desc: "scope is required", toClient: true}
	}
	return a, nil
}

// back redirects to the client's redirect URI with params and state.
func back(w http.ResponseWriter, r *http.Request, a *authzRequest, params url.Values) {
	if a.state != "" {
		params.Set("state", a.state)
	}
	sep := "?"
	if strings.Contains(a.redirectURI, "?") {
		sep = "&"
	}
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, a.redirectURI+sep+params.Encode(), http.StatusFound)
}

// serveAuthorize is /ims/authorize/v2: GET shows the sign-in page (or,
// with a live emulator session, answers with a code at once); POST is the
// page's answer, a user picked or the sign-in cancelled.
func (e *Emulator) serveAuthorize(w http.ResponseWriter, r *http.Request) {
	if !parseForm(w, r) {
		return
	}
	v := r.URL.Query()
	if r.Method == http.MethodPost {
		v = r.PostForm
	}
	a, aerr := e.checkAuthz(v)
	if aerr != nil {
		if aerr.toClient {
			back(w, r, a, url.Values{"error": {aerr.code}, "error_description": {aerr.desc}})
			return
		}
		e.writePage(w, http.StatusBadRequest, pageData{Title: "Sign-in error", Message: aerr.code + ": " + aerr.desc})
		return
	}
	if r.Method == http.MethodPost {
		if v.Get("cancel") != "" {
			back(w, r, a, url.Values{"error": {"access_denied"}, "error_description": {"the user cancelled the sign-in"}})
			return
		}
		userID := v.Get("user_id")
		if _, ok := e.user(userID); !ok {
			e.writePage(w, http.StatusBadRequest, pageData{Title: "Sign-in error", Message: "unknown user"})
			return
		}
		sid := randomHex(16)
		e.browser.mu.Lock()
		e.browser.sessions[sid] = userID
		e.browser.mu.Unlock()
		http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: sid, Path: "/ims/", HttpOnly: true, SameSite: http.SameSiteLaxMode})
		back(w, r, a, url.Values{"code": {e.newCode(a, userID)}})
		return
	}
	if c, err := r.Cookie(sessionCookie); err == nil {
		e.browser.mu.Lock()
		userID, ok := e.browser.sessions[c.Value]
		e.browser.mu.Unlock()
		if _, known := e.user(userID); ok && known {
			back(w, r, a, url.Values{"code": {e.newCode(a, userID)}})
			return
		}
	}
	e.mu.RLock()
	users := make([]pageUser, 0, len(e.users))
	for _, u := range e.users {
		users = append(users, pageUser{ID: u.ID, Email: u.Email, Name: displayName(u)})
	}
	e.mu.RUnlock()
	slices.SortFunc(users, func(a, b pageUser) int { return strings.Compare(a.Email, b.Email) })
	var hidden []pageField
	for _, k := range []string{"client_id", "redirect_uri", "response_type", "scope", "state", "code_challenge", "code_challenge_method"} {
		if val := v.Get(k); val != "" {
			hidden = append(hidden, pageField{k, val})
		}
	}
	e.writePage(w, http.StatusOK, pageData{Title: "Sign in (IMS emulator)", Client: a.client.ID, Users: users, Hidden: hidden})
}

func (e *Emulator) newCode(a *authzRequest, userID string) string {
	code := randomHex(24)
	e.browser.mu.Lock()
	defer e.browser.mu.Unlock()
	now := e.now()
	for k, c := range e.browser.codes {
		if now.After(c.expires) {
			delete(e.browser.codes, k)
		}
	}
	e.browser.codes[code] = &authCode{clientID: a.client.ID, redirectURI: a.redirectURI, challenge: a.challenge,
		userID: userID, scope: a.scope, expires: now.Add(CodeLifetime)}
	return code
}

// takeCode removes the code and returns what it was issued for: a code is
// used once, whether or not its exchange succeeds.
func (e *Emulator) takeCode(code string) (*authCode, bool) {
	e.browser.mu.Lock()
	defer e.browser.mu.Unlock()
	c, ok := e.browser.codes[code]
	delete(e.browser.codes, code)
	return c, ok
}

// serveAuthorizationCode is POST /ims/token/v3 with
// grant_type=authorization_code: the client authenticates with its secret
// (form or Basic) when it has one, the code must be unused, unexpired and
// issued to that client for that redirect_uri, and code_verifier must
// match the code_challenge it was issued with.
func (e *Emulator) serveAuthorizationCode(w http.ResponseWriter, r *http.Request) {
	id, secret, basic := r.BasicAuth()
	if !basic {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	c, ok := e.browserClient(id)
	if !ok || (c.Secret != "" && subtle.ConstantTimeCompare([]byte(secret), []byte(c.Secret)) != 1) {
		writeError(w, http.StatusUnauthorized, "invalid_client", "invalid client_id or client_secret")
		return
	}
	ac, ok := e.takeCode(r.PostForm.Get("code"))
	switch {
	case !ok:
		writeError(w, http.StatusBadRequest, "invalid_grant", "the code is unknown or was used already")
		return
	case e.now().After(ac.expires):
		writeError(w, http.StatusBadRequest, "invalid_grant", "the code has expired")
		return
	case ac.clientID != c.ID:
		writeError(w, http.StatusBadRequest, "invalid_grant", "the code was issued to another client")
		return
	case ac.redirectURI != r.PostForm.Get("redirect_uri"):
		writeError(w, http.StatusBadRequest, "invalid_grant", "redirect_uri does not match the authorization request's")
		return
	case ac.challenge != "" && !pkceMatches(ac.challenge, r.PostForm.Get("code_verifier")):
		writeError(w, http.StatusBadRequest, "invalid_grant", "code_verifier does not match the code_challenge")
		return
	}
	token, _, err := e.mint(TokenRequest{UserID: ac.userID, ClientID: c.ID, Scope: ac.scope})
	if err != nil {
		writeError(w, http.StatusInternalServerError, "server_error", "could not issue a token")
		return
	}
	answer := codeAnswer{AccessToken: token, RefreshToken: randomHex(24), TokenType: "bearer",
		ExpiresIn: int64(DefaultLifetime / time.Second)}
	if hasScope(ac.scope, "openid") {
		if answer.IDToken, err = e.idToken(baseURL(r), ac.userID, c.ID); err != nil {
			writeError(w, http.StatusInternalServerError, "server_error", "could not issue an id token")
			return
		}
	}
	writeJSON(w, http.StatusOK, answer)
}

// codeAnswer is the token endpoint's answer to a code: IMS adds an OpenID
// Connect id_token when the scope has openid.
type codeAnswer struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	IDToken      string `json:"id_token,omitempty"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int64  `json:"expires_in"`
}

// idClaims is an id_token's payload: OpenID Connect's claims, seconds
// since the epoch, and IMS's own type and cluster.
type idClaims struct {
	Issuer     string `json:"iss"`
	Subject    string `json:"sub"`
	Audience   string `json:"aud"`
	IssuedAt   int64  `json:"iat"`
	Expires    int64  `json:"exp"`
	Type       string `json:"type"`
	Cluster    string `json:"as"`
	Email      string `json:"email,omitempty"`
	GivenName  string `json:"given_name,omitempty"`
	FamilyName string `json:"family_name,omitempty"`
}

// idToken signs an id_token for userID, issued by issuer to clientID,
// with the key access tokens are signed with.
func (e *Emulator) idToken(issuer, userID, clientID string) (string, error) {
	now := e.now()
	c := idClaims{Issuer: issuer, Subject: userID, Audience: clientID, IssuedAt: now.Unix(),
		Expires: now.Add(DefaultLifetime).Unix(), Type: "id_token", Cluster: e.cluster}
	if u, ok := e.user(userID); ok {
		c.Email, c.GivenName, c.FamilyName = u.Email, u.FirstName, u.LastName
	}
	e.mu.RLock()
	key := e.keys[len(e.keys)-1]
	e.mu.RUnlock()
	return signJWT(key, "", &c)
}

// hasScope reports whether the comma- or space-separated scope names s.
func hasScope(scope, s string) bool {
	for _, f := range strings.FieldsFunc(scope, func(r rune) bool { return r == ',' || r == ' ' }) {
		if f == s {
			return true
		}
	}
	return false
}

// pkceMatches checks an S256 code_verifier (RFC 7636) against challenge.
func pkceMatches(challenge, verifier string) bool {
	if len(verifier) < 43 || len(verifier) > 128 {
		return false
	}
	sum := sha256.Sum256([]byte(verifier))
	return subtle.ConstantTimeCompare([]byte(base64.RawURLEncoding.EncodeToString(sum[:])), []byte(challenge)) == 1
}

// serveLogout is GET /ims/logout/v1: it ends the emulator's session in
// this browser, then redirects to redirect_uri when that is an http(s)
// URL, or shows that the user is signed out.
func (e *Emulator) serveLogout(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(sessionCookie); err == nil {
		e.browser.mu.Lock()
		delete(e.browser.sessions, c.Value)
		e.browser.mu.Unlock()
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/ims/", MaxAge: -1, HttpOnly: true})
	if ru := r.URL.Query().Get("redirect_uri"); ru != "" {
		if u, err := url.Parse(ru); err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" {
			http.Redirect(w, r, ru, http.StatusFound)
			return
		}
	}
	e.writePage(w, http.StatusOK, pageData{Title: "Signed out (IMS emulator)", Message: "You are signed out of the IMS emulator."})
}

type pageUser struct{ ID, Email, Name string }
type pageField struct{ Name, Value string }

type pageData struct {
	Title, Message, Client string
	Users                  []pageUser
	Hidden                 []pageField
}

var emulatorPage = template.Must(template.New("ims").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{.Title}}</title>
<style>body{font-family:system-ui,sans-serif;max-width:32em;margin:3em auto}button{display:block;width:100%;margin:.4em 0;padding:.6em;text-align:left}</style>
</head><body>
<h1>{{.Title}}</h1>
{{if .Message}}<p id="message">{{.Message}}</p>{{end}}
{{if .Users}}<p>Client <code>{{.Client}}</code> asks you to sign in. Pick a user:</p>
<form method="post" action="/ims/authorize/v2">
{{range .Hidden}}<input type="hidden" name="{{.Name}}" value="{{.Value}}">
{{end}}{{range .Users}}<button type="submit" name="user_id" value="{{.ID}}" data-email="{{.Email}}">{{.Name}} &lt;{{.Email}}&gt;</button>
{{end}}<button type="submit" name="cancel" value="1" id="cancel">Cancel</button>
</form>{{end}}
</body></html>
`))

func (e *Emulator) writePage(w http.ResponseWriter, status int, p pageData) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = emulatorPage.Execute(w, p)
}
