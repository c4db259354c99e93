// Package rs256 verifies RS256 signatures (RSASSA-PKCS1-v1_5 with SHA-256,
// RFC 8017 §8.2.2, as JWS uses it) against an RSA public key prepared once.
//
// crypto/rsa.VerifyPKCS1v15 rebuilds the key's Montgomery constants (R² mod
// N) on every call: a third of the work of verifying under a 2048-bit key.
// IMS signs every access token with one of a few keys, so a Key computes
// them once and each verification pays only for the exponentiation. The
// arithmetic is filippo.io/bigmod, the standalone release of the package
// crypto/rsa itself uses; the encoding check is crypto/rsa's: the whole
// expected encoded message is built and compared, never parsed, so no
// malleable padding or trailing data is accepted.
package rs256

import (
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"

	"filippo.io/bigmod"
)

// ErrVerification is returned for every signature that does not verify,
// whatever the reason: the reason would only help a forger.
var ErrVerification = errors.New("rs256: verification error")

// digestInfoSHA256 is the DER prefix of DigestInfo{sha256, digest}
// (RFC 8017 §9.2, note 1).
var digestInfoSHA256 = []byte{0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20}

// Key is an RSA public key ready for RS256 verification. It is immutable
// and safe for concurrent use.
type Key struct {
	pub *rsa.PublicKey
	n   *bigmod.Modulus
	e   uint
	// head is the encoded message up to the digest, the same for every
	// signature: 0x00 0x01 0xFF… 0x00 DigestInfo-prefix.
	head []byte
}

// NewKey prepares pub for verification. The modulus must be odd and large
// enough to hold a SHA-256 DigestInfo with the minimum padding; the
// exponent odd and at least 3. Key-size policy is the caller's.
func NewKey(pub *rsa.PublicKey) (*Key, error) {
	if pub == nil || pub.N == nil || pub.N.Sign() <= 0 || pub.N.Bit(0) == 0 {
		return nil, errors.New("rs256: the modulus must be a positive odd number")
	}
	if pub.E < 3 || pub.E%2 == 0 {
		return nil, fmt.Errorf("rs256: exponent %d: must be odd and at least 3", pub.E)
	}
	size := (pub.N.BitLen() + 7) / 8
	tLen := len(digestInfoSHA256) + sha256.Size
	if size < tLen+11 { // RFC 8017 §9.2 step 3: at least 8 bytes of 0xFF
		return nil, fmt.Errorf("rs256: modulus of %d bits is too small for a SHA-256 signature", pub.N.BitLen())
	}
	n, err := bigmod.NewModulus(pub.N.Bytes())
	if err != nil {
		return nil, fmt.Errorf("rs256: modulus: %w", err)
	}
	head := make([]byte, size-sha256.Size)
	head[1] = 0x01
	for i := 2; i < len(head)-len(digestInfoSHA256)-1; i++ {
		head[i] = 0xff
	}
	copy(head[len(head)-len(digestInfoSHA256):], digestInfoSHA256)
	return &Key{pub: pub, n: n, e: uint(pub.E), head: head}, nil
}

// Public returns the key as given to NewKey; callers must not modify it.
func (k *Key) Public() *rsa.PublicKey { return k.pub }

// Verify checks that sig is an RS256 signature of signingInput (for a JWS,
// the base64url header and payload joined by a dot). It returns nil or
// ErrVerification.
func (k *Key) Verify(signingInput string, sig []byte) error {
	// RFC 8017 §8.2.2 step 1: a signature is exactly as long as the modulus.
	if len(sig) != k.n.Size() {
		return ErrVerification
	}
	s, err := bigmod.NewNat().SetBytes(sig, k.n) // fails for sig ≥ N (§5.2.2 step 1)
	if err != nil {
		return ErrVerification
	}
	em := bigmod.NewNat().ExpShortVarTime(s, k.e, k.n).Bytes(k.n)
	digest := sha256.Sum256([]byte(signingInput))
	// Both halves are compared in full, whatever the first gave: all of
	// this is public, but there is no reason to leak where it differed.
	ok := subtle.ConstantTimeCompare(em[:len(k.head)], k.head) &
		subtle.ConstantTimeCompare(em[len(k.head):], digest[:])
	if ok != 1 {
		return ErrVerification
	}
	return nil
}
