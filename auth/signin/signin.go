// Package signin is the authentication step of Gatehouse's handler chain.
// It decides, for each request, between the login-token cookie and the
// bearer token, and carries out the desktop sign-in flow:
//
//  1. A valid login-token cookie, and no bearer for another user: the
//     request is authenticated from memory, without IMS.
//  2. A bearer token: validated (cached), the user provisioned and synced
//     when new or stale, a login token issued — or the one already issued
//     for this bearer reused — and sent back as a cookie.
//  3. Neither, or an expired cookie alone: 401 with WWW-Authenticate:
//     Bearer and X-Reason, so that the client signs in again.
//
// The cookie rule: a request that carries the login-token cookie more than
// once (counted as net/http reads cookies; a site under the same domain
// can plant a second one) has no cookie credential, and neither cookie is
// ever validated. Without a usable bearer token it is refused with 400,
// X-Reason AMBIGUOUS_COOKIE, and the cookie is cleared; with one, the
// bearer alone signs it in, and the answer sets a single fresh login-token
// cookie. Logout revokes every login token such a request carries.
package signin

import (
	"context"
	"encoding/binary"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/gatehouse-proxy/gatehouse/auth"
	"github.com/gatehouse-proxy/gatehouse/auth/bearer"
	"github.com/gatehouse-proxy/gatehouse/auth/provision"
	"github.com/gatehouse-proxy/gatehouse/session"
	"github.com/gatehouse-proxy/gatehouse/session/cache"
)

// Config configures the sign-in step.
type Config struct {
	Bearer      *bearer.Authenticator  // required
	Provisioner *provision.Provisioner // required
	Sessions    *session.Manager       // required
	Logger      *zap.Logger
	Now         func() time.Time
	// ReuseSize bounds how many bearer tokens remember the login token they
	// were given. Default 100,000.
	ReuseSize int
}

// Handler is the sign-in step. It is safe for concurrent use.
type Handler struct {
	cfg Config
	log *zap.Logger
	now func() time.Time

	// reuse maps a bearer token's hash to the login-token cookie issued for
	// it, so that a client that keeps sending the same bearer without the
	// cookie is given the same login token instead of a new one per request.
	// An entry lives until the login token's (or the bearer's) expiry;
	// when full, arbitrary entries are evicted.
	reuse *cache.Cache[bearer.Hash, issued]
	// ids shares one Identity per cached user between requests.
	ids *identities
}

type issued struct {
	value   string // the encoded cookie value
	userID  string
	expires time.Time
	sent    *sentCookie
}

// sentCookie is the Set-Cookie line last sent for a reused login token.
// A client that keeps sending the same bearer gets the same line until its
// Max-Age, counted in seconds, changes, so the line is formatted once per
// second at most rather than once per request.
type sentCookie struct{ p atomic.Pointer[cookieLine] }

type cookieLine struct {
	expires time.Time
	maxAge  int
	line    string // (*http.Cookie).String() of the cookie with these attributes
}

// cached returns the line last sent, if it was for a cookie expiring at
// expires with this maxAge.
func (s *sentCookie) cached(expires time.Time, maxAge int) (string, bool) {
	if l := s.p.Load(); l != nil && l.maxAge == maxAge && l.expires.Equal(expires) {
		return l.line, true
	}
	return "", false
}

// line returns c.String(); c is the cookie of this login token.
func (s *sentCookie) line(c *http.Cookie) string {
	if line, ok := s.cached(c.Expires, c.MaxAge); ok {
		return line
	}
	l := &cookieLine{expires: c.Expires, maxAge: c.MaxAge, line: c.String()}
	s.p.Store(l)
	return l.line
}

