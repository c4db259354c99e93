package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/gatehouse-proxy/gatehouse/auth/ims"
	"github.com/gatehouse-proxy/gatehouse/auth/ims/imstest"
	"github.com/gatehouse-proxy/gatehouse/test/aem"
)

// Demo timings: short enough that the whole flow runs in seconds, long
// enough that the steps between sign-ins finish well inside them.
const (
	demoTokenTTL     = 3 * time.Second
	demoSyncInterval = 3 * time.Second
)

func demoCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	keep := fs.Bool("keep", false, "leave the emulator, backend and proxy running after the flow, with curl lines to try by hand")
	verbose := fs.Bool("v", false, "show Gatehouse's own log lines")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: gatehouse demo [--keep] [-v]\n\nStarts the IMS emulator, an AEM-like backend and Gatehouse on loopback,\nplays the desktop extension's sign-in flow and reports each step.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	d, err := startDemo(ctx, stdout, stderr, *verbose)
	if err != nil {
		return err
	}
	defer d.stop()
	if err := d.play(ctx); err != nil {
		return err
	}
	if *keep {
		d.printTryLines()
		<-ctx.Done()
	}
	return nil
}

// demo is the running set-up: emulator, backend and proxy on loopback.
type demo struct {
	out      io.Writer
	emu      *imstest.Server
	backend  *aem.Backend
	upstream *http.Server
	proxyURL string
	app      *app
	cancel   context.CancelFunc
	done     chan error
	dir      string
	client   *http.Client
	step     int
	cookie   *http.Cookie // the login-token cookie the "extension" holds
}

func startDemo(ctx context.Context, stdout, stderr io.Writer, verbose bool) (*demo, error) {
	d := &demo{out: stdout, client: &http.Client{Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
	d.emu = imstest.NewServer(imstest.Options{})
	d.emu.AddUser(demoUser())

	d.backend = aem.New(zap.NewNop())
	bl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		d.emu.Close()
		return nil, fmt.Errorf("demo backend: %w", err)
	}
	d.upstream = &http.Server{Handler: d.backend, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = d.upstream.Serve(bl) }()

	d.dir, err = os.MkdirTemp("", "gatehouse-demo-")
	if err != nil {
		d.stop()
		return nil, err
	}
	// The proxy's address comes first: the browser sign-in's redirect_uri
	// (GATEHOUSE_PUBLIC_URL) names it.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		d.stop()
		return nil, fmt.Errorf("demo proxy: %w", err)
	}
	d.proxyURL = "http://" + ln.Addr().String()
	if err := d.emu.AddBrowserClient(imstest.BrowserClient{ID: demoBrowserClientID,
		RedirectURIs: []string{d.proxyURL + "/gatehouse/callback"}}); err != nil {
		ln.Close()
		d.stop()
		return nil, err
	}
	cfg, err := loadConfig([]string{
		"GATEHOUSE_LISTEN=" + ln.Addr().String(),
		"GATEHOUSE_PUBLIC_URL=" + d.proxyURL,
		"GATEHOUSE_BROWSER_CLIENT_ID=" + demoBrowserClientID,
		"GATEHOUSE_BROWSER_SIGNOUT_URL=" + d.emu.URL + "/ims/logout/v1?redirect_uri=" + url.QueryEscape(d.proxyURL+"/"),
		"GATEHOUSE_UPSTREAM=http://" + bl.Addr().String(),
		"GATEHOUSE_IMS_URL=" + d.emu.URL,
		"GATEHOUSE_IMS_CERTS_URL=" + d.emu.URL + d.emu.CertsPath(),
		"GATEHOUSE_IMS_CLIENT_IDS=" + demoClientID + ",InDesignAem2",
		"GATEHOUSE_IMS_ORG=" + demoOrgID,
		"GATEHOUSE_IMS_VALIDATION=both",
		"GATEHOUSE_GROUP_MAPPING=*:GRP_ADMIN=administrators,AEM-Authors:*=dam-users",
		"GATEHOUSE_STORE=sqlite:" + filepath.Join(d.dir, "gatehouse.db"),
		"GATEHOUSE_COOKIE_SECURE=false", // plain HTTP on loopback
		"GATEHOUSE_LOGIN_TOKEN_TTL=" + demoTokenTTL.String(),
		"GATEHOUSE_SYNC_INTERVAL=" + demoSyncInterval.String(),
		"GATEHOUSE_LOG_FORMAT=console",
	})
	if err != nil {
		ln.Close()
		d.stop()
		return nil, fmt.Errorf("demo configuration: %w", err)
	}
	lg := logs{log: zap.NewNop()}
	if verbose {
		if lg, err = newLogs("info", "console", stderr); err != nil {
			ln.Close()
			d.stop()
			return nil, err
		}
	}
	if d.app, err = newApp(ctx, cfg, lg); err != nil {
		ln.Close()
		d.stop()
		return nil, err
	}
	pctx, cancel := context.WithCancel(ctx)
	d.cancel = cancel
	d.done = make(chan error, 1)
	go func() { d.done <- d.app.serve(pctx, ln) }()

	fmt.Fprintf(stdout, "Gatehouse demo\n  IMS emulator  %s\n  AEM backend   http://%s\n  Gatehouse     %s (store %s, login tokens live %s)\n\n",
		d.emu.URL, bl.Addr(), d.proxyURL, cfg.sqlitePath, demoTokenTTL)
	return d, d.waitReady(ctx)
}

