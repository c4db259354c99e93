package session

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gorilla/securecookie"
	"go.uber.org/zap"
	"golang.org/x/sync/singleflight"

	"github.com/gatehouse-proxy/gatehouse/session/cache"
)

// Errors of Validate that mean "this cookie does not sign anyone in" (a
// 401). Validate also returns ErrUserDisabled, wrapped, for a token of a
// disabled user (a 403). Any other error from Validate is a failure of
// the store (a 503), returned wrapped.
var (
	// ErrTokenMalformed: the cookie value is empty, too long, not signed by
	// any configured key, or not a login token.
	ErrTokenMalformed = errors.New("login token malformed")
	// ErrTokenUnknown: the token does not exist (never did, was revoked or
	// cleaned up), its secret does not match, or its user is gone.
	ErrTokenUnknown = errors.New("login token unknown")
	// ErrTokenExpired: the token has expired. It has been deleted.
	ErrTokenExpired = errors.New("login token expired")
)

// Defaults of ManagerConfig.
const (
	DefaultTokenTTL   = 12 * time.Hour
	DefaultCookieName = "login-token"
	DefaultCacheTTL   = 30 * time.Second

	// MaxCookieLen is the longest cookie value Validate will look at.
	MaxCookieLen = 4096
	// maxCacheEntries bounds the validation cache (see Manager).
	maxCacheEntries = 1_000_000
)

// Token layout: the cookie carries "<id>.<secret>", both unpadded base64url.
const (
	idBytes     = 16
	secretBytes = 32
	idLen       = 22 // base64.RawURLEncoding.EncodedLen(idBytes)
	secretLen   = 43 // base64.RawURLEncoding.EncodedLen(secretBytes)
	payloadLen  = idLen + 1 + secretLen
)

