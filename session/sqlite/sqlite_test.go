package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/gatehouse-proxy/gatehouse/session"
	"github.com/gatehouse-proxy/gatehouse/session/internal/input"
	"github.com/gatehouse-proxy/gatehouse/session/internal/tokenbatch"
	"github.com/gatehouse-proxy/gatehouse/session/storetest"
)

func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Store {
		return openTemp(t)
	})
}

// openTemp opens a store on a new file in t.TempDir(). The caller closes
// it (storetest.Run does).
func openTemp(t testing.TB) *Store {
	t.Helper()
	s, err := Open(context.Background(), filepath.Join(t.TempDir(), "gatehouse.db"))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s
}

// openFile opens a store on path and closes it when the test ends.
func openFile(t *testing.T, path string) *Store {
	t.Helper()
	s, err := Open(t.Context(), path)
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

var t0 = time.Date(2026, 3, 1, 9, 30, 0, 123_000_000, time.UTC)

func TestReopen(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "gatehouse.db")

	s := openFile(t, path)
	p := session.Profile{ID: "u1@AdobeID", Email: "jane@example.com", Name: "Jane Doe", FirstName: "Jane", LastName: "Doe"}
	res, err := s.SyncUser(ctx, p, []string{"b", "a"}, t0)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.AddMembership(ctx, p.ID, "admins", session.SourceLocal); err != nil {
		t.Fatal(err)
	}
	tok := &session.LoginToken{ID: "tok-1", UserID: p.ID, SecretHash: []byte{1, 2, 3}, CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}
	if err := s.CreateLoginToken(ctx, tok); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetOrCreateSetting(ctx, "k", []byte("first")); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	s = openFile(t, path)
	u, err := s.GetUser(ctx, p.ID)
	if err != nil {
		t.Fatalf("GetUser after reopen: %v", err)
	}
	want := *res.User
	want.Memberships = []session.Membership{
		{Group: "a", Source: session.SourceIMS},
		{Group: "admins", Source: session.SourceLocal},
		{Group: "b", Source: session.SourceIMS},
	}
	if fmt.Sprint(*u) != fmt.Sprint(want) {
		t.Errorf("GetUser after reopen = %+v, want %+v", *u, want)
	}
	got, _, err := s.GetLoginTokenWithUser(ctx, tok.ID)
	if err != nil {
		t.Fatalf("GetLoginTokenWithUser after reopen: %v", err)
	}
	if fmt.Sprint(*got) != fmt.Sprint(*tok) {
		t.Errorf("GetLoginTokenWithUser after reopen = %+v, want %+v", *got, *tok)
	}
	if v, err := s.GetOrCreateSetting(ctx, "k", []byte("second")); err != nil || string(v) != "first" {
		t.Errorf("GetOrCreateSetting after reopen = %q, %v; want %q", v, err, "first")
	}
}

func TestMigrationsIdempotent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gatehouse.db")
	for range 3 {
		s := openFile(t, path)
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	versions := appliedVersions(t, path)
	want := make([]int, len(migrations))
	for i := range want {
		want[i] = i + 1
	}
	if !slices.Equal(versions, want) {
		t.Errorf("schema_migrations versions = %v, want %v", versions, want)
	}
}

