package proxy

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-proxy/gatehouse/auth"
	"github.com/gatehouse-proxy/gatehouse/proxy/idheader"
	"github.com/gatehouse-proxy/gatehouse/proxy/plumb"
)

func TestNewValidatesConfig(t *testing.T) {
	up := &url.URL{Scheme: "http", Host: "127.0.0.1:4502"}
	authn := func(h http.Handler) http.Handler { return h }
	tests := []struct {
		name  string
		cfg   Config
		field string // must appear in the error; "" means valid
	}{
		{"valid minimal", Config{Upstream: up, Authenticate: authn}, ""},
		{"valid custom prefix", Config{Upstream: up, Authenticate: authn, Prefix: "/_gh/"}, ""},
		{"missing upstream", Config{Authenticate: authn}, "Upstream"},
		{"upstream scheme", Config{Upstream: &url.URL{Scheme: "ftp", Host: "x"}, Authenticate: authn}, "Upstream"},
		{"upstream host", Config{Upstream: &url.URL{Scheme: "http"}, Authenticate: authn}, "Upstream"},
		{"upstream credentials", Config{Upstream: &url.URL{Scheme: "http", Host: "x", User: url.UserPassword("a", "b")}, Authenticate: authn}, "Upstream"},
		{"upstream query", Config{Upstream: &url.URL{Scheme: "http", Host: "x", RawQuery: "a=b"}, Authenticate: authn}, "Upstream"},
		{"missing authenticate", Config{Upstream: up}, "Authenticate"},
		{"prefix without leading slash", Config{Upstream: up, Authenticate: authn, Prefix: "gatehouse/"}, "Prefix"},
		{"prefix without trailing slash", Config{Upstream: up, Authenticate: authn, Prefix: "/gatehouse"}, "Prefix"},
		{"prefix root", Config{Upstream: up, Authenticate: authn, Prefix: "/"}, "Prefix"},
		{"prefix unclean", Config{Upstream: up, Authenticate: authn, Prefix: "/a/../b/"}, "Prefix"},
		{"prefix escaped", Config{Upstream: up, Authenticate: authn, Prefix: "/a%2Fb/"}, "Prefix"},
		{"cookie name", Config{Upstream: up, Authenticate: authn, CookieName: "bad name"}, "CookieName"},
		{"negative timeout", Config{Upstream: up, Authenticate: authn, Transport: Transport{DialTimeout: -1}}, "Transport.DialTimeout"},
		{"negative pool", Config{Upstream: up, Authenticate: authn, Transport: Transport{MaxIdleConnsPerHost: -1}}, "Transport.MaxIdleConnsPerHost"},
		{"negative body timeout", Config{Upstream: up, Authenticate: authn, UnauthenticatedBodyTimeout: -1}, "UnauthenticatedBodyTimeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := New(tt.cfg)
			if tt.field == "" {
				if err != nil || h == nil {
					t.Fatalf("New: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("New accepted an invalid config")
			}
			if !strings.Contains(err.Error(), tt.field) {
				t.Errorf("error %q does not name %s", err, tt.field)
			}
		})
	}
}

func TestIdentityHeaders(t *testing.T) {
	spoofed := map[string]string{
		"X-Forwarded-User":   "admin",
		"x-forwarded-email":  "admin@evil.example",
		"X-FORWARDED-GROUPS": "administrators",
		"X_Forwarded_User":   "admin",
		"x_forwarded_email":  "admin@evil.example",
		"X_FORWARDED_GROUPS": "administrators",
		"X-Forwarded_User":   "admin",
	}
	tests := []struct {
		name       string
		identity   *auth.Identity
		wantHeader http.Header // identity headers the upstream must see, exactly
	}{
		{"full identity", testUser, http.Header{
			"X-Forwarded-User":   {testUser.UserID},
			"X-Forwarded-Email":  {testUser.Email},
			"X-Forwarded-Groups": {"authors,dam-users"},
		}},
		{"no email, no groups", &auth.Identity{UserID: "u2@AdobeID"}, http.Header{
			"X-Forwarded-User": {"u2@AdobeID"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, nil, nil)
			h.auth.identityOver = tt.identity
			req := h.newRequest(t, http.MethodGet, "/content/dam.json", nil)
			req.Header.Set("Authorization", "Bearer good")
			for k, v := range spoofed {
				req.Header[k] = []string{v} // bypass canonicalization
			}
			res, _ := h.do(t, req)
			if res.StatusCode != http.StatusOK {
				t.Fatalf("status %d", res.StatusCode)
			}
			got := http.Header{}
			for k, v := range h.upstream.last(t).Header {
				if identityLike(k) {
					got[k] = v
				}
			}
			if !equalHeader(got, tt.wantHeader) {
				t.Errorf("upstream identity headers = %v, want %v", got, tt.wantHeader)
			}
			if h.auth.sawIdentity.Load() {
				t.Error("the authentication step saw a client-sent identity header")
			}
		})
	}

	t.Run("unauthenticated with spoofed headers", func(t *testing.T) {
		h := newHarness(t, nil, nil)
		req := h.newRequest(t, http.MethodGet, "/content/dam.json", nil)
		for k, v := range spoofed {
			req.Header[k] = []string{v}
		}
		res, _ := h.do(t, req)
		if res.StatusCode != http.StatusUnauthorized {
			t.Errorf("status %d, want 401", res.StatusCode)
		}
		if n := h.upstream.hits.Load(); n != 0 {
			t.Errorf("upstream hit %d times", n)
		}
		if h.auth.sawIdentity.Load() {
			t.Error("the authentication step saw a client-sent identity header")
		}
	})

	t.Run("logout does not see spoofed headers", func(t *testing.T) {
		var saw bool
		h := newHarness(t, nil, func(c *Config) {
			c.Logout = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				for k := range r.Header {
					saw = saw || identityLike(k)
				}
			})
		})
		req := h.newRequest(t, http.MethodPost, "/gatehouse/logout", nil)
		for k, v := range spoofed {
			req.Header[k] = []string{v}
		}
		h.do(t, req)
		if saw {
			t.Error("logout saw a client-sent identity header")
		}
	})

	t.Run("identity with hostile bytes", func(t *testing.T) {
		// Once a 500 with nothing forwarded; encoded, every identity can
		// be sent, and no byte of it can add a header.
		h := newHarness(t, nil, nil)
		h.auth.identityOver = &auth.Identity{UserID: "u\r\nX-Evil: 1", Email: " ada@example.com\x00"}
		req := h.newRequest(t, http.MethodGet, "/", nil)
		req.Header.Set("Authorization", "Bearer good")
		res, _ := h.do(t, req)
		if res.StatusCode != http.StatusOK {
			t.Fatalf("status %d, want 200", res.StatusCode)
		}
		seen := h.upstream.last(t).Header
		if seen.Get("X-Evil") != "" {
			t.Error("an identity value added a header")
		}
		if got, _ := idheader.Decode(seen.Get(HeaderUser)); got != "u\r\nX-Evil: 1" {
			t.Errorf("upstream decoded user %q", got)
		}
		if got, _ := idheader.Decode(seen.Get(HeaderEmail)); got != " ada@example.com\x00" {
			t.Errorf("upstream decoded email %q", got)
		}
	})
}

