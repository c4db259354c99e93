package session

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// decodedLen is the number of cookie values remembered as decoded.
func (m *Manager) decodedLen() int { return m.decoded.Len() }

// TestDecodedValues covers the memo of decoded cookie values: it changes
// how much work a validation does, never its answer.
func TestDecodedValues(t *testing.T) {
	ctx := context.Background()
	const ttl = 2 * time.Hour
	f := newFixture(t, ManagerConfig{TTL: ttl, CacheTTL: 10 * time.Hour})
	c, _ := f.issue(t, f.alice)

	if _, err := f.m.Validate(ctx, c.Value); err != nil {
		t.Fatal(err)
	}
	if n := f.m.decodedLen(); n != 1 {
		t.Fatalf("%d values remembered after one validation, want 1", n)
	}
	calls := f.st.totalCalls()
	v, err := f.m.Validate(ctx, c.Value)
	if err != nil || v.User.ID != f.alice.ID {
		t.Fatalf("remembered value: %v, %v", v, err)
	}
	if f.st.totalCalls() != calls {
		t.Error("a remembered value cost a store call")
	}

	// A value that does not decode is neither accepted nor remembered.
	bad := c.Value[:len(c.Value)-2] + "xx"
	if _, err := f.m.Validate(ctx, bad); !errors.Is(err, ErrTokenMalformed) {
		t.Errorf("tampered value: %v, want ErrTokenMalformed", err)
	}
	if n := f.m.decodedLen(); n != 1 {
		t.Errorf("%d values remembered after a bad one, want 1", n)
	}

	// ForgetUser: the next validation reads the user again.
	f.m.ForgetUser(f.alice.ID)
	before := f.st.calls("GetLoginTokenWithUser")
	if _, err := f.m.Validate(ctx, c.Value); err != nil {
		t.Fatal(err)
	}
	if f.st.calls("GetLoginTokenWithUser") != before+1 {
		t.Error("after ForgetUser, a remembered value did not read the user again")
	}

	// Past half-life a remembered value still gets its token extended.
	f.clk.Advance(ttl/2 + time.Minute)
	v, err = f.m.Validate(ctx, c.Value)
	if err != nil || v.Refresh == nil {
		t.Fatalf("past half-life: Refresh %v, err %v", v.Refresh, err)
	}
	for _, val := range []string{v.Refresh.Value, c.Value, v.Refresh.Value, c.Value} {
		if v2, err := f.m.Validate(ctx, val); err != nil || v2.Refresh != nil {
			t.Fatalf("after refresh: Refresh %v, err %v", v2.Refresh, err)
		}
	}
	if n := f.st.calls("ExtendLoginToken"); n != 1 {
		t.Errorf("ExtendLoginToken called %d times, want 1", n)
	}

	// Revoke forgets the value; the token is gone either way.
	if err := f.m.Revoke(ctx, c.Value); err != nil {
		t.Fatal(err)
	}
	for _, val := range []string{c.Value, v.Refresh.Value} {
		if _, err := f.m.Validate(ctx, val); !errors.Is(err, ErrTokenUnknown) {
			t.Errorf("revoked token: %v, want ErrTokenUnknown", err)
		}
	}
	f.m.prune(f.clk.Now())
	if n := f.m.decodedLen(); n != 0 {
		t.Errorf("%d values remembered after revoke and prune, want 0", n)
	}
}

func TestDecodedValuesExpire(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, ManagerConfig{TTL: time.Hour, CacheTTL: 10 * time.Hour})
	c, _ := f.issue(t, f.alice)
	if _, err := f.m.Validate(ctx, c.Value); err != nil {
		t.Fatal(err)
	}
	f.clk.Advance(time.Hour)
	if _, err := f.m.Validate(ctx, c.Value); !errors.Is(err, ErrTokenExpired) {
		t.Fatalf("expired token: %v, want ErrTokenExpired", err)
	}
	f.m.prune(f.clk.Now())
	if n := f.m.decodedLen(); n != 0 {
		t.Errorf("%d values remembered after expiry and prune, want 0", n)
	}
}

func TestDecodedValuesNeedTheCache(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, ManagerConfig{CacheTTL: -1})
	c, _ := f.issue(t, f.alice)
	for range 2 {
		if _, err := f.m.Validate(ctx, c.Value); err != nil {
			t.Fatal(err)
		}
	}
	if n := f.m.decodedLen(); n != 0 {
		t.Errorf("%d values remembered with the cache off, want 0", n)
	}
}

// BenchmarkDecode is what a validation of a cookie value not seen before
// costs on top of the cache lookup: the HMAC check and AES decryption of
// gorilla/securecookie, and the parsing of id and secret. Values seen
// before skip it (BenchmarkValidateWarm).
func BenchmarkDecode(b *testing.B) {
	f := newFixture(b, ManagerConfig{})
	c, _ := f.issue(b, f.alice)
	b.ReportAllocs()
	for b.Loop() {
		if _, _, ok := f.m.decode(c.Value); !ok {
			b.Fatal("does not decode")
		}
	}
}

// TestEvictionKeepsForgetUser: when the caches are full, user entries and
// token entries are evicted independently; ForgetUser must still reach
// every cached token of the user, so an evicted user entry is marked
// stale (the tokens pointing at it read the store again) rather than left
// trusted where ForgetUser can no longer find it.
func TestEvictionKeepsForgetUser(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, ManagerConfig{CacheTTL: time.Hour})
	f.m.newCaches(8)
	var users []*User
	var values []string
	for i := range 40 {
		u := addUser(t, f.st, fmt.Sprintf("user%02d@AdobeID", i), "readers")
		c, _ := f.issue(t, u)
		if _, err := f.m.Validate(ctx, c.Value); err != nil {
			t.Fatal(err)
		}
		users = append(users, u)
		values = append(values, c.Value)
	}
	if n := f.m.users.Len(); n > 8 {
		t.Fatalf("%d user entries, want at most 8", n)
	}
	for i, u := range users {
		if err := f.st.AddMembership(ctx, u.ID, "admins", SourceLocal); err != nil {
			t.Fatal(err)
		}
		f.m.ForgetUser(u.ID)
		v, err := f.m.Validate(ctx, values[i])
		if err != nil {
			t.Fatal(err)
		}
		if g := strings.Join(v.User.Groups(), ","); g != "admins,readers" {
			t.Errorf("%s after ForgetUser: groups %q, want admins,readers", u.ID, g)
		}
	}
}
