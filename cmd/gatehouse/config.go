package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"reflect"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/caarlos0/env/v11"

	"github.com/gatehouse-proxy/gatehouse/auth/bearer"
	"github.com/gatehouse-proxy/gatehouse/auth/groupmap"
	"github.com/gatehouse-proxy/gatehouse/auth/techacct"
	"github.com/gatehouse-proxy/gatehouse/proxy/apicheck"
	"github.com/gatehouse-proxy/gatehouse/session"
)

const envPrefix = "GATEHOUSE_"

// config is every setting of `gatehouse serve`, read from GATEHOUSE_*
// environment variables. The help tag is what `gatehouse serve -h` prints.
type config struct {
	Listen   string `env:"LISTEN" envDefault:":8080" help:"address the proxy listens on"`
	Upstream string `env:"UPSTREAM,required" help:"the content backend, e.g. http://127.0.0.1:4502 (required)"`
	Prefix   string `env:"PREFIX" envDefault:"/gatehouse/" help:"reserved path prefix for healthz, readyz, auth (forward-auth), jwks.json (the assertion's keys), logout and the browser's sign-in, callback and sign-out; never proxied"`

	IMSURL             string        `env:"IMS_URL" envDefault:"https://ims-na1.adobelogin.com" help:"the identity service"`
	IMSKeysURL         string        `env:"IMS_KEYS_URL" help:"JWKS with IMS's signing keys (default <IMS_URL>/ims/keys)"`
	IMSCertsURL        string        `env:"IMS_CERTS_URL" help:"certificate base URL for tokens' x5u, e.g. https://static.adobelogin.com/keys/prod/ (default: off)"`
	IMSCluster         string        `env:"IMS_CLUSTER" envDefault:"ims-na1" help:"expected 'as' claim of access tokens"`
	IMSClientIDs       []string      `env:"IMS_CLIENT_IDS" envSeparator:"," help:"client ids allowed to sign in with a bearer token, comma separated; empty turns bearer sign-in off"`
	IMSOrg             string        `env:"IMS_ORG" help:"organization (…@AdobeOrg) whose groups are synced; empty syncs no groups"`
	IMSValidation      string        `env:"IMS_VALIDATION" envDefault:"both" help:"local (signature and claims), remote (IMS validate_token) or both"`
	IMSRecheckInterval time.Duration `env:"IMS_RECHECK_INTERVAL" envDefault:"5m" help:"remote validation: how long IMS's 'valid' is trusted before asking again"`
	IMSStaleIfError    time.Duration `env:"IMS_STALE_IF_ERROR" envDefault:"15m" help:"how long past its due time an IMS check may wait while IMS is unreachable, times out, answers 5xx or 429: a bearer token IMS confirmed keeps working (validation both only, its signature and expiry still checked locally; never a token IMS refused), and a known user whose sync is due keeps their stored groups; 0: off"`
	IMSTimeout         time.Duration `env:"IMS_TIMEOUT" envDefault:"10s" help:"timeout of each call to IMS"`
	IMSClockSkew       time.Duration `env:"IMS_CLOCK_SKEW" envDefault:"1m" help:"tolerated clock difference when checking token times"`
	IMSKeysMinRefresh  time.Duration `env:"IMS_KEYS_MIN_REFRESH" envDefault:"10s" help:"least time between two fetches of the key set, however many unknown keys arrive"`
	GroupMapping       string        `env:"GROUP_MAPPING" help:"rules <groupName>:<role>=<localGroup>, comma separated, * wildcards; unmatched groups keep their name"`
	SyncInterval       time.Duration `env:"SYNC_INTERVAL" envDefault:"1h" help:"how long a user's profile and groups count as fresh before the next sign-in syncs again"`

	Store           string        `env:"STORE" envDefault:"sqlite:gatehouse.db" help:"where users, login tokens and generated cookie keys are kept: sqlite:PATH (one machine), or postgres://user:password@host:port/database (several replicas share it; ?search_path=SCHEMA picks a schema; the password never appears in logs or errors)"`
	CookieKeys      string        `env:"COOKIE_KEYS" help:"cookie keys <hashKey>:<blockKey> (base64), comma separated, newest first; default: generated once and kept in the store, where 'gatehouse keys' rotates them for every replica"`
	CookieKeysFile  string        `env:"COOKIE_KEYS_FILE" help:"file holding the cookie keys instead (a mounted secret; one trailing newline is ignored); not both"`
	CookieName      string        `env:"COOKIE_NAME" envDefault:"login-token" help:"name of the login-token cookie; for browsers over HTTPS use __Host-login-token, which no other site under the domain can set or shadow (needs COOKIE_SECURE)"`
	CookieSecure    bool          `env:"COOKIE_SECURE" envDefault:"true" help:"mark the login-token cookie Secure; false only for plain-HTTP development"`
	CookieSameSite  string        `env:"COOKIE_SAMESITE" envDefault:"lax" help:"SameSite of the login-token cookie: lax, strict or none (none needs COOKIE_SECURE)"`
	LoginTokenTTL   time.Duration `env:"LOGIN_TOKEN_TTL" envDefault:"12h" help:"lifetime of a login token; refreshed once half of it has passed"`
	SessionCacheTTL time.Duration `env:"SESSION_CACHE_TTL" envDefault:"30s" help:"how long a checked login token, and a user read from the store, are trusted from memory: a logout, revocation, disabled user or resync made on another replica or with 'gatehouse users' / 'gatehouse tokens' takes effect within it"`
	CleanupInterval time.Duration `env:"CLEANUP_INTERVAL" envDefault:"10m" help:"how often expired login tokens are purged"`
	KeysReload      time.Duration `env:"COOKIE_KEYS_RELOAD_INTERVAL" envDefault:"5s" help:"how often serve re-reads the cookie keys kept in the store, so that 'gatehouse keys rotate' and 'drop-old' reach every replica without a restart; unused with COOKIE_KEYS"`

	PassAuthorization bool `env:"PASS_AUTHORIZATION" envDefault:"false" help:"forward the client's Authorization header upstream"`
	PassCookie        bool `env:"PASS_LOGIN_COOKIE" envDefault:"false" help:"forward the login-token cookie upstream"`

	APIPaths []string `env:"API_PATHS" envSeparator:"," help:"path prefixes of an API, comma separated, e.g. /api/,/bin/api/: requests there need a bearer token, x-api-key (its client id) and x-gw-ims-org-id (an org of the caller's; GATEHOUSE_IMS_ORG when set); empty: off"`

	EgressListen   string `env:"EGRESS_LISTEN" help:"address of the egress listener through which the backend calls an IMS-protected API, e.g. 127.0.0.1:8081 (loopback only!); needs a technical account (GATEHOUSE_TECH_*); empty: off"`
	EgressUpstream string `env:"EGRESS_UPSTREAM" help:"the API the egress listener forwards to, with the technical account's Authorization, x-api-key and x-gw-ims-org-id, e.g. https://cloudmanager.adobe.io (required with EGRESS_LISTEN)"`

	// Metrics: Prometheus, on a listener of their own.
	MetricsListen string `env:"METRICS_LISTEN" help:"address of the Prometheus metrics listener, e.g. 127.0.0.1:9090, serving /metrics (never through the proxied port); empty: off"`

	UpstreamDialTimeout           time.Duration `env:"UPSTREAM_DIAL_TIMEOUT" envDefault:"5s" help:"timeout to connect to the upstream"`
	UpstreamResponseHeaderTimeout time.Duration `env:"UPSTREAM_RESPONSE_HEADER_TIMEOUT" envDefault:"60s" help:"time the upstream has to start answering (bodies stream without a deadline)"`
	UpstreamIdleConnTimeout       time.Duration `env:"UPSTREAM_IDLE_CONN_TIMEOUT" envDefault:"90s" help:"how long an idle upstream connection is kept"`
	UpstreamMaxIdleConns          int           `env:"UPSTREAM_MAX_IDLE_CONNS" envDefault:"512" help:"idle upstream connections kept in all"`
	UpstreamMaxIdleConnsPerHost   int           `env:"UPSTREAM_MAX_IDLE_CONNS_PER_HOST" envDefault:"256" help:"idle upstream connections kept per upstream host"`
	UpstreamDirect                bool          `env:"UPSTREAM_DIRECT" envDefault:"true" help:"send bodiless GET and HEAD requests to a plain-http upstream on the request's own goroutine (false: every request through net/http's client)"`

	ReadHeaderTimeout time.Duration `env:"READ_HEADER_TIMEOUT" envDefault:"10s" help:"time a client has to send its request headers, and, while it is not authenticated, its body"`
	IdleTimeout       time.Duration `env:"IDLE_TIMEOUT" envDefault:"120s" help:"how long an idle client connection is kept open"`
	MaxHeaderBytes    int           `env:"MAX_HEADER_BYTES" envDefault:"65536" help:"largest request header block accepted"`
	ShutdownTimeout   time.Duration `env:"SHUTDOWN_TIMEOUT" envDefault:"30s" help:"how long in-flight requests may finish after SIGTERM"`

	// The signed identity assertion (checked in assertionconfig.go).
	// PUBLIC_URL is also browser sign-in's: one setting for both.
	PublicURL         string        `env:"PUBLIC_URL" help:"the origin clients reach Gatehouse at, e.g. https://assets.example.com (no path): the signed assertion's iss, and the base of browser sign-in's redirect_uri <PUBLIC_URL><PREFIX>callback; required with ASSERTION_AUDIENCE or BROWSER_CLIENT_ID"`
	AssertionAudience string        `env:"ASSERTION_AUDIENCE" help:"turns the signed identity assertion on: every forwarded request and forward-auth 200 carries X-Gatehouse-Assertion, an ES256 JWT with this aud, verifiable with the keys at <PREFIX>jwks.json; empty: off"`
	AssertionLifetime time.Duration `env:"ASSERTION_LIFETIME" envDefault:"2m" help:"lifetime of an assertion (exp - iat), 10s to 5m; one is reused for a user until half of it has passed"`

	GCHeadroomMiB int `env:"GC_HEADROOM_MIB" envDefault:"32" help:"keep the garbage collector's heap goal at least this many MiB above the live heap (fewer collections for a small heap, at the cost of that much memory); 0: Go's default; off when GOGC or GOMEMLIMIT is set"`

	LogLevel  string `env:"LOG_LEVEL" envDefault:"info" help:"debug, info, warn or error"`
	LogFormat string `env:"LOG_FORMAT" envDefault:"json" help:"json or console"`

	// Derived by load; not settings.
	upstream    *url.URL
	egressUp    *url.URL
	tech        *techacct.Config // nil unless a GATEHOUSE_TECH_* variable or EGRESS_LISTEN is set
	browser     *browserConfig   // nil unless GATEHOUSE_BROWSER_CLIENT_ID is set
	validation  bearer.Mode
	mapping     *groupmap.Mapping
	sameSite    http.SameSite
	sqlitePath  string
	postgresURL string // holds a password: never logged or quoted
}