// New returns the sign-in step.
func New(cfg Config) (*Handler, error) {
	if cfg.Bearer == nil || cfg.Provisioner == nil || cfg.Sessions == nil {
		return nil, errors.New("signin: bearer authenticator, provisioner and session manager are required")
	}
	if cfg.ReuseSize <= 0 {
		cfg.ReuseSize = 100_000
	}
	h := &Handler{cfg: cfg, log: cfg.Logger, now: cfg.Now, ids: newIdentities()}
	if h.log == nil {
		h.log = zap.NewNop()
	}
	if h.now == nil {
		h.now = time.Now
	}
	h.reuse = cache.New(cache.Options[bearer.Hash, issued]{MaxEntries: cfg.ReuseSize, Now: h.now, Hash: hashOfHash})
	return h, nil
}

// Middleware authenticates each request and calls next with the identity in
// the context, or answers the request itself when it cannot be
// authenticated.
func (h *Handler) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := h.authenticate(w, r)
		if err != nil {
			h.fail(w, r, err)
			return
		}
		next.ServeHTTP(w, auth.SetIdentity(r, id))
	})
}

func (h *Handler) authenticate(w http.ResponseWriter, r *http.Request) (*auth.Identity, error) {
	ctx := r.Context()
	value, n := cookieValue(r, h.cfg.Sessions.CookieName())
	if n > 1 {
		return h.ambiguousCookie(w, r)
	}
	cookie, cerr := h.cookie(ctx, value, n)
	if cerr != nil && !errors.Is(cerr, auth.ErrNoCredentials) && !isTokenError(cerr) && !errors.Is(cerr, session.ErrUserDisabled) {
		// The store is down: say so rather than "sign in again" (or, as a
		// bare error, 500).
		return nil, auth.StoreUnavailable("sign-in", cerr)
	}

	token, berr := bearer.Extract(r)
	if errors.Is(berr, auth.ErrNoCredentials) || (berr != nil && cookie != nil) {
		// No Authorization header, or one this step cannot use next to a
		// valid cookie (a browser's cached Basic credentials, say): the
		// cookie decides.
		if cookie == nil {
			return nil, cookieError(cerr)
		}
		return h.fromCookie(w, cookie, ""), nil
	}
	if berr != nil {
		return nil, berr
	}
	res, err := h.cfg.Bearer.Authenticate(ctx, token)
	if err != nil {
		return nil, err
	}
	if cookie != nil && cookie.User.ID == res.Claims.UserID {
		return h.fromCookie(w, cookie, res.Claims.ClientID), nil
	}
	// A bearer for another user than the cookie's wins: it is the newer,
	// explicit statement of who is calling.
	return h.signIn(w, r, h.cfg.Bearer, res)
}

// SignInToken signs a user in with an IMS access token Gatehouse obtained
// itself (the browser flow's authorization code exchange) rather than one
// a client sent: a validates it, with its own client-id allow-list, so
// that the browser client's id is accepted for such tokens only and never
// as a bearer token. What follows is a bearer sign-in's: provisioning and
// group sync, a login token, and its cookie set on w. The error is an
// *auth.Error.
func (h *Handler) SignInToken(w http.ResponseWriter, r *http.Request, a *bearer.Authenticator, token string) (*auth.Identity, error) {
	res, err := a.Authenticate(r.Context(), token)
	if err != nil {
		return nil, err
	}
	return h.signIn(w, r, a, res)
}

// cookie validates the value of the request's only login-token cookie;
// n is how many it carries (0 or 1). It returns auth.ErrNoCredentials when
// there is none.
func (h *Handler) cookie(ctx context.Context, value string, n int) (*session.Validated, error) {
	if n == 0 {
		return nil, auth.ErrNoCredentials
	}
	return h.cfg.Sessions.Validate(ctx, value)
}

// errAmbiguousCookie is the refusal of a request that carries the
// login-token cookie more than once and no bearer token.
var errAmbiguousCookie = &auth.Error{Status: http.StatusBadRequest, Code: auth.CodeInvalidRequest,
	Reason: auth.ReasonAmbiguousCookie,
	Description: "the request carries more than one login-token cookie (another site under this domain may have set one); " +
		"clear cookies for this site, or sign in again with Authorization: Bearer <IMS access token>"}

