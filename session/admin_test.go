package session

import (
	"context"
	"errors"
	"testing"
	"time"
)

// The administrator's methods of memStore. The manager uses none of them;
// the two that change what it reads are implemented, the others fail.

var errNotInMemStore = errors.New("not implemented by memStore")

func (s *memStore) ListUsers(context.Context, string, int) ([]UserSummary, error) {
	return nil, errNotInMemStore
}

func (s *memStore) FindUsersByEmail(context.Context, string) ([]*User, error) {
	return nil, errNotInMemStore
}

func (s *memStore) MarkUserForResync(context.Context, string) error { return errNotInMemStore }

func (s *memStore) ListLoginTokens(context.Context, string) ([]*LoginToken, error) {
	return nil, errNotInMemStore
}

func (s *memStore) SetUserDisabled(ctx context.Context, userID string, disabled bool) (int64, error) {
	if err := s.enter(ctx, "SetUserDisabled"); err != nil {
		return 0, err
	}
	s.mu.Lock()
	u := s.users[userID]
	if u == nil {
		s.mu.Unlock()
		return 0, ErrNotFound
	}
	u.Disabled = disabled
	s.mu.Unlock()
	if !disabled {
		return 0, nil
	}
	return s.DeleteLoginTokensOfUser(ctx, userID)
}

func (s *memStore) DeleteLoginTokensOfUser(ctx context.Context, userID string) (int64, error) {
	if err := s.enter(ctx, "DeleteLoginTokensOfUser"); err != nil {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var n int64
	for id, t := range s.tokens {
		if t.UserID == userID {
			delete(s.tokens, id)
			n++
		}
	}
	return n, nil
}

// setDisabled flips the flag without deleting tokens: a token that
// escaped the revocation, which the manager must still refuse.
func (s *memStore) setDisabled(userID string, disabled bool) {
	s.mu.Lock()
	s.users[userID].Disabled = disabled
	s.mu.Unlock()
}

// TestDisabledUser: a disabled user's token is refused at the store read
// (cold path) with ErrUserDisabled, is not cached, and works again at once
// when the user is enabled; the warm path trusts the cache for CacheTTL.
func TestDisabledUser(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, ManagerConfig{CacheTTL: 10 * time.Second})
	c, _ := f.issue(t, f.alice)

	if _, err := f.m.Validate(ctx, c.Value); err != nil {
		t.Fatal(err)
	}
	f.st.setDisabled(f.alice.ID, true)
	steps := []struct {
		name    string
		advance time.Duration
		wantErr error // nil: valid
	}{
		{"warm: trusted from the cache", time.Second, nil},
		{"cold: refused", 10 * time.Second, ErrUserDisabled},
		{"refused again: not cached", 0, ErrUserDisabled},
	}
	for _, s := range steps {
		f.clk.Advance(s.advance)
		_, err := f.m.Validate(ctx, c.Value)
		if !errors.Is(err, s.wantErr) || (s.wantErr == nil) != (err == nil) {
			t.Fatalf("%s: Validate error %v, want %v", s.name, err, s.wantErr)
		}
	}
	reads := f.st.calls("GetLoginTokenWithUser")
	f.st.setDisabled(f.alice.ID, false)
	if _, err := f.m.Validate(ctx, c.Value); err != nil {
		t.Fatalf("enabled again: %v", err)
	}
	if f.st.calls("GetLoginTokenWithUser") != reads+1 {
		t.Errorf("enabled again: %d store reads, want 1", f.st.calls("GetLoginTokenWithUser")-reads)
	}

	if _, err := f.st.SetUserDisabled(ctx, f.bob.ID, true); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.m.Issue(ctx, f.bob); !errors.Is(err, ErrUserDisabled) {
		t.Errorf("Issue for a disabled user: error %v, want ErrUserDisabled", err)
	}
}
