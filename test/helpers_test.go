// Package test holds Gatehouse's end-to-end suite: the real binary, built
// once by TestMain, runs as a subprocess between the in-process IMS
// emulator and the AEM-like backend, and every assertion is made on what
// crossed the sockets.
package test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gatehouse-proxy/gatehouse/auth/ims"
	"github.com/gatehouse-proxy/gatehouse/auth/ims/imstest"
	"github.com/gatehouse-proxy/gatehouse/test/aem"
)

// gatehouseBin is the binary TestMain built.
var gatehouseBin string

// raceEnabled is set by race_test.go when the suite runs under -race; the
// binary is then built with the race detector too.
var raceEnabled bool

func TestMain(m *testing.M) { os.Exit(runTests(m)) }

func runTests(m *testing.M) int {
	dir, err := os.MkdirTemp("", "gatehouse-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	root, err := moduleRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	bin := filepath.Join(dir, "gatehouse")
	args := []string{"build", "-o", bin}
	if raceEnabled {
		args = append(args, "-race")
	}
	args = append(args, "./cmd/gatehouse")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: go %s: %v\n%s", strings.Join(args, " "), err, out)
		return 1
	}
	gatehouseBin = bin
	return m.Run()
}

// moduleRoot finds the directory of Gatehouse's go.mod, upwards from the
// working directory.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && bytes.Contains(b, []byte("module github.com/gatehouse-proxy/gatehouse\n")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("gatehouse's go.mod not found above the working directory")
		}
		dir = parent
	}
}

// The IMS side of every test: two users in the synced organization, one of
// them also an administrator of another organization, whose groups must
// never count.
const (
	orgID      = "5A6B7C8D9E0F1A2B@AdobeOrg"
	otherOrgID = "FFFF0000EEEE1111@AdobeOrg"
	clientID   = "cc-europa-desktop_10_0"
	clientID2  = "InDesignAem2"
	mapping    = "*:GRP_ADMIN=administrators,AEM-Authors:*=dam-users"
)

type imsUser struct {
	id, email string
	groups    []string // what the upstream should see after mapping
}

var (
	alice = imsUser{"A11CE0000000000000000001@AdobeID", "alice.author@example.com", []string{"administrators", "dam-users"}}
	bob   = imsUser{"B0B000000000000000000002@AdobeID", "bob.builder@example.com", []string{"dam-users"}}
)

func addUsers(e *imstest.Emulator) {
	e.AddUser(imstest.User{
		ID: alice.id, Email: alice.email, FirstName: "Alice", LastName: "Author",
		Orgs: []imstest.Org{{ID: orgID, Name: "Example Brand", Groups: []ims.Group{
			{GroupName: "AEM-Authors", Ident: "4711", Role: "TEAM_MEMBER"},
			{GroupName: "AEM-Admins", Ident: "4712", Role: "GRP_ADMIN"},
		}}},
	})
	e.AddUser(imstest.User{
		ID: bob.id, Email: bob.email, FirstName: "Bob", LastName: "Builder",
		Orgs: []imstest.Org{
			{ID: orgID, Name: "Example Brand", Groups: []ims.Group{
				{GroupName: "AEM-Authors", Ident: "4711", Role: "TEAM_MEMBER"},
			}},
			// An administrator elsewhere: the mapping rule *:GRP_ADMIN would
			// make him one here if the organization were not checked.
			{ID: otherOrgID, Name: "Other Company", Groups: []ims.Group{
				{GroupName: "Other-Admins", Ident: "9001", Role: "GRP_ADMIN"},
			}},
		},
	})
}

// world is one test's surroundings: the IMS emulator, the AEM backend on
// loopback behind a recorder of raw headers, and a store file.
type world struct {
	ims      *imstest.Server
	backend  *aem.Backend
	rec      *recorder
	upstream string // http://127.0.0.1:port
	dir      string
	db       string // the sqlite file
}