// ambiguousCookie authenticates a request that carries the login-token
// cookie more than once. Neither is looked at: picking one would let
// whoever planted the other choose the user, or lock the user out. A
// bearer token, the explicit statement of who is calling, may still sign
// the request in, and its fresh cookie replaces ours; otherwise the
// cookie is cleared and the request refused.
func (h *Handler) ambiguousCookie(w http.ResponseWriter, r *http.Request) (*auth.Identity, error) {
	err := error(errAmbiguousCookie)
	if token, berr := bearer.Extract(r); berr == nil {
		var res *bearer.Result
		if res, err = h.cfg.Bearer.Authenticate(r.Context(), token); err == nil {
			var id *auth.Identity
			if id, err = h.signIn(w, r, h.cfg.Bearer, res); err == nil {
				return id, nil
			}
		}
	}
	http.SetCookie(w, h.cfg.Sessions.ClearCookie())
	return nil, err
}

// fromCookie is the identity of a valid login-token cookie; clientID is
// that of a bearer token of the same user sent with it, or "".
func (h *Handler) fromCookie(w http.ResponseWriter, v *session.Validated, clientID string) *auth.Identity {
	if v.Refresh != nil {
		http.SetCookie(w, v.Refresh)
		h.log.Info("login token refreshed", zap.String("user", v.User.ID), zap.String("outcome", "refreshed"),
			zap.Time("expires", v.Token.ExpiresAt))
	}
	return h.ids.get(v.User, auth.MethodCookie, clientID)
}

// signIn turns a token a validated into a user and a login token.
func (h *Handler) signIn(w http.ResponseWriter, r *http.Request, a *bearer.Authenticator, res *bearer.Result) (*auth.Identity, error) {
	ctx := r.Context()
	if v, ok := h.reused(ctx, res); ok {
		if v.line != "" {
			w.Header().Add("Set-Cookie", v.line) // what http.SetCookie does
		} else {
			http.SetCookie(w, v.cookie)
		}
		return h.ids.get(v.user, auth.MethodBearer, res.Claims.ClientID), nil
	}
	user, err := h.cfg.Provisioner.Ensure(ctx, res.Token, res.Claims)
	if err != nil {
		if ae := auth.AsError(err); ae.Status == http.StatusUnauthorized {
			a.Forget(res.Hash) // IMS refused it: do not keep trusting the cached validation
		}
		return nil, err
	}
	cookie, lt, err := h.cfg.Sessions.Issue(ctx, user)
	if errors.Is(err, session.ErrUserDisabled) {
		// Disabled after the provisioner last read the user: the store,
		// which checks the flag as it writes the token, is the last word.
		h.cfg.Provisioner.Forget(user.ID)
		return nil, auth.UserDisabled(err)
	}
	if err != nil {
		return nil, auth.StoreUnavailable("sign-in", err)
	}
	h.remember(res, cookie.Value, user.ID, lt.ExpiresAt)
	http.SetCookie(w, cookie)
	// The provisioner hands out one *User per cached user, so its bearers'
	// first sightings share an Identity (and its encoded headers) like its
	// cookies do; the audit line logs that identity's groups rather than
	// building the list again.
	id := h.ids.get(user, auth.MethodBearer, res.Claims.ClientID)
	h.log.Info("signed in", zap.String("user", user.ID), zap.String("outcome", "login_token_issued"),
		zap.String("client_id", res.Claims.ClientID), zap.String("token", res.Hash.Short()),
		zap.Strings("groups", id.Groups), zap.Time("expires", lt.ExpiresAt))
	return id, nil
}

// reuse is a login token handed out again: its cookie, or when the
// Set-Cookie line was formatted already, only the line.
type reuse struct {
	cookie *http.Cookie // when line is ""
	line   string
	user   *session.User
}

