package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gatehouse-proxy/gatehouse/session"
	"github.com/gatehouse-proxy/gatehouse/session/postgres/pgtest"
	"github.com/gatehouse-proxy/gatehouse/session/storetest"
)

func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Store {
		return open(t, pgtest.URL(t))
	})
}

// open opens a store on url. The caller closes it (storetest.Run does).
func open(t testing.TB, url string) *Store {
	t.Helper()
	s, err := Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// raw connects to url without the store, closed when the test ends.
func raw(t testing.TB, url string) *pgx.Conn {
	t.Helper()
	c, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	return c
}

func count(t testing.TB, c *pgx.Conn, query string, args ...any) int {
	t.Helper()
	var n int
	if err := c.QueryRow(context.Background(), query, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

// TestConcurrentSyncAcrossReplicas syncs one user at once from several
// goroutines on each of several stores (pools) over one schema, as
// replicas would on a first sign-in: every sync succeeds, one creates the
// user, and the user has one row and one copy of each membership.
func TestConcurrentSyncAcrossReplicas(t *testing.T) {
	url := pgtest.URL(t)
	const replicas, perReplica, rounds = 3, 4, 10
	stores := make([]*Store, replicas)
	for i := range stores {
		stores[i] = open(t, url)
		t.Cleanup(func() { _ = stores[i].Close() })
	}
	c := raw(t, url)
	groups := []string{"authors", "readers", "admins"}
	for round := range rounds {
		id := fmt.Sprintf("user-%d@AdobeID", round)
		var (
			wg      sync.WaitGroup
			start   = make(chan struct{})
			mu      sync.Mutex
			created int
			errs    []error
		)
		for r, s := range stores {
			for g := range perReplica {
				wg.Go(func() {
					<-start
					p := session.Profile{ID: id, Email: fmt.Sprintf("r%d-g%d@example.com", r, g)}
					res, err := s.SyncUser(t.Context(), p, groups, time.Now())
					mu.Lock()
					defer mu.Unlock()
					if err != nil {
						errs = append(errs, err)
						return
					}
					if res.Created {
						created++
					}
				})
			}
		}
		close(start)
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		if created != 1 {
			t.Errorf("round %d: %d syncs report Created, want 1", round, created)
		}
		if n := count(t, c, `SELECT COUNT(*) FROM users WHERE id = $1`, id); n != 1 {
			t.Errorf("round %d: %d user rows, want 1", round, n)
		}
		if n := count(t, c, `SELECT COUNT(*) FROM memberships WHERE user_id = $1`, id); n != len(groups) {
			t.Errorf("round %d: %d memberships, want %d", round, n, len(groups))
		}
		u, err := stores[round%replicas].GetUser(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := u.Groups(), slices.Sorted(slices.Values(groups)); !slices.Equal(got, want) {
			t.Errorf("round %d: groups %q, want %q", round, got, want)
		}
	}
}

// TestSettingRaceAcrossReplicas: replicas starting together each offer
// their own generated cookie keys; all of them end up with the one value
// that was stored first.
func TestSettingRaceAcrossReplicas(t *testing.T) {
	url := pgtest.URL(t)
	const replicas, rounds = 4, 20
	stores := make([]*Store, replicas)
	for i := range stores {
		stores[i] = open(t, url)
		t.Cleanup(func() { _ = stores[i].Close() })
	}
	for round := range rounds {
		key := fmt.Sprintf("cookie-keys-%d", round)
		var wg sync.WaitGroup
		start := make(chan struct{})
		got := make([][]byte, replicas)
		errs := make([]error, replicas)
		for i, s := range stores {
			wg.Go(func() {
				<-start
				got[i], errs[i] = s.GetOrCreateSetting(t.Context(), key, fmt.Appendf(nil, "keys of replica %d", i))
			})
		}
		close(start)
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		for i, v := range got {
			if string(v) != string(got[0]) || !strings.HasPrefix(string(v), "keys of replica ") {
				t.Errorf("round %d: replica %d got %q, replica 0 got %q", round, i, v, got[0])
			}
		}
	}
}

// TestMigrationRace opens several stores at once on a fresh schema: all
// succeed, and each migration ran once.
func TestMigrationRace(t *testing.T) {
	url := pgtest.URL(t)
	const n = 6
	var wg sync.WaitGroup
	start := make(chan struct{})
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			<-start
			s, err := Open(t.Context(), url)
			if err == nil {
				err = s.Close()
			}
			errs[i] = err
		})
	}
	close(start)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("concurrent Open: %v", err)
	}
	c := raw(t, url)
	if got := count(t, c, `SELECT COUNT(*) FROM schema_migrations`); got != len(migrations) {
		t.Errorf("%d migrations recorded, want %d", got, len(migrations))
	}
}

