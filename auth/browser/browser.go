// Package browser signs people in who arrive with a web browser rather
// than a desktop extension: a browser has no bearer token to send, so it
// is sent through IMS's sign-in page (OAuth 2.0 authorization code with
// PKCE) and comes back with a code that Gatehouse exchanges for an access
// token. From there the sign-in is a bearer sign-in's (Config.SignIn):
// the same verification, provisioning, group sync and login-token cookie.
//
// The endpoints, under Gatehouse's reserved prefix:
//
//	GET <prefix>sign-in?rd=<local path>   to IMS's authorization endpoint
//	GET <prefix>callback?code=…&state=…   back from IMS; then to rd
//	GET <prefix>sign-out                  revoke the login token, clear it
//
// Security rests on four rules, each in its own file: the attempt is
// bound to the browser that started it by a signed, short-lived cookie
// that holds state and the PKCE verifier (state.go); rd names a local path
// or is replaced by "/" (redirect.go); a GET sign-out takes effect only
// when it comes from Gatehouse's own pages or the address bar (signout.go);
// and error pages show no token, code or secret (pages.go).
package browser

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/gatehouse-proxy/gatehouse/auth/ims"
	"github.com/gatehouse-proxy/gatehouse/proxy"
	"github.com/gatehouse-proxy/gatehouse/session"
)

// DefaultScopes are the scopes asked for when Config.Scopes is empty: the
// user's identity and their organizations, which the group sync reads.
var DefaultScopes = []string{"openid", "AdobeID", "read_organizations"}

// Config configures the browser sign-in.
type Config struct {
	// IMSURL is the identity service, e.g. https://ims-na1.adobelogin.com;
	// the authorization endpoint is IMSURL+"/ims/authorize/v2" and the
	// token endpoint IMSURL+"/ims/token/v3". Required.
	IMSURL string
	// ClientID is the browser (web) credential's client id. Required.
	ClientID string
	// ClientSecret authenticates the code exchange when set; PKCE is used
	// either way.
	ClientSecret string
	// PublicURL is the origin browsers reach Gatehouse at, e.g.
	// https://aem.example.com; redirect_uri is PublicURL+Prefix+"callback"
	// and must be registered for ClientID. Required.
	PublicURL string
	// Prefix is Gatehouse's reserved prefix. Default "/gatehouse/".
	Prefix string
	// Scopes are asked for at sign-in. Default DefaultScopes.
	Scopes []string
	// SignOutURL, when set, is where the sign-out sends the browser
	// afterwards (IMS's own logout page, say); otherwise it shows a
	// "You are signed out" page.
	SignOutURL string
	// Keys sign and encrypt the sign-in attempt's cookie; the login-token
	// cookie keys, from which keys of its own are derived. Newest first.
	// Required.
	Keys []session.KeyPair
	// KeysNow, when set, returns the login-token cookie keys in use now
	// (session.Manager.KeyPairs), asked at every sign-in and callback:
	// keys rotated or dropped in the store then reach the attempt's cookie
	// without a restart, so that replicas that reloaded them and replicas
	// that did not yet still read each other's attempts, and a dropped key
	// stops signing them. Without it Keys stay.
	KeysNow func() []session.KeyPair
	// CookieSecure marks the cookies Secure (and names them __Host-…).
	CookieSecure bool
	// SignIn signs the user in with the access token the exchange gave:
	// verification, provisioning, group sync and the login-token cookie
	// on w, as for a bearer token (signin.Handler.SignInToken). Its error
	// is an *auth.Error. Required.
	SignIn func(w http.ResponseWriter, r *http.Request, accessToken string) error
	// SignOut revokes the request's login tokens and clears the cookie on
	// w (signin.Handler.SignOut). Required.
	SignOut func(w http.ResponseWriter, r *http.Request) error
	// IsAPIPath reports whether a path is an API's (GATEHOUSE_API_PATHS):
	// those are never sent to sign in. Nil: none is.
	IsAPIPath func(path string) bool
	// HTTPClient calls the token endpoint. Nil: a client with a 10 s
	// timeout that follows no redirects.
	HTTPClient *http.Client
	Logger     *zap.Logger
	Now        func() time.Time
}

