package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-proxy/gatehouse/session"
)

// adminTests cover the methods behind `gatehouse users` and `gatehouse
// tokens`, and what a disabled user means for the rest of the store.
var adminTests = []struct {
	name string
	fn   func(t *testing.T, s Store)
}{
	{"Admin/SetUserDisabled", testSetUserDisabled},
	{"Admin/DisableRacesSignIns", testDisableRacesSignIns},
	{"Admin/MarkUserForResync", testMarkUserForResync},
	{"Admin/ListUsers", testListUsers},
	{"Admin/FindUsersByEmail", testFindUsersByEmail},
	{"Admin/LoginTokensOfUser", testLoginTokensOfUser},
}

// epoch is the SyncedAt of a user marked for resync.
var epoch = time.Unix(0, 0).UTC()

func testSetUserDisabled(t *testing.T, s Store) {
	ctx := t.Context()
	p, other := profile("u1@AdobeID"), profile("u2@AdobeID")
	mustSync(t, s, p, []string{"a"}, t0)
	mustSync(t, s, other, nil, t0)
	for i, owner := range []string{p.ID, p.ID, other.ID} {
		if err := s.CreateLoginToken(ctx, newToken(fmt.Sprintf("tok-%d", i), owner, t0, t0.Add(time.Hour))); err != nil {
			t.Fatal(err)
		}
	}
	if mustGetUser(t, s, p.ID).Disabled {
		t.Fatal("a new user is disabled")
	}
	want := userWant{p, ims("a"), t0, t0, t0}

	setDisabled := func(disabled bool, wantRevoked int64) {
		t.Helper()
		n, err := s.SetUserDisabled(ctx, p.ID, disabled)
		if err != nil {
			t.Fatalf("SetUserDisabled(%t): %v", disabled, err)
		}
		if n != wantRevoked {
			t.Errorf("SetUserDisabled(%t) revoked %d tokens, want %d", disabled, n, wantRevoked)
		}
		u := mustGetUser(t, s, p.ID)
		if u.Disabled != disabled {
			t.Errorf("after SetUserDisabled(%t): Disabled = %t", disabled, u.Disabled)
		}
		checkUser(t, "the rest of the user", u, want)
	}

	setDisabled(true, 2)
	for _, id := range []string{"tok-0", "tok-1"} {
		if _, err := getToken(ctx, s, id); !errors.Is(err, session.ErrNotFound) {
			t.Errorf("token %s of the disabled user: GetLoginTokenWithUser error = %v, want ErrNotFound", id, err)
		}
	}
	mustGetToken(t, s, "tok-2") // the other user's stays
	if mustGetUser(t, s, other.ID).Disabled {
		t.Error("disabling one user disabled another")
	}

	late := newToken("tok-late", p.ID, t0, t0.Add(time.Hour))
	if err := s.CreateLoginToken(ctx, late); !errors.Is(err, session.ErrUserDisabled) {
		t.Errorf("CreateLoginToken for a disabled user: error = %v, want ErrUserDisabled", err)
	}
	if _, err := getToken(ctx, s, late.ID); !errors.Is(err, session.ErrNotFound) {
		t.Errorf("the refused token was stored: GetLoginTokenWithUser error = %v", err)
	}

	// A sync keeps the flag: only an administrator enables.
	res := mustSync(t, s, p, []string{"a"}, t0.Add(time.Minute))
	if !res.User.Disabled || !mustGetUser(t, s, p.ID).Disabled {
		t.Error("SyncUser enabled a disabled user")
	}
	want.synced = t0.Add(time.Minute)

	setDisabled(true, 0) // again: not an error
	setDisabled(false, 0)
	setDisabled(false, 0)
	if err := s.CreateLoginToken(ctx, late); err != nil {
		t.Errorf("CreateLoginToken after enabling: %v", err)
	}
	setDisabled(true, 1)

	for _, id := range []string{"nobody@AdobeID", "", strings.Repeat("x", 300)} {
		if _, err := s.SetUserDisabled(ctx, id, true); !errors.Is(err, session.ErrNotFound) {
			t.Errorf("SetUserDisabled(%.20q): error = %v, want ErrNotFound", id, err)
		}
	}

	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := s.SetUserDisabled(cctx, other.ID, true); !errors.Is(err, context.Canceled) {
		t.Errorf("SetUserDisabled with a canceled context: error = %v, want context.Canceled", err)
	}
	if mustGetUser(t, s, other.ID).Disabled {
		t.Error("SetUserDisabled with a canceled context wrote")
	}
	mustGetToken(t, s, "tok-2")
}

