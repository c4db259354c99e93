package ims

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
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
// JWT, or a header that is not JSON), ErrAlgorithm, ErrUnknownKey or
// ErrKeysUnavailable, ErrBadSignature, ErrMalformed (claims that are not a
// JSON object of the expected types), ErrWrongType, ErrWrongCluster,
// ErrClientNotAllowed, ErrNoExpiry, ErrExpired, ErrNotYetValid, and
// ErrMalformed again for a missing user_id. The token itself never appears
// in an error.
//
// The claims are decoded only once the signature holds: a forged token
// costs the signature check and nothing more. The signature is checked
// by crypto/rsa; the JSON
// is decoded with go-json-experiment/json, which
// refuses duplicate and case-mismatched member names and is three times
// faster than encoding/json on an IMS token.
func (v *Verifier) Verify(ctx context.Context, raw string) (*Claims, error) {
	switch {
	case raw == "":
		return nil, fmt.Errorf("ims token: empty: %w", ErrMalformed)
	case len(raw) > maxTokenLen:
		return nil, fmt.Errorf("ims token: %d bytes, more than %d: %w", len(raw), maxTokenLen, ErrMalformed)
	case strings.Count(raw, ".") != 2:
		return nil, fmt.Errorf("ims token: not three dot-separated parts: %w", ErrMalformed)
	}
	headerPart, rest, _ := strings.Cut(raw, ".")
	claimsPart, sigPart, _ := strings.Cut(rest, ".")

	var h header
	if err := decodePart(headerPart, &h); err != nil {
		return nil, fmt.Errorf("ims token: header: %w: %w", ErrMalformed, err)
	}
	if h.Alg != jwt.SigningMethodRS256.Alg() {
		return nil, fmt.Errorf("ims token: alg %q: %w", clip(h.Alg), ErrAlgorithm)
	}
	if h.Crit != nil {
		// RFC 7515 §4.1.11: extensions a recipient does not understand
		// make the token invalid, and this verifier understands none.
		return nil, fmt.Errorf("ims token: header crit: no extension is supported: %w", ErrMalformed)
	}
	if err := v.keys.verify(ctx, h.Kid, h.X5U, raw[:len(headerPart)+1+len(claimsPart)], sigPart); err != nil {
		return nil, fmt.Errorf("ims token: %w", err)
	}

	payload, err := base64.RawURLEncoding.DecodeString(claimsPart)
	if err != nil {
		return nil, fmt.Errorf("ims token: claims: %w: not base64url", ErrMalformed)
	}
	claims, err := DecodeClaims(payload)
	if err != nil {
		return nil, fmt.Errorf("ims token: %w", err)
	}
	if err := v.check(claims); err != nil {
		return nil, err
	}
	return claims, nil
}

// header is the JOSE header of an IMS token. A member of another type
// than these (a numeric kid, say) makes the token malformed.
type header struct {
	Alg  string         `json:"alg"`
	Kid  string         `json:"kid"`
	X5U  string         `json:"x5u"`
	Crit jsontext.Value `json:"crit"`
}

// decodePart decodes one base64url part of a compact JWT, a JSON object,
// into v.
func decodePart(part string, v any) error {
	b, err := base64.RawURLEncoding.DecodeString(part)
	if err != nil {
		return errors.New("not base64url")
	}
	// A JSON null would decode into zero values without an error.
	if t := bytes.TrimLeft(b, " \t\r\n"); len(t) == 0 || t[0] != '{' {
		return errors.New("not a JSON object")
	}
	if err := json.Unmarshal(b, v); err != nil {
		// The error names the member and the type, not the token's content.
		return err
	}
	return nil
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
