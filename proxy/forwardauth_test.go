package proxy

import (
	"cmp"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/gatehouse-proxy/gatehouse/auth"
)

// seenByAuth records the method, path and query the authentication step
// was given, and has it set a cookie, as sign-in does.
type seenByAuth struct {
	mu                    sync.Mutex
	method, path, query   string
	calls                 int
	setCookie             string
	fake                  *fakeAuth
	identityHeadersArrive bool
}

func (s *seenByAuth) middleware(next http.Handler) http.Handler {
	inner := s.fake.middleware(next)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.method, s.path, s.query = r.Method, r.URL.Path, r.URL.RawQuery
		s.calls++
		s.mu.Unlock()
		if s.setCookie != "" {
			w.Header().Add("Set-Cookie", s.setCookie)
		}
		inner.ServeHTTP(w, r)
	})
}

// newForwardAuthHarness is a harness whose authentication step records
// what it was asked about.
func newForwardAuthHarness(t testing.TB) (*harness, *seenByAuth) {
	t.Helper()
	seen := &seenByAuth{fake: &fakeAuth{}}
	h := newHarness(t, nil, func(c *Config) { c.Authenticate = seen.middleware })
	h.auth = seen.fake
	return h, seen
}

func TestForwardAuthOriginalRequest(t *testing.T) {
	long := "/" + strings.Repeat("a", maxOriginalURILen)
	tests := []struct {
		name      string
		header    map[string][]string
		status    int
		method    string // what the authentication step saw
		path      string
		query     string
		errorText string // in the 400's body
	}{
		{"no original headers: GET /", nil, 200, "GET", "/", "", ""},
		{"Traefik's pair", map[string][]string{"X-Forwarded-Method": {"POST"}, "X-Forwarded-Uri": {"/api/assets?limit=1"}},
			200, "POST", "/api/assets", "limit=1", ""},
		{"nginx's pair", map[string][]string{"X-Original-Method": {"PUT"}, "X-Original-URI": {"/content/dam/a%20b.png"}},
			200, "PUT", "/content/dam/a b.png", "", ""},
		{"both pairs agree", map[string][]string{"X-Forwarded-Uri": {"/api/x"}, "X-Original-Uri": {"/api/x"},
			"X-Forwarded-Method": {"DELETE"}, "X-Original-Method": {"DELETE"}}, 200, "DELETE", "/api/x", "", ""},
		{"URI only", map[string][]string{"X-Original-URI": {"/bin/querybuilder.json"}}, 200, "GET", "/bin/querybuilder.json", "", ""},
		{"method only", map[string][]string{"X-Original-Method": {"PATCH"}}, 200, "PATCH", "/", "", ""},
		{"double slash is a path, not a host", map[string][]string{"X-Original-URI": {"//api/x"}}, 200, "GET", "//api/x", "", ""},
		{"a client's X-Forwarded-Uri behind nginx", map[string][]string{"X-Forwarded-Uri": {"/public"}, "X-Original-URI": {"/api/x"}},
			400, "", "", "", "X-Forwarded-Uri and X-Original-Uri disagree"},
		{"a client's X-Original-Method behind Traefik", map[string][]string{"X-Forwarded-Method": {"POST"}, "X-Original-Method": {"GET"}},
			400, "", "", "", "disagree"},
		{"URI twice", map[string][]string{"X-Original-URI": {"/a", "/api/x"}}, 400, "", "", "", "more than once"},
		{"absolute URI", map[string][]string{"X-Forwarded-Uri": {"http://backend/api/x"}}, 400, "", "", "", "must be a path"},
		{"relative path", map[string][]string{"X-Forwarded-Uri": {"api/x"}}, 400, "", "", "", "must be a path"},
		{"asterisk", map[string][]string{"X-Forwarded-Uri": {"*"}}, 400, "", "", "", "must be a path"},
		{"bad escape", map[string][]string{"X-Forwarded-Uri": {"/api/%zz"}}, 400, "", "", "", "not a valid request path"},
		{"too long", map[string][]string{"X-Original-URI": {long}}, 400, "", "", "", "longer than 8192 bytes"},
		{"longest accepted", map[string][]string{"X-Original-URI": {long[:maxOriginalURILen]}}, 200, "GET", long[:maxOriginalURILen], "", ""},
		{"tab", map[string][]string{"X-Original-URI": {"/api/\tx"}}, 400, "", "", "", "control characters"},
		{"NUL", map[string][]string{"X-Original-URI": {"/api/\x00x"}}, 400, "", "", "", "control characters"},
		{"DEL", map[string][]string{"X-Original-URI": {"/api/\x7f"}}, 400, "", "", "", "control characters"},
		{"method with a space", map[string][]string{"X-Forwarded-Method": {"GE T"}}, 400, "", "", "", "not an HTTP method"},
		{"method too long", map[string][]string{"X-Forwarded-Method": {strings.Repeat("G", 33)}}, 400, "", "", "", "longer than 32"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, seen := newForwardAuthHarness(t)
			// In process, so that no client refuses or rewrites the values.
			r := httptest.NewRequest(http.MethodGet, "/gatehouse/auth", nil)
			r.Header.Set("Authorization", "Bearer good")
			for k, v := range tt.header {
				r.Header[http.CanonicalHeaderKey(k)] = v
			}
			w := httptest.NewRecorder()
			h.handler.ServeHTTP(w, r)
			if w.Code != tt.status {
				t.Fatalf("status %d, want %d (body %q)", w.Code, tt.status, w.Body)
			}
			if tt.status != 200 {
				if got := w.Header().Get("X-Reason"); got != ReasonBadForwardedRequest {
					t.Errorf("X-Reason %q", got)
				}
				if !strings.Contains(w.Body.String(), tt.errorText) {
					t.Errorf("body %q does not say %q", w.Body, tt.errorText)
				}
				if seen.calls != 0 {
					t.Error("the authentication step ran for a bad original request")
				}
				return
			}
			if seen.method != tt.method || seen.path != tt.path || seen.query != tt.query {
				t.Errorf("authentication saw %s %q ?%q, want %s %q ?%q", seen.method, seen.path, seen.query, tt.method, tt.path, tt.query)
			}
			if n := h.upstream.hits.Load(); n != 0 {
				t.Errorf("upstream hit %d times", n)
			}
		})
	}
}

