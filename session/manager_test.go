package session

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// memStore is an in-memory Store for the manager's tests. It counts calls
// per method, and hook, when set, runs first in every call and can fail it.
type memStore struct {
	mu       sync.Mutex
	users    map[string]*User
	tokens   map[string]*LoginToken
	settings map[string][]byte
	counts   map[string]int
	hook     func(ctx context.Context, method string) error
}

func newMemStore() *memStore {
	return &memStore{
		users:    map[string]*User{},
		tokens:   map[string]*LoginToken{},
		settings: map[string][]byte{},
		counts:   map[string]int{},
	}
}

func (s *memStore) enter(ctx context.Context, method string) error {
	s.mu.Lock()
	s.counts[method]++
	hook := s.hook
	s.mu.Unlock()
	if hook != nil {
		if err := hook(ctx, method); err != nil {
			return err
		}
	}
	return ctx.Err()
}

func (s *memStore) setHook(h func(ctx context.Context, method string) error) {
	s.mu.Lock()
	s.hook = h
	s.mu.Unlock()
}

func (s *memStore) calls(method string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.counts[method]
}

func (s *memStore) totalCalls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, c := range s.counts {
		n += c
	}
	return n
}

func (s *memStore) token(id string) *LoginToken {
	s.mu.Lock()
	defer s.mu.Unlock()
	if t := s.tokens[id]; t != nil {
		c := *t
		return &c
	}
	return nil
}

// copyUser returns a deep copy, strings included, as a real database read
// would (so that the memory test counts them).
func copyUser(u *User) *User {
	c := *u
	c.ID, c.Email, c.Name = strings.Clone(u.ID), strings.Clone(u.Email), strings.Clone(u.Name)
	c.FirstName, c.LastName = strings.Clone(u.FirstName), strings.Clone(u.LastName)
	c.Memberships = make([]Membership, len(u.Memberships))
	for i, m := range u.Memberships {
		c.Memberships[i] = Membership{Group: strings.Clone(m.Group), Source: strings.Clone(m.Source)}
	}
	return &c
}

func (s *memStore) GetUser(ctx context.Context, id string) (*User, error) {
	if err := s.enter(ctx, "GetUser"); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.users[id]
	if u == nil {
		return nil, ErrNotFound
	}
	return copyUser(u), nil
}

func (s *memStore) SyncUser(ctx context.Context, p Profile, imsGroups []string, now time.Time) (*SyncResult, error) {
	if err := s.enter(ctx, "SyncUser"); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	res := &SyncResult{}
	u := s.users[p.ID]
	if u == nil {
		u = &User{ID: p.ID, CreatedAt: now.UTC()}
		s.users[p.ID] = u
		res.Created = true
	}
	u.Email, u.Name, u.FirstName, u.LastName = p.Email, p.Name, p.FirstName, p.LastName
	u.UpdatedAt, u.SyncedAt = now.UTC(), now.UTC()
	want := map[string]bool{}
	for _, g := range imsGroups {
		want[g] = true
	}
	var ms []Membership
	for _, m := range u.Memberships {
		switch {
		case m.Source != SourceIMS:
			ms = append(ms, m)
		case want[m.Group]:
			ms = append(ms, m)
			delete(want, m.Group)
		default:
			res.Removed = append(res.Removed, m.Group)
		}
	}
	for g := range want {
		ms = append(ms, Membership{Group: g, Source: SourceIMS})
		res.Added = append(res.Added, g)
	}
	sortMemberships(ms)
	sort.Strings(res.Added)
	sort.Strings(res.Removed)
	u.Memberships = ms
	res.User = copyUser(u)
	return res, nil
}

func sortMemberships(ms []Membership) {
	sort.Slice(ms, func(i, j int) bool {
		if ms[i].Group != ms[j].Group {
			return ms[i].Group < ms[j].Group
		}
		return ms[i].Source < ms[j].Source
	})
}

func (s *memStore) AddMembership(ctx context.Context, userID, group, source string) error {
	if err := s.enter(ctx, "AddMembership"); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.users[userID]
	if u == nil {
		return ErrNotFound
	}
	for _, m := range u.Memberships {
		if m.Group == group && m.Source == source {
			return nil
		}
	}
	u.Memberships = append(u.Memberships, Membership{Group: group, Source: source})
	sortMemberships(u.Memberships)
	return nil
}

func (s *memStore) CreateLoginToken(ctx context.Context, t *LoginToken) error {
	if err := s.enter(ctx, "CreateLoginToken"); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.users[t.UserID] == nil {
		return fmt.Errorf("create login token: user %q: %w", t.UserID, ErrNotFound)
	}
	if s.users[t.UserID].Disabled {
		return fmt.Errorf("create login token: user %q: %w", t.UserID, ErrUserDisabled)
	}
	if s.tokens[t.ID] != nil {
		return errors.New("create login token: duplicate id")
	}
	c := *t
	c.SecretHash = bytes.Clone(t.SecretHash)
	c.CreatedAt, c.ExpiresAt = t.CreatedAt.UTC(), t.ExpiresAt.UTC()
	s.tokens[t.ID] = &c
	return nil
}

func (s *memStore) GetLoginTokenWithUser(ctx context.Context, id string) (*LoginToken, *User, error) {
	if err := s.enter(ctx, "GetLoginTokenWithUser"); err != nil {
		return nil, nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.tokens[id]
	if t == nil || s.users[t.UserID] == nil {
		return nil, nil, ErrNotFound
	}
	c := *t
	c.ID, c.UserID = strings.Clone(t.ID), strings.Clone(t.UserID)
	c.SecretHash = bytes.Clone(t.SecretHash)
	return &c, copyUser(s.users[t.UserID]), nil
}

func (s *memStore) ExtendLoginToken(ctx context.Context, id string, expiresAt time.Time) error {
	if err := s.enter(ctx, "ExtendLoginToken"); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.tokens[id]
	if t == nil {
		return ErrNotFound
	}
	t.ExpiresAt = expiresAt.UTC()
	return nil
}

func (s *memStore) DeleteLoginToken(ctx context.Context, id string) error {
	if err := s.enter(ctx, "DeleteLoginToken"); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.tokens, id)
	return nil
}