// TestHostileGroupNames: whatever the names of a user's groups, the
// upstream decodes exactly those names, each as one group. Joined with
// bare commas, "x,administrators" arrived as two groups, one of them
// "administrators", and " administrators" lost its space in transit.
func TestHostileGroupNames(t *testing.T) {
	tests := []struct {
		name   string
		groups []string
	}{
		{"comma", []string{"x,administrators"}},
		{"comma beside others", []string{"authors", "x,administrators", "dam-users"}},
		{"leading space", []string{" administrators"}},
		{"trailing space", []string{"administrators "}},
		{"only spaces", []string{" ", "  "}},
		{"encoded comma taken literally", []string{"a%2Cb", "a,b"}},
		{"lone percent", []string{"%", "%%", "100%"}},
		{"empty name is no group", []string{"", "authors", ""}},
		{"unicode", []string{"Rédacteurs", "編集者", "emoji 😀"}},
		{"tab", []string{"\t", "a\tb", "\tadministrators"}},
		{"CR LF", []string{"a\r\nX-Forwarded-User: admin", "\r\n", "b\n"}},
		{"control bytes", []string{"\x00", "a\x7fb", "\x1b[31m"}},
		{"invalid UTF-8", []string{"\xff\xfe", "a\x80"}},
		{"inner spaces stay", []string{"Content Authors"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, nil, nil)
			h.auth.identityOver = &auth.Identity{UserID: "u@AdobeID", Groups: tt.groups}
			req := h.newRequest(t, http.MethodGet, "/content/dam.json", nil)
			req.Header.Set("Authorization", "Bearer good")
			req.Header.Set("X-Forwarded-Groups", "administrators") // spoofed
			res, _ := h.do(t, req)
			if res.StatusCode != http.StatusOK {
				t.Fatalf("status %d, want 200", res.StatusCode)
			}
			seen := h.upstream.last(t).Header
			if n := len(seen.Values(HeaderGroups)); n > 1 {
				t.Fatalf("%d %s headers", n, HeaderGroups)
			}
			got, err := idheader.DecodeGroups(seen.Get(HeaderGroups))
			if err != nil {
				t.Fatalf("upstream cannot decode %q: %v", seen.Get(HeaderGroups), err)
			}
			var want []string
			for _, g := range tt.groups {
				if g != "" {
					want = append(want, g)
				}
			}
			if !slices.Equal(got, want) {
				t.Errorf("upstream decoded %q from %q, want %q", got, seen.Get(HeaderGroups), want)
			}
		})
	}
}

