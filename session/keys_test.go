package session

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
)

func seq(n int, start byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = start + byte(i)
	}
	return b
}

func TestParseCookieKeys(t *testing.T) {
	h32, h64 := seq(32, 1), seq(64, 100)
	b16, b24, b32 := seq(16, 200), seq(24, 50), seq(32, 150)
	std := base64.StdEncoding.EncodeToString
	rawURL := base64.RawURLEncoding.EncodeToString
	url := base64.URLEncoding.EncodeToString
	rawStd := base64.RawStdEncoding.EncodeToString

	tests := []struct {
		name    string
		in      string
		want    []KeyPair
		wantErr string // substring; "" means no error
	}{
		{name: "one pair std padded", in: std(h32) + ":" + std(b16), want: []KeyPair{{h32, b16}}},
		{name: "one pair raw url", in: rawURL(h64) + ":" + rawURL(b32), want: []KeyPair{{h64, b32}}},
		{name: "url padded and raw std", in: url(h64) + ":" + rawStd(b24), want: []KeyPair{{h64, b24}}},
		{name: "two pairs with spaces", in: " " + std(h64) + ":" + std(b32) + " , " + rawURL(h32) + ":" + rawURL(b16) + " ",
			want: []KeyPair{{h64, b32}, {h32, b16}}},
		{name: "encode round trip", in: EncodeCookieKeys([]KeyPair{{h64, b32}, {h32, b24}}), want: []KeyPair{{h64, b32}, {h32, b24}}},
		{name: "blank", in: "  ", wantErr: "no key pair"},
		{name: "no colon", in: std(h64) + std(b32), wantErr: "entry 1 of 1: no ':'"},
		{name: "bad base64 hash", in: "!!!" + std(h64) + ":" + std(b32), wantErr: "entry 1 of 1: hash key: not valid base64"},
		{name: "bad base64 block", in: std(h64) + ":" + std(b32)[:10] + "*" + std(b32)[11:], wantErr: "block key: not valid base64"},
		{name: "mixed alphabets", in: std(h64) + ":" + "ab+c-d_e", wantErr: "block key: not valid base64"},
		{name: "short hash key", in: std(seq(31, 1)) + ":" + std(b16), wantErr: "hash key is 31 bytes, want at least 32"},
		{name: "wrong block size", in: std(h64) + ":" + std(seq(20, 9)), wantErr: "block key is 20 bytes, want 16, 24 or 32"},
		{name: "empty block key", in: std(h64) + ":", wantErr: "block key: empty"},
		{name: "same keys", in: std(b32) + ":" + std(b32), wantErr: "hash key and block key are the same"},
		{name: "empty second entry", in: std(h64) + ":" + std(b32) + ",", wantErr: "entry 2 of 2: empty"},
		{name: "empty middle entry", in: std(h64) + ":" + std(b32) + ", ," + std(h32) + ":" + std(b16), wantErr: "entry 2 of 3: empty"},
		{name: "bad second entry", in: std(h64) + ":" + std(b32) + "," + std(h32) + ":" + std(seq(8, 3)), wantErr: "entry 2 of 2: block key is 8 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseCookieKeys(tt.in)
			if tt.wantErr != "" {
				if err == nil {
					t.Fatalf("ParseCookieKeys: got %d pairs, want error %q", len(got), tt.wantErr)
				}
				if !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("error %q does not contain %q", err, tt.wantErr)
				}
				// No key material in the message, in any spelling.
				for _, entry := range strings.Split(tt.in, ",") {
					for _, part := range strings.Split(entry, ":") {
						part = strings.Trim(strings.TrimSpace(part), "=")
						if len(part) >= 8 && strings.Contains(err.Error(), part[:8]) {
							t.Errorf("error %q contains key material %q", err, part[:8])
						}
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseCookieKeys: %v", err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %d pairs, want %d", len(got), len(tt.want))
			}
			for i := range got {
				if !bytes.Equal(got[i].Hash, tt.want[i].Hash) || !bytes.Equal(got[i].Block, tt.want[i].Block) {
					t.Errorf("pair %d differs", i)
				}
			}
		})
	}
}

