package session

import (
	"context"
	"errors"
	"strings"
	"testing"
)

// FuzzDecodeCookie feeds arbitrary login-token cookie values to the
// Manager. Whatever arrives, it must not panic, must answer with one of
// the token errors (never a store error: the store is fine), and nothing
// but the one login token issued may validate or decode: the HMAC is the
// only thing between a forged value and a user.
func FuzzDecodeCookie(f *testing.F) {
	ctx := context.Background()
	st, clk := newMemStore(), newClock()
	alice := addUser(f, st, "alice@AdobeID", "authors")
	// Keys of this process: fuzzing workers are processes of their own,
	// and a value one of them issued must mean nothing to another.
	m, err := NewManager(st, testKeys(f), ManagerConfig{Now: clk.Now})
	if err != nil {
		f.Fatal(err)
	}
	c, tok, err := m.Issue(ctx, alice)
	if err != nil {
		f.Fatal(err)
	}
	realID, realSecret, ok := m.decode(c.Value)
	if !ok {
		f.Fatal("the issued cookie does not decode")
	}
	realIDs := string(realID)
	st2 := newMemStore()
	other, err := NewManager(st2, testKeys(f), ManagerConfig{Now: clk.Now})
	if err != nil {
		f.Fatal(err)
	}
	foreign, _, err := other.Issue(ctx, addUser(f, st2, "alice@AdobeID"))
	if err != nil {
		f.Fatal(err)
	}

	v := c.Value
	for _, s := range []string{
		v, v[:len(v)/2], v + "A", v[1:], strings.ToUpper(v), strings.Replace(v, "A", "B", 1),
		foreign.Value, "", "garbage", "login-token=" + v, `"` + v + `"`, strings.Repeat("A", MaxCookieLen+1),
		"MTc3MjM1NTYwMHxBQUFBfAAA", "a|b|c", "\x00\xff",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, value string) {
		id, secret, ok := m.decode(value)
		if ok && (string(id) != realIDs || secret != realSecret) {
			t.Fatalf("a value that was never issued decodes: %q", value)
		}
		got, err := m.Validate(ctx, value)
		switch {
		case err == nil:
			if got.Token.ID != tok.ID || got.User.ID != alice.ID {
				t.Fatalf("%q validates as token %q of %q", value, got.Token.ID, got.User.ID)
			}
		case !errors.Is(err, ErrTokenMalformed) && !errors.Is(err, ErrTokenUnknown) && !errors.Is(err, ErrTokenExpired):
			t.Fatalf("%q: error %v is not a token error", value, err)
		case !ok && !errors.Is(err, ErrTokenMalformed):
			t.Fatalf("%q does not decode, but Validate says %v", value, err)
		}
	})
}
