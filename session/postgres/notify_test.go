package postgres

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/gatehouse-proxy/gatehouse/session"
	"github.com/gatehouse-proxy/gatehouse/session/postgres/pgtest"
)

// watcher collects what a store's WatchChanges delivers.
type watcher struct {
	ch chan session.Change
}

func watch(t *testing.T, s *Store) *watcher {
	t.Helper()
	w := &watcher{ch: make(chan session.Change, 100)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.WatchChanges(ctx, func(c session.Change) { w.ch <- c }); close(done) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("WatchChanges did not return 10s after its context was cancelled")
		}
	})
	return w
}

// next returns the next change, failing the test after 10 s.
func (w *watcher) next(t *testing.T) session.Change {
	t.Helper()
	select {
	case c := <-w.ch:
		return c
	case <-time.After(10 * time.Second):
		t.Fatal("no change notified within 10s")
		return session.Change{}
	}
}

func (w *watcher) want(t *testing.T, kind session.ChangeKind, id string) {
	t.Helper()
	if c := w.next(t); c.Kind != kind || c.ID != id {
		t.Fatalf("notified %+v, want kind %d id %q", c, kind, id)
	}
}

// TestNotifiesOtherReplicas: each write other replicas must hear of is
// notified to another store's (pool's) listener, once, and writes that
// change nothing, or roll back, are not. Each step ends with a marker
// write, so that "nothing" is seen as "the marker came next".
func TestNotifiesOtherReplicas(t *testing.T) {
	url := pgtest.URL(t)
	a, b := open(t, url), open(t, url)
	t.Cleanup(func() { _, _ = a.Close(), b.Close() })
	w := watch(t, b)
	w.want(t, session.ChangeAll, "")
	ctx := t.Context()
	now := time.Now()
	const u = "u1@AdobeID"
	p := session.Profile{ID: u, Email: "u1@example.com", Orgs: []string{"A@AdobeOrg"}}
	if _, err := a.GetOrCreateSetting(ctx, "marker", []byte("0")); err != nil {
		t.Fatal(err)
	}
	if _, err := a.GetOrCreateSetting(ctx, session.CookieKeysSetting, []byte("k1")); err != nil {
		t.Fatal(err)
	}
	marks := 0
	mark := func(t *testing.T) {
		t.Helper()
		ok, err := a.CompareAndSwapSetting(ctx, "marker", fmt.Append(nil, marks), fmt.Append(nil, marks+1))
		if err != nil || !ok {
			t.Fatalf("marker swap: %v, %v", ok, err)
		}
		marks++
	}
	syncer := func(p session.Profile, groups ...string) func() error {
		return func() error { _, err := a.SyncUser(ctx, p, groups, now); return err }
	}
	token := func(id string) func() error {
		return func() error {
			return a.CreateLoginToken(ctx, &session.LoginToken{ID: id, UserID: u, SecretHash: []byte("h"), CreatedAt: now, ExpiresAt: now.Add(time.Hour)})
		}
	}
	renamed := p
	renamed.Name = "U. One"
	moved := renamed
	moved.Orgs = []string{"B@AdobeOrg"}
	tests := []struct {
		name  string
		write func() error
		want  []session.Change // before the marker
	}{
		{"user created: in no cache yet", syncer(p, "authors"), nil},
		{"sync, nothing changed", syncer(p, "authors"), nil},
		{"groups changed", syncer(p, "authors", "admins"), []session.Change{{Kind: session.ChangeUser, ID: u}}},
		{"profile changed", syncer(renamed, "authors", "admins"), []session.Change{{Kind: session.ChangeUser, ID: u}}},
		{"organizations changed", syncer(moved, "authors", "admins"), []session.Change{{Kind: session.ChangeUser, ID: u}}},
		{"token created", token("tok-1"), nil},
		{"token deleted", func() error { return a.DeleteLoginToken(ctx, "tok-1") }, []session.Change{{Kind: session.ChangeToken, ID: "tok-1"}}},
		{"missing token deleted", func() error { return a.DeleteLoginToken(ctx, "tok-1") }, nil},
		{"cookie keys swapped", func() error {
			_, err := a.CompareAndSwapSetting(ctx, session.CookieKeysSetting, []byte("k1"), []byte("k2"))
			return err
		}, []session.Change{{Kind: session.ChangeSetting, ID: session.CookieKeysSetting}}},
		{"swap from a value not stored", func() error {
			_, err := a.CompareAndSwapSetting(ctx, session.CookieKeysSetting, []byte("k1"), []byte("k3"))
			return err
		}, nil},
		{"expired tokens purged", func() error { _, err := a.DeleteExpiredLoginTokens(ctx, now.Add(2*time.Hour)); return err }, nil},
		{"sync rolled back", func() error {
			tx, err := a.pool.Begin(ctx)
			if err != nil {
				return err
			}
			if _, err := syncUser(ctx, tx, p, []string{"readers"}, ms(now), a.channel); err != nil {
				return err
			}
			return tx.Rollback(ctx)
		}, nil},
		{"token for the admin cases", token("tok-2"), nil},
		{"user disabled", func() error { _, err := a.SetUserDisabled(ctx, u, true); return err }, []session.Change{{Kind: session.ChangeUserTokens, ID: u}}},
		{"user enabled", func() error { _, err := a.SetUserDisabled(ctx, u, false); return err }, []session.Change{{Kind: session.ChangeUser, ID: u}}},
		{"user marked for resync", func() error { return a.MarkUserForResync(ctx, u) }, []session.Change{{Kind: session.ChangeUser, ID: u}}},
		{"missing user marked for resync", func() error { _ = a.MarkUserForResync(ctx, "nobody@AdobeID"); return nil }, nil},
		{"token for revocation", token("tok-3"), nil},
		{"user's tokens revoked", func() error { _, err := a.DeleteLoginTokensOfUser(ctx, u); return err }, []session.Change{{Kind: session.ChangeUserTokens, ID: u}}},
		{"user without tokens revoked", func() error { _, err := a.DeleteLoginTokensOfUser(ctx, u); return err }, nil},
		{"user deleted", func() error { return a.DeleteUser(ctx, u) }, []session.Change{{Kind: session.ChangeUser, ID: u}}},
		{"missing user deleted", func() error { return a.DeleteUser(ctx, u) }, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.write(); err != nil {
				t.Fatal(err)
			}
			mark(t)
			for _, c := range tc.want {
				w.want(t, c.Kind, c.ID)
			}
			w.want(t, session.ChangeSetting, "marker")
		})
	}
}

