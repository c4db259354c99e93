package ims

import (
	"context"
	"crypto/rsa"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// VerifierConfig configures a Verifier.
type VerifierConfig struct {
	// Keys supplies the signing keys. Required.
	Keys *KeySet
	// Cluster is the expected "as" claim, e.g. "ims-na1". Required.
	Cluster string
	// ClientIDs is the allow-list of client ids. Empty: every token is
	// refused with ErrClientNotAllowed (bearer sign-in is off).
	ClientIDs []string
	// ClockSkew is the leeway on expiry and start of validity. Zero: 1 minute.
	ClockSkew time.Duration
	// Now is the clock. Nil: time.Now.
	Now func() time.Time
}

const (
	defaultClockSkew = time.Minute
	// maxTokenLen bounds the work spent on a token: IMS access tokens are
	// about 1.5 KiB.
	maxTokenLen = 8 << 10
)

// Verifier checks IMS access tokens locally: RS256 signature against the
// KeySet, then type, cluster, client id, expiry and user id. It is safe for
// concurrent use.
type Verifier struct {
	keys    *KeySet
	cluster string
	clients map[string]struct{}
	skew    time.Duration
	now     func() time.Time
	parser  *jwt.Parser
}

// NewVerifier checks cfg and returns a Verifier.
func NewVerifier(cfg VerifierConfig) (*Verifier, error) {
	if cfg.Keys == nil {
		return nil, errors.New("ims verifier: Keys is required")
	}
	if strings.TrimSpace(cfg.Cluster) == "" {
		return nil, errors.New("ims verifier: Cluster is required (the expected \"as\" claim, e.g. ims-na1)")
	}
	if cfg.ClockSkew < 0 {
		return nil, fmt.Errorf("ims verifier: ClockSkew %s: must not be negative", cfg.ClockSkew)
	}
	v := &Verifier{
		keys:    cfg.Keys,
		cluster: cfg.Cluster,
		clients: make(map[string]struct{}, len(cfg.ClientIDs)),
		skew:    cfg.ClockSkew,
		now:     cfg.Now,
		// No WithJSONNumber: the claims decode into typed fields (Millis
		// reads its digits itself, exp and nbf are int64), so it would
		// change nothing but cost a json.Decoder per token.
		parser: jwt.NewParser(
			jwt.WithValidMethods([]string{jwt.SigningMethodRS256.Alg()}),
			jwt.WithoutClaimsValidation(),
		),
	}
	for _, id := range cfg.ClientIDs {
		if id != "" {
			v.clients[id] = struct{}{}
		}
	}
	if v.skew == 0 {
		v.skew = defaultClockSkew
	}
	if v.now == nil {
		v.now = time.Now
	}
	return v, nil
}

// Verify checks raw, a compact JWT, and returns its claims. Its errors wrap
// one of the package's sentinels, in the order checked: ErrMalformed (not a
// JWT), ErrAlgorithm, ErrUnknownKey or ErrKeysUnavailable, ErrBadSignature,
// ErrWrongType, ErrWrongCluster, ErrClientNotAllowed, ErrNoExpiry,
// ErrExpired, ErrNotYetValid, and ErrMalformed again for a missing user_id.
// The token itself never appears in an error.
func (v *Verifier) Verify(ctx context.Context, raw string) (*Claims, error) {
	switch {
	case raw == "":
		return nil, fmt.Errorf("ims token: empty: %w", ErrMalformed)
	case len(raw) > maxTokenLen:
		return nil, fmt.Errorf("ims token: %d bytes, more than %d: %w", len(raw), maxTokenLen, ErrMalformed)
	case strings.Count(raw, ".") != 2:
		return nil, fmt.Errorf("ims token: not three dot-separated parts: %w", ErrMalformed)
	}

	c := new(jwtClaims)
	var keyErr error
	tok, err := v.parser.ParseWithClaims(raw, c, func(t *jwt.Token) (any, error) {
		key, err := v.key(ctx, t)
		keyErr = err
		return key, err
	})
	if err != nil {
		return nil, parseError(tok, err, keyErr)
	}
	claims := (*Claims)(c)
	if err := v.check(claims); err != nil {
		return nil, err
	}
	return claims, nil
}

// key is the Keyfunc: it reads kid and x5u from the header itself, so the
// library never resolves x5u.
func (v *Verifier) key(ctx context.Context, t *jwt.Token) (*rsa.PublicKey, error) {
	// WithValidMethods already refused other algorithms; this guards the
	// key against any future change there.
	if t.Method != jwt.SigningMethodRS256 {
		return nil, fmt.Errorf("alg %q: %w", clip(t.Method.Alg()), ErrAlgorithm)
	}
	kid, ok := headerString(t.Header, "kid")
	if !ok {
		return nil, fmt.Errorf("header kid is not a string: %w", ErrMalformed)
	}
	x5u, ok := headerString(t.Header, "x5u")
	if !ok {
		return nil, fmt.Errorf("header x5u is not a string: %w", ErrMalformed)
	}
	return v.keys.Key(ctx, kid, x5u)
}

// headerString reads an optional string header; ok is false when the
// header is present with another type.
func headerString(h map[string]any, name string) (s string, ok bool) {
	x, present := h[name]
	if !present {
		return "", true
	}
	s, ok = x.(string)
	return s, ok
}

// parseError maps the parser's error to the package's sentinels.
func parseError(tok *jwt.Token, err, keyErr error) error {
	switch {
	case keyErr != nil:
		// Our own error from the Keyfunc already says what went wrong.
		return fmt.Errorf("ims token: %w", keyErr)
	case errors.Is(err, jwt.ErrTokenMalformed):
		return fmt.Errorf("ims token: %w: %w", ErrMalformed, err)
	case tok == nil || tok.Method == nil:
		// The alg header is missing or names no algorithm the library knows.
		return fmt.Errorf("ims token: %w: %w", ErrAlgorithm, err)
	case tok.Method != jwt.SigningMethodRS256:
		return fmt.Errorf("ims token: alg %q: %w", clip(tok.Method.Alg()), ErrAlgorithm)
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return fmt.Errorf("ims token: %w", ErrBadSignature)
	}
	return fmt.Errorf("ims token: %w: %w", ErrMalformed, err)
}

// check applies the claim checks, in the documented order.
func (v *Verifier) check(c *Claims) error {
	if c.Type != TypeAccessToken {
		return fmt.Errorf("ims token: type %q: %w", clip(c.Type), ErrWrongType)
	}
	if c.Cluster != v.cluster {
		return fmt.Errorf("ims token: as %q, want %q: %w", clip(c.Cluster), v.cluster, ErrWrongCluster)
	}
	if _, ok := v.clients[c.ClientID]; !ok {
		return fmt.Errorf("ims token: client_id %q: %w", clip(c.ClientID), ErrClientNotAllowed)
	}
	exp := c.ExpiresAt()
	if exp.IsZero() {
		return fmt.Errorf("ims token: %w", ErrNoExpiry)
	}
	now := v.now()
	if now.After(exp.Add(v.skew)) {
		return fmt.Errorf("ims token: expired at %s: %w", exp.UTC().Format(time.RFC3339), ErrExpired)
	}
	if from := c.ValidFrom(); !from.IsZero() && now.Before(from.Add(-v.skew)) {
		return fmt.Errorf("ims token: valid from %s: %w", from.UTC().Format(time.RFC3339), ErrNotYetValid)
	}
	if c.UserID == "" {
		return fmt.Errorf("ims token: no user_id: %w", ErrMalformed)
	}
	return nil
}

// jwtClaims is Claims as the JWT library wants it. Only the decoding is
// used: claims validation is off and Verifier.check does it.
type jwtClaims Claims

func (c *jwtClaims) GetExpirationTime() (*jwt.NumericDate, error) {
	if t := (*Claims)(c).ExpiresAt(); !t.IsZero() {
		return jwt.NewNumericDate(t), nil
	}
	return nil, nil
}

func (c *jwtClaims) GetNotBefore() (*jwt.NumericDate, error) {
	if t := (*Claims)(c).ValidFrom(); !t.IsZero() {
		return jwt.NewNumericDate(t), nil
	}
	return nil, nil
}

func (c *jwtClaims) GetIssuedAt() (*jwt.NumericDate, error) {
	if c.CreatedAt > 0 {
		return jwt.NewNumericDate(c.CreatedAt.Time()), nil
	}
	return nil, nil
}

func (c *jwtClaims) GetIssuer() (string, error)             { return "", nil }
func (c *jwtClaims) GetSubject() (string, error)            { return c.UserID, nil }
func (c *jwtClaims) GetAudience() (jwt.ClaimStrings, error) { return nil, nil }