// redactedStore is a GATEHOUSE_STORE value fit for an error message: a
// URL with its password blanked, anything else with user info quoted
// only up to it.
func redactedStore(v string) string {
	if u, err := url.Parse(v); err == nil && u.User != nil {
		return fmt.Sprintf("%q", u.Redacted())
	}
	if i := strings.LastIndexByte(v, '@'); i >= 0 {
		return fmt.Sprintf("%q", "…"+v[i:])
	}
	return fmt.Sprintf("%q", v)
}

// loadConfig reads the settings from environ (os.Environ() form) and checks
// them. Every error names the variable to fix.
func loadConfig(environ []string) (*config, error) {
	vars := environMap(environ)
	var c config
	if err := env.ParseWithOptions(&c, env.Options{Prefix: envPrefix, Environment: vars}); err != nil {
		return nil, describeEnvError(err, envKeys())
	}
	errs := []error{c.validate(vars)}
	if c.EgressListen != "" || techVarsSet(vars) {
		tech, err := loadTechConfig(vars)
		switch {
		case err != nil && c.EgressListen != "" && !techVarsSet(vars):
			errs = append(errs, fmt.Errorf("%sEGRESS_LISTEN is set, but no technical account is: %w", envPrefix, err))
		case err != nil:
			errs = append(errs, err)
		}
		c.tech = tech
	}
	browser, err := loadBrowserConfig(vars, c.CookieSecure, c.PublicURL)
	errs = append(errs, err)
	c.browser = browser
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return &c, nil
}

