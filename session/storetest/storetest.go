// Package storetest is the conformance suite for session.Store. Every
// implementation runs Run from its own tests:
//
//	func TestStore(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) storetest.Store { return open(t) })
//	}
//
// Besides the contract written in session.Store, the suite pins down what
// callers rely on but the interface cannot say:
//
//   - A user id, group name or membership source is 1 to 255 bytes, and a
//     sync carries at most 1000 distinct groups; longer or more is an error
//     and writes nothing. SyncUser ignores empty group names and merges
//     duplicates before counting. Names compare as exact bytes.
//   - SyncResult.User is the user as the sync left it, memberships of every
//     source included. UpdatedAt moves to now only when the profile
//     changed; SyncedAt and the IMS memberships change on every sync.
//   - Memberships are sorted by group, then source, bytewise.
//   - A setting key is 1 to 255 bytes (ErrInvalid otherwise); a nil
//     setting value is stored, and compared, as an empty one.
//   - Times come back in UTC, within a millisecond of what was written
//     (exactly, when what was written had millisecond precision).
//   - GetUser and GetLoginTokenWithUser return ErrNotFound for any id that cannot
//     exist, however long; methods that are given a canceled context fail
//     with an error wrapping context.Canceled and write nothing.
package storetest

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-proxy/gatehouse/session"
)

// Store is what the suite needs of an implementation: the session.Store
// contract, and the methods the suite uses to arrange and inspect a store
// that no Gatehouse request needs (they are not part of session.Store).
type Store interface {
	session.Store
	// AddMembership grants a membership with the given source; granting
	// an existing one is not an error. It returns an error wrapping
	// session.ErrNotFound if the user does not exist, and one wrapping
	// session.ErrInvalid for an empty or over-long group or source.
	AddMembership(ctx context.Context, userID, group, source string) error
	// RemoveMembership revokes one membership; revoking a missing one is
	// not an error.
	RemoveMembership(ctx context.Context, userID, group, source string) error
	// CountLoginTokens returns how many login tokens are stored.
	CountLoginTokens(ctx context.Context) (int64, error)
	// DeleteUser removes a user with their memberships, organizations and
	// login tokens; removing a missing user is not an error.
	DeleteUser(ctx context.Context, id string) error
}

// Run runs the suite. newStore must return a new, empty store each time
// it is called; Run closes the store when the subtest that asked for it
// ends, and fails the subtest if Close does.
func Run(t *testing.T, newStore func(t *testing.T) Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s Store)
	}{
		{"GetUser/NotFound", testGetUserNotFound},
		{"SyncUser/Creates", testSyncCreates},
		{"SyncUser/UpdatesProfile", testSyncUpdatesProfile},
		{"SyncUser/UnchangedProfileKeepsUpdatedAt", testSyncUnchangedProfile},
		{"SyncUser/AddsAndRemovesIMSGroups", testSyncAddsAndRemoves},
		{"SyncUser/NormalizesGroups", testSyncNormalizes},
		{"SyncUser/LeavesOtherSourcesAlone", testSyncLeavesOtherSources},
		{"SyncUser/Limits", testSyncLimits},
		{"SyncUser/CanceledContext", testSyncCanceled},
		{"SyncUser/ConcurrentSameUser", testSyncConcurrent},
		{"SyncUser/ConcurrentWithLocalGrants", testSyncConcurrentWithGrants},
		{"SyncUser/ReplacesOrgs", testSyncReplacesOrgs},
		{"AddMembership", testAddMembership},
		{"RemoveMembership", testRemoveMembership},
		{"LoginToken/Lifecycle", testLoginTokenLifecycle},
		{"LoginToken/Errors", testLoginTokenErrors},
		{"LoginToken/DeleteExpired", testDeleteExpired},
		{"LoginToken/Count", testCountLoginTokens},
		{"LoginToken/WithUser", testLoginTokenWithUser},
		{"Setting/GetOrCreate", testSetting},
		{"Setting/Concurrent", testSettingConcurrent},
		{"Setting/Get", testGetSetting},
		{"Setting/CompareAndSwap", testSwapSetting},
		{"Setting/CompareAndSwapConcurrent", testSwapSettingConcurrent},
		{"Times", testTimes},
		{"Ping", testPing},
	}
	tests = append(tests, adminTests...)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t)
			t.Cleanup(func() {
				if err := s.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			})
			tc.fn(t, s)
		})
	}
}

// t0 is the suite's "now": millisecond precision, so that it round-trips
// exactly.
var t0 = time.Date(2026, 3, 1, 9, 30, 0, 123_000_000, time.UTC)

func testGetUserNotFound(t *testing.T, s Store) {
	for _, id := range []string{"nobody@AdobeID", "", strings.Repeat("x", 300)} {
		u, err := s.GetUser(t.Context(), id)
		if !errors.Is(err, session.ErrNotFound) {
			t.Errorf("GetUser(%.20q) error = %v, want ErrNotFound", id, err)
		}
		if u != nil {
			t.Errorf("GetUser(%.20q) = %+v, want nil", id, u)
		}
	}
	// A user that exists is not confused with one that doesn't.
	mustSync(t, s, profile("someone@AdobeID"), nil, t0)
	if _, err := s.GetUser(t.Context(), "someone-else@AdobeID"); !errors.Is(err, session.ErrNotFound) {
		t.Errorf("GetUser of another id: error = %v, want ErrNotFound", err)
	}
}

func testSyncCreates(t *testing.T, s Store) {
	// An id with non-ASCII and SQL-special characters.
	p := profile("7F8F…@AdobeID'; DROP TABLE users;--")
	res := mustSync(t, s, p, []string{"b", "a"}, t0)
	if !res.Created {
		t.Error("Created = false for a new user")
	}
	checkStrings(t, "Added", res.Added, []string{"a", "b"})
	checkStrings(t, "Removed", res.Removed, nil)
	want := userWant{p, ims("a", "b"), t0, t0, t0}
	checkUser(t, "SyncResult.User", res.User, want)
	checkUser(t, "GetUser", mustGetUser(t, s, p.ID), want)
}

func testSyncUpdatesProfile(t *testing.T, s Store) {
	p := profile("u1@AdobeID")
	mustSync(t, s, p, []string{"a"}, t0)

	t1 := t0.Add(time.Hour)
	p2 := session.Profile{ID: p.ID, Email: "new@example.com", Name: "New Name", FirstName: "New", LastName: "Name"}
	res := mustSync(t, s, p2, []string{"a"}, t1)
	if res.Created {
		t.Error("Created = true for an existing user")
	}
	checkStrings(t, "Added", res.Added, nil)
	checkStrings(t, "Removed", res.Removed, nil)
	want := userWant{p2, ims("a"), t0, t1, t1}
	checkUser(t, "SyncResult.User", res.User, want)
	checkUser(t, "GetUser", mustGetUser(t, s, p.ID), want)

	// Every field is written, also back to empty.
	t2 := t1.Add(time.Hour)
	p3 := session.Profile{ID: p.ID}
	res = mustSync(t, s, p3, []string{"a"}, t2)
	checkUser(t, "GetUser after clearing the profile", mustGetUser(t, s, p.ID), userWant{p3, ims("a"), t0, t2, t2})
	checkUser(t, "SyncResult.User after clearing the profile", res.User, userWant{p3, ims("a"), t0, t2, t2})
}