func (s *memStore) DeleteExpiredLoginTokens(ctx context.Context, now time.Time) (int64, error) {
	if err := s.enter(ctx, "DeleteExpiredLoginTokens"); err != nil {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var n int64
	for id, t := range s.tokens {
		if !t.ExpiresAt.After(now) {
			delete(s.tokens, id)
			n++
		}
	}
	return n, nil
}

func (s *memStore) CountLoginTokens(ctx context.Context) (int64, error) {
	if err := s.enter(ctx, "CountLoginTokens"); err != nil {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return int64(len(s.tokens)), nil
}

func (s *memStore) GetOrCreateSetting(ctx context.Context, key string, value []byte) ([]byte, error) {
	if err := s.enter(ctx, "GetOrCreateSetting"); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if v, ok := s.settings[key]; ok {
		return bytes.Clone(v), nil
	}
	s.settings[key] = bytes.Clone(value)
	return bytes.Clone(value), nil
}

func (s *memStore) GetSetting(ctx context.Context, key string) ([]byte, error) {
	if err := s.enter(ctx, "GetSetting"); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.settings[key]
	if !ok {
		return nil, ErrNotFound
	}
	return bytes.Clone(v), nil
}

func (s *memStore) CompareAndSwapSetting(ctx context.Context, key string, old, value []byte) (bool, error) {
	if err := s.enter(ctx, "CompareAndSwapSetting"); err != nil {
		return false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.settings[key]
	switch {
	case !ok:
		return false, ErrNotFound
	case !bytes.Equal(v, old):
		return false, nil
	}
	s.settings[key] = bytes.Clone(value)
	return true, nil
}

func (s *memStore) Ping(ctx context.Context) error { return s.enter(ctx, "Ping") }
func (s *memStore) Close() error                   { return nil }

var _ Store = (*memStore)(nil)

// clock is a settable time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func addUser(t testing.TB, st *memStore, id string, groups ...string) *User {
	t.Helper()
	res, err := st.SyncUser(context.Background(), Profile{ID: id, Email: id + "@example.com"}, groups, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return res.User
}

func testKeys(t testing.TB) []KeyPair {
	t.Helper()
	k, err := GenerateKeyPair()
	if err != nil {
		t.Fatal(err)
	}
	return []KeyPair{k}
}

type fixture struct {
	st    *memStore
	clk   *clock
	m     *Manager
	keys  []KeyPair
	alice *User
	bob   *User
}

func newFixture(t testing.TB, cfg ManagerConfig) *fixture {
	t.Helper()
	f := &fixture{st: newMemStore(), clk: newClock(), keys: testKeys(t)}
	f.alice = addUser(t, f.st, "alice@AdobeID", "authors")
	f.bob = addUser(t, f.st, "bob@AdobeID", "readers")
	if cfg.Now == nil {
		cfg.Now = f.clk.Now
	}
	m, err := NewManager(f.st, f.keys, cfg)
	if err != nil {
		t.Fatal(err)
	}
	f.m = m
	return f
}

func (f *fixture) issue(t testing.TB, u *User) (*http.Cookie, *LoginToken) {
	t.Helper()
	c, tok, err := f.m.Issue(context.Background(), u)
	if err != nil {
		t.Fatal(err)
	}
	return c, tok
}

func TestIssueValidate(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, ManagerConfig{})
	c, tok, err := f.m.Issue(ctx, f.alice)
	if err != nil {
		t.Fatal(err)
	}
	if len(tok.ID) != 22 || strings.ContainsAny(tok.ID, "+/=") {
		t.Errorf("token id %q is not 16 bytes of unpadded base64url", tok.ID)
	}
	if tok.UserID != f.alice.ID || !tok.CreatedAt.Equal(f.clk.Now()) || !tok.ExpiresAt.Equal(f.clk.Now().Add(12*time.Hour)) {
		t.Errorf("token = %+v", tok)
	}
	stored := f.st.token(tok.ID)
	if stored == nil || !bytes.Equal(stored.SecretHash, tok.SecretHash) || len(stored.SecretHash) != sha256.Size {
		t.Fatalf("stored token = %+v", stored)
	}
	if strings.Contains(c.Value, tok.ID) {
		t.Error("cookie carries the token id in clear")
	}

	v, err := f.m.Validate(ctx, c.Value)
	if err != nil {
		t.Fatalf("Validate: %v", err)
	}
	if v.Token.ID != tok.ID || v.User.ID != f.alice.ID || v.Refresh != nil {
		t.Errorf("Validated = %+v", v)
	}
	if g := v.User.Groups(); len(g) != 1 || g[0] != "authors" {
		t.Errorf("groups = %v", g)
	}

	// Another user's cookie is that user's.
	c2, _ := f.issue(t, f.bob)
	v2, err := f.m.Validate(ctx, c2.Value)
	if err != nil || v2.User.ID != f.bob.ID {
		t.Fatalf("Validate bob: %+v, %v", v2, err)
	}

	if _, _, err := f.m.Issue(ctx, &User{ID: "nobody@AdobeID"}); err == nil {
		t.Error("Issue for a user the store does not know: want error")
	}
	if _, _, err := f.m.Issue(ctx, nil); err == nil {
		t.Error("Issue(nil): want error")
	}
}

func TestCookieAttributes(t *testing.T) {
	tests := []struct {
		name     string
		cfg      ManagerConfig
		wantName string
		wantPath string
		secure   bool
		site     http.SameSite
		maxAge   int
		header   []string
	}{
		{name: "defaults", cfg: ManagerConfig{CookieSecure: true}, wantName: "login-token", wantPath: "/", secure: true,
			site: http.SameSiteLaxMode, maxAge: 43200, header: []string{"login-token=", "Path=/", "HttpOnly", "Secure", "SameSite=Lax", "Max-Age=43200"}},
		{name: "plain http", cfg: ManagerConfig{}, wantName: "login-token", wantPath: "/", secure: false,
			site: http.SameSiteLaxMode, maxAge: 43200, header: []string{"HttpOnly", "SameSite=Lax"}},
		{name: "strict custom", cfg: ManagerConfig{CookieName: "gh", CookiePath: "/content", CookieSecure: true, SameSite: http.SameSiteStrictMode, TTL: 2 * time.Hour},
			wantName: "gh", wantPath: "/content", secure: true, site: http.SameSiteStrictMode, maxAge: 7200,
			header: []string{"gh=", "Path=/content", "SameSite=Strict", "Max-Age=7200"}},
		{name: "none needs secure", cfg: ManagerConfig{CookieSecure: true, SameSite: http.SameSiteNoneMode}, wantName: "login-token", wantPath: "/",
			secure: true, site: http.SameSiteNoneMode, maxAge: 43200, header: []string{"SameSite=None", "Secure"}}, {name: "__Host- prefix", cfg: ManagerConfig{CookieName: "__Host-login-token", CookieSecure: true}, wantName: "__Host-login-token", wantPath: "/",
			secure: true, site: http.SameSiteLaxMode, maxAge: 43200, header: []string{"__Host-login-token=", "Path=/", "Secure"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, tt.cfg)
			c, tok := f.issue(t, f.alice)
			check := func(what string, c *http.Cookie) {
				t.Helper()
				if c.Name != tt.wantName || c.Path != tt.wantPath || !c.HttpOnly || c.Secure != tt.secure || c.SameSite != tt.site {
					t.Errorf("%s cookie = %+v", what, c)
				}
				if err := c.Valid(); err != nil {
					t.Errorf("%s cookie invalid: %v", what, err)
				}
			}
			check("issued", c)
			if c.MaxAge != tt.maxAge || !c.Expires.Equal(tok.ExpiresAt) {
				t.Errorf("MaxAge %d, Expires %v; want %d, %v", c.MaxAge, c.Expires, tt.maxAge, tok.ExpiresAt)
			}
			h := c.String()
			for _, want := range tt.header {
				if !strings.Contains(h, want) {
					t.Errorf("Set-Cookie %q lacks %q", h, want)
				}
			}
			if strings.Contains(h, "Domain") {
				t.Errorf("Set-Cookie %q has a Domain: another host could be sent the cookie, and __Host- forbids it", h)
			}
			if !tt.secure && strings.Contains(h, "Secure") {
				t.Errorf("Set-Cookie %q has Secure", h)
			}
			if f.m.CookieName() != tt.wantName {
				t.Errorf("CookieName() = %q", f.m.CookieName())
			}

			cl := f.m.ClearCookie()
			check("clear", cl)
			if cl.Value != "" || cl.MaxAge != -1 || !strings.Contains(cl.String(), "Max-Age=0") {
				t.Errorf("clear cookie = %q", cl.String())
			}
		})
	}
}

func TestNewManagerErrors(t *testing.T) {
	st := newMemStore()
	keys := testKeys(t)
	tests := []struct {
		name  string
		store Store
		keys  []KeyPair
		cfg   ManagerConfig
		want  string
	}{
		{name: "SameSite None without Secure", store: st, keys: keys, cfg: ManagerConfig{SameSite: http.SameSiteNoneMode}, want: "SameSite=None requires"},
		{name: "no store", keys: keys, want: "no store"},
		{name: "no keys", store: st, want: "no cookie keys"},
		{name: "short key", store: st, keys: []KeyPair{keys[0], {Hash: seq(16, 1), Block: seq(16, 2)}}, want: "key pair 2: hash key is 16 bytes"},
		{name: "bad cookie name", store: st, keys: keys, cfg: ManagerConfig{CookieName: "login token"}, want: "cookie name"},
		{name: "__Host- without Secure", store: st, keys: keys, cfg: ManagerConfig{CookieName: "__Host-login-token"}, want: "without the Secure attribute"},
		{name: "__Secure- without Secure", store: st, keys: keys, cfg: ManagerConfig{CookieName: "__secure-login-token"}, want: "without the Secure attribute"},
		{name: "__Host- with a path", store: st, keys: keys, cfg: ManagerConfig{CookieName: "__Host-lt", CookieSecure: true, CookiePath: "/content"}, want: "needs Path=/"},
		{name: "tiny TTL", store: st, keys: keys, cfg: ManagerConfig{TTL: time.Millisecond}, want: "TTL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := NewManager(tt.store, tt.keys, tt.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("NewManager = %v, %v; want error containing %q", m, err, tt.want)
			}
		})
	}
}

