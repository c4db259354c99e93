// Package bearer authenticates "Authorization: Bearer <IMS access token>"
// requests. A token is validated locally (signature and claims), remotely
// (IMS's validate_token endpoint), or both; the outcome is cached under a
// SHA-256 of the token, so a token seen before costs neither a signature
// check nor an IMS call until it expires or is due for a remote re-check.
package bearer

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/gatehouse-proxy/gatehouse/auth"
	"github.com/gatehouse-proxy/gatehouse/auth/ims"
	"github.com/gatehouse-proxy/gatehouse/session/cache"
)

// Mode says how tokens are validated.
type Mode string

// Validation modes (GATEHOUSE_IMS_VALIDATION).
const (
	ModeLocal  Mode = "local"  // signature and claims against IMS's published keys
	ModeRemote Mode = "remote" // IMS's /ims/validate_token/v1
	ModeBoth   Mode = "both"   // local first (cheap, rejects forgeries without an IMS call), then remote (catches revocation)
)

// ParseMode reads a validation mode setting.
func ParseMode(s string) (Mode, error) {
	switch m := Mode(strings.ToLower(strings.TrimSpace(s))); m {
	case ModeLocal, ModeRemote, ModeBoth:
		return m, nil
	}
	return "", fmt.Errorf("%q: want local, remote or both", s)
}

// MaxTokenSize bounds the bearer token accepted; IMS tokens are about 1.5 KiB.
const MaxTokenSize = 8 << 10

// Hash is the SHA-256 of a token: the only form in which a token is kept in
// memory or logged (abbreviated).
type Hash [sha256.Size]byte

// Short returns the first 12 hex digits of the hash, for logs.
func (h Hash) Short() string {
	var b [12]byte // on the stack: the string is the one allocation
	hex.Encode(b[:], h[:6])
	return string(b[:])
}

// Result is a validated bearer token.
type Result struct {
	Token  string // the raw token, needed to call IMS on the user's behalf
	Hash   Hash
	Claims *ims.Claims
}

// Config configures an Authenticator.
type Config struct {
	Mode     Mode
	Verifier *ims.Verifier // required for ModeLocal and ModeBoth
	Client   *ims.Client   // remote validation; required for ModeRemote and ModeBoth
	// ClientIDs and Cluster are checked on remote answers too, so that
	// ModeRemote is no laxer than ModeLocal. Empty ClientIDs turns bearer
	// sign-in off.
	ClientIDs []string
	Cluster   string
	ClockSkew time.Duration // default 1 minute
	// RecheckInterval bounds how long a remote "valid" answer is trusted
	// before IMS is asked again (a revoked token is refused after at most
	// this long). Default 5 minutes.
	RecheckInterval time.Duration
	// NegativeTTL is how long a remote "invalid" answer is remembered, so a
	// client retrying a revoked token does not become an IMS flood. Default 1 minute.
	NegativeTTL time.Duration
	// StaleIfError is how long, after its recheck was due, a token IMS
	// confirmed before keeps working while IMS cannot answer (unreachable,
	// timed out, 5xx or 429), so that an IMS outage does not sign everyone
	// out. The signature and expiry are still checked locally each time,
	// and a token IMS called invalid never benefits. It applies to ModeBoth
	// only: in ModeRemote nothing could check the signature while IMS is
	// away. 0 turns it off (the setting's default, 15 minutes, is applied
	// by the caller).
	StaleIfError time.Duration
	// CacheSize bounds the number of cached tokens. Default 100,000.
	CacheSize int
	Now       func() time.Time
	Logger    *zap.Logger // nil: no logs
}

// staleRetryInterval is the least time between two rechecks of the same
// token while it is kept by StaleIfError: a client's burst during an
// outage costs IMS one call per token per interval, not one per request.
const staleRetryInterval = 5 * time.Second

// Authenticator validates bearer tokens. It is safe for concurrent use.
type Authenticator struct {
	cfg       Config
	clientIDs map[string]struct{}
	now       func() time.Time
	log       *zap.Logger

	// cache holds outcomes by token hash, each until it is of no more use
	// (the token's expiry, a rejection's NegativeTTL); when full,
	// arbitrary entries are evicted.
	cache *cache.Cache[Hash, *entry]

	// mu guards flights, and staleLogged of the entries.
	mu      sync.Mutex
	flights map[Hash]*flight // validations under way

	staleAccepted atomic.Uint64
	// Counted for the metrics (CacheStats).
	cacheHits, cacheMisses atomic.Uint64
}