func newWorld(t *testing.T) *world {
	t.Helper()
	w := &world{ims: imstest.NewServer(imstest.Options{}), backend: aem.New(nil), dir: t.TempDir()}
	t.Cleanup(w.ims.Close)
	addUsers(w.ims.Emulator)
	w.db = filepath.Join(w.dir, "g.db")
	w.rec = &recorder{next: w.backend}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: w.rec, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	w.upstream = "http://" + ln.Addr().String()
	return w
}

// recorder keeps the raw headers of every request that reached the
// upstream, before the backend interprets them.
type recorder struct {
	next http.Handler
	mu   sync.Mutex
	seen []http.Header
}

func (r *recorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	r.seen = append(r.seen, req.Header.Clone())
	r.mu.Unlock()
	r.next.ServeHTTP(w, req)
}

func (r *recorder) last(t *testing.T) http.Header {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.seen) == 0 {
		t.Fatal("the upstream received no request")
	}
	return r.seen[len(r.seen)-1]
}

// lastSeen is the backend's record of the last request it received.
func (w *world) lastSeen(t *testing.T) aem.Seen {
	t.Helper()
	s := w.backend.Seen()
	if len(s) == 0 {
		t.Fatal("the backend received no request")
	}
	return s[len(s)-1]
}

func (w *world) mint(t *testing.T, u imsUser, client string) string {
	t.Helper()
	return w.mintReq(t, imstest.TokenRequest{UserID: u.id, ClientID: client})
}

func (w *world) mintReq(t *testing.T, req imstest.TokenRequest) string {
	t.Helper()
	tok, _, err := w.ims.MintToken(req)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// imsCalls counts the per-request IMS calls: validate, profile, organizations.
type imsCalls struct{ validate, profile, orgs int64 }

func (w *world) calls() imsCalls {
	return imsCalls{
		w.ims.Calls(imstest.EndpointValidate),
		w.ims.Calls(imstest.EndpointProfile),
		w.ims.Calls(imstest.EndpointOrganizations),
	}
}

func (c imsCalls) sub(d imsCalls) imsCalls {
	return imsCalls{c.validate - d.validate, c.profile - d.profile, c.orgs - d.orgs}
}

func (c imsCalls) String() string {
	return fmt.Sprintf("validate %d, profile %d, organizations %d", c.validate, c.profile, c.orgs)
}

// wantCalls checks the IMS calls made since before.
func (w *world) wantCalls(t *testing.T, before, want imsCalls) {
	t.Helper()
	if got := w.calls().sub(before); got != want {
		t.Errorf("IMS calls: %v; want %v", got, want)
	}
}

// unset removes a variable from the base environment in start's overrides.
const unset = "\x00unset"

// baseEnv is the environment of a Gatehouse that works in w.
func (w *world) baseEnv() map[string]string {
	return map[string]string{
		"LISTEN":           "127.0.0.1:0",
		"UPSTREAM":         w.upstream,
		"IMS_URL":          w.ims.URL,
		"IMS_CLIENT_IDS":   clientID + "," + clientID2,
		"IMS_ORG":          orgID,
		"IMS_VALIDATION":   "both",
		"GROUP_MAPPING":    mapping,
		"STORE":            "sqlite:" + w.db,
		"COOKIE_SECURE":    "false",
		"LOG_FORMAT":       "json",
		"SHUTDOWN_TIMEOUT": "5s",
	}
}

// start runs `gatehouse serve` in w with the base environment changed by
// overrides (names without the GATEHOUSE_ prefix; the value unset removes
// one), and waits until it is ready.
func (w *world) start(t *testing.T, overrides map[string]string) *proc {
	t.Helper()
	p := w.startUnready(t, overrides)
	p.waitReady(t)
	return p
}

// startUnready is start without waiting for readiness: it returns once the
// process logged its address.
func (w *world) startUnready(t *testing.T, overrides map[string]string) *proc {
	t.Helper()
	vars := w.baseEnv()
	for k, v := range overrides {
		if v == unset {
			delete(vars, k)
		} else {
			vars[k] = v
		}
	}
	env := cleanEnv()
	for k, v := range vars {
		env = append(env, "GATEHOUSE_"+k+"="+v)
	}
	return startServe(t, env)
}

// cleanEnv is the test's environment without any GATEHOUSE_ variable. A
// race-enabled binary would sleep a second at every exit to let pending
// race reports out; a tenth of that is plenty for a process this small.
func cleanEnv() []string {
	var env []string
	gorace := false
	for _, kv := range os.Environ() {
		gorace = gorace || strings.HasPrefix(kv, "GORACE=")
		if !strings.HasPrefix(kv, "GATEHOUSE_") {
			env = append(env, kv)
		}
	}
	if raceEnabled && !gorace {
		env = append(env, "GORACE=atexit_sleep_ms=100")
	}
	return env
}

// runBinary runs the gatehouse binary with args and env (nil: the test's
// environment without GATEHOUSE_ variables), bounded by limit.
func runBinary(t *testing.T, limit time.Duration, env []string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	return runBinaryOf(t, gatehouseBin, limit, env, args...)
}

// runBinaryOf is runBinary with another build of gatehouse.
func runBinaryOf(t *testing.T, bin string, limit time.Duration, env []string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	if env == nil {
		env = cleanEnv()
	}
	cmd.Env = env
	cmd.WaitDelay = 5 * time.Second
	setDeathSignal(cmd)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("gatehouse %s still running after %s; stdout:\n%s\nstderr:\n%s", strings.Join(args, " "), limit, out.String(), errOut.String())
	}
	code = cmd.ProcessState.ExitCode()
	if err != nil && code < 0 {
		t.Fatalf("gatehouse %s: %v", strings.Join(args, " "), err)
	}
	return code, out.String(), errOut.String()
}