// TestNewerSchema: a database migrated by a newer Gatehouse is refused,
// with a message that says so, and left as it is.
func TestNewerSchema(t *testing.T) {
	url := pgtest.URL(t)
	if err := open(t, url).Close(); err != nil {
		t.Fatal(err)
	}
	c := raw(t, url)
	newer := len(migrations) + 1
	if _, err := c.Exec(t.Context(), `INSERT INTO schema_migrations (version, applied_at) VALUES ($1, now())`, newer); err != nil {
		t.Fatal(err)
	}
	s, err := Open(t.Context(), url)
	if err == nil {
		_ = s.Close()
		t.Fatal("Open of a newer schema succeeded")
	}
	for _, want := range []string{fmt.Sprintf("version %d is newer", newer), "upgrade gatehouse"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if got := count(t, c, `SELECT COUNT(*) FROM schema_migrations`); got != newer {
		t.Errorf("%d migrations recorded after the refusal, want %d", got, newer)
	}
}

// TestOpenErrorsHideThePassword: whatever goes wrong, no error names the
// password, in the URL's user info or its query.
func TestOpenErrorsHideThePassword(t *testing.T) {
	const pw = "s3cr3t-Pa55"
	working := pgtest.URL(t) // a server that answers, with trust authentication
	withPW := func(raw string) string {
		return strings.Replace(raw, "postgres@", "postgres:"+pw+"@", 1)
	}
	tests := []struct {
		name, url string
	}{
		{"connection refused", "postgres://gatehouse:" + pw + "@127.0.0.1:1/test?sslmode=disable&connect_timeout=5"},
		{"bad port", "postgres://gatehouse:" + pw + "@127.0.0.1:port/test"},
		{"not a URL", "postgres://gatehouse:" + pw + "@[::1/test"},
		{"password in the query", "postgresql://127.0.0.1:1/test?user=gatehouse&password=" + pw + "&sslmode=disable"},
		{"bad parameter", "postgres://gatehouse:" + pw + "@127.0.0.1/test?sslmode=sometimes"},
		{"schema missing", withPW(strings.Replace(working, "search_path=gh_test_", "search_path=gh_missing_", 1))},
		{"wrong scheme", "mysql://gatehouse:" + pw + "@127.0.0.1/test"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
			defer cancel()
			s, err := Open(ctx, tc.url)
			if err == nil {
				_ = s.Close()
				t.Fatal("Open succeeded")
			}
			t.Log(err)
			// Nor does any error it wraps, which a caller might log.
			for e := err; e != nil; e = errors.Unwrap(e) {
				if strings.Contains(e.Error(), pw) {
					t.Errorf("error shows the password: %v", e)
				}
			}
			if !strings.Contains(err.Error(), "open session store") {
				t.Errorf("error %q does not say what failed", err)
			}
		})
	}
}