// techVarsSet reports whether any GATEHOUSE_TECH_* variable is set to a
// value.
func techVarsSet(vars map[string]string) bool {
	for k, v := range vars {
		if strings.HasPrefix(k, envPrefix+"TECH_") && v != "" {
			return true
		}
	}
	return false
}

// validate checks the settings and fills the derived fields; vars are the
// variables they were read from.
func (c *config) validate(vars map[string]string) error {
	var errs []error
	bad := func(name, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s%s: %s", envPrefix, name, fmt.Sprintf(format, args...)))
	}
	var err error
	if c.upstream, err = parseHTTPURL(c.Upstream); err != nil {
		bad("UPSTREAM", "%v", err)
	}
	if c.CookieKeys, err = secretSetting(vars, "COOKIE_KEYS"); err != nil {
		errs = append(errs, err)
	}
	if _, err := apicheck.New(apicheck.Config{Paths: c.APIPaths}); err != nil {
		bad("API_PATHS", "%v", err)
	}
	switch {
	case c.EgressListen != "" && c.EgressUpstream == "":
		bad("EGRESS_UPSTREAM", "required when GATEHOUSE_EGRESS_LISTEN is set: the API to forward to, e.g. https://cloudmanager.adobe.io")
	case c.EgressListen == "" && c.EgressUpstream != "":
		bad("EGRESS_UPSTREAM", "set, but GATEHOUSE_EGRESS_LISTEN is not: set the address of the egress listener too, e.g. 127.0.0.1:8081")
	case c.EgressListen != "":
		if c.egressUp, err = parseHTTPURL(c.EgressUpstream); err != nil {
			bad("EGRESS_UPSTREAM", "%v", err)
		} else if c.egressUp.RawQuery != "" || c.egressUp.Fragment != "" {
			bad("EGRESS_UPSTREAM", "%q: must not have a query or fragment", c.EgressUpstream)
		}
		if _, _, err := net.SplitHostPort(c.EgressListen); err != nil {
			bad("EGRESS_LISTEN", "%v (want host:port, e.g. 127.0.0.1:8081)", err)
		}
	}
	if c.MetricsListen != "" {
		_, port, err := net.SplitHostPort(c.MetricsListen)
		if err != nil {
			bad("METRICS_LISTEN", "%v (want host:port, e.g. 127.0.0.1:9090)", err)
		}
		// Port 0 picks a free port for each listener: never the same one.
		if c.MetricsListen == c.Listen && port != "0" {
			bad("METRICS_LISTEN", "must differ from GATEHOUSE_LISTEN: the metrics are never served on the proxied port")
		}
	}
	if _, err := parseHTTPURL(c.IMSURL); err != nil {
		bad("IMS_URL", "%v", err)
	}
	c.IMSURL = strings.TrimRight(c.IMSURL, "/")
	if c.IMSKeysURL == "" {
		c.IMSKeysURL = c.IMSURL + "/ims/keys"
	}
	if _, err := parseHTTPURL(c.IMSKeysURL); err != nil {
		bad("IMS_KEYS_URL", "%v", err)
	}
	if c.IMSCertsURL != "" {
		if _, err := parseHTTPURL(c.IMSCertsURL); err != nil {
			bad("IMS_CERTS_URL", "%v", err)
		} else if !strings.HasSuffix(c.IMSCertsURL, "/") {
			c.IMSCertsURL += "/"
		}
	}
	if c.IMSCluster == "" {
		bad("IMS_CLUSTER", "must not be empty")
	}
	c.IMSClientIDs = listSetting(c.IMSClientIDs)
	if c.IMSOrg != "" && !strings.HasSuffix(c.IMSOrg, "@AdobeOrg") {
		bad("IMS_ORG", "%q: an organization id looks like 1234ABCD@AdobeOrg", c.IMSOrg)
	}
	if c.validation, err = bearer.ParseMode(c.IMSValidation); err != nil {
		bad("IMS_VALIDATION", "%v", err)
	}
	if c.mapping, err = groupmap.Parse(c.GroupMapping); err != nil {
		bad("GROUP_MAPPING", "%v", err)
	}
	if err := c.checkStore(); err != nil {
		errs = append(errs, err)
	}
	if err := session.CheckCookieName(c.CookieName, c.CookieSecure); err != nil {
		if session.CheckCookieName(c.CookieName, true) == nil {
			bad("COOKIE_NAME", "%v: set GATEHOUSE_COOKIE_SECURE=true (and serve over HTTPS), or drop the prefix", err)
		} else {
			bad("COOKIE_NAME", "%v", err)
		}
	}
	switch strings.ToLower(c.CookieSameSite) {
	case "lax":
		c.sameSite = http.SameSiteLaxMode
	case "strict":
		c.sameSite = http.SameSiteStrictMode
	case "none":
		c.sameSite = http.SameSiteNoneMode
		if !c.CookieSecure {
			bad("COOKIE_SAMESITE", "none requires GATEHOUSE_COOKIE_SECURE=true (browsers drop SameSite=None cookies that are not Secure)")
		}
	default:
		bad("COOKIE_SAMESITE", "%q: want lax, strict or none", c.CookieSameSite)
	}
	if !strings.HasPrefix(c.Prefix, "/") || !strings.HasSuffix(c.Prefix, "/") || len(c.Prefix) < 3 {
		bad("PREFIX", "%q: must start and end with / and name a path, e.g. /gatehouse/", c.Prefix)
	}
	positive := []struct {
		name string
		d    time.Duration
	}{
		{"IMS_RECHECK_INTERVAL", c.IMSRecheckInterval}, {"IMS_TIMEOUT", c.IMSTimeout},
		{"IMS_KEYS_MIN_REFRESH", c.IMSKeysMinRefresh}, {"SYNC_INTERVAL", c.SyncInterval},
		{"LOGIN_TOKEN_TTL", c.LoginTokenTTL}, {"CLEANUP_INTERVAL", c.CleanupInterval},
		{"COOKIE_KEYS_RELOAD_INTERVAL", c.KeysReload},
		{"UPSTREAM_DIAL_TIMEOUT", c.UpstreamDialTimeout}, {"UPSTREAM_RESPONSE_HEADER_TIMEOUT", c.UpstreamResponseHeaderTimeout},
		{"UPSTREAM_IDLE_CONN_TIMEOUT", c.UpstreamIdleConnTimeout}, {"READ_HEADER_TIMEOUT", c.ReadHeaderTimeout},
		{"IDLE_TIMEOUT", c.IdleTimeout}, {"SHUTDOWN_TIMEOUT", c.ShutdownTimeout},
	}
	for _, p := range positive {
		if p.d <= 0 {
			bad(p.name, "%s: must be a positive duration, e.g. 30s, 5m, 12h", p.d)
		}
	}
	if c.IMSStaleIfError < 0 {
		bad("IMS_STALE_IF_ERROR", "%s: must not be negative (0 turns the grace off)", c.IMSStaleIfError)
	}
	if c.IMSClockSkew < 0 || c.IMSClockSkew > 10*time.Minute {
		bad("IMS_CLOCK_SKEW", "%s: must be between 0 and 10m", c.IMSClockSkew)
	}
	if c.LoginTokenTTL > 0 && c.LoginTokenTTL < time.Second {
		bad("LOGIN_TOKEN_TTL", "%s: at least 1s", c.LoginTokenTTL)
	}
	if c.SessionCacheTTL < 0 {
		bad("SESSION_CACHE_TTL", "%s: must not be negative (0 disables the cache)", c.SessionCacheTTL)
	}
	if c.UpstreamMaxIdleConns < 1 || c.UpstreamMaxIdleConnsPerHost < 1 {
		bad("UPSTREAM_MAX_IDLE_CONNS", "idle connection pool sizes must be at least 1")
	}
	if c.MaxHeaderBytes < 4096 {
		bad("MAX_HEADER_BYTES", "%d: at least 4096", c.MaxHeaderBytes)
	}
	if c.GCHeadroomMiB < 0 || c.GCHeadroomMiB > 16<<10 {
		bad("GC_HEADROOM_MIB", "%d: from 0 (off) to 16384", c.GCHeadroomMiB)
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		bad("LOG_LEVEL", "%q: want debug, info, warn or error", c.LogLevel)
	}
	if err := c.validateAssertion(); err != nil {
		errs = append(errs, err)
	}
	switch c.LogFormat {
	case "json", "console":
	default:
		bad("LOG_FORMAT", "%q: want json or console", c.LogFormat)
	}
	return errors.Join(errs...)
}