// proc is a running `gatehouse serve`.
type proc struct {
	cmd     *exec.Cmd
	logs    *logSink
	url     string
	client  *http.Client
	done    chan struct{}
	waitErr error // valid once done is closed
	stopped bool
}

func startServe(t *testing.T, env []string) *proc {
	t.Helper()
	return startServeBinary(t, gatehouseBin, env, nil)
}

// startServeBinary is startServe with another build of gatehouse;
// configure, when set, adjusts the command before it starts.
func startServeBinary(t *testing.T, bin string, env []string, configure func(*exec.Cmd)) *proc {
	t.Helper()
	p := &proc{logs: newLogSink(), done: make(chan struct{})}
	p.cmd = exec.Command(bin, "serve")
	p.cmd.Env = env
	if configure != nil {
		configure(p.cmd)
	}
	p.cmd.Stderr = p.logs
	p.cmd.Stdout = p.logs
	setDeathSignal(p.cmd)
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.waitErr = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() { p.stop(t) })

	select {
	case addr := <-p.logs.addr:
		p.url = "http://" + addr
	case <-p.done:
		t.Fatalf("gatehouse exited before listening (%v); its output:\n%s", p.waitErr, p.logs)
	case <-time.After(20 * time.Second):
		t.Fatalf("gatehouse logged no \"gatehouse listening\" line within 20s; its output:\n%s", p.logs)
	}
	p.client = &http.Client{
		Transport:     &http.Transport{MaxIdleConnsPerHost: 4, ResponseHeaderTimeout: 15 * time.Second},
		Timeout:       20 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	t.Cleanup(p.client.CloseIdleConnections)
	return p
}