// TestListenerReconnects: when the listening connection is killed, the
// watcher reports it lost, reconnects on its own, reports that (so that
// caches are emptied of what changed meanwhile), and delivers again.
func TestListenerReconnects(t *testing.T) {
	url := pgtest.URL(t)
	s := open(t, url)
	t.Cleanup(func() { _ = s.Close() })
	w := watch(t, s)
	c := raw(t, url)
	ctx := t.Context()
	if _, err := s.GetOrCreateSetting(ctx, "k", []byte("0")); err != nil {
		t.Fatal(err)
	}
	w.want(t, session.ChangeAll, "")
	for round := range 3 {
		pid := s.listenerPID.Load()
		if pid == 0 {
			t.Fatal("no listener pid while listening")
		}
		var killed bool
		if err := c.QueryRow(ctx, `SELECT pg_terminate_backend($1)`, int64(pid)).Scan(&killed); err != nil || !killed {
			t.Fatalf("terminate the listener's backend %d: %v, %v", pid, killed, err)
		}
		start := time.Now()
		if got := w.next(t); got.Kind != session.ChangeLost || got.Err == nil {
			t.Fatalf("round %d: after the kill, notified %+v; want ChangeLost with its error", round, got)
		}
		w.want(t, session.ChangeAll, "")
		t.Logf("round %d: listening again %s after the kill", round, time.Since(start).Round(time.Millisecond))
		if s.listenerPID.Load() == pid {
			t.Errorf("round %d: listening on the killed backend", round)
		}
		if ok, err := s.CompareAndSwapSetting(ctx, "k", fmt.Append(nil, round), fmt.Append(nil, round+1)); err != nil || !ok {
			t.Fatal(ok, err)
		}
		w.want(t, session.ChangeSetting, "k")
	}
}

