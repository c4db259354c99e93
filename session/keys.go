package session

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
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
// store, then keeps everyone signed in, and RotateCookieKeys and
// DropOldCookieKeys change them for every replica (Manager.RunKeyReload).
func LoadCookieKeys(ctx context.Context, store Store, configured string) (keys []KeyPair, generated bool, err error) {
	if strings.TrimSpace(configured) != "" {
		keys, err := ParseCookieKeys(configured)
		return keys, false, err
	}
	k, err := GenerateKeyPair()
	if err != nil {
		return nil, false, err
	}
	first := EncodeStoredCookieKeys([]StoredKey{{KeyPair: k, Created: time.Now()}})
	v, err := store.GetOrCreateSetting(ctx, CookieKeysSetting, first)
	if err != nil {
		return nil, false, fmt.Errorf("load cookie keys from store: %w", err)
	}
	stored, err := ParseStoredCookieKeys(v)
	if err != nil {
		return nil, false, fmt.Errorf("stored setting %q: %w", CookieKeysSetting, err)
	}
	return pairsOf(stored), true, nil
}

// MaxStoredCookieKeys is how many key pairs RotateCookieKeys lets the store
// hold: every pair is tried on a cookie that no earlier pair verifies, so
// the list must not grow without bound. DropOldCookieKeys makes room.
const MaxStoredCookieKeys = 8

// fingerprintLen is the length of a Fingerprint in hex digits.
const fingerprintLen = 12

// Fingerprint names the pair without revealing it: the first 12 hex digits
// of the SHA-256 of its Encode form ("<hashKey>:<blockKey>", unpadded
// base64url). Printing it is safe; it is for telling pairs apart.
func (k KeyPair) Fingerprint() string {
	sum := sha256.Sum256([]byte(k.Encode()))
	return hex.EncodeToString(sum[:fingerprintLen/2])
}

// StoredKey is a cookie key pair kept in the store, and when it was made.
// Like KeyPair, it formats as "[redacted]".
type StoredKey struct {
	KeyPair
	// Created is when the pair was generated; zero when unknown (a value
	// stored in the plain GATEHOUSE_COOKIE_KEYS form by an earlier version).
	Created time.Time
}

// storedKeys is the stored form of the cookie keys: a JSON document, so
// that each pair carries its creation time, newest pair first.
type storedKeys struct {
	Keys []storedKey `json:"keys"`
}

type storedKey struct {
	Hash    string    `json:"hash"`  // unpadded base64url
	Block   string    `json:"block"` // unpadded base64url
	Created time.Time `json:"created,omitzero"`
}

// EncodeStoredCookieKeys returns the value kept under CookieKeysSetting for
// keys, newest (the signing pair) first.
func EncodeStoredCookieKeys(keys []StoredKey) []byte {
	doc := storedKeys{Keys: make([]storedKey, len(keys))}
	for i, k := range keys {
		doc.Keys[i] = storedKey{
			Hash:    base64.RawURLEncoding.EncodeToString(k.Hash),
			Block:   base64.RawURLEncoding.EncodeToString(k.Block),
			Created: k.Created.UTC().Truncate(time.Second),
		}
	}
	b, err := json.Marshal(doc)
	if err != nil { // strings and times only: cannot fail
		panic(fmt.Sprintf("encode stored cookie keys: %v", err))
	}
	return b
}

// ParseStoredCookieKeys parses the value kept under CookieKeysSetting: the
// JSON document EncodeStoredCookieKeys writes, or, as earlier versions
// stored it, the GATEHOUSE_COOKIE_KEYS form (creation times unknown). It
// accepts exactly what ParseCookieKeys accepts of each pair, and its errors
// never quote key material.
func ParseStoredCookieKeys(v []byte) ([]StoredKey, error) {
	t := bytes.TrimSpace(v)
	if len(t) == 0 || t[0] != '{' {
		pairs, err := ParseCookieKeys(string(v))
		if err != nil {
			return nil, err
		}
		keys := make([]StoredKey, len(pairs))
		for i, p := range pairs {
			keys[i] = StoredKey{KeyPair: p}
		}
		return keys, nil
	}
	var doc storedKeys
	if err := json.Unmarshal(t, &doc); err != nil {
		// json's messages hold offsets and types, not input; still, say it
		// in our own words so that none ever could.
		return nil, errors.New("cookie keys: not a valid JSON key list")
	}
	if len(doc.Keys) == 0 {
		return nil, errors.New("cookie keys: no key pair stored")
	}
	keys := make([]StoredKey, len(doc.Keys))
	for i, e := range doc.Keys {
		k, err := parseKeyPair(e.Hash + ":" + e.Block)
		if err != nil {
			return nil, fmt.Errorf("cookie keys: entry %d of %d: %w", i+1, len(doc.Keys), err)
		}
		keys[i] = StoredKey{KeyPair: k, Created: e.Created.UTC()}
	}
	return keys, nil
}