type entry struct {
	claims    *ims.Claims
	expiresAt time.Time // token expiry
	recheckAt time.Time // remote modes: when to ask IMS again; zero for ModeLocal
	err       error     // a remembered rejection (remote "invalid")
	errUntil  time.Time

	// While IMS cannot answer a due recheck and StaleIfError keeps the
	// token: no new recheck before retryAt (UnixNano; read without a
	// lock by lookup); staleLogged (guarded by mu) says this outage was
	// logged for the token already. A new confirmation replaces the entry
	// and so starts a new episode.
	retryAt     atomic.Int64
	staleLogged bool
}

// New returns an Authenticator.
func New(cfg Config) (*Authenticator, error) {
	switch cfg.Mode {
	case ModeLocal:
		if cfg.Verifier == nil {
			return nil, errors.New("bearer: local validation needs a verifier")
		}
	case ModeRemote:
		if cfg.Client == nil {
			return nil, errors.New("bearer: remote validation needs an IMS client")
		}
	case ModeBoth:
		if cfg.Verifier == nil || cfg.Client == nil {
			return nil, errors.New("bearer: validation \"both\" needs a verifier and an IMS client")
		}
	default:
		return nil, fmt.Errorf("bearer: validation mode %q: want local, remote or both", cfg.Mode)
	}
	if cfg.ClockSkew <= 0 {
		cfg.ClockSkew = time.Minute
	}
	if cfg.RecheckInterval <= 0 {
		cfg.RecheckInterval = 5 * time.Minute
	}
	if cfg.NegativeTTL <= 0 {
		cfg.NegativeTTL = time.Minute
	}
	if cfg.CacheSize <= 0 {
		cfg.CacheSize = 100_000
	}
	a := &Authenticator{
		cfg:       cfg,
		clientIDs: make(map[string]struct{}, len(cfg.ClientIDs)),
		now:       cfg.Now,
		flights:   make(map[Hash]*flight),
		log:       cfg.Logger,
	}
	if a.now == nil {
		a.now = time.Now
	}
	a.cache = cache.New(cache.Options[Hash, *entry]{MaxEntries: cfg.CacheSize, Now: a.now, Hash: shardOf})
	if a.log == nil {
		a.log = zap.NewNop()
	}
	for _, id := range cfg.ClientIDs {
		a.clientIDs[id] = struct{}{}
	}
	return a, nil
}

// StaleAccepted returns how many requests were accepted on a confirmation
// past its recheck because IMS could not answer (see Config.StaleIfError).
func (a *Authenticator) StaleAccepted() uint64 { return a.staleAccepted.Load() }

// CacheStats returns how many validations were answered from the cache
// (a remembered outcome, or a confirmation kept through an IMS outage)
// and how many were not (new tokens, and those due for a recheck).
func (a *Authenticator) CacheStats() (hits, misses uint64) {
	return a.cacheHits.Load(), a.cacheMisses.Load()
}

// Enabled reports whether bearer sign-in is on (the client allow-list is not empty).
func (a *Authenticator) Enabled() bool { return len(a.clientIDs) > 0 }

// Extract returns the bearer token of r. It returns auth.ErrNoCredentials
// when r has no Authorization header, and an *auth.Error when the header is
// there but is not a usable bearer token.
func Extract(r *http.Request) (string, error) {
	h := r.Header.Values("Authorization")
	if len(h) == 0 {
		return "", auth.ErrNoCredentials
	}
	if len(h) > 1 {
		return "", auth.BadRequest("more than one Authorization header", nil)
	}
	scheme, token, _ := strings.Cut(strings.TrimSpace(h[0]), " ")
	if !strings.EqualFold(scheme, "Bearer") {
		return "", &auth.Error{
			Status: http.StatusUnauthorized, Code: auth.CodeInvalidRequest, Reason: auth.ReasonNoCredential,
			Description: fmt.Sprintf("unsupported authorization scheme %q: send Authorization: Bearer <IMS access token>", truncate(scheme, 20)),
		}
	}
	token = strings.TrimSpace(token)
	switch {
	case token == "":
		return "", auth.BadRequest("the Bearer authorization header carries no token", nil)
	case len(token) > MaxTokenSize:
		return "", auth.Unauthorized(auth.ReasonInvalidToken, fmt.Sprintf("the bearer token is larger than %d bytes", MaxTokenSize), nil)
	case !isB64Token(token):
		return "", auth.BadRequest("the bearer token contains characters a token cannot have", nil)
	}
	return token, nil
}

