package session

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
)

// Key sizes for login-token cookies.
const (
	minHashKeyLen  = 32 // HMAC-SHA256 key: at least the hash's output size
	genHashKeyLen  = 64
	genBlockKeyLen = 32 // AES-256
)

// CookieKeysSetting is the store setting under which LoadCookieKeys keeps
// generated cookie keys, in the GATEHOUSE_COOKIE_KEYS format.
const CookieKeysSetting = "cookie_keys"

const redacted = "[redacted]"

// KeyPair is one pair of cookie keys: Hash signs (HMAC-SHA256) and Block
// encrypts (AES; 16, 24 or 32 bytes select AES-128, -192 or -256).
//
// A KeyPair formats as "[redacted]" with every fmt verb, with zap, and in
// JSON, so that key material cannot reach a log by accident; Encode gives
// the GATEHOUSE_COOKIE_KEYS form.
type KeyPair struct {
	Hash, Block []byte
}

// String returns "[redacted]".
func (k KeyPair) String() string { return redacted }

// GoString returns "[redacted]", for %#v.
func (k KeyPair) GoString() string { return redacted }

// Format writes "[redacted]" whatever the verb, so that %x or %d do not
// print the bytes either.
func (k KeyPair) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(redacted)) }

// MarshalText returns "[redacted]", so that JSON (and zap.Any on a slice of
// pairs) does not carry the keys.
func (k KeyPair) MarshalText() ([]byte, error) { return []byte(redacted), nil }

// Encode returns the pair as "<hashKey>:<blockKey>", both unpadded
// base64url: one entry of GATEHOUSE_COOKIE_KEYS.
func (k KeyPair) Encode() string {
	return base64.RawURLEncoding.EncodeToString(k.Hash) + ":" + base64.RawURLEncoding.EncodeToString(k.Block)
}

// EncodeCookieKeys returns keys in the GATEHOUSE_COOKIE_KEYS format: the
// pairs' Encode forms joined by commas, in order.
func EncodeCookieKeys(keys []KeyPair) string {
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k.Encode()
	}
	return strings.Join(parts, ",")
}

// validate reports what is wrong with the pair, without key material.
func (k KeyPair) validate() error {
	if len(k.Hash) < minHashKeyLen {
		return fmt.Errorf("hash key is %d bytes, want at least %d", len(k.Hash), minHashKeyLen)
	}
	switch len(k.Block) {
	case 16, 24, 32:
	default:
		return fmt.Errorf("block key is %d bytes, want 16, 24 or 32 (AES)", len(k.Block))
	}
	if bytes.Equal(k.Hash, k.Block) {
		return errors.New("hash key and block key are the same; use two independent keys")
	}
	return nil
}

// GenerateKeyPair returns a new pair from crypto/rand: a 64-byte hash key
// and a 32-byte (AES-256) block key.
func GenerateKeyPair() (KeyPair, error) {
	k := KeyPair{Hash: make([]byte, genHashKeyLen), Block: make([]byte, genBlockKeyLen)}
	if _, err := rand.Read(k.Hash); err != nil {
		return KeyPair{}, fmt.Errorf("generate cookie hash key: %w", err)
	}
	if _, err := rand.Read(k.Block); err != nil {
		return KeyPair{}, fmt.Errorf("generate cookie block key: %w", err)
	}
	return k, nil
}

// ParseCookieKeys parses GATEHOUSE_COOKIE_KEYS: a comma-separated list of
// key pairs "<hashKey>:<blockKey>", each base64 (standard or URL alphabet,
// padded or not). A hash key has at least 32 bytes; a block key exactly 16,
// 24 or 32 (AES). Spaces around entries are ignored; an empty entry is an
// error (it is usually an unset variable in "$NEW,$OLD").
//
// The first pair encodes new cookies; every pair decodes. To rotate, put a
// new pair first and keep the old one until the cookies it signed have
// expired: the login-token lifetime (cookies are re-signed with the first
// pair when they are refreshed).
//
// Errors name the entry (counting from 1) and the problem, never the key
// material.
func ParseCookieKeys(s string) ([]KeyPair, error) {
	if strings.TrimSpace(s) == "" {
		return nil, errors.New("cookie keys: no key pair given")
	}
	entries := strings.Split(s, ",")
	keys := make([]KeyPair, 0, len(entries))
	for i, e := range entries {
		k, err := parseKeyPair(strings.TrimSpace(e))
		if err != nil {
			return nil, fmt.Errorf("cookie keys: entry %d of %d: %w", i+1, len(entries), err)
		}
		keys = append(keys, k)
	}
	return keys, nil
}

func parseKeyPair(e string) (KeyPair, error) {
	if e == "" {
		return KeyPair{}, errors.New("empty; want <hashKey>:<blockKey>")
	}
	h, b, ok := strings.Cut(e, ":")
	if !ok {
		return KeyPair{}, errors.New("no ':' between hash key and block key")
	}
	var k KeyPair
	var err error
	if k.Hash, err = decodeKey(h); err != nil {
		return KeyPair{}, fmt.Errorf("hash key: %w", err)
	}
	if k.Block, err = decodeKey(b); err != nil {
		return KeyPair{}, fmt.Errorf("block key: %w", err)
	}
	if err := k.validate(); err != nil {
		return KeyPair{}, err
	}
	return k, nil
}

// decodeKey decodes standard or URL base64, padded or not. Its errors do
// not quote the input.
func decodeKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, errors.New("empty")
	}
	s = strings.TrimRight(s, "=")
	enc := base64.RawStdEncoding
	if strings.ContainsAny(s, "-_") {
		enc = base64.RawURLEncoding
	}
	b, err := enc.DecodeString(s)
	if err != nil {
		// base64.CorruptInputError holds only an offset, but say it in our
		// own words so that no future change of it can leak the input.
		return nil, errors.New("not valid base64")
	}
	return b, nil
}

// LoadCookieKeys returns the cookie keys to use. When configured (the value
// of GATEHOUSE_COOKIE_KEYS) is not blank, it is parsed and generated is
// false. Otherwise the keys are the ones kept in the store under the
// setting CookieKeysSetting, created from a fresh GenerateKeyPair on first
// use, and generated is true: a restart, or another replica sharing the
// store, then keeps everyone signed in.
func LoadCookieKeys(ctx context.Context, store Store, configured string) (keys []KeyPair, generated bool, err error) {
	if strings.TrimSpace(configured) != "" {
		keys, err := ParseCookieKeys(configured)
		return keys, false, err
	}
	k, err := GenerateKeyPair()
	if err != nil {
		return nil, false, err
	}
	v, err := store.GetOrCreateSetting(ctx, CookieKeysSetting, []byte(k.Encode()))
	if err != nil {
		return nil, false, fmt.Errorf("load cookie keys from store: %w", err)
	}
	keys, err = ParseCookieKeys(string(v))
	if err != nil {
		return nil, false, fmt.Errorf("stored setting %q: %w", CookieKeysSetting, err)
	}
	return keys, true, nil
}
