package test

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse-proxy/gatehouse/auth/ims"
	"github.com/gatehouse-proxy/gatehouse/auth/ims/imstest"
)

// imsFault is a way for the identity service to misbehave.
type imsFault string

const (
	faultHang      imsFault = "hang"            // accept, read the request, never answer
	faultHangBody  imsFault = "hang mid-body"   // 200 and half a body, then nothing
	faultReset     imsFault = "reset"           // close the connection with a TCP RST
	faultResetBody imsFault = "reset mid-body"  // 200 and half a body, then a TCP RST
	faultNotJSON   imsFault = "200 not JSON"    // 200 with a body that is no JSON at all
	faultTruncated imsFault = "200 truncated"   // 200 with JSON cut off in the middle
	faultHTML      imsFault = "200 HTML"        // 200 with a proxy's HTML error page
	faultRateLimit imsFault = "429 Retry-After" // 429 with Retry-After: 1
	faultServerErr imsFault = "503"             // 503 with an HTML body
	faultHuge      imsFault = "200 of 5 MB"     // 200 with a 5 MB JSON body
)

// faultyIMS stands between Gatehouse and the IMS emulator and, when told,
// answers one endpoint's requests with a fault instead of passing them on.
type faultyIMS struct {
	URL string

	fault    atomic.Pointer[activeFault]
	quit     chan struct{} // closed at cleanup: hanging handlers return
	quitOnce sync.Once
	hits     atomic.Int64 // requests answered with a fault
}

type activeFault struct {
	kind imsFault
	path string
}

func newFaultyIMS(t *testing.T, target string) *faultyIMS {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	f := &faultyIMS{quit: make(chan struct{})}
	rp := &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) { r.SetURL(u) }}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if af := f.fault.Load(); af != nil && r.URL.Path == af.path {
			f.hits.Add(1)
			f.serveFault(w, r, af.kind)
			return
		}
		rp.ServeHTTP(w, r)
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() {
		f.quitOnce.Do(func() { close(f.quit) })
		_ = srv.Close()
	})
	f.URL = "http://" + ln.Addr().String()
	return f
}

// set makes requests for path fail with kind; off ends it.
func (f *faultyIMS) set(kind imsFault, path string) { f.fault.Store(&activeFault{kind, path}) }
func (f *faultyIMS) off()                           { f.fault.Store(nil) }

func (f *faultyIMS) serveFault(w http.ResponseWriter, r *http.Request, kind imsFault) {
	switch kind {
	case faultHang:
		select { // until Gatehouse gives up, or the test ends
		case <-r.Context().Done():
		case <-f.quit:
		}
	case faultHangBody:
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", "1000")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte(`{"valid":true,"token":{`))
		_ = http.NewResponseController(w).Flush()
		select {
		case <-r.Context().Done():
		case <-f.quit:
		}
	case faultReset:
		reset(w, "")
	case faultResetBody:
		reset(w, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"valid\":true,")
	case faultNotJSON:
		writeRaw(w, http.StatusOK, "application/json", "this is not JSON at all")
	case faultTruncated:
		writeRaw(w, http.StatusOK, "application/json", `{"valid":true,"token":{"user_id":"A11CE`)
	case faultHTML:
		writeRaw(w, http.StatusOK, "text/html", "<!DOCTYPE html><html><head><title>Error</title></head><body><h1>Something went wrong</h1></body></html>")
	case faultRateLimit:
		w.Header().Set("Retry-After", "1")
		writeRaw(w, http.StatusTooManyRequests, "application/json", `{"error":"too_many_requests"}`)
	case faultServerErr:
		writeRaw(w, http.StatusServiceUnavailable, "text/html", "<html><body>503 Service Temporarily Unavailable</body></html>")
	case faultHuge:
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte(`{"padding":"`))
		chunk := []byte(strings.Repeat("a", 64<<10))
		for range 80 { // 5 MB
			if _, err := w.Write(chunk); err != nil {
				return // Gatehouse stopped reading: that is its right
			}
		}
		_, _ = w.Write([]byte(`"}`))
	default:
		panic("unknown fault " + kind)
	}
}

// reset writes raw bytes on the request's connection and then closes it
// with a TCP RST.
func reset(w http.ResponseWriter, raw string) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(err) // HTTP/1 from Gatehouse's client: hijacking works
	}
	_, _ = conn.Write([]byte(raw))
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0) // RST instead of FIN
	}
	_ = conn.Close()
}

func writeRaw(w http.ResponseWriter, status int, contentType, body string) {
	w.Header().Set("Content-Type", contentType)
	w.WriteHeader(status)
	_, _ = w.Write([]byte(body))
}

// The endpoints a first sign-in calls, by path.
var signInEndpoints = []struct{ name, path string }{
	{"validate_token", "/ims/validate_token/v1"},
	{"profile", "/ims/profile/v1"},
	{"organizations", "/ims/organizations/v5"},
}

// userSeq numbers the users newIMSUser makes.
var userSeq atomic.Int64

