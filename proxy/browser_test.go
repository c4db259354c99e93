package proxy

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/gatehouse-proxy/gatehouse/auth"
)

// browserHarness is Gatehouse with a browser sign-in that calls a request
// a browser's when it says "Accept: text/html", and a sign-in endpoint.
func browserHarness(t *testing.T) *harness {
	t.Helper()
	return newHarness(t, func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("upstream")) }, func(c *Config) {
		c.BrowserSignIn = htmlIsBrowser{}
		c.Endpoints = map[string]http.Handler{"sign-in": http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = w.Write([]byte("sign-in page"))
		})}
	})
}

// htmlIsBrowser calls a request that says "Accept: text/html" a browser's.
type htmlIsBrowser struct{}

func (htmlIsBrowser) IsBrowser(r *http.Request) bool { return r.Header.Get("Accept") == "text/html" }
func (htmlIsBrowser) SignInURL(r *http.Request) string {
	return "/gatehouse/sign-in?rd=" + r.URL.RequestURI()
}

// RefusalPage has a page for a disabled user only.
func (htmlIsBrowser) RefusalPage(w http.ResponseWriter, r *http.Request, status int, reason string) bool {
	if reason != auth.ReasonUserDisabled {
		return false
	}
	w.Header().Set("Content-Type", "text/html")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, "page for "+reason)
	return true
}

func TestBrowserRedirectedToSignIn(t *testing.T) {
	h := browserHarness(t)
	noFollow := *h.server.Client()
	noFollow.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	tests := []struct {
		name, target, accept, cookie string
		forwardAuth                  bool
		status                       int
		location, body               string
		signIn                       string // forward-auth's HeaderSignIn
	}{
		{"browser without credentials", "/content/a.html?x=1", "text/html", "", false, http.StatusFound, "/gatehouse/sign-in?rd=/content/a.html?x=1", "", ""},
		{"browser with a bad cookie", "/content/a.html", "text/html", "bad", false, http.StatusFound, "/gatehouse/sign-in?rd=/content/a.html", "", ""},
		{"browser signed in", "/content/a.html", "text/html", "good", false, http.StatusOK, "", "upstream", ""},
		{"API client", "/content/a.html", "application/json", "", false, http.StatusUnauthorized, "", `"reason":"NO_CREDENTIALS"`, ""},
		// Other refusals: a page for a person where there is one, and only
		// that page (the JSON is dropped); else the refusal as it was.
		{"browser of a disabled user", "/content/a.html", "text/html", "disabled", false, http.StatusForbidden, "", "page for USER_DISABLED", ""},
		{"browser refused otherwise", "/content/a.html", "text/html", "forbidden", false, http.StatusForbidden, "", `"reason":"FORBIDDEN"`, ""},
		{"API client of a disabled user", "/content/a.html", "application/json", "disabled", false, http.StatusForbidden, "", `"reason":"USER_DISABLED"`, ""},
		// auth_request knows no 302: the 401 names the sign-in address
		// for nginx to redirect to, and only a browser's does.
		{"forward-auth for a browser", "/gatehouse/auth", "text/html", "", true, http.StatusUnauthorized, "", `"reason":"NO_CREDENTIALS"`, "/gatehouse/sign-in?rd=/content/a.html?x=1"},
		{"forward-auth for a browser with a bad cookie", "/gatehouse/auth", "text/html", "bad", true, http.StatusUnauthorized, "", `"reason":"NO_CREDENTIALS"`, "/gatehouse/sign-in?rd=/content/a.html?x=1"},
		{"forward-auth for a signed-in browser", "/gatehouse/auth", "text/html", "good", true, http.StatusOK, "", "", ""},
		{"forward-auth for an API client", "/gatehouse/auth", "application/json", "", true, http.StatusUnauthorized, "", `"reason":"NO_CREDENTIALS"`, ""},
		{"the sign-in endpoint", "/gatehouse/sign-in?rd=/", "text/html", "", false, http.StatusOK, "", "sign-in page", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := h.newRequest(t, "GET", tt.target, nil)
			req.Header.Set("Accept", tt.accept)
			if tt.cookie != "" {
				req.AddCookie(&http.Cookie{Name: "login-token", Value: tt.cookie})
			}
			if tt.forwardAuth {
				req.Header.Set(HeaderOriginalURI, "/content/a.html?x=1")
			}
			res, err := noFollow.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != tt.status || res.Header.Get("Location") != tt.location || !strings.Contains(string(body), tt.body) {
				t.Errorf("%d Location %q body %q; want %d %q containing %q", res.StatusCode, res.Header.Get("Location"), body,
					tt.status, tt.location, tt.body)
			}
			if page := strings.HasPrefix(tt.body, "page for"); page && (string(body) != tt.body || res.Header.Get("Content-Type") != "text/html") ||
				!page && strings.HasPrefix(tt.body, `"reason"`) && !strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") {
				t.Errorf("Content-Type %q, body %q: want the page alone or the JSON alone", res.Header.Get("Content-Type"), body)
			}
			if got := res.Header.Get(HeaderSignIn); got != tt.signIn {
				t.Errorf("%s %q, want %q", HeaderSignIn, got, tt.signIn)
			}
			if tt.status == http.StatusFound && (res.Header.Get("WWW-Authenticate") != "" || res.Header.Get("X-Reason") != "" ||
				res.Header.Get("Cache-Control") != "no-store") {
				t.Errorf("redirect keeps the 401's headers or may be cached: %v", res.Header)
			}
		})
	}
}

func TestEndpointsCannotReplaceGatehouses(t *testing.T) {
	for _, name := range []string{"healthz", "auth", "logout", "readyz", "", "a/../b", "x?y"} {
		_, err := New(Config{Upstream: &url.URL{Scheme: "http", Host: "127.0.0.1:1"}, Authenticate: func(h http.Handler) http.Handler { return h },
			Endpoints: map[string]http.Handler{name: http.NotFoundHandler()}})
		if err == nil {
			t.Errorf("Endpoints[%q] accepted", name)
		}
	}
}