func equalHeader(a, b http.Header) bool {
	if len(a) != len(b) {
		return false
	}
	for k, av := range a {
		bv := b[k]
		if strings.Join(av, "\x00") != strings.Join(bv, "\x00") {
			return false
		}
	}
	return true
}

func TestCredentialsRemoved(t *testing.T) {
	tests := []struct {
		name       string
		edit       func(*Config)
		authz      string // Authorization sent by the client
		cookie     string // Cookie sent by the client
		wantAuthz  string
		wantCookie string
	}{
		{
			name:       "defaults remove both, keep other cookies",
			authz:      "Bearer good-token",
			cookie:     `a=1; login-token=good-cookie; b="two words"; c=`,
			wantAuthz:  "",
			wantCookie: `a=1; b="two words"; c=`,
		},
		{
			name:       "only the login-token cookie",
			cookie:     "login-token=good-cookie",
			wantCookie: "",
		},
		{
			name:       "case variants of the cookie name go too",
			cookie:     "login-token=good-cookie; Login-Token=x; keep=1",
			wantCookie: "keep=1",
		},
		{
			name:       "PassAuthorization",
			edit:       func(c *Config) { c.PassAuthorization = true },
			authz:      "Bearer good-token",
			cookie:     "login-token=good-cookie; a=1",
			wantAuthz:  "Bearer good-token",
			wantCookie: "a=1",
		},
		{
			name:       "PassCookie",
			edit:       func(c *Config) { c.PassCookie = true },
			authz:      "Bearer good-token",
			cookie:     "a=1; login-token=good-cookie",
			wantCookie: "a=1; login-token=good-cookie",
		},
		{
			name:       "custom cookie name",
			edit:       func(c *Config) { c.CookieName = "gh-session" },
			cookie:     "login-token=aem-own; gh-session=good-cookie",
			wantCookie: "login-token=aem-own",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, nil, tt.edit)
			req := h.newRequest(t, http.MethodGet, "/content/dam.json", nil)
			if tt.authz != "" {
				req.Header.Set("Authorization", tt.authz)
			}
			if tt.cookie != "" {
				req.Header.Set("Cookie", tt.cookie)
			}
			res, _ := h.do(t, req)
			if res.StatusCode != http.StatusOK {
				t.Fatalf("status %d", res.StatusCode)
			}
			seen := h.upstream.last(t).Header
			if got := seen.Get("Authorization"); got != tt.wantAuthz {
				t.Errorf("upstream Authorization = %q, want %q", got, tt.wantAuthz)
			}
			if got := strings.Join(seen.Values("Cookie"), "; "); got != tt.wantCookie {
				t.Errorf("upstream Cookie = %q, want %q", got, tt.wantCookie)
			}
		})
	}
}

