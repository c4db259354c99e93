package session

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/gorilla/securecookie"
	"go.uber.org/zap"
)

// DefaultKeyReloadInterval is how often RunKeyReload re-reads the stored
// cookie keys when given no interval.
const DefaultKeyReloadInterval = 5 * time.Second

// keyring is one set of cookie keys, ready to use: the first pair's codec
// encodes, every codec decodes. It is never modified once made, so that
// requests read it through one atomic pointer load, and SetKeys swaps a
// new one in whole.
type keyring struct {
	pairs  []KeyPair
	codecs []securecookie.Codec
}

func newKeyring(keys []KeyPair) (*keyring, error) {
	if len(keys) == 0 {
		return nil, errors.New("no cookie keys")
	}
	kr := &keyring{pairs: make([]KeyPair, len(keys)), codecs: make([]securecookie.Codec, len(keys))}
	for i, k := range keys {
		if err := k.validate(); err != nil {
			return nil, fmt.Errorf("cookie key pair %d: %w", i+1, err)
		}
		kr.pairs[i] = KeyPair{Hash: append([]byte(nil), k.Hash...), Block: append([]byte(nil), k.Block...)}
		kr.codecs[i] = securecookie.New(k.Hash, k.Block).
			SetSerializer(securecookie.NopEncoder{}).
			MaxAge(0). // the server-side record is authoritative
			MaxLength(MaxCookieLen)
	}
	return kr, nil
}

// SetKeys makes keys the cookie keys from now on: keys[0] signs new and
// refreshed cookies, and every pair verifies. Keys the same as the current
// ones (same pairs, same order) change nothing, and changed is false.
//
// A change forgets which cookie values were seen to validate, so that a
// value only a dropped pair verified is refused at its next use, not
// after the cache entry it validated against has expired; each value in
// use then costs one decoding again. Requests already past decoding finish
// with the keys they started with.
func (m *Manager) SetKeys(keys []KeyPair) (changed bool, err error) {
	if samePairs(m.keys.Load().pairs, keys) {
		return false, nil
	}
	kr, err := newKeyring(keys)
	if err != nil {
		return false, fmt.Errorf("set cookie keys: %w", err)
	}
	m.keys.Store(kr) // before the clear: see rememberValue
	m.decoded.Clear()
	return true, nil
}

// KeyPairs returns the cookie keys in use now, newest (signing) first. The
// slice is the Manager's: read it, do not change it. A caller that derives
// keys of its own from these (the browser sign-in's attempt cookie) asks
// again before each use, and derives again when they changed.
func (m *Manager) KeyPairs() []KeyPair { return m.keys.Load().pairs }

// ReloadKeys reads the cookie keys kept in the store (CookieKeysSetting)
// and makes them the Manager's, as SetKeys does. A store that fails, holds
// no keys or holds keys that do not parse is an error, and the current
// keys stay.
func (m *Manager) ReloadKeys(ctx context.Context) (changed bool, err error) {
	keys, err := StoredCookieKeys(ctx, m.store)
	if err != nil {
		return false, err
	}
	changed, err = m.SetKeys(pairsOf(keys))
	if changed {
		fps := make([]string, len(keys))
		for i, k := range keys {
			fps[i] = k.Fingerprint()
		}
		m.log.Info("cookie keys changed in the store; using them now",
			zap.Int("keys", len(keys)), zap.String("signing", fps[0]), zap.Strings("fingerprints", fps))
	}
	return changed, err
}

// RunKeyReload calls ReloadKeys every interval (DefaultKeyReloadInterval
// if interval is not positive) until ctx is done, so that `gatehouse keys
// rotate` and `drop-old`, run against the shared store, reach this
// replica without a restart; a change notification (Changed) makes it
// read them at once, and the poll is the fallback for when notifications
// are lost. It is for keys kept in the store: with keys
// from GATEHOUSE_COOKIE_KEYS, do not run it. A failing read is logged once
// until it recovers, and the current keys stay meanwhile.
func (m *Manager) RunKeyReload(ctx context.Context, interval time.Duration) {
	RunReload(ctx, interval, m.keysChanged, func(ctx context.Context) error {
		_, err := m.ReloadKeys(ctx)
		return err
	}, m.log, "cookie keys")
}

// RunReload calls reload every interval (DefaultKeyReloadInterval if
// interval is not positive), and at once whenever wake receives, until
// ctx is done: how every replica follows keys kept in the store. A
// failing reload is logged once, naming what, until it recovers.
func RunReload(ctx context.Context, interval time.Duration, wake <-chan struct{}, reload func(context.Context) error, log *zap.Logger, what string) {
	if interval <= 0 {
		interval = DefaultKeyReloadInterval
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-wake:
		}
		err := reload(ctx)
		switch {
		case err != nil && ctx.Err() != nil:
			return
		case err != nil && !failing:
			log.Warn("cannot reload the "+what+" from the store; keeping the current ones", zap.Error(err))
			failing = true
		case err == nil && failing:
			log.Info(what + " read from the store again")
			failing = false
		}
	}
}
