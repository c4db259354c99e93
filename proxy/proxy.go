// Package proxy is Gatehouse's request path: the handler chain around the
// authentication step, and the reverse proxy to the upstream behind it.
//
// Every request goes through, in order: access log and panic recovery,
// request id, the guard on unauthenticated bodies, refusal of methods
// never forwarded, removal of client-sent identity headers, Gatehouse's
// own endpoints under the reserved prefix, authentication, the check that
// an identity was established, the release of the body guard, and the
// reverse proxy, which writes the identity headers on the outgoing
// request. See New.
//
// Prefix+"auth" is forward-auth: the same authentication, for a front
// proxy that asks before it forwards itself (see forwardAuth).
package proxy

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/gatehouse-proxy/gatehouse/auth"
	"github.com/gatehouse-proxy/gatehouse/proxy/plumb"
)

// Config configures the handler returned by New.
type Config struct {
	// Upstream is where authenticated requests go: scheme http or https
	// and a host, optionally a base path. Required.
	Upstream *url.URL
	// Prefix is the path under which Gatehouse serves its own endpoints
	// (healthz, readyz, auth, logout, jwks.json) and which is never proxied. It must start
	// and end with "/". Default "/gatehouse/".
	Prefix string
	// Authenticate is the authentication step. It either puts an
	// *auth.Identity in the request context and calls next, or answers
	// the request itself. Required. It runs for proxied requests and for
	// forward-auth, where the request it is given carries the method and
	// URL of the request the front proxy asks about.
	Authenticate func(http.Handler) http.Handler
	// Logout is served at Prefix+"logout", unauthenticated (it reads the
	// cookie itself). Nil: that path answers 404.
	Logout http.Handler
	// Endpoints are further unauthenticated endpoints under Prefix, by
	// name: Endpoints["sign-in"] is served at Prefix+"sign-in". They
	// cannot replace healthz, readyz, auth or logout.
	Endpoints map[string]http.Handler
	// BrowserSignIn, when set, turns the authentication step's 401 to a
	// browser into a 302 to the sign-in page (see BrowserSignIn).
	// Forward-auth never redirects: its 401 is the front proxy's to act
	// on. Nil: every client gets the 401.
	BrowserSignIn BrowserSignIn
	// Ready reports whether Gatehouse can serve (its store, the identity
	// service); Prefix+"readyz" calls it with a 2 s timeout. Nil: always
	// ready.
	Ready func(ctx context.Context) error
	// PassAuthorization forwards the client's Authorization header to the
	// upstream. Default: removed, the upstream needs only the identity
	// headers.
	PassAuthorization bool
	// PassCookie forwards the login-token cookie to the upstream. Default:
	// removed from the Cookie header; other cookies are always kept.
	PassCookie bool
	// CookieName is the login-token cookie's name. Default "login-token".
	CookieName string
	// Transport sets up the connection pool to the upstream.
	Transport Transport
	// UnauthenticatedBodyTimeout bounds how long a request with a body
	// keeps its connection before it is authenticated: Gatehouse never reads
	// such a body, but net/http does after the answer (see guardBody).
	// Authenticated requests' bodies have no deadline. Default 10 s.
	UnauthenticatedBodyTimeout time.Duration
	// Logger receives the access log and upstream errors. Nil: no logs.
	Logger *zap.Logger
	// AccessLog, when set, writes the access log instead of Logger (same
	// lines, written directly; see plumb.AccessLogJSON).
	AccessLog *plumb.AccessLogJSON
	// Assertion, when set, signs the identity for upstreams that must not
	// trust plain headers: its result goes in X-Gatehouse-Assertion on
	// every forwarded request and every forward-auth 200 ("" sends none).
	// It runs on every such request, so it should cache (see package
	// auth/assertion). Nil: no assertion.
	Assertion func(*auth.Identity) string
	// JWKS serves the assertion's verification keys at
	// Prefix+"jwks.json", unauthenticated. Nil: 404 there.
	JWKS http.Handler
	// Observe, when set, is called once per request after its access-log
	// line, with the request's record (see plumb.AccessLogConfig.Observe):
	// the metrics. With it set, the record also times the round trip to
	// the upstream (plumb.Record.Own, Upstream).
	Observe func(r *http.Request, rec *plumb.Record, status int, d time.Duration)
}

// BrowserSignIn sends browsers to sign in instead of answering them 401.
type BrowserSignIn interface {
	// IsBrowser reports whether r is a browser's navigation that should
	// be sent to sign in if it cannot be authenticated. It is asked about
	// every proxied request before authentication, so it must be cheap.
	IsBrowser(r *http.Request) bool
	// SignInURL is where to send r to sign in; asked only when the
	// authentication step refuses a browser's request with 401.
	SignInURL(r *http.Request) string
	// RefusalPage writes, for a person, the page of another refusal of a
	// browser's request (status and X-Reason as the step gave them: a
	// disabled account, two login-token cookies, the identity service or
	// the store away) and reports whether it did; false leaves the step's
	// own answer.
	RefusalPage(w http.ResponseWriter, r *http.Request, status int, reason string) bool
}

