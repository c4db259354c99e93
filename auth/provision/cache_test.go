package provision_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse-proxy/gatehouse/auth/ims"
	"github.com/gatehouse-proxy/gatehouse/auth/provision"
	"github.com/gatehouse-proxy/gatehouse/session"
)

// countingStore is the real store, counting the calls the Provisioner
// makes.
type countingStore struct {
	session.Store
	getUser, syncUser atomic.Int64
	afterGet          func() // if set, runs after each GetUser's read
}

func (c *countingStore) GetUser(ctx context.Context, id string) (*session.User, error) {
	c.getUser.Add(1)
	u, err := c.Store.GetUser(ctx, id)
	if c.afterGet != nil {
		c.afterGet()
	}
	return u, err
}

func (c *countingStore) SyncUser(ctx context.Context, p session.Profile, groups []string, now time.Time) (*session.SyncResult, error) {
	c.syncUser.Add(1)
	return c.Store.SyncUser(ctx, p, groups, now)
}

// calls returns the store calls since the last one, and resets them.
func (c *countingStore) calls() (getUser, syncUser int64) {
	return c.getUser.Swap(0), c.syncUser.Swap(0)
}

func TestUserCache(t *testing.T) {
	const ttl = 30 * time.Second
	type env struct {
		f     *fixture
		cs    *countingStore
		token string
		claim *ims.Claims
		id    string
	}
	ensure := func(t *testing.T, e *env) *session.User {
		t.Helper()
		u, err := e.f.p.Ensure(t.Context(), e.token, e.claim)
		if err != nil {
			t.Fatal(err)
		}
		return u
	}
	wantStore := func(t *testing.T, e *env, wantGet, wantSync int64) {
		t.Helper()
		if g, s := e.cs.calls(); g != wantGet || s != wantSync {
			t.Errorf("store calls: GetUser %d, SyncUser %d; want %d and %d", g, s, wantGet, wantSync)
		}
	}
	tests := []struct {
		name string
		opt  func(*provision.Config)
		run  func(t *testing.T, e *env)
	}{{
		name: "fresh hit makes no store call",
		run: func(t *testing.T, e *env) {
			first := ensure(t, e) // the first sign-in: read, sync
			wantStore(t, e, 2, 1) // Ensure's read and the flight's re-read
			p0, o0 := imsCalls()
			for range 3 {
				e.f.clock.Advance(ttl / 4)
				if u := ensure(t, e); u != first {
					t.Errorf("Ensure returned %p, want the synced user %p", u, first)
				}
			}
			wantStore(t, e, 0, 0)
			wantCalls(t, p0, o0, 0, 0)
		},
	}, {
		name: "a read of a fresh user is cached",
		run: func(t *testing.T, e *env) {
			ensure(t, e)
			e.cs.calls()
			// Another Provisioner (another replica) on the same store
			// knows the user from the store only.
			cfg := e.f.cfg
			cfg.Store = e.cs
			other, err := provision.New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			for range 3 {
				if _, err := other.Ensure(t.Context(), e.token, e.claim); err != nil {
					t.Fatal(err)
				}
			}
			wantStore(t, e, 1, 0)
		},
	}, {
		name: "TTL expiry re-reads",
		run: func(t *testing.T, e *env) {
			ensure(t, e)
			e.cs.calls()
			// A change made elsewhere (another replica, an admin) is not
			// seen within the TTL, and is seen after it.
			if err := e.f.store.AddMembership(t.Context(), e.id, "local-group", session.SourceLocal); err != nil {
				t.Fatal(err)
			}
			e.f.clock.Advance(ttl - time.Millisecond)
			wantGroups(t, ensure(t, e), "Admins", "Authors", "Readers")
			wantStore(t, e, 0, 0)
			e.f.clock.Advance(time.Millisecond)
			wantGroups(t, ensure(t, e), "Admins", "Authors", "Readers", "local-group")
			wantStore(t, e, 1, 0)
			ensure(t, e) // cached again
			wantStore(t, e, 0, 0)
		},
	}, {
		name: "a stale sync is not trusted within the TTL",
		opt:  func(c *provision.Config) { c.SyncInterval = ttl / 2 },
		run: func(t *testing.T, e *env) {
			ensure(t, e)
			e.cs.calls()
			e.f.clock.Advance(ttl / 2) // within the TTL, past the sync interval
			p0, o0 := imsCalls()
			u := ensure(t, e)
			wantCalls(t, p0, o0, 1, 1)
			wantStore(t, e, 2, 1)
			if !u.SyncedAt.Equal(e.f.clock.Now()) {
				t.Errorf("SyncedAt = %v, want %v", u.SyncedAt, e.f.clock.Now())
			}
		},
	}, {
		name: "a sync replaces the entry",
		opt:  func(c *provision.Config) { c.SyncInterval = time.Hour },
		run: func(t *testing.T, e *env) {
			first := ensure(t, e)
			if err := idp.SetGroups(e.id, orgA, []ims.Group{{GroupName: "Reviewers"}}); err != nil {
				t.Fatal(err)
			}
			e.cs.calls()
			e.f.clock.Advance(time.Hour) // the sync is stale
			synced := ensure(t, e)
			wantStore(t, e, 2, 1)
			if synced == first {
				t.Fatal("Ensure returned the user of the first sync")
			}
			wantGroups(t, synced, "Reviewers")
			// The sync's result is cached, not only a store read.
			if u := ensure(t, e); u != synced {
				t.Errorf("after the sync Ensure returned %p, want the synced user %p", u, synced)
			}
			wantStore(t, e, 0, 0)
		},
	}, {
		name: "a change notification drops the user",
		run: func(t *testing.T, e *env) {
			ensure(t, e)
			e.cs.calls()
			// Another replica changed the user, and the store says so.
			if err := e.f.store.AddMembership(t.Context(), e.id, "local-group", session.SourceLocal); err != nil {
				t.Fatal(err)
			}
			for _, c := range []session.Change{{Kind: session.ChangeUser, ID: "someone else"},
				{Kind: session.ChangeToken, ID: e.id}, {Kind: session.ChangeUserTokens, ID: e.id},
				{Kind: session.ChangeSetting, ID: e.id}, {Kind: session.ChangeLost}} {
				e.f.p.Changed(c)
			}
			wantGroups(t, ensure(t, e), "Admins", "Authors", "Readers")
			wantStore(t, e, 0, 0)
			e.f.p.Changed(session.Change{Kind: session.ChangeUser, ID: e.id})
			wantGroups(t, ensure(t, e), "Admins", "Authors", "Readers", "local-group")
			wantStore(t, e, 1, 0)
			ensure(t, e) // cached again
			wantStore(t, e, 0, 0)
			e.f.p.Changed(session.Change{Kind: session.ChangeAll})
			if n := e.f.p.CacheLen(); n != 0 {
				t.Errorf("after ChangeAll the cache holds %d users, want 0", n)
			}
			ensure(t, e)
			wantStore(t, e, 1, 0)
		},
	}, {
		name: "a read a change notification overtook is not cached",
		run: func(t *testing.T, e *env) {
			ensure(t, e)
			e.f.p.Changed(session.Change{Kind: session.ChangeUser, ID: e.id})
			e.cs.calls()
			e.cs.afterGet = func() { e.f.p.Changed(session.Change{Kind: session.ChangeUser, ID: e.id}) }
			ensure(t, e)
			e.cs.afterGet = nil
			wantStore(t, e, 1, 0)
			ensure(t, e) // what the overtaken read saw was not kept
			wantStore(t, e, 1, 0)
		},
	}, {
		name: "disabled with a negative TTL",
		opt:  func(c *provision.Config) { c.CacheTTL = -1 },
		run: func(t *testing.T, e *env) {
			ensure(t, e)
			e.cs.calls()
			for range 3 {
				ensure(t, e)
			}
			wantStore(t, e, 3, 0)
			if n := e.f.p.CacheLen(); n != 0 {
				t.Errorf("cache holds %d users, want 0", n)
			}
		},
	}, {
		name: "bounded",
		opt:  func(c *provision.Config) { c.CacheSize = 2 },
		run: func(t *testing.T, e *env) {
			ensure(t, e)
			var others []*env
			for range 3 {
				id, token, claims := newUser(t)
				others = append(others, &env{f: e.f, cs: e.cs, token: token, claim: claims, id: id})
			}
			for _, o := range others {
				ensure(t, o)
				if n := e.f.p.CacheLen(); n > 2 {
					t.Fatalf("cache holds %d users, more than its bound of 2", n)
				}
			}
			if n := e.f.p.CacheLen(); n != 2 {
				t.Errorf("cache holds %d users, want 2", n)
			}
			// The last user synced is cached, the evicted ones are read.
			e.cs.calls()
			ensure(t, others[2])
			wantStore(t, e, 0, 0)
			ensure(t, e)
			ensure(t, others[0])
			ensure(t, others[1])
			if g, _ := e.cs.calls(); g < 2 {
				t.Errorf("GetUser calls for 3 users with room for 2 cached: %d, want at least 2", g)
			}
		},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var cs *countingStore
			f := newFixture(t, func(c *provision.Config) {
				cs = &countingStore{Store: c.Store}
				c.Store = cs
				if tc.opt != nil {
					tc.opt(c)
				}
			})
			id, token, claims := newUser(t)
			tc.run(t, &env{f: f, cs: cs, token: token, claim: claims, id: id})
		})
	}
}