// newIMSUser adds a user of the synced organization to the emulator, one
// per test case, so that each first sign-in calls every endpoint.
func newIMSUser(e *imstest.Emulator) imsUser {
	n := userSeq.Add(1)
	u := imsUser{fmt.Sprintf("F%023d@AdobeID", n), fmt.Sprintf("user%d@example.com", n), []string{"dam-users"}}
	e.AddUser(imstest.User{ID: u.id, Email: u.email, FirstName: "User", LastName: strconv.FormatInt(n, 10),
		Orgs: []imstest.Org{{ID: orgID, Name: "Example Brand", Groups: []ims.Group{
			{GroupName: "AEM-Authors", Ident: "4711", Role: "TEAM_MEMBER"},
		}}}})
	return u
}

// TestFaultIMS: whatever the identity service does wrong, a first sign-in
// gets a clear answer within a bounded time, never a 500: 503 with
// Retry-After when IMS could not be reached or said "later", 502 when it
// answered 200 with something unusable. Signed-in users do not notice, and
// once IMS behaves again the same bearer signs in, without a restart.
func TestFaultIMS(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	fims := newFaultyIMS(t, w.ims.URL)
	p := w.start(t, map[string]string{"IMS_URL": fims.URL, "IMS_TIMEOUT": "1s"})

	// Alice signs in before any fault; her cookie must keep working.
	secrets := []string{w.mint(t, alice, clientID)}
	r := p.do(t, request{path: whoami, bearer: secrets[0]})
	wantUser(t, r, alice)
	warm := r.newCookie(t).value
	secrets = append(secrets, warm)

	type want struct {
		status int
		reason string
	}
	unreachable := []want{{http.StatusServiceUnavailable, "IDENTITY_SERVICE_UNAVAILABLE"}}
	unusable := []want{{http.StatusBadGateway, "IDENTITY_SERVICE_ERROR"}}
	for _, tc := range []struct {
		fault imsFault
		want  []want // any of them
	}{
		{faultHang, unreachable},
		{faultHangBody, unreachable},
		{faultReset, unreachable},
		{faultResetBody, unreachable},
		{faultRateLimit, unreachable},
		{faultServerErr, unreachable},
		{faultNotJSON, unusable},
		{faultTruncated, unusable},
		{faultHTML, unusable},
		// Read up to Gatehouse's limit, a 5 MB answer is either unusable or
		// treated like a broken connection; both are clear, neither is 500.
		{faultHuge, append(unusable, unreachable...)},
	} {
		for _, ep := range signInEndpoints {
			t.Run(string(tc.fault)+" on "+ep.name, func(t *testing.T) {
				u := newIMSUser(w.ims.Emulator)
				tok := w.mint(t, u, clientID)
				secrets = append(secrets, tok)
				hits := fims.hits.Load()
				fims.set(tc.fault, ep.path)
				r := p.do(t, request{path: whoami, bearer: tok})
				fims.off()
				if fims.hits.Load() == hits {
					t.Fatalf("the fault was not hit: %v", r)
				}
				ok := false
				for _, wt := range tc.want {
					ok = ok || (r.status == wt.status && r.header.Get("X-Reason") == wt.reason)
				}
				if !ok {
					t.Errorf("answer %d X-Reason %q, want one of %v; body %s", r.status, r.header.Get("X-Reason"), tc.want, r.body)
				}
				wantAuthError(t, r, r.status, "", r.header.Get("X-Reason")) // a JSON body with a description
				if r.status == http.StatusServiceUnavailable {
					wantRetryAfter(t, r)
				}
				r.wantNoNewCookie(t)
				if r.took > 15*time.Second {
					t.Errorf("the answer took %s, want it bounded by GATEHOUSE_IMS_TIMEOUT", r.took)
				}

				// The fault again: signed-in users are served meanwhile.
				fims.set(tc.fault, ep.path)
				wantUser(t, p.do(t, request{path: whoami, cookie: warm}), alice)
				fims.off()

				// IMS behaves again: the same bearer signs in.
				r = p.do(t, request{path: whoami, bearer: tok})
				wantUser(t, r, u)
				r.newCookie(t)
			})
		}
	}
	wantCleanLogs(t, p, secrets...)
}

// wantRetryAfter checks that a 503 says when to retry, in seconds.
func wantRetryAfter(t *testing.T, r *response) {
	t.Helper()
	v := r.header.Get("Retry-After")
	if s, err := strconv.Atoi(v); err != nil || s < 1 || s > 3600 {
		t.Errorf("Retry-After %q on a %d, want a number of seconds", v, r.status)
	}
}

// wantCleanLogs stops p, so that its log is complete, and checks that no
// request was answered 500 and that no bearer token or cookie value
// reached the log.
func wantCleanLogs(t *testing.T, p *proc, secrets ...string) {
	t.Helper()
	p.stop(t)
	for _, l := range p.logs.lines(t) {
		if s, ok := l["status"].(float64); ok && s == http.StatusInternalServerError {
			t.Errorf("a request was answered 500: %v", l)
		}
	}
	out := p.logs.String()
	for _, s := range secrets {
		if s != "" && strings.Contains(out, s) {
			t.Errorf("the log holds a secret (%.12s…)", s)
		}
	}
}