// TestMigrationDropsTokenUserIndex upgrades a version-2 database (with
// its index on login_tokens.user_id and a token stored): the index goes,
// the token stays, and deleting a user by hand still deletes its tokens.
func TestMigrationDropsTokenUserIndex(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "gatehouse.db")
	s := openFile(t, path)
	if _, err := s.SyncUser(ctx, session.Profile{ID: "u1"}, nil, t0); err != nil {
		t.Fatal(err)
	}
	tok := &session.LoginToken{ID: "tok-v2", UserID: "u1", SecretHash: []byte{1}, CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}
	if err := s.CreateLoginToken(ctx, tok); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// Back to version 2 as it was released.
	db := rawDB(t, path)
	for _, q := range append(undoMigration4,
		`CREATE INDEX login_tokens_user_id ON login_tokens (user_id)`,
		`DELETE FROM schema_migrations WHERE version > 2`,
	) {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	indexes := func() []string {
		return column[string](t, db, `SELECT name FROM sqlite_schema WHERE type = 'index' AND tbl_name = 'login_tokens' AND sql IS NOT NULL ORDER BY name`)
	}
	if got := indexes(); !slices.Contains(got, "login_tokens_user_id") {
		t.Fatalf("set-up: indexes %v", got)
	}

	s = openFile(t, path)
	defer s.Close()
	if got := indexes(); !slices.Equal(got, []string{"login_tokens_expires_at"}) {
		t.Errorf("login_tokens indexes after migrating = %v, want only login_tokens_expires_at", got)
	}
	if v := appliedVersions(t, path); len(v) != len(migrations) {
		t.Errorf("schema_migrations versions = %v, want %d of them", v, len(migrations))
	}
	if got, _, err := s.GetLoginTokenWithUser(ctx, tok.ID); err != nil || got.UserID != "u1" {
		t.Fatalf("token after migrating = %+v, %v", got, err)
	}
	if _, err := s.write.ExecContext(ctx, `DELETE FROM users WHERE id = 'u1'`); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.GetLoginTokenWithUser(ctx, tok.ID); !errors.Is(err, session.ErrNotFound) {
		t.Errorf("token of a user deleted by hand: err = %v, want ErrNotFound (ON DELETE CASCADE)", err)
	}
}

// TestConcurrentOpen opens one new file from several stores at once, as
// replicas starting together would: each migration is applied once.
func TestConcurrentOpen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gatehouse.db")
	const n = 4
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			s, err := Open(t.Context(), path)
			if err == nil {
				err = s.Close()
			}
			errs[i] = err
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	if v := appliedVersions(t, path); len(v) != len(migrations) {
		t.Errorf("schema_migrations versions = %v, want %d of them", v, len(migrations))
	}
}

func TestNewerSchemaRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gatehouse.db")
	if err := openFile(t, path).Close(); err != nil {
		t.Fatal(err)
	}
	future := len(migrations) + 1
	db := rawDB(t, path)
	if _, err := db.Exec(`INSERT INTO schema_migrations (version, applied_at) VALUES (?, 0)`, future); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	s, err := Open(t.Context(), path)
	if err == nil {
		_ = s.Close()
		t.Fatal("Open of a database with a newer schema succeeded")
	}
	want := fmt.Sprintf("database schema version %d is newer than this gatehouse (%d); upgrade gatehouse", future, len(migrations))
	if !strings.Contains(err.Error(), want) {
		t.Errorf("Open error = %q, want it to contain %q", err, want)
	}
	if !strings.Contains(err.Error(), path) {
		t.Errorf("Open error = %q, want it to name %s", err, path)
	}
}

func TestOpenMissingDirectory(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "missing")
	path := filepath.Join(dir, "gatehouse.db")
	s, err := Open(t.Context(), path)
	if err == nil {
		_ = s.Close()
		t.Fatal("Open in a missing directory succeeded")
	}
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Open error = %v, want one wrapping fs.ErrNotExist", err)
	}
	for _, name := range []string{path, dir} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("Open error = %q, want it to name %s", err, name)
		}
	}
	if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Open created the directory: stat: %v", err)
	}
}

func TestOpenParentIsAFile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := Open(t.Context(), filepath.Join(file, "gatehouse.db"))
	if err == nil {
		_ = s.Close()
		t.Fatal("Open under a regular file succeeded")
	}
	if !strings.Contains(err.Error(), "not a directory") {
		t.Errorf("Open error = %q, want it to say not a directory", err)
	}
}

// TestOpenUnusualPath checks that characters that mean something in a URI
// reach the file system as they are.
func TestOpenUnusualPath(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a?b#c%20d e")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "gate?house.db")
	s := openFile(t, path)
	if _, err := s.SyncUser(t.Context(), session.Profile{ID: "u1"}, nil, t0); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Errorf("database file not at %q: %v", path, err)
	}
}