func pairsOf(keys []StoredKey) []KeyPair {
	pairs := make([]KeyPair, len(keys))
	for i, k := range keys {
		pairs[i] = k.KeyPair
	}
	return pairs
}

// ErrNoStoredCookieKeys is returned, wrapped, when the store holds no
// cookie keys yet: no `gatehouse serve` without GATEHOUSE_COOKIE_KEYS has
// started on it.
var ErrNoStoredCookieKeys = errors.New("no cookie keys in the store yet")

// ErrTooManyCookieKeys is returned, wrapped, by RotateCookieKeys when the
// store already holds MaxStoredCookieKeys pairs.
var ErrTooManyCookieKeys = errors.New("too many cookie keys")

// StoredCookieKeys returns the cookie keys kept in the store, newest (the
// signing pair) first. It returns an error wrapping ErrNoStoredCookieKeys
// when there are none.
func StoredCookieKeys(ctx context.Context, store Store) ([]StoredKey, error) {
	keys, _, err := readStoredKeys(ctx, store)
	return keys, err
}

func readStoredKeys(ctx context.Context, store Store) ([]StoredKey, []byte, error) {
	v, err := store.GetSetting(ctx, CookieKeysSetting)
	switch {
	case errors.Is(err, ErrNotFound):
		return nil, nil, fmt.Errorf("read cookie keys: %w", ErrNoStoredCookieKeys)
	case err != nil:
		return nil, nil, fmt.Errorf("read cookie keys: %w", err)
	}
	keys, err := ParseStoredCookieKeys(v)
	if err != nil {
		return nil, nil, fmt.Errorf("stored setting %q: %w", CookieKeysSetting, err)
	}
	return keys, v, nil
}

// RotateCookieKeys puts a new pair, made by GenerateKeyPair at now, first
// in the stored cookie keys: it signs every new or refreshed cookie, and
// the older pairs still verify until DropOldCookieKeys. With no keys
// stored yet, the new pair is the only one. It returns the keys as
// stored, newest first, or an error wrapping ErrTooManyCookieKeys when
// MaxStoredCookieKeys pairs are stored already.
func RotateCookieKeys(ctx context.Context, store Store, now time.Time) ([]StoredKey, error) {
	k, err := GenerateKeyPair()
	if err != nil {
		return nil, fmt.Errorf("rotate cookie keys: %w", err)
	}
	nk := StoredKey{KeyPair: k, Created: now.UTC().Truncate(time.Second)}
	_, after, err := updateStoredKeys(ctx, store, func(cur []StoredKey) ([]StoredKey, error) {
		if len(cur) >= MaxStoredCookieKeys {
			return nil, fmt.Errorf("%w: the store holds %d pairs, at most %d; drop the old ones first",
				ErrTooManyCookieKeys, len(cur), MaxStoredCookieKeys)
		}
		return append([]StoredKey{nk}, cur...), nil
	})
	if err != nil {
		return nil, fmt.Errorf("rotate cookie keys: %w", err)
	}
	return after, nil
}

// DropOldCookieKeys keeps only the newest stored pair, the one that signs:
// cookies signed by the others are refused from then on (their users sign
// in again). It returns the pair kept and the pairs dropped (none when
// there was only one).
func DropOldCookieKeys(ctx context.Context, store Store) (kept StoredKey, dropped []StoredKey, err error) {
	kept, dropped, err = cookieKeyList.DropOld(ctx, store)
	if err != nil {
		return StoredKey{}, nil, fmt.Errorf("drop old cookie keys: %w", err)
	}
	return kept, dropped, nil
}

// maxSwaps bounds UpdateSetting's retries: each lost swap means another
// writer changed the setting meanwhile, which rotations by hand never do
// for long.
const maxSwaps = 10

