// Package assertion signs the identity Gatehouse forwards, for upstreams
// that must not trust plain headers: a short-lived ES256 JWT in
// X-Gatehouse-Assertion whose verification keys are served as a JWKS.
//
// The signing key is kept in the store (setting KeysSetting), generated on
// first use and shared by every replica; `gatehouse keys rotate` and
// `drop-old` change it together with the cookie keys, and serving replicas
// pick the change up without a restart (Issuer.RunReload), as they do the
// cookie keys. After a rotation the previous keys stay in the JWKS, so
// assertions signed just before it still verify until they are dropped.
package assertion

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/gatehouse-proxy/gatehouse/session"
)

// KeysSetting is the store setting under which the assertion keys are
// kept: a JSON list, newest (the signing key) first.
const KeysSetting = "assertion_keys"

// MaxKeys is how many keys Rotate lets the store hold: all of them are
// published, so the list must not grow without bound. DropOld makes room.
const MaxKeys = 8

// ErrNoKeys is returned, wrapped, when the store holds no assertion keys.
var ErrNoKeys = errors.New("no assertion keys in the store yet")

// ErrTooManyKeys is returned, wrapped, by Rotate when the store already
// holds MaxKeys keys.
var ErrTooManyKeys = errors.New("too many assertion keys")

// Key is one ES256 (P-256) signing key and when it was made. It formats
// as its key id only, so that the private key cannot reach a log.
type Key struct {
	Private *ecdsa.PrivateKey
	// ID is the key's "kid": its RFC 7638 JWK thumbprint, which names the
	// public key and reveals nothing else.
	ID      string
	Created time.Time
}

// String returns the key id.
func (k Key) String() string { return "assertion key " + k.ID }

// GoString returns the key id, for %#v.
func (k Key) GoString() string { return k.String() }

// Format writes the key id whatever the verb.
func (k Key) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(k.String())) }

// GenerateKey makes a new P-256 key from crypto/rand, created at now.
func GenerateKey(now time.Time) (Key, error) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return Key{}, fmt.Errorf("generate assertion key: %w", err)
	}
	return newKey(priv, now)
}

func newKey(priv *ecdsa.PrivateKey, created time.Time) (Key, error) {
	kid, err := thumbprint(&priv.PublicKey)
	if err != nil {
		return Key{}, err
	}
	return Key{Private: priv, ID: kid, Created: created.UTC().Truncate(time.Second)}, nil
}

