// Package sqlite implements session.Store on an embedded SQLite database,
// with the pure-Go driver modernc.org/sqlite (no cgo).
//
// A Store holds two connection pools on one database file: a single write
// connection, whose transactions begin IMMEDIATE, so writers queue in Go
// (honouring their contexts) and never race to upgrade a read lock; and a
// pool of read-only connections, which WAL mode lets run alongside the
// writer. Times are stored as INTEGER Unix milliseconds.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"modernc.org/sqlite" // the "sqlite" database/sql driver, and its errors
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/gatehouse-proxy/gatehouse/session"
	"github.com/gatehouse-proxy/gatehouse/session/internal/input"
)

// busyTimeout is how long a connection waits for a lock another process
// holds before failing with SQLITE_BUSY. Within one process writers queue
// for the single write connection instead.
const busyTimeout = 5 * time.Second

// errInvalid marks input rejected before anything was written.
var errInvalid = session.ErrInvalid

// Store is a session.Store backed by one SQLite database file. It is safe
// for concurrent use.
type Store struct {
	write *sql.DB // exactly one connection; transactions BEGIN IMMEDIATE
	read  *sql.DB // query_only connections

	// The hot statements, prepared once at Open so that SQLite does not
	// parse them again on every call (database/sql prepares a statement on
	// each pooled connection the first time it runs there).
	readUser     userStmts   // on read
	writeUser    userStmts   // on write, for SyncUser's reload
	getTokenUser *sql.Stmt   // on read
	createToken  *sql.Stmt   // on write
	extendToken  *sql.Stmt   // on write
	deleteToken  *sql.Stmt   // on write
	stmts        []*sql.Stmt // all of the above, closed by Close

	tokens *tokenWriter // group-commits CreateLoginToken; nil until Open succeeds

	closeOnce sync.Once
	closeErr  error
}

var _ session.Store = (*Store)(nil)

// Open opens the SQLite database at path, creating the file if it is
// missing (its directory must exist), and migrates its schema to the
// version this binary knows. It refuses a database whose schema is newer.
func Open(ctx context.Context, path string) (*Store, error) {
	if path == "" {
		return nil, errors.New("open session store: empty path")
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("open session store %s: %w", path, err)
	}
	dir := filepath.Dir(abs)
	fi, err := os.Stat(dir)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err // the path is named below; keep only the reason
		}
		return nil, fmt.Errorf("open session store %s: directory %s: %w", path, dir, err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("open session store %s: %s is not a directory", path, dir)
	}

	write, err := sql.Open("sqlite", dsn(abs, "_txlock=immediate"))
	if err != nil {
		return nil, fmt.Errorf("open session store %s: %w", path, err)
	}
	write.SetMaxOpenConns(1)
	write.SetMaxIdleConns(1)
	write.SetConnMaxLifetime(0)
	write.SetConnMaxIdleTime(0)

	if err := connect(ctx, write); err != nil {
		_ = write.Close()
		return nil, fmt.Errorf("open session store %s: %w", path, err)
	}
	if err := migrate(ctx, write, time.Now()); err != nil {
		_ = write.Close()
		return nil, fmt.Errorf("open session store %s: %w", path, err)
	}

	read, err := sql.Open("sqlite", dsn(abs, "_pragma=query_only(1)"))
	if err != nil {
		_ = write.Close()
		return nil, fmt.Errorf("open session store %s: %w", path, err)
	}
	n := max(4, runtime.GOMAXPROCS(0))
	read.SetMaxOpenConns(n)
	read.SetMaxIdleConns(n)

	s := &Store{write: write, read: read}
	if err := s.Ping(ctx); err != nil {
		_ = s.Close()
		return nil, fmt.Errorf("open session store %s: %w", path, err)
	}
	if err := s.prepare(ctx); err != nil {
		_ = s.Close()
		return nil, fmt.Errorf("open session store %s: prepare statements: %w", path, err)
	}
	s.tokens = newTokenWriter(s.write, s.createToken)
	return s, nil
}

// The statements of the hot paths, prepared once (see Store).
const (
	// One statement for the token and its user's profile: the join makes
	// "token of a user who is gone" a plain no-rows.
	sqlGetTokenUser = `SELECT t.user_id, t.secret_hash, t.created_at, t.expires_at,
	u.email, u.name, u.first_name, u.last_name, u.created_at, u.updated_at, u.synced_at, u.disabled
FROM login_tokens t JOIN users u ON u.id = t.user_id WHERE t.id = ?`
	// The foreign key on user_id checks that the user exists, in the same
	// statement (see CreateLoginToken).
	sqlCreateToken = `INSERT INTO login_tokens (id, user_id, secret_hash, created_at, expires_at) VALUES (?, ?, ?, ?, ?)
ON CONFLICT (id) DO NOTHING`
	// sqlCreateTokens is followed by one "(?, ?, ?, ?, ?)" per row. Without
	// a conflict clause, one bad row fails the whole statement.
	sqlCreateTokens   = `INSERT INTO login_tokens (id, user_id, secret_hash, created_at, expires_at) VALUES `
	sqlExtendToken    = `UPDATE login_tokens SET expires_at = ? WHERE id = ?`
	sqlDeleteToken    = `DELETE FROM login_tokens WHERE id = ?`
	sqlUserProfile    = `SELECT email, name, first_name, last_name, created_at, updated_at, synced_at, disabled FROM users WHERE id = ?`
	sqlUserMembership = `SELECT group_name, source FROM memberships WHERE user_id = ? ORDER BY group_name, source`
	sqlUserOrgs       = `SELECT org_id FROM user_orgs WHERE user_id = ? ORDER BY org_id`
)