func TestForwardAuthAnswer(t *testing.T) {
	spoofed := map[string][]string{
		"X-Forwarded-User": {"admin"}, "X_Forwarded_Groups": {"administrators"}, "x-forwarded-email": {"admin@evil.example"},
	}
	hostile := &auth.Identity{UserID: "u 1@AdobeID", Email: "ada@example.com", Groups: []string{"x,administrators", " authors"}}
	tests := []struct {
		name      string
		identity  *auth.Identity
		method    string
		header    map[string][]string
		setCookie string
		status    int
		want      http.Header // identity headers of the answer, exactly
	}{
		{"bearer", testUser, "GET", map[string][]string{"Authorization": {"Bearer good"}}, "", 200, http.Header{
			"X-Forwarded-User": {testUser.UserID}, "X-Forwarded-Email": {testUser.Email}, "X-Forwarded-Groups": {"authors,dam-users"}}},
		{"cookie, with spoofed identity headers", testUser, "GET", merge(spoofed, map[string][]string{"Cookie": {"login-token=good1"}}), "", 200, http.Header{
			"X-Forwarded-User": {testUser.UserID}, "X-Forwarded-Email": {testUser.Email}, "X-Forwarded-Groups": {"authors,dam-users"}}},
		{"encoded as upstream headers are", hostile, "GET", map[string][]string{"Authorization": {"Bearer good"}}, "", 200, http.Header{
			"X-Forwarded-User": {"u 1@AdobeID"}, "X-Forwarded-Email": {"ada@example.com"}, "X-Forwarded-Groups": {"x%2Cadministrators,%20authors"}}},
		{"no groups: no groups header", &auth.Identity{UserID: "u2@AdobeID"}, "GET", merge(spoofed, map[string][]string{"Authorization": {"Bearer good"}}), "", 200,
			http.Header{"X-Forwarded-User": {"u2@AdobeID"}}},
		{"login token issued", testUser, "GET", map[string][]string{"Authorization": {"Bearer good"}}, "login-token=new; Path=/", 200, http.Header{
			"X-Forwarded-User": {testUser.UserID}, "X-Forwarded-Email": {testUser.Email}, "X-Forwarded-Groups": {"authors,dam-users"}}},
		{"HEAD", testUser, "HEAD", map[string][]string{"Authorization": {"Bearer good"}}, "", 200, http.Header{
			"X-Forwarded-User": {testUser.UserID}, "X-Forwarded-Email": {testUser.Email}, "X-Forwarded-Groups": {"authors,dam-users"}}},
		{"refused", testUser, "GET", spoofed, "", 401, http.Header{}},
		{"POST", testUser, "POST", map[string][]string{"Authorization": {"Bearer good"}}, "", 405, http.Header{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, seen := newForwardAuthHarness(t)
			h.auth.identityOver = tt.identity
			seen.setCookie = tt.setCookie
			req := h.newRequest(t, tt.method, "/gatehouse/auth", nil)
			for k, v := range tt.header {
				req.Header[k] = v // as written, underscores and case included
			}
			res, body := h.do(t, req)
			if res.StatusCode != tt.status {
				t.Fatalf("status %d, want %d (body %q)", res.StatusCode, tt.status, body)
			}
			got := http.Header{}
			for k, v := range res.Header {
				if identityLike(k) {
					got[k] = v
				}
			}
			if !equalHeader(got, tt.want) {
				t.Errorf("identity headers %v, want %v", got, tt.want)
			}
			if tt.setCookie != "" && res.Header.Get("Set-Cookie") != tt.setCookie {
				t.Errorf("Set-Cookie %q, want %q", res.Header.Get("Set-Cookie"), tt.setCookie)
			}
			if h.auth.sawIdentity.Load() {
				t.Error("the authentication step saw a client-sent identity header")
			}
			if tt.status == 200 && res.Header.Get("Cache-Control") != "no-store" {
				t.Errorf("Cache-Control %q: a front proxy must not cache an identity", res.Header.Get("Cache-Control"))
			}
			if n := h.upstream.hits.Load(); n != 0 {
				t.Errorf("upstream hit %d times", n)
			}
		})
	}
}

