package session

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// FuzzParseStoredCookieKeys feeds arbitrary stored values to the parser
// every replica runs on the cookie keys it re-reads. Whatever the store
// holds, it must not panic; an error carries no run of the input that
// could be key material; and what parses is a valid key list that the
// encoder writes back in one canonical form.
func FuzzParseStoredCookieKeys(f *testing.F) {
	k1, k2 := testKeys(f)[0], testKeys(f)[0]
	at := time.Date(2026, 12, 4, 17, 12, 14, 0, time.UTC)
	h, b, _ := strings.Cut(k1.Encode(), ":")
	for _, s := range []string{
		string(EncodeStoredCookieKeys([]StoredKey{{KeyPair: k1, Created: at}, {KeyPair: k2}})),
		EncodeCookieKeys([]KeyPair{k1, k2}),
		`{"keys":[{"hash":"` + h + `","block":"` + b + `","created":"2026-12-04T17:12:14.5+01:00"}]}`,
		`{"keys":[{"hash":"` + h + `","block":"` + b + `","created":"yesterday"}]}`,
		`{"keys":[{"hash":"` + h + `","block":"` + h + `"}]}`,
		`{"keys":null}`, `{"keys":[{}]}`, `{"keys":[]}`, `{}`, `{`, `{"keys":[` + strings.Repeat("[", 1000),
		"\ufeff" + string(EncodeStoredCookieKeys([]StoredKey{{KeyPair: k1}})), " \n", "",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, v []byte) {
		keys, err := ParseStoredCookieKeys(v)
		if err != nil {
			if keys != nil {
				t.Fatalf("error %v with %d keys", err, len(keys))
			}
			for _, run := range base64Runs(string(v), 16) {
				if strings.Contains(err.Error(), run) {
					t.Fatalf("error %q quotes the input's %q", err, run)
				}
			}
			return
		}
		if len(keys) == 0 {
			t.Fatal("no error and no keys")
		}
		for i, k := range keys {
			if err := k.validate(); err != nil {
				t.Fatalf("key %d parsed but is invalid: %v", i, err)
			}
			if !k.Created.IsZero() && k.Created.Location() != time.UTC {
				t.Fatalf("key %d created %v, not in UTC", i, k.Created)
			}
		}
		enc := EncodeStoredCookieKeys(keys)
		again, err := ParseStoredCookieKeys(enc)
		if err != nil || !sameKeys(again, keys) {
			t.Fatalf("the encoded keys do not parse back: %v", err)
		}
		for i := range keys {
			if !again[i].Created.Equal(keys[i].Created.Truncate(time.Second)) {
				t.Fatalf("key %d: created %v, back %v", i, keys[i].Created, again[i].Created)
			}
		}
		if !bytes.Equal(EncodeStoredCookieKeys(again), enc) {
			t.Fatal("encoding is not canonical")
		}
	})
}

// base64Runs returns the runs of base64 characters in s that are at least
// n long: what key material looks like.
func base64Runs(s string, n int) []string {
	var runs []string
	for _, f := range strings.FieldsFunc(s, func(r rune) bool {
		return !(r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || strings.ContainsRune("+/-_", r))
	}) {
		if len(f) >= n {
			runs = append(runs, f)
		}
	}
	return runs
}
