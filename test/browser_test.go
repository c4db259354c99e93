package test

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/gatehouse-proxy/gatehouse/auth/ims/imstest"
)

// browserClientID is the web credential the browser tests sign in with.
const browserClientID = "gatehouse-e2e-web"

// findChromium returns Debian's Chromium. Without it the test fails under
// CI=true (test/run installs it) and skips otherwise.
func findChromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("chromium is not installed (apt-get install chromium; test/run does it)")
	}
	t.Skip("chromium is not installed: apt-get install chromium")
	return ""
}

// freePort is a loopback port nothing listens on just now: Gatehouse's
// public URL, which the emulator must know as a redirect URI, names it
// before Gatehouse starts.
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return fmt.Sprint(ln.Addr().(*net.TCPAddr).Port)
}

// TestBrowserSignIn drives a real headless Chromium through the browser
// sign-in against `gatehouse serve`, the IMS emulator and the demo
// backend: the journeys of the README's browser flow. Gatehouse is at
// 127.0.0.1 and IMS at localhost, two sites, so the browser applies its
// cross-site cookie rules as it would between Gatehouse and the real IMS.
// Screenshots of the signed-in page and the error page are kept in a
// folder the test names.
func TestBrowserSignIn(t *testing.T) {
	chromium := findChromium(t)
	start := time.Now()
	w := newWorld(t)
	gh := "http://127.0.0.1:" + freePort(t)
	imsURL := strings.Replace(w.ims.URL, "127.0.0.1", "localhost", 1)
	if err := w.ims.AddBrowserClient(imstest.BrowserClient{ID: browserClientID, RedirectURIs: []string{gh + "/gatehouse/callback"}}); err != nil {
		t.Fatal(err)
	}
	w.start(t, map[string]string{
		"LISTEN":              strings.TrimPrefix(gh, "http://"),
		"IMS_URL":             imsURL,
		"PUBLIC_URL":          gh,
		"BROWSER_CLIENT_ID":   browserClientID,
		"BROWSER_SIGNOUT_URL": imsURL + "/ims/logout/v1?redirect_uri=" + url.QueryEscape(gh+"/"),
		// Every cookie request reads the store, so that journey 3 can
		// expire the login token there.
		"SESSION_CACHE_TTL": "0",
	})

	// The screenshots stay after the test, for CI to keep: in
	// GATEHOUSE_TEST_ARTIFACTS when set, else in a new temporary folder.
	artifacts, err := os.MkdirTemp(os.Getenv("GATEHOUSE_TEST_ARTIFACTS"), "gatehouse-browser-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { t.Logf("screenshots (and, on failure, the page's source) are in %s", artifacts) })

	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromium),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1024, 768),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	ctx, cancelTab := chromedp.NewContext(actx)
	defer cancelTab()
	// The first call starts the browser, which lives as long as its
	// context: the time limit goes on the context of the later calls.
	ver, err := chromedp.CallBrowser(ctx, browser.GetVersion, cdp.Empty{})
	if err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	product := ver.Product
	t.Logf("browser: %s", product)
	if _, err := chromedp.Call(ctx, network.Enable, network.EnableParams{}); err != nil {
		t.Fatalf("chromium: Network.enable: %v", err)
	}
	// Every callback URL the browser requests, for the replay in journey 5.
	var mu sync.Mutex
	var callbacks []string
	if err := chromedp.Listen(ctx, func(ev any) {
		if e, ok := ev.(*network.EventRequestWillBeSent); ok && strings.HasPrefix(e.Request.URL, gh+"/gatehouse/callback?") {
			mu.Lock()
			callbacks = append(callbacks, e.Request.URL)
			mu.Unlock()
		}
	}); err != nil {
		t.Fatalf("chromium: %v", err)
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()

	failed := func(what string, err error) {
		t.Helper()
		src, _ := chromedp.Run(ctx, chromedp.OuterHTML(chromedp.CSS("html")))
		_ = os.WriteFile(filepath.Join(artifacts, "failed.html"), []byte(src), 0o644)
		t.Fatalf("%s: %v; page:\n%s", what, err, src)
	}
	run := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, steps...); err != nil {
			failed(what, err)
		}
	}
	str := func(what string, a chromedp.Action[string]) string {
		t.Helper()
		v, err := chromedp.Run(ctx, a)
		if err != nil {
			failed(what, err)
		}
		return v
	}
	location := func() string {
		t.Helper()
		return str("read the location", chromedp.Location())
	}
	pageUser := func(want imsUser) {
		t.Helper()
		run("wait for the backend's page", chromedp.WaitVisible(chromedp.CSS("#user")))
		user := str("read the user", chromedp.Text(chromedp.CSS("#user")))
		groups := str("read the groups", chromedp.Text(chromedp.CSS("#groups")))
		if user != want.id || groups != strings.Join(want.groups, ",") {
			t.Errorf("the backend's page shows user %q groups %q; want %q %q", user, groups, want.id, strings.Join(want.groups, ","))
		}
	}
	loginCookie := func() *network.Cookie {
		t.Helper()
		res, err := chromedp.Call(ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{gh + "/"}})
		if err != nil {
			failed("read cookies", err)
		}
		for _, c := range res.Cookies {
			if c.Name == "login-token" {
				return c
			}
		}
		return nil
	}
	screenshot := func(name string) {
		t.Helper()
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)) // quality 100 is PNG; below, JPEG
		if err != nil {
			failed("screenshot "+name, err)
		}
		if err := os.WriteFile(filepath.Join(artifacts, name), png, 0o644); err != nil {
			t.Error(err)
		}
	}
	pick := func(u imsUser) chromedp.Action[chromedp.Void] {
		sel := chromedp.CSS(`button[name="user_id"][value="` + u.id + `"]`)
		return chromedp.Steps(chromedp.WaitVisible(sel), chromedp.Click(sel))
	}
	errorPage := func(title string) {
		t.Helper()
		run("wait for the error page", chromedp.WaitVisible(chromedp.CSS("#title")))
		got := str("read the title", chromedp.Text(chromedp.CSS("#title")))
		link, err := chromedp.Run(ctx, chromedp.AttributeValue(chromedp.CSS("#action"), "href"))
		if err != nil {
			failed("read the Try again link", err)
		}
		if got != title || !strings.HasPrefix(link.Value, "/gatehouse/sign-in?rd=") {
			t.Errorf("error page: title %q, link %q; want %q and a Try again link to the sign-in", got, link.Value, title)
		}
	}
	imsTraffic := func() [3]int64 {
		c := w.calls()
		return [3]int64{w.ims.Calls(imstest.EndpointAuthorize), w.ims.Calls(imstest.EndpointToken), c.validate + c.profile + c.orgs}
	}

	// 1. A deep link: to the emulator's sign-in page, pick Alice, back on
	// the deep link with the backend's page showing her and her groups.
	deep := gh + "/content/wknd/adventures.html?tab=2&q=caf%C3%A9"
	run("open the deep link", chromedp.Navigate(deep), pick(alice))
	pageUser(alice)
	if got := location(); got != deep {
		t.Errorf("after sign-in the browser is at %s, want the deep link %s", got, deep)
	}
	c := loginCookie()
	if c == nil {
		t.Fatal("Chromium holds no login-token cookie after sign-in")
	}
	if !c.HTTPOnly || c.SameSite != network.CookieSameSiteLax || c.Path != "/" || c.Secure || c.Session {
		t.Errorf("login-token cookie as Chromium stored it: HttpOnly %v, SameSite %q, Path %q, Secure %v, session %v; want HttpOnly, Lax, /, not Secure (plain HTTP here), with an expiry",
			c.HTTPOnly, c.SameSite, c.Path, c.Secure, c.Session)
	}
	screenshot("signed-in.png")

	// 2. Reload: the cookie does it, no IMS traffic.
	before := imsTraffic()
	run("reload", chromedp.Reload())
	pageUser(alice)
	if got := imsTraffic(); got != before {
		t.Errorf("IMS traffic on reload (authorize, token, validate+profile+orgs): %v → %v, want none", before, got)
	}

	// 3. The login token expires (set in the store: the cookie in the
	// browser still names it). Reload: a silent round trip through IMS,
	// whose session still holds, and the same page again, without a click.
	expireLoginTokens(t, w.db)
	run("reload after expiry", chromedp.Reload())
	pageUser(alice)
	if got := location(); got != deep {
		t.Errorf("after the silent sign-in the browser is at %s, want %s", got, deep)
	}
	if got := imsTraffic(); got[0] != before[0]+1 || got[1] != before[1]+1 {
		t.Errorf("IMS traffic of the silent sign-in (authorize, token, …): %v → %v, want one authorization and one exchange", before, got)
	}

	// 4. Sign out with the page's link: the login token is gone, IMS's
	// session too (GATEHOUSE_BROWSER_SIGNOUT_URL), and the navigation that
	// follows starts sign-in again at the emulator's page.
	run("sign out", chromedp.Click(chromedp.CSS("#sign-out")), chromedp.WaitVisible(chromedp.CSS(`button[name="user_id"]`)))
	if !strings.HasPrefix(location(), imsURL+"/ims/authorize/v2?") {
		t.Errorf("after sign-out the browser is at %s, want the emulator's sign-in page", location())
	}
	if c := loginCookie(); c != nil {
		t.Errorf("the login-token cookie survived sign-out: %+v", c)
	}

	// 5. Tampered state: the emulator sends the browser back with another
	// state than Gatehouse's attempt cookie holds.
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`(() => { const s = document.querySelector('input[name="state"]');
		s.value = s.value.slice(0, -1) + (s.value.endsWith('A') ? 'B' : 'A'); return true; })()`)); err != nil {
		failed("tamper with state", err)
	}
	run("pick a user", pick(alice))
	errorPage("Sign-in failed")
	screenshot("error.png")
	if c := loginCookie(); c != nil {
		t.Errorf("a tampered state signed the browser in: %+v", c)
	}
	// "Try again" works (IMS's session holds: no page), and its callback
	// URL, opened a second time, ends on the error page.
	run("try again", chromedp.Click(chromedp.CSS("#action")), chromedp.WaitVisible(chromedp.CSS("#user")))
	pageUser(alice)
	mu.Lock()
	used := callbacks[len(callbacks)-1]
	mu.Unlock()
	run("replay the callback", chromedp.Navigate(used))
	errorPage("Sign-in failed")
	code := mustQuery(t, used, "code")
	if src := str("read the error page", chromedp.OuterHTML(chromedp.CSS("html"))); code == "" || strings.Contains(src, code) {
		t.Error("the error page shows the authorization code")
	}

	// 6. A hostile rd: signed in, and on / of this site.
	run("hostile rd", chromedp.Navigate(gh+"/gatehouse/sign-in?rd=//evil.example"), chromedp.WaitVisible(chromedp.CSS("#user")))
	if got := location(); got != gh+"/" {
		t.Errorf("sign-in with rd=//evil.example ended at %s, want %s/", got, gh)
	}
	t.Logf("browser journeys took %s (Gatehouse, emulator, backend and %s)", time.Since(start).Round(100*time.Millisecond), product)
}

func mustQuery(t *testing.T, raw, key string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u.Query().Get(key)
}

// expireLoginTokens makes every login token in the store expired, as if
// their lifetime had passed.
func expireLoginTokens(t *testing.T, db string) {
	t.Helper()
	d, err := sql.Open("sqlite", "file:"+(&url.URL{Path: db}).EscapedPath()+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	res, err := d.Exec(`UPDATE login_tokens SET expires_at = ?`, time.Now().Add(-time.Second).UnixMilli())
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		t.Fatal("no login token in the store to expire")
	}
}