// reused returns the login token already issued for this bearer, if it is
// still valid and its user's sync is fresh. Validating it again (from the
// session cache) catches a logout in the meantime, here or on another
// replica, so a revoked login token is never handed out again.
func (h *Handler) reused(ctx context.Context, res *bearer.Result) (reuse, bool) {
	is, ok := h.reuse.Get(res.Hash)
	if !ok || !h.now().Before(is.expires) || is.userID != res.Claims.UserID {
		return reuse{}, false
	}
	v, err := h.cfg.Sessions.Validate(ctx, is.value)
	if err != nil || !h.cfg.Provisioner.Fresh(v.User) {
		h.forget(res.Hash)
		return reuse{}, false
	}
	if v.Refresh != nil {
		h.remember(res, v.Refresh.Value, v.User.ID, v.Token.ExpiresAt)
		return reuse{cookie: v.Refresh, user: v.User}, true
	}
	// The line sent last is sent again while the cookie's Max-Age is the
	// same: the cookie is built (and allocated) only when it changed.
	exp := v.Token.ExpiresAt
	line, ok := is.sent.cached(exp, h.cfg.Sessions.CookieMaxAge(exp))
	if !ok {
		line = is.sent.line(h.cfg.Sessions.Cookie(is.value, exp))
	}
	return reuse{line: line, user: v.User}, true
}

func (h *Handler) remember(res *bearer.Result, value, userID string, expires time.Time) {
	// The login token must not outlive the bearer it was reused for: past
	// the bearer's expiry the client has to show a fresh one.
	if e := res.Claims.ExpiresAt(); e.Before(expires) {
		expires = e
	}
	ttl := expires.Sub(h.now())
	if ttl <= 0 {
		return // nothing to reuse
	}
	h.reuse.SetWithTTL(res.Hash, issued{value: value, userID: userID, expires: expires, sent: &sentCookie{}}, ttl)
}

func (h *Handler) forget(k bearer.Hash) { h.reuse.Delete(k) }

// hashOfHash picks a reuse entry's shard: a bearer.Hash is a SHA-256
// already, as uniform as a hash of it would be.
func hashOfHash(k bearer.Hash) uint64 { return binary.LittleEndian.Uint64(k[:8]) }

// Logout returns the handler for the logout path: it revokes the login
// token server-side and clears the cookie. It succeeds whether or not the
// request carried a valid cookie, so a client can always sign out.
func (h *Handler) Logout() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost && r.Method != http.MethodDelete {
			// Not GET: a logout reachable by a link or an image tag would let
			// any page sign the user out.
			w.Header().Set("Allow", "POST, DELETE")
			http.Error(w, "logout: use POST", http.StatusMethodNotAllowed)
			return
		}
		if err := h.SignOut(w, r); err != nil {
			auth.WriteError(w, err)
			return
		}
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		_, _ = w.Write([]byte(`{"status":"signed out"}` + "\n"))
	})
}

// SignOut revokes every login token r carries and sets the cookie that
// clears it on w; the caller writes the answer. It is the logout path's
// work, shared with the browser's sign-out page, and does not check how
// the request came (the callers do). The error is an *auth.Error (the
// store could not revoke a token; nothing is cleared then).
func (h *Handler) SignOut(w http.ResponseWriter, r *http.Request) error {
	// Every login-token cookie of the request is revoked: with more
	// than one, which is the caller's cannot be told, and revoking
	// only ever takes access away (the token of whoever planted the
	// other one included, which they could revoke themselves).
	var users []string
	for _, c := range r.CookiesNamed(h.cfg.Sessions.CookieName()) {
		if v, err := h.cfg.Sessions.Validate(r.Context(), c.Value); err == nil {
			users = append(users, v.User.ID)
		}
		if err := h.cfg.Sessions.Revoke(r.Context(), c.Value); err != nil {
			h.log.Error("logout: revoke login token", zap.Error(err))
			return auth.StoreUnavailable("sign-out (the login token was not revoked)", err)
		}
	}
	for _, u := range users {
		h.dropReuse(u)
	}
	http.SetCookie(w, h.cfg.Sessions.ClearCookie())
	h.log.Info("signed out", zap.String("user", strings.Join(users, ",")), zap.String("outcome", "logout"))
	return nil
}

