package test

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gatehouse-proxy/gatehouse/auth/ims/imstest"
)

// nginxExample is the forward-auth configuration the README documents; the
// tests run nginx with it as it is, with only the three addresses in it
// replaced.
const nginxExample = "nginx/gatehouse.conf"

// The addresses in the documented configuration, which the tests replace.
const (
	exampleListen    = "listen 80;"
	exampleGatehouse = "server 127.0.0.1:8080;"
	exampleBackend   = "server 127.0.0.1:4502;"
)

// dora signs in with no group at all: nginx must still drop a client's
// X-Forwarded-Groups although Gatehouse sends none.
var dora = imsUser{"D0RA00000000000000000004@AdobeID", "dora.contributor@example.com", []string{}}

// TestREADMENginxExample keeps the README's nginx example and the file the
// tests run in step.
func TestREADMENginxExample(t *testing.T) {
	conf := repoFile(t, filepath.Join("test", nginxExample))
	readme := repoFile(t, "README.md")
	block := "```nginx\n" + string(conf) + "```\n"
	if !bytes.Contains(readme, []byte(block)) {
		t.Errorf("README.md has no ```nginx block equal to test/%s: copy the file into the Forward-auth section", nginxExample)
	}
	for _, s := range []string{exampleListen, exampleGatehouse, exampleBackend} {
		if n := strings.Count(string(conf), s); n != 1 {
			t.Errorf("test/%s has %q %d times, want once (the tests replace it)", nginxExample, s, n)
		}
	}
}

// repoFile is the file at rel in the repository.
func repoFile(t *testing.T, rel string) []byte {
	t.Helper()
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(root, rel))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// nginxServer is nginx running the documented configuration.
type nginxServer struct {
	url  string
	dir  string
	cmd  *exec.Cmd
	done chan struct{}
}

// findNginx returns the nginx binary. Without one the test fails under
// CI=true (test/run installs it) and skips otherwise.
func findNginx(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("nginx"); err == nil {
		return p
	}
	if _, err := os.Stat("/usr/sbin/nginx"); err == nil {
		return "/usr/sbin/nginx" // not on a non-root PATH
	}
	msg := "nginx is not installed: the forward-auth end-to-end tests need Debian's nginx (apt-get install nginx; ./test/run installs it as root)"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg + "; skipped because CI is not true")
	return ""
}

// startNginx runs nginx on loopback in front of w's backend, asking the
// Gatehouse at gatehouseURL; everything it writes stays in a temporary
// directory, and no system configuration is read.
func startNginx(t *testing.T, w *world, gatehouseURL string) *nginxServer {
	t.Helper()
	bin := findNginx(t)
	example := repoFile(t, filepath.Join("test", nginxExample))
	// A free port may be taken between closing it here and nginx binding
	// it: try again then.
	var lastErr error
	for range 3 {
		n, err := tryNginx(t, bin, string(example), w, gatehouseURL)
		if err == nil {
			return n
		}
		lastErr = err
	}
	t.Fatal(lastErr)
	return nil
}

func tryNginx(t *testing.T, bin, example string, w *world, gatehouseURL string) (*nginxServer, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	dir := t.TempDir()
	conf := strings.NewReplacer(
		exampleListen, "listen "+addr+";",
		exampleGatehouse, "server "+strings.TrimPrefix(gatehouseURL, "http://")+";",
		exampleBackend, "server "+strings.TrimPrefix(w.upstream, "http://")+";",
	).Replace(example)
	user := ""
	if os.Geteuid() == 0 {
		// Workers would run as nobody, who cannot write the temporary
		// directory; as root they may.
		user = "user root root;\n"
	}
	main := fmt.Sprintf(`daemon off;
%sworker_processes 1;
pid %[2]s/nginx.pid;
error_log %[2]s/error.log info;
events { worker_connections 256; }
http {
    access_log %[2]s/access.log;
    client_body_temp_path %[2]s/client_body;
    proxy_temp_path %[2]s/proxy;
    fastcgi_temp_path %[2]s/fastcgi;
    uwsgi_temp_path %[2]s/uwsgi;
    scgi_temp_path %[2]s/scgi;
    default_type application/octet-stream;
%s}
`, user, dir, conf)
	confPath := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(confPath, []byte(main), 0o600); err != nil {
		t.Fatal(err)
	}
	n := &nginxServer{url: "http://" + addr, dir: dir, done: make(chan struct{})}
	var out bytes.Buffer
	n.cmd = exec.Command(bin, "-p", dir, "-c", confPath, "-e", filepath.Join(dir, "error.log"))
	n.cmd.Stdout, n.cmd.Stderr = &out, &out
	setDeathSignal(n.cmd)
	if err := n.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = n.cmd.Wait(); close(n.done) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			break
		}
		select {
		case <-n.done:
			log, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			return nil, fmt.Errorf("nginx exited at start-up: %s\n%s", out.String(), log)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			_ = n.cmd.Process.Kill()
			<-n.done
			log, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			return nil, fmt.Errorf("nginx did not listen on %s within 10s: %s\n%s", addr, out.String(), log)
		}
	}
	t.Cleanup(func() { n.stop(t) })
	return n, nil
}