// isB64Token checks RFC 6750's b64token syntax: 1*( ALPHA / DIGIT / "-" /
// "." / "_" / "~" / "+" / "/" ) *"=". It runs over every byte of every
// bearer token (about 1.5 KiB), so the character class is a table.
func isB64Token(s string) bool {
	i := 0
	for ; i < len(s) && b64TokenChar[s[i]]; i++ {
	}
	if i == 0 {
		return false
	}
	for ; i < len(s); i++ {
		if s[i] != '=' {
			return false
		}
	}
	return true
}

// hashToken is the token's SHA-256. IMS tokens are 1–2 KiB, and
// []byte(token) copied each to the heap on every cached request (1,216 B
// per request in BenchmarkAuthenticateCached); a stack buffer of Extract's
// limit takes any token Extract lets through.
func hashToken(token string) Hash {
	var buf [MaxTokenSize]byte
	if len(token) <= len(buf) {
		return sha256.Sum256(append(buf[:0], token...))
	}
	return sha256.Sum256([]byte(token))
}

// Authenticate validates a bearer token taken from a request by Extract. It
// returns either a Result or an *auth.Error saying what the client should do.
func (a *Authenticator) Authenticate(ctx context.Context, token string) (*Result, error) {
	if !a.Enabled() {
		return nil, &auth.Error{Status: http.StatusUnauthorized, Code: auth.CodeInvalidToken, Reason: auth.ReasonInvalidToken,
			Description: "bearer sign-in is disabled on this server (no IMS client ids are allowed)"}
	}
	h := hashToken(token)
	claims, err := a.validate(ctx, token, h)
	if err != nil {
		return nil, err
	}
	return &Result{Token: token, Hash: h, Claims: claims}, nil
}

// Forget drops a token from the cache, for example after IMS refused it
// during provisioning.
func (a *Authenticator) Forget(h Hash) { a.cache.Delete(h) }

// shardOf picks a cache entry's shard: a Hash is a SHA-256 already, as
// uniform as a hash of it would be.
func shardOf(h Hash) uint64 { return binary.LittleEndian.Uint64(h[:8]) }