func testSyncUnchangedProfile(t *testing.T, s Store) {
	p := profile("u1@AdobeID")
	mustSync(t, s, p, []string{"a"}, t0)
	t1 := t0.Add(time.Minute)
	res := mustSync(t, s, p, []string{"a", "b"}, t1)
	want := userWant{p, ims("a", "b"), t0, t0, t1}
	checkUser(t, "SyncResult.User", res.User, want)
	checkUser(t, "GetUser", mustGetUser(t, s, p.ID), want)
}

func testSyncAddsAndRemoves(t *testing.T, s Store) {
	p := profile("u1@AdobeID")
	// Another user with the same groups, who must not be affected.
	other := profile("u2@AdobeID")
	mustSync(t, s, other, []string{"a", "b", "c", "d"}, t0)

	steps := []struct {
		name                  string
		groups                []string
		added, removed, final []string
	}{
		{"create", []string{"c", "a", "b"}, []string{"a", "b", "c"}, nil, []string{"a", "b", "c"}},
		{"add and remove", []string{"b", "c", "d"}, []string{"d"}, []string{"a"}, []string{"b", "c", "d"}},
		{"same set, other order", []string{"d", "c", "b"}, nil, nil, []string{"b", "c", "d"}},
		{"replace all", []string{"x", "y"}, []string{"x", "y"}, []string{"b", "c", "d"}, []string{"x", "y"}},
		{"case matters", []string{"X", "x", "y"}, []string{"X"}, nil, []string{"X", "x", "y"}},
		{"empty list removes all", []string{}, nil, []string{"X", "x", "y"}, nil},
		{"nil list on no groups", nil, nil, nil, nil},
		{"add after empty", []string{"z"}, []string{"z"}, nil, []string{"z"}},
		{"nil list removes all", nil, nil, []string{"z"}, nil},
	}
	now := t0
	for i, st := range steps {
		now = now.Add(time.Second)
		res := mustSync(t, s, p, st.groups, now)
		if res.Created != (i == 0) {
			t.Errorf("step %q: Created = %v, want %v", st.name, res.Created, i == 0)
		}
		checkStrings(t, "step "+st.name+": Added", res.Added, st.added)
		checkStrings(t, "step "+st.name+": Removed", res.Removed, st.removed)
		checkMemberships(t, "step "+st.name+": SyncResult.User", res.User.Memberships, ims(st.final...))
		u := mustGetUser(t, s, p.ID)
		checkMemberships(t, "step "+st.name+": GetUser", u.Memberships, ims(st.final...))
		checkTime(t, "step "+st.name+": SyncedAt", u.SyncedAt, now)
	}
	checkUser(t, "the other user", mustGetUser(t, s, other.ID), userWant{other, ims("a", "b", "c", "d"), t0, t0, t0})
}

func testSyncNormalizes(t *testing.T, s Store) {
	p := profile("u1@AdobeID")
	res := mustSync(t, s, p, []string{"b", "", "a", "b", "", "a", "a"}, t0)
	checkStrings(t, "Added", res.Added, []string{"a", "b"})
	checkMemberships(t, "GetUser", mustGetUser(t, s, p.ID).Memberships, ims("a", "b"))

	res = mustSync(t, s, p, []string{"a", "", "a"}, t0.Add(time.Second))
	checkStrings(t, "Added", res.Added, nil)
	checkStrings(t, "Removed", res.Removed, []string{"b"})
	checkMemberships(t, "GetUser", mustGetUser(t, s, p.ID).Memberships, ims("a"))

	res = mustSync(t, s, p, []string{"", ""}, t0.Add(2*time.Second))
	checkStrings(t, "Removed", res.Removed, []string{"a"})
	checkMemberships(t, "GetUser", mustGetUser(t, s, p.ID).Memberships, nil)
}

func testSyncLeavesOtherSources(t *testing.T, s Store) {
	ctx := t.Context()
	p := profile("u1@AdobeID")
	mustSync(t, s, p, nil, t0)
	for _, m := range []session.Membership{
		{Group: "admins", Source: session.SourceLocal},
		{Group: "shared", Source: session.SourceLocal},
		{Group: "shared", Source: "scim"},
	} {
		if err := s.AddMembership(ctx, p.ID, m.Group, m.Source); err != nil {
			t.Fatalf("AddMembership(%v): %v", m, err)
		}
	}

	// IMS now also grants "shared": that is a membership of its own.
	res := mustSync(t, s, p, []string{"shared", "x"}, t0.Add(time.Second))
	checkStrings(t, "Added", res.Added, []string{"shared", "x"})
	checkStrings(t, "Removed", res.Removed, nil)
	withIMS := []session.Membership{
		{Group: "admins", Source: session.SourceLocal},
		{Group: "shared", Source: session.SourceIMS},
		{Group: "shared", Source: session.SourceLocal},
		{Group: "shared", Source: "scim"},
		{Group: "x", Source: session.SourceIMS},
	}
	checkMemberships(t, "SyncResult.User", res.User.Memberships, withIMS)
	checkMemberships(t, "GetUser", mustGetUser(t, s, p.ID).Memberships, withIMS)

	// IMS drops "shared" and "x": only the IMS memberships go.
	res = mustSync(t, s, p, nil, t0.Add(2*time.Second))
	checkStrings(t, "Added", res.Added, nil)
	checkStrings(t, "Removed", res.Removed, []string{"shared", "x"})
	without := []session.Membership{
		{Group: "admins", Source: session.SourceLocal},
		{Group: "shared", Source: session.SourceLocal},
		{Group: "shared", Source: "scim"},
	}
	checkMemberships(t, "SyncResult.User", res.User.Memberships, without)
	u := mustGetUser(t, s, p.ID)
	checkMemberships(t, "GetUser", u.Memberships, without)
	checkStrings(t, "Groups()", u.Groups(), []string{"admins", "shared"})

	// A local group IMS never mentioned is not counted as removed.
	res = mustSync(t, s, p, []string{"admins"}, t0.Add(3*time.Second))
	checkStrings(t, "Added", res.Added, []string{"admins"})
	checkStrings(t, "Removed", res.Removed, nil)
}

