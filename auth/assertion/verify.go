package assertion

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Limits on what a verifier reads.
const (
	// MaxAssertionLen bounds an assertion header: a user with some
	// hundreds of groups fits, and a verifier never parses more.
	MaxAssertionLen   = 64 << 10
	maxJWKSLen        = 64 << 10
	defaultMinRefetch = 10 * time.Second
)

// KeySet is a parsed JWKS: verification keys by kid.
type KeySet map[string]*ecdsa.PublicKey

// ParseJWKS parses a JWKS as Issuer.JWKS serves it. Keys that are not
// P-256 ES256 keys with a kid are skipped; a set with none is an error.
func ParseJWKS(b []byte) (KeySet, error) {
	if len(b) > maxJWKSLen {
		return nil, fmt.Errorf("assertion JWKS: larger than %d bytes", maxJWKSLen)
	}
	var doc struct {
		Keys []publicJWK `json:"keys"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("assertion JWKS: %w", err)
	}
	ks := KeySet{}
	for _, k := range doc.Keys {
		if k.Kty != "EC" || k.Crv != "P-256" || k.Kid == "" || (k.Alg != "" && k.Alg != Algorithm) {
			continue
		}
		x, errX := base64.RawURLEncoding.DecodeString(k.X)
		y, errY := base64.RawURLEncoding.DecodeString(k.Y)
		if errX != nil || errY != nil || len(x) != 32 || len(y) != 32 {
			continue
		}
		pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, x...), y...))
		if err != nil {
			continue
		}
		ks[k.Kid] = pub
	}
	if len(ks) == 0 {
		return nil, errors.New("assertion JWKS: no usable ES256 P-256 key")
	}
	return ks, nil
}

// Verify checks token against keys and returns its claims: the signature
// (ES256 only, by the kid in its header), iss, aud, a present exp not past
// (with leeway for clock skew), iat, sub and jti.
func Verify(keys KeySet, token, issuer, audience string, now time.Time, leeway time.Duration) (*Claims, error) {
	if len(token) > MaxAssertionLen {
		return nil, fmt.Errorf("assertion longer than %d bytes", MaxAssertionLen)
	}
	var c Claims
	_, err := jwt.ParseWithClaims(token, &c, func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		k, ok := keys[kid]
		if !ok {
			return nil, fmt.Errorf("%w: %q", errUnknownKid, kid)
		}
		return k, nil
	},
		jwt.WithValidMethods([]string{Algorithm}),
		jwt.WithIssuer(issuer),
		jwt.WithAudience(audience),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(leeway),
		jwt.WithTimeFunc(func() time.Time { return now }),
	)
	if err != nil {
		return nil, fmt.Errorf("assertion: %w", err)
	}
	switch {
	case c.Subject == "":
		return nil, errors.New("assertion: no sub")
	case c.ID == "":
		return nil, errors.New("assertion: no jti")
	case c.IssuedAt == nil:
		return nil, errors.New("assertion: no iat")
	case c.ExpiresAt.Sub(c.IssuedAt.Time) > MaxLifetime:
		return nil, fmt.Errorf("assertion: lives longer than %s", MaxLifetime)
	}
	return &c, nil
}

var errUnknownKid = errors.New("unknown kid")

// Verifier verifies assertions against the JWKS at a URL, fetched on
// first use and again when an assertion names a kid it does not know (a
// rotation), at most every MinRefetch. It is what an upstream written in Go
// needs; see the README for other languages.
type Verifier struct {
	// JWKSURL is <public URL><GATEHOUSE_PREFIX>jwks.json.
	JWKSURL string
	// Issuer and Audience are GATEHOUSE_PUBLIC_URL and
	// GATEHOUSE_ASSERTION_AUDIENCE.
	Issuer, Audience string
	// Client fetches the JWKS; nil: a client with a 10 s timeout.
	Client *http.Client
	// Leeway tolerates clock differences; 0 means 30 s.
	Leeway time.Duration
	// MinRefetch is the least time between two fetches prompted by an
	// unknown kid, so that forged kids cannot make the verifier hammer
	// Gatehouse; 0 means 10 s.
	MinRefetch time.Duration

	mu      sync.Mutex
	keys    KeySet
	fetched time.Time
}

// Verify checks the assertion token and returns its claims.
func (v *Verifier) Verify(ctx context.Context, token string) (*Claims, error) {
	leeway := v.Leeway
	if leeway == 0 {
		leeway = 30 * time.Second
	}
	keys, err := v.keySet(ctx, false)
	if err != nil {
		return nil, err
	}
	c, err := Verify(keys, token, v.Issuer, v.Audience, time.Now(), leeway)
	if errors.Is(err, errUnknownKid) {
		if keys, err = v.keySet(ctx, true); err != nil {
			return nil, err
		}
		c, err = Verify(keys, token, v.Issuer, v.Audience, time.Now(), leeway)
	}
	return c, err
}

func (v *Verifier) keySet(ctx context.Context, refetch bool) (KeySet, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	minRefetch := v.MinRefetch
	if minRefetch == 0 {
		minRefetch = defaultMinRefetch
	}
	if v.keys != nil && (!refetch || time.Since(v.fetched) < minRefetch) {
		return v.keys, nil
	}
	client := v.Client
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, v.JWKSURL, nil)
	if err != nil {
		return nil, fmt.Errorf("assertion JWKS: %w", err)
	}
	res, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetch assertion JWKS: %w", err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetch assertion JWKS: status %d", res.StatusCode)
	}
	b, err := io.ReadAll(io.LimitReader(res.Body, maxJWKSLen+1))
	if err != nil {
		return nil, fmt.Errorf("fetch assertion JWKS: %w", err)
	}
	keys, err := ParseJWKS(b)
	if err != nil {
		return nil, err
	}
	v.keys, v.fetched = keys, time.Now()
	return keys, nil
}