// TestListenerUnreachable: a store whose server cannot be reached keeps
// retrying, reports the loss once (not at every attempt), and stops when
// its context is done (watch's cleanup checks that).
func TestListenerUnreachable(t *testing.T) {
	pool, err := pgxpool.New(t.Context(), "postgres://postgres@127.0.0.1:1/test?sslmode=disable&connect_timeout=2")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	w := watch(t, &Store{pool: pool, channel: channelFor("public")})
	if got := w.next(t); got.Kind != session.ChangeLost || got.Err == nil {
		t.Fatalf("notified %+v; want ChangeLost with its error", got)
	}
	select {
	case c := <-w.ch:
		t.Fatalf("notified %+v while still unreachable; want the loss reported once", c)
	case <-time.After(2 * time.Second):
	}
}

// TestPurgeOneReplicaAtATime: while one replica purges expired tokens,
// another skips its round; of replicas purging together, one deletes.
func TestPurgeOneReplicaAtATime(t *testing.T) {
	url := pgtest.URL(t)
	const replicas, expired = 4, 50
	stores := make([]*Store, replicas)
	for i := range stores {
		stores[i] = open(t, url)
		t.Cleanup(func() { _ = stores[i].Close() })
	}
	ctx := t.Context()
	now := time.Now()
	if _, err := stores[0].SyncUser(ctx, session.Profile{ID: "u"}, nil, now); err != nil {
		t.Fatal(err)
	}
	add := func(n int, prefix string, exp time.Time) {
		for i := range n {
			err := stores[0].CreateLoginToken(ctx, &session.LoginToken{ID: fmt.Sprintf("%s-%d", prefix, i), UserID: "u",
				SecretHash: []byte("h"), CreatedAt: now.Add(-2 * time.Hour), ExpiresAt: exp})
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	add(expired, "old", now.Add(-time.Hour))
	add(5, "live", now.Add(time.Hour))
	c := raw(t, url)

	// Another replica holds the purge lock: this one skips.
	tx, err := c.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended($1 || current_schema(), 0))`, purgeLock); err != nil {
		t.Fatal(err)
	}
	if n, err := stores[1].DeleteExpiredLoginTokens(ctx, now); n != 0 || err != nil {
		t.Errorf("while another replica purges: deleted %d, %v; want 0, nil", n, err)
	}
	if n := count(t, c, `SELECT COUNT(*) FROM login_tokens`); n != expired+5 {
		t.Errorf("%d tokens left while another replica purges, want %d", n, expired+5)
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}

	for round := range 5 {
		var (
			wg    sync.WaitGroup
			start = make(chan struct{})
			got   = make([]int64, replicas)
			errs  = make([]error, replicas)
		)
		for i, s := range stores {
			wg.Go(func() {
				<-start
				got[i], errs[i] = s.DeleteExpiredLoginTokens(ctx, now)
			})
		}
		close(start)
		wg.Wait()
		var total int64
		deleters := 0
		for i, n := range got {
			if errs[i] != nil {
				t.Fatalf("round %d, replica %d: %v", round, i, errs[i])
			}
			total += n
			if n > 0 {
				deleters++
			}
		}
		if total != expired || deleters != 1 {
			t.Errorf("round %d: replicas deleted %v; want %d by one of them", round, got, expired)
		}
		if n := count(t, c, `SELECT COUNT(*) FROM login_tokens`); n != 5 {
			t.Errorf("round %d: %d tokens left, want the 5 live ones", round, n)
		}
		add(expired, fmt.Sprintf("old%d", round), now.Add(-time.Hour))
	}
}

// TestChannelPerSchema: channel names stay within PostgreSQL's 63 bytes
// and differ between schemas.
func TestChannelPerSchema(t *testing.T) {
	long := strings.Repeat("s", 63)
	seen := map[string]string{}
	for _, schema := range []string{"public", "gatehouse", "gh_test_0123456789abcdef", long, long[:62] + "t"} {
		ch := channelFor(schema)
		if len(ch) > 63 {
			t.Errorf("channel for %q is %d bytes", schema, len(ch))
		}
		if other, ok := seen[ch]; ok {
			t.Errorf("schemas %q and %q share channel %q", schema, other, ch)
		}
		seen[ch] = schema
	}
}
