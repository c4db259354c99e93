package browser

import (
	"errors"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/gatehouse-proxy/gatehouse/auth"
	"github.com/gatehouse-proxy/gatehouse/auth/ims/imstest"
	"github.com/gatehouse-proxy/gatehouse/proxy"
	"github.com/gatehouse-proxy/gatehouse/session"
)

const (
	testClient = "gatehouse-web"
	testPublic = "https://aem.example.com"
	testUser   = "A11CE0000000000000000001@AdobeID"
)

// fixture is a Handler between the IMS emulator (a real token endpoint
// with the authorization code grant) and a recording sign-in step.
type fixture struct {
	t    *testing.T
	ims  *imstest.Server
	h    *Handler
	mu   sync.Mutex
	got  []string // access tokens handed to SignIn
	fail error    // SignIn's answer
	outs int      // SignOut calls
}

func newFixture(t *testing.T, secret string) *fixture {
	t.Helper()
	f := &fixture{t: t, ims: imstest.NewServer(imstest.Options{})}
	t.Cleanup(f.ims.Close)
	f.ims.AddUser(imstest.User{ID: testUser, Email: "alice@example.com", FirstName: "Alice"})
	if err := f.ims.AddBrowserClient(imstest.BrowserClient{ID: testClient, Secret: secret,
		RedirectURIs: []string{testPublic + "/gatehouse/callback"}}); err != nil {
		t.Fatal(err)
	}
	k, err := session.GenerateKeyPair()
	if err != nil {
		t.Fatal(err)
	}
	f.h, err = New(Config{
		IMSURL: f.ims.URL, ClientID: testClient, ClientSecret: secret, PublicURL: testPublic,
		Keys: []session.KeyPair{k}, CookieSecure: true,
		SignIn: func(w http.ResponseWriter, r *http.Request, token string) error {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.got = append(f.got, token)
			return f.fail
		},
		SignOut: func(w http.ResponseWriter, r *http.Request) error {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.outs++
			return f.fail
		},
		IsAPIPath:  proxy.NewPathMatcher("/api/").Match,
		SignOutURL: "https://ims.example.com/ims/logout/v1",
	})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// serve sends r to the endpoint name and returns the answer.
func (f *fixture) serve(name string, r *http.Request) *http.Response {
	f.t.Helper()
	rec := httptest.NewRecorder()
	f.h.Endpoints()[name].ServeHTTP(rec, r)
	return rec.Result()
}

// signIn starts a sign-in returning to rd: the redirect to IMS and the
// attempt cookie.
func (f *fixture) signIn(rd string) (*url.URL, *http.Cookie) {
	f.t.Helper()
	resp := f.serve("sign-in", httptest.NewRequest("GET", "/gatehouse/sign-in?rd="+url.QueryEscape(rd), nil))
	if resp.StatusCode != http.StatusFound {
		f.t.Fatalf("sign-in: status %d, want 302", resp.StatusCode)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		f.t.Fatal(err)
	}
	cs := resp.Cookies()
	if len(cs) != 1 {
		f.t.Fatalf("sign-in set %d cookies, want the attempt's", len(cs))
	}
	return loc, cs[0]
}

// authorize plays the person at the emulator's page: the user picked, the
// emulator's redirect back to the callback.
func (f *fixture) authorize(loc *url.URL) *url.URL {
	f.t.Helper()
	form := loc.Query()
	form.Set("user_id", testUser)
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.PostForm(f.ims.URL+"/ims/authorize/v2", form)
	if err != nil {
		f.t.Fatal(err)
	}
	resp.Body.Close()
	back, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || resp.StatusCode != http.StatusFound {
		f.t.Fatalf("emulator: %d %q, want a redirect with a code", resp.StatusCode, resp.Header.Get("Location"))
	}
	return back
}

func (f *fixture) callback(query string, cookies ...*http.Cookie) (*http.Response, string) {
	f.t.Helper()
	r := httptest.NewRequest("GET", "/gatehouse/callback?"+query, nil)
	for _, c := range cookies {
		r.AddCookie(c)
	}
	resp := f.serve("callback", r)
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

func TestSignInRedirectsToIMSWithStateAndPKCE(t *testing.T) {
	f := newFixture(t, "")
	loc, c := f.signIn("/content/a.html?x=1")
	q := loc.Query()
	if got := loc.Scheme + "://" + loc.Host + loc.Path; got != f.ims.URL+"/ims/authorize/v2" {
		t.Errorf("sign-in goes to %s, want IMS's authorization endpoint", got)
	}
	want := map[string]string{"client_id": testClient, "response_type": "code", "redirect_uri": testPublic + "/gatehouse/callback",
		"scope": "openid,AdobeID,read_organizations", "code_challenge_method": "S256"}
	for k, v := range want {
		if q.Get(k) != v {
			t.Errorf("%s = %q, want %q", k, q.Get(k), v)
		}
	}
	if len(q.Get("state")) != 43 || len(q.Get("code_challenge")) != 43 {
		t.Errorf("state %q and code_challenge %q: want 256 random bits each, base64url", q.Get("state"), q.Get("code_challenge"))
	}
	if !c.HttpOnly || !c.Secure || c.SameSite != http.SameSiteLaxMode || c.Path != "/" || c.MaxAge != 600 ||
		!strings.HasPrefix(c.Name, "__Host-gatehouse-signin-") {
		t.Errorf("attempt cookie %s: want __Host-, HttpOnly, Secure, SameSite=Lax, Path=/, Max-Age=600", c.String())
	}
	if strings.Contains(c.Value, q.Get("state")) || strings.Contains(c.Value, "content") {
		t.Error("the attempt cookie shows its content: it must be encrypted")
	}
	loc2, c2 := f.signIn("/")
	if loc2.Query().Get("state") == q.Get("state") || loc2.Query().Get("code_challenge") == q.Get("code_challenge") || c2.Name == c.Name {
		t.Error("two sign-ins share state, challenge or cookie")
	}
}

// S256 is base64url without padding of SHA-256; SHA-256("abc") is
// FIPS 180-2's first example, ba7816bf…f20015ad.
func TestS256(t *testing.T) {
	if got := S256("abc"); got != "ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0" {
		t.Errorf("S256 = %q", got)
	}
}

func TestCallbackSignsInAndReturnsToRD(t *testing.T) {
	for _, secret := range []string{"", "s3cret"} {
		t.Run("secret="+secret, func(t *testing.T) {
			f := newFixture(t, secret)
			loc, c := f.signIn("/content/a.html?x=1")
			back := f.authorize(loc)
			resp, body := f.callback(back.RawQuery, c)
			if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/content/a.html?x=1" {
				t.Fatalf("callback: %d to %q, want 302 to rd; body %s", resp.StatusCode, resp.Header.Get("Location"), body)
			}
			if len(f.got) != 1 || strings.Count(f.got[0], ".") != 2 {
				t.Fatalf("SignIn got %d tokens, want the one access token", len(f.got))
			}
			var cleared, marker bool
			for _, sc := range resp.Cookies() {
				switch {
				case sc.Name == c.Name && sc.MaxAge < 0:
					cleared = true
				case sc.Name == "__Host-gatehouse-browser":
					marker = sc.SameSite == http.SameSiteStrictMode && sc.HttpOnly && sc.Secure
				}
			}
			if !cleared || !marker {
				t.Errorf("callback cookies %q: want the attempt cleared and a Strict marker", resp.Header.Values("Set-Cookie"))
			}
			if resp.Header.Get("Cache-Control") != "no-store" || resp.Header.Get("Referrer-Policy") != "no-referrer" {
				t.Error("callback answer may be cached or leak its URL")
			}
		})
	}
}

func TestCallbackErrors(t *testing.T) {
	f := newFixture(t, "")
	otherLoc, other := f.signIn("/")
	_ = otherLoc
	tests := []struct {
		name   string
		setup  func() (query string, cookies []*http.Cookie)
		status int
		calls  int // SignIn calls expected
	}{
		{"IMS says access_denied", func() (string, []*http.Cookie) {
			loc, c := f.signIn("/x")
			return "error=access_denied&error_description=no&state=" + loc.Query().Get("state"), []*http.Cookie{c}
		}, http.StatusForbidden, 0},
		{"IMS says server_error", func() (string, []*http.Cookie) {
			return "error=server_error", nil
		}, http.StatusServiceUnavailable, 0},
		{"IMS says invalid_scope", func() (string, []*http.Cookie) {
			return "error=invalid_scope", nil
		}, http.StatusBadRequest, 0},
		{"no state", func() (string, []*http.Cookie) {
			loc, c := f.signIn("/x")
			back := f.authorize(loc)
			return "code=" + back.Query().Get("code"), []*http.Cookie{c}
		}, http.StatusBadRequest, 0},
		{"no code", func() (string, []*http.Cookie) {
			loc, c := f.signIn("/x")
			return "state=" + loc.Query().Get("state"), []*http.Cookie{c}
		}, http.StatusBadRequest, 0},
		{"no attempt cookie", func() (string, []*http.Cookie) {
			loc, _ := f.signIn("/x")
			return f.authorize(loc).RawQuery, nil
		}, http.StatusForbidden, 0},
		{"another attempt's cookie", func() (string, []*http.Cookie) {
			loc, _ := f.signIn("/x")
			c := *other
			_, real := f.signIn("/y")
			c.Name = real.Name // renamed to fit: still the other attempt's value
			return f.authorize(loc).RawQuery, []*http.Cookie{&c}
		}, http.StatusForbidden, 0},
		{"tampered state, same cookie name", func() (string, []*http.Cookie) {
			loc, c := f.signIn("/x")
			q := f.authorize(loc).Query()
			s := q.Get("state")
			q.Set("state", s[:len(s)-1]+map[bool]string{true: "B", false: "A"}[strings.HasSuffix(s, "A")])
			return q.Encode(), []*http.Cookie{c}
		}, http.StatusForbidden, 0},
		{"tampered cookie", func() (string, []*http.Cookie) {
			loc, c := f.signIn("/x")
			c.Value = c.Value[:len(c.Value)-2] + "AA"
			return f.authorize(loc).RawQuery, []*http.Cookie{c}
		}, http.StatusForbidden, 0},
		{"code used twice (the cookie kept)", func() (string, []*http.Cookie) {
			loc, c := f.signIn("/x")
			back := f.authorize(loc)
			if resp, _ := f.callback(back.RawQuery, c); resp.StatusCode != http.StatusFound {
				t.Fatalf("first use: %d", resp.StatusCode)
			}
			return back.RawQuery, []*http.Cookie{c}
		}, http.StatusBadRequest, 0},
		{"IMS down", func() (string, []*http.Cookie) {
			loc, c := f.signIn("/x")
			back := f.authorize(loc)
			f.ims.SetDown(true)
			return back.RawQuery, []*http.Cookie{c}
		}, http.StatusServiceUnavailable, 0},
		{"user disabled", func() (string, []*http.Cookie) {
			loc, c := f.signIn("/x")
			f.fail = auth.UserDisabled(errors.New("disabled"))
			return f.authorize(loc).RawQuery, []*http.Cookie{c}
		}, http.StatusForbidden, 1},
		{"store down", func() (string, []*http.Cookie) {
			loc, c := f.signIn("/x")
			f.fail = auth.StoreUnavailable("sign-in", errors.New("disk full"))
			return f.authorize(loc).RawQuery, []*http.Cookie{c}
		}, http.StatusServiceUnavailable, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f.ims.SetDown(false)
			f.fail = nil
			query, cookies := tt.setup()
			f.got = nil
			resp, body := f.callback(query, cookies...)
			if resp.StatusCode != tt.status {
				t.Errorf("status %d, want %d; body %s", resp.StatusCode, tt.status, body)
			}
			if len(f.got) != tt.calls {
				t.Errorf("SignIn called %d times, want %d", len(f.got), tt.calls)
			}
			if !strings.Contains(resp.Header.Get("Content-Type"), "text/html") || !strings.Contains(body, `href="/gatehouse/sign-in?rd=`) ||
				!strings.Contains(body, "Try again") {
				t.Errorf("want an HTML page with a Try again link to the sign-in; got %s", body)
			}
			q, _ := url.ParseQuery(query)
			for _, secret := range []string{q.Get("code"), q.Get("state")} {
				if secret != "" && strings.Contains(body, secret) {
					t.Errorf("the page shows the code or state: %s", body)
				}
			}
		})
	}
}