func TestRemoveCookieAcrossHeaderLines(t *testing.T) {
	// HTTP/2 clients may send one Cookie header per cookie.
	h := http.Header{"Cookie": {"a=1", "login-token=x; b=2", " login-token=y "}}
	removeCookie(h, "login-token")
	if got := h.Values("Cookie"); len(got) != 1 || got[0] != "a=1; b=2" {
		t.Errorf("Cookie = %q", got)
	}
}

func TestReservedPaths(t *testing.T) {
	var logoutCalls int
	readyErr := errors.New("store: database is locked")
	var readyDeadline time.Duration
	ready := func(ctx context.Context) error {
		d, ok := ctx.Deadline()
		if !ok {
			return errors.New("no deadline")
		}
		readyDeadline = time.Until(d)
		return nil
	}
	tests := []struct {
		name       string
		edit       func(*Config)
		method     string
		target     string
		wantStatus int
		wantBody   string // substring
	}{
		{"healthz", nil, "GET", "/gatehouse/healthz", 200, `{"status":"ok"}`},
		{"healthz HEAD", nil, "HEAD", "/gatehouse/healthz", 200, ""},
		{"healthz POST", nil, "POST", "/gatehouse/healthz", 405, "method not allowed"},
		{"readyz, no check", nil, "GET", "/gatehouse/readyz", 200, `{"status":"ready"}`},
		{"readyz ok", func(c *Config) { c.Ready = ready }, "GET", "/gatehouse/readyz", 200, `{"status":"ready"}`},
		{"readyz failing", func(c *Config) {
			c.Ready = func(context.Context) error { return readyErr }
		}, "GET", "/gatehouse/readyz", 503, `{"error":"store: database is locked","status":"unavailable"}`},
		{"logout mounted", func(c *Config) {
			c.Logout = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				logoutCalls++
				w.WriteHeader(http.StatusNoContent)
			})
		}, "POST", "/gatehouse/logout", 204, ""},
		{"logout not configured", nil, "POST", "/gatehouse/logout", 404, "not found"},
		{"unknown under prefix", nil, "GET", "/gatehouse/admin", 404, "not found"},
		{"prefix itself", nil, "GET", "/gatehouse/", 404, "not found"},
		{"prefix without slash", nil, "GET", "/gatehouse", 404, "not found"},
		{"custom prefix", func(c *Config) { c.Prefix = "/_gh/" }, "GET", "/_gh/healthz", 200, `"ok"`},
		{"custom prefix, default is proxied", func(c *Config) { c.Prefix = "/_gh/" }, "GET", "/gatehouse/healthz", 401, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, nil, tt.edit)
			res, body := h.do(t, h.newRequest(t, tt.method, tt.target, nil))
			if res.StatusCode != tt.wantStatus {
				t.Errorf("status %d, want %d (body %q)", res.StatusCode, tt.wantStatus, body)
			}
			if !strings.Contains(body, tt.wantBody) {
				t.Errorf("body %q does not contain %q", body, tt.wantBody)
			}
			if n := h.upstream.hits.Load(); n != 0 {
				t.Errorf("upstream hit %d times", n)
			}
		})
	}
	if logoutCalls != 1 {
		t.Errorf("logout called %d times, want 1", logoutCalls)
	}
	if readyDeadline <= 0 || readyDeadline > readyTimeout {
		t.Errorf("Ready got a deadline %s away, want within %s", readyDeadline, readyTimeout)
	}
}