func testSyncLimits(t *testing.T, s Store) {
	ctx := t.Context()
	long := strings.Repeat("g", 256)
	many := make([]string, 1001)
	for i := range many {
		many[i] = fmt.Sprintf("group-%04d", i)
	}

	// An existing user, whom failed syncs must leave exactly as is.
	p := profile("u1@AdobeID")
	mustSync(t, s, p, []string{"a"}, t0)
	if err := s.AddMembership(ctx, p.ID, "local-group", session.SourceLocal); err != nil {
		t.Fatal(err)
	}
	existing := userWant{p, []session.Membership{
		{Group: "a", Source: session.SourceIMS},
		{Group: "local-group", Source: session.SourceLocal},
	}, t0, t0, t0}
	changed := session.Profile{ID: p.ID, Email: "changed@example.com"}

	rejected := []struct {
		name   string
		p      session.Profile
		groups []string
	}{
		{"empty id", session.Profile{Email: "x@example.com"}, []string{"a"}},
		{"id of 256 bytes", profile(strings.Repeat("i", 256)), []string{"a"}},
		{"new user, group of 256 bytes", profile("u2@AdobeID"), []string{"a", long}},
		{"new user, 1001 groups", profile("u3@AdobeID"), many},
		{"existing user, group of 256 bytes", changed, []string{"b", long}},
		{"existing user, 1001 groups", changed, many},
		{"existing user, 1001 groups after duplicates", changed, append(slices.Clone(many), many[:10]...)},
	}
	for _, tc := range rejected {
		t.Run(tc.name, func(t *testing.T) {
			res, err := s.SyncUser(ctx, tc.p, tc.groups, t0.Add(time.Hour))
			if err == nil {
				t.Fatalf("SyncUser succeeded (%+v), want an error", res)
			}
			if !errors.Is(err, session.ErrInvalid) {
				t.Errorf("SyncUser error = %v, want session.ErrInvalid", err)
			}
			if tc.p.ID == p.ID {
				checkUser(t, "GetUser", mustGetUser(t, s, p.ID), existing)
			} else if _, err := s.GetUser(ctx, tc.p.ID); !errors.Is(err, session.ErrNotFound) {
				t.Errorf("GetUser after rejected sync: error = %v, want ErrNotFound", err)
			}
		})
	}

	accepted := []struct {
		name   string
		p      session.Profile
		groups []string
	}{
		{"id of 255 bytes", profile(strings.Repeat("i", 255)), []string{"a"}},
		{"group of 255 bytes", profile("u4@AdobeID"), []string{long[:255]}},
		{"1000 groups", profile("u5@AdobeID"), many[:1000]},
		{"1000 groups with duplicates and empty names", profile("u6@AdobeID"), append(append(slices.Clone(many[:1000]), many[:500]...), "", "")},
	}
	for _, tc := range accepted {
		t.Run(tc.name, func(t *testing.T) {
			res, err := s.SyncUser(ctx, tc.p, tc.groups, t0)
			if err != nil {
				t.Fatalf("SyncUser: %v", err)
			}
			want := slices.Compact(slices.Sorted(slices.Values(slices.DeleteFunc(slices.Clone(tc.groups), func(g string) bool { return g == "" }))))
			checkStrings(t, "Added", res.Added, want)
			checkMemberships(t, "GetUser", mustGetUser(t, s, tc.p.ID).Memberships, ims(want...))
		})
	}
}

func testSyncCanceled(t *testing.T, s Store) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	p := profile("u1@AdobeID")
	if _, err := s.SyncUser(ctx, p, []string{"a"}, t0); !errors.Is(err, context.Canceled) {
		t.Errorf("SyncUser with a canceled context: error = %v, want context.Canceled", err)
	}
	if _, err := s.GetUser(t.Context(), p.ID); !errors.Is(err, session.ErrNotFound) {
		t.Errorf("GetUser after a canceled sync: error = %v, want ErrNotFound", err)
	}
	if _, err := s.GetUser(ctx, p.ID); !errors.Is(err, context.Canceled) {
		t.Errorf("GetUser with a canceled context: error = %v, want context.Canceled", err)
	}
}

// testSyncConcurrent syncs one user from 8 goroutines at once, each with
// its own groups and its own "now", in rounds that alternate between a
// new user and the same one again. The syncs must serialize: every one
// succeeds, exactly one creates the user, the diffs add up, and the last
// one to commit (the one whose now is the final SyncedAt) decides the
// groups.
func testSyncConcurrent(t *testing.T, s Store) {
	const n, rounds = 8, 20
	groupsOf := func(i int) []string {
		return []string{"common", fmt.Sprintf("only-%d", i), fmt.Sprintf("shared-%d", i/2)}
	}

	prev := 0 // groups the user had before the round
	for round := range rounds {
		p := profile(fmt.Sprintf("u%d@AdobeID", round/2))
		if round%2 == 0 {
			prev = 0
		}
		var (
			wg      sync.WaitGroup
			start   = make(chan struct{})
			results = make([]*session.SyncResult, n)
			errs    = make([]error, n)
		)
		base := t0.Add(time.Duration(round) * time.Hour)
		for i := range n {
			wg.Go(func() {
				<-start
				results[i], errs[i] = s.SyncUser(t.Context(), p, groupsOf(i), base.Add(time.Duration(i)*time.Millisecond))
			})
		}
		close(start)
		wg.Wait()

		created, net := 0, 0
		for i := range n {
			if errs[i] != nil {
				t.Fatalf("round %d: sync %d: %v", round, i, errs[i])
			}
			if results[i].Created {
				created++
			}
			net += len(results[i].Added) - len(results[i].Removed)
		}
		if want := 1 - round%2; created != want {
			t.Errorf("round %d: %d syncs report Created, want %d", round, created, want)
		}

		u := mustGetUser(t, s, p.ID)
		last := int(u.SyncedAt.Sub(base) / time.Millisecond)
		if last < 0 || last >= n || !u.SyncedAt.Equal(base.Add(time.Duration(last)*time.Millisecond)) {
			t.Fatalf("round %d: SyncedAt = %v, not the now of any sync of this round", round, u.SyncedAt)
		}
		final := groupsOf(last)
		slices.Sort(final)
		checkMemberships(t, fmt.Sprintf("round %d: GetUser (last sync was %d)", round, last), u.Memberships, ims(final...))
		if net != len(final)-prev {
			t.Errorf("round %d: syncs added %d groups net, but the user went from %d to %d", round, net, prev, len(final))
		}
		prev = len(final)
	}
}

// testSyncConcurrentWithGrants interleaves syncs of a user with local
// grants to it: no grant may be lost to a sync.
func testSyncConcurrentWithGrants(t *testing.T, s Store) {
	const n = 8
	p := profile("u1@AdobeID")
	mustSync(t, s, p, []string{"a"}, t0)

	var wg sync.WaitGroup
	start := make(chan struct{})
	errs := make([]error, 2*n)
	for i := range n {
		wg.Go(func() {
			<-start
			errs[2*i] = s.AddMembership(t.Context(), p.ID, fmt.Sprintf("local-%d", i), session.SourceLocal)
		})
		wg.Go(func() {
			<-start
			_, errs[2*i+1] = s.SyncUser(t.Context(), p, []string{"a", "b"}, t0.Add(time.Second))
		})
	}
	close(start)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	want := ims("a", "b")
	for i := range n {
		want = append(want, session.Membership{Group: fmt.Sprintf("local-%d", i), Source: session.SourceLocal})
	}
	sortMemberships(want)
	checkMemberships(t, "GetUser", mustGetUser(t, s, p.ID).Memberships, want)
}