func TestSafeRedirect(t *testing.T) {
	reserved := proxy.NewPathMatcher("/gatehouse/")
	tests := []struct{ rd, want string }{
		{"/content/a.html", "/content/a.html"},
		{"/content/a.html?x=1&y=%C3%A9", "/content/a.html?x=1&y=%C3%A9"},
		{"/", "/"},
		{"/a//b", "/a//b"},
		{"", "/"},
		{"//evil.example", "/"},
		{"//evil.example/path", "/"},
		{`/\evil.example`, "/"},
		{`\\evil.example`, "/"},
		{"/%2Fevil.example", "/"},
		{"/%2F%2Fevil.example", "/"},
		{"%2F%2Fevil.example", "/"},
		{"/%5Cevil.example", "/"},
		{"/%252F%252Fevil.example", "/"},
		{"/%25252F%25252Fevil.example", "/"},
		{"https://evil.example/", "/"},
		{"http:evil.example", "/"},
		{"HTTPS://evil.example", "/"},
		{"javascript:alert(1)", "/"},
		{"evil.example", "/"},
		{"/\t/evil.example", "/"},
		{"/%09/evil.example", "/"},
		{"/\n/evil.example", "/"},
		{"/%0d%0aSet-Cookie:x=1", "/"},
		{"/a\x00b", "/"},
		{"/a\x7fb", "/"},
		{"/%zz", "/"},
		{"/gatehouse/sign-out", "/"},
		{"/Gatehouse/../gatehouse/sign-out", "/"},
		{"/%67atehouse/sign-out", "/"},
		{"/" + strings.Repeat("a", maxRedirectLen), "/"},
	}
	for _, tt := range tests {
		if got := SafeRedirect(tt.rd, reserved); got != tt.want {
			t.Errorf("SafeRedirect(%q) = %q, want %q", tt.rd, got, tt.want)
		}
	}
}