func (n *nginxServer) stop(t *testing.T) {
	_ = n.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-n.done:
	case <-time.After(10 * time.Second):
		_ = n.cmd.Process.Kill()
		<-n.done
		t.Errorf("nginx did not exit within 10s of SIGTERM")
	}
}

// errorLog is nginx's error log, for failure messages.
func (n *nginxServer) errorLog() string {
	b, _ := os.ReadFile(filepath.Join(n.dir, "error.log"))
	return string(b)
}

// nginxWorld is a world with Gatehouse serving forward-auth to nginx, and
// a client that talks to nginx.
type nginxWorld struct {
	*world
	gatehouse *proc
	nginx     *nginxServer
	front     *proc // requests through nginx (only url and client are used)
}

func newNginxWorld(t *testing.T, env map[string]string) *nginxWorld {
	t.Helper()
	findNginx(t) // skip before starting anything
	w := newWorld(t)
	w.ims.AddUser(imstest.User{ID: dora.id, Email: dora.email, FirstName: "Dora", LastName: "Designer",
		Orgs: []imstest.Org{{ID: orgID, Name: "Example Brand"}}})
	g := w.start(t, env)
	n := startNginx(t, w, g.url)
	front := &proc{url: n.url, client: g.client}
	return &nginxWorld{world: w, gatehouse: g, nginx: n, front: front}
}

// signInThroughNginx starts a nginxWorld with env and signs Alice in
// through nginx with a bearer token: the backend gets the user, not the
// credentials, and the client gets a login token, which it returns with
// the bearer.
func signInThroughNginx(t *testing.T, env map[string]string) (*nginxWorld, string, *setCookie) {
	t.Helper()
	n := newNginxWorld(t, env)
	tok := n.mint(t, alice, clientID)
	before := n.calls()
	r := n.front.do(t, request{path: whoami, bearer: tok})
	wantUser(t, r, alice)
	n.wantCalls(t, before, imsCalls{1, 1, 1})
	return n, tok, r.newCookie(t)
}

// wantRefusedByNginx checks a refusal as nginx passes it on: status,
// WWW-Authenticate for a 401, and X-Reason (nginx writes its own body).
func wantRefusedByNginx(t *testing.T, n *nginxWorld, r *response, status int, reason string) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d; body %s; nginx's error log:\n%s", r.status, status, bytes.TrimSpace(r.body), n.nginx.errorLog())
	}
	if wa := r.header.Get("WWW-Authenticate"); status == http.StatusUnauthorized && !strings.HasPrefix(wa, `Bearer realm="gatehouse"`) {
		t.Errorf("WWW-Authenticate %q, want Gatehouse's Bearer challenge", wa)
	}
	if got := r.header.Get("X-Reason"); got != reason {
		t.Errorf("X-Reason %q, want %q", got, reason)
	}
}

