package test

import (
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-proxy/gatehouse/auth/ims"
	"github.com/gatehouse-proxy/gatehouse/auth/ims/imstest"
	"github.com/gatehouse-proxy/gatehouse/proxy/idheader"
)

// A user whose IMS groups have hostile names: a comma, spaces at the ends,
// a percent sign. No mapping rule matches them, so they pass through under
// their own names, and each must reach the upstream as exactly one group.
var mallory = imsUser{"3A11041200000000000000003@AdobeID", "mallory@example.com",
	[]string{" administrators", "100%", "dam-users", "x,administrators"}}

func addMallory(e *imstest.Emulator) {
	e.AddUser(imstest.User{
		ID: mallory.id, Email: mallory.email, FirstName: "Mallory", LastName: "Maker",
		Orgs: []imstest.Org{{ID: orgID, Name: "Example Brand", Groups: []ims.Group{
			{GroupName: "x,administrators", Ident: "6601", Role: "TEAM_MEMBER"},
			{GroupName: " administrators", Ident: "6602", Role: "TEAM_MEMBER"},
			{GroupName: "100%", Ident: "6603", Role: "TEAM_MEMBER"},
			{GroupName: "AEM-Authors", Ident: "4711", Role: "TEAM_MEMBER"},
		}}},
	})
}

// TestHostileGroupNamesReachUpstreamIntact: a group named
// "x,administrators" in IMS once reached the upstream as two groups, one
// of them "administrators"; anyone who may name a group could hand
// themselves any local group.
func TestHostileGroupNamesReachUpstreamIntact(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	addMallory(w.ims.Emulator)
	p := w.start(t, nil)
	r := p.do(t, request{path: whoami, bearer: w.mint(t, mallory, clientID)})
	wantUser(t, r, mallory)
	raw := w.rec.last(t).Values("X-Forwarded-Groups")
	if len(raw) != 1 {
		t.Fatalf("upstream got %d X-Forwarded-Groups headers: %q", len(raw), raw)
	}
	got, err := idheader.DecodeGroups(raw[0])
	if err != nil || !slices.Equal(got, mallory.groups) {
		t.Errorf("X-Forwarded-Groups %q decodes to %q (%v), want %q", raw[0], got, err, mallory.groups)
	}
	if slices.Contains(got, "administrators") {
		t.Error("a group name made the user an administrator")
	}
}

// TestAmbiguousLoginCookies: two login-token cookies in one request (a
// site under the same domain can plant one) are refused with 400 and the
// cookie cleared, whichever is valid; a bearer beside them signs in.
func TestAmbiguousLoginCookies(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	p := w.start(t, nil)
	aliceTok := w.mint(t, alice, clientID)
	ca := p.do(t, request{path: whoami, bearer: aliceTok}).newCookie(t).value
	cb := p.do(t, request{path: whoami, bearer: w.mint(t, bob, clientID)}).newCookie(t).value
	hits := w.backend.Requests()
	for _, tc := range []struct{ name, cookie string }{
		{"valid then garbage", "login-token=" + ca + "; login-token=garbage"},
		{"garbage then valid", "login-token=garbage; login-token=" + ca},
		{"two users", "login-token=" + cb + "; login-token=" + ca},
	} {
		r := p.do(t, request{path: whoami, header: map[string][]string{"Cookie": {tc.cookie}}})
		wantAuthError(t, r, http.StatusBadRequest, "invalid_request", "AMBIGUOUS_COOKIE")
		r.wantClearedCookie(t)
		if !strings.Contains(string(r.body), "clear cookies") {
			t.Errorf("%s: the answer does not say what to do: %s", tc.name, r.body)
		}
	}
	if n := w.backend.Requests() - hits; n != 0 {
		t.Errorf("%d ambiguous requests reached the upstream", n)
	}
	r := p.do(t, request{path: whoami, bearer: aliceTok, header: map[string][]string{"Cookie": {"login-token=" + cb + "; login-token=garbage"}}})
	wantUser(t, r, alice)
	wantUser(t, p.do(t, request{path: whoami, cookie: r.newCookie(t).value}), alice)
}