// checkStore checks GATEHOUSE_STORE and fills the fields openStore reads.
// It is all of the configuration that the commands working on the store
// alone (gatehouse keys) need.
func (c *config) checkStore() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%sSTORE: %s", envPrefix, fmt.Sprintf(format, args...))
	}
	switch {
	case strings.HasPrefix(c.Store, "sqlite:"):
		c.sqlitePath = strings.TrimPrefix(c.Store, "sqlite:")
		if c.sqlitePath == "" {
			return bad("sqlite: needs a file path, e.g. sqlite:/var/lib/gatehouse/gatehouse.db")
		}
	case strings.HasPrefix(c.Store, "postgres://"), strings.HasPrefix(c.Store, "postgresql://"):
		// The value holds a password: no message quotes it.
		u, err := url.Parse(c.Store)
		switch {
		case err != nil:
			return bad("the PostgreSQL URL does not parse; want postgres://user:password@host:port/database")
		case u.Host == "":
			return bad("the PostgreSQL URL %s names no host", u.Redacted())
		}
		c.postgresURL = c.Store
	default:
		return bad("%s: want sqlite:PATH or postgres://user:password@host:port/database", redactedStore(c.Store))
	}
	return nil
}

func parseHTTPURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("%q is not a URL", s)
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("%q: want an absolute http:// or https:// URL", s)
	}
	if u.User != nil {
		return nil, fmt.Errorf("%q: credentials in the URL are not allowed", u.Redacted())
	}
	return u, nil
}