func TestValidateMalformed(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, ManagerConfig{})
	c, _ := f.issue(t, f.alice)
	other, err := NewManager(f.st, testKeys(t), ManagerConfig{Now: f.clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	otherCookie, _, err := other.Issue(ctx, f.alice)
	if err != nil {
		t.Fatal(err)
	}
	tampered := []byte(c.Value)
	i := len(tampered) / 2
	if tampered[i] == 'A' {
		tampered[i] = 'B'
	} else {
		tampered[i] = 'A'
	}
	// Correctly signed, but not a login-token payload.
	wrongPayload, err := f.m.keys.Load().codecs[0].Encode(f.m.CookieName(), []byte("not-a-token"))
	if err != nil {
		t.Fatal(err)
	}
	// Correctly signed for another cookie name.
	otherName, err := f.m.keys.Load().codecs[0].Encode("other", []byte(strings.Repeat("A", 22)+"."+strings.Repeat("B", 43)))
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name  string
		value string
	}{
		{"empty", ""},
		{"garbage", "garbage"},
		{"garbage base64", "Z2FyYmFnZQ=="},
		{"truncated", c.Value[:len(c.Value)/2]},
		{"oversized", strings.Repeat("A", 5<<10)},
		{"tampered", string(tampered)},
		{"other key", otherCookie.Value},
		{"wrong payload", wrongPayload},
		{"other cookie name", otherName},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := f.st.totalCalls()
			v, err := f.m.Validate(ctx, tt.value)
			if !errors.Is(err, ErrTokenMalformed) {
				t.Fatalf("Validate = %+v, %v; want ErrTokenMalformed", v, err)
			}
			if f.st.totalCalls() != before {
				t.Error("a malformed cookie reached the store")
			}
			if err := f.m.Revoke(ctx, tt.value); err != nil {
				t.Errorf("Revoke(malformed) = %v, want nil", err)
			}
		})
	}
	if _, err := f.m.Validate(ctx, c.Value); err != nil {
		t.Fatalf("the original still validates: %v", err)
	}
}