func (d *demo) waitReady(ctx context.Context) error {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := d.client.Get(d.proxyURL + "/gatehouse/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return errors.New("gatehouse did not become ready within 10s")
}

func (d *demo) stop() {
	if d.cancel != nil {
		d.cancel()
		<-d.done
	}
	if d.app != nil {
		d.app.close()
	}
	if d.upstream != nil {
		_ = d.upstream.Close()
	}
	if d.emu != nil {
		d.emu.Close()
	}
	if d.dir != "" {
		_ = os.RemoveAll(d.dir)
	}
}

// imsCalls counts the calls Gatehouse made to the IMS endpoints that cost a
// round trip per request (key fetches are per key set, not per request).
func (d *demo) imsCalls() int64 {
	return d.emu.Calls(imstest.EndpointValidate) + d.emu.Calls(imstest.EndpointProfile) + d.emu.Calls(imstest.EndpointOrganizations)
}

// exchange is one request and what came back.
type exchange struct {
	resp *http.Response
	body []byte
	seen currentUser // the backend's view, for whoami calls
}

type currentUser struct {
	AuthorizableID   string   `json:"authorizableId"`
	Email            string   `json:"email"`
	Groups           []string `json:"groups"`
	Authorization    bool     `json:"authorization"`
	LoginTokenCookie bool     `json:"loginTokenCookie"`
}

func (d *demo) do(method, path, bearerToken string, withCookie bool, hdr map[string]string) (*exchange, error) {
	req, err := http.NewRequest(method, d.proxyURL+path, nil)
	if err != nil {
		return nil, err
	}
	if bearerToken != "" {
		req.Header.Set("Authorization", "Bearer "+bearerToken)
	}
	if withCookie && d.cookie != nil {
		req.AddCookie(&http.Cookie{Name: d.cookie.Name, Value: d.cookie.Value})
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := d.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	ex := &exchange{resp: resp, body: body}
	_ = json.Unmarshal(body, &ex.seen)
	return ex, nil
}

// loginCookie returns the login-token cookie set by the response, if any.
func (d *demo) loginCookie(ex *exchange) *http.Cookie {
	for _, c := range ex.resp.Cookies() {
		if c.Name == "login-token" && c.Value != "" {
			return c
		}
	}
	return nil
}

// report prints one step; a non-nil err fails the demo naming the step.
func (d *demo) report(title string, ex *exchange, detail string, err error) error {
	d.step++
	status := "---"
	if ex != nil {
		status = fmt.Sprint(ex.resp.StatusCode)
	}
	mark := "ok  "
	if err != nil {
		mark = "FAIL"
	}
	fmt.Fprintf(d.out, "%s %2d. %-44s %s  %s\n", mark, d.step, title, status, detail)
	if err != nil {
		return fmt.Errorf("demo step %d (%s): %w", d.step, title, err)
	}
	return nil
}

func (d *demo) mintToken(clientID string) (string, error) {
	form := url.Values{"user_id": {demoUserID}, "client_id": {clientID}}
	resp, err := d.client.PostForm(d.emu.URL+"/ims/dev/token", form)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var tr struct {
		AccessToken string `json:"access_token"`
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("IMS emulator answered %s", resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(&tr); err != nil || tr.AccessToken == "" {
		return "", fmt.Errorf("IMS emulator: no access token in answer (%v)", err)
	}
	return tr.AccessToken, nil
}

func wantStatus(ex *exchange, want int) error {
	if ex.resp.StatusCode != want {
		return fmt.Errorf("status %d, want %d: %s", ex.resp.StatusCode, want, strings.TrimSpace(string(ex.body)))
	}
	return nil
}

func (d *demo) play(ctx context.Context) error {
	// 1. The extension gets an access token from IMS.
	token, err := d.mintToken(demoClientID)
	if err := d.report("IMS: access token for the extension", nil, "client "+demoClientID, err); err != nil {
		return err
	}

	// 2. Bearer sign-in: validate, create user, sync groups, issue cookie.
	calls := d.imsCalls()
	ex, err := d.do("GET", "/libs/granite/security/currentuser.json", token, false, map[string]string{
		"X-Forwarded-User": "admin", "X-Forwarded-Groups": "administrators", // a spoof attempt: must not get through
	})
	if err != nil {
		return d.report("bearer sign-in", nil, "", err)
	}
	d.cookie = d.loginCookie(ex)
	signInCalls := d.imsCalls() - calls
	err = errors.Join(wantStatus(ex, 200),
		check(d.cookie != nil, "no login-token cookie issued"),
		check(ex.seen.AuthorizableID == demoUserID, "upstream saw user %q, want %q", ex.seen.AuthorizableID, demoUserID),
		check(slices.Contains(ex.seen.Groups, "administrators") && slices.Contains(ex.seen.Groups, "dam-users"),
			"upstream saw groups %q, want administrators and dam-users", ex.seen.Groups),
		check(!ex.seen.Authorization, "the bearer token reached the upstream"),
		check(signInCalls == 3, "%d IMS calls, want 3 (validate, profile, organizations)", signInCalls))
	if err := d.report("bearer sign-in: user created, groups synced", ex,
		fmt.Sprintf("user %s groups %v; cookie login-token issued (HttpOnly, SameSite=Lax); IMS calls %d", ex.seen.AuthorizableID, ex.seen.Groups, signInCalls), err); err != nil {
		return err
	}

	// 3. The same bearer again, without the cookie: same login token, no IMS call.
	calls = d.imsCalls()
	ex, err = d.do("GET", "/libs/granite/security/currentuser.json", token, false, nil)
	if err != nil {
		return d.report("same bearer again", nil, "", err)
	}
	again := d.loginCookie(ex)
	err = errors.Join(wantStatus(ex, 200),
		check(again != nil && d.cookie != nil && again.Value == d.cookie.Value, "a new login token was minted for the same bearer"),
		check(d.imsCalls() == calls, "%d IMS calls, want 0", d.imsCalls()-calls))
	if err := d.report("same bearer again, no cookie: token reused", ex, "same login token; IMS calls 0", err); err != nil {
		return err
	}

	// 4–7. Cookie-only work: browse, search, check out, check in. No IMS.
	calls = d.imsCalls()
	asset := "/content/dam/we-retail/en/activities/hiking.jpg"
	cookieSteps := []struct {
		title, method, path string
	}{
		{"cookie: browse /content/dam/we-retail", "GET", "/content/dam/we-retail.json"},
		{"cookie: search 'hiking'", "GET", "/bin/querybuilder.json?fulltext=hiking&path=/content/dam"},
		{"cookie: check out hiking.jpg", "POST", asset + "?:operation=checkout"},
		{"cookie: check in hiking.jpg", "POST", asset + "?:operation=checkin"},
	}
	for _, s := range cookieSteps {
		ex, err := d.do(s.method, s.path, "", true, nil)
		if err != nil {
			return d.report(s.title, nil, "", err)
		}
		err = errors.Join(wantStatus(ex, 200), check(d.imsCalls() == calls, "%d IMS calls, want 0", d.imsCalls()-calls))
		if err := d.report(s.title, ex, "IMS calls 0", err); err != nil {
			return err
		}
	}

	// 8. The login token expires: the extension is told so.
	if err := sleep(ctx, untilExpired(d.cookie)); err != nil {
		return err
	}
	ex, err = d.do("GET", "/content/dam/we-retail.json", "", true, nil)
	if err != nil {
		return d.report("login token expired", nil, "", err)
	}
	err = errors.Join(wantStatus(ex, 401),
		check(ex.resp.Header.Get("X-Reason") == "EXPIRED_TOKEN", "X-Reason %q, want EXPIRED_TOKEN", ex.resp.Header.Get("X-Reason")),
		check(strings.HasPrefix(ex.resp.Header.Get("WWW-Authenticate"), "Bearer"), "no WWW-Authenticate: Bearer"))
	if err := d.report("login token expired: cookie refused", ex, "X-Reason: "+ex.resp.Header.Get("X-Reason"), err); err != nil {
		return err
	}

	// 9. So it signs in again with its bearer, expired cookie and all.
	ex, err = d.do("GET", "/libs/granite/security/currentuser.json", token, true, nil)
	if err != nil {
		return d.report("automatic re-authentication", nil, "", err)
	}
	fresh := d.loginCookie(ex)
	err = errors.Join(wantStatus(ex, 200), check(fresh != nil && fresh.Value != d.cookie.Value, "no new login token"))
	if fresh != nil {
		d.cookie = fresh
	}
	if err := d.report("re-authentication with bearer: new cookie", ex, "fresh login token in the same response", err); err != nil {
		return err
	}

	// 10. An administrator changes the user's groups in IMS: synced at the next sign-in.
	if err := d.emu.SetGroups(demoUserID, demoOrgID, []ims.Group{
		{GroupName: "AEM-Authors", Ident: "4711", Role: "TEAM_MEMBER", GroupType: "USER_GROUP"},
		{GroupName: "Marketing", Ident: "4713", Role: "TEAM_MEMBER", GroupType: "USER_GROUP"},
	}); err != nil {
		return d.report("IMS: groups changed", nil, "", err)
	}
	if err := sleep(ctx, untilExpired(d.cookie)); err != nil {
		return err
	}
	token2, err := d.mintToken(demoClientID)
	if err != nil {
		return d.report("IMS: new access token", nil, "", err)
	}
	ex, err = d.do("GET", "/libs/granite/security/currentuser.json", token2, true, nil)
	if err != nil {
		return d.report("group change synced", nil, "", err)
	}
	if c := d.loginCookie(ex); c != nil {
		d.cookie = c
	}
	err = errors.Join(wantStatus(ex, 200),
		check(slices.Contains(ex.seen.Groups, "Marketing") && !slices.Contains(ex.seen.Groups, "administrators"),
			"upstream saw groups %q, want Marketing added and administrators removed", ex.seen.Groups))
	if err := d.report("IMS group change synced at next sign-in", ex, fmt.Sprintf("groups now %v", ex.seen.Groups), err); err != nil {
		return err
	}

	// 11. A revoked IMS token is refused.
	revoked, err := d.mintToken(demoClientID)
	if err == nil {
		err = d.revoke(revoked)
	}
	if err != nil {
		return d.report("revoked IMS token", nil, "", err)
	}
	ex, err = d.do("GET", "/content/dam/we-retail.json", revoked, false, nil)
	if err != nil {
		return d.report("revoked IMS token", nil, "", err)
	}
	err = errors.Join(wantStatus(ex, 401), check(d.loginCookie(ex) == nil, "a cookie was issued for a revoked token"))
	if err := d.report("revoked IMS token refused", ex, "WWW-Authenticate: "+ex.resp.Header.Get("WWW-Authenticate"), err); err != nil {
		return err
	}

	// 12. Logout drops the login token server-side.
	old := d.cookie
	ex, err = d.do("POST", "/gatehouse/logout", "", true, nil)
	if err != nil {
		return d.report("logout", nil, "", err)
	}
	err = wantStatus(ex, 200)
	if err == nil {
		ex, err = d.do("GET", "/content/dam/we-retail.json", "", true, nil)
		if err == nil {
			err = wantStatus(ex, 401)
		}
	}
	d.cookie = old
	detail := ""
	if ex != nil {
		detail = "X-Reason: " + ex.resp.Header.Get("X-Reason")
	}
	if err := d.report("logout: login token revoked, cookie refused", ex, detail, err); err != nil {
		return err
	}
	fmt.Fprintf(d.out, "\nAll %d steps behaved. IMS calls in all: validate %d, profile %d, organizations %d.\n", d.step,
		d.emu.Calls(imstest.EndpointValidate), d.emu.Calls(imstest.EndpointProfile), d.emu.Calls(imstest.EndpointOrganizations))
	return nil
}

func (d *demo) revoke(token string) error {
	resp, err := d.client.PostForm(d.emu.URL+"/ims/revoke", url.Values{"token": {token}, "client_id": {demoClientID}})
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("IMS emulator: revoke answered %s", resp.Status)
	}
	return nil
}

func (d *demo) printTryLines() {
	fmt.Fprintf(d.out, `
Everything keeps running (Ctrl-C to stop). Try it by hand:
  TOKEN=$(curl -s -X POST -d user_id=%s -d client_id=%s %s/ims/dev/token | sed 's/.*"access_token":"\([^"]*\)".*/\1/')
  curl -si -c /tmp/gatehouse.cookies -H "Authorization: Bearer $TOKEN" %s/libs/granite/security/currentuser.json
  curl -si -b /tmp/gatehouse.cookies %s/content/dam/we-retail.json
  curl -si -b /tmp/gatehouse.cookies '%s/bin/querybuilder.json?fulltext=hiking'
  curl -si -b /tmp/gatehouse.cookies -X POST %s/gatehouse/logout
  curl -s %s/gatehouse/readyz

Or open %s/ in a browser: it sends you to the emulator's sign-in page,
where you pick the user, and back, signed in; %s/gatehouse/sign-out signs out.
`, demoUserID, demoClientID, d.emu.URL, d.proxyURL, d.proxyURL, d.proxyURL, d.proxyURL, d.proxyURL, d.proxyURL, d.proxyURL)
}

// untilExpired is how long until a cookie's login token has surely expired:
// the Expires attribute is written in whole seconds, so the token itself may
// live up to a second longer.
func untilExpired(c *http.Cookie) time.Duration {
	return time.Until(c.Expires) + 1100*time.Millisecond
}

func check(ok bool, format string, args ...any) error {
	if ok {
		return nil
	}
	return fmt.Errorf(format, args...)
}

func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}