// UpdateSetting replaces the value stored under key with change(current)
// (current is nil when nothing is stored) by compare-and-swap, reading
// again when another writer got in between: the one way every stored key
// list (cookie keys, assertion keys) is changed, so that two replicas or
// two `gatehouse keys` runs never lose each other's change. A change that
// returns the current value writes nothing. It returns the values before
// and after.
func UpdateSetting(ctx context.Context, store Store, key string, change func(cur []byte) ([]byte, error)) (before, after []byte, err error) {
	for range maxSwaps {
		raw, err := store.GetSetting(ctx, key)
		switch {
		case errors.Is(err, ErrNotFound):
			raw = nil
		case err != nil:
			return nil, nil, fmt.Errorf("read setting %q: %w", key, err)
		}
		next, err := change(raw)
		if err != nil {
			return nil, nil, err
		}
		if raw != nil && bytes.Equal(raw, next) {
			return raw, raw, nil
		}
		if raw == nil {
			got, err := store.GetOrCreateSetting(ctx, key, next)
			if err != nil {
				return nil, nil, fmt.Errorf("store setting %q: %w", key, err)
			}
			if bytes.Equal(got, next) {
				return nil, next, nil
			}
			continue // another writer created it first: change theirs
		}
		ok, err := store.CompareAndSwapSetting(ctx, key, raw, next)
		switch {
		case errors.Is(err, ErrNotFound):
			continue // deleted meanwhile (by hand): start again
		case err != nil:
			return nil, nil, fmt.Errorf("store setting %q: %w", key, err)
		case ok:
			return raw, next, nil
		}
	}
	return nil, nil, fmt.Errorf("the stored setting %q changed %d times while this change was being made; try again", key, maxSwaps)
}

// cookieKeyList is how the cookie keys are kept under CookieKeysSetting.
var cookieKeyList = KeyList[StoredKey]{
	Setting: CookieKeysSetting,
	Parse:   ParseStoredCookieKeys,
	Encode:  func(keys []StoredKey) ([]byte, error) { return EncodeStoredCookieKeys(keys), nil },
	Same:    sameKeys,
	None:    ErrNoStoredCookieKeys,
}

// updateStoredKeys replaces the stored cookie keys with change(current)
// (current is nil when none are stored); see KeyList.Update.
func updateStoredKeys(ctx context.Context, store Store, change func([]StoredKey) ([]StoredKey, error)) (before, after []StoredKey, err error) {
	return cookieKeyList.Update(ctx, store, change)
}

// KeyList describes a list of keys kept in one store setting, newest (the
// signing key) first: the cookie keys, and the identity assertion's
// signing keys (package auth/assertion), which are rotated together.
type KeyList[K any] struct {
	Setting string                    // the setting's key
	Parse   func([]byte) ([]K, error) // errors never quote key material
	Encode  func([]K) ([]byte, error)
	Same    func(a, b []K) bool // the same keys in the same order
	None    error               // wrapped when the store holds no keys
}

// Update replaces the stored keys with change(current) (current is nil
// when none are stored) through UpdateSetting. A change that returns the
// keys unchanged writes nothing. It returns the keys before and after.
func (l KeyList[K]) Update(ctx context.Context, store Store, change func([]K) ([]K, error)) (before, after []K, err error) {
	_, _, err = UpdateSetting(ctx, store, l.Setting, func(raw []byte) ([]byte, error) {
		before = nil
		if raw != nil {
			cur, err := l.Parse(raw)
			if err != nil {
				return nil, fmt.Errorf("stored setting %q: %w", l.Setting, err)
			}
			before = cur
		}
		next, err := change(before)
		if err != nil {
			return nil, err
		}
		after = next
		if raw != nil && l.Same(before, next) {
			return raw, nil
		}
		return l.Encode(next)
	})
	if err != nil {
		return nil, nil, err
	}
	return before, after, nil
}

// DropOld keeps only the newest stored key and returns it and the keys
// dropped (none when there was only one). With none stored, the error
// wraps l.None.
func (l KeyList[K]) DropOld(ctx context.Context, store Store) (kept K, dropped []K, err error) {
	before, after, err := l.Update(ctx, store, func(cur []K) ([]K, error) {
		if cur == nil {
			return nil, l.None
		}
		return cur[:1], nil
	})
	if err != nil {
		return kept, nil, err
	}
	return after[0], before[1:], nil
}

// sameKeys reports whether a and b are the same pairs in the same order
// (creation times aside).
func sameKeys(a, b []StoredKey) bool { return samePairs(pairsOf(a), pairsOf(b)) }

// samePairs reports whether a and b are the same pairs in the same order.
func samePairs(a, b []KeyPair) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !bytes.Equal(a[i].Hash, b[i].Hash) || !bytes.Equal(a[i].Block, b[i].Block) {
			return false
		}
	}
	return true
}