// describeEnvError rewrites env's errors, which name Go fields, to name the
// variables a person sets; keys maps the fields to their variables.
func describeEnvError(err error, keys map[string]string) error {
	var agg env.AggregateError
	if !errors.As(err, &agg) {
		return err
	}
	out := make([]error, 0, len(agg.Errors))
	for _, e := range agg.Errors {
		var pe env.ParseError
		var ns env.VarIsNotSetError
		var empty env.EmptyVarError
		switch {
		case errors.As(e, &pe):
			inner := pe.Err
			var pve env.ParseValueError
			if errors.As(inner, &pve) && pve.Err != nil {
				inner = pve.Err
			}
			out = append(out, fmt.Errorf("%s: %v", keys[pe.Name], inner))
		case errors.As(e, &ns):
			out = append(out, fmt.Errorf("%s: required, but not set", ns.Key))
		case errors.As(e, &empty):
			out = append(out, fmt.Errorf("%s: must not be empty", empty.Key))
		default:
			out = append(out, e)
		}
	}
	return errors.Join(out...)
}

// settingsStructs are every struct of GATEHOUSE_* settings. A new one must
// be added here: check-config calls variables no struct reads unknown, and
// a test holds the README's settings table to these.
var settingsStructs = []reflect.Type{reflect.TypeOf(config{}), reflect.TypeOf(techSettings{}), reflect.TypeOf(browserSettings{})}

