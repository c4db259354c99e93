package assertion_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-proxy/gatehouse/auth"
	"github.com/gatehouse-proxy/gatehouse/auth/assertion"
	"github.com/gatehouse-proxy/gatehouse/session"
	"github.com/gatehouse-proxy/gatehouse/session/sqlite"
)

const (
	iss = "https://gatehouse.example"
	aud = "aem-author"
)

var ada = &auth.Identity{UserID: "7F8F0000@AdobeID", Email: "ada@example.com", Groups: []string{"authors", "dam-users"}}

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func openStore(t *testing.T) session.Store {
	t.Helper()
	s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "g.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func newIssuer(t *testing.T, store session.Store, clk *clock) *assertion.Issuer {
	t.Helper()
	keys, err := assertion.Load(context.Background(), store, clk.now())
	if err != nil {
		t.Fatal(err)
	}
	is, err := assertion.New(assertion.Config{Issuer: iss, Audience: aud, Store: store, Now: clk.now}, keys)
	if err != nil {
		t.Fatal(err)
	}
	return is
}

func jwksOf(t *testing.T, is *assertion.Issuer) assertion.KeySet {
	t.Helper()
	w := httptest.NewRecorder()
	is.JWKS().ServeHTTP(w, httptest.NewRequest("GET", "/gatehouse/jwks.json", nil))
	ks, err := assertion.ParseJWKS(w.Body.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	return ks
}

// payload decodes the token's claims as plain JSON, independently of the
// package's Claims type.
func payload(t *testing.T, tok string) (header, claims map[string]any) {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWS: %q", tok)
	}
	dec := func(s string) map[string]any {
		b, err := base64.RawURLEncoding.DecodeString(s)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	return dec(parts[0]), dec(parts[1])
}

func TestSignVerifyClaimsExact(t *testing.T) {
	clk := &clock{t: time.Date(2026, 12, 5, 7, 0, 0, 0, time.UTC)}
	is := newIssuer(t, openStore(t), clk)
	hostile := []string{"x,administrators", " authors ", `"],"admin":true,"x":["`, "a\x00b", "grüppe\n", ""}
	tests := []struct {
		name   string
		id     *auth.Identity
		groups []any
	}{
		{"plain", ada, []any{"authors", "dam-users"}},
		{"no groups: empty array", &auth.Identity{UserID: "u2@AdobeID"}, []any{}},
		{"hostile group names survive as array", &auth.Identity{UserID: "u3@AdobeID", Email: "e@x", Groups: hostile},
			[]any{hostile[0], hostile[1], hostile[2], hostile[3], hostile[4], hostile[5]}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok := is.Assertion(tt.id)
			h, c := payload(t, tok)
			if h["alg"] != "ES256" || h["typ"] != "JWT" || h["kid"] != is.KeyIDs()[0] || len(h) != 3 {
				t.Errorf("header %v", h)
			}
			jti, _ := c["jti"].(string)
			if b, err := base64.RawURLEncoding.DecodeString(jti); err != nil || len(b) != 16 {
				t.Errorf("jti %q: want 16 random bytes", jti)
			}
			delete(c, "jti")
			want := map[string]any{
				"iss": iss, "aud": []any{aud}, "sub": tt.id.UserID, "email": tt.id.Email, "groups": tt.groups,
				"iat": float64(clk.now().Unix()), "exp": float64(clk.now().Add(assertion.DefaultLifetime).Unix()),
			}
			wj, _ := json.Marshal(want)
			gj, _ := json.Marshal(c)
			if string(wj) != string(gj) {
				t.Errorf("claims\n got %s\nwant %s", gj, wj)
			}
			cl, err := assertion.Verify(jwksOf(t, is), tok, iss, aud, clk.now(), 0)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(cl.Groups, tt.id.Groups) && len(tt.id.Groups) > 0 {
				t.Errorf("verified groups %q, want %q", cl.Groups, tt.id.Groups)
			}
		})
	}
}

func TestVerifyRefuses(t *testing.T) {
	clk := &clock{t: time.Now()}
	is := newIssuer(t, openStore(t), clk)
	other := newIssuer(t, openStore(t), clk)
	tok := is.Assertion(ada)
	ks := jwksOf(t, is)
	parts := strings.Split(tok, ".")
	_, claims := payload(t, tok)
	claims["sub"] = "admin@AdobeID"
	forged, _ := json.Marshal(claims)
	none := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + parts[1] + "."
	tests := []struct {
		name, tok, iss, aud string
		at                  time.Time
	}{
		{"another Gatehouse's key", other.Assertion(ada), iss, aud, clk.now()},
		{"claims changed", parts[0] + "." + base64.RawURLEncoding.EncodeToString(forged) + "." + parts[2], iss, aud, clk.now()},
		{"alg none", none, iss, aud, clk.now()},
		{"wrong audience", tok, iss, "other", clk.now()},
		{"wrong issuer", tok, "https://evil.example", aud, clk.now()},
		{"expired", tok, iss, aud, clk.now().Add(assertion.DefaultLifetime + time.Second)},
		{"too long", strings.Repeat("a", assertion.MaxAssertionLen+1), iss, aud, clk.now()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := assertion.Verify(ks, tt.tok, tt.iss, tt.aud, tt.at, 0); err == nil {
				t.Fatal("verified")
			}
		})
	}
}