// Defaults for Config.
const (
	defaultPrefix                     = "/gatehouse/"
	defaultCookieName                 = "login-token"
	defaultUnauthenticatedBodyTimeout = 10 * time.Second
)

// New returns Gatehouse's handler for cfg, or an error naming the setting
// that is missing or invalid.
func New(cfg Config) (http.Handler, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("proxy: %w", err)
	}
	log := cfg.Logger
	reserved := &reservedPaths{
		prefix:    cfg.Prefix,
		folded:    strings.ToLower(cfg.Prefix),
		match:     NewPathMatcher(cfg.Prefix),
		ready:     cfg.Ready,
		logout:    cfg.Logout,
		endpoints: cfg.Endpoints,
		auth:      forwardAuth(cfg.Authenticate, cfg.Assertion, cfg.BrowserSignIn),
		jwks:      cfg.JWKS,
	}
	authenticate := cfg.Authenticate
	if cfg.BrowserSignIn != nil {
		authenticate = redirectBrowsers(cfg.Authenticate, cfg.BrowserSignIn)
	}
	headers := upstreamHeaders{passAuthorization: cfg.PassAuthorization, passCookie: cfg.PassCookie, cookieName: cfg.CookieName,
		assert: cfg.Assertion}
	return chain(newForwarder(cfg, headers, log),
		plumb.AccessLog(plumb.AccessLogConfig{
			Logger: log, Direct: cfg.AccessLog, Message: "request", InternalError: "gatehouse: internal error",
			Observe: cfg.Observe,
		}),
		plumb.RequestID,
		guardBody(cfg.UnauthenticatedBodyTimeout),
		refuseMethods,
		stripIdentityHeaders,
		reserved.middleware,
		authenticate,
		requireIdentity,
		releaseBody,
	), nil
}

// chain wraps h in the middlewares, the first one outermost, so that the
// list reads in the order a request goes through it.
func chain(h http.Handler, middlewares ...func(http.Handler) http.Handler) http.Handler {
	for i := len(middlewares) - 1; i >= 0; i-- {
		h = middlewares[i](h)
	}
	return h
}

func (cfg Config) withDefaults() (Config, error) {
	if cfg.Upstream == nil {
		return cfg, errors.New("Upstream is required")
	}
	u := cfg.Upstream
	if u.Scheme != "http" && u.Scheme != "https" {
		return cfg, fmt.Errorf("Upstream must be an http or https URL, got scheme %q", u.Scheme)
	}
	if u.Host == "" {
		return cfg, errors.New("Upstream must have a host")
	}
	if u.User != nil {
		// Never sent by ReverseProxy, and a secret in a URL ends up in logs.
		return cfg, errors.New("Upstream must not contain credentials")
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return cfg, errors.New("Upstream must not have a query or fragment")
	}
	if cfg.Authenticate == nil {
		return cfg, errors.New("Authenticate is required")
	}
	if cfg.Prefix == "" {
		cfg.Prefix = defaultPrefix
	}
	if err := validPrefix(cfg.Prefix); err != nil {
		return cfg, err
	}
	for name := range cfg.Endpoints {
		switch {
		case name == "healthz" || name == "readyz" || name == "auth" || name == "logout":
			return cfg, fmt.Errorf("Endpoints: %q is one of Gatehouse's own endpoints", name)
		case name == "" || path.Clean("/"+name) != "/"+name || strings.ContainsAny(name, `%;\?#`):
			return cfg, fmt.Errorf("Endpoints: %q is not a plain path below the prefix", name)
		}
	}
	if cfg.CookieName == "" {
		cfg.CookieName = defaultCookieName
	}
	if !validToken(cfg.CookieName) {
		return cfg, fmt.Errorf("CookieName %q is not a valid cookie name", cfg.CookieName)
	}
	if err := cfg.Transport.validate(); err != nil {
		return cfg, err
	}
	if cfg.UnauthenticatedBodyTimeout < 0 {
		return cfg, errors.New("UnauthenticatedBodyTimeout must not be negative")
	}
	if cfg.UnauthenticatedBodyTimeout == 0 {
		cfg.UnauthenticatedBodyTimeout = defaultUnauthenticatedBodyTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.AccessLog != nil && cfg.AccessLog.W == nil {
		return cfg, errors.New("AccessLog.W is required when AccessLog is set")
	}
	return cfg, nil
}

func validPrefix(p string) error {
	if len(p) < 3 || !strings.HasPrefix(p, "/") || !strings.HasSuffix(p, "/") {
		return fmt.Errorf(`Prefix must start and end with "/" and name a path, got %q`, p)
	}
	if path.Clean(p)+"/" != p {
		return fmt.Errorf("Prefix must be a clean path, got %q", p)
	}
	if strings.ContainsAny(p, `%;\?#`) || !validHeaderValue(p) {
		return fmt.Errorf("Prefix must not contain escapes, parameters or control characters, got %q", p)
	}
	return nil
}

// validToken reports whether s is an RFC 9110 token, which cookie names
// must be.
func validToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' {
			continue
		}
		if !strings.ContainsRune("!#$%&'*+-.^_`|~", rune(c)) {
			return false
		}
	}
	return true
}