func (a *Authenticator) validate(ctx context.Context, token string, h Hash) (*ims.Claims, error) {
	now := a.now()
	if claims, v, err := a.lookup(h, now); v != miss {
		a.cacheHits.Add(1)
		return a.answer(ctx, token, claims, v, err)
	}
	a.cacheMisses.Add(1)
	// One validation per token at a time: a burst of requests carrying a new
	// token costs one signature check and at most one IMS call. The first
	// caller validates on its own goroutine, the others wait for it or for
	// their own context. A flight stores its outcome in the cache before it
	// leaves flights, both under mu, so a caller that finds no flight here
	// finds the outcome by looking again.
	a.mu.Lock()
	if claims, v, err := a.lookup(h, now); v != miss {
		a.mu.Unlock()
		return a.answer(ctx, token, claims, v, err)
	}
	if f := a.flights[h]; f != nil {
		a.mu.Unlock()
		select {
		case <-f.done:
			if f.err == nil && f.stale {
				a.staleAccepted.Add(1) // per request, not per flight
			}
			return f.claims, f.err
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	f := &flight{done: make(chan struct{}), err: errValidationAborted}
	a.flights[h] = f
	a.mu.Unlock()
	// Deferred, so that the waiters are released even if validation
	// panics; they then get errValidationAborted, which is not cached.
	finished := false
	defer func() {
		if !finished {
			a.mu.Lock()
			delete(a.flights, h)
			a.mu.Unlock()
		}
		close(f.done)
	}()

	// Detached from this caller's cancellation, so a client that hangs up
	// does not fail everyone waiting on the same token; the IMS client's
	// timeout still bounds it.
	claims, err := a.validateUncached(context.WithoutCancel(ctx), token)
	if err == nil {
		// Cached for up to the token's lifetime, for up to CacheSize
		// tokens: keep only what is read after validation.
		claims = claims.Essential()
	}
	stale := false
	a.mu.Lock()
	if errors.Is(err, errIMSOutage) {
		// The local check has just passed: it runs before IMS is asked.
		if c := a.stale(h, now, err); c != nil {
			claims, err, stale = c, nil, true
		}
	}
	if !stale {
		a.store(h, claims, err, now)
	}
	delete(a.flights, h)
	f.claims, f.err, f.stale = claims, err, stale
	finished = true
	a.mu.Unlock()
	if stale {
		a.staleAccepted.Add(1)
	}
	return claims, err
}

var errValidationAborted = errors.New("bearer: the validation of this token was aborted")

// answer is the answer to a token whose cache lookup gave the verdict v
// (not miss) with claims and err.
func (a *Authenticator) answer(ctx context.Context, token string, claims *ims.Claims, v verdict, err error) (*ims.Claims, error) {
	if v != staleRetryLater {
		return claims, err
	}
	claims, err = a.checkLocally(ctx, token, claims)
	if err == nil {
		a.staleAccepted.Add(1)
	}
	return claims, err
}

// flight is a validation under way, which callers with the same token
// wait for; stale says the claims were accepted on a past confirmation
// (StaleIfError). It replaces singleflight.DoChan here, which starts a
// goroutine per call: handing the work over and back cost more CPU on
// the first-seen path (+47% in BenchmarkAuthenticateFirstSeen) than the
// signature check's rebuilding of the key's constants; and
// singleflight.Do would tie every waiter to the leader's context.
type flight struct {
	done   chan struct{} // closed once claims, err and stale are set
	claims *ims.Claims
	err    error
	stale  bool
}

// verdict is what the cache says about a token.
type verdict int

const (
	miss            verdict = iota // validate: not cached, or due for a remote recheck
	answered                       // the cached outcome stands
	staleRetryLater                // kept through an IMS outage, not yet time to ask again: check locally only
)

// lookup answers from the cache.
func (a *Authenticator) lookup(h Hash, now time.Time) (*ims.Claims, verdict, error) {
	e, found := a.cache.Get(h)
	if !found {
		return nil, miss, nil
	}
	switch {
	case e.err != nil && now.Before(e.errUntil):
		return nil, answered, e.err
	case e.err != nil:
		a.cache.DeleteIf(h, func(c *entry) bool { return c == e })
		return nil, miss, nil
	case now.After(e.expiresAt.Add(a.cfg.ClockSkew)):
		a.cache.DeleteIf(h, func(c *entry) bool { return c == e })
		return nil, answered, expiredError(nil)
	case e.recheckAt.IsZero() || now.Before(e.recheckAt):
		return e.claims, answered, nil
	case now.UnixNano() < e.retryAt.Load() && a.withinStale(e, now):
		return e.claims, staleRetryLater, nil
	}
	// Due for a recheck. The entry stays: if IMS cannot answer, it is the
	// confirmation StaleIfError keeps.
	return nil, miss, nil
}

// withinStale reports whether StaleIfError still covers confirmed entry e.
func (a *Authenticator) withinStale(e *entry, now time.Time) bool {
	return a.cfg.Mode == ModeBoth && a.cfg.StaleIfError > 0 && e.err == nil &&
		!e.recheckAt.IsZero() && !now.After(e.recheckAt.Add(a.cfg.StaleIfError))
}

// stale returns the confirmed claims of token h when StaleIfError covers
// them after IMS failed to answer their recheck with cause, and nil
// otherwise; a.mu must be held. It logs once per token per outage.
func (a *Authenticator) stale(h Hash, now time.Time, cause error) *ims.Claims {
	e, ok := a.cache.Get(h)
	if !ok || !a.withinStale(e, now) {
		return nil
	}
	e.retryAt.Store(now.Add(staleRetryInterval).UnixNano())
	if !e.staleLogged {
		e.staleLogged = true
		a.log.Warn("IMS cannot recheck a bearer token; accepting its last confirmation",
			zap.String("token", h.Short()), zap.String("user", e.claims.UserID),
			zap.Duration("past_due", now.Sub(e.recheckAt)),
			zap.Duration("stale_if_error", a.cfg.StaleIfError), zap.Error(cause))
	}
	return e.claims
}

// checkLocally returns the confirmed claims of a token kept by
// StaleIfError between two recheck attempts, once its signature and expiry
// have passed the local check again.
func (a *Authenticator) checkLocally(ctx context.Context, token string, claims *ims.Claims) (*ims.Claims, error) {
	if _, err := a.cfg.Verifier.Verify(ctx, token); err != nil {
		return nil, localError(err)
	}
	return claims, nil
}

// store caches an outcome; a.mu must be held. Only definite outcomes are
// cached: a valid token, or a remote "invalid". Local rejections are cheap
// to repeat, and outages must not be remembered.
func (a *Authenticator) store(h Hash, claims *ims.Claims, err error, now time.Time) {
	var e *entry
	var until time.Time
	switch {
	case err == nil:
		e = &entry{claims: claims, expiresAt: claims.ExpiresAt()}
		if a.cfg.Mode != ModeLocal {
			e.recheckAt = now.Add(a.cfg.RecheckInterval)
		}
		// Kept until lookup would answer "expired" from it: the cache
		// forgets it a moment later, and the local check says the same.
		until = e.expiresAt.Add(a.cfg.ClockSkew + time.Second)
	case errors.Is(err, errRemoteInvalid):
		e = &entry{err: err, errUntil: now.Add(a.cfg.NegativeTTL)}
		until = e.errUntil
	default:
		return
	}
	if ttl := until.Sub(now); ttl > 0 {
		a.cache.SetWithTTL(h, e, ttl)
	} else {
		a.cache.Delete(h) // of no use, and the entry there is older
	}
}

// CacheLen returns the number of cached tokens.
func (a *Authenticator) CacheLen() int { return a.cache.Len() }

var errRemoteInvalid = errors.New("IMS says the token is not valid")

// errIMSOutage marks a remote validation that IMS could not answer (see
// ims.IsOutage), the only failure StaleIfError covers.
var errIMSOutage = errors.New("IMS could not answer")

func (a *Authenticator) validateUncached(ctx context.Context, token string) (*ims.Claims, error) {
	var claims *ims.Claims
	if a.cfg.Mode != ModeRemote {
		c, err := a.cfg.Verifier.Verify(ctx, token)
		if err != nil {
			return nil, localError(err)
		}
		claims = c
	}
	if a.cfg.Mode == ModeLocal {
		return claims, nil
	}
	clientID := ""
	if claims != nil {
		clientID = claims.ClientID
	} else {
		// Remote only: read the client id unverified, so that a token for
		// another client is refused without asking IMS; IMS checks the rest.
		c, err := unverifiedClaims(token)
		if err != nil {
			return nil, localError(err)
		}
		if err := a.checkClaims(c); err != nil {
			return nil, err
		}
		clientID = c.ClientID
	}
	res, err := a.cfg.Client.ValidateToken(ctx, token, clientID)
	if err != nil {
		if ims.IsOutage(err) {
			err = fmt.Errorf("%w: %w", errIMSOutage, err)
		}
		switch {
		case errors.Is(err, ims.ErrBadAnswer):
			return nil, auth.ServiceError("the identity service sent an unusable answer to the token validation; retry later", err)
		case errors.Is(err, ims.ErrRateLimited):
			return nil, auth.Unavailable("the identity service is rate-limiting token validation; retry shortly", ims.RetryAfterOf(err), err)
		}
		return nil, unavailable("could not reach the identity service to validate the token; retry shortly", err)
	}
	if !res.Valid {
		reason := res.Reason
		if reason == "" {
			reason = "unspecified"
		}
		if strings.Contains(reason, "expired") {
			return nil, expiredError(fmt.Errorf("%w: %s", errRemoteInvalid, reason))
		}
		return nil, auth.Unauthorized(auth.ReasonInvalidToken,
			fmt.Sprintf("the identity service refused the token (%s); get a new access token from IMS", truncate(reason, 60)),
			fmt.Errorf("%w: %s", errRemoteInvalid, reason))
	}
	if claims == nil {
		claims = res.Token
	}
	if err := a.checkClaims(claims); err != nil {
		return nil, err
	}
	return claims, nil
}

// checkClaims applies the claim checks of a local verification to claims
// that IMS vouched for, so the allow-list and cluster bind in every mode.
func (a *Authenticator) checkClaims(c *ims.Claims) error {
	now := a.now()
	switch {
	case c.Type != ims.TypeAccessToken:
		return localError(fmt.Errorf("%w: %q", ims.ErrWrongType, c.Type))
	case c.Cluster != a.cfg.Cluster:
		return localError(fmt.Errorf("%w: %q", ims.ErrWrongCluster, c.Cluster))
	case c.UserID == "":
		return localError(fmt.Errorf("%w: no user_id", ims.ErrMalformed))
	case c.ExpiresAt().IsZero():
		return localError(ims.ErrNoExpiry)
	case now.After(c.ExpiresAt().Add(a.cfg.ClockSkew)):
		return localError(ims.ErrExpired)
	case now.Before(c.ValidFrom().Add(-a.cfg.ClockSkew)):
		return localError(ims.ErrNotYetValid)
	}
	if _, ok := a.clientIDs[c.ClientID]; !ok {
		return localError(fmt.Errorf("%w: %q", ims.ErrClientNotAllowed, c.ClientID))
	}
	return nil
}

// b64TokenChar marks the characters of a b64token other than '='.
var b64TokenChar = func() (t [256]bool) {
	for c := range 256 {
		t[c] = 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			c == '-' || c == '.' || c == '_' || c == '~' || c == '+' || c == '/'
	}
	return t
}()

// unverifiedClaims reads a token's claims without checking its signature,
// with the same reading as a local verification (ims.DecodeClaims).
func unverifiedClaims(token string) (*ims.Claims, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return nil, fmt.Errorf("%d parts, want 3: %w", len(parts), ims.ErrMalformed)
	}
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return nil, fmt.Errorf("payload: not base64url: %w", ims.ErrMalformed)
	}
	return ims.DecodeClaims(b)
}