// TestCache: the same assertion until less than half its lifetime
// remains, then a new one (new jti); a change of email, groups or keys
// signs anew at once.
func TestCache(t *testing.T) {
	clk := &clock{t: time.Date(2026, 12, 5, 7, 0, 0, 0, time.UTC)}
	store := openStore(t)
	is := newIssuer(t, store, clk)
	jti := func(tok string) string { _, c := payload(t, tok); return c["jti"].(string) }
	first := is.Assertion(ada)
	clk.add(assertion.DefaultLifetime/2 - time.Second)
	if got := is.Assertion(&auth.Identity{UserID: ada.UserID, Email: ada.Email, Groups: slices.Clone(ada.Groups)}); got != first {
		t.Fatal("a new assertion before half the lifetime passed")
	}
	if is.Assertion(&auth.Identity{UserID: ada.UserID, Email: ada.Email, Groups: []string{"authors"}}) == first {
		t.Fatal("groups changed, same assertion")
	}
	if is.Assertion(&auth.Identity{UserID: ada.UserID, Email: "new@example.com", Groups: ada.Groups}) == first {
		t.Fatal("email changed, same assertion")
	}
	a := is.Assertion(ada)
	if a == first || jti(a) == jti(first) {
		t.Fatal("back to the old identity must sign anew (the cache holds one per user)")
	}
	if is.Assertion(ada) != a {
		t.Fatal("not cached")
	}
	clk.add(time.Second)
	if is.Assertion(ada) != a {
		t.Fatal("refreshed early")
	}
	clk.add(assertion.DefaultLifetime/2 - time.Second)
	b := is.Assertion(ada)
	if b == a || jti(b) == jti(a) {
		t.Fatal("no new jti once half the lifetime passed")
	}
	if _, err := assertion.Rotate(context.Background(), store, clk.now()); err != nil {
		t.Fatal(err)
	}
	if _, err := is.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	c := is.Assertion(ada)
	if c == b {
		t.Fatal("keys rotated, same assertion")
	}
	if h, _ := payload(t, c); h["kid"] != is.KeyIDs()[0] {
		t.Errorf("signed with %v, want the new key %s", h["kid"], is.KeyIDs()[0])
	}
}

// TestRotationAndReplicas: two Issuers over one store share the key; a
// rotation made through the store reaches both, the old key still
// verifies until dropped, and then no longer.
func TestRotationAndReplicas(t *testing.T) {
	ctx := context.Background()
	clk := &clock{t: time.Now()}
	store := openStore(t)
	a, b := newIssuer(t, store, clk), newIssuer(t, store, clk)
	if !slices.Equal(a.KeyIDs(), b.KeyIDs()) || len(a.KeyIDs()) != 1 {
		t.Fatalf("replicas use keys %v and %v, want the same one", a.KeyIDs(), b.KeyIDs())
	}
	old := a.Assertion(ada)
	if _, err := assertion.Verify(jwksOf(t, b), old, iss, aud, clk.now(), 0); err != nil {
		t.Fatalf("replica b does not verify replica a's assertion: %v", err)
	}
	rotated, err := assertion.Rotate(ctx, store, clk.now())
	if err != nil {
		t.Fatal(err)
	}
	for _, is := range []*assertion.Issuer{a, b} {
		if changed, err := is.Reload(ctx); err != nil || !changed {
			t.Fatalf("Reload: %v, %v", changed, err)
		}
		if ids := is.KeyIDs(); len(ids) != 2 || ids[0] != rotated[0].ID {
			t.Fatalf("after rotation: keys %v, want %s first", ids, rotated[0].ID)
		}
	}
	if _, err := assertion.Verify(jwksOf(t, b), old, iss, aud, clk.now(), 0); err != nil {
		t.Fatalf("old kid no longer verifies after rotation: %v", err)
	}
	if _, err := assertion.Verify(jwksOf(t, a), b.Assertion(ada), iss, aud, clk.now(), 0); err != nil {
		t.Fatal(err)
	}
	kept, dropped, err := assertion.DropOld(ctx, store)
	if err != nil || kept.ID != rotated[0].ID || len(dropped) != 1 || dropped[0].ID != rotated[1].ID {
		t.Fatalf("DropOld: %v %v %v", kept, dropped, err)
	}
	if _, err := a.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := assertion.Verify(jwksOf(t, a), old, iss, aud, clk.now(), 0); err == nil {
		t.Fatal("dropped key still verifies")
	}
}

