package main

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/gatehouse-proxy/gatehouse/session"
)

// tokenMemory is the heap that the session manager's cache of validated
// login tokens costs per token.
type tokenMemory struct {
	Tokens        int     `json:"tokens"`
	Users         int     `json:"users"`
	BytesPerToken float64 `json:"heap_bytes_per_token"`
	Method        string  `json:"method"`
}

// measureTokenMemory issues n login tokens for users distinct users
// through a real session.Manager, then validates every one (as a cookie
// request does), which caches it, and reports the growth of the live heap
// over the validations divided by n. The store is an in-memory map that,
// like the SQLite store, returns fresh copies on every read, so what the
// cache keeps is what is counted and the store's own memory is not.
func measureTokenMemory(n, users int) (*tokenMemory, error) {
	ctx := context.Background()
	st := newMapStore()
	kp, err := session.GenerateKeyPair()
	if err != nil {
		return nil, err
	}
	m, err := session.NewManager(st, []session.KeyPair{kp}, session.ManagerConfig{CacheTTL: time.Hour, CookieSecure: true})
	if err != nil {
		return nil, err
	}
	us := make([]*session.User, users)
	for i := range us {
		us[i] = &session.User{
			ID: fmt.Sprintf("%024X@AdobeID", i), Email: fmt.Sprintf("user%d@example.com", i), Name: fmt.Sprintf("User %d", i),
			Memberships: []session.Membership{
				{Group: "authors", Source: session.SourceIMS},
				{Group: "dam-users", Source: session.SourceIMS},
				{Group: fmt.Sprintf("team-%d", i%50), Source: session.SourceIMS},
			},
			Orgs:     []string{"BE0C0001@AdobeOrg"},
			SyncedAt: time.Now(),
		}
		st.users[us[i].ID] = us[i]
	}
	values := make([]string, n)
	for i := range values {
		c, _, err := m.Issue(ctx, us[i%users])
		if err != nil {
			return nil, err
		}
		values[i] = c.Value
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&before)
	for _, v := range values {
		if _, err := m.Validate(ctx, v); err != nil {
			return nil, err
		}
	}
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&after)
	if got := m.CacheLen(); got != n {
		return nil, fmt.Errorf("%d tokens cached, want %d", got, n)
	}
	runtime.KeepAlive(m)
	runtime.KeepAlive(st)
	runtime.KeepAlive(values)
	return &tokenMemory{
		Tokens: n, Users: users,
		BytesPerToken: float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / float64(n),
		Method:        "in-process: session.Manager, runtime.MemStats.HeapAlloc after GC, before and after validating (caching) every token",
	}, nil
}

// mapStore is the part of session.Store the measurement uses. The embedded
// interface is nil: any other method would panic, which would be a bug in
// the measurement.
type mapStore struct {
	session.Store
	mu     sync.Mutex
	users  map[string]*session.User
	tokens map[string]session.LoginToken
}

func newMapStore() *mapStore {
	return &mapStore{users: map[string]*session.User{}, tokens: map[string]session.LoginToken{}}
}

func (s *mapStore) GetUser(_ context.Context, id string) (*session.User, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.users[id]
	if !ok {
		return nil, session.ErrNotFound
	}
	c := *u // a fresh copy, as a database read gives
	c.ID = string([]byte(u.ID))
	c.Email = string([]byte(u.Email))
	c.Name = string([]byte(u.Name))
	c.Memberships = slices.Clone(u.Memberships)
	for i, m := range c.Memberships {
		c.Memberships[i] = session.Membership{Group: string([]byte(m.Group)), Source: string([]byte(m.Source))}
	}
	c.Orgs = slices.Clone(u.Orgs)
	for i, o := range c.Orgs {
		c.Orgs[i] = string([]byte(o))
	}
	return &c, nil
}

func (s *mapStore) CreateLoginToken(_ context.Context, t *session.LoginToken) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokens[t.ID] = *t
	return nil
}

func (s *mapStore) GetLoginTokenWithUser(ctx context.Context, id string) (*session.LoginToken, *session.User, error) {
	s.mu.Lock()
	t, ok := s.tokens[id]
	s.mu.Unlock()
	if !ok {
		return nil, nil, session.ErrNotFound
	}
	t.ID = string([]byte(t.ID))
	t.UserID = string([]byte(t.UserID))
	t.SecretHash = slices.Clone(t.SecretHash)
	u, err := s.GetUser(ctx, t.UserID)
	if err != nil {
		return nil, nil, err
	}
	return &t, u, nil
}
