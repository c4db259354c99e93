package session

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestSetKeys changes the keys of one running Manager, with the cache and
// the memo of validated values on, as `gatehouse keys rotate` and
// `drop-old` do to a serving replica.
func TestSetKeys(t *testing.T) {
	ctx := context.Background()
	const ttl = time.Hour
	f := newFixture(t, ManagerConfig{TTL: ttl, CacheTTL: 10 * time.Hour})
	oldKey := f.keys[0]
	newKey := testKeys(t)[0]
	oldCookie, _ := f.issue(t, f.alice)
	if _, err := f.m.Validate(ctx, oldCookie.Value); err != nil {
		t.Fatal(err)
	}
	if f.m.decodedLen() != 1 {
		t.Fatal("the validated value was not remembered")
	}

	// Rotate: the new pair signs, the old one still verifies.
	if changed, err := f.m.SetKeys([]KeyPair{newKey, oldKey}); !changed || err != nil {
		t.Fatalf("SetKeys(new, old) = %v, %v", changed, err)
	}
	if changed, err := f.m.SetKeys([]KeyPair{newKey, oldKey}); changed || err != nil {
		t.Fatalf("SetKeys with the same keys = %v, %v; want no change", changed, err)
	}
	if _, err := f.m.Validate(ctx, oldCookie.Value); err != nil {
		t.Fatalf("old-key cookie after rotation: %v", err)
	}
	newCookie, _ := f.issue(t, f.bob)
	if _, _, ok := mustKeyring(t, newKey).decode(f.m.CookieName(), newCookie.Value); !ok {
		t.Error("a cookie issued after the rotation is not signed with the new pair")
	}
	// Past half-life, the old-key cookie is re-issued with the new pair.
	f.clk.Advance(ttl/2 + time.Minute)
	v, err := f.m.Validate(ctx, oldCookie.Value)
	if err != nil || v.Refresh == nil {
		t.Fatalf("old-key cookie past half-life: refresh %v, %v", v, err)
	}
	if _, _, ok := mustKeyring(t, newKey).decode(f.m.CookieName(), v.Refresh.Value); !ok {
		t.Error("the refreshed cookie is not signed with the new pair")
	}
	if _, err := f.m.Validate(ctx, oldCookie.Value); err != nil {
		t.Fatalf("old-key cookie, remembered again: %v", err)
	}
	if f.m.decodedLen() == 0 {
		t.Fatal("no value remembered before the drop: the test would prove nothing")
	}

	// Drop the old pair: the old-key value is refused at once, although
	// it was remembered and its token's cache entry is still trusted.
	if changed, err := f.m.SetKeys([]KeyPair{newKey}); !changed || err != nil {
		t.Fatalf("SetKeys(new) = %v, %v", changed, err)
	}
	if _, err := f.m.Validate(ctx, oldCookie.Value); !errors.Is(err, ErrTokenMalformed) {
		t.Errorf("old-key cookie after the drop: %v, want ErrTokenMalformed", err)
	}
	for _, c := range []string{newCookie.Value, v.Refresh.Value} {
		if _, err := f.m.Validate(ctx, c); err != nil {
			t.Errorf("new-key cookie after the drop: %v", err)
		}
	}

	// Bad keys change nothing.
	for _, bad := range [][]KeyPair{nil, {{Hash: []byte("short"), Block: newKey.Block}}} {
		if changed, err := f.m.SetKeys(bad); changed || err == nil {
			t.Errorf("SetKeys(%d bad pairs) = %v, %v; want an error", len(bad), changed, err)
		}
	}
	if _, err := f.m.Validate(ctx, newCookie.Value); err != nil {
		t.Errorf("after refused SetKeys: %v", err)
	}
}

// TestSetKeysRacesRemember: a validation that decoded with the keys of
// before a change must not remember its value after the change forgot
// them all, or a value no pair verifies any more would stay accepted.
func TestSetKeysRacesRemember(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, ManagerConfig{CacheTTL: time.Hour})
	c, _ := f.issue(t, f.alice)
	if _, err := f.m.Validate(ctx, c.Value); err != nil {
		t.Fatal(err)
	}
	key := hashValue(c.Value)
	e, _ := f.m.decoded.Get(key)
	stale := f.m.keys.Load() // what the racing validation decoded with
	if _, err := f.m.SetKeys(testKeys(t)); err != nil {
		t.Fatal(err)
	}
	f.m.rememberValue(key, e, stale)
	if n := f.m.decodedLen(); n != 0 {
		t.Fatalf("%d values remembered with stale keys, want 0", n)
	}
	if _, err := f.m.Validate(ctx, c.Value); !errors.Is(err, ErrTokenMalformed) {
		t.Errorf("value of the dropped pair: %v, want ErrTokenMalformed", err)
	}
}