// TestPragmas checks the settings every connection of both pools gets.
func TestPragmas(t *testing.T) {
	s := openTemp(t)
	t.Cleanup(func() { _ = s.Close() })

	want := map[string]string{
		"journal_mode": "wal",
		"busy_timeout": "5000",
		"foreign_keys": "1",
		"synchronous":  "1", // NORMAL
	}
	for pool, db := range map[string]*sql.DB{"write": s.write, "read": s.read} {
		for pragma, w := range want {
			var got string
			if err := db.QueryRowContext(t.Context(), "PRAGMA "+pragma).Scan(&got); err != nil {
				t.Fatalf("%s pool: PRAGMA %s: %v", pool, pragma, err)
			}
			if got != w {
				t.Errorf("%s pool: PRAGMA %s = %s, want %s", pool, pragma, got, w)
			}
		}
	}
	var qo int
	if err := s.read.QueryRowContext(t.Context(), "PRAGMA query_only").Scan(&qo); err != nil || qo != 1 {
		t.Errorf("read pool: PRAGMA query_only = %d, %v; want 1", qo, err)
	}
	if _, err := s.read.ExecContext(t.Context(), `INSERT INTO settings (key, value) VALUES ('x', x'00')`); err == nil {
		t.Error("read pool accepted a write")
	}
}

// TestWALPersists checks that the file itself is in WAL mode, as any
// other process opening it would find.
func TestWALPersists(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gatehouse.db")
	if err := openFile(t, path).Close(); err != nil {
		t.Fatal(err)
	}
	var mode string
	if err := rawDB(t, path).QueryRow("PRAGMA journal_mode").Scan(&mode); err != nil {
		t.Fatal(err)
	}
	if mode != "wal" {
		t.Errorf("journal_mode of the file = %q, want wal", mode)
	}
}

// TestCascade checks that a user's memberships and login tokens go with
// the user (no Store method deletes users yet; operators may).
func TestCascade(t *testing.T) {
	ctx := t.Context()
	s := openTemp(t)
	t.Cleanup(func() { _ = s.Close() })
	if _, err := s.SyncUser(ctx, session.Profile{ID: "u1"}, []string{"a", "b"}, t0); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateLoginToken(ctx, &session.LoginToken{ID: "t1", UserID: "u1", SecretHash: []byte{1}, ExpiresAt: t0}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.write.ExecContext(ctx, `DELETE FROM users WHERE id = 'u1'`); err != nil {
		t.Fatal(err)
	}
	for table, want := range map[string]int{"memberships": 0, "login_tokens": 0} {
		var n int
		if err := s.read.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+table).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != want {
			t.Errorf("%s has %d rows after the user was deleted, want %d", table, n, want)
		}
	}
}

// TestErrorKinds checks what the conformance suite leaves open: rejected
// input is errInvalid, and a token for an unknown user is ErrNotFound.
func TestErrorKinds(t *testing.T) {
	ctx := t.Context()
	s := openTemp(t)
	t.Cleanup(func() { _ = s.Close() })
	if _, err := s.SyncUser(ctx, session.Profile{ID: "u1"}, nil, t0); err != nil {
		t.Fatal(err)
	}
	many := make([]string, input.MaxGroups+1)
	for i := range many {
		many[i] = fmt.Sprint(i)
	}
	invalid := map[string]error{
		"long id":      second(s.SyncUser(ctx, session.Profile{ID: strings.Repeat("i", input.MaxIDLen+1)}, nil, t0)),
		"long group":   second(s.SyncUser(ctx, session.Profile{ID: "u1"}, []string{strings.Repeat("g", input.MaxGroupLen+1)}, t0)),
		"many groups":  second(s.SyncUser(ctx, session.Profile{ID: "u1"}, many, t0)),
		"empty group":  s.AddMembership(ctx, "u1", "", session.SourceLocal),
		"empty hash":   s.CreateLoginToken(ctx, &session.LoginToken{ID: "t", UserID: "u1"}),
		"nil token":    s.CreateLoginToken(ctx, nil),
		"empty key":    second(s.GetOrCreateSetting(ctx, "", nil)),
		"empty tok id": s.CreateLoginToken(ctx, &session.LoginToken{UserID: "u1", SecretHash: []byte{1}}),
	}
	for name, err := range invalid {
		if !errors.Is(err, errInvalid) {
			t.Errorf("%s: error = %v, want errInvalid", name, err)
		}
	}
	err := s.CreateLoginToken(ctx, &session.LoginToken{ID: "t", UserID: "nobody", SecretHash: []byte{1}})
	if !errors.Is(err, session.ErrNotFound) {
		t.Errorf("CreateLoginToken for an unknown user: error = %v, want ErrNotFound", err)
	}
	if err := s.AddMembership(ctx, strings.Repeat("u", 300), "g", session.SourceLocal); !errors.Is(err, session.ErrNotFound) {
		t.Errorf("AddMembership for an over-long user id: error = %v, want ErrNotFound", err)
	}
}