// dropReuse forgets every login token handed out to the user's bearers.
func (h *Handler) dropReuse(userID string) {
	h.reuse.DeleteFunc(func(_ bearer.Hash, v issued) bool { return v.userID == userID })
}

// fail answers a request that could not be authenticated, and logs the
// authentication event.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	if r.Context().Err() != nil {
		return // the client went away; the access log records 499
	}
	ae := auth.AsError(err)
	if isTokenError(ae.Err) {
		// Only when the cookie itself failed: a bad bearer sent beside a
		// valid cookie must not cost the client its session.
		http.SetCookie(w, h.cfg.Sessions.ClearCookie())
	}
	fields := []zap.Field{zap.String("outcome", "refused"), zap.Int("status", ae.Status),
		zap.String("reason", ae.Reason), zap.String("description", ae.Description)}
	switch {
	case ae.Status >= 500:
		h.log.Error("authentication failed", append(fields, zap.Error(ae.Err))...)
	case ae.Err != nil:
		h.log.Info("authentication refused", append(fields, zap.String("cause", ae.Err.Error()))...)
	default:
		h.log.Info("authentication refused", fields...)
	}
	auth.WriteError(w, ae)
}

func isTokenError(err error) bool {
	return errors.Is(err, session.ErrTokenMalformed) || errors.Is(err, session.ErrTokenUnknown) ||
		errors.Is(err, session.ErrTokenExpired)
}

// cookieError is the answer to a request whose only credential is a
// login-token cookie that failed (or no credential at all).
func cookieError(err error) error {
	switch {
	case errors.Is(err, session.ErrUserDisabled):
		return auth.UserDisabled(err)
	case errors.Is(err, session.ErrTokenExpired):
		return auth.Unauthorized(auth.ReasonExpiredToken,
			"the login token has expired; sign in again with Authorization: Bearer <IMS access token>", err)
	case errors.Is(err, session.ErrTokenUnknown):
		return auth.Unauthorized(auth.ReasonInvalidToken,
			"the login token is not known (signed out or revoked); sign in again with a bearer token", err)
	case errors.Is(err, session.ErrTokenMalformed):
		return auth.Unauthorized(auth.ReasonInvalidToken,
			"the login-token cookie is not valid; sign in again with a bearer token", err)
	}
	return &auth.Error{Status: http.StatusUnauthorized, Reason: auth.ReasonNoCredential,
		Description: "authentication required: send Authorization: Bearer <IMS access token>"}
}

// identity is what the rest of the chain learns of u. clientID is that of
// the bearer token that authenticated the request or came with it, or "".
func identity(u *session.User, m auth.Method, clientID string) *auth.Identity {
	return &auth.Identity{UserID: u.ID, Email: u.Email, Name: u.Name, Groups: u.Groups(), Method: m,
		ClientID: clientID, Orgs: u.Orgs}
}

// Changed applies a change notified by the store (session.Notifier): the
// login tokens handed out to a changed user's bearers, or to a user whose
// tokens were revoked, are not handed out again, and ChangeAll (or a kind
// this Handler does not know) forgets every one. (A reused token is
// validated again anyway; this keeps the map from holding the dead.)
func (h *Handler) Changed(c session.Change) {
	switch c.Kind {
	case session.ChangeUser, session.ChangeUserTokens:
		h.dropReuse(c.ID)
	case session.ChangeToken, session.ChangeSetting, session.ChangeLost:
	default:
		h.reuse.Clear()
	}
}