// publicJWK is a verification key as a JWKS lists it.
type publicJWK struct {
	Kty string `json:"kty"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Y   string `json:"y"`
	Kid string `json:"kid,omitempty"`
	Alg string `json:"alg,omitempty"`
	Use string `json:"use,omitempty"`
}

// coordinates returns the public key's x and y, unpadded base64url, 32
// bytes each as RFC 7518 requires for P-256.
func coordinates(pub *ecdsa.PublicKey) (x, y string, err error) {
	b, err := pub.Bytes() // 0x04 || X || Y
	if err != nil {
		return "", "", fmt.Errorf("assertion key: %w", err)
	}
	if len(b) != 65 || b[0] != 4 {
		return "", "", errors.New("assertion key: not an uncompressed P-256 point")
	}
	return base64.RawURLEncoding.EncodeToString(b[1:33]), base64.RawURLEncoding.EncodeToString(b[33:]), nil
}

// thumbprint is the RFC 7638 thumbprint of pub: the SHA-256 of its
// required JWK members in lexicographic order, unpadded base64url.
func thumbprint(pub *ecdsa.PublicKey) (string, error) {
	x, y, err := coordinates(pub)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256([]byte(`{"crv":"P-256","kty":"EC","x":"` + x + `","y":"` + y + `"}`))
	return base64.RawURLEncoding.EncodeToString(sum[:]), nil
}

// storedKeys is the value kept under KeysSetting.
type storedKeys struct {
	Keys []storedKey `json:"keys"`
}

type storedKey struct {
	D       string    `json:"d"` // the private scalar, 32 bytes, unpadded base64url
	Created time.Time `json:"created,omitzero"`
}

// EncodeKeys returns the value kept under KeysSetting for keys, newest
// first.
func EncodeKeys(keys []Key) ([]byte, error) {
	doc := storedKeys{Keys: make([]storedKey, len(keys))}
	for i, k := range keys {
		d, err := k.Private.Bytes()
		if err != nil {
			return nil, fmt.Errorf("encode assertion key %s: %w", k.ID, err)
		}
		doc.Keys[i] = storedKey{D: base64.RawURLEncoding.EncodeToString(d), Created: k.Created}
	}
	return json.Marshal(doc)
}

// ParseKeys parses the value kept under KeysSetting. Its errors name the
// entry, never key material.
func ParseKeys(v []byte) ([]Key, error) {
	var doc storedKeys
	if err := json.Unmarshal(v, &doc); err != nil {
		return nil, errors.New("assertion keys: not a valid JSON key list")
	}
	if len(doc.Keys) == 0 {
		return nil, errors.New("assertion keys: no key stored")
	}
	if len(doc.Keys) > MaxKeys {
		return nil, fmt.Errorf("assertion keys: %d stored, at most %d", len(doc.Keys), MaxKeys)
	}
	keys := make([]Key, len(doc.Keys))
	for i, e := range doc.Keys {
		d, err := base64.RawURLEncoding.DecodeString(e.D)
		if err != nil {
			return nil, fmt.Errorf("assertion keys: entry %d of %d: not valid base64url", i+1, len(doc.Keys))
		}
		priv, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), d)
		if err != nil {
			return nil, fmt.Errorf("assertion keys: entry %d of %d: not a P-256 private key", i+1, len(doc.Keys))
		}
		if keys[i], err = newKey(priv, e.Created); err != nil {
			return nil, fmt.Errorf("assertion keys: entry %d of %d: %w", i+1, len(doc.Keys), err)
		}
	}
	return keys, nil
}

// Load returns the assertion keys kept in the store, newest first,
// creating the first one when there is none: the first replica to start
// makes it, the others (and later restarts) read it.
func Load(ctx context.Context, store session.Store, now time.Time) ([]Key, error) {
	_, after, err := keyList.Update(ctx, store, func(cur []Key) ([]Key, error) {
		if cur != nil {
			return cur, nil
		}
		k, err := GenerateKey(now)
		if err != nil {
			return nil, err
		}
		return []Key{k}, nil
	})
	if err != nil {
		return nil, fmt.Errorf("load assertion keys: %w", err)
	}
	return after, nil
}

// Stored returns the assertion keys kept in the store, newest first, or
// an error wrapping ErrNoKeys when there are none.
func Stored(ctx context.Context, store session.Store) ([]Key, error) {
	v, err := store.GetSetting(ctx, KeysSetting)
	switch {
	case errors.Is(err, session.ErrNotFound):
		return nil, fmt.Errorf("read assertion keys: %w", ErrNoKeys)
	case err != nil:
		return nil, fmt.Errorf("read assertion keys: %w", err)
	}
	return ParseKeys(v)
}

// Rotate puts a new key, made at now, first in the stored keys: it signs
// every assertion from now on, and the older keys stay in the JWKS until
// DropOld. With no keys stored yet, the new key is the only one. It
// returns the keys as stored, newest first.
func Rotate(ctx context.Context, store session.Store, now time.Time) ([]Key, error) {
	k, err := GenerateKey(now)
	if err != nil {
		return nil, err
	}
	_, after, err := keyList.Update(ctx, store, func(cur []Key) ([]Key, error) {
		if len(cur) >= MaxKeys {
			return nil, fmt.Errorf("%w: the store holds %d keys, at most %d; drop the old ones first", ErrTooManyKeys, len(cur), MaxKeys)
		}
		return append([]Key{k}, cur...), nil
	})
	if err != nil {
		return nil, fmt.Errorf("rotate assertion keys: %w", err)
	}
	return after, nil
}

// DropOld keeps only the newest stored key: assertions signed by the
// others no longer verify once upstreams re-read the JWKS. It returns the
// key kept and the keys dropped.
func DropOld(ctx context.Context, store session.Store) (kept Key, dropped []Key, err error) {
	kept, dropped, err = keyList.DropOld(ctx, store)
	if err != nil {
		return Key{}, nil, fmt.Errorf("drop old assertion keys: %w", err)
	}
	return kept, dropped, nil
}

// keyList keeps the keys with the compare-and-swap the cookie keys use
// too, so that replicas and `gatehouse keys` runs never lose each other's
// change.
var keyList = session.KeyList[Key]{Setting: KeysSetting, Parse: ParseKeys, Encode: EncodeKeys, Same: sameKeys, None: ErrNoKeys}

func sameKeys(a, b []Key) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].ID != b[i].ID {
			return false
		}
	}
	return true
}
