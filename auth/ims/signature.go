package ims

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
)

// verify checks sigPart, the base64url signature of a compact JWS, as an
// RS256 signature of signingInput under the key the header names by kid
// and x5u. Its errors wrap ErrMalformed, ErrUnknownKey, ErrKeysUnavailable
// or ErrBadSignature, key errors before signature errors.
//
// A token that names its key by x5u whose certificate cannot be had (over
// the fetch budget, unknown to the host, or the host down) is also tried
// against the keys already held, at most maxFallbackKeys of them, and
// again after a refresh of the JWKS if one is due. IMS signs with keys it
// publishes in both forms, so a flood of junk certificate names, which
// spends the budget, cannot keep a genuine token out. The x5u header only
// says where to find the key: a signature by another key IMS publishes is
// as good.
func (k *KeySet) verify(ctx context.Context, kid, x5u, signingInput, sigPart string) error {
	key, keyErr := k.Key(ctx, kid, x5u)
	if keyErr != nil && (x5u == "" || errors.Is(keyErr, ErrMalformed)) {
		return keyErr
	}
	sig, err := base64.RawURLEncoding.DecodeString(sigPart)
	if err != nil {
		if keyErr != nil {
			return keyErr
		}
		return fmt.Errorf("signature: %w: not base64url", ErrMalformed)
	}
	// Hashed once, however many keys are tried.
	digest := sha256.Sum256([]byte(signingInput))
	if key != nil {
		if !verifyRS256(key, &digest, sig) {
			return ErrBadSignature
		}
		return nil
	}
	if k.verifyHeld(&digest, sig) {
		return nil
	}
	// The key may be new, published in the JWKS since it was last fetched:
	// look once more after a refresh, which stays within its own limit of
	// one per MinRefreshInterval.
	if k.jwksURL != "" {
		if fetched, _ := k.refreshJWKS(ctx); fetched && k.verifyHeld(&digest, sig) {
			return nil
		}
	}
	return keyErr
}

// verifyHeld reports whether one of the first maxFallbackKeys keys held
// made sig.
func (k *KeySet) verifyHeld(digest *[sha256.Size]byte, sig []byte) bool {
	held := k.held.Load()
	if held == nil {
		return false
	}
	for _, key := range (*held)[:min(len(*held), maxFallbackKeys)] {
		if verifyRS256(key, digest, sig) {
			return true
		}
	}
	return false
}

// verifyRS256 checks an RSASSA-PKCS1-v1_5 SHA-256 signature with the
// standard library: of all code in an auth gateway, signature checking is
// where its audits, FIPS mode and security fixes matter most. It rebuilds
// the key's Montgomery constants on every call (about a quarter of the
// work under a 2048-bit key); the first-seen token path saves that and more
// elsewhere.
func verifyRS256(key *rsa.PublicKey, digest *[sha256.Size]byte, sig []byte) bool {
	return rsa.VerifyPKCS1v15(key, crypto.SHA256, digest[:], sig) == nil
}