func TestRotateBound(t *testing.T) {
	ctx := context.Background()
	store := openStore(t)
	for range assertion.MaxKeys {
		if _, err := assertion.Rotate(ctx, store, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := assertion.Rotate(ctx, store, time.Now()); !errors.Is(err, assertion.ErrTooManyKeys) {
		t.Fatalf("rotate past the bound: %v", err)
	}
	if _, _, err := assertion.DropOld(ctx, openStore(t)); !errors.Is(err, assertion.ErrNoKeys) {
		t.Fatalf("drop-old on an empty store: %v", err)
	}
}

// TestRunReload: a change notification makes a running replica pick up a
// rotation without waiting for its poll.
func TestRunReload(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	clk := &clock{t: time.Now()}
	store := openStore(t)
	is := newIssuer(t, store, clk)
	go is.RunReload(ctx, time.Hour)
	rotated, err := assertion.Rotate(ctx, store, clk.now())
	if err != nil {
		t.Fatal(err)
	}
	is.Changed(session.Change{Kind: session.ChangeSetting, ID: "cookie_keys"}) // not ours
	is.Changed(session.Change{Kind: session.ChangeSetting, ID: assertion.KeysSetting})
	for is.KeyIDs()[0] != rotated[0].ID {
		select {
		case <-ctx.Done():
			return
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func TestKeysNeverPrinted(t *testing.T) {
	k, err := assertion.GenerateKey(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	d, _ := k.Private.Bytes()
	enc, _ := assertion.EncodeKeys([]assertion.Key{k})
	for _, s := range []string{k.String(), k.GoString(), fmt.Sprintf("%v %s %x %d %+v %#v", k, k, k, k, k, k)} {
		if strings.Contains(s, base64.RawURLEncoding.EncodeToString(d)) || !strings.Contains(s, k.ID) {
			t.Errorf("%q", s)
		}
	}
	back, err := assertion.ParseKeys(enc)
	if err != nil || back[0].ID != k.ID {
		t.Fatalf("ParseKeys: %v %v", back, err)
	}
	for _, bad := range []string{"", "{}", `{"keys":[]}`, `{"keys":[{"d":"!!"}]}`, `{"keys":[{"d":"AAAA"}]}`} {
		if _, err := assertion.ParseKeys([]byte(bad)); err == nil {
			t.Errorf("ParseKeys(%q) accepted", bad)
		}
	}
}

func TestNewRefuses(t *testing.T) {
	k, _ := assertion.GenerateKey(time.Now())
	for _, c := range []assertion.Config{
		{Audience: aud}, {Issuer: iss},
		{Issuer: iss, Audience: aud, Lifetime: assertion.MaxLifetime + time.Second},
		{Issuer: iss, Audience: aud, Lifetime: time.Second},
	} {
		if _, err := assertion.New(c, []assertion.Key{k}); err == nil {
			t.Errorf("New(%+v) accepted", c)
		}
	}
}

// TestVerifier: the Go verifier fetches the JWKS, and again for a kid it
// does not know (after a rotation).
func TestVerifier(t *testing.T) {
	ctx := context.Background()
	clk := &clock{t: time.Now()}
	store := openStore(t)
	is := newIssuer(t, store, clk)
	srv := httptest.NewServer(is.JWKS())
	defer srv.Close()
	v := &assertion.Verifier{JWKSURL: srv.URL, Issuer: iss, Audience: aud, Client: http.DefaultClient, MinRefetch: time.Nanosecond}
	c, err := v.Verify(ctx, is.Assertion(ada))
	if err != nil || c.Subject != ada.UserID {
		t.Fatalf("Verify: %v %v", c, err)
	}
	if _, err := assertion.Rotate(ctx, store, clk.now()); err != nil {
		t.Fatal(err)
	}
	if _, err := is.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(ctx, is.Assertion(ada)); err != nil {
		t.Fatalf("after rotation: %v", err)
	}
	if _, err := v.Verify(ctx, "x.y.z"); err == nil {
		t.Fatal("verified garbage")
	}
}

// TestCacheBound: a full cache drops the entries due for a refresh first,
// and all of them when that is not enough; a dropped user's next request
// signs anew.
func TestCacheBound(t *testing.T) {
	clk := &clock{t: time.Date(2026, 12, 5, 7, 0, 0, 0, time.UTC)}
	keys, err := assertion.Load(context.Background(), openStore(t), clk.now())
	if err != nil {
		t.Fatal(err)
	}
	is, err := assertion.New(assertion.Config{Issuer: iss, Audience: aud, MaxCached: 2, Now: clk.now}, keys)
	if err != nil {
		t.Fatal(err)
	}
	user := func(n string) *auth.Identity { return &auth.Identity{UserID: n} }
	old := is.Assertion(user("old"))
	clk.add(assertion.DefaultLifetime / 2) // old is due for a refresh
	a := is.Assertion(user("a"))
	b := is.Assertion(user("b")) // full: old goes, a stays
	if is.Assertion(user("a")) != a {
		t.Fatal("a fresh entry was dropped while a stale one could go")
	}
	// old was dropped, so it signs anew; a and b are fresh, so making
	// room for old empties the cache, and b signs anew too.
	if is.Assertion(user("old")) == old {
		t.Fatal("a dropped entry served")
	}
	if is.Assertion(user("b")) == b {
		t.Fatal("the cache was not emptied when nothing was stale")
	}
}