func TestValidateUnknown(t *testing.T) {
	ctx := context.Background()

	t.Run("record deleted", func(t *testing.T) {
		f := newFixture(t, ManagerConfig{})
		c, tok := f.issue(t, f.alice)
		if err := f.st.DeleteLoginToken(ctx, tok.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := f.m.Validate(ctx, c.Value); !errors.Is(err, ErrTokenUnknown) {
			t.Fatalf("err = %v, want ErrTokenUnknown", err)
		}
	})

	t.Run("wrong secret, cold and warm", func(t *testing.T) {
		f := newFixture(t, ManagerConfig{})
		c, tok := f.issue(t, f.alice)
		forged, err := f.m.cookie(tok.ID, bytes.Repeat([]byte{7}, 32), tok.ExpiresAt, f.clk.Now())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.m.Validate(ctx, forged.Value); !errors.Is(err, ErrTokenUnknown) {
			t.Fatalf("cold: err = %v, want ErrTokenUnknown", err)
		}
		if _, err := f.m.Validate(ctx, c.Value); err != nil {
			t.Fatal(err)
		}
		if _, err := f.m.Validate(ctx, forged.Value); !errors.Is(err, ErrTokenUnknown) {
			t.Fatalf("warm: err = %v, want ErrTokenUnknown", err)
		}
	})

	t.Run("user gone", func(t *testing.T) {
		f := newFixture(t, ManagerConfig{})
		c, _ := f.issue(t, f.alice)
		f.st.mu.Lock()
		delete(f.st.users, f.alice.ID)
		f.st.mu.Unlock()
		if _, err := f.m.Validate(ctx, c.Value); !errors.Is(err, ErrTokenUnknown) {
			t.Fatalf("err = %v, want ErrTokenUnknown", err)
		}
	})
}

func TestValidateStoreFailure(t *testing.T) {
	ctx := context.Background()
	down := errors.New("database is down")
	for _, method := range []string{"GetLoginTokenWithUser"} {
		t.Run(method, func(t *testing.T) {
			f := newFixture(t, ManagerConfig{})
			c, _ := f.issue(t, f.alice)
			f.st.setHook(func(_ context.Context, m string) error {
				if m == method {
					return down
				}
				return nil
			})
			_, err := f.m.Validate(ctx, c.Value)
			if !errors.Is(err, down) {
				t.Fatalf("err = %v, want the store's error", err)
			}
			for _, s := range []error{ErrTokenMalformed, ErrTokenUnknown, ErrTokenExpired} {
				if errors.Is(err, s) {
					t.Errorf("a store failure reads as %v", s)
				}
			}
			if f.m.CacheLen() != 0 {
				t.Error("failure cached")
			}
			f.st.setHook(nil)
			if _, err := f.m.Validate(ctx, c.Value); err != nil {
				t.Fatalf("after recovery: %v", err)
			}
		})
	}
}

func TestRevoke(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, ManagerConfig{})
	c, tok := f.issue(t, f.alice)
	keep, _ := f.issue(t, f.alice)
	for _, v := range []string{c.Value, keep.Value} {
		if _, err := f.m.Validate(ctx, v); err != nil {
			t.Fatal(err)
		}
	}
	if f.m.CacheLen() != 2 {
		t.Fatalf("CacheLen = %d, want 2", f.m.CacheLen())
	}
	if err := f.m.Revoke(ctx, c.Value); err != nil {
		t.Fatal(err)
	}
	if f.st.token(tok.ID) != nil {
		t.Error("record still in the store")
	}
	if _, err := f.m.Validate(ctx, c.Value); !errors.Is(err, ErrTokenUnknown) {
		t.Fatalf("after Revoke: err = %v, want ErrTokenUnknown", err)
	}
	if _, err := f.m.Validate(ctx, keep.Value); err != nil {
		t.Fatalf("the user's other token: %v", err)
	}
	if err := f.m.Revoke(ctx, c.Value); err != nil {
		t.Errorf("second Revoke = %v, want nil", err)
	}

	down := errors.New("down")
	f.st.setHook(func(context.Context, string) error { return down })
	if err := f.m.Revoke(ctx, keep.Value); !errors.Is(err, down) {
		t.Errorf("Revoke with the store down = %v, want its error", err)
	}
}

func TestExpired(t *testing.T) {
	ctx := context.Background()
	for _, warm := range []bool{false, true} {
		t.Run(fmt.Sprintf("warm=%v", warm), func(t *testing.T) {
			f := newFixture(t, ManagerConfig{TTL: time.Hour, CacheTTL: 2 * time.Hour})
			c, tok := f.issue(t, f.alice)
			if warm {
				if _, err := f.m.Validate(ctx, c.Value); err != nil {
					t.Fatal(err)
				}
			}
			f.clk.Advance(time.Hour)
			if _, err := f.m.Validate(ctx, c.Value); !errors.Is(err, ErrTokenExpired) {
				t.Fatalf("err = %v, want ErrTokenExpired", err)
			}
			if f.st.token(tok.ID) != nil {
				t.Error("expired record not deleted on use")
			}
			if f.m.CacheLen() != 0 {
				t.Error("expired token still cached")
			}
			if _, err := f.m.Validate(ctx, c.Value); !errors.Is(err, ErrTokenUnknown) {
				t.Fatalf("second use: err = %v, want ErrTokenUnknown", err)
			}
		})
	}
}