// TestReservedPathTricks sends request targets exactly as a client could
// write them, in process so that no client normalizes them first.
func TestReservedPathTricks(t *testing.T) {
	tests := []struct {
		target     string
		wantStatus int
		proxied    bool
	}{
		// Resolve to an endpoint: served by Gatehouse.
		{"/gatehouse/../gatehouse/healthz", 200, false},
		{"//gatehouse/healthz", 200, false},
		{"/gatehouse//healthz", 200, false},
		{"/gatehouse/./healthz", 200, false},
		{"/gatehouse/healthz/", 200, false},
		{"/content/../gatehouse/healthz", 200, false},
		{"/content/%2e%2e/gatehouse/healthz", 200, false},
		{"/content%2F..%2Fgatehouse%2Fhealthz", 200, false},
		{"/%67atehouse/healthz", 200, false},
		{"/gatehouse%2Fhealthz", 200, false},
		// Reserved in some reading, but no endpoint: 404.
		{"/Gatehouse/healthz", 404, false},
		{"/GATEHOUSE/logout", 404, false},
		{"/GateHouse", 404, false},
		{"/gatehouse/../content/dam.json", 404, false},
		{"/content/%252e%252e/gatehouse/healthz", 404, false},
		{"/content/%25252e%25252e/gatehouse/x", 404, false},
		{"/content/..;/gatehouse/healthz", 404, false},
		{"/gatehouse;jsessionid=1/healthz", 404, false},
		{`/content\..\gatehouse\healthz`, 404, false},
		{"/content%5C..%5Cgatehouse%5Chealthz", 404, false},
		{"/gatehouse%2F..%2Fcontent", 404, false},
		// Not reserved in any reading: authenticated and proxied.
		{"/gatehousex/healthz", 200, true},
		{"/content/gatehouse/healthz", 200, true},
		{"/content/dam/../dam.json", 200, true},
		{"/content/%2e%2e/dam.json", 200, true},
		{"/content/a%2Fb.json", 200, true},
	}
	for _, tt := range tests {
		t.Run(tt.target, func(t *testing.T) {
			h := newHarness(t, nil, nil)
			req := httptest.NewRequest(http.MethodGet, tt.target, nil)
			req.Header.Set("Authorization", "Bearer good")
			rec := httptest.NewRecorder()
			h.handler.ServeHTTP(rec, req)
			if rec.Code != tt.wantStatus {
				t.Errorf("status %d, want %d (body %q)", rec.Code, tt.wantStatus, rec.Body)
			}
			hits, authCalls := h.upstream.hits.Load(), h.auth.calls.Load()
			if tt.proxied {
				if hits != 1 {
					t.Errorf("upstream hit %d times, want once", hits)
				}
				return
			}
			if hits != 0 || authCalls != 0 {
				t.Errorf("upstream hit %d times, authentication ran %d times; want neither", hits, authCalls)
			}
		})
	}
}

func TestUnauthenticatedIsNeverForwarded(t *testing.T) {
	tests := []struct {
		name   string
		header http.Header
	}{
		{"step calls next without identity", http.Header{"X-Test-Skip-Auth": {"1"}, "Authorization": {"Bearer good"}}},
		{"step answers 401 itself", http.Header{"Authorization": {"Bearer bad"}}},
		{"no credentials", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, nil, nil)
			req := h.newRequest(t, http.MethodGet, "/content/dam.json", nil)
			for k, v := range tt.header {
				req.Header[k] = v
			}
			res, body := h.do(t, req)
			if res.StatusCode != http.StatusUnauthorized {
				t.Errorf("status %d, want 401", res.StatusCode)
			}
			if !strings.HasPrefix(res.Header.Get("WWW-Authenticate"), "Bearer") || res.Header.Get("X-Reason") != auth.ReasonNoCredential {
				t.Errorf("headers %v", res.Header)
			}
			var e struct{ Reason string }
			if err := json.Unmarshal([]byte(body), &e); err != nil || e.Reason != auth.ReasonNoCredential {
				t.Errorf("body %q", body)
			}
			if n := h.upstream.hits.Load(); n != 0 {
				t.Errorf("upstream hit %d times", n)
			}
		})
	}
}