// waitReady polls readyz until it answers 200.
func (p *proc) waitReady(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	last := "no answer"
	for time.Now().Before(deadline) {
		resp, err := p.client.Get(p.url + "/gatehouse/readyz")
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
			last = fmt.Sprintf("%d %s", resp.StatusCode, body)
		} else {
			last = err.Error()
		}
		select {
		case <-p.done:
			t.Fatalf("gatehouse exited while waiting for readiness (%v); its output:\n%s", p.waitErr, p.logs)
		case <-time.After(25 * time.Millisecond):
		}
	}
	t.Fatalf("gatehouse not ready within 15s (last: %s); its output:\n%s", last, p.logs)
}

// stop sends SIGTERM, waits, and checks that the process exited 0 without
// a race report. It is safe to call more than once.
func (p *proc) stop(t *testing.T) {
	t.Helper()
	if p.stopped {
		return
	}
	p.stopped = true
	if p.client != nil {
		p.client.CloseIdleConnections()
	}
	select {
	case <-p.done:
		t.Errorf("gatehouse exited on its own before it was stopped (%v); its output:\n%s", p.waitErr, p.logs)
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
		t.Errorf("gatehouse did not exit within 15s of SIGTERM; its output:\n%s", p.logs)
		return
	}
	if p.waitErr != nil {
		t.Errorf("gatehouse exited with %v after SIGTERM, want status 0; its output:\n%s", p.waitErr, p.logs)
	}
	if strings.Contains(p.logs.String(), "WARNING: DATA RACE") {
		t.Errorf("the race detector reported a data race in gatehouse:\n%s", p.logs)
	}
}

// logSink captures a process's output and finds the listening address in
// its JSON log.
type logSink struct {
	addr chan string

	mu      sync.Mutex
	buf     bytes.Buffer
	scanned int
	found   bool
}

func newLogSink() *logSink { return &logSink{addr: make(chan string, 1)} }

func (s *logSink) Write(b []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.buf.Write(b)
	for !s.found {
		rest := s.buf.Bytes()[s.scanned:]
		i := bytes.IndexByte(rest, '\n')
		if i < 0 {
			break
		}
		line := rest[:i]
		s.scanned += i + 1
		var l struct {
			Msg  string `json:"msg"`
			Addr string `json:"addr"`
		}
		if json.Unmarshal(line, &l) == nil && l.Msg == "gatehouse listening" && l.Addr != "" {
			s.found = true
			s.addr <- l.Addr
		}
	}
	return len(b), nil
}

func (s *logSink) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

// logLine is one parsed JSON log line.
type logLine map[string]any

func (l logLine) str(k string) string {
	s, _ := l[k].(string)
	return s
}

// lines parses every line of the output; a line that is not a JSON object
// fails the test.
func (s *logSink) lines(t *testing.T) []logLine {
	t.Helper()
	var out []logLine
	for _, raw := range strings.Split(strings.TrimRight(s.String(), "\n"), "\n") {
		if raw == "" {
			continue
		}
		var l logLine
		if err := json.Unmarshal([]byte(raw), &l); err != nil {
			t.Errorf("log line is not JSON (%v): %q", err, raw)
			continue
		}
		out = append(out, l)
	}
	return out
}

// request is what a test sends. Header keys are sent as written, so that
// non-canonical and underscore variants reach the wire unchanged.
type request struct {
	method string // default GET
	path   string
	bearer string // Authorization: Bearer <bearer>
	auth   string // a raw Authorization value (instead of bearer)
	cookie string // the login-token cookie's value
	header map[string][]string
}

// response is what came back, read in full.
type response struct {
	status int
	header http.Header
	body   []byte
	took   time.Duration
}