// Handler serves the browser sign-in. It is safe for concurrent use.
type Handler struct {
	cfg         Config
	log         *zap.Logger
	now         func() time.Time
	prefix      string
	reserved    *proxy.PathMatcher
	authorize   string      // IMS's authorization endpoint
	ims         *ims.Client // the token endpoint's client
	redirectURI string
	origin      string // PublicURL's scheme://host[:port]
	scope       string
	codecs      atomic.Pointer[stateCodecs] // derived from keysFrom
	stateCookie string                      // name prefix of the attempt's cookie
	marker      string                      // name of the same-site marker cookie
}

// New checks cfg and returns the Handler. Its errors name the Config
// field at fault.
func New(cfg Config) (*Handler, error) {
	if cfg.ClientID == "" {
		return nil, errors.New("browser sign-in: ClientID is required")
	}
	if cfg.SignIn == nil || cfg.SignOut == nil {
		return nil, errors.New("browser sign-in: SignIn and SignOut are required")
	}
	imsURL, err := parseOrigin(cfg.IMSURL, true)
	if err != nil {
		return nil, fmt.Errorf("browser sign-in: IMSURL: %w", err)
	}
	origin, err := parseOrigin(cfg.PublicURL, false)
	if err != nil {
		return nil, fmt.Errorf("browser sign-in: PublicURL: %w", err)
	}
	if cfg.SignOutURL != "" {
		if u, err := url.Parse(cfg.SignOutURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("browser sign-in: SignOutURL %q: want an absolute http or https URL", cfg.SignOutURL)
		}
	}
	if cfg.Prefix == "" {
		cfg.Prefix = "/gatehouse/"
	}
	if len(cfg.Scopes) == 0 {
		cfg.Scopes = DefaultScopes
	}
	if cfg.KeysNow != nil {
		cfg.Keys = cfg.KeysNow()
	}
	codecs, err := newStateCodecs(cfg.Keys)
	if err != nil {
		return nil, fmt.Errorf("browser sign-in: %w", err)
	}
	h := &Handler{
		cfg:         cfg,
		log:         cfg.Logger,
		now:         cfg.Now,
		prefix:      cfg.Prefix,
		reserved:    proxy.NewPathMatcher(cfg.Prefix),
		authorize:   imsURL + "/ims/authorize/v2",
		redirectURI: origin + cfg.Prefix + "callback",
		origin:      origin,
		scope:       strings.Join(cfg.Scopes, ","),
		stateCookie: "gatehouse-signin-",
		marker:      "gatehouse-browser",
	}
	h.codecs.Store(&codecs)
	if cfg.CookieSecure {
		// A __Host- cookie can be set only by this origin over HTTPS, so
		// no site under the same domain can plant an attempt of its own.
		h.stateCookie, h.marker = "__Host-"+h.stateCookie, "__Host-"+h.marker
	}
	if h.log == nil {
		h.log = zap.NewNop()
	}
	if h.now == nil {
		h.now = time.Now
	}
	if h.cfg.HTTPClient == nil {
		h.cfg.HTTPClient = &http.Client{
			Timeout:       10 * time.Second,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	if h.ims, err = ims.NewClient(imsURL, h.cfg.HTTPClient); err != nil {
		return nil, fmt.Errorf("browser sign-in: IMSURL: %w", err)
	}
	return h, nil
}

// parseOrigin checks that s is an http(s) URL with a host and nothing
// after it but, when pathOK, a base path; it returns s without a trailing
// slash.
func parseOrigin(s string, pathOK bool) (string, error) {
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return "", fmt.Errorf("%q is not a URL", s)
	case u.Scheme != "http" && u.Scheme != "https":
		return "", fmt.Errorf("%q: want an http or https URL", s)
	case u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "":
		return "", fmt.Errorf("%q: want scheme and host only, e.g. https://aem.example.com", s)
	case !pathOK && u.Path != "" && u.Path != "/":
		return "", fmt.Errorf("%q: want the origin only, without a path (the prefix is added)", s)
	}
	return strings.TrimSuffix(s, "/"), nil
}

// RedirectURI is the callback IMS sends the browser back to; it must be
// registered for the client id.
func (h *Handler) RedirectURI() string { return h.redirectURI }

var _ proxy.BrowserSignIn = (*Handler)(nil)

// Endpoints are the handlers to serve under the prefix, by name (see
// proxy.Config.Endpoints).
func (h *Handler) Endpoints() map[string]http.Handler {
	return map[string]http.Handler{
		"sign-in":  http.HandlerFunc(h.serveSignIn),
		"callback": http.HandlerFunc(h.serveCallback),
		"sign-out": http.HandlerFunc(h.serveSignOut),
	}
}

// IsBrowser is proxy.BrowserSignIn's: a browser's navigation (see the
// function IsBrowser) outside the API paths.
func (h *Handler) IsBrowser(r *http.Request) bool {
	return IsBrowser(r) && (h.cfg.IsAPIPath == nil || !h.cfg.IsAPIPath(r.URL.Path))
}

// SignInURL is proxy.BrowserSignIn's: the sign-in address that brings r
// back to the page it asked for.
func (h *Handler) SignInURL(r *http.Request) string { return h.signInURL(r.URL.RequestURI()) }

// signInURL is the sign-in address that returns to rd.
func (h *Handler) signInURL(rd string) string {
	return h.prefix + "sign-in?rd=" + url.QueryEscape(rd)
}

// Limits on the Accept header IsBrowser reads; a longer one is no
// browser's.
const (
	maxAcceptLen    = 1024
	maxAcceptRanges = 32
)

// IsBrowser reports whether r is a browser's navigation, to be sent to
// sign in rather than answered 401: GET or HEAD, no Authorization header
// (a client that sends one wants its answer), and an Accept header that
// prefers HTML (text/html or application/xhtml+xml at least as high as any
// other type named; wildcards state no preference). Images, scripts,
// fetch() calls and desktop extensions ask for other types and keep their
// 401.
func IsBrowser(r *http.Request) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return false
	}
	if len(r.Header["Authorization"]) > 0 {
		return false
	}
	accept := r.Header["Accept"]
	return len(accept) == 1 && prefersHTML(accept[0])
}