func TestKeyPairRedacted(t *testing.T) {
	k, err := GenerateKeyPair()
	if err != nil {
		t.Fatal(err)
	}
	if len(k.Hash) != 64 || len(k.Block) != 32 {
		t.Fatalf("generated %d/%d bytes, want 64/32", len(k.Hash), len(k.Block))
	}
	j, err := json.Marshal(struct{ Keys []KeyPair }{[]KeyPair{k}})
	if err != nil {
		t.Fatal(err)
	}
	outputs := []string{
		k.String(),
		fmt.Sprintf("%v %s %x %X %d %q %+v %#v", k, k, k, k, k, k, k, k),
		fmt.Sprint([]KeyPair{k}),
		string(j),
	}
	enc := k.Encode()
	h, b, _ := strings.Cut(enc, ":")
	leaks := []string{h[:12], b[:12], fmt.Sprintf("%x", k.Hash[:6]), fmt.Sprintf("%x", k.Block[:6]),
		base64.StdEncoding.EncodeToString(k.Hash)[:12]}
	for _, out := range outputs {
		if !strings.Contains(out, "[redacted]") {
			t.Errorf("output %q is not redacted", out)
		}
		for _, l := range leaks {
			if strings.Contains(out, l) {
				t.Errorf("output %q leaks key material %q", out, l)
			}
		}
	}
	got, err := ParseCookieKeys(enc)
	if err != nil || len(got) != 1 || !bytes.Equal(got[0].Hash, k.Hash) || !bytes.Equal(got[0].Block, k.Block) {
		t.Fatalf("Encode does not parse back: %v", err)
	}
}

func TestLoadCookieKeys(t *testing.T) {
	ctx := context.Background()

	t.Run("configured", func(t *testing.T) {
		st := newMemStore()
		k, _ := GenerateKeyPair()
		keys, generated, err := LoadCookieKeys(ctx, st, k.Encode())
		if err != nil || generated || len(keys) != 1 || !bytes.Equal(keys[0].Hash, k.Hash) {
			t.Fatalf("LoadCookieKeys = %d keys, generated %v, %v", len(keys), generated, err)
		}
		if st.calls("GetOrCreateSetting") != 0 {
			t.Error("configured keys must not touch the store")
		}
	})

	t.Run("configured but invalid", func(t *testing.T) {
		if _, _, err := LoadCookieKeys(ctx, newMemStore(), "nonsense"); err == nil {
			t.Fatal("want error")
		}
	})

	t.Run("generated once", func(t *testing.T) {
		st := newMemStore()
		first, generated, err := LoadCookieKeys(ctx, st, "")
		if err != nil || !generated || len(first) != 1 {
			t.Fatalf("first LoadCookieKeys = %d keys, generated %v, %v", len(first), generated, err)
		}
		if len(first[0].Hash) != 64 || len(first[0].Block) != 32 {
			t.Errorf("generated %d/%d bytes", len(first[0].Hash), len(first[0].Block))
		}
		second, generated, err := LoadCookieKeys(ctx, st, " ")
		if err != nil || !generated || len(second) != 1 {
			t.Fatalf("second LoadCookieKeys = %d keys, generated %v, %v", len(second), generated, err)
		}
		if !bytes.Equal(first[0].Hash, second[0].Hash) || !bytes.Equal(first[0].Block, second[0].Block) {
			t.Fatal("second load returned other keys: a restart would sign everyone out")
		}
		stored, err := ParseStoredCookieKeys(st.settings[CookieKeysSetting])
		if err != nil || !samePairs(pairsOf(stored), first) {
			t.Errorf("stored setting is not the generated key pair (%v)", err)
		} else if time.Since(stored[0].Created) > time.Minute {
			t.Errorf("stored creation time %v, want about now", stored[0].Created)
		}

		// A cookie from one "replica" validates on another.
		u := addUser(t, st, "u1@AdobeID", "g")
		m1, err := NewManager(st, first, ManagerConfig{})
		if err != nil {
			t.Fatal(err)
		}
		m2, err := NewManager(st, second, ManagerConfig{})
		if err != nil {
			t.Fatal(err)
		}
		c, _, err := m1.Issue(ctx, u)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := m2.Validate(ctx, c.Value); err != nil {
			t.Fatalf("Validate on second manager: %v", err)
		}
	})

	t.Run("stored by an earlier version", func(t *testing.T) {
		st := newMemStore()
		k, _ := GenerateKeyPair()
		st.settings[CookieKeysSetting] = []byte(k.Encode())
		keys, generated, err := LoadCookieKeys(ctx, st, "")
		if err != nil || !generated || !samePairs(keys, []KeyPair{k}) {
			t.Fatalf("LoadCookieKeys = %d keys, %v; want the stored pair", len(keys), err)
		}
	})

	t.Run("corrupt stored setting", func(t *testing.T) {
		st := newMemStore()
		st.settings[CookieKeysSetting] = []byte("garbage")
		if _, _, err := LoadCookieKeys(ctx, st, ""); err == nil || !strings.Contains(err.Error(), CookieKeysSetting) {
			t.Fatalf("err = %v, want one naming the setting", err)
		}
	})
}