func (p *proc) do(t *testing.T, r request) *response {
	t.Helper()
	if r.method == "" {
		r.method = http.MethodGet
	}
	req, err := http.NewRequest(r.method, p.url+r.path, nil)
	if err != nil {
		t.Fatal(err)
	}
	switch {
	case r.auth != "":
		req.Header["Authorization"] = []string{r.auth}
	case r.bearer != "":
		req.Header["Authorization"] = []string{"Bearer " + r.bearer}
	}
	for k, v := range r.header {
		req.Header[k] = v
	}
	if r.cookie != "" {
		// One Cookie line, the login token first, as a browser would send it.
		line := "login-token=" + r.cookie
		if others := req.Header["Cookie"]; len(others) > 0 {
			line += "; " + strings.Join(others, "; ")
		}
		req.Header["Cookie"] = []string{line}
	}
	start := time.Now()
	resp, err := p.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", r.method, r.path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		t.Fatalf("%s %s: reading the body: %v", r.method, r.path, err)
	}
	return &response{status: resp.StatusCode, header: resp.Header, body: body, took: time.Since(start)}
}

func (r *response) String() string {
	return fmt.Sprintf("%d %s", r.status, bytes.TrimSpace(r.body))
}

func wantStatus(t *testing.T, r *response, want int) {
	t.Helper()
	if r.status != want {
		t.Fatalf("status %d, want %d; body: %s", r.status, want, bytes.TrimSpace(r.body))
	}
}

// setCookie is one login-token Set-Cookie line of a response, parsed by
// hand so that the attributes are exactly those on the wire.
type setCookie struct {
	raw   string
	value string
	attrs map[string]string // lower-case attribute name → value ("" for flags)
}

func (c *setCookie) has(attr string) bool { _, ok := c.attrs[attr]; return ok }

// loginCookies returns the login-token Set-Cookie lines of r.
func (r *response) loginCookies() []*setCookie {
	var out []*setCookie
	for _, line := range r.header.Values("Set-Cookie") {
		parts := strings.Split(line, ";")
		name, value, _ := strings.Cut(strings.TrimSpace(parts[0]), "=")
		if name != "login-token" {
			continue
		}
		c := &setCookie{raw: line, value: value, attrs: map[string]string{}}
		for _, a := range parts[1:] {
			k, v, _ := strings.Cut(strings.TrimSpace(a), "=")
			c.attrs[strings.ToLower(k)] = v
		}
		out = append(out, c)
	}
	return out
}

// newCookie returns the one login-token cookie r sets with a value, failing
// the test if there is not exactly one.
func (r *response) newCookie(t *testing.T) *setCookie {
	t.Helper()
	cs := r.loginCookies()
	if len(cs) != 1 || cs[0].value == "" {
		t.Fatalf("want one login-token cookie with a value, got Set-Cookie %q", r.header.Values("Set-Cookie"))
	}
	return cs[0]
}

// wantNoNewCookie fails if r sets a login-token cookie with a value.
func (r *response) wantNoNewCookie(t *testing.T) {
	t.Helper()
	for _, c := range r.loginCookies() {
		if c.value != "" {
			t.Errorf("a login-token cookie was set: %q", c.raw)
		}
	}
}

// wantClearedCookie fails unless r deletes the login-token cookie.
func (r *response) wantClearedCookie(t *testing.T) {
	t.Helper()
	cs := r.loginCookies()
	if len(cs) != 1 {
		t.Fatalf("want one login-token Set-Cookie that clears it, got %q", r.header.Values("Set-Cookie"))
	}
	c := cs[0]
	expired := false
	if e, ok := c.attrs["expires"]; ok {
		if at, err := http.ParseTime(e); err == nil && at.Before(time.Now()) {
			expired = true
		}
	}
	if c.value != "" || !(c.attrs["max-age"] == "0" || expired) {
		t.Errorf("Set-Cookie %q does not clear the login token (want an empty value with Max-Age=0 or a past Expires)", c.raw)
	}
	if c.attrs["path"] != "/" {
		t.Errorf("Set-Cookie %q: the clearing cookie must have Path=/ to replace the login token", c.raw)
	}
}

// expires is when the cookie's login token has surely expired: Expires is
// written in whole seconds.
func (c *setCookie) expires(t *testing.T) time.Time {
	t.Helper()
	at, err := http.ParseTime(c.attrs["expires"])
	if err != nil {
		t.Fatalf("Set-Cookie %q: Expires: %v", c.raw, err)
	}
	return at.Add(1100 * time.Millisecond)
}