func TestRequestID(t *testing.T) {
	long := strings.Repeat("a", plumb.MaxRequestIDLen)
	tests := []struct {
		name   string
		sent   string
		keepIt bool
	}{
		{"none", "", false},
		{"sane", "abc-123_X.y", true},
		{"uuid", "0b5f6f1e-6a2f-4d8e-9a43-6a2b1c1d9e0f", true},
		{"max length", long, true},
		{"too long", long + "a", false},
		{"spaces", "abc 123", false},
		{"injection", "abc\",\"user\":\"admin", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set(HeaderRequestID, "upstream-own-id") // must not duplicate ours
			}, nil)
			req := h.newRequest(t, http.MethodGet, "/content/dam.json", nil)
			req.Header.Set("Authorization", "Bearer good")
			if tt.sent != "" {
				req.Header.Set(HeaderRequestID, tt.sent)
			}
			res, _ := h.do(t, req)
			got := res.Header.Values(HeaderRequestID)
			if len(got) != 1 {
				t.Fatalf("response X-Request-Id = %q, want one value", got)
			}
			upstream := h.upstream.last(t).Header.Values(HeaderRequestID)
			if len(upstream) != 1 || upstream[0] != got[0] {
				t.Errorf("upstream saw %q, client got %q", upstream, got[0])
			}
			if tt.keepIt && got[0] != tt.sent {
				t.Errorf("id %q replaced by %q", tt.sent, got[0])
			}
			if !tt.keepIt && (got[0] == tt.sent || !plumb.ValidRequestID(got[0])) {
				t.Errorf("generated id %q", got[0])
			}
			line := h.waitAccessLine(t, func(m map[string]any) bool { return true })
			if line["request_id"] != got[0] {
				t.Errorf("access log request_id = %v, want %q", line["request_id"], got[0])
			}
		})
	}
}

func TestForwardedRequest(t *testing.T) {
	h := newHarness(t, func(w http.ResponseWriter, r *http.Request) {
		http.SetCookie(w, &http.Cookie{Name: "login-token", Value: "from-aem"})
		http.SetCookie(w, &http.Cookie{Name: "aem-pref", Value: "1"})
	}, nil)
	req := h.newRequest(t, http.MethodPost, "/content/dam/a.jpg?:operation=checkout&x=%2F", strings.NewReader("body"))
	req.Host = "author.example.com"
	req.Header.Set("Authorization", "Bearer good")
	req.Header.Set("X-Forwarded-For", "203.0.113.9")
	res, _ := h.do(t, req)
	seen := h.upstream.last(t)
	if seen.Host != "author.example.com" {
		t.Errorf("upstream Host = %q, want the client's", seen.Host)
	}
	if seen.Path != "/content/dam/a.jpg" || seen.RawQuery != ":operation=checkout&x=%2F" || seen.Method != http.MethodPost {
		t.Errorf("upstream got %s %s ? %s", seen.Method, seen.Path, seen.RawQuery)
	}
	if got := seen.Header.Get("X-Forwarded-Host"); got != "author.example.com" {
		t.Errorf("X-Forwarded-Host = %q", got)
	}
	if got := seen.Header.Get("X-Forwarded-For"); got != "127.0.0.1" {
		t.Errorf("X-Forwarded-For = %q, want only the peer address", got)
	}
	var names []string
	for _, c := range res.Cookies() {
		names = append(names, c.Name)
	}
	if strings.Join(names, ",") != "aem-pref" {
		t.Errorf("client got cookies %v; the upstream must not set login-token", names)
	}
}

