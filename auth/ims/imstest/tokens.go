package imstest

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"strconv"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/gatehouse-proxy/gatehouse/auth/ims"
)

// signingKey is one published key with its self-signed certificate.
type signingKey struct {
	kid     string
	x5u     string // kid + ".cer", the certificate's file name
	priv    *rsa.PrivateKey
	certPEM []byte
}

func newSigningKey(kid string, now time.Time) (*signingKey, error) {
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: kid, Organization: []string{"Gatehouse IMS emulator"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(10, 0, 0),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	if err != nil {
		return nil, err
	}
	return &signingKey{
		kid:     kid,
		x5u:     kid + ".cer",
		priv:    priv,
		certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
	}, nil
}

// publishedKeys is a snapshot of the keys, oldest first.
func (e *Emulator) publishedKeys() []*signingKey {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return append([]*signingKey(nil), e.keys...)
}

// keyFor finds a published key by kid, else by x5u file name.
func (e *Emulator) keyFor(kid, x5u string) *signingKey {
	e.mu.RLock()
	defer e.mu.RUnlock()
	if kid != "" {
		for _, k := range e.keys {
			if k.kid == kid {
				return k
			}
		}
	}
	if x5u != "" {
		for _, k := range e.keys {
			if k.x5u == x5u {
				return k
			}
		}
	}
	return nil
}

// tokenHeader is the JOSE header of an IMS access token, in IMS's order.
type tokenHeader struct {
	Alg string `json:"alg"`
	X5U string `json:"x5u,omitempty"`
	KID string `json:"kid,omitempty"`
	ITT string `json:"itt,omitempty"`
}

// MintToken signs a token for a known user with the current key and
// returns it with its claims. It fails with ErrUnknownUser for an unknown
// user, and when UserID or ClientID is empty or Lifetime is negative.
func (e *Emulator) MintToken(req TokenRequest) (string, *ims.Claims, error) {
	switch {
	case req.UserID == "":
		return "", nil, errors.New("imstest: mint token: user id is required")
	case req.ClientID == "":
		return "", nil, errors.New("imstest: mint token: client id is required")
	case req.Lifetime < 0:
		return "", nil, fmt.Errorf("imstest: mint token: negative lifetime %v", req.Lifetime)
	}
	if _, ok := e.user(req.UserID); !ok {
		return "", nil, fmt.Errorf("imstest: mint token for %q: %w", req.UserID, ErrUnknownUser)
	}
	return e.mint(req)
}

// mint signs a token for req, filling in defaults, and remembers it. It
// does not check that the user exists: technical accounts are not users.
func (e *Emulator) mint(req TokenRequest) (string, *ims.Claims, error) {
	if req.Scope == "" {
		req.Scope = DefaultScope
	}
	if req.Lifetime == 0 {
		req.Lifetime = DefaultLifetime
	}
	if req.CreatedAt.IsZero() {
		req.CreatedAt = e.now()
	}
	if req.Type == "" {
		req.Type = ims.TypeAccessToken
	}
	if req.Cluster == "" {
		req.Cluster = e.cluster
	}
	created := req.CreatedAt.UnixMilli()
	c := &ims.Claims{
		ID:        tokenID(created),
		Type:      req.Type,
		ClientID:  req.ClientID,
		UserID:    req.UserID,
		Cluster:   req.Cluster,
		Scope:     req.Scope,
		CreatedAt: ims.Millis(created),
		ExpiresIn: ims.Millis(req.Lifetime.Milliseconds()),
	}
	payload := tokenClaims{
		Claims: *c,
		AAID:   req.UserID,
		PAC:    req.ClientID + "_prod",
		RTID:   tokenID(created),
		MOI:    randomHex(4),
		RTEA:   strconv.FormatInt(created+(14*24*time.Hour).Milliseconds(), 10),
		SID:    tokenID(created),
	}

	e.mu.RLock()
	key := e.keys[len(e.keys)-1]
	e.mu.RUnlock()
	token, err := sign(key, &payload)
	if err != nil {
		return "", nil, fmt.Errorf("imstest: mint token: %w", err)
	}
	e.mu.Lock()
	e.tokens[c.ID] = &minted{claims: copyClaims(c)}
	e.mu.Unlock()
	return token, c, nil
}

// tokenID looks like IMS's ids: "<created ms>_<uuid>_<region>".
func tokenID(createdMillis int64) string {
	return strconv.FormatInt(createdMillis, 10) + "_" + randomUUID() + "_ue1"
}

// tokenClaims is the payload of a minted token: the claims Gatehouse reads,
// and others real tokens carry, which Gatehouse must skip whatever they
// hold (ctp, say, is a number).
type tokenClaims struct {
	ims.Claims
	AAID string `json:"aa_id"`
	CTP  int    `json:"ctp"`
	PAC  string `json:"pac"`
	RTID string `json:"rtid"`
	MOI  string `json:"moi"`
	RTEA string `json:"rtea"`
	SID  string `json:"sid"`
}

func copyClaims(c *ims.Claims) *ims.Claims {
	d := *c
	return &d
}

func sign(k *signingKey, c *tokenClaims) (string, error) { return signJWT(k, "at", c) }

// signJWT signs payload with k, the header naming k as IMS's do; itt is
// the header's token type ("at"), or "" for none.
func signJWT(k *signingKey, itt string, c any) (string, error) {
	header, err := json.Marshal(tokenHeader{Alg: "RS256", X5U: k.x5u, KID: k.kid, ITT: itt})
	if err != nil {
		return "", err
	}
	payload, err := json.Marshal(c)
	if err != nil {
		return "", err
	}
	enc := base64.RawURLEncoding
	signing := enc.EncodeToString(header) + "." + enc.EncodeToString(payload)
	sig, err := jwt.SigningMethodRS256.Sign(signing, k.priv)
	if err != nil {
		return "", err
	}
	return signing + "." + enc.EncodeToString(sig), nil
}

// errBadSignature covers every token that is not a well-formed RS256 JWT
// signed by a published key; IMS reports them all as "bad_signature".
var errBadSignature = errors.New("bad_signature")

// parse checks a token's signature against the published keys (by kid,
// else x5u) and decodes its claims. It does not check expiry, revocation,
// type or client.
func (e *Emulator) parse(token string) (*ims.Claims, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return nil, fmt.Errorf("%w: not a JWT", errBadSignature)
	}
	enc := base64.RawURLEncoding
	hb, err := enc.DecodeString(parts[0])
	if err != nil {
		return nil, fmt.Errorf("%w: header: %w", errBadSignature, err)
	}
	var h tokenHeader
	if err := json.Unmarshal(hb, &h); err != nil {
		return nil, fmt.Errorf("%w: header: %w", errBadSignature, err)
	}
	if h.Alg != jwt.SigningMethodRS256.Alg() {
		return nil, fmt.Errorf("%w: alg %q", errBadSignature, h.Alg)
	}
	k := e.keyFor(h.KID, h.X5U)
	if k == nil {
		return nil, fmt.Errorf("%w: unknown key", errBadSignature)
	}
	sig, err := enc.DecodeString(parts[2])
	if err != nil {
		return nil, fmt.Errorf("%w: signature: %w", errBadSignature, err)
	}
	if err := jwt.SigningMethodRS256.Verify(parts[0]+"."+parts[1], sig, &k.priv.PublicKey); err != nil {
		return nil, fmt.Errorf("%w: %w", errBadSignature, err)
	}
	pb, err := enc.DecodeString(parts[1])
	if err != nil {
		return nil, fmt.Errorf("%w: payload: %w", errBadSignature, err)
	}
	// The emulator stands for the service, which reads tokens its own
	// way: encoding/json here, whatever Gatehouse uses.
	var c ims.Claims
	if err := json.Unmarshal(pb, &c); err != nil {
		return nil, fmt.Errorf("%w: payload: %w", errBadSignature, err)
	}
	if c.ID == "" {
		return nil, fmt.Errorf("%w: no token id", errBadSignature)
	}
	return &c, nil
}

// Validation failure reasons, as IMS names them.
const (
	reasonBadSignature    = "bad_signature"
	reasonExpired         = "expired"
	reasonRevoked         = "revoked"
	reasonInvalidClientID = "invalid_client_id"
	reasonInvalidType     = "invalid_type"
)

// check parses a token and checks revocation and expiry. The reason is
// empty for a usable token.
func (e *Emulator) check(token string) (*ims.Claims, string) {
	c, err := e.parse(token)
	if err != nil {
		return nil, reasonBadSignature
	}
	return c, e.liveness(c)
}

// liveness is "revoked", "expired" or, for a live token, "".
func (e *Emulator) liveness(c *ims.Claims) string {
	if e.isRevoked(c.ID) {
		return reasonRevoked
	}
	exp := c.ExpiresAt()
	if exp.IsZero() || !e.now().Before(exp) {
		return reasonExpired
	}
	return ""
}
