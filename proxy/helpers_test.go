package proxy

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/gatehouse-proxy/gatehouse/auth"
)

// testUser is the identity the fake authentication step grants.
var testUser = &auth.Identity{
	UserID: "7F8F0000@AdobeID",
	Email:  "ada@example.com",
	Name:   "Ada",
	Groups: []string{"authors", "dam-users"},
	Method: auth.MethodBearer,
}

// fakeAuth authenticates "Authorization: Bearer good…" or a login-token
// cookie starting with "good", calls next without an identity when the
// request has "X-Test-Skip-Auth" (a buggy step), and answers 401 otherwise.
// It counts its calls and remembers whether it ever saw an identity header.
type fakeAuth struct {
	calls        atomic.Int64
	sawIdentity  atomic.Bool
	cookieName   string
	identityOver *auth.Identity
}

func (a *fakeAuth) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.calls.Add(1)
		for name := range r.Header {
			if identityLike(name) {
				a.sawIdentity.Store(true)
			}
		}
		if r.Header.Get("X-Test-Skip-Auth") != "" {
			next.ServeHTTP(w, r)
			return
		}
		name := a.cookieName
		if name == "" {
			name = "login-token"
		}
		c, _ := r.Cookie(name)
		switch {
		case c != nil && c.Value == "disabled":
			auth.WriteError(w, auth.UserDisabled(nil))
			return
		case c != nil && c.Value == "forbidden":
			auth.WriteError(w, &auth.Error{Status: http.StatusForbidden, Reason: auth.ReasonForbidden, Description: "no"})
			return
		}
		if strings.HasPrefix(r.Header.Get("Authorization"), "Bearer good") || (c != nil && strings.HasPrefix(c.Value, "good")) {
			id := testUser
			if a.identityOver != nil {
				id = a.identityOver
			}
			next.ServeHTTP(w, r.WithContext(auth.WithIdentity(r.Context(), id)))
			return
		}
		auth.WriteError(w, auth.Unauthorized(auth.ReasonNoCredential, "no credentials", nil))
	})
}

// identityLike is the tests' own idea of an identity header, independent
// of the code under test: any name that reads as X-Forwarded-User, -Email
// or -Groups, or X-Gatehouse-Assertion, once case, "-" and "_" are ignored.
func identityLike(name string) bool {
	switch strings.NewReplacer("-", "", "_", "").Replace(strings.ToLower(name)) {
	case "xforwardeduser", "xforwardedemail", "xforwardedgroups", "xgatehouseassertion":
		return true
	}
	return false
}

// seenRequest is what the test upstream recorded about a request.
type seenRequest struct {
	Method, Host, Path, RawQuery string
	Header                       http.Header
}

// testUpstream is a real loopback server that counts and records requests
// and hands them to handle (default: 200 "upstream ok").
type testUpstream struct {
	*httptest.Server
	hits atomic.Int64
	mu   sync.Mutex
	seen []seenRequest
}

func newUpstream(t testing.TB, handle http.HandlerFunc) *testUpstream {
	t.Helper()
	u := &testUpstream{}
	if handle == nil {
		handle = func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "upstream ok") }
	}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.hits.Add(1)
		u.mu.Lock()
		u.seen = append(u.seen, seenRequest{r.Method, r.Host, r.URL.Path, r.URL.RawQuery, r.Header.Clone()})
		u.mu.Unlock()
		handle(w, r)
	}))
	t.Cleanup(u.Close)
	return u
}

func (u *testUpstream) last(t *testing.T) seenRequest {
	t.Helper()
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.seen) == 0 {
		t.Fatal("upstream saw no request")
	}
	return u.seen[len(u.seen)-1]
}

func (u *testUpstream) url(t testing.TB) *url.URL {
	t.Helper()
	p, err := url.Parse(u.URL)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// harness is a Gatehouse handler in front of an upstream, with its logs.
type harness struct {
	upstream *testUpstream
	auth     *fakeAuth
	handler  http.Handler
	server   *httptest.Server // Gatehouse on loopback
	logs     *observer.ObservedLogs
}

// newHarness starts an upstream with handle and Gatehouse in front of it;
// edit adjusts the Config before New.
func newHarness(t testing.TB, handle http.HandlerFunc, edit func(*Config)) *harness {
	t.Helper()
	h := &harness{upstream: newUpstream(t, handle), auth: &fakeAuth{}}
	core, logs := observer.New(zapcore.DebugLevel)
	h.logs = logs
	cfg := Config{
		Upstream:     h.upstream.url(t),
		Authenticate: h.auth.middleware,
		Logger:       zap.New(core),
	}
	if edit != nil {
		edit(&cfg)
	}
	h.auth.cookieName = cfg.CookieName
	handler, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	h.handler = handler
	h.server = httptest.NewServer(handler)
	t.Cleanup(h.server.Close)
	return h
}

// do sends a request through Gatehouse on loopback.
func (h *harness) do(t *testing.T, req *http.Request) (*http.Response, string) {
	t.Helper()
	res, err := h.server.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("reading body: %v", err)
	}
	return res, string(body)
}

func (h *harness) newRequest(t *testing.T, method, target string, body io.Reader) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, h.server.URL+target, body)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// accessLines returns the access-log entries logged so far.
func (h *harness) accessLines() []observer.LoggedEntry {
	return h.logs.FilterMessage("request").All()
}

// waitAccessLine waits for an access-log line matching keep: the line is
// written when the handler returns, which may be after the client is done.
func (h *harness) waitAccessLine(t *testing.T, keep func(map[string]any) bool) map[string]any {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		for _, e := range h.accessLines() {
			if m := e.ContextMap(); keep(m) {
				return m
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("no matching access-log line; have %v", h.accessLines())
	return nil
}

// patternReader yields n bytes of a repeating pseudo-random 64 KiB block,
// so that large bodies are produced without large slices.
type patternReader struct{ n, off int64 }

var pattern = func() []byte {
	b := make([]byte, 64<<10)
	x := uint32(2463534242)
	for i := range b {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		b[i] = byte(x)
	}
	return b
}()

func (r *patternReader) Read(p []byte) (int, error) {
	if r.off >= r.n {
		return 0, io.EOF
	}
	if rest := r.n - r.off; int64(len(p)) > rest {
		p = p[:rest]
	}
	total := 0
	for len(p) > 0 {
		k := copy(p, pattern[r.off%int64(len(pattern)):])
		p = p[k:]
		r.off += int64(k)
		total += k
	}
	return total, nil
}

// patternHash is the hex SHA-256 of n bytes of patternReader.
func patternHash(t *testing.T, n int64) string {
	t.Helper()
	h := sha256.New()
	if _, err := io.Copy(h, &patternReader{n: n}); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}