func mustKeyring(t *testing.T, keys ...KeyPair) *keyring {
	t.Helper()
	kr, err := newKeyring(keys)
	if err != nil {
		t.Fatal(err)
	}
	return kr
}

// TestRotateAndDropCookieKeys walks the stored keys through the commands'
// operations.
func TestRotateAndDropCookieKeys(t *testing.T) {
	ctx := context.Background()
	st := newMemStore()
	now := time.Date(2026, 12, 4, 17, 0, 0, 0, time.UTC)

	if _, err := StoredCookieKeys(ctx, st); !errors.Is(err, ErrNoStoredCookieKeys) {
		t.Errorf("StoredCookieKeys on an empty store: %v, want ErrNoStoredCookieKeys", err)
	}
	if _, _, err := DropOldCookieKeys(ctx, st); !errors.Is(err, ErrNoStoredCookieKeys) {
		t.Errorf("DropOldCookieKeys on an empty store: %v, want ErrNoStoredCookieKeys", err)
	}
	if _, ok := st.settings[CookieKeysSetting]; ok {
		t.Fatal("DropOldCookieKeys on an empty store stored keys")
	}

	// With nothing stored, rotate makes the one pair.
	first, err := RotateCookieKeys(ctx, st, now)
	if err != nil || len(first) != 1 || !first[0].Created.Equal(now) {
		t.Fatalf("first rotation = %d keys, %v", len(first), err)
	}
	loaded, generated, err := LoadCookieKeys(ctx, st, "")
	if err != nil || !generated || !samePairs(loaded, pairsOf(first)) {
		t.Fatalf("LoadCookieKeys after a rotation: %v; want the rotated pair", err)
	}

	var history [][]StoredKey
	for i := range MaxStoredCookieKeys - 1 {
		keys, err := RotateCookieKeys(ctx, st, now.Add(time.Duration(i+1)*time.Hour))
		if err != nil {
			t.Fatalf("rotation %d: %v", i+2, err)
		}
		history = append(history, keys)
	}
	last := history[len(history)-1]
	if len(last) != MaxStoredCookieKeys {
		t.Fatalf("%d keys after %d rotations, want %d", len(last), MaxStoredCookieKeys, MaxStoredCookieKeys)
	}
	// Newest first, every earlier pair kept in order.
	for i := 1; i < len(history); i++ {
		if !sameKeys(history[i][1:], history[i-1]) {
			t.Fatalf("rotation %d did not keep the earlier pairs in order", i+2)
		}
		if !history[i][0].Created.After(history[i][1].Created) {
			t.Errorf("rotation %d: the new pair is not the newest", i+2)
		}
	}
	stored, err := StoredCookieKeys(ctx, st)
	if err != nil || !sameKeys(stored, last) {
		t.Fatalf("StoredCookieKeys = %v; want the last rotation's keys", err)
	}
	if _, err := RotateCookieKeys(ctx, st, now.Add(100*time.Hour)); !errors.Is(err, ErrTooManyCookieKeys) {
		t.Errorf("rotation past the maximum: %v, want ErrTooManyCookieKeys", err)
	}

	kept, dropped, err := DropOldCookieKeys(ctx, st)
	if err != nil || !sameKeys([]StoredKey{kept}, last[:1]) || !sameKeys(dropped, last[1:]) {
		t.Fatalf("DropOldCookieKeys = %d dropped, %v; want the newest kept, the rest dropped", len(dropped), err)
	}
	stored, _ = StoredCookieKeys(ctx, st)
	if !sameKeys(stored, last[:1]) || !stored[0].Created.Equal(last[0].Created) {
		t.Fatal("the store does not hold the newest pair alone")
	}
	before := st.calls("CompareAndSwapSetting")
	kept2, dropped, err := DropOldCookieKeys(ctx, st)
	if err != nil || len(dropped) != 0 || !sameKeys([]StoredKey{kept2}, []StoredKey{kept}) {
		t.Fatalf("second DropOldCookieKeys = %d dropped, %v; want none", len(dropped), err)
	}
	if st.calls("CompareAndSwapSetting") != before {
		t.Error("dropping nothing wrote to the store")
	}
}