func TestRefresh(t *testing.T) {
	ctx := context.Background()
	const ttl = 2 * time.Hour
	for _, cacheTTL := range []time.Duration{0, -1} {
		t.Run(fmt.Sprintf("cacheTTL=%v", cacheTTL), func(t *testing.T) {
			f := newFixture(t, ManagerConfig{TTL: ttl, CacheTTL: cacheTTL})
			c, tok := f.issue(t, f.alice)

			f.clk.Advance(ttl/2 - time.Minute)
			v, err := f.m.Validate(ctx, c.Value)
			if err != nil || v.Refresh != nil {
				t.Fatalf("before half-life: Refresh %v, err %v", v.Refresh, err)
			}
			if f.st.calls("ExtendLoginToken") != 0 {
				t.Fatal("extended before half-life")
			}

			f.clk.Advance(2 * time.Minute) // one minute past half-life
			v, err = f.m.Validate(ctx, c.Value)
			if err != nil || v.Refresh == nil {
				t.Fatalf("past half-life: Refresh %v, err %v", v.Refresh, err)
			}
			want := f.clk.Now().Add(ttl)
			if got := f.st.token(tok.ID).ExpiresAt; !got.Equal(want) {
				t.Errorf("store ExpiresAt = %v, want %v", got, want)
			}
			if !v.Token.ExpiresAt.Equal(want) || !v.Refresh.Expires.Equal(want) || v.Refresh.MaxAge != int(ttl/time.Second) {
				t.Errorf("Validated token %v, cookie %v / %d", v.Token.ExpiresAt, v.Refresh.Expires, v.Refresh.MaxAge)
			}
			if v.Refresh.Value == c.Value || !v.Refresh.HttpOnly || v.Refresh.Name != c.Name {
				t.Errorf("refresh cookie = %+v", v.Refresh)
			}

			// Both the new and the old cookie carry the same token, now extended.
			for _, val := range []string{v.Refresh.Value, c.Value} {
				v2, err := f.m.Validate(ctx, val)
				if err != nil || v2.Refresh != nil {
					t.Fatalf("after refresh: Refresh %v, err %v", v2.Refresh, err)
				}
			}
			if n := f.st.calls("ExtendLoginToken"); n != 1 {
				t.Errorf("ExtendLoginToken called %d times, want 1", n)
			}

			// Past the original expiry, the token lives on.
			f.clk.Advance(ttl/2 + time.Minute)
			if _, err := f.m.Validate(ctx, v.Refresh.Value); err != nil {
				t.Fatalf("after the original expiry: %v", err)
			}
		})
	}

	t.Run("revoked meanwhile", func(t *testing.T) {
		f := newFixture(t, ManagerConfig{TTL: ttl, CacheTTL: ttl})
		c, tok := f.issue(t, f.alice)
		if _, err := f.m.Validate(ctx, c.Value); err != nil {
			t.Fatal(err)
		}
		// Another replica revokes; this one still trusts its cache.
		if err := f.st.DeleteLoginToken(ctx, tok.ID); err != nil {
			t.Fatal(err)
		}
		f.clk.Advance(ttl/2 + time.Minute)
		if _, err := f.m.Validate(ctx, c.Value); !errors.Is(err, ErrTokenUnknown) {
			t.Fatalf("err = %v, want ErrTokenUnknown", err)
		}
		if f.m.CacheLen() != 0 {
			t.Error("still cached")
		}
	})

	t.Run("store fails to extend", func(t *testing.T) {
		f := newFixture(t, ManagerConfig{TTL: ttl})
		c, _ := f.issue(t, f.alice)
		f.clk.Advance(ttl/2 + time.Minute)
		f.st.setHook(func(_ context.Context, m string) error {
			if m == "ExtendLoginToken" {
				return errors.New("disk full")
			}
			return nil
		})
		v, err := f.m.Validate(ctx, c.Value)
		if err != nil || v.Refresh != nil {
			t.Fatalf("Refresh %v, err %v; want the still-valid token without refresh", v.Refresh, err)
		}
		f.st.setHook(nil)
		v, err = f.m.Validate(ctx, c.Value)
		if err != nil || v.Refresh == nil {
			t.Fatalf("retry: Refresh %v, err %v", v.Refresh, err)
		}
	})

	t.Run("concurrent uses extend once", func(t *testing.T) {
		for _, warm := range []bool{false, true} {
			f := newFixture(t, ManagerConfig{TTL: ttl})
			c, _ := f.issue(t, f.alice)
			if warm {
				if _, err := f.m.Validate(ctx, c.Value); err != nil {
					t.Fatal(err)
				}
			}
			f.clk.Advance(ttl/2 + time.Minute)
			const n = 32
			var wg sync.WaitGroup
			var mu sync.Mutex
			refreshes := 0
			for range n {
				wg.Go(func() {
					v, err := f.m.Validate(ctx, c.Value)
					if err != nil {
						t.Error(err)
						return
					}
					if v.Refresh != nil {
						mu.Lock()
						refreshes++
						mu.Unlock()
					}
				})
			}
			wg.Wait()
			if got := f.st.calls("ExtendLoginToken"); got != 1 || refreshes != 1 {
				t.Errorf("warm=%v: %d extends, %d refresh cookies; want 1 and 1", warm, got, refreshes)
			}
		}
	})
}