// envKeys maps config's field names to their variables.
func envKeys() map[string]string { return envKeysOf(reflect.TypeOf(config{})) }

// envKeysOf maps the field names of a settings struct to their variables.
func envKeysOf(t reflect.Type) map[string]string {
	m := map[string]string{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if tag := f.Tag.Get("env"); tag != "" {
			m[f.Name] = envPrefix + strings.Split(tag, ",")[0]
		}
	}
	return m
}

// printSettings writes every setting of serve with its default and
// meaning: the proxy's, then the technical account's.
func printSettings(w io.Writer) {
	printTable(w, reflect.TypeOf(config{}))
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Technical account (for the egress listener; also all that 'gatehouse token' and 'gatehouse check-health' read):")
	fmt.Fprintln(w)
	printTable(w, reflect.TypeOf(techSettings{}))
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Browser sign-in (IMS's sign-in page, for people who open the backend's pages in a browser):")
	fmt.Fprintln(w)
	printTable(w, reflect.TypeOf(browserSettings{}))
}

// printTable writes the settings of one struct as an aligned table.
func printTable(w io.Writer, t reflect.Type) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "VARIABLE\tDEFAULT\tMEANING")
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("env")
		if tag == "" {
			continue
		}
		def := f.Tag.Get("envDefault")
		if def == "" {
			def = "-"
		}
		fmt.Fprintf(tw, "%s%s\t%s\t%s\n", envPrefix, strings.Split(tag, ",")[0], def, f.Tag.Get("help"))
	}
	tw.Flush()
}

// environ is os.Environ, a variable so tests can replace it.
var environ = os.Environ