func TestIsBrowser(t *testing.T) {
	const chrome = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,image/apng,*/*;q=0.8,application/signed-exchange;v=b3;q=0.7"
	tests := []struct {
		name, method, accept, authz string
		want                        bool
	}{
		{"Chromium navigation", "GET", chrome, "", true},
		{"Firefox navigation", "GET", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", "", true},
		{"HEAD", "HEAD", "text/html", "", true},
		{"POST", "POST", chrome, "", false},
		{"with Authorization", "GET", chrome, "Bearer x", false},
		{"JSON first", "GET", "application/json, text/html;q=0.5", "", false},
		{"html refused", "GET", "text/html;q=0, */*", "", false},
		{"image", "GET", "image/avif,image/webp,*/*;q=0.8", "", false},
		{"fetch", "GET", "*/*", "", false},
		{"curl", "GET", "", "", false},
		{"huge", "GET", "text/html" + strings.Repeat(",a/b", 400), "", false},
	}
	for _, tt := range tests {
		r := httptest.NewRequest(tt.method, "/content/a.html", nil)
		if tt.accept != "" {
			r.Header.Set("Accept", tt.accept)
		}
		if tt.authz != "" {
			r.Header.Set("Authorization", tt.authz)
		}
		if got := IsBrowser(r); got != tt.want {
			t.Errorf("%s: IsBrowser = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestRedirectLeavesAPIPathsAlone(t *testing.T) {
	f := newFixture(t, "")
	for path, want := range map[string]string{
		"/content/a.html?x=1": "/gatehouse/sign-in?rd=%2Fcontent%2Fa.html%3Fx%3D1",
		"/api/items":          "",
		"/API/%2e%2e/api/x":   "",
	} {
		r := httptest.NewRequest("GET", path, nil)
		r.Header.Set("Accept", "text/html")
		if ok := f.h.IsBrowser(r); ok != (want != "") || (ok && f.h.SignInURL(r) != want) {
			t.Errorf("%s: IsBrowser %v, SignInURL %q; want %q", path, ok, f.h.SignInURL(r), want)
		}
	}
}

func TestSignOutNeedsSameSite(t *testing.T) {
	tests := []struct {
		name, method, site, origin string
		marker                     bool
		status, outs               int
	}{
		{"link on this site", "GET", "same-origin", "", false, http.StatusFound, 1},
		{"address bar", "GET", "none", "", false, http.StatusFound, 1},
		{"from another site", "GET", "cross-site", "", true, http.StatusOK, 0}, // asked to confirm
		{"from a sibling subdomain", "GET", "same-site", "", true, http.StatusOK, 0},
		{"old browser, marker", "GET", "", "", true, http.StatusFound, 1},
		{"old browser, no marker", "GET", "", "", false, http.StatusOK, 0},
		{"confirmed", "POST", "same-origin", testPublic, false, http.StatusFound, 1},
		{"POST from this origin", "POST", "", testPublic, false, http.StatusFound, 1},
		{"POST from another site", "POST", "cross-site", "https://evil.example", false, http.StatusForbidden, 0},
		{"POST, other Origin", "POST", "", "https://evil.example", true, http.StatusForbidden, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, "")
			r := httptest.NewRequest(tt.method, "/gatehouse/sign-out", nil)
			if tt.site != "" {
				r.Header.Set("Sec-Fetch-Site", tt.site)
			}
			if tt.origin != "" {
				r.Header.Set("Origin", tt.origin)
			}
			if tt.marker {
				r.AddCookie(&http.Cookie{Name: "__Host-gatehouse-browser", Value: "1"})
			}
			resp := f.serve("sign-out", r)
			if resp.StatusCode != tt.status || f.outs != tt.outs {
				t.Errorf("status %d, SignOut called %d times; want %d, %d", resp.StatusCode, f.outs, tt.status, tt.outs)
			}
			if tt.outs == 1 && resp.Header.Get("Location") != "https://ims.example.com/ims/logout/v1" {
				t.Errorf("signed out to %q, want SignOutURL", resp.Header.Get("Location"))
			}
		})
	}
}