func testSyncReplacesOrgs(t *testing.T, s Store) {
	ctx := context.Background()
	p := profile("orgs@AdobeID")
	p.Orgs = []string{"B2@AdobeOrg", "A1@AdobeOrg", "", "B2@AdobeOrg"}
	res := mustSync(t, s, p, nil, t0)
	if want := []string{"A1@AdobeOrg", "B2@AdobeOrg"}; !reflect.DeepEqual(res.User.Orgs, want) {
		t.Fatalf("after first sync: Orgs = %q, want %q (sorted, deduplicated, empty dropped)", res.User.Orgs, want)
	}
	if res.User.UpdatedAt != t0 || !res.Created {
		t.Errorf("created %v updated %v", res.Created, res.User.UpdatedAt)
	}
	p.Orgs = []string{"C3@AdobeOrg"}
	mustSync(t, s, p, nil, t0.Add(time.Minute))
	u := mustGetUser(t, s, p.ID)
	if !reflect.DeepEqual(u.Orgs, []string{"C3@AdobeOrg"}) {
		t.Fatalf("after second sync: Orgs = %q, want only C3@AdobeOrg", u.Orgs)
	}
	p.Orgs = nil
	mustSync(t, s, p, nil, t0.Add(2*time.Minute))
	if u := mustGetUser(t, s, p.ID); len(u.Orgs) != 0 {
		t.Fatalf("after a sync with no organizations: Orgs = %q", u.Orgs)
	}
	p.Orgs = []string{strings.Repeat("o", 256)}
	if _, err := s.SyncUser(ctx, p, nil, t0.Add(3*time.Minute)); !errors.Is(err, session.ErrInvalid) {
		t.Fatalf("an organization id of 256 bytes: error %v, want session.ErrInvalid", err)
	}
}

func testAddMembership(t *testing.T, s Store) {
	ctx := t.Context()
	p := profile("u1@AdobeID")
	mustSync(t, s, p, []string{"a"}, t0)

	t.Run("unknown user", func(t *testing.T) {
		err := s.AddMembership(ctx, "nobody@AdobeID", "g", session.SourceLocal)
		if !errors.Is(err, session.ErrNotFound) {
			t.Errorf("AddMembership for an unknown user: error = %v, want ErrNotFound", err)
		}
		if _, err := s.GetUser(ctx, "nobody@AdobeID"); !errors.Is(err, session.ErrNotFound) {
			t.Errorf("GetUser after AddMembership for an unknown user: error = %v, want ErrNotFound", err)
		}
	})

	t.Run("grants once, sorted by group then source", func(t *testing.T) {
		for _, m := range []session.Membership{
			{Group: "b", Source: session.SourceLocal},
			{Group: "a", Source: "zzz"},
			{Group: "a", Source: session.SourceLocal},
			{Group: "b", Source: session.SourceLocal}, // again: not an error
			{Group: "a", Source: session.SourceIMS},   // exists from the sync
		} {
			if err := s.AddMembership(ctx, p.ID, m.Group, m.Source); err != nil {
				t.Fatalf("AddMembership(%v): %v", m, err)
			}
		}
		u := mustGetUser(t, s, p.ID)
		checkMemberships(t, "GetUser", u.Memberships, []session.Membership{
			{Group: "a", Source: session.SourceIMS},
			{Group: "a", Source: session.SourceLocal},
			{Group: "a", Source: "zzz"},
			{Group: "b", Source: session.SourceLocal},
		})
		// Granting does not count as a sync.
		checkTime(t, "SyncedAt", u.SyncedAt, t0)
	})

	t.Run("rejects invalid names", func(t *testing.T) {
		before := mustGetUser(t, s, p.ID).Memberships
		for _, tc := range []struct{ name, group, source string }{
			{"empty group", "", session.SourceLocal},
			{"group of 256 bytes", strings.Repeat("g", 256), session.SourceLocal},
			{"empty source", "g", ""},
			{"source of 256 bytes", "g", strings.Repeat("s", 256)},
		} {
			err := s.AddMembership(ctx, p.ID, tc.group, tc.source)
			if !errors.Is(err, session.ErrInvalid) {
				t.Errorf("AddMembership with %s: error = %v, want session.ErrInvalid", tc.name, err)
			}
		}
		checkMemberships(t, "GetUser after rejected grants", mustGetUser(t, s, p.ID).Memberships, before)
	})
}

func testRemoveMembership(t *testing.T, s Store) {
	ctx := t.Context()
	p := profile("u1@AdobeID")
	other := profile("u2@AdobeID")
	mustSync(t, s, p, []string{"g"}, t0)
	mustSync(t, s, other, []string{"g"}, t0)
	for _, id := range []string{p.ID, other.ID} {
		for _, g := range []string{"g", "h"} {
			if err := s.AddMembership(ctx, id, g, session.SourceLocal); err != nil {
				t.Fatal(err)
			}
		}
	}

	steps := []struct {
		name               string
		userID, group, src string
		want               []session.Membership
	}{
		{"remove local g", p.ID, "g", session.SourceLocal, []session.Membership{
			{Group: "g", Source: session.SourceIMS}, {Group: "h", Source: session.SourceLocal}}},
		{"again", p.ID, "g", session.SourceLocal, []session.Membership{
			{Group: "g", Source: session.SourceIMS}, {Group: "h", Source: session.SourceLocal}}},
		{"wrong source", p.ID, "h", session.SourceIMS, []session.Membership{
			{Group: "g", Source: session.SourceIMS}, {Group: "h", Source: session.SourceLocal}}},
		{"unknown user", "nobody@AdobeID", "h", session.SourceLocal, []session.Membership{
			{Group: "g", Source: session.SourceIMS}, {Group: "h", Source: session.SourceLocal}}},
		{"remove IMS g", p.ID, "g", session.SourceIMS, []session.Membership{
			{Group: "h", Source: session.SourceLocal}}},
		{"remove local h", p.ID, "h", session.SourceLocal, nil},
	}
	for _, st := range steps {
		if err := s.RemoveMembership(ctx, st.userID, st.group, st.src); err != nil {
			t.Fatalf("step %q: RemoveMembership: %v", st.name, err)
		}
		checkMemberships(t, "step "+st.name+": GetUser", mustGetUser(t, s, p.ID).Memberships, st.want)
	}
	checkMemberships(t, "the other user", mustGetUser(t, s, other.ID).Memberships, []session.Membership{
		{Group: "g", Source: session.SourceIMS},
		{Group: "g", Source: session.SourceLocal},
		{Group: "h", Source: session.SourceLocal},
	})
}