// currentUser is the backend's answer to currentuser.json.
type currentUser struct {
	AuthorizableID   string   `json:"authorizableId"`
	Email            string   `json:"email"`
	Groups           []string `json:"groups"`
	Authorization    bool     `json:"authorization"`
	LoginTokenCookie bool     `json:"loginTokenCookie"`
	User             string   `json:"user"` // in every answer of the backend
}

func (r *response) currentUser(t *testing.T) currentUser {
	t.Helper()
	var cu currentUser
	if err := json.Unmarshal(r.body, &cu); err != nil {
		t.Fatalf("backend answer is not JSON (%v): %s", err, r.body)
	}
	return cu
}

// wantUser checks that the backend answered currentuser.json for u with
// u's mapped groups, and saw neither the bearer token nor the cookie.
func wantUser(t *testing.T, r *response, u imsUser) {
	t.Helper()
	wantStatus(t, r, http.StatusOK)
	cu := r.currentUser(t)
	if cu.AuthorizableID != u.id || cu.Email != u.email || !slices.Equal(cu.Groups, u.groups) {
		t.Errorf("upstream saw user %q email %q groups %q; want %q %q %q",
			cu.AuthorizableID, cu.Email, cu.Groups, u.id, u.email, u.groups)
	}
	if cu.Authorization {
		t.Error("the Authorization header reached the upstream")
	}
	if cu.LoginTokenCookie {
		t.Error("the login-token cookie reached the upstream")
	}
}

// apiError is the JSON body of Gatehouse's authentication errors.
type apiError struct {
	Error       string `json:"error"`
	Description string `json:"error_description"`
	Reason      string `json:"reason"`
}

// wantAuthError checks an authentication failure on the wire: status,
// the RFC 6750 error code in WWW-Authenticate ("" for none), X-Reason, and
// a JSON body that explains it.
func wantAuthError(t *testing.T, r *response, status int, code, reason string) {
	t.Helper()
	if r.status != status {
		t.Errorf("status %d, want %d; body: %s", r.status, status, bytes.TrimSpace(r.body))
	}
	wa := r.header.Get("WWW-Authenticate")
	switch {
	case status == http.StatusUnauthorized && !strings.HasPrefix(wa, "Bearer"):
		t.Errorf("WWW-Authenticate %q, want a Bearer challenge", wa)
	case code != "" && !strings.HasPrefix(wa, "Bearer"):
		t.Errorf("WWW-Authenticate %q, want a Bearer challenge with error=%q", wa, code)
	case code != "" && !strings.Contains(wa, `error="`+code+`"`):
		t.Errorf("WWW-Authenticate %q, want error=%q", wa, code)
	case code == "" && strings.Contains(wa, "error="):
		t.Errorf("WWW-Authenticate %q, want no error code", wa)
	}
	if got := r.header.Get("X-Reason"); got != reason {
		t.Errorf("X-Reason %q, want %q", got, reason)
	}
	var e apiError
	if err := json.Unmarshal(r.body, &e); err != nil {
		t.Errorf("body is not JSON (%v): %s", err, r.body)
		return
	}
	if strings.TrimSpace(e.Description) == "" {
		t.Errorf("body %s has no error_description", bytes.TrimSpace(r.body))
	}
	if e.Error != code {
		t.Errorf("body error %q, want %q", e.Error, code)
	}
}

// sleepUntil waits until at, at most max (so a broken Expires cannot make a
// test hang).
func sleepUntil(t *testing.T, at time.Time, max time.Duration) {
	t.Helper()
	d := time.Until(at)
	if d > max {
		t.Fatalf("would wait %s, more than %s", d, max)
	}
	if d > 0 {
		time.Sleep(d)
	}
}
