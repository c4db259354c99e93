package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// The stores Gatehouse can be measured on (-store).
const (
	storeSQLite   = "sqlite"
	storePostgres = "postgres"
)

// parseStores reads -store: sqlite, postgres or both (SQLite first, so
// that a run with both measures the default store first, as a run without
// the flag does).
func parseStores(s string) ([]string, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case storeSQLite:
		return []string{storeSQLite}, nil
	case storePostgres:
		return []string{storePostgres}, nil
	case "both":
		return []string{storeSQLite, storePostgres}, nil
	}
	return nil, fmt.Errorf("-store %q: want sqlite, postgres or both", s)
}

// postgresURLEnv is the variable the tests read the server's URL from;
// the benchmark uses the same server by default.
const postgresURLEnv = "GATEHOUSE_TEST_POSTGRES_URL"

// defaultPostgresURL is the machine's own server, as the tests use it.
func defaultPostgresURL() string {
	if u := os.Getenv(postgresURLEnv); u != "" {
		return u
	}
	return "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
}

// pgSchema is a schema of the benchmark's own on a PostgreSQL server, so
// that a run starts empty and leaves nothing behind.
type pgSchema struct {
	base string // the server's URL as given
	name string
}

// newPGSchema creates an empty schema named gh_bench_<random>.
func newPGSchema(ctx context.Context, base string) (*pgSchema, error) {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		// Not quoted: the URL may hold a password.
		return nil, fmt.Errorf("-postgres-url: want postgres://user@host:port/database")
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		return nil, fmt.Errorf("connect to PostgreSQL at %s (set -postgres-url or %s): %w", u.Redacted(), postgresURLEnv, err)
	}
	defer conn.Close(context.Background())
	var b [6]byte
	_, _ = rand.Read(b[:])
	s := &pgSchema{base: base, name: "gh_bench_" + hex.EncodeToString(b[:])}
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+s.name); err != nil {
		return nil, fmt.Errorf("create schema %s: %w", s.name, err)
	}
	return s, nil
}

// url is the server's URL with a search_path selecting the schema.
func (s *pgSchema) url() string {
	u, _ := url.Parse(s.base) // parsed by newPGSchema
	q := u.Query()
	q.Set("search_path", s.name)
	u.RawQuery = q.Encode()
	return u.String()
}

// drop removes the schema and everything in it.
func (s *pgSchema) drop() {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, s.base)
	if err == nil {
		defer conn.Close(context.Background())
		_, err = conn.Exec(ctx, "DROP SCHEMA "+s.name+" CASCADE")
	}
	if err != nil {
		say("could not drop schema %s (drop it by hand): %v", s.name, err)
	}
}

// storeSetting returns GATEHOUSE_STORE for a fresh store of the kind, and
// what removes it after the run.
func (b *bench) storeSetting(ctx context.Context, store string) (string, func(), error) {
	if store == storeSQLite {
		path := filepath.Join(b.dir, fmt.Sprintf("gatehouse-%d.db", time.Now().UnixNano()))
		return "sqlite:" + path, func() {
			for _, suffix := range []string{"", "-wal", "-shm"} {
				_ = os.Remove(path + suffix)
			}
		}, nil
	}
	s, err := newPGSchema(ctx, b.o.postgresURL)
	if err != nil {
		return "", nil, err
	}
	return s.url(), s.drop, nil
}

// redactSetting hides a password in a GATEHOUSE_STORE=postgres://… line,
// for the report.
func redactSetting(kv string) string {
	k, v, _ := strings.Cut(kv, "=")
	if k != "GATEHOUSE_STORE" || !strings.HasPrefix(v, "postgres") {
		return kv
	}
	u, err := url.Parse(v)
	if err != nil {
		return k + "=postgres://(unparsable)"
	}
	q := u.Query()
	if q.Has("password") {
		q.Set("password", "xxxxx")
		u.RawQuery = q.Encode()
	}
	return k + "=" + u.Redacted()
}
