package postgres

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-proxy/gatehouse/session"
	"github.com/gatehouse-proxy/gatehouse/session/postgres/pgtest"
)

// TestCreateLoginTokenBatches holds the token writer on a first token
// while concurrent callers queue theirs, then checks that they were
// written as one batch and that each caller got its own outcome: the
// bad rows (unknown user, disabled user, an id already stored, an id
// taken earlier in the same batch, a caller that gave up) fail alone.
func TestCreateLoginTokenBatches(t *testing.T) {
	url := pgtest.URL(t)
	s := open(t, url)
	t.Cleanup(func() { _ = s.Close() })
	ctx := context.Background()
	now := time.Now()
	for _, id := range []string{"alice", "bob", "carol"} {
		if _, err := s.SyncUser(ctx, session.Profile{ID: id}, nil, now); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.SetUserDisabled(ctx, "carol", true); err != nil {
		t.Fatal(err)
	}
	token := func(id, user string) *session.LoginToken {
		return &session.LoginToken{ID: id, UserID: user, SecretHash: []byte("h-" + id), CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
	}
	if err := s.CreateLoginToken(ctx, token("stored", "alice")); err != nil {
		t.Fatal(err)
	}

	var (
		mu      sync.Mutex
		batches []int
		stmts   []string
		held    = make(chan struct{})
		release = make(chan struct{})
	)
	s.tokens.onBatch = func(n int) {
		mu.Lock()
		batches = append(batches, n)
		first := len(batches) == 1
		mu.Unlock()
		if first {
			close(held)
			<-release
		}
	}
	s.tokens.onStatement = func(rows int, err error) {
		mu.Lock()
		defer mu.Unlock()
		stmts = append(stmts, fmt.Sprintf("%d rows: %v", rows, err))
	}
	firstDone := make(chan error, 1)
	go func() { firstDone <- s.CreateLoginToken(ctx, token("first", "alice")) }()
	<-held

	const good = 40
	type call struct {
		t    *session.LoginToken
		ctx  context.Context
		want func(error) bool
	}
	ok := func(err error) bool { return err == nil }
	is := func(target error) func(error) bool { return func(err error) bool { return errors.Is(err, target) } }
	failed := func(err error) bool { return err != nil }
	gone, giveUp := context.WithCancel(ctx)
	calls := []call{
		{token("nobody-1", "nobody"), ctx, is(session.ErrNotFound)},
		{token("carol-1", "carol"), ctx, is(session.ErrUserDisabled)},
		{token("stored", "bob"), ctx, failed},
		{token("gone-1", "bob"), gone, is(context.Canceled)},
	}
	for i := range good {
		calls = append(calls, call{token(fmt.Sprintf("good-%d", i), []string{"alice", "bob"}[i%2]), ctx, ok})
	}
	calls = append(calls, call{token("good-0", "bob"), ctx, failed}) // queued after good-0's first writer
	errs := make([]error, len(calls))
	var wg sync.WaitGroup
	for i, c := range calls {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = s.CreateLoginToken(c.ctx, c.t) }()
		// In order, so that the duplicate id queues after the first one.
		for s.tokens.Queued() < i+1 {
			time.Sleep(time.Millisecond)
		}
	}
	giveUp()
	close(release)
	wg.Wait()
	if err := <-firstDone; err != nil {
		t.Errorf("first token: %v", err)
	}
	for i, c := range calls {
		if !c.want(errs[i]) {
			t.Errorf("token %s of user %s: got %v", c.t.ID, c.t.UserID, errs[i])
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(batches) != 2 || batches[1] != len(calls) {
		t.Errorf("batches %v, want [1 %d]", batches, len(calls))
	}
	// All but the caller that gave up and the repeated id, in one statement.
	if want := fmt.Sprintf("%d rows: <nil>", len(calls)-2); len(stmts) != 1 || stmts[0] != want {
		t.Errorf("multi-row statements %q, want [%q]", stmts, want)
	}
	c := raw(t, url)
	if n := count(t, c, `SELECT COUNT(*) FROM login_tokens WHERE id LIKE 'good-%'`); n != good {
		t.Errorf("%d good tokens stored, want %d", n, good)
	}
	if n := count(t, c, `SELECT COUNT(*) FROM login_tokens WHERE id IN ('nobody-1', 'carol-1', 'gone-1')`); n != 0 {
		t.Errorf("%d refused tokens stored", n)
	}
	if n := count(t, c, `SELECT COUNT(*) FROM login_tokens WHERE id = 'stored' AND user_id = 'alice'`); n != 1 {
		t.Errorf("the stored token was overwritten")
	}
	if n := count(t, c, `SELECT COUNT(*) FROM login_tokens WHERE id = 'good-0' AND user_id = 'alice'`); n != 1 {
		t.Errorf("good-0 is not the first caller's")
	}
}