func second[T any](_ T, err error) error { return err }

// TestTwoStoresOneFile syncs one user through two stores on the same file
// at once, as two processes would: SQLite's locking (BEGIN IMMEDIATE with
// busy_timeout) must serialize them without SQLITE_BUSY.
func TestTwoStoresOneFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gatehouse.db")
	stores := []*Store{openFile(t, path), openFile(t, path)}
	const n = 8
	var wg sync.WaitGroup
	start := make(chan struct{})
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			<-start
			_, errs[i] = stores[i%2].SyncUser(t.Context(), session.Profile{ID: "u1"},
				[]string{"common", fmt.Sprint(i)}, t0.Add(time.Duration(i)*time.Millisecond))
		})
	}
	close(start)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	u, err := stores[0].GetUser(t.Context(), "u1")
	if err != nil {
		t.Fatal(err)
	}
	last := int(u.SyncedAt.Sub(t0) / time.Millisecond)
	want := []string{"common", fmt.Sprint(last)}
	slices.Sort(want)
	if got := u.Groups(); !slices.Equal(got, want) {
		t.Errorf("groups = %q, want %q (from the last sync)", got, want)
	}
}

// TestSwapSettingTwoStoresOneFile swaps one setting through two stores on
// the same file at once, as `gatehouse keys rotate` and a replica would:
// exactly one swap from a given value wins.
func TestSwapSettingTwoStoresOneFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gatehouse.db")
	stores := []*Store{openFile(t, path), openFile(t, path)}
	if _, err := stores[0].GetOrCreateSetting(t.Context(), "k", []byte("v0")); err != nil {
		t.Fatal(err)
	}
	const n = 8
	var wg sync.WaitGroup
	start := make(chan struct{})
	won := make([]bool, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			<-start
			won[i], errs[i] = stores[i%2].CompareAndSwapSetting(t.Context(), "k", []byte("v0"), fmt.Appendf(nil, "v1/%d", i))
		})
	}
	close(start)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	if w := slices.Index(won, true); w < 0 || slices.Index(won[w+1:], true) >= 0 {
		t.Fatalf("swaps won: %v; want exactly one", won)
	} else if v, err := stores[1].GetSetting(t.Context(), "k"); err != nil || string(v) != fmt.Sprintf("v1/%d", w) {
		t.Errorf("value %q, %v; want the winner's v1/%d", v, err, w)
	}
}

// appliedVersions lists schema_migrations of the database at path.
func appliedVersions(t *testing.T, path string) []int {
	t.Helper()
	return column[int](t, rawDB(t, path), `SELECT version FROM schema_migrations ORDER BY version`)
}