// TestRefusesTextPostgreSQLCannotHold: what PostgreSQL's text cannot hold
// is refused as invalid input, and a key made of it cannot name a row.
func TestRefusesTextPostgreSQLCannotHold(t *testing.T) {
	s := open(t, pgtest.URL(t))
	t.Cleanup(func() { _ = s.Close() })
	ctx := t.Context()
	for _, bad := range []string{"nul\x00byte", "latin1-\xe9"} {
		for what, err := range map[string]error{
			"user id": func() error { _, err := s.SyncUser(ctx, session.Profile{ID: bad}, nil, time.Now()); return err }(),
			"name": func() error {
				_, err := s.SyncUser(ctx, session.Profile{ID: "u", Name: bad}, nil, time.Now())
				return err
			}(),
			"group": func() error {
				_, err := s.SyncUser(ctx, session.Profile{ID: "u"}, []string{bad}, time.Now())
				return err
			}(),
			"org": func() error {
				_, err := s.SyncUser(ctx, session.Profile{ID: "u", Orgs: []string{bad}}, nil, time.Now())
				return err
			}(),
			"setting": func() error { _, err := s.GetOrCreateSetting(ctx, bad, nil); return err }(),
		} {
			if !errors.Is(err, session.ErrInvalid) {
				t.Errorf("%s %q: error = %v, want session.ErrInvalid", what, bad, err)
			}
		}
		if _, err := s.GetUser(ctx, bad); !errors.Is(err, session.ErrNotFound) {
			t.Errorf("GetUser(%q): error = %v, want ErrNotFound", bad, err)
		}
		if _, _, err := s.GetLoginTokenWithUser(ctx, bad); !errors.Is(err, session.ErrNotFound) {
			t.Errorf("GetLoginTokenWithUser(%q): error = %v, want ErrNotFound", bad, err)
		}
		// The administrator's commands: an argument that cannot have been
		// stored finds nothing, or is refused, rather than failing in SQL.
		if _, err := s.SetUserDisabled(ctx, bad, true); !errors.Is(err, session.ErrNotFound) {
			t.Errorf("SetUserDisabled(%q): error = %v, want ErrNotFound", bad, err)
		}
		if err := s.MarkUserForResync(ctx, bad); !errors.Is(err, session.ErrNotFound) {
			t.Errorf("MarkUserForResync(%q): error = %v, want ErrNotFound", bad, err)
		}
		if _, err := s.ListUsers(ctx, bad, 10); !errors.Is(err, session.ErrInvalid) {
			t.Errorf("ListUsers(%q): error = %v, want ErrInvalid", bad, err)
		}
		if us, err := s.FindUsersByEmail(ctx, bad); err != nil || len(us) != 0 {
			t.Errorf("FindUsersByEmail(%q) = %v, %v; want none", bad, us, err)
		}
		if ts, err := s.ListLoginTokens(ctx, bad); err != nil || len(ts) != 0 {
			t.Errorf("ListLoginTokens(%q) = %v, %v; want none", bad, ts, err)
		}
		if n, err := s.DeleteLoginTokensOfUser(ctx, bad); err != nil || n != 0 {
			t.Errorf("DeleteLoginTokensOfUser(%q) = %d, %v; want 0", bad, n, err)
		}
	}
	if _, err := s.GetUser(ctx, "u"); !errors.Is(err, session.ErrNotFound) {
		t.Errorf("a refused sync wrote the user: GetUser error = %v", err)
	}
}

// BenchmarkGetLoginTokenWithUser is the cold cookie path's one store call:
// one statement, one round trip.
func BenchmarkGetLoginTokenWithUser(b *testing.B) {
	ctx := context.Background()
	s := open(b, pgtest.URL(b))
	b.Cleanup(func() { _ = s.Close() })
	p := session.Profile{ID: "u1@AdobeID", Email: "u1@example.com", Orgs: []string{"A@AdobeOrg"}}
	if _, err := s.SyncUser(ctx, p, []string{"authors", "readers", "admins"}, time.Now()); err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	if err := s.CreateLoginToken(ctx, &session.LoginToken{ID: "tok-1", UserID: p.ID, SecretHash: []byte("h"), CreatedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := s.GetLoginTokenWithUser(ctx, "tok-1"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCreateLoginTokenParallel is the first-seen bearer's store
// write under load: 64 goroutines writing login tokens of 100 users at
// once through the batch writer, each returning after its batch
// committed. The server shares the machine, so ns/op counts its work too.
func BenchmarkCreateLoginTokenParallel(b *testing.B) {
	ctx := context.Background()
	s := open(b, pgtest.URL(b))
	b.Cleanup(func() { _ = s.Close() })
	const users = 100
	for i := range users {
		if _, err := s.SyncUser(ctx, session.Profile{ID: fmt.Sprintf("u%d@AdobeID", i)}, []string{"authors"}, time.Now()); err != nil {
			b.Fatal(err)
		}
	}
	var n atomic.Int64
	b.ReportAllocs()
	b.SetParallelism(32) // x GOMAXPROCS goroutines
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			now := time.Now()
			id, err := session.NewLoginTokenID(now)
			if err == nil {
				err = s.CreateLoginToken(ctx, &session.LoginToken{ID: id, UserID: fmt.Sprintf("u%d@AdobeID", n.Add(1)%users),
					SecretHash: make([]byte, 32), CreatedAt: now, ExpiresAt: now.Add(12 * time.Hour)})
			}
			if err != nil {
				b.Error(err)
				return
			}
		}
	})
}