func prefersHTML(accept string) bool {
	// Most requests a browser makes (images, scripts, styles, fetch) do
	// not name HTML at all: they are answered without parsing.
	if len(accept) > maxAcceptLen || !(strings.Contains(accept, "html") || strings.Contains(accept, "HTML")) {
		return false
	}
	if accept == "text/html" || strings.HasPrefix(accept, "text/html,") {
		// What browsers send for a navigation: HTML first, at q=1, which
		// no other type can exceed.
		return true
	}
	html, other := -1.0, 0.0
	n := 0
	for part := range strings.SplitSeq(accept, ",") {
		if n++; n > maxAcceptRanges {
			return false
		}
		mt, params, _ := strings.Cut(part, ";")
		q := 1.0
		for p := range strings.SplitSeq(params, ";") {
			k, v, ok := strings.Cut(strings.TrimSpace(p), "=")
			if ok && strings.EqualFold(strings.TrimSpace(k), "q") {
				f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
				if err != nil || f < 0 || f > 1 {
					f = 0
				}
				q = f
			}
		}
		switch strings.ToLower(strings.TrimSpace(mt)) {
		case "text/html", "application/xhtml+xml":
			html = max(html, q)
		case "*/*", "text/*", "":
		default:
			other = max(other, q)
		}
	}
	return html > 0 && html >= other
}

