package signin

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-proxy/gatehouse/auth"
	"github.com/gatehouse-proxy/gatehouse/auth/bearer"
	"github.com/gatehouse-proxy/gatehouse/auth/groupmap"
	"github.com/gatehouse-proxy/gatehouse/auth/ims"
	"github.com/gatehouse-proxy/gatehouse/auth/ims/imstest"
	"github.com/gatehouse-proxy/gatehouse/auth/provision"
	"github.com/gatehouse-proxy/gatehouse/session"
	"github.com/gatehouse-proxy/gatehouse/session/sqlite"
)

const (
	clientID = "cc-europa-desktop_10_0"
	orgID    = "1234ABCD@AdobeOrg"
	alice    = "ALICE0001@AdobeID"
	bob      = "BOB00002@AdobeID"
)

// clock is a settable time source shared by every component under test.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// fixture is a sign-in step wired to real parts: the IMS emulator over
// loopback, the real verifier and client, and an SQLite store on disk.
type fixture struct {
	t     *testing.T
	emu   *imstest.Server
	store *sqlite.Store
	clock *clock
	si    *Handler
	mgr   *session.Manager
	h     http.Handler
	seen  *auth.Identity
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{t: t, clock: &clock{t: time.Now()}}
	f.emu = imstest.NewServer(imstest.Options{Now: f.clock.Now})
	t.Cleanup(f.emu.Close)
	for _, u := range []imstest.User{
		{ID: alice, Email: "alice@example.com", FirstName: "Alice", LastName: "A",
			Orgs: []imstest.Org{{ID: orgID, Name: "Org", Groups: []ims.Group{{GroupName: "Authors", Role: "TEAM_MEMBER"}}}}},
		{ID: bob, Email: "bob@example.com", FirstName: "Bob", LastName: "B",
			Orgs: []imstest.Org{{ID: orgID, Name: "Org", Groups: []ims.Group{{GroupName: "Admins", Role: "GRP_ADMIN"}}}}},
	} {
		f.emu.AddUser(u)
	}
	ctx := context.Background()
	var err error
	f.store, err = sqlite.Open(ctx, filepath.Join(t.TempDir(), "g.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.store.Close() })

	keys, err := ims.NewKeySet(ims.KeySetConfig{JWKSURL: f.emu.URL + "/ims/keys"})
	if err != nil {
		t.Fatal(err)
	}
	if err := keys.Load(ctx); err != nil {
		t.Fatal(err)
	}
	verifier, err := ims.NewVerifier(ims.VerifierConfig{Keys: keys, Cluster: "ims-na1", ClientIDs: []string{clientID}, Now: f.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	client, err := ims.NewClient(f.emu.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := bearer.New(bearer.Config{Mode: bearer.ModeLocal, Verifier: verifier, Client: client,
		ClientIDs: []string{clientID}, Cluster: "ims-na1", Now: f.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	mapping, _ := groupmap.Parse("*:GRP_ADMIN=administrators")
	sessKeys, _, err := session.LoadCookieKeys(ctx, f.store, "")
	if err != nil {
		t.Fatal(err)
	}
	mgr, err := session.NewManager(f.store, sessKeys, session.ManagerConfig{TTL: time.Hour, CookieSecure: true, Now: f.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	prov, err := provision.New(provision.Config{IMS: client, Store: f.store, Org: orgID, Mapping: mapping,
		SyncInterval: 10 * time.Hour, OnSync: mgr.ForgetUser, Now: f.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	f.mgr = mgr
	f.si, err = New(Config{Bearer: b, Provisioner: prov, Sessions: mgr, Now: f.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	f.h = f.si.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, ok := auth.FromContext(r.Context())
		if !ok {
			t.Error("next called without an identity")
		}
		f.seen = id
		w.WriteHeader(http.StatusNoContent)
	}))
	return f
}

func (f *fixture) token(user string) string {
	f.t.Helper()
	tok, _, err := f.emu.MintToken(imstest.TokenRequest{UserID: user, ClientID: clientID})
	if err != nil {
		f.t.Fatal(err)
	}
	return tok
}

// request sends one request through the sign-in step.
func (f *fixture) request(method, path, bearerToken string, cookie *http.Cookie, extra map[string]string) *httptest.ResponseRecorder {
	f.t.Helper()
	f.seen = nil
	r := httptest.NewRequest(method, path, nil)
	if bearerToken != "" {
		r.Header.Set("Authorization", "Bearer "+bearerToken)
	}
	if cookie != nil {
		r.AddCookie(&http.Cookie{Name: cookie.Name, Value: cookie.Value})
	}
	for k, v := range extra {
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	if path == "/gatehouse/logout" {
		f.si.Logout().ServeHTTP(w, r)
	} else {
		f.h.ServeHTTP(w, r)
	}
	return w
}

func (f *fixture) imsCalls() int64 {
	return f.emu.Calls(imstest.EndpointProfile) + f.emu.Calls(imstest.EndpointOrganizations) + f.emu.Calls(imstest.EndpointValidate)
}

func loginCookie(w *httptest.ResponseRecorder) *http.Cookie {
	for _, c := range w.Result().Cookies() {
		if c.Name == session.DefaultCookieName {
			return c
		}
	}
	return nil
}

func (f *fixture) signIn(user string) (string, *http.Cookie) {
	f.t.Helper()
	tok := f.token(user)
	w := f.request("GET", "/content", tok, nil, nil)
	c := loginCookie(w)
	if w.Code != http.StatusNoContent || c == nil {
		f.t.Fatalf("sign-in of %s: status %d, cookie %v: %s", user, w.Code, c, w.Body)
	}
	return tok, c
}

func wantRefusal(t *testing.T, w *httptest.ResponseRecorder, status int, code, reason string) {
	t.Helper()
	if w.Code != status {
		t.Fatalf("status = %d, want %d: %s", w.Code, status, w.Body)
	}
	if got := w.Header().Get("X-Reason"); got != reason {
		t.Errorf("X-Reason = %q, want %q", got, reason)
	}
	www := w.Header().Get("WWW-Authenticate")
	if status == http.StatusUnauthorized && !strings.HasPrefix(www, "Bearer") {
		t.Errorf("WWW-Authenticate = %q, want a Bearer challenge", www)
	}
	if code != "" && !strings.Contains(www, `error="`+code+`"`) {
		t.Errorf("WWW-Authenticate = %q, want error=%q", www, code)
	}
	var body struct {
		Description string `json:"error_description"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || body.Description == "" {
		t.Errorf("body %q: want a JSON error_description", w.Body)
	}
}

func TestBearerSignInIssuesCookieAndProvisions(t *testing.T) {
	f := newFixture(t)
	tok := f.token(alice)
	w := f.request("GET", "/content", tok, nil, nil)
	if w.Code != http.StatusNoContent {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	c := loginCookie(w)
	if c == nil || !c.HttpOnly || !c.Secure || c.SameSite != http.SameSiteLaxMode || c.Path != "/" {
		t.Fatalf("cookie = %+v, want HttpOnly, Secure, SameSite=Lax, Path=/", c)
	}
	if f.seen.UserID != alice || f.seen.Method != auth.MethodBearer || f.seen.Email != "alice@example.com" {
		t.Errorf("identity = %+v", f.seen)
	}
	u, err := f.store.GetUser(context.Background(), alice)
	if err != nil || len(u.Groups()) != 1 || u.Groups()[0] != "Authors" {
		t.Fatalf("stored user %+v, %v: want created with group Authors", u, err)
	}
}

func TestCookieAuthenticatesWithoutIMS(t *testing.T) {
	f := newFixture(t)
	_, c := f.signIn(alice)
	before := f.imsCalls()
	w := f.request("GET", "/content", "", c, nil)
	if w.Code != http.StatusNoContent || f.seen.UserID != alice || f.seen.Method != auth.MethodCookie {
		t.Fatalf("status %d identity %+v", w.Code, f.seen)
	}
	if loginCookie(w) != nil {
		t.Error("a fresh cookie was answered with a new Set-Cookie")
	}
	if n := f.imsCalls() - before; n != 0 {
		t.Errorf("%d IMS calls for a cookie request", n)
	}
}

func TestSameBearerReusesLoginToken(t *testing.T) {
	f := newFixture(t)
	tok, c := f.signIn(alice)
	for i := 0; i < 3; i++ {
		w := f.request("GET", "/content", tok, nil, nil)
		again := loginCookie(w)
		if w.Code != http.StatusNoContent || again == nil || again.Value != c.Value {
			t.Fatalf("request %d: status %d, cookie %v: want the same login token", i, w.Code, again)
		}
	}
	if n, _ := f.store.CountLoginTokens(context.Background()); n != 1 {
		t.Errorf("%d login tokens stored, want 1", n)
	}
}

func TestReuseNeverHandsOutARevokedToken(t *testing.T) {
	f := newFixture(t)
	tok, c := f.signIn(alice)
	if w := f.request("POST", "/gatehouse/logout", "", c, nil); w.Code != http.StatusOK {
		t.Fatalf("logout status %d", w.Code)
	}
	w := f.request("GET", "/content", tok, nil, nil)
	again := loginCookie(w)
	if w.Code != http.StatusNoContent || again == nil || again.Value == c.Value {
		t.Fatalf("after logout: status %d cookie %v: want a new login token", w.Code, again)
	}
	if w := f.request("GET", "/content", "", again, nil); w.Code != http.StatusNoContent {
		t.Fatalf("the new login token does not work: %d", w.Code)
	}
}

func TestBearerForAnotherUserWins(t *testing.T) {
	f := newFixture(t)
	_, aliceCookie := f.signIn(alice)
	w := f.request("GET", "/content", f.token(bob), aliceCookie, nil)
	c := loginCookie(w)
	if w.Code != http.StatusNoContent || f.seen.UserID != bob {
		t.Fatalf("status %d identity %+v: want bob", w.Code, f.seen)
	}
	if c == nil || c.Value == aliceCookie.Value {
		t.Fatal("no login token issued for bob")
	}
	if !slices.Contains(f.seen.Groups, "administrators") {
		t.Errorf("bob's groups %q, want administrators (mapped from GRP_ADMIN)", f.seen.Groups)
	}
}

func TestSameUserBearerWithCookieUsesCookie(t *testing.T) {
	f := newFixture(t)
	tok, c := f.signIn(alice)
	n, _ := f.store.CountLoginTokens(context.Background())
	w := f.request("GET", "/content", tok, c, nil)
	if w.Code != http.StatusNoContent || f.seen.Method != auth.MethodCookie {
		t.Fatalf("status %d identity %+v: want the cookie to serve", w.Code, f.seen)
	}
	if m, _ := f.store.CountLoginTokens(context.Background()); m != n {
		t.Errorf("login tokens %d → %d: a cookie and a same-user bearer minted a new token", n, m)
	}
}

func TestExpiredCookie(t *testing.T) {
	t.Run("alone it is refused as expired", func(t *testing.T) {
		f := newFixture(t)
		_, c := f.signIn(alice)
		f.clock.Add(2 * time.Hour) // past the 1h login-token TTL, inside the 24h IMS token
		w := f.request("GET", "/content", "", c, nil)
		wantRefusal(t, w, http.StatusUnauthorized, auth.CodeInvalidToken, auth.ReasonExpiredToken)
		if cl := loginCookie(w); cl == nil || cl.MaxAge >= 0 {
			t.Errorf("expired cookie not cleared: %+v", cl)
		}
	})
	t.Run("with a valid bearer it is replaced in the same response", func(t *testing.T) {
		f := newFixture(t)
		tok, c := f.signIn(alice)
		f.clock.Add(2 * time.Hour)
		w := f.request("GET", "/content", tok, c, nil)
		nc := loginCookie(w)
		if w.Code != http.StatusNoContent || nc == nil || nc.Value == c.Value || nc.MaxAge <= 0 {
			t.Fatalf("status %d cookie %+v: want 200 and a new login token", w.Code, nc)
		}
		if w := f.request("GET", "/content", "", nc, nil); w.Code != http.StatusNoContent {
			t.Fatalf("the replacement login token is refused: %d", w.Code)
		}
	})
}

func TestRefreshPastHalfLife(t *testing.T) {
	f := newFixture(t)
	_, c := f.signIn(alice)
	f.clock.Add(20 * time.Minute)
	if w := f.request("GET", "/content", "", c, nil); loginCookie(w) != nil {
		t.Fatal("refreshed before half of the lifetime passed")
	}
	f.clock.Add(20 * time.Minute) // 40 of 60 minutes
	w := f.request("GET", "/content", "", c, nil)
	r := loginCookie(w)
	if w.Code != http.StatusNoContent || r == nil || r.MaxAge < 3500 {
		t.Fatalf("status %d refresh cookie %+v: want a full new lifetime", w.Code, r)
	}
	f.clock.Add(50 * time.Minute) // 90 minutes after sign-in: alive only thanks to the refresh
	if w := f.request("GET", "/content", "", r, nil); w.Code != http.StatusNoContent {
		t.Fatalf("refreshed token refused after its first lifetime: %d", w.Code)
	}
}

func TestRefusals(t *testing.T) {
	f := newFixture(t)
	_, good := f.signIn(alice)
	expired, _, err := f.emu.MintToken(imstest.TokenRequest{UserID: alice, ClientID: clientID,
		CreatedAt: f.clock.Now().Add(-3 * time.Hour), Lifetime: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		bearer string
		auth   string
		cookie *http.Cookie
		status int
		code   string
		reason string
	}{
		{name: "no credentials", status: 401, reason: auth.ReasonNoCredential},
		{name: "garbage cookie", cookie: &http.Cookie{Name: "login-token", Value: "garbage"}, status: 401, code: auth.CodeInvalidToken, reason: auth.ReasonInvalidToken},
		{name: "truncated cookie", cookie: &http.Cookie{Name: "login-token", Value: good.Value[:len(good.Value)/2]}, status: 401, code: auth.CodeInvalidToken, reason: auth.ReasonInvalidToken},
		{name: "other scheme", auth: "Basic dXNlcjpwYXNz", status: 401, code: auth.CodeInvalidRequest, reason: auth.ReasonNoCredential},
		{name: "bearer without token", auth: "Bearer", status: 400, code: auth.CodeInvalidRequest, reason: auth.ReasonInvalidToken},
		{name: "not a JWT", bearer: "not.a.jwt", status: 401, code: auth.CodeInvalidToken, reason: auth.ReasonInvalidToken},
		{name: "expired bearer", bearer: expired, status: 401, code: auth.CodeInvalidToken, reason: auth.ReasonExpiredToken},
		{name: "expired bearer beats a valid cookie", bearer: expired, cookie: good, status: 401, code: auth.CodeInvalidToken, reason: auth.ReasonExpiredToken},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			extra := map[string]string{}
			if tt.auth != "" {
				extra["Authorization"] = tt.auth
			}
			w := f.request("GET", "/content", tt.bearer, tt.cookie, extra)
			wantRefusal(t, w, tt.status, tt.code, tt.reason)
			if f.seen != nil {
				t.Error("next was called")
			}
		})
	}
}

func TestBadBearerBesideValidCookieKeepsTheCookie(t *testing.T) {
	f := newFixture(t)
	_, c := f.signIn(alice)
	w := f.request("GET", "/content", "not.a.jwt", c, nil)
	wantRefusal(t, w, http.StatusUnauthorized, auth.CodeInvalidToken, auth.ReasonInvalidToken)
	if cl := loginCookie(w); cl != nil {
		t.Fatalf("the valid login token's cookie was cleared: %+v", cl)
	}
	if w := f.request("GET", "/content", "", c, nil); w.Code != http.StatusNoContent {
		t.Fatalf("cookie refused after a bad bearer beside it: %d", w.Code)
	}
}

func TestOtherSchemeBesideValidCookieUsesCookie(t *testing.T) {
	f := newFixture(t)
	_, c := f.signIn(alice)
	w := f.request("GET", "/content", "", c, map[string]string{"Authorization": "Basic dXNlcjpwYXNz"})
	if w.Code != http.StatusNoContent || f.seen.UserID != alice {
		t.Fatalf("status %d: a browser's cached Basic credentials must not lock out its cookie", w.Code)
	}
}

func TestLogout(t *testing.T) {
	f := newFixture(t)
	_, c := f.signIn(alice)
	tests := []struct {
		name   string
		method string
		cookie *http.Cookie
		status int
	}{
		{"GET is refused", "GET", c, http.StatusMethodNotAllowed},
		{"POST without cookie succeeds", "POST", nil, http.StatusOK},
		{"POST with garbage cookie succeeds", "POST", &http.Cookie{Name: "login-token", Value: "x"}, http.StatusOK},
		{"POST revokes", "POST", c, http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := f.request(tt.method, "/gatehouse/logout", "", tt.cookie, nil)
			if w.Code != tt.status {
				t.Fatalf("status %d, want %d", w.Code, tt.status)
			}
			if tt.status == http.StatusOK {
				if cl := loginCookie(w); cl == nil || cl.MaxAge >= 0 {
					t.Errorf("cookie not cleared: %+v", cl)
				}
			}
		})
	}
	w := f.request("GET", "/content", "", c, nil)
	wantRefusal(t, w, http.StatusUnauthorized, auth.CodeInvalidToken, auth.ReasonInvalidToken)
	if n, _ := f.store.CountLoginTokens(context.Background()); n != 0 {
		t.Errorf("%d login tokens left after logout", n)
	}
}

// A store that cannot be used is a 503 that names the store and says when
// to retry: not "sign in again" (401), not a 500, and not an identity
// service outage.
func TestStoreDownIsUnavailableNotUnauthorized(t *testing.T) {
	for _, tc := range []struct {
		name   string
		bearer bool // a first sign-in; else a cookie past the session cache
	}{
		{"bearer sign-in", true},
		{"cookie read from the store", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			_, c := f.signIn(alice)
			tok := f.token(bob)
			_ = f.store.Close()
			f.clock.Add(time.Minute) // the cookie's cache entry is too old to trust
			var w *httptest.ResponseRecorder
			if tc.bearer {
				w = f.request("GET", "/content", tok, nil, nil)
			} else {
				w = f.request("GET", "/content", "", c, nil)
			}
			wantRefusal(t, w, http.StatusServiceUnavailable, "", auth.ReasonStoreUnavailable)
			if ra := w.Header().Get("Retry-After"); ra != "5" {
				t.Errorf("Retry-After %q, want 5", ra)
			}
		})
	}
}

// The identity carries the bearer's client id (whenever a bearer
// authenticated the request or came with it) and the user's organizations,
// for the inbound API check.
func TestIdentityCarriesClientIDAndOrgs(t *testing.T) {
	f := newFixture(t)
	tok, c := f.signIn(alice)
	for _, tc := range []struct {
		name     string
		bearer   string
		cookie   *http.Cookie
		method   auth.Method
		clientID string
	}{
		{"bearer reusing its login token", tok, nil, auth.MethodBearer, clientID},
		{"cookie and a same-user bearer", tok, c, auth.MethodCookie, clientID},
		{"cookie alone", "", c, auth.MethodCookie, ""},
		{"new sign-in", f.token(alice), nil, auth.MethodBearer, clientID},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := f.request("GET", "/content", tc.bearer, tc.cookie, nil)
			if w.Code != http.StatusNoContent {
				t.Fatalf("status %d: %s", w.Code, w.Body)
			}
			if f.seen.Method != tc.method || f.seen.ClientID != tc.clientID {
				t.Errorf("method %q client id %q, want %q %q", f.seen.Method, f.seen.ClientID, tc.method, tc.clientID)
			}
			if !slices.Equal(f.seen.Orgs, []string{orgID}) {
				t.Errorf("orgs %q, want [%s]", f.seen.Orgs, orgID)
			}
		})
	}
	// A bearer this step cannot use (another scheme) beside a valid cookie:
	// the cookie serves, and no client id is claimed.
	w := f.request("GET", "/content", "", c, map[string]string{"Authorization": "Basic dXNlcjpwYXNz"})
	if w.Code != http.StatusNoContent || f.seen.ClientID != "" {
		t.Errorf("status %d client id %q, want 204 and none", w.Code, f.seen.ClientID)
	}
}

// A request with the login-token cookie more than once is never
// authenticated from either cookie: it is refused with 400 and the cookie
// cleared, whichever comes first and whichever is valid. A bearer token
// alone may still sign it in, and sets a single fresh cookie.
func TestAmbiguousCookies(t *testing.T) {
	f := newFixture(t)
	aliceTok, ca := f.signIn(alice)
	_, cb := f.signIn(bob)
	line := func(values ...string) string {
		parts := make([]string, len(values))
		for i, v := range values {
			parts[i] = session.DefaultCookieName + "=" + v
		}
		return strings.Join(parts, "; ")
	}
	tests := []struct {
		name   string
		cookie string // the Cookie header
		bearer string
		status int
		user   string // who the request is authenticated as; "" for a refusal
	}{
		{"valid then garbage", line(ca.Value, "garbage"), "", http.StatusBadRequest, ""},
		{"garbage then valid", line("garbage", ca.Value), "", http.StatusBadRequest, ""},
		{"two valid, different users", line(ca.Value, cb.Value), "", http.StatusBadRequest, ""},
		{"two valid, other order", line(cb.Value, ca.Value), "", http.StatusBadRequest, ""},
		{"the same cookie twice", line(ca.Value, ca.Value), "", http.StatusBadRequest, ""},
		{"among other cookies", "theme=dark; " + line(ca.Value) + "; _ga=1; " + line(cb.Value), "", http.StatusBadRequest, ""},
		{"another scheme beside them", line(ca.Value, cb.Value), "-Basic dXNlcjpwYXNz", http.StatusBadRequest, ""},
		{"invalid bearer beside them", line(ca.Value, cb.Value), "not-a-token", http.StatusUnauthorized, ""},
		{"bearer beside them signs in", line(cb.Value, ca.Value), aliceTok, http.StatusNoContent, alice},
		{"bearer of the second cookie's user", line(ca.Value, cb.Value), f.token(bob), http.StatusNoContent, bob},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			extra := map[string]string{"Cookie": tt.cookie}
			bearerTok := tt.bearer
			if rest, ok := strings.CutPrefix(tt.bearer, "-"); ok {
				extra["Authorization"], bearerTok = rest, ""
			}
			w := f.request("GET", "/content", bearerTok, nil, extra)
			if w.Code != tt.status {
				t.Fatalf("status %d, want %d: %s", w.Code, tt.status, w.Body)
			}
			set := loginCookie(w)
			if tt.user == "" {
				if f.seen != nil {
					t.Fatalf("authenticated as %s", f.seen.UserID)
				}
				if tt.status == http.StatusBadRequest {
					wantRefusal(t, w, tt.status, auth.CodeInvalidRequest, auth.ReasonAmbiguousCookie)
				}
				if set == nil || set.MaxAge >= 0 || set.Path != "/" {
					t.Errorf("cookie not cleared: %+v", set)
				}
				return
			}
			if f.seen == nil || f.seen.UserID != tt.user || f.seen.Method != auth.MethodBearer {
				t.Fatalf("authenticated as %+v, want %s by bearer", f.seen, tt.user)
			}
			if n := len(w.Result().Cookies()); n != 1 || set == nil || set.MaxAge <= 0 {
				t.Fatalf("%d cookies set, login token %+v; want one fresh login token", n, set)
			}
			f.request("GET", "/content", "", set, nil)
			if f.seen == nil || f.seen.UserID != tt.user {
				t.Errorf("the fresh cookie authenticates %+v, want %s", f.seen, tt.user)
			}
		})
	}
	// Both login tokens still work alone: an ambiguous request revokes
	// nothing.
	for _, c := range []*http.Cookie{ca, cb} {
		if w := f.request("GET", "/content", "", c, nil); w.Code != http.StatusNoContent {
			t.Errorf("a login token stopped working after ambiguous requests: status %d", w.Code)
		}
	}
}

// Logout with the login-token cookie twice cannot tell which is the
// caller's: it revokes both and clears the cookie.
func TestLogoutAmbiguousCookies(t *testing.T) {
	f := newFixture(t)
	_, ca := f.signIn(alice)
	_, cb := f.signIn(bob)
	w := f.request("POST", "/gatehouse/logout", "", nil, map[string]string{
		"Cookie": "login-token=garbage; login-token=" + cb.Value + "; login-token=" + ca.Value})
	if w.Code != http.StatusOK {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	if cl := loginCookie(w); cl == nil || cl.MaxAge >= 0 {
		t.Errorf("cookie not cleared: %+v", cl)
	}
	for _, c := range []*http.Cookie{ca, cb} {
		w := f.request("GET", "/content", "", c, nil)
		wantRefusal(t, w, http.StatusUnauthorized, auth.CodeInvalidToken, auth.ReasonInvalidToken)
	}
}

// TestChangesDropReuse: a change notification about a user stops the
// login token handed out to their bearer from being handed out again; a
// change about someone or something else does not.
func TestChangesDropReuse(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change session.Change
		reused bool
	}{
		{"user changed", session.Change{Kind: session.ChangeUser, ID: alice}, false},
		{"user's tokens revoked", session.Change{Kind: session.ChangeUserTokens, ID: alice}, false},
		{"all", session.Change{Kind: session.ChangeAll}, false},
		{"a kind from a newer replica", session.Change{Kind: 200, ID: alice}, false},
		{"another user changed", session.Change{Kind: session.ChangeUser, ID: bob}, true},
		{"a token deleted", session.Change{Kind: session.ChangeToken, ID: alice}, true},
		{"a setting changed", session.Change{Kind: session.ChangeSetting, ID: alice}, true},
		{"feed lost", session.Change{Kind: session.ChangeLost}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			tok, c := f.signIn(alice)
			f.si.Changed(tc.change)
			w := f.request("GET", "/content", tok, nil, nil)
			again := loginCookie(w)
			if w.Code != http.StatusNoContent || again == nil {
				t.Fatalf("status %d, cookie %v", w.Code, again)
			}
			if reused := again.Value == c.Value; reused != tc.reused {
				t.Errorf("login token reused: %v, want %v", reused, tc.reused)
			}
		})
	}
}