func testLoginTokenLifecycle(t *testing.T, s Store) {
	ctx := t.Context()
	p := profile("u1@AdobeID")
	mustSync(t, s, p, nil, t0)

	tok := newToken("tok-1", p.ID, t0, t0.Add(12*time.Hour))
	tok.SecretHash = []byte{0, 1, 0xff, 0, 'x'} // bytes, not text
	if err := s.CreateLoginToken(ctx, tok); err != nil {
		t.Fatalf("CreateLoginToken: %v", err)
	}
	checkToken(t, "after create", mustGetToken(t, s, tok.ID), tok)

	// Extending, also to the expiry it already has, and into the past.
	for _, exp := range []time.Time{t0.Add(24 * time.Hour), t0.Add(24 * time.Hour), t0.Add(-time.Hour)} {
		if err := s.ExtendLoginToken(ctx, tok.ID, exp); err != nil {
			t.Fatalf("ExtendLoginToken(%v): %v", exp, err)
		}
		want := *tok
		want.ExpiresAt = exp
		checkToken(t, "after extend", mustGetToken(t, s, tok.ID), &want)
	}

	// A second token of the same user is independent.
	tok2 := newToken("tok-2", p.ID, t0, t0.Add(time.Hour))
	if err := s.CreateLoginToken(ctx, tok2); err != nil {
		t.Fatalf("CreateLoginToken: %v", err)
	}

	if err := s.DeleteLoginToken(ctx, tok.ID); err != nil {
		t.Fatalf("DeleteLoginToken: %v", err)
	}
	if _, err := getToken(ctx, s, tok.ID); !errors.Is(err, session.ErrNotFound) {
		t.Errorf("GetLoginTokenWithUser after delete: error = %v, want ErrNotFound", err)
	}
	if err := s.DeleteLoginToken(ctx, tok.ID); err != nil {
		t.Errorf("DeleteLoginToken again: %v, want nil", err)
	}
	if err := s.ExtendLoginToken(ctx, tok.ID, t0.Add(48*time.Hour)); !errors.Is(err, session.ErrNotFound) {
		t.Errorf("ExtendLoginToken after delete: error = %v, want ErrNotFound", err)
	}
	checkToken(t, "the other token", mustGetToken(t, s, tok2.ID), tok2)
}

func testLoginTokenErrors(t *testing.T, s Store) {
	ctx := t.Context()
	p := profile("u1@AdobeID")
	mustSync(t, s, p, nil, t0)
	tok := newToken("tok-1", p.ID, t0, t0.Add(time.Hour))
	if err := s.CreateLoginToken(ctx, tok); err != nil {
		t.Fatalf("CreateLoginToken: %v", err)
	}

	t.Run("get missing", func(t *testing.T) {
		for _, id := range []string{"missing", "", strings.Repeat("t", 300)} {
			got, err := getToken(ctx, s, id)
			if !errors.Is(err, session.ErrNotFound) || got != nil {
				t.Errorf("GetLoginTokenWithUser(%.20q) = %v, %v; want nil, ErrNotFound", id, got, err)
			}
		}
	})
	t.Run("extend missing", func(t *testing.T) {
		if err := s.ExtendLoginToken(ctx, "missing", t0); !errors.Is(err, session.ErrNotFound) {
			t.Errorf("ExtendLoginToken: error = %v, want ErrNotFound", err)
		}
		if _, err := getToken(ctx, s, "missing"); !errors.Is(err, session.ErrNotFound) {
			t.Errorf("ExtendLoginToken created a token: GetLoginTokenWithUser error = %v", err)
		}
	})
	t.Run("delete missing", func(t *testing.T) {
		if err := s.DeleteLoginToken(ctx, "missing"); err != nil {
			t.Errorf("DeleteLoginToken: %v, want nil", err)
		}
	})
	t.Run("create for unknown user", func(t *testing.T) {
		bad := newToken("tok-orphan", "nobody@AdobeID", t0, t0.Add(time.Hour))
		if err := s.CreateLoginToken(ctx, bad); err == nil {
			t.Fatal("CreateLoginToken for an unknown user succeeded")
		}
		if _, err := getToken(ctx, s, bad.ID); !errors.Is(err, session.ErrNotFound) {
			t.Errorf("GetLoginTokenWithUser of the rejected token: error = %v, want ErrNotFound", err)
		}
		if _, err := s.GetUser(ctx, bad.UserID); !errors.Is(err, session.ErrNotFound) {
			t.Errorf("CreateLoginToken created its user: GetUser error = %v", err)
		}
	})
	t.Run("create with an existing id", func(t *testing.T) {
		other := profile("u2@AdobeID")
		mustSync(t, s, other, nil, t0)
		dup := newToken(tok.ID, other.ID, t0.Add(time.Minute), t0.Add(48*time.Hour))
		dup.SecretHash = hash("another secret")
		if err := s.CreateLoginToken(ctx, dup); err == nil {
			t.Fatal("CreateLoginToken with an existing id succeeded")
		}
		checkToken(t, "the existing token", mustGetToken(t, s, tok.ID), tok)
	})
	t.Run("canceled context", func(t *testing.T) {
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		late := newToken("tok-late", p.ID, t0, t0.Add(time.Hour))
		if err := s.CreateLoginToken(cctx, late); !errors.Is(err, context.Canceled) {
			t.Errorf("CreateLoginToken: error = %v, want context.Canceled", err)
		}
		if _, err := getToken(ctx, s, late.ID); !errors.Is(err, session.ErrNotFound) {
			t.Errorf("GetLoginTokenWithUser after a canceled create: error = %v, want ErrNotFound", err)
		}
	})
	if n, err := s.CountLoginTokens(ctx); err != nil || n != 1 {
		t.Errorf("CountLoginTokens = %d, %v; want 1 (only the first token)", n, err)
	}
}

func testDeleteExpired(t *testing.T, s Store) {
	ctx := t.Context()
	p := profile("u1@AdobeID")
	mustSync(t, s, p, nil, t0)
	tokens := []struct {
		id      string
		expires time.Time
		expired bool
	}{
		{"an-hour-ago", t0.Add(-time.Hour), true},
		{"a-ms-ago", t0.Add(-time.Millisecond), true},
		{"now", t0, true},
		{"in-a-ms", t0.Add(time.Millisecond), false},
		{"in-an-hour", t0.Add(time.Hour), false},
	}
	for _, tc := range tokens {
		if err := s.CreateLoginToken(ctx, newToken(tc.id, p.ID, t0.Add(-2*time.Hour), tc.expires)); err != nil {
			t.Fatalf("CreateLoginToken(%s): %v", tc.id, err)
		}
	}
	n, err := s.DeleteExpiredLoginTokens(ctx, t0)
	if err != nil {
		t.Fatalf("DeleteExpiredLoginTokens: %v", err)
	}
	if n != 3 {
		t.Errorf("DeleteExpiredLoginTokens = %d, want 3", n)
	}
	for _, tc := range tokens {
		_, err := getToken(ctx, s, tc.id)
		switch {
		case tc.expired && !errors.Is(err, session.ErrNotFound):
			t.Errorf("expired token %s: GetLoginTokenWithUser error = %v, want ErrNotFound", tc.id, err)
		case !tc.expired && err != nil:
			t.Errorf("live token %s: GetLoginTokenWithUser: %v", tc.id, err)
		}
	}
	if n, err := s.DeleteExpiredLoginTokens(ctx, t0); err != nil || n != 0 {
		t.Errorf("DeleteExpiredLoginTokens again = %d, %v; want 0, nil", n, err)
	}
	if n, err := s.DeleteExpiredLoginTokens(ctx, t0.Add(time.Millisecond)); err != nil || n != 1 {
		t.Errorf("DeleteExpiredLoginTokens a ms later = %d, %v; want 1, nil", n, err)
	}
	if n, err := s.CountLoginTokens(ctx); err != nil || n != 1 {
		t.Errorf("CountLoginTokens = %d, %v; want 1", n, err)
	}
}