func TestKeyRotation(t *testing.T) {
	ctx := context.Background()
	st := newMemStore()
	clk := newClock()
	alice := addUser(t, st, "alice@AdobeID", "authors")
	oldKey, newKey := testKeys(t)[0], testKeys(t)[0]
	mgr := func(keys ...KeyPair) *Manager {
		t.Helper()
		m, err := NewManager(st, keys, ManagerConfig{Now: clk.Now, CacheTTL: -1, TTL: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	before := mgr(oldKey)
	c, _, err := before.Issue(ctx, alice)
	if err != nil {
		t.Fatal(err)
	}
	during := mgr(newKey, oldKey)
	after := mgr(newKey)

	tests := []struct {
		name    string
		m       *Manager
		wantErr error
	}{
		{"old key only", before, nil},
		{"old key second", during, nil},
		{"old key removed", after, ErrTokenMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.m.Validate(ctx, c.Value)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
		})
	}

	t.Run("new cookies use the first key", func(t *testing.T) {
		c2, _, err := during.Issue(ctx, alice)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := after.Validate(ctx, c2.Value); err != nil {
			t.Errorf("new-key manager: %v", err)
		}
		if _, err := before.Validate(ctx, c2.Value); !errors.Is(err, ErrTokenMalformed) {
			t.Errorf("old-key manager: err = %v, want ErrTokenMalformed", err)
		}
	})

	t.Run("refresh re-signs with the first key", func(t *testing.T) {
		clk.Advance(31 * time.Minute)
		v, err := during.Validate(ctx, c.Value)
		if err != nil || v.Refresh == nil {
			t.Fatalf("Refresh %v, err %v", v.Refresh, err)
		}
		if _, err := after.Validate(ctx, v.Refresh.Value); err != nil {
			t.Errorf("refreshed cookie on the new-key manager: %v", err)
		}
	})
}

func TestCache(t *testing.T) {
	ctx := context.Background()

	t.Run("warm validation makes no store call", func(t *testing.T) {
		f := newFixture(t, ManagerConfig{CacheTTL: 30 * time.Second})
		c, _ := f.issue(t, f.alice)
		issued := f.st.totalCalls()
		if _, err := f.m.Validate(ctx, c.Value); err != nil {
			t.Fatal(err)
		}
		if n := f.st.totalCalls() - issued; f.st.calls("GetLoginTokenWithUser") != 1 || n != 1 {
			t.Fatalf("cold validation: %d store calls, %d of them token-and-user reads; want 1 of 1", n, f.st.calls("GetLoginTokenWithUser"))
		}
		if f.m.CacheLen() != 1 {
			t.Fatalf("CacheLen = %d, want 1", f.m.CacheLen())
		}
		before := f.st.totalCalls()
		for range 10 {
			f.clk.Advance(2 * time.Second)
			if _, err := f.m.Validate(ctx, c.Value); err != nil {
				t.Fatal(err)
			}
		}
		if n := f.st.totalCalls() - before; n != 0 {
			t.Fatalf("warm validations made %d store calls, want 0", n)
		}
		f.clk.Advance(10 * time.Second) // 30s since the store read
		if _, err := f.m.Validate(ctx, c.Value); err != nil {
			t.Fatal(err)
		}
		if f.st.calls("GetLoginTokenWithUser") != 2 {
			t.Fatal("after CacheTTL the store was not asked again")
		}
		if f.m.CacheLen() != 1 {
			t.Fatalf("CacheLen = %d, want 1", f.m.CacheLen())
		}
	})

	t.Run("disabled", func(t *testing.T) {
		f := newFixture(t, ManagerConfig{CacheTTL: -1})
		c, _ := f.issue(t, f.alice)
		for range 3 {
			if _, err := f.m.Validate(ctx, c.Value); err != nil {
				t.Fatal(err)
			}
		}
		if f.st.calls("GetLoginTokenWithUser") != 3 || f.m.CacheLen() != 0 {
			t.Fatalf("%d token reads, CacheLen %d; want 3 and 0", f.st.calls("GetLoginTokenWithUser"), f.m.CacheLen())
		}
	})

	t.Run("tokens of a user share the user", func(t *testing.T) {
		f := newFixture(t, ManagerConfig{})
		c1, _ := f.issue(t, f.alice)
		c2, _ := f.issue(t, f.alice)
		v1, err := f.m.Validate(ctx, c1.Value)
		if err != nil {
			t.Fatal(err)
		}
		v2, err := f.m.Validate(ctx, c2.Value)
		if err != nil {
			t.Fatal(err)
		}
		v1, err = f.m.Validate(ctx, c1.Value)
		if err != nil {
			t.Fatal(err)
		}
		if v1.User != v2.User {
			t.Error("two cached tokens of one user hold two *User")
		}
	})

	t.Run("bounded", func(t *testing.T) {
		f := newFixture(t, ManagerConfig{})
		f.m.newCaches(3)
		var cookies []*http.Cookie
		for range 5 {
			c, _ := f.issue(t, f.alice)
			cookies = append(cookies, c)
			if _, err := f.m.Validate(ctx, c.Value); err != nil {
				t.Fatal(err)
			}
			if f.m.CacheLen() > 3 {
				t.Fatalf("CacheLen = %d, want at most 3", f.m.CacheLen())
			}
		}
		for _, c := range cookies {
			if _, err := f.m.Validate(ctx, c.Value); err != nil {
				t.Fatal(err)
			}
		}
		users := f.m.users.Len()
		if f.m.CacheLen() != 3 || users != 1 {
			t.Errorf("CacheLen %d, users %d; want 3 and 1", f.m.CacheLen(), users)
		}
	})

	// Concurrent cold validations of one token share one store read,
	// whether it succeeds or the store times out on its own (postgres
	// bounds each operation): a request of theirs that was not the
	// leader's would only wait as long again.
	for _, tc := range []struct {
		name    string
		n       int
		err     error // the read's
		wantErr error
	}{
		{"concurrent cold validations share one read", 16, nil, nil},
		{"a store that times out is asked once", 8, fmt.Errorf("read login token: %w", context.DeadlineExceeded), context.DeadlineExceeded},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, ManagerConfig{})
			c, _ := f.issue(t, f.alice)
			entered := make(chan struct{})
			release := make(chan struct{})
			var once sync.Once
			f.st.setHook(func(ctx context.Context, m string) error {
				if m != "GetLoginTokenWithUser" {
					return nil
				}
				once.Do(func() { close(entered) })
				select {
				case <-release:
				case <-ctx.Done():
				}
				return tc.err
			})
			errs := validateTogether(ctx, f.m, c.Value, tc.n, entered)
			close(release)
			for range tc.n {
				if err := <-errs; !errors.Is(err, tc.wantErr) { // for nil: err == nil
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
			}
			if got := f.st.calls("GetLoginTokenWithUser"); got != 1 {
				t.Errorf("%d concurrent cold validations made %d token reads, want 1", tc.n, got)
			}
		})
	}

	t.Run("a cancelled leader does not fail the others", func(t *testing.T) {
		f := newFixture(t, ManagerConfig{})
		c, _ := f.issue(t, f.alice)
		entered := make(chan struct{})
		var once sync.Once
		first := true
		var mu sync.Mutex
		f.st.setHook(func(ctx context.Context, m string) error {
			if m != "GetLoginTokenWithUser" {
				return nil
			}
			mu.Lock()
			block := first
			first = false
			mu.Unlock()
			if block {
				once.Do(func() { close(entered) })
				<-ctx.Done()
			}
			return nil
		})
		lctx, cancel := context.WithCancel(ctx)
		leader := make(chan error, 1)
		go func() { _, err := f.m.Validate(lctx, c.Value); leader <- err }()
		<-entered
		follower := make(chan error, 1)
		go func() { _, err := f.m.Validate(ctx, c.Value); follower <- err }()
		time.Sleep(20 * time.Millisecond)
		cancel()
		if err := <-leader; !errors.Is(err, context.Canceled) {
			t.Errorf("leader: err = %v, want context.Canceled", err)
		}
		if err := <-follower; err != nil {
			t.Errorf("follower: %v", err)
		}
	})
}