// testDisableRacesSignIns: however sign-ins and the disabling interleave,
// once SetUserDisabled(true) has returned and the sign-ins are done, the
// user has no token: each was deleted or refused.
func testDisableRacesSignIns(t *testing.T, s Store) {
	ctx := t.Context()
	p := profile("u1@AdobeID")
	mustSync(t, s, p, nil, t0)
	const n = 40
	var wg sync.WaitGroup
	errs := make([]error, n)
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			errs[i] = s.CreateLoginToken(ctx, newToken(fmt.Sprintf("tok-%02d", i), p.ID, t0, t0.Add(time.Hour)))
		}()
	}
	close(start)
	if _, err := s.SetUserDisabled(ctx, p.ID, true); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil && !errors.Is(err, session.ErrUserDisabled) {
			t.Errorf("CreateLoginToken %d: %v, want nil or ErrUserDisabled", i, err)
		}
	}
	toks, err := s.ListLoginTokens(ctx, p.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(toks) != 0 {
		t.Errorf("%d tokens of the disabled user survived, e.g. %s", len(toks), toks[0].ID)
	}
}

func testMarkUserForResync(t *testing.T, s Store) {
	ctx := t.Context()
	p := profile("u1@AdobeID")
	mustSync(t, s, p, []string{"a", "b"}, t0)
	if _, err := s.SetUserDisabled(ctx, p.ID, true); err != nil {
		t.Fatal(err)
	}
	if err := s.MarkUserForResync(ctx, p.ID); err != nil {
		t.Fatalf("MarkUserForResync: %v", err)
	}
	u := mustGetUser(t, s, p.ID)
	checkUser(t, "after MarkUserForResync", u, userWant{p, ims("a", "b"), t0, t0, epoch})
	if !u.Disabled {
		t.Error("MarkUserForResync enabled the user")
	}
	if err := s.MarkUserForResync(ctx, p.ID); err != nil {
		t.Errorf("MarkUserForResync again: %v", err)
	}
	t1 := t0.Add(time.Hour)
	mustSync(t, s, p, []string{"a"}, t1)
	checkUser(t, "after the next sync", mustGetUser(t, s, p.ID), userWant{p, ims("a"), t0, t0, t1})
	for _, id := range []string{"nobody@AdobeID", "", strings.Repeat("x", 300)} {
		if err := s.MarkUserForResync(ctx, id); !errors.Is(err, session.ErrNotFound) {
			t.Errorf("MarkUserForResync(%.20q): error = %v, want ErrNotFound", id, err)
		}
	}
}

