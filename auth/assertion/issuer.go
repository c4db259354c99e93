package assertion

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"go.uber.org/zap"

	"github.com/gatehouse-proxy/gatehouse/auth"
	"github.com/gatehouse-proxy/gatehouse/session"
)

// Header is the request header that carries the assertion to the
// upstream (and forward-auth's answer to the front proxy).
const Header = "X-Gatehouse-Assertion"

// Algorithm is the one signing algorithm: ECDSA P-256 with SHA-256.
const Algorithm = "ES256"

// Lifetimes of an assertion.
const (
	DefaultLifetime = 2 * time.Minute
	// MaxLifetime bounds the lifetime: an assertion is a bearer
	// credential for the upstream, and one that leaked (a log, a
	// misbehaving upstream) must be useless soon.
	MaxLifetime = 5 * time.Minute
	// MinLifetime keeps the cache useful and clock skew survivable.
	MinLifetime = 10 * time.Second
)

// defaultMaxCached bounds the per-user cache; see Config.MaxCached.
const defaultMaxCached = 10_000

// jwksMaxAge is how long upstreams may cache the JWKS. Short, because a
// rotation signs with the new key at once: an upstream that meets an
// unknown kid should fetch the set again, and one that does not still
// learns the new key within this.
const jwksMaxAge = 60

// Claims are an assertion's claims: who the user is (sub, email, groups
// as an array, so that no separator can be smuggled into a group name),
// who says so (iss) and for whom (aud), and when it expires.
type Claims struct {
	Email  string   `json:"email"`
	Groups []string `json:"groups"`
	jwt.RegisteredClaims
}

// Config configures an Issuer.
type Config struct {
	// Issuer is the iss claim: Gatehouse's public URL. Required.
	Issuer string
	// Audience is the aud claim: the upstream the assertions are for.
	// Required.
	Audience string
	// Lifetime is from iat to exp. Default DefaultLifetime; at most
	// MaxLifetime.
	Lifetime time.Duration
	// Store holds the keys, for Reload. Required for Reload and RunReload.
	Store session.Store
	// MaxCached bounds how many users' assertions are cached; default
	// 10 000 (about 1 KB each: the token and the groups it was signed
	// for). When full, the entries due for a refresh go, and if that is
	// not enough, all of them.
	MaxCached int
	// Logger receives signing failures and key changes. Nil: no logs.
	Logger *zap.Logger
	// Now is the clock; nil is time.Now. For tests.
	Now func() time.Time
}

// Issuer signs assertions and serves their verification keys. It is safe
// for concurrent use.
type Issuer struct {
	cfg  Config
	ring atomic.Pointer[ring]
	wake chan struct{}

	mu    sync.RWMutex
	cache map[string]*cached // by user id
}

// ring is one set of keys, ready to use: the first signs, all are in the
// JWKS. Never modified once made, so that a rotation swaps it whole.
type ring struct {
	keys []Key
	jwks []byte
}

// cached is a signed assertion, kept while more than half its lifetime
// remains and the identity and keys it was signed for are current.
type cached struct {
	ring    *ring
	email   string
	groups  []string
	token   string
	refresh time.Time
}