// localError turns a verification failure into the client's answer.
func localError(err error) error {
	switch {
	case errors.Is(err, ims.ErrExpired):
		return expiredError(err)
	case errors.Is(err, ims.ErrNotYetValid):
		return auth.Unauthorized(auth.ReasonInvalidToken, "the IMS access token is not valid yet; check the client's clock", err)
	case errors.Is(err, ims.ErrKeysUnavailable):
		return unavailable("the identity service's signing keys cannot be fetched right now; retry shortly", err)
	case errors.Is(err, ims.ErrClientNotAllowed):
		return auth.Unauthorized(auth.ReasonInvalidToken, "the token was issued to a client id that may not sign in here", err)
	case errors.Is(err, ims.ErrWrongType):
		return auth.Unauthorized(auth.ReasonInvalidToken, "the token is not an access token; send an IMS access token", err)
	case errors.Is(err, ims.ErrWrongCluster):
		return auth.Unauthorized(auth.ReasonInvalidToken, "the token was issued by another IMS cluster", err)
	case errors.Is(err, ims.ErrUnknownKey):
		return auth.Unauthorized(auth.ReasonInvalidToken, "the token is signed by a key the identity service does not publish", err)
	case errors.Is(err, ims.ErrAlgorithm):
		return auth.Unauthorized(auth.ReasonInvalidToken, "the token's signing algorithm is not accepted (RS256 only)", err)
	case errors.Is(err, ims.ErrBadSignature):
		return auth.Unauthorized(auth.ReasonInvalidToken, "the token's signature is not valid", err)
	case errors.Is(err, ims.ErrNoExpiry):
		return auth.Unauthorized(auth.ReasonInvalidToken, "the token states no expiry", err)
	case errors.Is(err, ims.ErrMalformed):
		return auth.Unauthorized(auth.ReasonInvalidToken, "the bearer token is not a well-formed IMS access token", err)
	}
	return auth.Unauthorized(auth.ReasonInvalidToken, "the bearer token is not valid", err)
}

func expiredError(cause error) error {
	return auth.Unauthorized(auth.ReasonExpiredToken, "the IMS access token has expired; get a new one from IMS", cause)
}

func unavailable(msg string, cause error) error {
	return auth.Unavailable(msg, 0, cause)
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