func testCountLoginTokens(t *testing.T, s Store) {
	ctx := t.Context()
	count := func(want int64) {
		t.Helper()
		n, err := s.CountLoginTokens(ctx)
		if err != nil {
			t.Fatalf("CountLoginTokens: %v", err)
		}
		if n != want {
			t.Errorf("CountLoginTokens = %d, want %d", n, want)
		}
	}
	count(0)
	for _, id := range []string{"u1@AdobeID", "u2@AdobeID"} {
		mustSync(t, s, profile(id), nil, t0)
	}
	for i, owner := range []string{"u1@AdobeID", "u1@AdobeID", "u2@AdobeID"} {
		if err := s.CreateLoginToken(ctx, newToken(fmt.Sprintf("tok-%d", i), owner, t0, t0.Add(time.Hour))); err != nil {
			t.Fatal(err)
		}
	}
	count(3)
	if err := s.DeleteLoginToken(ctx, "tok-1"); err != nil {
		t.Fatal(err)
	}
	count(2)
}

// testLoginTokenWithUser checks the cold cookie path's read: the token,
// expired or not, with its user as GetUser would return them.
func testLoginTokenWithUser(t *testing.T, s Store) {
	ctx := t.Context()
	p := profile("u1@AdobeID")
	p.Orgs = []string{"B@AdobeOrg", "A@AdobeOrg"}
	mustSync(t, s, p, []string{"b", "a"}, t0)
	if err := s.AddMembership(ctx, p.ID, "a", session.SourceLocal); err != nil {
		t.Fatal(err)
	}
	other := profile("u2@AdobeID")
	mustSync(t, s, other, []string{"other"}, t0)

	live := newToken("tok-live", p.ID, t0, t0.Add(time.Hour))
	expired := newToken("tok-expired", p.ID, t0.Add(-2*time.Hour), t0.Add(-time.Hour))
	theirs := newToken("tok-other", other.ID, t0, t0.Add(time.Hour))
	for _, tok := range []*session.LoginToken{live, expired, theirs} {
		if err := s.CreateLoginToken(ctx, tok); err != nil {
			t.Fatalf("CreateLoginToken(%s): %v", tok.ID, err)
		}
	}
	withOrgs := p
	withOrgs.Orgs = []string{"A@AdobeOrg", "B@AdobeOrg"}
	mine := userWant{withOrgs, []session.Membership{
		{Group: "a", Source: session.SourceIMS},
		{Group: "a", Source: session.SourceLocal},
		{Group: "b", Source: session.SourceIMS},
	}, t0, t0, t0}
	for _, tc := range []struct {
		name string
		tok  *session.LoginToken
		user userWant
	}{
		{"live token", live, mine},
		{"expired token", expired, mine},
		{"another user's token", theirs, userWant{other, ims("other"), t0, t0, t0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tok, u, err := s.GetLoginTokenWithUser(ctx, tc.tok.ID)
			if err != nil {
				t.Fatalf("GetLoginTokenWithUser: %v", err)
			}
			checkToken(t, "token", tok, tc.tok)
			checkUser(t, "user", u, tc.user)
		})
	}

	t.Run("sees a later sync", func(t *testing.T) {
		t1 := t0.Add(time.Minute)
		mustSync(t, s, p, []string{"c"}, t1)
		_, u, err := s.GetLoginTokenWithUser(ctx, live.ID)
		if err != nil {
			t.Fatal(err)
		}
		checkMemberships(t, "after the sync", u.Memberships, []session.Membership{
			{Group: "a", Source: session.SourceLocal},
			{Group: "c", Source: session.SourceIMS},
		})
		checkTime(t, "SyncedAt", u.SyncedAt, t1)
	})

	t.Run("missing token", func(t *testing.T) {
		for _, id := range []string{"missing", "", strings.Repeat("t", 300), p.ID} {
			tok, u, err := s.GetLoginTokenWithUser(ctx, id)
			if !errors.Is(err, session.ErrNotFound) || tok != nil || u != nil {
				t.Errorf("GetLoginTokenWithUser(%.20q) = %v, %v, %v; want nil, nil, ErrNotFound", id, tok, u, err)
			}
		}
	})

	t.Run("token of a deleted user", func(t *testing.T) {
		if err := s.DeleteUser(ctx, other.ID); err != nil {
			t.Fatalf("DeleteUser: %v", err)
		}
		tok, u, err := s.GetLoginTokenWithUser(ctx, theirs.ID)
		if !errors.Is(err, session.ErrNotFound) || tok != nil || u != nil {
			t.Errorf("GetLoginTokenWithUser = %v, %v, %v; want nil, nil, ErrNotFound", tok, u, err)
		}
		if _, _, err := s.GetLoginTokenWithUser(ctx, live.ID); err != nil {
			t.Errorf("another user's token after the delete: %v", err)
		}
	})

	t.Run("canceled context", func(t *testing.T) {
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if _, _, err := s.GetLoginTokenWithUser(cctx, live.ID); !errors.Is(err, context.Canceled) {
			t.Errorf("GetLoginTokenWithUser: error = %v, want context.Canceled", err)
		}
	})
}

func testSetting(t *testing.T, s Store) {
	ctx := t.Context()
	get := func(key string, value []byte) []byte {
		t.Helper()
		v, err := s.GetOrCreateSetting(ctx, key, value)
		if err != nil {
			t.Fatalf("GetOrCreateSetting(%q): %v", key, err)
		}
		return v
	}
	first := []byte{0, 'k', 0xff, 0}
	if v := get("cookie-keys", first); string(v) != string(first) {
		t.Errorf("first call = %q, want %q", v, first)
	}
	if v := get("cookie-keys", []byte("second")); string(v) != string(first) {
		t.Errorf("second call = %q, want the first value %q", v, first)
	}
	if v := get("other", []byte("second")); string(v) != "second" {
		t.Errorf("another key = %q, want %q", v, "second")
	}
	// The caller owns what it is given.
	v := get("cookie-keys", nil)
	v[0] = 'X'
	if v := get("cookie-keys", nil); string(v) != string(first) {
		t.Errorf("after changing a returned value: %q, want %q", v, first)
	}
	for _, key := range []string{"", strings.Repeat("k", 256)} {
		if _, err := s.GetOrCreateSetting(ctx, key, []byte("x")); !errors.Is(err, session.ErrInvalid) {
			t.Errorf("GetOrCreateSetting with a key of %d bytes succeeded", len(key))
		}
	}
}

func testSettingConcurrent(t *testing.T, s Store) {
	const n, rounds = 8, 100
	for round := range rounds {
		key := fmt.Sprintf("key-%d", round)
		var (
			wg    sync.WaitGroup
			start = make(chan struct{})
			got   = make([][]byte, n)
			errs  = make([]error, n)
		)
		for i := range n {
			wg.Go(func() {
				<-start
				got[i], errs[i] = s.GetOrCreateSetting(t.Context(), key, fmt.Appendf(nil, "value-%d", i))
			})
		}
		close(start)
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		won := string(got[0])
		if !strings.HasPrefix(won, "value-") {
			t.Fatalf("round %d: GetOrCreateSetting = %q, none of the values offered", round, won)
		}
		for i, v := range got {
			if string(v) != won {
				t.Errorf("round %d: creator %d got %q, creator 0 got %q", round, i, v, won)
			}
		}
		v, err := s.GetOrCreateSetting(t.Context(), key, []byte("late"))
		if err != nil || string(v) != won {
			t.Errorf("round %d: later GetOrCreateSetting = %q, %v; want %q", round, v, err, won)
		}
	}
}