// userStmts are getUser's three reads, prepared on one pool.
type userStmts struct {
	profile, memberships, orgs *sql.Stmt
}

// prepare prepares the hot statements. On error, those prepared so far
// are in s.stmts, for Close.
func (s *Store) prepare(ctx context.Context) error {
	var err error
	prep := func(db *sql.DB, query string) *sql.Stmt {
		if err != nil {
			return nil
		}
		var st *sql.Stmt
		if st, err = db.PrepareContext(ctx, query); err != nil {
			return nil
		}
		s.stmts = append(s.stmts, st)
		return st
	}
	s.getTokenUser = prep(s.read, sqlGetTokenUser)
	s.createToken = prep(s.write, sqlCreateToken)
	s.extendToken = prep(s.write, sqlExtendToken)
	s.deleteToken = prep(s.write, sqlDeleteToken)
	for _, u := range []struct {
		db *sql.DB
		us *userStmts
	}{{s.read, &s.readUser}, {s.write, &s.writeUser}} {
		u.us.profile = prep(u.db, sqlUserProfile)
		u.us.memberships = prep(u.db, sqlUserMembership)
		u.us.orgs = prep(u.db, sqlUserOrgs)
	}
	return err
}

// dsn returns the driver's name for the database file at the absolute
// path abs: a "file:" URI whose pragmas every pooled connection runs as
// it opens, followed by extra query parameters.
func dsn(abs string, extra ...string) string {
	params := []string{
		fmt.Sprintf("_pragma=busy_timeout(%d)", busyTimeout.Milliseconds()),
		"_pragma=foreign_keys(1)",
		"_pragma=journal_mode(WAL)",
		"_pragma=synchronous(NORMAL)",
	}
	params = append(params, extra...)
	// The path is percent-encoded, so a '?', '#' or '%' in it is not read
	// as the start of the query or as an escape.
	return "file:" + (&url.URL{Path: filepath.ToSlash(abs)}).EscapedPath() + "?" + strings.Join(params, "&")
}

// connect opens the write pool's one connection, which runs the pragmas.
// Switching a new database file to WAL mode fails with SQLITE_BUSY at
// once, without waiting busy_timeout, while another process is doing the
// same; connect retries that for up to busyTimeout. Once the file is in
// WAL mode, the pragma no longer needs a lock.
func connect(ctx context.Context, db *sql.DB) error {
	deadline := time.Now().Add(busyTimeout)
	for {
		err := db.PingContext(ctx)
		if err == nil || !isBusy(err) || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// isBusy reports whether err is SQLite's SQLITE_BUSY (any extended code).
func isBusy(err error) bool {
	var se *sqlite.Error
	return errors.As(err, &se) && se.Code()&0xff == sqlite3.SQLITE_BUSY
}

// isUserDisabled reports whether err is the refusal of the trigger that
// keeps login tokens from disabled users (migration 4).
func isUserDisabled(err error) bool {
	var se *sqlite.Error
	return errors.As(err, &se) && se.Code() == sqlite3.SQLITE_CONSTRAINT_TRIGGER &&
		strings.Contains(se.Error(), "user disabled")
}

// isForeignKey reports whether err is SQLite's foreign-key constraint
// violation.
func isForeignKey(err error) bool {
	var se *sqlite.Error
	return errors.As(err, &se) && se.Code() == sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY
}

// Ping checks that the database can be reached for reading and writing.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.write.PingContext(ctx); err != nil {
		return fmt.Errorf("ping session store: %w", err)
	}
	if err := s.read.PingContext(ctx); err != nil {
		return fmt.Errorf("ping session store: %w", err)
	}
	return nil
}

// Close closes the database. Calling it again returns the first result.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		if s.tokens != nil {
			s.tokens.close() // waits for the last batch to commit
		}
		// Readers first, so that the writer's connection is the last one
		// and SQLite checkpoints the WAL into the database file.
		errs := make([]error, 0, len(s.stmts)+2)
		for _, st := range s.stmts {
			errs = append(errs, st.Close())
		}
		s.closeErr = errors.Join(append(errs, s.read.Close(), s.write.Close())...)
	})
	return s.closeErr
}

// inWriteTx runs fn in a transaction on the write connection and commits
// it if fn returns nil. Inside fn, use only tx: the write pool has one
// connection, and tx holds it.
func (s *Store) inWriteTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}

// querier is what *sql.DB and *sql.Tx have in common for reading.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// millis is how a time is stored.
func millis(t time.Time) int64 { return t.UnixMilli() }

// fromMillis turns a stored time back into a UTC time.Time.
func fromMillis(ms int64) time.Time { return time.UnixMilli(ms).UTC() }

// The input checks every store makes (see package input).
var (
	checkID   = input.CheckID
	checkName = input.CheckName
	clip      = input.Clip
)
