package session

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"
)

// fakeNotifier is a Notifier the test drives: send returns once the
// subscriber has handled the change.
type fakeNotifier struct {
	ch   chan Change
	done chan struct{}
}

func newFakeNotifier() *fakeNotifier {
	return &fakeNotifier{ch: make(chan Change), done: make(chan struct{})}
}

func (n *fakeNotifier) WatchChanges(ctx context.Context, fn func(Change)) {
	for {
		select {
		case <-ctx.Done():
			return
		case c := <-n.ch:
			fn(c)
			n.done <- struct{}{}
		}
	}
}

func (n *fakeNotifier) send(c Change) { n.ch <- c; <-n.done }

// TestManagerFollowsChanges: with the cache TTL long, what another
// replica did to the store is seen here only through a change
// notification, and each kind drops what it should and nothing more.
func TestManagerFollowsChanges(t *testing.T) {
	ctx := t.Context()
	type step struct {
		name string
		// change alters the store behind the Manager's back and returns
		// the notification another replica's write would send.
		change func(f *fixture, aliceTok *LoginToken) Change
		// Then: is alice's cookie refused, her groups, and did the check
		// read the store.
		refused bool
		groups  string
		read    bool
		// bob's cookie is read again.
		bobRead bool
	}
	tests := []step{
		{name: "feed lost: the cache stays", change: func(*fixture, *LoginToken) Change {
			return Change{Kind: ChangeLost, Err: errors.New("connection reset")}
		}, groups: "authors"},
		{name: "other token deleted", change: func(*fixture, *LoginToken) Change {
			return Change{Kind: ChangeToken, ID: "someone-else"}
		}, groups: "authors"},
		{name: "token deleted", change: func(f *fixture, tok *LoginToken) Change {
			_ = f.st.DeleteLoginToken(ctx, tok.ID)
			return Change{Kind: ChangeToken, ID: tok.ID}
		}, refused: true, read: true},
		{name: "user changed", change: func(f *fixture, _ *LoginToken) Change {
			_ = f.st.AddMembership(ctx, f.alice.ID, "admins", SourceLocal)
			return Change{Kind: ChangeUser, ID: f.alice.ID}
		}, groups: "admins,authors", read: true},
		{name: "user's tokens revoked", change: func(f *fixture, tok *LoginToken) Change {
			_ = f.st.DeleteLoginToken(ctx, tok.ID)
			return Change{Kind: ChangeUserTokens, ID: f.alice.ID}
		}, refused: true, read: true},
		{name: "all", change: func(f *fixture, _ *LoginToken) Change {
			return Change{Kind: ChangeAll}
		}, groups: "authors", read: true, bobRead: true},
		{name: "a kind from a newer replica", change: func(f *fixture, _ *LoginToken) Change {
			return Change{Kind: 200, ID: "x"}
		}, groups: "authors", read: true, bobRead: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, ManagerConfig{CacheTTL: time.Hour})
			n := newFakeNotifier()
			wctx, cancel := context.WithCancel(ctx)
			defer cancel()
			go n.WatchChanges(wctx, f.m.Changed)
			ca, tok := f.issue(t, f.alice)
			cb, _ := f.issue(t, f.bob)
			for _, c := range []*http.Cookie{ca, cb} {
				if _, err := f.m.Validate(ctx, c.Value); err != nil {
					t.Fatal(err)
				}
			}
			n.send(tc.change(f, tok))

			reads := f.st.calls("GetLoginTokenWithUser")
			v, err := f.m.Validate(ctx, ca.Value)
			switch {
			case tc.refused && !errors.Is(err, ErrTokenUnknown):
				t.Errorf("alice's cookie: %v, want ErrTokenUnknown", err)
			case !tc.refused && err != nil:
				t.Errorf("alice's cookie: %v", err)
			case !tc.refused && strings.Join(v.User.Groups(), ",") != tc.groups:
				t.Errorf("alice's groups %v, want %s", v.User.Groups(), tc.groups)
			}
			if got := f.st.calls("GetLoginTokenWithUser") > reads; got != tc.read {
				t.Errorf("alice's cookie read the store: %v, want %v", got, tc.read)
			}
			reads = f.st.calls("GetLoginTokenWithUser")
			if _, err := f.m.Validate(ctx, cb.Value); err != nil {
				t.Errorf("bob's cookie: %v", err)
			}
			if got := f.st.calls("GetLoginTokenWithUser") > reads; got != tc.bobRead {
				t.Errorf("bob's cookie read the store: %v, want %v", got, tc.bobRead)
			}
		})
	}
}

// TestKeysChangeNotified: a notification that the stored cookie keys
// changed makes RunKeyReload read them at once, long before its poll.
func TestKeysChangeNotified(t *testing.T) {
	ctx := t.Context()
	st, m, old := storedKeysManager(t)
	n := newFakeNotifier()
	go n.WatchChanges(ctx, m.Changed)
	go m.RunKeyReload(ctx, time.Hour)
	if _, err := RotateCookieKeys(ctx, st, time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, _, err := DropOldCookieKeys(ctx, st); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Validate(ctx, old.Value); err != nil {
		t.Fatalf("before the notification: %v", err)
	}
	n.send(Change{Kind: ChangeSetting, ID: "another setting"})
	n.send(Change{Kind: ChangeSetting, ID: CookieKeysSetting})
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := m.Validate(ctx, old.Value)
		if errors.Is(err, ErrTokenMalformed) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("10s after the notification, a cookie of the dropped key: %v", err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