func testGetSetting(t *testing.T, s Store) {
	ctx := t.Context()
	if v, err := s.GetSetting(ctx, "missing"); !errors.Is(err, session.ErrNotFound) {
		t.Errorf("GetSetting(missing) = %q, %v; want ErrNotFound", v, err)
	}
	stored := []byte{0, 'v', 0xff}
	if _, err := s.GetOrCreateSetting(ctx, "k", stored); err != nil {
		t.Fatal(err)
	}
	v, err := s.GetSetting(ctx, "k")
	if err != nil || string(v) != string(stored) {
		t.Fatalf("GetSetting(k) = %q, %v; want %q", v, err, stored)
	}
	v[0] = 'X' // the caller owns what it is given
	if v, err := s.GetSetting(ctx, "k"); err != nil || string(v) != string(stored) {
		t.Errorf("after changing a returned value: %q, %v; want %q", v, err, stored)
	}
	if _, err := s.GetOrCreateSetting(ctx, "empty", nil); err != nil {
		t.Fatal(err)
	}
	if v, err := s.GetSetting(ctx, "empty"); err != nil || len(v) != 0 {
		t.Errorf("GetSetting(empty) = %q, %v; want an empty value", v, err)
	}
	for _, key := range []string{"", strings.Repeat("k", 256)} {
		if _, err := s.GetSetting(ctx, key); !errors.Is(err, session.ErrInvalid) {
			t.Errorf("GetSetting with a key of %d bytes: %v, want ErrInvalid", len(key), err)
		}
	}
}