// serveSignIn starts an attempt: a fresh state and PKCE verifier, kept in
// the attempt's cookie with rd, and a redirect to IMS's sign-in page.
func (h *Handler) serveSignIn(w http.ResponseWriter, r *http.Request) {
	if !allowMethods(w, r, http.MethodGet, http.MethodHead) {
		return
	}
	rd := SafeRedirect(r.URL.Query().Get("rd"), h.reserved)
	a, err := newAttempt(rd)
	if err != nil {
		h.log.Error("browser sign-in: no randomness", zap.Error(err))
		h.page(w, r, pageUnavailable, "/")
		return
	}
	c, err := h.attemptCookie(a)
	if err != nil {
		h.log.Error("browser sign-in: encode the attempt's cookie", zap.Error(err))
		h.page(w, r, pageUnavailable, "/")
		return
	}
	http.SetCookie(w, c)
	q := url.Values{
		"client_id":             {h.cfg.ClientID},
		"redirect_uri":          {h.redirectURI},
		"response_type":         {"code"},
		"scope":                 {h.scope},
		"state":                 {a.State},
		"code_challenge":        {a.challenge()},
		"code_challenge_method": {"S256"},
	}
	noStore(w)
	w.Header().Set("Location", h.authorize+"?"+q.Encode())
	w.WriteHeader(http.StatusFound)
	h.log.Debug("browser sign-in started", zap.String("outcome", "to_ims"))
}

// serveCallback finishes an attempt: the state must be the one this
// browser's attempt cookie holds, the code is exchanged with the attempt's
// PKCE verifier, and the access token signs the user in as a bearer
// token would. The attempt cookie is cleared whatever the outcome, so a
// callback URL works once.
func (h *Handler) serveCallback(w http.ResponseWriter, r *http.Request) {
	if !allowMethods(w, r, http.MethodGet) {
		return
	}
	q := r.URL.Query()
	state := q.Get("state")
	a, cookieName := h.readAttempt(r, state)
	if cookieName != "" {
		http.SetCookie(w, h.clearCookie(cookieName))
	}
	retry := "/"
	if a != nil {
		retry = a.RD
	}
	if e := q.Get("error"); e != "" {
		p := imsErrorPage(e)
		h.log.Info("browser sign-in refused by IMS", zap.String("outcome", "ims_error"), zap.String("error", clip(e)),
			zap.String("error_description", clip(q.Get("error_description"))))
		h.page(w, r, p, retry)
		return
	}
	code := q.Get("code")
	switch {
	case state == "" || code == "" || len(code) > maxCodeLen:
		h.log.Info("browser sign-in: incomplete callback", zap.String("outcome", "bad_callback"))
		h.page(w, r, pageBadCallback, retry)
		return
	case a == nil:
		h.log.Warn("browser sign-in: state does not match this browser's attempt (forged, replayed or expired)",
			zap.String("outcome", "state_mismatch"))
		h.page(w, r, pageStateMismatch, retry)
		return
	}
	token, err := h.exchange(r.Context(), code, a.Verifier)
	if err != nil {
		p := exchangePage(err)
		if p.status >= 500 {
			h.log.Error("browser sign-in: code exchange failed", zap.String("outcome", "exchange_failed"), zap.Error(err))
		} else {
			h.log.Info("browser sign-in: code refused", zap.String("outcome", "code_refused"), zap.Error(err))
		}
		h.page(w, r, p, retry)
		return
	}
	if err := h.cfg.SignIn(w, r, token); err != nil {
		if r.Context().Err() != nil {
			return
		}
		p := signInPage(err)
		h.log.Warn("browser sign-in: token not accepted", zap.String("outcome", "refused"), zap.Error(err))
		// A login-token cookie the step may have cleared stays cleared;
		// only its own page is shown.
		h.page(w, r, p, retry)
		return
	}
	http.SetCookie(w, h.markerCookie())
	noStore(w)
	w.Header().Set("Location", a.RD)
	w.WriteHeader(http.StatusFound)
}

// allowMethods answers 405 unless r's method is one of methods.
func allowMethods(w http.ResponseWriter, r *http.Request, methods ...string) bool {
	for _, m := range methods {
		if r.Method == m {
			return true
		}
	}
	w.Header().Set("Allow", strings.Join(methods, ", "))
	http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	return false
}

func noStore(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	// The callback's URL holds the code: never send it on as a Referer.
	h.Set("Referrer-Policy", "no-referrer")
}

// clip bounds what IMS (or whoever made the URL) put in a query parameter
// before it is logged.
func clip(s string) string {
	const n = 120
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