func TestNewRefusesHalfConfigs(t *testing.T) {
	k, _ := session.GenerateKeyPair()
	ok := Config{IMSURL: "https://ims.example.com", ClientID: "c", PublicURL: testPublic, Keys: []session.KeyPair{k},
		SignIn:  func(http.ResponseWriter, *http.Request, string) error { return nil },
		SignOut: func(http.ResponseWriter, *http.Request) error { return nil }}
	if _, err := New(ok); err != nil {
		t.Fatal(err)
	}
	for name, change := range map[string]func(*Config){
		"no client":        func(c *Config) { c.ClientID = "" },
		"no keys":          func(c *Config) { c.Keys = nil },
		"public URL path":  func(c *Config) { c.PublicURL = testPublic + "/x" },
		"public URL empty": func(c *Config) { c.PublicURL = "" },
		"sign-out URL":     func(c *Config) { c.SignOutURL = "/local" },
		"no SignIn":        func(c *Config) { c.SignIn = nil },
	} {
		c := ok
		change(&c)
		if _, err := New(c); err == nil {
			t.Errorf("%s: New accepted it", name)
		}
	}
}

// POST <prefix>logout answers JSON, except to a browser's form, which is
// signed out as by the sign-out page.
func TestLogoutForBrowsers(t *testing.T) {
	f := newFixture(t, "")
	jsonLogout := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte(`{"status":"signed out"}`)) })
	for _, tt := range []struct {
		accept string
		status int
		outs   int
	}{
		{"text/html,application/xhtml+xml,*/*;q=0.8", http.StatusFound, 1},
		{"application/json", http.StatusOK, 0},
		{"", http.StatusOK, 0},
	} {
		f.outs = 0
		r := httptest.NewRequest("POST", "/gatehouse/logout", nil)
		if tt.accept != "" {
			r.Header.Set("Accept", tt.accept)
		}
		rec := httptest.NewRecorder()
		f.h.Logout(jsonLogout).ServeHTTP(rec, r)
		if rec.Code != tt.status || f.outs != tt.outs {
			t.Errorf("Accept %q: %d, SignOut %d times; want %d, %d", tt.accept, rec.Code, f.outs, tt.status, tt.outs)
		}
	}
}