func testListUsers(t *testing.T, s Store) {
	ctx := t.Context()
	for _, limit := range []int{0, -1, session.MaxListUsers + 1} {
		if _, err := s.ListUsers(ctx, "", limit); !errors.Is(err, session.ErrInvalid) {
			t.Errorf("ListUsers(limit %d): error = %v, want ErrInvalid", limit, err)
		}
	}
	if got, err := s.ListUsers(ctx, "", 10); err != nil || len(got) != 0 {
		t.Fatalf("ListUsers of an empty store = %v, %v; want none", got, err)
	}
	// Bytewise order: upper case before lower case, "é" after "z".
	users := []struct {
		id     string
		groups []string
		tokens int
	}{
		{"a@AdobeID", []string{"x", "y", "z"}, 2},
		{"B@AdobeID", nil, 0},
		{"é@AdobeID", []string{"x"}, 1},
		{"z@AdobeID", []string{"x"}, 3},
	}
	for i, u := range users {
		p := profile(u.id)
		p.Email = fmt.Sprintf("user%d@example.com", i)
		mustSync(t, s, p, u.groups, t0.Add(time.Duration(i)*time.Minute))
		for j := range u.tokens {
			if err := s.CreateLoginToken(ctx, newToken(fmt.Sprintf("tok-%d-%d", i, j), u.id, t0, t0.Add(time.Hour))); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, err := s.SetUserDisabled(ctx, "z@AdobeID", true); err != nil { // its tokens go
		t.Fatal(err)
	}
	wantIDs := []string{"B@AdobeID", "a@AdobeID", "z@AdobeID", "é@AdobeID"}
	var got []session.UserSummary
	after := ""
	for pages := 0; ; pages++ {
		page, err := s.ListUsers(ctx, after, 3)
		if err != nil {
			t.Fatalf("ListUsers(%q, 3): %v", after, err)
		}
		if len(page) > 3 {
			t.Fatalf("ListUsers(%q, 3) returned %d users", after, len(page))
		}
		if len(page) == 0 {
			if pages != 2 {
				t.Errorf("%d pages of at most 3 for 4 users, want 2", pages)
			}
			break
		}
		got = append(got, page...)
		after = page[len(page)-1].ID
	}
	var ids []string
	for _, u := range got {
		ids = append(ids, u.ID)
	}
	checkStrings(t, "ListUsers ids", ids, wantIDs)
	if len(ids) != len(wantIDs) {
		return
	}
	want := map[string]session.UserSummary{
		"a@AdobeID": {ID: "a@AdobeID", Email: "user0@example.com", Name: "Jane Doe", CreatedAt: t0, SyncedAt: t0, Groups: 3, LoginTokens: 2},
		"B@AdobeID": {ID: "B@AdobeID", Email: "user1@example.com", Name: "Jane Doe", CreatedAt: t0.Add(time.Minute), SyncedAt: t0.Add(time.Minute)},
		"é@AdobeID": {ID: "é@AdobeID", Email: "user2@example.com", Name: "Jane Doe", CreatedAt: t0.Add(2 * time.Minute), SyncedAt: t0.Add(2 * time.Minute), Groups: 1, LoginTokens: 1},
		"z@AdobeID": {ID: "z@AdobeID", Email: "user3@example.com", Name: "Jane Doe", CreatedAt: t0.Add(3 * time.Minute), SyncedAt: t0.Add(3 * time.Minute), Groups: 1, Disabled: true},
	}
	for _, u := range got {
		w := want[u.ID]
		if u.Email != w.Email || u.Name != w.Name || !u.CreatedAt.Equal(w.CreatedAt) || !u.SyncedAt.Equal(w.SyncedAt) ||
			u.Disabled != w.Disabled || u.Groups != w.Groups || u.LoginTokens != w.LoginTokens {
			t.Errorf("ListUsers: %+v, want %+v", u, w)
		}
		if u.CreatedAt.Location() != time.UTC || u.SyncedAt.Location() != time.UTC {
			t.Errorf("ListUsers: %s: times not in UTC", u.ID)
		}
	}
	if page, err := s.ListUsers(ctx, "a@AdobeID", session.MaxListUsers); err != nil || len(page) != 2 {
		t.Errorf("ListUsers after a@AdobeID = %d users, %v; want 2", len(page), err)
	}
}

func testFindUsersByEmail(t *testing.T, s Store) {
	ctx := t.Context()
	for _, u := range []struct{ id, email string }{
		{"u3@AdobeID", "Jane.Doe@Example.com"},
		{"u1@AdobeID", "jane.doe@example.com"},
		{"u2@AdobeID", "john@example.com"},
		{"u4@AdobeID", "émile@example.com"},
	} {
		p := profile(u.id)
		p.Email = u.email
		mustSync(t, s, p, []string{"g"}, t0)
	}
	tests := []struct {
		email string
		want  []string
	}{
		{"jane.doe@example.com", []string{"u1@AdobeID", "u3@AdobeID"}},
		{"JANE.DOE@EXAMPLE.COM", []string{"u1@AdobeID", "u3@AdobeID"}},
		{"john@example.com", []string{"u2@AdobeID"}},
		{"émile@example.com", []string{"u4@AdobeID"}},
		{"Émile@example.com", nil}, // only ASCII letters fold
		{"jane.doe@example.co", nil},
		{"jane%", nil}, // no pattern matching
		{"", nil},
	}
	for _, tt := range tests {
		got, err := s.FindUsersByEmail(ctx, tt.email)
		if err != nil {
			t.Errorf("FindUsersByEmail(%q): %v", tt.email, err)
			continue
		}
		if got == nil {
			t.Errorf("FindUsersByEmail(%q) = nil, want an empty slice", tt.email)
		}
		var ids []string
		for _, u := range got {
			ids = append(ids, u.ID)
			if !slices.Equal(u.Memberships, ims("g")) {
				t.Errorf("FindUsersByEmail(%q): %s has memberships %v, want those of GetUser", tt.email, u.ID, u.Memberships)
			}
		}
		checkStrings(t, fmt.Sprintf("FindUsersByEmail(%q)", tt.email), ids, tt.want)
	}
}

func testLoginTokensOfUser(t *testing.T, s Store) {
	ctx := t.Context()
	p, other := profile("u1@AdobeID"), profile("u2@AdobeID")
	mustSync(t, s, p, nil, t0)
	mustSync(t, s, other, nil, t0)
	// Created out of order; one expired, not yet deleted.
	mine := []*session.LoginToken{
		newToken("tok-b", p.ID, t0.Add(time.Minute), t0.Add(time.Hour)),
		newToken("tok-c", p.ID, t0, t0.Add(-time.Minute)),
		newToken("tok-a", p.ID, t0.Add(time.Minute), t0.Add(2*time.Hour)),
	}
	for _, tok := range append(mine, newToken("tok-other", other.ID, t0, t0.Add(time.Hour))) {
		if err := s.CreateLoginToken(ctx, tok); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.ListLoginTokens(ctx, p.ID)
	if err != nil {
		t.Fatalf("ListLoginTokens: %v", err)
	}
	wantOrder := []*session.LoginToken{mine[1], mine[2], mine[0]} // by creation, then id
	if len(got) != len(wantOrder) {
		t.Fatalf("ListLoginTokens: %d tokens, want %d", len(got), len(wantOrder))
	}
	for i, w := range wantOrder {
		g := got[i]
		if g.ID != w.ID || g.UserID != p.ID || !g.CreatedAt.Equal(w.CreatedAt) || !g.ExpiresAt.Equal(w.ExpiresAt) {
			t.Errorf("ListLoginTokens[%d] = %+v, want %+v", i, g, w)
		}
		if g.SecretHash != nil {
			t.Errorf("ListLoginTokens[%d] carries the secret hash", i)
		}
	}
	for _, id := range []string{"nobody@AdobeID", "", strings.Repeat("x", 300)} {
		if got, err := s.ListLoginTokens(ctx, id); err != nil || got == nil || len(got) != 0 {
			t.Errorf("ListLoginTokens(%.20q) = %v, %v; want an empty slice", id, got, err)
		}
		if n, err := s.DeleteLoginTokensOfUser(ctx, id); err != nil || n != 0 {
			t.Errorf("DeleteLoginTokensOfUser(%.20q) = %d, %v; want 0, nil", id, n, err)
		}
	}

	n, err := s.DeleteLoginTokensOfUser(ctx, p.ID)
	if err != nil || n != 3 {
		t.Fatalf("DeleteLoginTokensOfUser = %d, %v; want 3", n, err)
	}
	if got, err := s.ListLoginTokens(ctx, p.ID); err != nil || len(got) != 0 {
		t.Errorf("ListLoginTokens after delete = %d tokens, %v", len(got), err)
	}
	mustGetToken(t, s, "tok-other")
	mustGetUser(t, s, p.ID) // the user stays
	if n, err := s.DeleteLoginTokensOfUser(ctx, p.ID); err != nil || n != 0 {
		t.Errorf("DeleteLoginTokensOfUser again = %d, %v; want 0", n, err)
	}
}