// TestNginxForwardAuth runs Debian's nginx with the documented
// configuration in front of the backend, asking the real binary.
func TestNginxForwardAuth(t *testing.T) {
	t.Parallel()

	t.Run("sign-in, cookies, spoofing", func(t *testing.T) {
		t.Parallel()
		n, tok, cookie := signInThroughNginx(t, nil)
		wantCookieAttrs(t, cookie, false, "Lax")

		// Cookie requests: no IMS call, no new cookie, the other cookie
		// passes, the login token does not.
		before := n.calls()
		for _, path := range []string{whoami, "/content/dam/we-retail.json", whoami} {
			r := n.front.do(t, request{path: path, cookie: cookie.value, header: map[string][]string{"Cookie": {"aem-pref=blue"}}})
			wantStatus(t, r, http.StatusOK)
			r.wantNoNewCookie(t)
			s := n.lastSeen(t)
			if s.User != alice.id || s.Groups != "administrators,dam-users" || s.Authorization || s.LoginTokenCookie {
				t.Errorf("%s: backend saw %+v", path, s)
			}
			if got := n.rec.last(t).Values("Cookie"); len(got) != 1 || got[0] != "aem-pref=blue" {
				t.Errorf("%s: backend got Cookie %q, want only the unrelated cookie", path, got)
			}
		}
		n.wantCalls(t, before, imsCalls{})

		// Spoofed identity headers never reach the backend, in any
		// spelling, with or without credentials, and whether or not
		// Gatehouse has a value of its own for the header.
		spoofed := map[string][]string{
			"X-Forwarded-User":   {"admin"},
			"x-forwarded-email":  {"admin@evil.example"},
			"X-FORWARDED-GROUPS": {"administrators"},
			"X_Forwarded_User":   {"admin"},
			"X-Forwarded_Groups": {"administrators"},
		}
		tokC := n.mint(t, dora, clientID)
		for _, tc := range []struct {
			name   string
			req    request
			user   imsUser
			status int
		}{
			{"cookie", request{path: whoami, cookie: cookie.value, header: spoofed}, alice, 200},
			{"bearer of a user without groups", request{path: whoami, bearer: tokC, header: spoofed}, dora, 200},
			{"no credentials", request{path: whoami, header: spoofed}, imsUser{}, 401},
		} {
			seen := n.backend.Requests()
			r := n.front.do(t, tc.req)
			if tc.status != 200 {
				wantRefusedByNginx(t, n, r, tc.status, "NO_CREDENTIALS")
				if n.backend.Requests() != seen {
					t.Errorf("%s: a refused request reached the backend", tc.name)
				}
				continue
			}
			wantUser(t, r, tc.user)
			for name, vals := range n.rec.last(t) {
				if !identityLike(name) {
					continue
				}
				want := map[string]string{"X-Forwarded-User": tc.user.id, "X-Forwarded-Email": tc.user.email,
					"X-Forwarded-Groups": strings.Join(tc.user.groups, ",")}[name]
				if len(vals) != 1 || vals[0] != want || want == "" {
					t.Errorf("%s: backend got %s %q", tc.name, name, vals)
				}
			}
		}

		// Logout through nginx reaches Gatehouse; the cookie is dead after.
		r := n.front.do(t, request{method: "POST", path: "/gatehouse/logout", cookie: cookie.value})
		wantStatus(t, r, http.StatusOK)
		r.wantClearedCookie(t)
		r = n.front.do(t, request{path: whoami, cookie: cookie.value})
		wantRefusedByNginx(t, n, r, http.StatusUnauthorized, "INVALID_TOKEN")
		r.wantClearedCookie(t)
		// A refusal auth_request has no answer for becomes nginx's 500,
		// still saying why.
		r = n.front.do(t, request{path: whoami, header: map[string][]string{"Cookie": {"login-token=a; login-token=b"}}})
		wantRefusedByNginx(t, n, r, http.StatusInternalServerError, "AMBIGUOUS_COOKIE")
		r.wantClearedCookie(t)
		// The forward-auth endpoint itself is not for clients.
		r = n.front.do(t, request{path: "/gatehouse/auth", bearer: tok})
		wantStatus(t, r, http.StatusNotFound)
	})

	t.Run("expiry and re-auth", func(t *testing.T) {
		t.Parallel()
		n, tok, c1 := signInThroughNginx(t, map[string]string{"LOGIN_TOKEN_TTL": "2s"})
		wantUser(t, n.front.do(t, request{path: whoami, cookie: c1.value}), alice)
		sleepUntil(t, c1.expires(t), 5*time.Second)

		seen, before := n.backend.Requests(), n.calls()
		r := n.front.do(t, request{path: whoami, cookie: c1.value})
		wantRefusedByNginx(t, n, r, http.StatusUnauthorized, "EXPIRED_TOKEN")
		if wa := r.header.Get("WWW-Authenticate"); !strings.Contains(wa, `error="invalid_token"`) {
			t.Errorf("WWW-Authenticate %q, want error=\"invalid_token\"", wa)
		}
		r.wantClearedCookie(t)
		if n.backend.Requests() != seen {
			t.Error("a request with an expired cookie reached the backend")
		}

		// The client signs in again with its bearer in the same request.
		r = n.front.do(t, request{path: whoami, bearer: tok, cookie: c1.value})
		wantUser(t, r, alice)
		c2 := r.newCookie(t)
		if c2.value == c1.value {
			t.Error("re-authentication returned the expired login token")
		}
		n.wantCalls(t, before, imsCalls{})
		wantUser(t, n.front.do(t, request{path: whoami, cookie: c2.value}), alice)
	})

	t.Run("browsers sent to sign in", func(t *testing.T) {
		t.Parallel()
		n, _, cookie := signInThroughNginx(t, map[string]string{
			"PUBLIC_URL": "https://assets.example.com", "BROWSER_CLIENT_ID": browserClientID})
		page := map[string][]string{"Accept": {"text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}}
		api := map[string][]string{"Accept": {"application/json"}}
		const target = "/content/dam/a.html?x=1&y=%2F"
		signIn := "/gatehouse/sign-in?rd=" + url.QueryEscape(target)
		for _, tc := range []struct {
			name     string
			req      request
			location string // a 302's; "": the 401 of the other cases
			cleared  bool   // the dead login token is cleared
		}{
			{"a page without credentials", request{path: target, header: page}, signIn, false},
			{"a page with a revoked cookie", request{path: target, header: page, cookie: "not-a-login-token"}, signIn, true},
			{"JSON without credentials", request{path: target, header: api}, "", false},
			{"a page with a bearer token of nobody", request{path: target, header: page, bearer: "not-a-token"}, "", false},
		} {
			seen := n.backend.Requests()
			r := n.front.do(t, tc.req)
			if n.backend.Requests() != seen {
				t.Errorf("%s: a refused request reached the backend", tc.name)
			}
			if tc.cleared {
				r.wantClearedCookie(t)
			}
			if tc.location == "" {
				if r.header.Get("Location") != "" {
					t.Errorf("%s: Location %q on a refusal", tc.name, r.header.Get("Location"))
				}
				wantRefusedByNginx(t, n, r, http.StatusUnauthorized, map[bool]string{true: "NO_CREDENTIALS", false: "INVALID_TOKEN"}[tc.req.bearer == ""])
				if n := len(r.header.Values("WWW-Authenticate")); n != 1 {
					t.Errorf("%s: %d WWW-Authenticate headers, want 1", tc.name, n)
				}
				continue
			}
			if r.status != http.StatusFound || r.header.Get("Location") != tc.location {
				t.Fatalf("%s: %d Location %q, want 302 to %s; nginx's error log:\n%s", tc.name, r.status, r.header.Get("Location"), tc.location, n.nginx.errorLog())
			}
			// nginx keeps the challenge it copied from the 401, which a
			// browser ignores on a redirect; the reason is dropped.
			if r.header.Get("Cache-Control") != "no-store" || r.header.Get("X-Reason") != "" {
				t.Errorf("%s: the redirect may be cached or keeps the 401's reason: %v", tc.name, r.header)
			}
			// The sign-in page is Gatehouse's, through nginx: on to IMS.
			r = n.front.do(t, request{path: tc.location, header: page})
			if loc := r.header.Get("Location"); r.status != http.StatusFound || !strings.HasPrefix(loc, n.ims.URL+"/ims/authorize") {
				t.Errorf("%s: sign-in answered %d Location %q, want a 302 to IMS", tc.name, r.status, loc)
			}
		}
		// A signed-in browser gets its page.
		wantUser(t, n.front.do(t, request{path: whoami, header: page, cookie: cookie.value}), alice)
	})

	t.Run("API paths by X-Original-URI", func(t *testing.T) {
		t.Parallel()
		n, tok, cookie := signInThroughNginx(t, map[string]string{"API_PATHS": "/api/"})
		gateway := map[string][]string{"X-Api-Key": {clientID}, "X-Gw-Ims-Org-Id": {orgID}}
		// What a client might send to make the API path look like another.
		disguise := map[string][]string{"X-Forwarded-Uri": {"/content/dam.json"}, "X-Original-URI": {"/content/dam.json"},
			"X-Forwarded-Method": {"GET"}, "X-Original-Method": {"GET"}}
		for _, tc := range []struct {
			name   string
			req    request
			status int    // 0: reaches the backend
			reason string // of a refusal
		}{
			{"cookie off the API", request{path: whoami, cookie: cookie.value}, 0, ""},
			{"cookie alone on the API", request{path: "/api/assets.json", cookie: cookie.value}, 401, "NO_CREDENTIALS"},
			{"encoded API path", request{path: "/%61pi/assets.json", cookie: cookie.value}, 401, "NO_CREDENTIALS"},
			{"disguised API path", request{method: "POST", path: "/api/assets.json", cookie: cookie.value, header: disguise}, 401, "NO_CREDENTIALS"},
			{"bearer without the gateway headers", request{path: "/api/assets.json", bearer: tok}, 403, "FORBIDDEN"},
			{"bearer with the gateway headers", request{path: "/api/assets.json", bearer: tok, header: gateway}, 0, ""},
		} {
			seen := n.backend.Requests()
			r := n.front.do(t, tc.req)
			if tc.status != 0 {
				wantRefusedByNginx(t, n, r, tc.status, tc.reason)
				if n.backend.Requests() != seen {
					t.Errorf("%s: a refused request reached the backend", tc.name)
				}
				continue
			}
			if n.backend.Requests() != seen+1 {
				t.Fatalf("%s: %s; the backend got %d requests, want 1", tc.name, r, n.backend.Requests()-seen)
			}
			if s := n.lastSeen(t); s.User != alice.id {
				t.Errorf("%s: backend saw user %q", tc.name, s.User)
			}
		}
	})
}

// identityLike is any header name that reads as X-Forwarded-User, -Email
// or -Groups once case, "-" and "_" are ignored.
func identityLike(name string) bool {
	switch strings.NewReplacer("-", "", "_", "").Replace(strings.ToLower(name)) {
	case "xforwardeduser", "xforwardedemail", "xforwardedgroups":
		return true
	}
	return false
}