// validateTogether validates value n times at once: first one, then,
// once entered is closed (that one is in the store), the others, and
// gives them 50 ms to join the read under way. (One that is late finds
// the token cached instead, so this does not make a test flaky.) It
// returns the channel of their n errors.
func validateTogether(ctx context.Context, m *Manager, value string, n int, entered <-chan struct{}) <-chan error {
	errs := make(chan error, n)
	validate := func() { _, err := m.Validate(ctx, value); errs <- err }
	go validate()
	<-entered
	for range n - 1 {
		go validate()
	}
	time.Sleep(50 * time.Millisecond)
	return errs
}

func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestForgetUser(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, ManagerConfig{})
	ca, _ := f.issue(t, f.alice)
	cb, _ := f.issue(t, f.bob)
	for _, c := range []*http.Cookie{ca, cb} {
		if _, err := f.m.Validate(ctx, c.Value); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.st.AddMembership(ctx, f.alice.ID, "admins", SourceLocal); err != nil {
		t.Fatal(err)
	}
	v, err := f.m.Validate(ctx, ca.Value)
	if err != nil {
		t.Fatal(err)
	}
	if g := v.User.Groups(); strings.Join(g, ",") != "authors" {
		t.Fatalf("cached groups = %v, want the old ones", g)
	}

	f.m.ForgetUser(f.alice.ID)
	f.m.ForgetUser("nobody@AdobeID") // unknown: no effect
	reads := f.st.calls("GetLoginTokenWithUser")
	v, err = f.m.Validate(ctx, ca.Value)
	if err != nil {
		t.Fatal(err)
	}
	if g := v.User.Groups(); strings.Join(g, ",") != "admins,authors" {
		t.Errorf("groups after ForgetUser = %v", g)
	}
	if f.st.calls("GetLoginTokenWithUser") != reads+1 {
		t.Error("ForgetUser did not make the next validation read the user")
	}
	before := f.st.totalCalls()
	if _, err := f.m.Validate(ctx, cb.Value); err != nil {
		t.Fatal(err)
	}
	if _, err := f.m.Validate(ctx, ca.Value); err != nil {
		t.Fatal(err)
	}
	if f.st.totalCalls() != before {
		t.Error("ForgetUser(alice) dropped bob, or alice was not cached again")
	}
}

func TestCleanup(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, ManagerConfig{TTL: time.Hour})
	short, _ := f.issue(t, f.alice)
	if _, err := f.m.Validate(ctx, short.Value); err != nil {
		t.Fatal(err)
	}
	f.clk.Advance(50 * time.Minute)
	long, _ := f.issue(t, f.bob)
	if _, err := f.m.Validate(ctx, long.Value); err != nil {
		t.Fatal(err)
	}
	f.clk.Advance(20 * time.Minute) // short has expired, long has not

	cctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { f.m.RunCleanup(cctx, 5*time.Millisecond); close(done) }()
	waitFor(t, func() bool { n, _ := f.st.CountLoginTokens(ctx); return n == 1 }, "cleanup to delete the expired token")
	waitFor(t, func() bool { return f.m.CacheLen() == 0 }, "cleanup to prune the cache") // both past CacheTTL
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("RunCleanup did not return after cancel")
	}
	if _, err := f.m.Validate(ctx, short.Value); !errors.Is(err, ErrTokenUnknown) {
		t.Errorf("expired token after cleanup: err = %v, want ErrTokenUnknown", err)
	}
	if _, err := f.m.Validate(ctx, long.Value); err != nil {
		t.Errorf("live token after cleanup: %v", err)
	}

	t.Run("prune keeps trusted entries", func(t *testing.T) {
		f := newFixture(t, ManagerConfig{})
		c, _ := f.issue(t, f.alice)
		c2, _ := f.issue(t, f.bob)
		for _, c := range []*http.Cookie{c, c2} {
			if _, err := f.m.Validate(ctx, c.Value); err != nil {
				t.Fatal(err)
			}
		}
		f.m.ForgetUser(f.bob.ID)
		if n := f.m.prune(f.clk.Now()); n != 1 || f.m.CacheLen() != 1 {
			t.Errorf("prune removed %d, left %d; want 1 and 1", n, f.m.CacheLen())
		}
	})
}