func TestNewTransport(t *testing.T) {
	tests := []struct {
		name string
		in   Transport
		want Transport
	}{
		// DialTimeout lives in the dialer's closure, out of reach here.
		{"defaults", Transport{}, Transport{
			ResponseHeaderTimeout: 60 * time.Second,
			IdleConnTimeout:       90 * time.Second, MaxIdleConns: 512, MaxIdleConnsPerHost: 256,
			TLSHandshakeTimeout: 10 * time.Second,
		}},
		{"configured", Transport{
			DialTimeout: time.Second, ResponseHeaderTimeout: 2 * time.Second, IdleConnTimeout: 3 * time.Second,
			MaxIdleConns: 7, MaxIdleConnsPerHost: 5, TLSHandshakeTimeout: 4 * time.Second,
		}, Transport{
			ResponseHeaderTimeout: 2 * time.Second, IdleConnTimeout: 3 * time.Second,
			MaxIdleConns: 7, MaxIdleConnsPerHost: 5, TLSHandshakeTimeout: 4 * time.Second,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := NewTransport(tt.in)
			got := Transport{
				ResponseHeaderTimeout: tr.ResponseHeaderTimeout,
				IdleConnTimeout:       tr.IdleConnTimeout,
				MaxIdleConns:          tr.MaxIdleConns,
				MaxIdleConnsPerHost:   tr.MaxIdleConnsPerHost,
				TLSHandshakeTimeout:   tr.TLSHandshakeTimeout,
			}
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
			if tr.Proxy != nil || !tr.DisableCompression || tr.DialContext == nil {
				t.Errorf("Proxy %v, DisableCompression %v, DialContext set %v", tr.Proxy != nil, tr.DisableCompression, tr.DialContext != nil)
			}
		})
	}
}

// The chain edits headers only on ReverseProxy's outgoing copy: the request
// the server handed to Gatehouse is left as it was, spoofed headers and
// credentials included, while the upstream gets the header policy.
func TestClientRequestNotModified(t *testing.T) {
	for _, tt := range []struct {
		name   string
		header http.Header
	}{
		{"bearer and cookies", http.Header{
			"Authorization": {"Bearer good"}, "Cookie": {"theme=dark; login-token=goodcookie"},
			"X-Request-Id": {"client-id-1"}, "Accept": {"application/json"},
		}},
		{"spoofed identity", http.Header{
			"Cookie": {"login-token=goodcookie"}, "X-Forwarded-User": {"admin@AdobeID"},
			"X_forwarded_groups": {"administrators"},
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, nil, nil)
			req := httptest.NewRequest(http.MethodGet, "/content/dam/a.json", nil)
			req.Header = tt.header.Clone()
			req.Trailer = http.Header{"X-Forwarded-Email": nil}
			w := httptest.NewRecorder()
			h.handler.ServeHTTP(w, req)
			if w.Code != http.StatusOK {
				t.Fatalf("status %d: %s", w.Code, w.Body)
			}
			if !reflect.DeepEqual(req.Header, tt.header) {
				t.Errorf("client request headers changed:\n got %v\nwant %v", req.Header, tt.header)
			}
			if _, ok := req.Trailer["X-Forwarded-Email"]; !ok {
				t.Error("client request trailer changed")
			}
			seen := h.upstream.last(t).Header
			if got := seen.Get(HeaderUser); got != testUser.UserID {
				t.Errorf("upstream %s = %q, want %q", HeaderUser, got, testUser.UserID)
			}
			if got := seen.Get(HeaderGroups); got != "authors,dam-users" {
				t.Errorf("upstream %s = %q", HeaderGroups, got)
			}
			if seen.Get("Authorization") != "" || strings.Contains(seen.Get("Cookie"), "login-token") {
				t.Errorf("upstream got credentials: %v", seen)
			}
			if got, want := seen.Get(HeaderRequestID), w.Header().Get(HeaderRequestID); got == "" || got != want {
				t.Errorf("upstream request id %q, response %q", got, want)
			}
		})
	}
}