func testSwapSetting(t *testing.T, s Store) {
	ctx := t.Context()
	if _, err := s.GetOrCreateSetting(ctx, "k", []byte("one")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetOrCreateSetting(ctx, "empty", nil); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		key        string
		old, value []byte
		want       bool
		wantErr    error
		after      string // the value under key afterwards
	}{
		{name: "stale old value", key: "k", old: []byte("zero"), value: []byte("two"), after: "one"},
		{name: "prefix of the stored value", key: "k", old: []byte("on"), value: []byte("two"), after: "one"},
		{name: "nil old against a value", key: "k", old: nil, value: []byte("two"), after: "one"},
		{name: "matching old value", key: "k", old: []byte("one"), value: []byte{0, 't', 0xff}, want: true, after: "\x00t\xff"},
		{name: "the replaced value is stale now", key: "k", old: []byte("one"), value: []byte("three"), after: "\x00t\xff"},
		{name: "to an empty value", key: "k", old: []byte{0, 't', 0xff}, value: nil, want: true, after: ""},
		{name: "nil old matches empty", key: "k", old: nil, value: []byte("four"), want: true, after: "four"},
		{name: "empty old matches empty", key: "empty", old: []byte{}, value: []byte("e"), want: true, after: "e"},
		{name: "missing key", key: "missing", old: nil, value: []byte("x"), wantErr: session.ErrNotFound},
		{name: "empty key", key: "", old: nil, value: []byte("x"), wantErr: session.ErrInvalid},
		{name: "long key", key: strings.Repeat("k", 256), old: nil, value: []byte("x"), wantErr: session.ErrInvalid},
	}
	for _, tt := range tests {
		got, err := s.CompareAndSwapSetting(ctx, tt.key, tt.old, tt.value)
		if tt.wantErr != nil {
			if !errors.Is(err, tt.wantErr) || got {
				t.Errorf("%s: CompareAndSwapSetting = %v, %v; want false, %v", tt.name, got, err, tt.wantErr)
			}
			if tt.key == "missing" {
				if _, err := s.GetSetting(ctx, tt.key); !errors.Is(err, session.ErrNotFound) {
					t.Errorf("%s: a swap created the setting (%v)", tt.name, err)
				}
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("%s: CompareAndSwapSetting = %v, %v; want %v", tt.name, got, err, tt.want)
		}
		v, err := s.GetSetting(ctx, tt.key)
		if err != nil || string(v) != tt.after {
			t.Errorf("%s: value afterwards %q, %v; want %q", tt.name, v, err, tt.after)
		}
	}
	// The swap wrote only its key.
	if v, err := s.GetSetting(ctx, "empty"); err != nil || string(v) != "e" {
		t.Errorf("the other key = %q, %v; want %q", v, err, "e")
	}
}

func testSwapSettingConcurrent(t *testing.T, s Store) {
	const n, rounds = 8, 50
	key := "counter"
	if _, err := s.GetOrCreateSetting(t.Context(), key, []byte("round-0")); err != nil {
		t.Fatal(err)
	}
	for round := range rounds {
		old := fmt.Appendf(nil, "round-%d", round)
		var (
			wg    sync.WaitGroup
			start = make(chan struct{})
			won   = make([]bool, n)
			errs  = make([]error, n)
		)
		for i := range n {
			wg.Go(func() {
				<-start
				won[i], errs[i] = s.CompareAndSwapSetting(t.Context(), key, old, fmt.Appendf(nil, "round-%d/%d", round+1, i))
			})
		}
		close(start)
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		winner := -1
		for i, w := range won {
			if w && winner >= 0 {
				t.Fatalf("round %d: swappers %d and %d both won", round, winner, i)
			}
			if w {
				winner = i
			}
		}
		if winner < 0 {
			t.Fatalf("round %d: no swapper won", round)
		}
		v, err := s.GetSetting(t.Context(), key)
		if want := fmt.Sprintf("round-%d/%d", round+1, winner); err != nil || string(v) != want {
			t.Fatalf("round %d: value %q, %v; want the winner's %q", round, v, err, want)
		}
		// The next round swaps from a plain value again.
		if ok, err := s.CompareAndSwapSetting(t.Context(), key, v, fmt.Appendf(nil, "round-%d", round+1)); !ok || err != nil {
			t.Fatalf("round %d: reset = %v, %v", round, ok, err)
		}
	}
}

func testTimes(t *testing.T, s Store) {
	ctx := t.Context()
	loc := time.FixedZone("IST", 5*3600+1800)
	// Nanoseconds and a zone other than UTC, now and far ahead.
	now := time.Date(2026, 5, 6, 7, 8, 9, 123_456_789, loc)
	far := time.Date(2199, 12, 31, 23, 59, 59, 999_999_999, loc)

	p := profile("u1@AdobeID")
	res := mustSync(t, s, p, nil, now)
	u := mustGetUser(t, s, p.ID)
	for what, got := range map[string]time.Time{
		"SyncResult.User.CreatedAt": res.User.CreatedAt,
		"GetUser CreatedAt":         u.CreatedAt,
		"GetUser UpdatedAt":         u.UpdatedAt,
		"GetUser SyncedAt":          u.SyncedAt,
	} {
		checkTimeNear(t, what, got, now)
	}

	tok := newToken("tok-1", p.ID, now, far)
	if err := s.CreateLoginToken(ctx, tok); err != nil {
		t.Fatal(err)
	}
	got := mustGetToken(t, s, tok.ID)
	checkTimeNear(t, "token CreatedAt", got.CreatedAt, now)
	checkTimeNear(t, "token ExpiresAt", got.ExpiresAt, far)

	// Expiry comparisons use the instant, not the zone.
	if n, err := s.DeleteExpiredLoginTokens(ctx, far.Add(-time.Second).In(time.UTC)); err != nil || n != 0 {
		t.Errorf("DeleteExpiredLoginTokens a second before expiry = %d, %v; want 0", n, err)
	}

	// Millisecond times round-trip exactly, whatever the zone.
	exact := time.Date(2030, 1, 2, 3, 4, 5, 6_000_000, loc)
	if err := s.ExtendLoginToken(ctx, tok.ID, exact); err != nil {
		t.Fatal(err)
	}
	checkTime(t, "extended ExpiresAt", mustGetToken(t, s, tok.ID).ExpiresAt, exact)
	mustSync(t, s, p, nil, exact)
	checkTime(t, "SyncedAt", mustGetUser(t, s, p.ID).SyncedAt, exact)
}

func testPing(t *testing.T, s Store) {
	if err := s.Ping(t.Context()); err != nil {
		t.Errorf("Ping: %v", err)
	}
}

// Helpers.

func profile(id string) session.Profile {
	return session.Profile{
		ID:        id,
		Email:     "jane.doe@example.com",
		Name:      "Jane Doe",
		FirstName: "Jane",
		LastName:  "Doe",
	}
}

func hash(secret string) []byte {
	h := sha256.Sum256([]byte(secret))
	return h[:]
}

func newToken(id, userID string, created, expires time.Time) *session.LoginToken {
	return &session.LoginToken{
		ID:         id,
		UserID:     userID,
		SecretHash: hash("secret of " + id),
		CreatedAt:  created,
		ExpiresAt:  expires,
	}
}

// ims returns SourceIMS memberships of groups, which must be sorted.
func ims(groups ...string) []session.Membership {
	var out []session.Membership
	for _, g := range groups {
		out = append(out, session.Membership{Group: g, Source: session.SourceIMS})
	}
	return out
}

func sortMemberships(ms []session.Membership) {
	slices.SortFunc(ms, func(a, b session.Membership) int {
		if c := strings.Compare(a.Group, b.Group); c != 0 {
			return c
		}
		return strings.Compare(a.Source, b.Source)
	})
}

func mustSync(t *testing.T, s Store, p session.Profile, groups []string, now time.Time) *session.SyncResult {
	t.Helper()
	res, err := s.SyncUser(t.Context(), p, groups, now)
	if err != nil {
		t.Fatalf("SyncUser(%.30q): %v", p.ID, err)
	}
	if res == nil || res.User == nil {
		t.Fatalf("SyncUser(%.30q) = %+v, want a result with the user", p.ID, res)
	}
	return res
}

func mustGetUser(t *testing.T, s Store, id string) *session.User {
	t.Helper()
	u, err := s.GetUser(t.Context(), id)
	if err != nil {
		t.Fatalf("GetUser(%.30q): %v", id, err)
	}
	return u
}

func mustGetToken(t *testing.T, s Store, id string) *session.LoginToken {
	t.Helper()
	tok, err := getToken(t.Context(), s, id)
	if err != nil {
		t.Fatalf("GetLoginTokenWithUser(%q): %v", id, err)
	}
	return tok
}

// getToken returns the token part of GetLoginTokenWithUser, after checking
// that the call answers with both parts or neither.
func getToken(ctx context.Context, s Store, id string) (*session.LoginToken, error) {
	tok, u, err := s.GetLoginTokenWithUser(ctx, id)
	switch {
	case err != nil && (tok != nil || u != nil):
		return nil, fmt.Errorf("GetLoginTokenWithUser(%q) = %v, %v with error %w; want nil, nil", id, tok, u, err)
	case err == nil && (tok == nil || u == nil || u.ID != tok.UserID):
		return nil, fmt.Errorf("GetLoginTokenWithUser(%q) = %+v, %+v; want a token and its user", id, tok, u)
	}
	return tok, err
}

// userWant is what a user should look like.
type userWant struct {
	p                        session.Profile
	memberships              []session.Membership
	created, updated, synced time.Time
}

func checkUser(t *testing.T, what string, got *session.User, want userWant) {
	t.Helper()
	if got == nil {
		t.Errorf("%s: nil user", what)
		return
	}
	gotP := session.Profile{ID: got.ID, Email: got.Email, Name: got.Name, FirstName: got.FirstName, LastName: got.LastName, Orgs: got.Orgs}
	wantP := want.p
	wantP.Orgs = slices.Sorted(slices.Values(wantP.Orgs))
	if len(gotP.Orgs) == 0 && len(wantP.Orgs) == 0 { // nil and empty are alike
		gotP.Orgs, wantP.Orgs = nil, nil
	}
	if !reflect.DeepEqual(gotP, wantP) {
		t.Errorf("%s: profile = %+v, want %+v", what, gotP, wantP)
	}
	checkMemberships(t, what, got.Memberships, want.memberships)
	checkTime(t, what+": CreatedAt", got.CreatedAt, want.created)
	checkTime(t, what+": UpdatedAt", got.UpdatedAt, want.updated)
	checkTime(t, what+": SyncedAt", got.SyncedAt, want.synced)
}

func checkMemberships(t *testing.T, what string, got, want []session.Membership) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("%s: memberships = %v, want %v", what, got, want)
	}
}

func checkStrings(t *testing.T, what string, got, want []string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("%s = %q, want %q", what, got, want)
	}
}

func checkToken(t *testing.T, what string, got, want *session.LoginToken) {
	t.Helper()
	if got.ID != want.ID || got.UserID != want.UserID || string(got.SecretHash) != string(want.SecretHash) {
		t.Errorf("%s: token = {ID:%q UserID:%q SecretHash:%x}, want {ID:%q UserID:%q SecretHash:%x}",
			what, got.ID, got.UserID, got.SecretHash, want.ID, want.UserID, want.SecretHash)
	}
	checkTime(t, what+": CreatedAt", got.CreatedAt, want.CreatedAt)
	checkTime(t, what+": ExpiresAt", got.ExpiresAt, want.ExpiresAt)
}

// checkTime requires got to be the instant want, in UTC.
func checkTime(t *testing.T, what string, got, want time.Time) {
	t.Helper()
	if !got.Equal(want) || got.Location() != time.UTC {
		t.Errorf("%s = %v, want %v", what, got, want.UTC())
	}
}

// checkTimeNear requires got to be within a millisecond of want, in UTC.
func checkTimeNear(t *testing.T, what string, got, want time.Time) {
	t.Helper()
	if d := got.Sub(want).Abs(); d >= time.Millisecond || got.Location() != time.UTC {
		t.Errorf("%s = %v, want %v give or take less than 1ms, in UTC", what, got, want.UTC())
	}
}