// New returns an Issuer signing with keys[0] (keys as Load returns them).
func New(cfg Config, keys []Key) (*Issuer, error) {
	switch {
	case cfg.Issuer == "":
		return nil, errors.New("assertion: Issuer is required")
	case cfg.Audience == "":
		return nil, errors.New("assertion: Audience is required")
	case cfg.Lifetime == 0:
		cfg.Lifetime = DefaultLifetime
	case cfg.Lifetime < MinLifetime || cfg.Lifetime > MaxLifetime:
		return nil, fmt.Errorf("assertion: Lifetime %s: want between %s and %s", cfg.Lifetime, MinLifetime, MaxLifetime)
	}
	if cfg.MaxCached <= 0 {
		cfg.MaxCached = defaultMaxCached
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	is := &Issuer{cfg: cfg, wake: make(chan struct{}, 1), cache: make(map[string]*cached)}
	if _, err := is.SetKeys(keys); err != nil {
		return nil, err
	}
	return is, nil
}

// Lifetime is the lifetime of the assertions signed.
func (is *Issuer) Lifetime() time.Duration { return is.cfg.Lifetime }

// KeyIDs are the ids of the keys in use, the signing key first.
func (is *Issuer) KeyIDs() []string {
	r := is.ring.Load()
	ids := make([]string, len(r.keys))
	for i, k := range r.keys {
		ids[i] = k.ID
	}
	return ids
}

// SetKeys makes keys the keys from now on: keys[0] signs, all are in the
// JWKS. The same keys in the same order change nothing. Cached assertions
// signed with other keys are not used again.
func (is *Issuer) SetKeys(keys []Key) (changed bool, err error) {
	if len(keys) == 0 {
		return false, errors.New("assertion: no keys")
	}
	if cur := is.ring.Load(); cur != nil && sameKeys(cur.keys, keys) {
		return false, nil
	}
	doc := struct {
		Keys []publicJWK `json:"keys"`
	}{Keys: make([]publicJWK, len(keys))}
	for i, k := range keys {
		x, y, err := coordinates(&k.Private.PublicKey)
		if err != nil {
			return false, err
		}
		doc.Keys[i] = publicJWK{Kty: "EC", Crv: "P-256", X: x, Y: y, Kid: k.ID, Alg: Algorithm, Use: "sig"}
	}
	jwks, err := json.Marshal(doc)
	if err != nil {
		return false, fmt.Errorf("assertion: encode JWKS: %w", err)
	}
	is.ring.Store(&ring{keys: slices.Clone(keys), jwks: jwks})
	return true, nil
}

// Assertion returns the signed assertion for id, from the cache while
// more than half of its lifetime remains, so that most requests pay a map
// lookup instead of a signature. A new one is signed when the cached one
// is older, the keys changed, or the user's email or groups did. On a
// signing failure (crypto/rand failing) it logs and returns "", and the
// request goes without: an upstream that relies on the assertion refuses
// it, which is the safe side.
func (is *Issuer) Assertion(id *auth.Identity) string {
	now := is.cfg.Now()
	r := is.ring.Load()
	is.mu.RLock()
	c := is.cache[id.UserID]
	is.mu.RUnlock()
	if c != nil && c.ring == r && now.Before(c.refresh) && c.email == id.Email && slices.Equal(c.groups, id.Groups) {
		return c.token
	}
	tok, refresh, err := is.sign(r, id, now)
	if err != nil {
		is.cfg.Logger.Error("cannot sign the identity assertion; forwarding without it", zap.Error(err))
		return ""
	}
	c = &cached{ring: r, email: id.Email, groups: slices.Clone(id.Groups), token: tok, refresh: refresh}
	is.mu.Lock()
	if len(is.cache) >= is.cfg.MaxCached {
		// Rare: as many users as the bound since the last pruning. Those
		// not seen for half a lifetime are of no use any more.
		for uid, e := range is.cache {
			if !now.Before(e.refresh) {
				delete(is.cache, uid)
			}
		}
		if len(is.cache) >= is.cfg.MaxCached {
			clear(is.cache)
		}
	}
	is.cache[id.UserID] = c
	is.mu.Unlock()
	return tok
}

// Sign returns a new assertion for id, signed now, bypassing the cache.
func (is *Issuer) Sign(id *auth.Identity) (string, error) {
	tok, _, err := is.sign(is.ring.Load(), id, is.cfg.Now())
	return tok, err
}

func (is *Issuer) sign(r *ring, id *auth.Identity, now time.Time) (token string, refresh time.Time, err error) {
	var nonce [16]byte
	if _, err := rand.Read(nonce[:]); err != nil {
		return "", time.Time{}, fmt.Errorf("assertion jti: %w", err)
	}
	groups := id.Groups
	if groups == nil {
		groups = []string{} // [] rather than null: "no groups" is an answer
	}
	iat := now.Truncate(time.Second) // what the claim can say
	claims := Claims{
		Email:  id.Email,
		Groups: groups,
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    is.cfg.Issuer,
			Subject:   id.UserID,
			Audience:  jwt.ClaimStrings{is.cfg.Audience},
			IssuedAt:  jwt.NewNumericDate(iat),
			ExpiresAt: jwt.NewNumericDate(iat.Add(is.cfg.Lifetime)),
			ID:        base64.RawURLEncoding.EncodeToString(nonce[:]),
		},
	}
	t := jwt.NewWithClaims(jwt.SigningMethodES256, claims)
	t.Header["kid"] = r.keys[0].ID
	token, err = t.SignedString(r.keys[0].Private)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("sign assertion: %w", err)
	}
	return token, iat.Add(is.cfg.Lifetime / 2), nil
}

// JWKS serves the verification keys, current and previous, as a JSON Web
// Key Set. It is public (verification keys are not secrets) and may be
// cached briefly.
func (is *Issuer) JWKS() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body := is.ring.Load().jwks
		h := w.Header()
		h.Set("Content-Type", "application/jwk-set+json")
		h.Set("Cache-Control", fmt.Sprintf("public, max-age=%d", jwksMaxAge))
		w.WriteHeader(http.StatusOK)
		if r.Method != http.MethodHead {
			_, _ = w.Write(body)
		}
	})
}

// Reload reads the keys kept in the store and makes them the Issuer's, as
// SetKeys does. A store that fails or holds keys that do not parse is an
// error, and the current keys stay.
func (is *Issuer) Reload(ctx context.Context) (changed bool, err error) {
	if is.cfg.Store == nil {
		return false, errors.New("assertion: no Store to reload from")
	}
	keys, err := Stored(ctx, is.cfg.Store)
	if err != nil {
		return false, err
	}
	changed, err = is.SetKeys(keys)
	if changed {
		ids := make([]string, len(keys))
		for i, k := range keys {
			ids[i] = k.ID
		}
		is.cfg.Logger.Info("assertion keys changed in the store; using them now",
			zap.String("signing", ids[0]), zap.Strings("kids", ids))
	}
	return changed, err
}

// RunReload calls Reload every interval (session.DefaultKeyReloadInterval
// if not positive) until ctx is done, and at once when Changed reports
// that the keys changed, so that `gatehouse keys rotate` and `drop-old` reach this
// replica without a restart. A failing read is logged once until it
// recovers; the current keys stay meanwhile.
func (is *Issuer) RunReload(ctx context.Context, interval time.Duration) {
	session.RunReload(ctx, interval, is.wake, func(ctx context.Context) error {
		_, err := is.Reload(ctx)
		return err
	}, is.cfg.Logger, "assertion keys")
}

// Changed applies a change notified by the store: a change of the stored
// assertion keys, ChangeAll, or a kind this Issuer does not know makes
// RunReload read the keys now.
func (is *Issuer) Changed(c session.Change) {
	switch c.Kind {
	case session.ChangeToken, session.ChangeUser, session.ChangeUserTokens, session.ChangeLost:
		return
	case session.ChangeSetting:
		if c.ID != KeysSetting {
			return
		}
	}
	select {
	case is.wake <- struct{}{}:
	default: // a wake-up already pending covers this one
	}
}