// TestForwardAuthRefusalIsTheProxyPaths: forward-auth refuses with the
// authentication step's own answer, as the proxy path does.
func TestForwardAuthRefusalIsTheProxyPaths(t *testing.T) {
	h := newHarness(t, nil, nil)
	proxied, pbody := h.do(t, h.newRequest(t, "GET", "/content/dam.json", nil))
	fwd, fbody := h.do(t, h.newRequest(t, "GET", "/gatehouse/auth", nil))
	if proxied.StatusCode != http.StatusUnauthorized || fwd.StatusCode != proxied.StatusCode {
		t.Fatalf("status %d (proxied %d), want 401", fwd.StatusCode, proxied.StatusCode)
	}
	for _, name := range []string{"WWW-Authenticate", "X-Reason", "Content-Type"} {
		if fwd.Header.Get(name) != proxied.Header.Get(name) || fwd.Header.Get(name) == "" {
			t.Errorf("%s %q, proxy path %q", name, fwd.Header.Get(name), proxied.Header.Get(name))
		}
	}
	if fbody != pbody {
		t.Errorf("body %q, proxy path %q", fbody, pbody)
	}
}

func merge(a, b map[string][]string) map[string][]string {
	out := map[string][]string{}
	for _, m := range []map[string][]string{a, b} {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}

// FuzzForwardAuthOriginal sends forward-auth requests with arbitrary
// original-request headers (an empty value: the header is not sent). The
// answer is 200 or 400, never anything else; a 400 never runs the
// authentication step; a 200 judged a request whose method and URI obey
// every rule: one value per header, the two pairs agreeing, a method that
// is a token, a URI that is a path within its limit without control
// characters.
func FuzzForwardAuthOriginal(f *testing.F) {
	h, seen := newForwardAuthHarness(f)
	for _, s := range [][4]string{
		{"", "", "", ""},
		{"POST", "/api/x?y=1", "", ""},
		{"", "", "PUT", "/content/dam/a%20b"},
		{"GET", "/public", "GET", "/api/x"},
		{"GE T", "http://evil/api", "", "//api/x"},
		{"", "/api/\x7f", "", "/api/%zz"},
	} {
		f.Add(s[0], s[1], s[2], s[3])
	}
	f.Fuzz(func(t *testing.T, fm, fu, om, ou string) {
		seen.mu.Lock()
		seen.calls = 0
		seen.mu.Unlock()
		r := httptest.NewRequest(http.MethodGet, "/gatehouse/auth", nil)
		r.Header.Set("Authorization", "Bearer good")
		for name, v := range map[string]string{HeaderForwardedMethod: fm, HeaderForwardedURI: fu, HeaderOriginalMethod: om, HeaderOriginalURI: ou} {
			if v != "" {
				r.Header[name] = []string{v}
			}
		}
		w := httptest.NewRecorder()
		h.handler.ServeHTTP(w, r)
		switch w.Code {
		case http.StatusBadRequest:
			if seen.calls != 0 || w.Header().Get("X-Reason") != ReasonBadForwardedRequest {
				t.Fatalf("400 with X-Reason %q after %d authentication calls", w.Header().Get("X-Reason"), seen.calls)
			}
			return
		case http.StatusOK:
		default:
			t.Fatalf("status %d: %s", w.Code, w.Body)
		}
		method, uri := cmp.Or(fm, om, "GET"), cmp.Or(fu, ou, "/")
		switch {
		case fm != "" && om != "" && fm != om, fu != "" && ou != "" && fu != ou:
			t.Fatalf("200 although the pairs disagree: %q %q / %q %q", fm, om, fu, ou)
		case !validToken(method) || len(method) > maxOriginalMethodLen:
			t.Fatalf("200 for method %q", method)
		case !strings.HasPrefix(uri, "/") || len(uri) > maxOriginalURILen || strings.ContainsFunc(uri, func(c rune) bool { return c < ' ' || c == 0x7f }):
			t.Fatalf("200 for URI %q", uri)
		case seen.method != method:
			t.Fatalf("authentication saw method %q, want %q", seen.method, method)
		case w.Header().Get(HeaderUser) != testUser.UserID:
			t.Fatalf("200 without the identity: %v", w.Header())
		}
	})
}