// fillCache caches n tokens spread over users users, straight from the
// store (no cookie crypto), and returns the heap they take.
func fillCache(tb testing.TB, n, users int) (bytesPerToken float64) {
	tb.Helper()
	ctx := context.Background()
	st := newMemStore()
	now := time.Now()
	m, err := NewManager(st, testKeys(tb), ManagerConfig{CacheTTL: time.Hour})
	if err != nil {
		tb.Fatal(err)
	}
	for u := range users {
		id := fmt.Sprintf("%024X@AdobeID", u)
		addUser(tb, st, id, "authors", "readers", "team-"+fmt.Sprint(u%50))
	}
	ids := make([]string, n)
	for i := range n {
		ids[i] = fmt.Sprintf("tok-%018d", i)[:22]
		err := st.CreateLoginToken(ctx, &LoginToken{
			ID: ids[i], UserID: fmt.Sprintf("%024X@AdobeID", i%users),
			SecretHash: bytes.Repeat([]byte{byte(i)}, 32), CreatedAt: now, ExpiresAt: now.Add(time.Hour),
		})
		if err != nil {
			tb.Fatal(err)
		}
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&before)
	for _, id := range ids {
		// A fresh id string, as Validate makes from the cookie.
		if _, err := m.load(ctx, strings.Clone(id)); err != nil {
			tb.Fatal(err)
		}
	}
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&after)
	if m.CacheLen() != n {
		tb.Fatalf("CacheLen = %d, want %d", m.CacheLen(), n)
	}
	runtime.KeepAlive(m)
	runtime.KeepAlive(st)
	return float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / float64(n)
}

func TestCacheMemoryPerToken(t *testing.T) {
	if testing.Short() {
		t.Skip("fills the cache with 100,000 tokens")
	}
	const n = 100_000
	for _, users := range []int{n, 1000} {
		t.Run(fmt.Sprintf("users=%d", users), func(t *testing.T) {
			b := fillCache(t, n, users)
			t.Logf("%d cached tokens of %d users: %.0f bytes of heap per token", n, users, b)
			if b > 1024 {
				t.Errorf("%.0f bytes per cached token, want under 1 KiB", b)
			}
		})
	}
}

func BenchmarkValidateWarm(b *testing.B) {
	f := newFixture(b, ManagerConfig{CacheTTL: time.Hour})
	c, _ := f.issue(b, f.alice)
	ctx := context.Background()
	if _, err := f.m.Validate(ctx, c.Value); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := f.m.Validate(ctx, c.Value); err != nil {
			b.Fatal(err)
		}
	}
	if f.st.calls("GetLoginTokenWithUser") != 1 {
		b.Fatal("warm validations read the store")
	}
}

func BenchmarkValidateWarmParallel(b *testing.B) {
	f := newFixture(b, ManagerConfig{CacheTTL: time.Hour})
	c, _ := f.issue(b, f.alice)
	ctx := context.Background()
	if _, err := f.m.Validate(ctx, c.Value); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := f.m.Validate(ctx, c.Value); err != nil {
				b.Fatal(err)
			}
		}
	})
	if f.st.calls("GetLoginTokenWithUser") != 1 {
		b.Fatal("warm validations read the store")
	}
}

func BenchmarkValidateCold(b *testing.B) {
	f := newFixture(b, ManagerConfig{CacheTTL: -1})
	c, _ := f.issue(b, f.alice)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := f.m.Validate(ctx, c.Value); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCacheMemory(b *testing.B) {
	var per float64
	for b.Loop() {
		per = fillCache(b, 100_000, 100_000)
	}
	b.ReportMetric(per, "B/token")
}

// TestNewLoginTokenID: 16 bytes of unpadded base64url, the first 6 the
// Unix milliseconds, big-endian (so a store's id index fills in time
// order), the other 10 random (so ids of one millisecond differ).
func TestNewLoginTokenID(t *testing.T) {
	at := time.UnixMilli(0x0123_4567_89AB)
	seen := map[string]bool{}
	for range 1000 {
		id, err := NewLoginTokenID(at)
		if err != nil {
			t.Fatal(err)
		}
		raw, err := base64.RawURLEncoding.DecodeString(id)
		if err != nil || len(raw) != idBytes || len(id) != idLen {
			t.Fatalf("id %q: %d bytes, %v; want %d bytes of unpadded base64url", id, len(raw), err, idBytes)
		}
		if want := []byte{0x01, 0x23, 0x45, 0x67, 0x89, 0xAB}; !bytes.Equal(raw[:6], want) {
			t.Fatalf("id %q starts %x, want the milliseconds %x", id, raw[:6], want)
		}
		if seen[id] {
			t.Fatalf("id %q made twice in one millisecond", id)
		}
		seen[id] = true
	}
	// Issue uses it: the stored token's id carries its creation time.
	f := newFixture(t, ManagerConfig{})
	_, lt := f.issue(t, f.alice)
	raw, _ := base64.RawURLEncoding.DecodeString(lt.ID)
	var ms int64
	for _, b := range raw[:6] {
		ms = ms<<8 | int64(b)
	}
	if ms != lt.CreatedAt.UnixMilli() {
		t.Errorf("issued id %q holds %d ms, want its creation time %d", lt.ID, ms, lt.CreatedAt.UnixMilli())
	}
}