// TestCookieNameSetting: GATEHOUSE_COOKIE_NAME names the cookie Gatehouse
// issues, accepts, clears and keeps from the upstream.
func TestCookieNameSetting(t *testing.T) {
	t.Parallel()
	const name = "__Host-login-token"
	w := newWorld(t)
	p := w.start(t, map[string]string{"COOKIE_NAME": name, "COOKIE_SECURE": "true"})
	r := p.do(t, request{path: whoami, bearer: w.mint(t, alice, clientID)})
	wantUser(t, r, alice)
	c := namedCookie(t, r, name)
	if c == nil || c.Value == "" || c.Path != "/" || c.Domain != "" || !c.Secure || !c.HttpOnly {
		t.Fatalf("Set-Cookie %q: want a %s cookie with Path=/, Secure, HttpOnly and no Domain", r.header.Values("Set-Cookie"), name)
	}
	before := w.calls()
	r = p.do(t, request{path: whoami, header: map[string][]string{"Cookie": {"theme=dark; " + name + "=" + c.Value}}})
	wantUser(t, r, alice)
	w.wantCalls(t, before, imsCalls{})
	if got := w.rec.last(t).Get("Cookie"); strings.Contains(got, name) || !strings.Contains(got, "theme=dark") {
		t.Errorf("upstream Cookie %q: want the other cookies without %s", got, name)
	}
	// The default name is just another cookie now.
	r = p.do(t, request{path: whoami, cookie: c.Value})
	wantAuthError(t, r, http.StatusUnauthorized, "", "NO_CREDENTIALS")
	r = p.do(t, request{method: http.MethodPost, path: "/gatehouse/logout", header: map[string][]string{"Cookie": {name + "=" + c.Value}}})
	wantStatus(t, r, http.StatusOK)
	if cl := namedCookie(t, r, name); cl == nil || cl.Value != "" || cl.MaxAge >= 0 || cl.Path != "/" {
		t.Errorf("logout Set-Cookie %q: want %s cleared", r.header.Values("Set-Cookie"), name)
	}
}

// namedCookie is the cookie called name that r sets, or nil.
func namedCookie(t *testing.T, r *response, name string) *http.Cookie {
	t.Helper()
	for _, line := range r.header.Values("Set-Cookie") {
		c, err := http.ParseSetCookie(line)
		if err != nil {
			t.Fatalf("Set-Cookie %q: %v", line, err)
		}
		if c.Name == name {
			return c
		}
	}
	return nil
}

// TestCookieNameRefusedAtStartUp: a cookie name browsers would drop, or
// that is not a cookie name at all, stops start-up with a message naming
// the setting.
func TestCookieNameRefusedAtStartUp(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, secure string }{
		{"__Host-login-token", "false"},
		{"__Secure-login-token", "false"},
		{"login token", "true"},
	} {
		env := append(cleanEnv(),
			"GATEHOUSE_LISTEN=127.0.0.1:0", "GATEHOUSE_UPSTREAM=http://127.0.0.1:9", "GATEHOUSE_IMS_URL=http://127.0.0.1:9",
			"GATEHOUSE_STORE=sqlite:"+filepath.Join(t.TempDir(), "g.db"), "GATEHOUSE_LOG_FORMAT=json",
			"GATEHOUSE_COOKIE_NAME="+tc.name, "GATEHOUSE_COOKIE_SECURE="+tc.secure)
		code, _, stderr := runBinary(t, 10*time.Second, env, "serve")
		if code != 1 || !strings.Contains(stderr, "GATEHOUSE_COOKIE_NAME") {
			t.Errorf("%q secure=%s: exit status %d, stderr:\n%s\nwant 1 and a message naming GATEHOUSE_COOKIE_NAME", tc.name, tc.secure, code, stderr)
		}
	}
}
