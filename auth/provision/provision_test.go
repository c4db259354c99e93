package provision_test

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/gatehouse-proxy/gatehouse/auth"
	"github.com/gatehouse-proxy/gatehouse/auth/groupmap"
	"github.com/gatehouse-proxy/gatehouse/auth/ims"
	"github.com/gatehouse-proxy/gatehouse/auth/ims/imstest"
	"github.com/gatehouse-proxy/gatehouse/auth/provision"
	"github.com/gatehouse-proxy/gatehouse/session"
	"github.com/gatehouse-proxy/gatehouse/session/sqlite"
)

const (
	testClient = "cc-europa-desktop_1_0"
	// orgA is the organization Gatehouse is configured for; orgB is
	// another one the same users belong to.
	orgA = "1234ABCD5678EF90@AdobeOrg"
	orgB = "FEDC0987BA654321@AdobeOrg"
)

// idp is shared by every test: generating its RSA key is slow under the
// race detector. Each test adds users of its own (see newUser), counts IMS
// calls as differences, and restores the outage and rate-limit switches it
// turns on. No test here runs in parallel.
var idp *imstest.Server

func TestMain(m *testing.M) {
	idp = imstest.NewServer(imstest.Options{})
	code := m.Run()
	idp.Close()
	os.Exit(code)
}

// clock is a settable clock starting now (to the millisecond, as the store
// keeps times); tests move it forward instead of sleeping. The emulator
// runs on real time, in which the tokens stay live.
type clock struct {
	mu    sync.Mutex
	t     time.Time
	pause *pause
}

type pause struct {
	hit     chan struct{} // closed when the paused call arrives
	release chan struct{} // closed to let it return
}