// TestRotateConcurrently: rotations racing on one store all count, none
// overwrites another's pair.
func TestRotateConcurrently(t *testing.T) {
	ctx := context.Background()
	st := newMemStore()
	if _, _, err := LoadCookieKeys(ctx, st, ""); err != nil {
		t.Fatal(err)
	}
	const n = MaxStoredCookieKeys - 1
	var wg sync.WaitGroup
	start := make(chan struct{})
	made := make([][]StoredKey, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			<-start
			made[i], errs[i] = RotateCookieKeys(ctx, st, time.Now())
		})
	}
	close(start)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	stored, err := StoredCookieKeys(ctx, st)
	if err != nil || len(stored) != n+1 {
		t.Fatalf("%d keys stored after %d concurrent rotations of 1, %v; want %d", len(stored), n, err, n+1)
	}
	for i, keys := range made {
		found := false
		for _, k := range stored {
			found = found || samePairs([]KeyPair{k.KeyPair}, []KeyPair{keys[0].KeyPair})
		}
		if !found {
			t.Errorf("rotation %d's pair was lost", i)
		}
	}
}

func TestStoredCookieKeysFormat(t *testing.T) {
	k1, k2 := testKeys(t)[0], testKeys(t)[0]
	at := time.Date(2026, 12, 4, 17, 12, 14, 0, time.UTC)
	enc := EncodeStoredCookieKeys([]StoredKey{{KeyPair: k1, Created: at.In(time.FixedZone("X", 3600)).Add(300 * time.Millisecond)}, {KeyPair: k2}})
	legacy := EncodeCookieKeys([]KeyPair{k1, k2})

	tests := []struct {
		name    string
		in      string
		want    []StoredKey
		wantErr string
	}{
		{name: "encoded", in: string(enc), want: []StoredKey{{KeyPair: k1, Created: at}, {KeyPair: k2}}},
		{name: "earlier versions' plain form", in: legacy, want: []StoredKey{{KeyPair: k1}, {KeyPair: k2}}},
		{name: "unknown members ignored", in: `{"keys":[{"hash":"` + strings.Split(legacy, ":")[0] + `","block":"` + strings.Split(strings.Split(legacy, ",")[0], ":")[1] + `","by":"x"}],"v":2}`,
			want: []StoredKey{{KeyPair: k1}}},
		{name: "empty", in: "", wantErr: "no key pair given"},
		{name: "no keys", in: `{"keys":[]}`, wantErr: "no key pair stored"},
		{name: "not JSON", in: `{"keys":[` + legacy, wantErr: "not a valid JSON key list"},
		{name: "hash not a string", in: `{"keys":[{"hash":1,"block":"x"}]}`, wantErr: "not a valid JSON key list"},
		{name: "short block key", in: `{"keys":[{"hash":"` + strings.Split(legacy, ":")[0] + `","block":"AAAA"}]}`, wantErr: "entry 1 of 1: block key is 3 bytes"},
		{name: "missing hash", in: `{"keys":[{"block":"` + strings.Split(strings.Split(legacy, ",")[0], ":")[1] + `"}]}`, wantErr: "entry 1 of 1: hash key: empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseStoredCookieKeys([]byte(tt.in))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseStoredCookieKeys = %d keys, %v; want error %q", len(got), err, tt.wantErr)
				}
				for _, k := range []KeyPair{k1, k2} {
					h, b, _ := strings.Cut(k.Encode(), ":")
					if strings.Contains(err.Error(), h[:8]) || strings.Contains(err.Error(), b[:8]) {
						t.Errorf("error %q contains key material", err)
					}
				}
				return
			}
			if err != nil || !sameKeys(got, tt.want) {
				t.Fatalf("ParseStoredCookieKeys = %d keys, %v; want %d", len(got), err, len(tt.want))
			}
			for i := range got {
				if !got[i].Created.Equal(tt.want[i].Created) || got[i].Created.Location() != time.UTC {
					t.Errorf("key %d created %v, want %v in UTC", i, got[i].Created, tt.want[i].Created)
				}
			}
		})
	}
}

