// Package postgres implements session.Store on PostgreSQL, with the
// jackc/pgx driver and its connection pool, so that several Gatehouse
// replicas share users, login tokens and cookie keys.
//
// The schema means what session/sqlite's does: the same tables, keys and
// cascades, with text compared and sorted bytewise (COLLATE "C") and times
// kept to the millisecond. Migrations are versioned and run under an
// advisory lock, so replicas that start together migrate once.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/gatehouse-proxy/gatehouse/session"
	"github.com/gatehouse-proxy/gatehouse/session/internal/input"
)

// defaultConnectTimeout bounds each connection attempt unless the URL's
// connect_timeout says otherwise.
const defaultConnectTimeout = 10 * time.Second

// opTimeout bounds each operation of the store, so that a server that
// accepts connections and answers nothing (hung, or cut off by the
// network without a reset) fails a request within seconds instead of
// holding it until the client gives up: Gatehouse answers 503 with
// Retry-After, and cached sessions keep working. A healthy server answers
// these small statements in milliseconds, even under load.
const opTimeout = 5 * time.Second

// purgeTimeout bounds DeleteExpiredLoginTokens, which nothing waits for
// and which may have many rows to delete.
const purgeTimeout = time.Minute

// bound is ctx limited to opTimeout.
func bound(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, opTimeout)
}

// Store is a session.Store on a PostgreSQL database. It is safe for
// concurrent use, also by several processes sharing the database.
type Store struct {
	pool      *pgxpool.Pool
	closeOnce sync.Once

	tokens      *tokenWriter  // group-commits CreateLoginToken
	channel     string        // the schema's notification channel (see channelFor)
	secrets     []string      // what errors must not show (see redacted)
	listenerPID atomic.Uint32 // WatchChanges's backend, 0 while none: for tests
}

var _ session.Store = (*Store)(nil)

// Open connects to the PostgreSQL database at rawURL (postgres:// or
// postgresql://), migrates its schema to the version this binary knows
// and returns the store. It refuses a database whose schema is newer.
// Tables live in the first schema of the URL's search_path parameter, if
// it has one. No error it returns contains the URL's password.
func Open(ctx context.Context, rawURL string) (*Store, error) {
	safe, secrets, err := redactURL(rawURL)
	if err != nil {
		return nil, fmt.Errorf("open session store: %w", err)
	}
	fail := func(err error) error {
		return redacted(fmt.Errorf("open session store %s: %w", safe, err), secrets)
	}
	cfg, err := pgxpool.ParseConfig(rawURL)
	if err != nil {
		return nil, fail(err)
	}
	if cfg.ConnConfig.ConnectTimeout == 0 {
		// A server that does not answer is an error, not a wait without
		// end (the URL's connect_timeout overrides this).
		cfg.ConnConfig.ConnectTimeout = defaultConnectTimeout
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fail(err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fail(err)
	}
	if err := migrate(ctx, pool, time.Now()); err != nil {
		pool.Close()
		return nil, fail(err)
	}
	var schema string
	if err := pool.QueryRow(ctx, `SELECT current_schema()`).Scan(&schema); err != nil {
		pool.Close()
		return nil, fail(fmt.Errorf("read the schema's name: %w", err))
	}
	return &Store{pool: pool, tokens: newTokenWriter(pool), channel: channelFor(schema), secrets: secrets}, nil
}

// redactURL checks that raw is a PostgreSQL URL and returns it with its
// password replaced, and the secrets to keep out of error messages.
func redactURL(raw string) (safe string, secrets []string, err error) {
	u, err := url.Parse(raw)
	if err != nil {
		// url's error quotes the input, password and all.
		return "", nil, errors.New("the URL does not parse; expected postgres://user:password@host:port/database")
	}
	if u.Scheme != "postgres" && u.Scheme != "postgresql" {
		return "", nil, fmt.Errorf("URL scheme %q: want postgres:// or postgresql://", u.Scheme)
	}
	if pw, ok := u.User.Password(); ok && pw != "" {
		// As written, and as each part of a URL escapes it.
		inUserInfo := strings.TrimPrefix(url.UserPassword("", pw).String(), ":")
		secrets = append(secrets, pw, inUserInfo, url.QueryEscape(pw), url.PathEscape(pw))
	}
	q := u.Query()
	if pw := q.Get("password"); pw != "" {
		secrets = append(secrets, pw, url.QueryEscape(pw))
		q.Set("password", "xxxxx")
		u.RawQuery = q.Encode()
	}
	return u.Redacted(), secrets, nil
}

// redactedError is an error whose message has secrets blanked out, for
// errors of lower layers that might quote a connection string.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

func redacted(err error, secrets []string) error {
	msg := err.Error()
	for _, s := range secrets {
		if s != "" {
			msg = strings.ReplaceAll(msg, s, "xxxxx")
		}
	}
	return &redactedError{msg: msg, err: err}
}

// Ping checks that the database can be reached.
func (s *Store) Ping(ctx context.Context) error {
	ctx, cancel := bound(ctx)
	defer cancel()
	if err := s.pool.Ping(ctx); err != nil {
		return fmt.Errorf("ping session store: %w", err)
	}
	return nil
}

// Close writes the login tokens already queued, then closes the pool's
// connections, waiting for those in use to be given back. Calling it
// again does nothing.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		if s.tokens != nil { // nil in a Store built by a test
			s.tokens.Close()
		}
		s.pool.Close()
	})
	return nil
}

// inTx runs fn in a transaction and commits it if fn returns nil.
func (s *Store) inTx(ctx context.Context, fn func(tx pgx.Tx) error) error {
	return pgx.BeginFunc(ctx, s.pool, fn)
}

// ms is how a time is stored: to the millisecond, as session/sqlite does,
// so that both stores give back the same instants.
func ms(t time.Time) time.Time { return time.UnixMilli(t.UnixMilli()).UTC() }

// storable reports whether s can be a PostgreSQL text value: UTF-8
// without NUL. A key that is not cannot have been stored, and a value
// that is not is refused as session.ErrInvalid, before anything is written.
func storable(s string) bool {
	return utf8.ValidString(s) && strings.IndexByte(s, 0) < 0
}

func checkText(what string, values ...string) error {
	for _, v := range values {
		if !storable(v) {
			return fmt.Errorf("%w: %s %q is not UTF-8 text without NUL", session.ErrInvalid, what, input.Clip(v))
		}
	}
	return nil
}

// isForeignKey reports whether err is a foreign-key violation.
func isForeignKey(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23503"
}