// TestAttemptKeysFollowRotation rotates the login-token cookie keys under
// a running Handler (A, then B and A, then B alone, as `gatehouse keys
// rotate` and `drop-old` do in the store): attempts started before a
// rotation finish, new attempts are signed with the new key, so that a
// replica that knows only B reads them, and an attempt signed with a
// dropped key is refused.
func TestAttemptKeysFollowRotation(t *testing.T) {
	a, err := session.GenerateKeyPair()
	if err != nil {
		t.Fatal(err)
	}
	b, err := session.GenerateKeyPair()
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	keys := []session.KeyPair{a}
	setKeys := func(ks ...session.KeyPair) {
		mu.Lock()
		defer mu.Unlock()
		keys = ks
	}
	f := newFixture(t, "")
	cfg := f.h.cfg
	cfg.KeysNow = func() []session.KeyPair {
		mu.Lock()
		defer mu.Unlock()
		return keys
	}
	if f.h, err = New(cfg); err != nil {
		t.Fatal(err)
	}
	// A replica restarted after drop-old: B alone, from its start.
	replica := cfg
	replica.KeysNow, replica.Keys = nil, []session.KeyPair{b}
	restarted, err := New(replica)
	if err != nil {
		t.Fatal(err)
	}
	finish := func(h *Handler, loc *url.URL, c *http.Cookie) int {
		t.Helper()
		running := f.h
		f.h = h
		defer func() { f.h = running }()
		resp, _ := f.callback(f.authorize(loc).RawQuery, c)
		return resp.StatusCode
	}

	locA, cA := f.signIn("/a")    // under A
	locA2, cA2 := f.signIn("/a2") // under A
	setKeys(b, a)                 // rotate
	locB, cB := f.signIn("/b")    // under B
	if got := finish(f.h, locA, cA); got != http.StatusFound {
		t.Errorf("an attempt started before the rotation: callback %d, want 302", got)
	}
	if got := finish(restarted, locB, cB); got != http.StatusFound {
		t.Errorf("an attempt started after the rotation, on a replica with only the new key: callback %d, want 302", got)
	}
	setKeys(b) // drop-old
	if got := finish(f.h, locA2, cA2); got != http.StatusForbidden {
		t.Errorf("an attempt signed with a dropped key: callback %d, want 403", got)
	}
}