func TestFingerprint(t *testing.T) {
	k1, k2 := testKeys(t)[0], testKeys(t)[0]
	fp := k1.Fingerprint()
	if len(fp) != 12 || strings.Trim(fp, "0123456789abcdef") != "" {
		t.Fatalf("Fingerprint() = %q, want 12 hex digits", fp)
	}
	if fp == k2.Fingerprint() {
		t.Error("two pairs have one fingerprint")
	}
	if again, _ := ParseCookieKeys(k1.Encode()); again[0].Fingerprint() != fp {
		t.Error("the fingerprint depends on more than the key material")
	}
	h, b, _ := strings.Cut(k1.Encode(), ":")
	if strings.Contains(h+b, fp) {
		t.Error("the fingerprint is a piece of the key")
	}
}

// TestReloadKeys: a Manager picks up what the commands stored, and keeps
// its keys when the store cannot give it good ones.
func TestReloadKeys(t *testing.T) {
	ctx := context.Background()
	st, m, oldCookie := storedKeysManager(t)
	if changed, err := m.ReloadKeys(ctx); changed || err != nil {
		t.Fatalf("ReloadKeys with nothing changed = %v, %v", changed, err)
	}
	rotated, err := RotateCookieKeys(ctx, st, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if changed, err := m.ReloadKeys(ctx); !changed || err != nil {
		t.Fatalf("ReloadKeys after a rotation = %v, %v", changed, err)
	}
	if !samePairs(m.keys.Load().pairs, pairsOf(rotated)) {
		t.Fatal("the Manager does not use the rotated keys")
	}

	// Faults keep the current keys.
	st.settings[CookieKeysSetting] = []byte("garbage")
	if _, err := m.ReloadKeys(ctx); err == nil || !strings.Contains(err.Error(), CookieKeysSetting) {
		t.Errorf("ReloadKeys of a corrupt setting: %v; want an error naming it", err)
	}
	delete(st.settings, CookieKeysSetting)
	if _, err := m.ReloadKeys(ctx); !errors.Is(err, ErrNoStoredCookieKeys) {
		t.Errorf("ReloadKeys of a missing setting: %v; want ErrNoStoredCookieKeys", err)
	}
	down := errors.New("store down")
	st.setHook(func(context.Context, string) error { return down })
	if _, err := m.ReloadKeys(ctx); !errors.Is(err, down) {
		t.Errorf("ReloadKeys with the store down: %v; want its error", err)
	}
	st.setHook(nil)
	if !samePairs(m.keys.Load().pairs, pairsOf(rotated)) {
		t.Fatal("a failed reload changed the keys")
	}
	if _, err := m.Validate(ctx, oldCookie.Value); err != nil {
		t.Fatalf("old-key cookie after failed reloads: %v", err)
	}

	// RunKeyReload finds a drop on its own.
	st.settings[CookieKeysSetting] = EncodeStoredCookieKeys(rotated)
	if _, _, err := DropOldCookieKeys(ctx, st); err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { m.RunKeyReload(rctx, 10*time.Millisecond); close(done) }()
	deadline := time.Now().Add(10 * time.Second)
	for len(m.keys.Load().pairs) != 1 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	<-done
	if len(m.keys.Load().pairs) != 1 {
		t.Fatal("RunKeyReload did not pick up the drop within 10s")
	}
	if _, err := m.Validate(ctx, oldCookie.Value); !errors.Is(err, ErrTokenMalformed) {
		t.Errorf("old-key cookie after the drop: %v, want ErrTokenMalformed", err)
	}
}

// storedKeysManager returns a store with alice and generated cookie keys,
// a Manager on those keys, and a cookie of alice's it issued.
func storedKeysManager(t *testing.T) (*memStore, *Manager, *http.Cookie) {
	t.Helper()
	ctx := context.Background()
	st := newMemStore()
	alice := addUser(t, st, "alice@AdobeID", "authors")
	keys, _, err := LoadCookieKeys(ctx, st, "")
	if err != nil {
		t.Fatal(err)
	}
	m, err := NewManager(st, keys, ManagerConfig{CacheTTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	c, _, err := m.Issue(ctx, alice)
	if err != nil {
		t.Fatal(err)
	}
	return st, m, c
}