// switchableUpstream is the backend behind a switch: serving, down (its
// port closed), or misbehaving as its mode says.
type switchableUpstream struct {
	addr string
	next http.Handler
	mode atomic.Int32 // one of the upstream… constants
	quit chan struct{}

	mu  sync.Mutex
	srv *http.Server
}

// Modes of a switchableUpstream.
const (
	upstreamServing int32 = iota
	upstreamSlow          // answers no sooner than the request is given up on
	upstreamReset         // resets every connection at the first request
	upstreamGarbage       // answers bytes that are not HTTP, then resets
)

func newSwitchableUpstream(t *testing.T, next http.Handler) *switchableUpstream {
	t.Helper()
	u := &switchableUpstream{next: next, quit: make(chan struct{})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u.addr = ln.Addr().String()
	u.serve(ln)
	t.Cleanup(func() {
		close(u.quit)
		u.down()
	})
	return u
}

func (u *switchableUpstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch u.mode.Load() {
	case upstreamSlow:
		select {
		case <-r.Context().Done():
			return
		case <-u.quit:
			return
		case <-time.After(30 * time.Second):
		}
	case upstreamReset:
		reset(w, "")
		return
	case upstreamGarbage:
		reset(w, "this is not HTTP\r\n\r\n")
		return
	}
	u.next.ServeHTTP(w, r)
}

func (u *switchableUpstream) serve(ln net.Listener) {
	srv := &http.Server{Handler: u, ReadHeaderTimeout: 5 * time.Second}
	u.mu.Lock()
	u.srv = srv
	u.mu.Unlock()
	go func() { _ = srv.Serve(ln) }()
}

// setMode returns a function that switches u to mode.
func (u *switchableUpstream) setMode(mode int32) func() {
	return func() { u.mode.Store(mode) }
}

// down closes the port and every connection.
func (u *switchableUpstream) down() {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.srv != nil {
		_ = u.srv.Close()
		u.srv = nil
	}
}

// up listens on the same port again.
func (u *switchableUpstream) up(t *testing.T) {
	t.Helper()
	var ln net.Listener
	var err error
	for range 50 { // the port was just released; it may take a moment
		if ln, err = net.Listen("tcp", u.addr); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("listen again on %s: %v", u.addr, err)
	}
	u.serve(ln)
}

// TestFaultUpstream: an upstream that is down, resets the connection or
// answers something that is not HTTP is a 502; one that does not start
// answering within GATEHOUSE_UPSTREAM_RESPONSE_HEADER_TIMEOUT a 504; each
// with an X-Reason a client can act on. When the upstream is back,
// requests go through again.
func TestFaultUpstream(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	up := newSwitchableUpstream(t, w.backend)
	p := w.start(t, map[string]string{"UPSTREAM": "http://" + up.addr, "UPSTREAM_RESPONSE_HEADER_TIMEOUT": "1s"})
	r := p.do(t, request{path: whoami, bearer: w.mint(t, alice, clientID)})
	wantUser(t, r, alice)
	cookie := r.newCookie(t).value

	for _, tc := range []struct {
		name   string
		fault  func()
		clear  func()
		status int
		reason string
	}{
		{"down", up.down, func() { up.up(t) }, http.StatusBadGateway, "UPSTREAM_UNAVAILABLE"},
		{"slow", up.setMode(upstreamSlow), up.setMode(upstreamServing), http.StatusGatewayTimeout, "UPSTREAM_TIMEOUT"},
		{"reset", up.setMode(upstreamReset), up.setMode(upstreamServing), http.StatusBadGateway, "UPSTREAM_UNAVAILABLE"},
		{"not HTTP", up.setMode(upstreamGarbage), up.setMode(upstreamServing), http.StatusBadGateway, "UPSTREAM_UNAVAILABLE"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.fault()
			for _, req := range []request{
				{path: whoami, cookie: cookie},
				{path: "/content/dam.json", bearer: w.mint(t, bob, clientID)}, // a sign-in: it succeeds, the upstream fails
			} {
				r := p.do(t, req)
				if r.status != tc.status || r.header.Get("X-Reason") != tc.reason {
					t.Errorf("%s: %d X-Reason %q, want %d %q; body %s", req.path, r.status, r.header.Get("X-Reason"), tc.status, tc.reason, r.body)
				}
				if len(r.body) == 0 || len(r.body) > 200 {
					t.Errorf("%s: body of %d bytes, want a short message: %q", req.path, len(r.body), r.body)
				}
				if r.took > 15*time.Second {
					t.Errorf("%s: the answer took %s", req.path, r.took)
				}
			}
			tc.clear()
			wantUser(t, p.do(t, request{path: whoami, cookie: cookie}), alice)
		})
	}
	wantCleanLogs(t, p)
}