// column returns the one column of query's rows.
func column[T any](t *testing.T, db *sql.DB, query string) []T {
	t.Helper()
	rows, err := db.Query(query)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		var v T
		if err := rows.Scan(&v); err != nil {
			t.Fatal(err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// rawDB opens the file without the Store and without its pragmas, closed
// when the test ends.
func rawDB(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", path+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

func BenchmarkGetLoginTokenWithUser(b *testing.B) {
	ctx := context.Background()
	s := benchStore(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := s.GetLoginTokenWithUser(ctx, "tok-1"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkGetUser(b *testing.B) {
	ctx := context.Background()
	s := benchStore(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.GetUser(ctx, "u1@AdobeID"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkGetUserParallel(b *testing.B) {
	s := benchStore(b)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := s.GetUser(context.Background(), "u1@AdobeID"); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func BenchmarkSyncUserUnchanged(b *testing.B) {
	ctx := context.Background()
	s := benchStore(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.SyncUser(ctx, benchProfile, benchGroups, t0); err != nil {
			b.Fatal(err)
		}
	}
}

var (
	benchProfile = session.Profile{ID: "u1@AdobeID", Email: "jane@example.com", Name: "Jane Doe", FirstName: "Jane", LastName: "Doe"}
	benchGroups  = func() []string {
		var g []string
		for i := range 20 {
			g = append(g, fmt.Sprintf("group-%02d", i))
		}
		return g
	}()
)

// benchStore returns a store holding one user with 20 IMS groups and one
// login token, "tok-1".
func benchStore(b *testing.B) *Store {
	b.Helper()
	ctx := context.Background()
	s := openTemp(b)
	b.Cleanup(func() { _ = s.Close() })
	if _, err := s.SyncUser(ctx, benchProfile, benchGroups, t0); err != nil {
		b.Fatal(err)
	}
	tok := &session.LoginToken{ID: "tok-1", UserID: benchProfile.ID, SecretHash: make([]byte, 32), CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}
	if err := s.CreateLoginToken(ctx, tok); err != nil {
		b.Fatal(err)
	}
	return s
}

// benchUsers adds users u0@AdobeID … u<n-1>@AdobeID, three groups each.
func benchUsers(b *testing.B, s *Store, n int) {
	b.Helper()
	for i := range n {
		p := benchProfile
		p.ID = fmt.Sprintf("u%d@AdobeID", i)
		if _, err := s.SyncUser(context.Background(), p, benchGroups[:3], t0); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCreateLoginToken(b *testing.B) {
	ctx := context.Background()
	s := benchStore(b)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		tok := &session.LoginToken{ID: fmt.Sprintf("bench-%d", i), UserID: benchProfile.ID, SecretHash: make([]byte, 32), CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}
		if err := s.CreateLoginToken(ctx, tok); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkExtendLoginToken(b *testing.B) {
	ctx := context.Background()
	s := benchStore(b)
	b.ReportAllocs()
	for b.Loop() {
		if err := s.ExtendLoginToken(ctx, "tok-1", t0.Add(2*time.Hour)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCreateLoginTokenParallel is the sign-in burst: 64 goroutines
// writing login tokens at once, as concurrent first-seen bearers do, into
// a store already holding 100,000 tokens of 1,000 users, with the ids the
// session manager makes.
func BenchmarkCreateLoginTokenParallel(b *testing.B) {
	ctx := context.Background()
	s := benchStore(b)
	const users, stored = 1000, 100_000
	benchUsers(b, s, users)
	var n atomic.Int64
	create := func() error {
		i := n.Add(1)
		now := time.Now()
		id, err := session.NewLoginTokenID(now)
		if err != nil {
			return err
		}
		return s.CreateLoginToken(ctx, &session.LoginToken{ID: id, UserID: fmt.Sprintf("u%d@AdobeID", i%users),
			SecretHash: make([]byte, 32), CreatedAt: now, ExpiresAt: now.Add(12 * time.Hour)})
	}
	var g errgroup.Group
	for range 64 {
		g.Go(func() error {
			for range stored / 64 {
				if err := create(); err != nil {
					return err
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.SetParallelism(32) // x GOMAXPROCS goroutines
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := create(); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// TestTokenBatchOutcomesArePerRow: login tokens written in one group
// commit each get their own outcome. A token for an unknown user, or with
// an id already taken, fails alone; the others of its batch are stored.
func TestTokenBatchOutcomesArePerRow(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t)
	t.Cleanup(func() { _ = s.Close() })
	if _, err := s.SyncUser(ctx, session.Profile{ID: "u1"}, nil, t0); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateLoginToken(ctx, &session.LoginToken{ID: "taken", UserID: "u1", SecretHash: []byte{1}, CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	const n = 300 // more than one batch
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tok := &session.LoginToken{ID: fmt.Sprintf("t%d", i), UserID: "u1", SecretHash: []byte{1}, CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}
			switch i % 10 {
			case 3:
				tok.UserID = "nobody"
			case 7:
				tok.ID = "taken"
			}
			errs[i] = s.CreateLoginToken(ctx, tok)
		}()
	}
	wg.Wait()
	stored := int64(1)
	for i, err := range errs {
		switch i % 10 {
		case 3:
			if !errors.Is(err, session.ErrNotFound) {
				t.Errorf("token %d for an unknown user: %v, want ErrNotFound", i, err)
			}
		case 7:
			if err == nil || errors.Is(err, session.ErrNotFound) {
				t.Errorf("token %d with a taken id: %v, want an id conflict", i, err)
			}
		default:
			if err != nil {
				t.Errorf("token %d: %v", i, err)
			}
			stored++
		}
	}
	if got, _ := s.CountLoginTokens(ctx); got != stored {
		t.Errorf("%d tokens stored, want %d", got, stored)
	}
}

// TestTokenBatchWrittenWhole: tokens written together by the multi-row
// INSERT each come back with their own fields, and a lone token (its own
// single-row transaction) too.
func TestTokenBatchWrittenWhole(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t)
	t.Cleanup(func() { _ = s.Close() })
	for _, u := range []string{"u0", "u1", "u2"} {
		if _, err := s.SyncUser(ctx, session.Profile{ID: u}, nil, t0); err != nil {
			t.Fatal(err)
		}
	}
	tok := func(i int) *session.LoginToken {
		return &session.LoginToken{ID: fmt.Sprintf("w%d", i), UserID: fmt.Sprintf("u%d", i%3), SecretHash: []byte{byte(i), byte(i >> 8), 7},
			CreatedAt: t0.Add(time.Duration(i) * time.Millisecond), ExpiresAt: t0.Add(time.Hour + time.Duration(i)*time.Second)}
	}
	const n = 300
	if err := s.CreateLoginToken(ctx, tok(n)); err != nil {
		t.Fatal(err)
	}
	var g errgroup.Group
	for i := range n {
		g.Go(func() error { return s.CreateLoginToken(ctx, tok(i)) })
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	if len(s.tokens.multi) == 0 {
		t.Error("300 concurrent tokens were never written by a multi-row INSERT")
	}
	for i := range n + 1 {
		want := tok(i)
		got, _, err := s.GetLoginTokenWithUser(ctx, want.ID)
		if err != nil {
			t.Fatalf("token %d: %v", i, err)
		}
		if got.UserID != want.UserID || !bytes.Equal(got.SecretHash, want.SecretHash) ||
			!got.CreatedAt.Equal(want.CreatedAt) || !got.ExpiresAt.Equal(want.ExpiresAt) {
			t.Errorf("token %d = %+v, want %+v", i, got, want)
		}
	}
}

// TestCloseWithTokenWritesInFlight: Close waits for queued login tokens
// and later writes are refused; nobody hangs.
func TestCloseWithTokenWritesInFlight(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "gatehouse.db")
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.SyncUser(ctx, session.Profile{ID: "u1"}, nil, t0); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var ok, refused atomic.Int64
	for i := range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := s.CreateLoginToken(ctx, &session.LoginToken{ID: fmt.Sprintf("c%d", i), UserID: "u1", SecretHash: []byte{1}, CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)})
			switch {
			case err == nil:
				ok.Add(1)
			case errors.Is(err, tokenbatch.ErrClosed):
				refused.Add(1)
			default:
				t.Errorf("token %d: %v", i, err)
			}
		}()
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("CreateLoginToken calls still waiting 10 s after Close")
	}
	if ok.Load()+refused.Load() != 200 {
		t.Errorf("%d stored + %d refused, want 200 in all", ok.Load(), refused.Load())
	}
	s2 := openFile(t, path)
	if n, _ := s2.CountLoginTokens(ctx); n != ok.Load() {
		t.Errorf("%d tokens on disk after Close, want the %d that were acknowledged", n, ok.Load())
	}
}

// undoMigration4 takes a database back to the schema of version 3.
var undoMigration4 = []string{
	`DROP TRIGGER login_tokens_user_enabled`,
	`ALTER TABLE users DROP COLUMN disabled`,
	`DELETE FROM schema_migrations WHERE version > 3`,
}

// TestMigrationAddsDisabled upgrades a version-3 database with a user and
// a token: the user is not disabled, the token stays, and the new trigger
// refuses a token once the user is disabled.
func TestMigrationAddsDisabled(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "gatehouse.db")
	s := openFile(t, path)
	if _, err := s.SyncUser(ctx, session.Profile{ID: "u1"}, []string{"g"}, t0); err != nil {
		t.Fatal(err)
	}
	tok := &session.LoginToken{ID: "tok-v3", UserID: "u1", SecretHash: []byte{1}, CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}
	if err := s.CreateLoginToken(ctx, tok); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	db := rawDB(t, path)
	for _, q := range undoMigration4 {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}

	s = openFile(t, path)
	defer s.Close()
	if v := appliedVersions(t, path); len(v) != len(migrations) {
		t.Errorf("schema_migrations versions = %v, want %d of them", v, len(migrations))
	}
	u, err := s.GetUser(ctx, "u1")
	if err != nil || u.Disabled || len(u.Memberships) != 1 {
		t.Fatalf("user after migrating = %+v, %v; want it enabled, with its group", u, err)
	}
	if _, _, err := s.GetLoginTokenWithUser(ctx, tok.ID); err != nil {
		t.Fatalf("token after migrating: %v", err)
	}
	if _, err := s.SetUserDisabled(ctx, "u1", true); err != nil {
		t.Fatal(err)
	}
	late := &session.LoginToken{ID: "tok-late", UserID: "u1", SecretHash: []byte{1}, CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}
	if err := s.CreateLoginToken(ctx, late); !errors.Is(err, session.ErrUserDisabled) {
		t.Errorf("CreateLoginToken for the disabled user: %v, want ErrUserDisabled", err)
	}
}

// TestTokenOfDisabledUser: a token that escaped the revocation (the flag
// set behind the store's back, as a restored backup could) is read with
// its user's Disabled flag, which the manager's cold path refuses on.
func TestTokenOfDisabledUser(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "gatehouse.db")
	s := openFile(t, path)
	if _, err := s.SyncUser(ctx, session.Profile{ID: "u1"}, nil, t0); err != nil {
		t.Fatal(err)
	}
	tok := &session.LoginToken{ID: "tok-1", UserID: "u1", SecretHash: []byte{1}, CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}
	if err := s.CreateLoginToken(ctx, tok); err != nil {
		t.Fatal(err)
	}
	for _, disabled := range []bool{true, false} {
		if _, err := rawDB(t, path).Exec(`UPDATE users SET disabled = ? WHERE id = 'u1'`, disabled); err != nil {
			t.Fatal(err)
		}
		_, u, err := s.GetLoginTokenWithUser(ctx, tok.ID)
		if err != nil {
			t.Fatal(err)
		}
		if u.Disabled != disabled {
			t.Errorf("flag set to %t: GetLoginTokenWithUser's user has Disabled = %t", disabled, u.Disabled)
		}
	}
}

// BenchmarkTokenWriterBatch is the batch writer's own cost per login token,
// by batch size, on an on-disk store already holding 100,000 tokens of
// 1,000 users: the writer goroutine's work of a first-seen bearer, without
// the callers' (a batch of 1 is a lone sign-in's own transaction).
func BenchmarkTokenWriterBatch(b *testing.B) {
	for _, size := range []int{1, 8, 64} {
		b.Run(fmt.Sprintf("rows=%d", size), func(b *testing.B) {
			ctx := context.Background()
			s := benchStore(b)
			const users, stored = 1000, 100_000
			benchUsers(b, s, users)
			n := 0
			batch := func() []*tokenbatch.Req {
				reqs := make([]*tokenbatch.Req, size)
				for i := range reqs {
					n++
					now := t0.Add(time.Duration(n) * time.Millisecond)
					id, err := session.NewLoginTokenID(now)
					if err != nil {
						b.Fatal(err)
					}
					reqs[i] = tokenbatch.NewReq(ctx, &session.LoginToken{ID: id, UserID: fmt.Sprintf("u%d@AdobeID", n%users),
						SecretHash: make([]byte, 32), CreatedAt: now, ExpiresAt: now.Add(12 * time.Hour)})
				}
				return reqs
			}
			write := func(reqs []*tokenbatch.Req) {
				s.tokens.write(reqs)
				for _, r := range reqs {
					if err := r.Wait(); err != nil {
						b.Fatal(err)
					}
				}
			}
			for range stored / 64 {
				write(batch())
			}
			rounds := max(1, b.N/size) // b.N tokens: ns/op and allocs/op are per token
			batches := make([][]*tokenbatch.Req, rounds)
			for i := range batches {
				batches[i] = batch()
			}
			b.ReportAllocs()
			b.ResetTimer()
			for _, reqs := range batches {
				write(reqs)
			}
		})
	}
}