// NewLoginTokenID returns a new login-token id, unpadded base64url of 16
// bytes: the Unix milliseconds of t, big-endian in 6 bytes, then 10 random
// bytes. Ids made close together in time sort close together, so a store
// adds each new token to one of a few recent pages of its id index rather
// than to a random one: with 100,000 tokens stored, random ids cost the
// SQLite store 3x the time per insert. The id is not a secret (the
// cookie's 256-bit secret is, and the cookie is encrypted); its 80 random
// bits keep apart the ids made in one millisecond.
func NewLoginTokenID(t time.Time) (string, error) {
	var id [idBytes]byte
	ms := uint64(t.UnixMilli())
	for i := 5; i >= 0; i-- {
		id[i] = byte(ms)
		ms >>= 8
	}
	if _, err := rand.Read(id[6:]); err != nil {
		return "", fmt.Errorf("new login token id: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(id[:]), nil
}

// ManagerConfig configures a Manager. The zero value of every field but
// CookieSecure is a usable default.
type ManagerConfig struct {
	// TTL is a login token's lifetime. Default 12h. A token is extended to
	// a full TTL when it is used after more than half of it has passed.
	TTL time.Duration
	// CookieName is the cookie's name. Default "login-token".
	CookieName string
	// CookiePath is the cookie's Path. Default "/".
	CookiePath string
	// CookieSecure sets the Secure attribute. The zero value (off) is for
	// plain-HTTP development only; the configuration layer turns it on
	// unless told otherwise, and NewManager logs a warning when it is off.
	CookieSecure bool
	// SameSite is the cookie's SameSite attribute. Default
	// http.SameSiteLaxMode. http.SameSiteNoneMode requires CookieSecure.
	SameSite http.SameSite
	// CacheTTL is how long a validated token is trusted from memory before
	// the store is asked again; a logout or group change made through
	// another replica takes effect here within it. 0 means the default,
	// 30s; a negative value disables the cache.
	CacheTTL time.Duration
	// Now returns the current time. Default time.Now.
	Now func() time.Time
	// Logger receives warnings and cleanup counts. Default: no logging.
	Logger *zap.Logger
}

// Manager issues, validates, refreshes and revokes login tokens, and sets
// their cookies. It is safe for concurrent use.
//
// Validated tokens are cached in memory for CacheTTL, keyed by token id,
// so that a warm validation costs no store call. The caches (session/cache)
// hold at most 1,000,000 entries each; when one is full, arbitrary entries
// are evicted to make room (each is at most CacheTTL from being useless
// anyway: entries are trusted only that long, and RunCleanup prunes the
// rest). Tokens of one user share one *User.
//
// Decoding a cookie value (HMAC check, AES decryption) is a pure function
// of the value and the keys, and a token's secret never changes, so a
// value that validated is remembered too: its SHA-256 points at the cache
// entry it validated against, and while that entry is the token's trusted
// one, the value needs neither decoding nor the secret check again. Neither
// the cookie nor the secret is kept. SetKeys, which changes the keys,
// forgets these values.
type Manager struct {
	store  Store
	keys   atomic.Pointer[keyring] // swapped whole by SetKeys; never modified
	ttl    time.Duration
	name   string
	path   string
	secure bool
	site   http.SameSite
	cttl   time.Duration // <= 0: cache off
	now    func() time.Time
	log    *zap.Logger

	// cache maps token ids to their entries, users user ids to the entry
	// their cached tokens share, decoded cookie values (by hash) to the
	// entry they validated against. gen is bumped by Revoke, ForgetUser
	// and a change notification before they drop anything; a store read
	// that started before a bump is not cached (loadUncached checks gen
	// with the entry's shard locked, and the drop needs that lock), so it
	// cannot bring back what was just dropped.
	cache   *cache.Cache[string, *cacheEntry]
	users   *cache.Cache[string, *userEntry]
	decoded *cache.Cache[valueHash, *cacheEntry]
	gen     atomic.Uint64

	// flight shares one store read among concurrent cold validations of
	// a token, each waiting only as long as its own context allows.
	flight singleflight.Group

	// keysChanged wakes RunKeyReload: a change notification says the
	// stored cookie keys changed (see Changed).
	keysChanged chan struct{}

	// Counted for the metrics, which read them with Stats.
	issued, refreshed, revoked, purged atomic.Uint64
	cacheHits, cacheMisses             atomic.Uint64
}

// Stats counts what a Manager did since it was made. Plain counters, read
// when the metrics are scraped, so that the packages doing the work need
// no metrics library and the hot path pays one atomic add.
type Stats struct {
	Issued    uint64 // login tokens issued (stored)
	Refreshed uint64 // login tokens extended to a full lifetime
	Revoked   uint64 // logouts that deleted a token from the store
	Purged    uint64 // expired login tokens deleted by RunCleanup
	// CacheHits and CacheMisses count the cookies whose token came from
	// memory, and those whose token had to be read from the store.
	CacheHits, CacheMisses uint64
}

// Stats returns the manager's counters.
func (m *Manager) Stats() Stats {
	return Stats{
		Issued: m.issued.Load(), Refreshed: m.refreshed.Load(), Revoked: m.revoked.Load(), Purged: m.purged.Load(),
		CacheHits: m.cacheHits.Load(), CacheMisses: m.cacheMisses.Load(),
	}
}

// cacheEntry is one cached token. A *LoginToken is never modified once
// stored in tok (a refresh stores a new one), so it can be handed out.
type cacheEntry struct {
	tok        atomic.Pointer[LoginToken]
	ue         *userEntry
	checkedAt  int64 // UnixNano of the store read
	refreshing atomic.Bool
	// dead: the entry is not (or no longer) its token's entry in the
	// cache, so a cookie value remembered as validated against it counts
	// for nothing.
	dead atomic.Bool
}

func newCacheEntry(tok *LoginToken, ue *userEntry, checkedAt int64) *cacheEntry {
	e := &cacheEntry{ue: ue, checkedAt: checkedAt}
	e.tok.Store(tok)
	return e
}

// userEntry is the one *User shared by all cached tokens of a user. A
// userEntry leaves the users cache only marked stale (ForgetUser, an
// eviction), or expired, when every token read with it has outlived
// CacheTTL too: a token never points at a user the cache has forgotten
// but trusts.
type userEntry struct {
	id    string
	user  atomic.Pointer[User] // the newest store read of the user
	stale atomic.Bool          // entries pointing here are not to be trusted
}

func newUserEntry(u *User) *userEntry {
	ue := &userEntry{id: u.ID}
	ue.user.Store(u)
	return ue
}

// valueHash is the SHA-256 of a cookie value.
type valueHash [sha256.Size]byte

// shard picks the value's shard of the decoded cache: a SHA-256 is as
// uniform as a hash of it would be.
func (h valueHash) shard() uint64 { return binary.LittleEndian.Uint64(h[:8]) }

// hashValue hashes a cookie value. Login-token cookies are about 200
// bytes: copied to the stack, they cost the warm path no allocation,
// where []byte(value) would allocate on every request.
func hashValue(value string) valueHash {
	var buf [512]byte
	if len(value) <= len(buf) {
		return sha256.Sum256(append(buf[:0], value...))
	}
	return sha256.Sum256([]byte(value))
}

// leaderGone is the outcome of a shared store read that ended because
// the request that started it ended (gone, or past its deadline). It says
// nothing about the store, so the others read again; a store that timed
// out on its own, though, would time out again for each of them, and its
// error is shared.
type leaderGone struct{ err error }

func (l *leaderGone) Error() string { return l.err.Error() }
func (l *leaderGone) Unwrap() error { return l.err }

// Validated is a successfully validated login token.
type Validated struct {
	// Token is the token's record. It is shared with the cache: read only.
	Token *LoginToken
	// User is the user, with memberships, as of the last store read. It is
	// shared with the cache: read only.
	User *User
	// Refresh is non-nil when the token was extended: set it on the
	// response.
	Refresh *http.Cookie
}

// NewManager returns a Manager over store that signs cookies with keys[0]
// and accepts cookies signed with any of keys, until SetKeys or ReloadKeys
// changes them.
func NewManager(store Store, keys []KeyPair, cfg ManagerConfig) (*Manager, error) {
	if store == nil {
		return nil, errors.New("session manager: no store")
	}
	if len(keys) == 0 {
		return nil, errors.New("session manager: no cookie keys")
	}
	m := &Manager{
		store:  store,
		ttl:    cfg.TTL,
		name:   cfg.CookieName,
		path:   cfg.CookiePath,
		secure: cfg.CookieSecure,
		site:   cfg.SameSite,
		cttl:   cfg.CacheTTL,
		now:    cfg.Now,
		log:    cfg.Logger,

		keysChanged: make(chan struct{}, 1),
	}
	switch {
	case m.ttl == 0:
		m.ttl = DefaultTokenTTL
	case m.ttl < time.Second:
		return nil, fmt.Errorf("session manager: token TTL %v is less than a second", m.ttl)
	}
	if m.name == "" {
		m.name = DefaultCookieName
	}
	if m.path == "" {
		m.path = "/"
	}
	if m.site == 0 {
		m.site = http.SameSiteLaxMode
	}
	if m.site == http.SameSiteNoneMode && !m.secure {
		return nil, errors.New("session manager: SameSite=None requires the Secure cookie attribute")
	}
	if m.cttl == 0 {
		m.cttl = DefaultCacheTTL
	}
	if m.now == nil {
		m.now = time.Now
	}
	if m.log == nil {
		m.log = zap.NewNop()
	}
	m.newCaches(maxCacheEntries)
	if err := (&http.Cookie{Name: m.name, Value: "x", Path: m.path}).Valid(); err != nil {
		return nil, fmt.Errorf("session manager: cookie name or path: %w", err)
	}
	if err := CheckCookieName(m.name, m.secure); err != nil {
		return nil, fmt.Errorf("session manager: %w", err)
	}
	if hasPrefixFold(m.name, hostPrefix) && m.path != "/" {
		return nil, fmt.Errorf("session manager: a %s cookie needs Path=/, not %q", hostPrefix, m.path)
	}
	kr, err := newKeyring(keys)
	if err != nil {
		return nil, fmt.Errorf("session manager: %w", err)
	}
	m.keys.Store(kr)
	if !m.secure {
		m.log.Warn("login-token cookie is sent without the Secure attribute; use this for plain-HTTP development only")
	}
	return m, nil
}

// newCaches gives m empty caches of n entries each.
func (m *Manager) newCaches(n int) {
	ttl := max(m.cttl, 0)
	m.cache = cache.New(cache.Options[string, *cacheEntry]{MaxEntries: n, TTL: ttl, Now: m.now,
		OnEvict: func(_ string, e *cacheEntry) { e.dead.Store(true) }})
	m.users = cache.New(cache.Options[string, *userEntry]{MaxEntries: n, TTL: ttl, Now: m.now,
		OnEvict: func(_ string, ue *userEntry) { ue.stale.Store(true) }})
	// No TTL: a lookup checks the entry found, and RunCleanup prunes.
	m.decoded = cache.New(cache.Options[valueHash, *cacheEntry]{MaxEntries: n, Now: m.now, Hash: valueHash.shard})
}

// The cookie name prefixes browsers enforce (RFC 6265bis, section 4.1.3):
// a "__Secure-" cookie is accepted only with Secure, a "__Host-" cookie
// only with Secure, Path=/ and no Domain, so that no other site under the
// domain, and no plain-HTTP page, can set or shadow it. Browsers match
// them regardless of case.
const (
	securePrefix = "__Secure-"
	hostPrefix   = "__Host-"
)

// CheckCookieName reports whether name can be the login-token cookie's
// name: an RFC 6265 token, and, with a "__Secure-" or "__Host-" prefix,
// secure, since a browser drops such a cookie without the Secure
// attribute. (The Manager's cookie has Path=/ by default and never a
// Domain, as "__Host-" needs.)
func CheckCookieName(name string, secure bool) error {
	if err := (&http.Cookie{Name: name, Value: "x"}).Valid(); err != nil || name == "" {
		return fmt.Errorf("cookie name %q: must be a token (letters, digits and !#$%%&'*+-.^_`|~)", name)
	}
	for _, p := range []string{hostPrefix, securePrefix} {
		if hasPrefixFold(name, p) && !secure {
			return fmt.Errorf("cookie name %q: browsers drop a %s cookie without the Secure attribute", name, p)
		}
	}
	return nil
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

// CookieName returns the login-token cookie's name.
func (m *Manager) CookieName() string { return m.name }

// Issue creates a login token for user (who must exist in the store) and
// returns the cookie to set and the stored record. Only SHA-256 of the
// token's secret is stored; the secret itself is only in the cookie.
func (m *Manager) Issue(ctx context.Context, user *User) (*http.Cookie, *LoginToken, error) {
	if user == nil || user.ID == "" {
		return nil, nil, errors.New("issue login token: no user")
	}
	var secret [secretBytes]byte
	if _, err := rand.Read(secret[:]); err != nil {
		return nil, nil, fmt.Errorf("issue login token: %w", err)
	}
	sum := sha256.Sum256(secret[:])
	now := m.now().UTC().Truncate(time.Millisecond)
	id, err := NewLoginTokenID(now)
	if err != nil {
		return nil, nil, fmt.Errorf("issue login token: %w", err)
	}
	tok := &LoginToken{
		ID:         id,
		UserID:     user.ID,
		SecretHash: sum[:],
		CreatedAt:  now,
		ExpiresAt:  now.Add(m.ttl),
	}
	c, err := m.cookie(tok.ID, secret[:], tok.ExpiresAt, now)
	if err != nil {
		return nil, nil, fmt.Errorf("issue login token: %w", err)
	}
	if err := m.store.CreateLoginToken(ctx, tok); err != nil {
		return nil, nil, fmt.Errorf("issue login token: store: %w", err)
	}
	m.issued.Add(1)
	return c, tok, nil
}

// Validate checks a login-token cookie value and returns the token and its
// user. It returns an error wrapping ErrTokenMalformed, ErrTokenUnknown or
// ErrTokenExpired when the value signs no one in, ErrUserDisabled when its
// user is disabled (seen at the store read, so within CacheTTL of the
// change), and any other error when the store failed.
//
// A token found expired is deleted. A token used after more than half of
// its lifetime is extended to a full lifetime, and Validated.Refresh is
// the cookie to send (signed with the first key pair). Of concurrent
// validations of one token, one extends it (with the cache off, ones that
// do not share a store read may each do so: harmless, only repeated). If
// extending fails for another reason than the token being gone, the token
// stays valid until its current expiry and a later use tries again.
func (m *Manager) Validate(ctx context.Context, value string) (*Validated, error) {
	if value == "" || len(value) > MaxCookieLen {
		return nil, fmt.Errorf("validate login token: %w", ErrTokenMalformed)
	}
	now := m.now()
	var key valueHash
	memo := m.cttl > 0
	if memo {
		// A value that validated against the token's trusted cache entry
		// needs no decoding and no secret check (see Manager).
		key = hashValue(value)
		if e := m.lookupValue(key, now); e != nil {
			m.cacheHits.Add(1)
			return m.validated(ctx, e, value, now)
		}
	}
	kr := m.keys.Load()
	rawID, secret, ok := kr.decode(m.name, value)
	if !ok {
		return nil, fmt.Errorf("validate login token: %w", ErrTokenMalformed)
	}
	id := string(rawID)
	sum := sha256.Sum256(secret[:])

	e := m.lookup(id, now)
	if e != nil {
		m.cacheHits.Add(1)
	} else {
		m.cacheMisses.Add(1)
		var err error
		if e, err = m.load(ctx, id); err != nil {
			return nil, fmt.Errorf("validate login token: %w", err)
		}
	}
	tok := e.tok.Load()
	if subtle.ConstantTimeCompare(tok.SecretHash, sum[:]) != 1 {
		return nil, fmt.Errorf("validate login token: %w", ErrTokenUnknown)
	}
	if e.ue.user.Load() == nil || !now.Before(tok.ExpiresAt) { // no user: load found it expired
		m.drop(tok.ID)
		if err := m.store.DeleteLoginToken(ctx, tok.ID); err != nil {
			// RunCleanup will get it; the answer is the same either way.
			m.log.Warn("delete expired login token", zap.String("token", tokenRef(tok.ID)), zap.Error(err))
		}
		return nil, fmt.Errorf("validate login token: %w", ErrTokenExpired)
	}
	if memo {
		m.rememberValue(key, e, kr)
	}
	return m.validated(ctx, e, value, now)
}

// validated answers for a value whose secret matched e's token, which has
// not expired: extended first if more than half of its lifetime is over.
func (m *Manager) validated(ctx context.Context, e *cacheEntry, value string, now time.Time) (*Validated, error) {
	tok := e.tok.Load()
	v := &Validated{Token: tok, User: e.ue.user.Load()}
	if tok.ExpiresAt.Sub(now) >= m.ttl/2 || !e.refreshing.CompareAndSwap(false, true) {
		return v, nil
	}
	if cur := e.tok.Load(); cur != tok {
		// Refreshed between our read and the flag: nothing left to do.
		e.refreshing.Store(false)
		v.Token = cur
		return v, nil
	}
	_, secret, ok := m.decode(value) // the new cookie needs the secret
	if !ok {                         // cannot happen: the value validated
		e.refreshing.Store(false)
		return v, nil
	}
	return m.refresh(ctx, e, v, secret[:], now)
}

// lookupValue returns the cache entry a cookie value validated against, if
// it is still the token's entry and trusted.
func (m *Manager) lookupValue(key valueHash, now time.Time) *cacheEntry {
	e, ok := m.decoded.Get(key)
	if !ok || e.dead.Load() || !m.trusted(e, now) {
		return nil
	}
	return e
}

// rememberValue records that the value with hash key, decoded with the
// keys kr, validated against e, if e is its token's cache entry and kr the
// current keys: SetKeys may have just forgotten every value, and one its
// keys no longer verify must not come back.
//
// Both are checked with the value's shard locked: SetKeys stores the keys
// before it clears the cache, and an entry is marked dead before its
// values are pruned, so neither can slip in between check and store.
func (m *Manager) rememberValue(key valueHash, e *cacheEntry, kr *keyring) {
	m.decoded.Update(key, func(old *cacheEntry, _ bool) (*cacheEntry, bool) {
		if e.dead.Load() || m.keys.Load() != kr {
			return old, false
		}
		return e, true
	})
}

// refresh extends e's token to a full lifetime; the caller holds
// e.refreshing.
func (m *Manager) refresh(ctx context.Context, e *cacheEntry, v *Validated, secret []byte, now time.Time) (*Validated, error) {
	tok := v.Token
	exp := now.UTC().Truncate(time.Millisecond).Add(m.ttl)
	c, err := m.cookie(tok.ID, secret, exp, now)
	if err == nil {
		err = m.store.ExtendLoginToken(ctx, tok.ID, exp)
	}
	switch {
	case errors.Is(err, ErrNotFound):
		m.drop(tok.ID)
		return nil, fmt.Errorf("validate login token: %w", ErrTokenUnknown)
	case err != nil:
		e.refreshing.Store(false)
		if ctx.Err() != nil {
			return v, nil // the client went away; the next use tries again
		}
		m.log.Warn("extend login token", zap.String("token", tokenRef(tok.ID)), zap.Error(err))
		return v, nil
	}
	m.refreshed.Add(1)
	nt := *tok
	nt.ExpiresAt = exp
	// The entry stays (and the values remembered against it): only its
	// token's expiry moved, and the token is not due again for half a
	// lifetime.
	e.tok.Store(&nt)
	e.refreshing.Store(false)
	v.Token = &nt
	v.Refresh = c
	return v, nil
}

// Revoke deletes the token in value from the store and the cache. A value
// that is not a valid cookie, or names no token, is not an error: logout
// must always be able to clear the cookie. An error means the store failed.
func (m *Manager) Revoke(ctx context.Context, value string) error {
	id, _, ok := m.decode(value)
	if !ok {
		return nil
	}
	sid := string(id)
	m.decoded.Delete(hashValue(value))
	// Store first, then cache: a concurrent store read that still saw the
	// token started before the gen bump in drop, so it is not cached.
	err := m.store.DeleteLoginToken(ctx, sid)
	m.drop(sid) // even if the store failed: this replica honours the logout
	if err != nil {
		return fmt.Errorf("revoke login token: %w", err)
	}
	m.revoked.Add(1)
	return nil
}

// ClearCookie returns a cookie that deletes the login-token cookie.
func (m *Manager) ClearCookie() *http.Cookie {
	return &http.Cookie{
		Name:     m.name,
		Value:    "",
		Path:     m.path,
		Expires:  time.Unix(0, 0),
		MaxAge:   -1,
		HttpOnly: true,
		Secure:   m.secure,
		SameSite: m.site,
	}
}

// ForgetUser drops the cached entries of the user, so that their next
// validation reads the user (and memberships) from the store. Call it after
// the user's groups changed. The entries are marked at once and removed
// from memory on their next use or by RunCleanup.
func (m *Manager) ForgetUser(userID string) {
	m.gen.Add(1)
	if ue, ok := m.users.Delete(userID); ok {
		ue.stale.Store(true)
	}
}

// RunCleanup deletes expired tokens from the store and prunes the cache,
// once at the start and then every interval (10 minutes if interval is not
// positive), until ctx is done.
func (m *Manager) RunCleanup(ctx context.Context, interval time.Duration) {
	if interval <= 0 {
		interval = 10 * time.Minute
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		m.cleanup(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (m *Manager) cleanup(ctx context.Context) {
	now := m.now()
	n, err := m.store.DeleteExpiredLoginTokens(ctx, now)
	if n > 0 {
		m.purged.Add(uint64(n))
	}
	switch {
	case err != nil && ctx.Err() == nil:
		m.log.Warn("delete expired login tokens", zap.Error(err))
	case n > 0:
		m.log.Info("deleted expired login tokens", zap.Int64("count", n))
	}
	if p := m.prune(now); p > 0 {
		m.log.Debug("pruned login-token cache", zap.Int("count", p), zap.Int("left", m.CacheLen()))
	}
}

// prune removes the cache entries that are no longer trusted, the cookie
// values remembered against them, and the expired user entries. Each
// shard is locked in turn, so validations elsewhere go on meanwhile.
func (m *Manager) prune(now time.Time) int {
	n := m.cache.DeleteFunc(func(_ string, e *cacheEntry) bool {
		if m.trusted(e, now) {
			return false
		}
		e.dead.Store(true)
		return true
	})
	m.decoded.DeleteFunc(func(_ valueHash, e *cacheEntry) bool { return e.dead.Load() || !m.trusted(e, now) })
	m.users.DeleteFunc(func(string, *userEntry) bool { return false }) // the expired only
	return n
}

// CacheLen returns the number of tokens held in the cache, including
// untrusted ones not yet pruned.
func (m *Manager) CacheLen() int { return m.cache.Len() }

// decode returns the id and secret in a cookie value, decoded with the
// current keys. id aliases a buffer of its own.
func (m *Manager) decode(value string) (id []byte, secret [secretBytes]byte, ok bool) {
	return m.keys.Load().decode(m.name, value)
}

// decode returns the id and secret in the value of the cookie name, if one
// of kr's pairs verifies it. id aliases a buffer of its own.
func (kr *keyring) decode(name, value string) (id []byte, secret [secretBytes]byte, ok bool) {
	if value == "" || len(value) > MaxCookieLen {
		return nil, secret, false
	}
	var p []byte
	if err := securecookie.DecodeMulti(name, value, &p, kr.codecs...); err != nil {
		return nil, secret, false
	}
	if len(p) != payloadLen || p[idLen] != '.' {
		return nil, secret, false
	}
	var raw [idBytes]byte
	if n, err := base64.RawURLEncoding.Decode(raw[:], p[:idLen]); err != nil || n != idBytes {
		return nil, secret, false
	}
	if n, err := base64.RawURLEncoding.Decode(secret[:], p[idLen+1:]); err != nil || n != secretBytes {
		return nil, secret, false
	}
	return p[:idLen], secret, true
}

// cookie returns the login-token cookie for id and secret, valid until exp.
func (m *Manager) cookie(id string, secret []byte, exp, now time.Time) (*http.Cookie, error) {
	p := make([]byte, 0, payloadLen)
	p = append(p, id...)
	p = append(p, '.')
	p = base64.RawURLEncoding.AppendEncode(p, secret)
	v, err := m.keys.Load().codecs[0].Encode(m.name, p)
	if err != nil {
		return nil, fmt.Errorf("encode cookie: %w", err)
	}
	return m.cookieFor(v, exp, now), nil
}

// Cookie returns the login-token cookie carrying an already encoded value
// that expires at exp: for sending again a login token issued earlier.
func (m *Manager) Cookie(value string, exp time.Time) *http.Cookie {
	return m.cookieFor(value, exp, m.now())
}

// CookieMaxAge is the Max-Age that Cookie(value, exp) would have now: a
// caller that formatted the cookie's line before can tell from it whether
// that line is still the one to send, without building the cookie.
func (m *Manager) CookieMaxAge(exp time.Time) int { return cookieMaxAge(exp, m.now()) }

func cookieMaxAge(exp, now time.Time) int {
	maxAge := int((exp.Sub(now) + time.Second - 1) / time.Second) // round up: never 0, which means "no Max-Age"
	return max(maxAge, 1)
}

func (m *Manager) cookieFor(value string, exp, now time.Time) *http.Cookie {
	return &http.Cookie{
		Name:     m.name,
		Value:    value,
		Path:     m.path,
		Expires:  exp.UTC(),
		MaxAge:   cookieMaxAge(exp, now),
		HttpOnly: true,
		Secure:   m.secure,
		SameSite: m.site,
	}
}

// trusted reports whether e may be used without asking the store.
func (m *Manager) trusted(e *cacheEntry, now time.Time) bool {
	return !e.ue.stale.Load() &&
		now.UnixNano()-e.checkedAt < int64(m.cttl) &&
		now.Before(e.tok.Load().ExpiresAt)
}

// lookup returns the cached entry for id if it is trusted, else nil.
func (m *Manager) lookup(id string, now time.Time) *cacheEntry {
	if m.cttl <= 0 {
		return nil
	}
	e, ok := m.cache.Get(id)
	if !ok || !m.trusted(e, now) {
		return nil
	}
	return e
}

// load reads the token, with its user, from the store, caching the result.
// Concurrent loads of one id share one store read (singleflight.DoChan),
// which runs under the context of the request that started it; each
// caller waits only as long as its own context allows.
func (m *Manager) load(ctx context.Context, id string) (*cacheEntry, error) {
	for {
		ch := m.flight.DoChan(id, func() (any, error) {
			// A read that finished between our cache miss and now has
			// cached the token (it caches before it leaves the flight):
			// use that, so that its refresh, if any, is not done twice.
			if e := m.lookup(id, m.now()); e != nil {
				return e, nil
			}
			e, err := m.loadUncached(ctx, id)
			if err != nil && ctx.Err() != nil {
				err = &leaderGone{err}
			}
			return e, err
		})
		var r singleflight.Result
		select {
		case r = <-ch:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		var gone *leaderGone
		if errors.As(r.Err, &gone) {
			if ctx.Err() == nil {
				continue // the leader's request ended, ours did not: read again
			}
			return nil, gone.err
		}
		e, _ := r.Val.(*cacheEntry)
		return e, r.Err
	}
}

func (m *Manager) loadUncached(ctx context.Context, id string) (*cacheEntry, error) {
	gen := m.gen.Load()
	// One store call for token and user: on a database server, one round
	// trip per cold cookie.
	st, user, err := m.store.GetLoginTokenWithUser(ctx, id)
	switch {
	case errors.Is(err, ErrNotFound):
		return nil, ErrTokenUnknown
	case err != nil:
		return nil, fmt.Errorf("read login token: %w", err)
	}
	tok := *st // ours to share and never modify
	tok.ID = id
	now := m.now()
	if !now.Before(tok.ExpiresAt) {
		// Not cached; Validate deletes it if the secret matches.
		e := newCacheEntry(&tok, &userEntry{id: tok.UserID}, 0)
		e.dead.Store(true)
		return e, nil
	}
	if user.Disabled {
		// Disabling deletes the user's tokens; one that escaped (issued by
		// a store without that guarantee, or restored from a backup) still
		// signs no one in. Not cached: enabling takes effect at once.
		return nil, ErrUserDisabled
	}
	tok.UserID = user.ID // share the string
	checkedAt := now.UnixNano()
	if m.cttl <= 0 {
		return m.uncached(&tok, user, checkedAt), nil
	}
	// gen is checked with the user's, then the token's, shard locked:
	// Revoke, ForgetUser and a change notification bump gen before they
	// take those locks to drop anything, so what they drop is either not
	// cached here or dropped after.
	var ue *userEntry
	m.users.Update(user.ID, func(old *userEntry, ok bool) (*userEntry, bool) {
		if m.gen.Load() != gen {
			return old, false
		}
		if ok && !old.stale.Load() {
			old.user.Store(user) // the newest read, for every token of the user
			ue = old
		} else {
			ue = newUserEntry(user)
		}
		return ue, true // stored again: lives CacheTTL from this read
	})
	if ue == nil {
		// Revoke or ForgetUser ran during the read: what we read may be
		// what they dropped. Use it for this request only.
		return m.uncached(&tok, user, checkedAt), nil
	}
	e := newCacheEntry(&tok, ue, checkedAt)
	cached := false
	m.cache.Update(id, func(old *cacheEntry, ok bool) (*cacheEntry, bool) {
		if m.gen.Load() != gen {
			return old, false
		}
		if ok {
			old.dead.Store(true)
		}
		cached = true
		return e, true
	})
	if !cached {
		e.dead.Store(true)
	}
	return e, nil
}

// uncached returns an entry for one request only, outside the cache.
func (m *Manager) uncached(tok *LoginToken, user *User, checkedAt int64) *cacheEntry {
	e := newCacheEntry(tok, newUserEntry(user), checkedAt)
	e.dead.Store(true)
	return e
}

// drop removes id from the cache, and keeps store reads already under way
// from caching it again.
func (m *Manager) drop(id string) {
	m.gen.Add(1)
	if e, ok := m.cache.Delete(id); ok {
		e.dead.Store(true)
	}
}

// tokenRef is a short, non-reversible name for a token id, for logs.
func tokenRef(id string) string {
	h := sha256.Sum256([]byte(id))
	return hex.EncodeToString(h[:4])
}