func TestRefusalPage(t *testing.T) {
	f := newFixture(t, "")
	for _, tc := range []struct {
		reason, target string
		status         int
		wantPage       bool
		title, link    string
	}{
		{auth.ReasonUserDisabled, "/content/a.html", http.StatusForbidden, true, "Account disabled", "/gatehouse/sign-in?rd=%2Fcontent%2Fa.html"},
		{auth.ReasonAmbiguousCookie, "/content/a.html", http.StatusBadRequest, true, "Please sign in again", "/gatehouse/sign-in?rd=%2Fcontent%2Fa.html"},
		{auth.ReasonUnavailable, "/content/a.html?x=1", http.StatusServiceUnavailable, true, "Please try again in a moment", "/content/a.html?x=1"},
		{auth.ReasonStoreUnavailable, "/content/a.html", http.StatusServiceUnavailable, true, "Please try again in a moment", "/content/a.html"},
		{auth.ReasonServiceError, "/content/a.html", http.StatusBadGateway, true, "Please try again in a moment", "/content/a.html"},
		// The link back is never to another site, nor into Gatehouse.
		{auth.ReasonUnavailable, "//evil.example/x", http.StatusServiceUnavailable, true, "Please try again in a moment", "/"},
		{auth.ReasonForbidden, "/content/a.html", http.StatusForbidden, false, "", ""},
		{"", "/content/a.html", http.StatusBadRequest, false, "", ""},
	} {
		t.Run(tc.reason+" "+tc.target, func(t *testing.T) {
			w := httptest.NewRecorder()
			r := httptest.NewRequest("GET", "http://gatehouse.test"+tc.target, nil)
			if got := f.h.RefusalPage(w, r, tc.status, tc.reason); got != tc.wantPage {
				t.Fatalf("RefusalPage = %v, want %v", got, tc.wantPage)
			}
			if !tc.wantPage {
				if w.Body.Len() != 0 || len(w.Header()) != 0 {
					t.Errorf("wrote %d %q, want nothing", w.Code, w.Body)
				}
				return
			}
			body := w.Body.String()
			if w.Code != tc.status || !strings.Contains(body, "<title>"+tc.title+"</title>") ||
				!strings.Contains(body, `href="`+html.EscapeString(tc.link)+`"`) {
				t.Errorf("%d %s; want %d, title %q, link %q", w.Code, body, tc.status, tc.title, tc.link)
			}
			if !strings.HasPrefix(w.Header().Get("Content-Type"), "text/html") || w.Header().Get("Cache-Control") != "no-store" {
				t.Errorf("headers %v", w.Header())
			}
		})
	}
}