func newClock() *clock { return &clock{t: time.Now().UTC().Truncate(time.Millisecond)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	p := c.pause
	c.pause = nil
	c.mu.Unlock()
	if p != nil {
		close(p.hit)
		<-p.release
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// pauseNext makes the next call of Now wait until release is called; hit
// is closed when that call arrives.
func (c *clock) pauseNext() (hit <-chan struct{}, release func()) {
	p := &pause{hit: make(chan struct{}), release: make(chan struct{})}
	c.mu.Lock()
	c.pause = p
	c.mu.Unlock()
	return p.hit, sync.OnceFunc(func() { close(p.release) })
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// fixture is a Provisioner over the real ims.Client (talking to idp) and a
// real SQLite store in a temporary directory.
type fixture struct {
	p     *provision.Provisioner
	store *sqlite.Store
	clock *clock
	cfg   provision.Config

	syncMu sync.Mutex
	synced []string // OnSync calls, by user id
}

func newFixture(t *testing.T, opt func(*provision.Config)) *fixture {
	t.Helper()
	store, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "gatehouse.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	client, err := ims.NewClient(idp.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{store: store, clock: newClock()}
	f.cfg = provision.Config{
		IMS:          client,
		Store:        store,
		Org:          orgA,
		SyncInterval: time.Hour,
		OnSync: func(userID string) {
			f.syncMu.Lock()
			f.synced = append(f.synced, userID)
			f.syncMu.Unlock()
		},
		Now: f.clock.Now,
	}
	if opt != nil {
		opt(&f.cfg)
	}
	f.p, err = provision.New(f.cfg)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// onSyncCalls returns the OnSync calls so far.
func (f *fixture) onSyncCalls() []string {
	f.syncMu.Lock()
	defer f.syncMu.Unlock()
	return slices.Clone(f.synced)
}

var userSeq atomic.Int64

// newUser adds a user of its own to idp, a member of orgA (Authors as a
// team member, Admins as a group admin, Readers) and of orgB (Elsewhere),
// and returns the user's id with a live token and its claims.
func newUser(t *testing.T) (string, string, *ims.Claims) {
	t.Helper()
	id := fmt.Sprintf("%016X%08X@AdobeID", time.Now().UnixNano(), userSeq.Add(1))
	idp.AddUser(imstest.User{
		ID:        id,
		Email:     "ada@example.com",
		FirstName: "Ada",
		LastName:  "Lovelace",
		Orgs: []imstest.Org{{
			ID:   orgA,
			Name: "Analytical Engines",
			Groups: []ims.Group{
				{GroupName: "Authors", Role: "TEAM_MEMBER"},
				{GroupName: "Admins", Role: "GRP_ADMIN"},
				{GroupName: "Readers"},
			},
		}, {
			ID:     orgB,
			Name:   "Difference Engines",
			Groups: []ims.Group{{GroupName: "Elsewhere", Role: "GRP_ADMIN"}},
		}},
	})
	token, claims := mint(t, id)
	return id, token, claims
}

func mint(t *testing.T, userID string) (string, *ims.Claims) {
	t.Helper()
	token, claims, err := idp.MintToken(imstest.TokenRequest{UserID: userID, ClientID: testClient})
	if err != nil {
		t.Fatal(err)
	}
	return token, claims
}

// imsCalls is the number of profile and organizations calls so far.
func imsCalls() (profile, orgs int64) {
	return idp.Calls(imstest.EndpointProfile), idp.Calls(imstest.EndpointOrganizations)
}

// wantCalls checks the profile and organizations calls made since
// (profile0, orgs0).
func wantCalls(t *testing.T, profile0, orgs0, wantProfile, wantOrgs int64) {
	t.Helper()
	p, o := imsCalls()
	if p-profile0 != wantProfile || o-orgs0 != wantOrgs {
		t.Errorf("IMS calls: profile %d, organizations %d; want %d and %d", p-profile0, o-orgs0, wantProfile, wantOrgs)
	}
}

func wantGroups(t *testing.T, u *session.User, want ...string) {
	t.Helper()
	if want == nil {
		want = []string{}
	}
	if got := u.Groups(); !slices.Equal(got, want) {
		t.Errorf("groups = %q, want %q", got, want)
	}
}

func wantAuthError(t *testing.T, err error, status int, code, reason string) {
	t.Helper()
	if err == nil {
		t.Fatalf("err = nil, want %d %q %q", status, code, reason)
	}
	var ae *auth.Error
	if !errors.As(err, &ae) {
		t.Fatalf("err = %T %v, want an *auth.Error", err, err)
	}
	if ae.Status != status || ae.Code != code || ae.Reason != reason || ae.Description == "" {
		t.Errorf("err = %d %q %q %q, want %d %q %q", ae.Status, ae.Code, ae.Reason, ae.Description, status, code, reason)
	}
}

func mustMapping(t *testing.T, rules string) *groupmap.Mapping {
	t.Helper()
	m, err := groupmap.Parse(rules)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestNew(t *testing.T) {
	store, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "gatehouse.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	client, err := ims.NewClient(idp.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := provision.New(provision.Config{Store: store}); err == nil {
		t.Error("New without an IMS client succeeded")
	}
	if _, err := provision.New(provision.Config{IMS: client}); err == nil {
		t.Error("New without a store succeeded")
	}
	p, err := provision.New(provision.Config{IMS: client, Store: store})
	if err != nil {
		t.Fatal(err)
	}
	if p.Fresh(nil) {
		t.Error("Fresh(nil) = true")
	}
	// The default sync interval is one hour.
	if !p.Fresh(&session.User{SyncedAt: time.Now().Add(-59 * time.Minute)}) || p.Fresh(&session.User{SyncedAt: time.Now().Add(-61 * time.Minute)}) {
		t.Error("default SyncInterval is not one hour")
	}
}

func TestFirstSignIn(t *testing.T) {
	tests := []struct {
		name     string
		org      string
		mapping  string // groupmap rules; "" for none
		want     []string
		orgCalls int64
	}{{
		name:     "groups of the configured organization only",
		org:      orgA,
		want:     []string{"Admins", "Authors", "Readers"},
		orgCalls: 1,
	}, {
		name:     "the other organization",
		org:      orgB,
		want:     []string{"Elsewhere"},
		orgCalls: 1,
	}, {
		name:     "no organization configured: no groups, organizations still recorded",
		org:      "",
		mapping:  "*:*=everyone",
		want:     nil,
		orgCalls: 1,
	}, {
		name:     "an organization the user is not in",
		org:      "0000000000000000@AdobeOrg",
		want:     nil,
		orgCalls: 1,
	}, {
		name:     "mapping by role and by name; unmatched groups keep their name",
		org:      orgA,
		mapping:  "*:GRP_ADMIN=administrators, Authors:TEAM_MEMBER=content-authors",
		want:     []string{"Readers", "administrators", "content-authors"},
		orgCalls: 1,
	}, {
		name:     "two rules for one group; rules do not reach the other organization",
		org:      orgA,
		mapping:  "Auth*=writers; *ors:*=team; Elsewhere:*=leaked",
		want:     []string{"Admins", "Readers", "team", "writers"},
		orgCalls: 1,
	}, {
		name:     "a catch-all rule",
		org:      orgA,
		mapping:  "*=members",
		want:     []string{"members"},
		orgCalls: 1,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, func(c *provision.Config) {
				c.Org = tt.org
				if tt.mapping != "" {
					c.Mapping = mustMapping(t, tt.mapping)
				}
			})
			id, token, claims := newUser(t)
			p0, o0 := imsCalls()
			u, err := f.p.Ensure(t.Context(), token, claims)
			if err != nil {
				t.Fatalf("Ensure: %v", err)
			}
			wantCalls(t, p0, o0, 1, tt.orgCalls)
			if u.ID != id || u.Email != "ada@example.com" || u.Name != "Ada Lovelace" || u.FirstName != "Ada" || u.LastName != "Lovelace" {
				t.Errorf("user = %+v", u)
			}
			wantGroups(t, u, tt.want...)
			if want := []string{orgA, orgB}; !slices.Equal(u.Orgs, want) {
				t.Errorf("Orgs = %q, want every organization of the user, %q", u.Orgs, want)
			}
			for _, m := range u.Memberships {
				if m.Source != session.SourceIMS {
					t.Errorf("membership %+v: source %q, want %q", m, m.Source, session.SourceIMS)
				}
			}
			if now := f.clock.Now(); !u.SyncedAt.Equal(now) || !u.CreatedAt.Equal(now) {
				t.Errorf("SyncedAt %v, CreatedAt %v; want both %v", u.SyncedAt, u.CreatedAt, now)
			}
			// What Ensure returned is what the store holds.
			stored, err := f.store.GetUser(t.Context(), id)
			if err != nil {
				t.Fatalf("the user was not stored: %v", err)
			}
			wantGroups(t, stored, tt.want...)
			if stored.Email != u.Email || stored.Name != u.Name {
				t.Errorf("stored user %+v differs from %+v", stored, u)
			}
			// OnSync: on a first sign-in only when there are groups.
			calls := f.onSyncCalls()
			if len(tt.want) > 0 && !slices.Equal(calls, []string{id}) || len(tt.want) == 0 && len(calls) != 0 {
				t.Errorf("OnSync calls = %q with groups %q", calls, tt.want)
			}
		})
	}
}

func TestSyncInterval(t *testing.T) {
	const interval = 15 * time.Minute
	f := newFixture(t, func(c *provision.Config) { c.SyncInterval = interval })
	id, token, claims := newUser(t)
	first, err := f.p.Ensure(t.Context(), token, claims)
	if err != nil {
		t.Fatal(err)
	}
	wantGroups(t, first, "Admins", "Authors", "Readers")
	f.syncMu.Lock()
	f.synced = nil // the first sign-in's
	f.syncMu.Unlock()

	t.Run("fresh: no IMS calls", func(t *testing.T) {
		if err := idp.SetGroups(id, orgA, []ims.Group{{GroupName: "Authors"}}); err != nil {
			t.Fatal(err)
		}
		p0, o0 := imsCalls()
		for _, d := range []time.Duration{0, time.Minute, interval - 2*time.Minute} {
			f.clock.Advance(d)
			u, err := f.p.Ensure(t.Context(), token, claims)
			if err != nil {
				t.Fatal(err)
			}
			if !u.SyncedAt.Equal(first.SyncedAt) {
				t.Errorf("SyncedAt moved to %v within the interval", u.SyncedAt)
			}
			wantGroups(t, u, "Admins", "Authors", "Readers") // IMS's change not seen yet
		}
		wantCalls(t, p0, o0, 0, 0)
		if c := f.onSyncCalls(); len(c) != 0 {
			t.Errorf("OnSync calls = %q", c)
		}
	})

	t.Run("stale: groups added and removed", func(t *testing.T) {
		if err := idp.SetGroups(id, orgA, []ims.Group{
			{GroupName: "Authors"},
			{GroupName: "Reviewers"},
		}); err != nil {
			t.Fatal(err)
		}
		f.clock.Advance(time.Minute + time.Second) // past the interval since the first sync
		p0, o0 := imsCalls()
		u, err := f.p.Ensure(t.Context(), token, claims)
		if err != nil {
			t.Fatal(err)
		}
		wantCalls(t, p0, o0, 1, 1)
		wantGroups(t, u, "Authors", "Reviewers")
		if !u.SyncedAt.Equal(f.clock.Now()) {
			t.Errorf("SyncedAt = %v, want %v", u.SyncedAt, f.clock.Now())
		}
		if c := f.onSyncCalls(); !slices.Equal(c, []string{id}) {
			t.Errorf("OnSync calls = %q, want [%q]", c, id)
		}
	})

	t.Run("stale: groups unchanged, no OnSync", func(t *testing.T) {
		f.clock.Advance(interval)
		p0, o0 := imsCalls()
		u, err := f.p.Ensure(t.Context(), token, claims)
		if err != nil {
			t.Fatal(err)
		}
		wantCalls(t, p0, o0, 1, 1)
		wantGroups(t, u, "Authors", "Reviewers")
		if !u.SyncedAt.Equal(f.clock.Now()) {
			t.Errorf("SyncedAt = %v, want %v", u.SyncedAt, f.clock.Now())
		}
		if c := f.onSyncCalls(); len(c) != 1 {
			t.Errorf("OnSync calls = %q, want only the earlier one", c)
		}
	})

	t.Run("stale: every group removed", func(t *testing.T) {
		if err := idp.SetGroups(id, orgA, nil); err != nil {
			t.Fatal(err)
		}
		f.clock.Advance(interval)
		u, err := f.p.Ensure(t.Context(), token, claims)
		if err != nil {
			t.Fatal(err)
		}
		wantGroups(t, u)
		if c := f.onSyncCalls(); len(c) != 2 {
			t.Errorf("OnSync calls = %q, want two", c)
		}
	})
}

func TestLocalMembershipsSurviveSync(t *testing.T) {
	f := newFixture(t, nil)
	id, token, claims := newUser(t)
	if _, err := f.p.Ensure(t.Context(), token, claims); err != nil {
		t.Fatal(err)
	}
	// A local group of its own, and a local grant of a group IMS also gives.
	for _, g := range []string{"local-editors", "Authors"} {
		if err := f.store.AddMembership(t.Context(), id, g, session.SourceLocal); err != nil {
			t.Fatal(err)
		}
	}
	if err := idp.SetGroups(id, orgA, []ims.Group{{GroupName: "Readers"}}); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(2 * time.Hour)
	u, err := f.p.Ensure(t.Context(), token, claims)
	if err != nil {
		t.Fatal(err)
	}
	wantGroups(t, u, "Authors", "Readers", "local-editors")
	want := []session.Membership{
		{Group: "Authors", Source: session.SourceLocal},
		{Group: "Readers", Source: session.SourceIMS},
		{Group: "local-editors", Source: session.SourceLocal},
	}
	if !slices.Equal(u.Memberships, want) {
		t.Errorf("memberships = %+v, want %+v", u.Memberships, want)
	}
}

func TestProfileChangesAreSynced(t *testing.T) {
	f := newFixture(t, nil)
	id, token, claims := newUser(t)
	if _, err := f.p.Ensure(t.Context(), token, claims); err != nil {
		t.Fatal(err)
	}
	idp.AddUser(imstest.User{
		ID: id, Email: "ada.king@example.com", FirstName: "Ada", LastName: "King", DisplayName: "Countess of Lovelace",
		Orgs: []imstest.Org{{ID: orgA, Groups: []ims.Group{{GroupName: "Authors"}}}},
	})
	f.clock.Advance(2 * time.Hour)
	u, err := f.p.Ensure(t.Context(), token, claims)
	if err != nil {
		t.Fatal(err)
	}
	if u.Email != "ada.king@example.com" || u.Name != "Countess of Lovelace" || u.LastName != "King" {
		t.Errorf("user = %+v", u)
	}
	wantGroups(t, u, "Authors")
}

func TestRevokedAtSync(t *testing.T) {
	t.Run("new user", func(t *testing.T) {
		f := newFixture(t, nil)
		id, token, claims := newUser(t)
		idp.Revoke(token)
		u, err := f.p.Ensure(t.Context(), token, claims)
		if u != nil {
			t.Errorf("user = %+v, want none", u)
		}
		wantAuthError(t, err, http.StatusUnauthorized, auth.CodeInvalidToken, auth.ReasonInvalidToken)
		if !errors.Is(err, ims.ErrUnauthorized) {
			t.Errorf("err = %v, want it to wrap ims.ErrUnauthorized", err)
		}
		if _, err := f.store.GetUser(t.Context(), id); !errors.Is(err, session.ErrNotFound) {
			t.Errorf("GetUser after a refused sign-in: %v, want ErrNotFound", err)
		}
	})
	t.Run("known stale user: refused, not served from the store", func(t *testing.T) {
		f := newFixture(t, nil)
		_, token, claims := newUser(t)
		if _, err := f.p.Ensure(t.Context(), token, claims); err != nil {
			t.Fatal(err)
		}
		idp.Revoke(token)
		f.clock.Advance(2 * time.Hour)
		_, err := f.p.Ensure(t.Context(), token, claims)
		wantAuthError(t, err, http.StatusUnauthorized, auth.CodeInvalidToken, auth.ReasonInvalidToken)
	})
	t.Run("without an organization", func(t *testing.T) {
		f := newFixture(t, func(c *provision.Config) { c.Org = "" })
		_, token, claims := newUser(t)
		idp.Revoke(token)
		_, err := f.p.Ensure(t.Context(), token, claims)
		wantAuthError(t, err, http.StatusUnauthorized, auth.CodeInvalidToken, auth.ReasonInvalidToken)
	})
}

const (
	staleGrace = 15 * time.Minute
	// staleRetry is a little more than the back-off between two sync
	// attempts for a user served as last synced.
	staleRetry = 6 * time.Second
)

func TestIMSTrouble(t *testing.T) {
	tests := []struct {
		name       string
		set        func(bool)
		cause      error
		retryAfter time.Duration
	}{
		{"down", idp.SetDown, ims.ErrUnavailable, auth.DefaultRetryAfter},
		{"rate limited", idp.SetRateLimited, ims.ErrRateLimited, time.Second}, // the emulator's Retry-After
	}
	for _, tt := range tests {
		t.Run(tt.name+"/known stale user is served as last synced", func(t *testing.T) {
			core, logs := observer.New(zap.InfoLevel)
			f := newFixture(t, func(c *provision.Config) {
				c.StaleIfError = staleGrace
				c.Logger = zap.New(core)
			})
			id, token, claims := newUser(t)
			first, err := f.p.Ensure(t.Context(), token, claims)
			if err != nil {
				t.Fatal(err)
			}
			if err := idp.SetGroups(id, orgA, nil); err != nil {
				t.Fatal(err)
			}
			f.clock.Advance(time.Hour + staleGrace - time.Minute) // the sync is due, the grace not over
			tt.set(true)
			t.Cleanup(func() { tt.set(false) })
			p0, o0 := imsCalls()
			u, err := f.p.Ensure(t.Context(), token, claims)
			if err != nil {
				t.Fatalf("Ensure during an IMS outage: %v", err)
			}
			wantCalls(t, p0, o0, 1, 1) // it did try
			if u.ID != id || !u.SyncedAt.Equal(first.SyncedAt) {
				t.Errorf("user = %+v, want the last synced one (SyncedAt %v)", u, first.SyncedAt)
			}
			wantGroups(t, u, "Admins", "Authors", "Readers")
			stored, err := f.store.GetUser(t.Context(), id)
			if err != nil {
				t.Fatal(err)
			}
			if !stored.SyncedAt.Equal(first.SyncedAt) {
				t.Errorf("stored SyncedAt = %v: a failed sync was recorded as done", stored.SyncedAt)
			}
			// A burst does not ask IMS again at once: the user counts as
			// fresh for a few seconds, then the sync is tried again.
			p0, o0 = imsCalls()
			for range 3 {
				f.clock.Advance(time.Second)
				if !f.p.Fresh(u) {
					t.Error("Fresh = false within the retry back-off")
				}
				if _, err := f.p.Ensure(t.Context(), token, claims); err != nil {
					t.Fatalf("Ensure within the retry back-off: %v", err)
				}
			}
			wantCalls(t, p0, o0, 0, 0)
			f.clock.Advance(staleRetry)
			if f.p.Fresh(u) {
				t.Error("Fresh = true past the retry back-off")
			}
			if _, err := f.p.Ensure(t.Context(), token, claims); err != nil {
				t.Fatalf("Ensure after the retry back-off: %v", err)
			}
			wantCalls(t, p0, o0, 1, 1)
			if n := logs.FilterMessageSnippet("last synced").Len(); n != 1 {
				t.Errorf("stale log entries = %d, want 1 per user per outage: %v", n, logs.All())
			}
			// After IMS recovers, the next sign-in past the back-off syncs.
			tt.set(false)
			f.clock.Advance(staleRetry)
			u, err = f.p.Ensure(t.Context(), token, claims)
			if err != nil {
				t.Fatal(err)
			}
			wantGroups(t, u)
			if !u.SyncedAt.Equal(f.clock.Now()) {
				t.Errorf("SyncedAt after recovery = %v, want %v", u.SyncedAt, f.clock.Now())
			}
		})
		for _, limit := range []struct {
			name    string
			grace   time.Duration
			advance time.Duration
		}{
			{"past the grace", staleGrace, time.Hour + staleGrace + time.Minute},
			{"grace off", 0, time.Hour + time.Minute},
		} {
			t.Run(tt.name+"/known stale user, "+limit.name+": refused", func(t *testing.T) {
				f := newFixture(t, func(c *provision.Config) { c.StaleIfError = limit.grace })
				_, token, claims := newUser(t)
				if _, err := f.p.Ensure(t.Context(), token, claims); err != nil {
					t.Fatal(err)
				}
				f.clock.Advance(limit.advance)
				tt.set(true)
				t.Cleanup(func() { tt.set(false) })
				u, err := f.p.Ensure(t.Context(), token, claims)
				wantUnavailable(t, u, err, tt.cause, tt.retryAfter)
			})
		}
		t.Run(tt.name+"/new user, even with a grace", func(t *testing.T) {
			f := newFixture(t, func(c *provision.Config) { c.StaleIfError = staleGrace })
			id, token, claims := newUser(t)
			tt.set(true)
			t.Cleanup(func() { tt.set(false) })
			u, err := f.p.Ensure(t.Context(), token, claims)
			wantUnavailable(t, u, err, tt.cause, tt.retryAfter)
			if _, err := f.store.GetUser(t.Context(), id); !errors.Is(err, session.ErrNotFound) {
				t.Errorf("GetUser after a failed first sign-in: %v, want ErrNotFound", err)
			}
			tt.set(false)
			if _, err := f.p.Ensure(t.Context(), token, claims); err != nil {
				t.Errorf("Ensure after IMS recovered: %v", err)
			}
		})
	}
}

// wantUnavailable checks that Ensure refused with 503 for cause.
func wantUnavailable(t *testing.T, u *session.User, err, cause error, retryAfter time.Duration) {
	t.Helper()
	if u != nil {
		t.Errorf("user = %+v, want none", u)
	}
	wantAuthError(t, err, http.StatusServiceUnavailable, "", auth.ReasonUnavailable)
	if !errors.Is(err, cause) {
		t.Errorf("err = %v, want it to wrap %v", err, cause)
	}
	if ae := auth.AsError(err); ae.RetryAfter != retryAfter {
		t.Errorf("RetryAfter = %v, want %v", ae.RetryAfter, retryAfter)
	}
}

// TestProfileOfAnotherUser: claims naming one user with a token of another
// (IMS and the validated claims disagree) must not provision either.
func TestProfileOfAnotherUser(t *testing.T) {
	f := newFixture(t, nil)
	_, token, _ := newUser(t)
	other, _, otherClaims := newUser(t)
	_, err := f.p.Ensure(t.Context(), token, otherClaims)
	wantAuthError(t, err, http.StatusBadGateway, "", auth.ReasonServiceError)
	if _, err := f.store.GetUser(t.Context(), other); !errors.Is(err, session.ErrNotFound) {
		t.Errorf("GetUser: %v, want ErrNotFound", err)
	}
}

func TestStoreUnavailable(t *testing.T) {
	f := newFixture(t, nil)
	_, token, claims := newUser(t)
	if err := f.store.Close(); err != nil {
		t.Fatal(err)
	}
	p0, o0 := imsCalls()
	_, err := f.p.Ensure(t.Context(), token, claims)
	wantAuthError(t, err, http.StatusServiceUnavailable, "", auth.ReasonStoreUnavailable)
	wantCalls(t, p0, o0, 0, 0) // a store outage costs IMS nothing
}

func TestConcurrentFirstSignIn(t *testing.T) {
	const n = 20
	f := newFixture(t, nil)
	id, token, claims := newUser(t)
	p0, o0 := imsCalls()
	var (
		start = make(chan struct{})
		wg    sync.WaitGroup
		users = make([]*session.User, n)
		errs  = make([]error, n)
	)
	for i := range n {
		wg.Go(func() {
			<-start
			users[i], errs[i] = f.p.Ensure(t.Context(), token, claims)
		})
	}
	close(start)
	wg.Wait()
	wantCalls(t, p0, o0, 1, 1)
	for i := range n {
		if errs[i] != nil {
			t.Errorf("Ensure %d: %v", i, errs[i])
			continue
		}
		u := users[i]
		if u.ID != id || !u.CreatedAt.Equal(users[0].CreatedAt) || !u.SyncedAt.Equal(users[0].SyncedAt) {
			t.Errorf("Ensure %d: user %+v differs from %+v", i, u, users[0])
		}
		wantGroups(t, u, "Admins", "Authors", "Readers")
	}
	if c := f.onSyncCalls(); len(c) != 1 {
		t.Errorf("OnSync calls = %q, want one", c)
	}
}

// TestConcurrentResync: a burst of sign-ins of a known user whose sync is
// due costs one sync too.
func TestConcurrentResync(t *testing.T) {
	const n = 20
	f := newFixture(t, nil)
	_, token, claims := newUser(t)
	if _, err := f.p.Ensure(t.Context(), token, claims); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(2 * time.Hour)
	p0, o0 := imsCalls()
	var wg sync.WaitGroup
	start := make(chan struct{})
	for range n {
		wg.Go(func() {
			<-start
			if _, err := f.p.Ensure(t.Context(), token, claims); err != nil {
				t.Errorf("Ensure: %v", err)
			}
		})
	}
	close(start)
	wg.Wait()
	wantCalls(t, p0, o0, 1, 1)
}

// TestSyncFinishedMeanwhile: a sign-in that read the user as stale while
// another sign-in's sync was running, and asks for a sync only after that
// one has finished, uses its result instead of syncing again. (The paused
// clock call is the staleness check that follows the store read.)
func TestSyncFinishedMeanwhile(t *testing.T) {
	f := newFixture(t, nil)
	_, token, claims := newUser(t)
	if _, err := f.p.Ensure(t.Context(), token, claims); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(2 * time.Hour)
	p0, o0 := imsCalls()

	hit, release := f.clock.pauseNext()
	defer release()
	late := make(chan error, 1)
	go func() {
		u, err := f.p.Ensure(t.Context(), token, claims)
		if err == nil && !u.SyncedAt.Equal(f.clock.Now()) {
			err = fmt.Errorf("SyncedAt = %v, want %v", u.SyncedAt, f.clock.Now())
		}
		late <- err
	}()
	select {
	case <-hit:
	case <-time.After(10 * time.Second):
		t.Fatal("the late sign-in never read the clock")
	}
	first := make(chan error, 1)
	go func() {
		_, err := f.p.Ensure(t.Context(), token, claims)
		first <- err
	}()
	select {
	case err := <-first:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		release()
		t.Fatalf("the first sign-in waited for the paused one (%v)", <-first)
	}
	release()
	if err := <-late; err != nil {
		t.Errorf("late Ensure: %v", err)
	}
	wantCalls(t, p0, o0, 1, 1)
}

// TestAnswerOverStoreLimits: an IMS answer the store cannot keep (a group
// name longer than it accepts, more groups than it keeps) is IMS's unusable
// answer, 502, not a store outage, and leaves no user behind.
func TestAnswerOverStoreLimits(t *testing.T) {
	many := make([]ims.Group, 1001)
	for i := range many {
		many[i] = ims.Group{GroupName: fmt.Sprintf("group-%04d", i)}
	}
	tests := []struct {
		name   string
		groups []ims.Group
	}{
		{"a group name of 300 bytes", []ims.Group{{GroupName: strings.Repeat("g", 300)}}},
		{"1001 groups", many},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, nil)
			id := fmt.Sprintf("%016X%08X@AdobeID", time.Now().UnixNano(), userSeq.Add(1))
			idp.AddUser(imstest.User{ID: id, Email: "big@example.com",
				Orgs: []imstest.Org{{ID: orgA, Name: "Analytical Engines", Groups: tt.groups}}})
			token, claims := mint(t, id)
			u, err := f.p.Ensure(t.Context(), token, claims)
			if u != nil {
				t.Errorf("user = %+v, want none", u)
			}
			wantAuthError(t, err, http.StatusBadGateway, "", auth.ReasonServiceError)
			if _, err := f.store.GetUser(t.Context(), id); !errors.Is(err, session.ErrNotFound) {
				t.Errorf("GetUser after a refused sync: %v, want ErrNotFound", err)
			}
		})
	}
}
