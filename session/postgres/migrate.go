package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// migrations are the schema's steps, in order: migrations[i] takes the
// schema from version i to version i+1. Append new steps; never edit or
// reorder released ones. Text that is compared or sorted is COLLATE "C",
// so that the store sorts and compares bytewise, as the session.Store
// contract asks, whatever the database's default collation.
var migrations = []string{
	// 1: users, memberships, organizations, login tokens, settings: what
	// session/sqlite's three first steps leave.
	`
CREATE TABLE users (
	id         text COLLATE "C" NOT NULL PRIMARY KEY,
	email      text        NOT NULL,
	name       text        NOT NULL,
	first_name text        NOT NULL,
	last_name  text        NOT NULL,
	created_at timestamptz NOT NULL,
	updated_at timestamptz NOT NULL,
	synced_at  timestamptz NOT NULL
);
CREATE TABLE memberships (
	user_id    text COLLATE "C" NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	group_name text COLLATE "C" NOT NULL,
	source     text COLLATE "C" NOT NULL,
	PRIMARY KEY (user_id, group_name, source)
);
CREATE TABLE user_orgs (
	user_id text COLLATE "C" NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	org_id  text COLLATE "C" NOT NULL,
	PRIMARY KEY (user_id, org_id)
);
CREATE TABLE login_tokens (
	id          text COLLATE "C" NOT NULL PRIMARY KEY,
	user_id     text COLLATE "C" NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	secret_hash bytea       NOT NULL,
	created_at  timestamptz NOT NULL,
	expires_at  timestamptz NOT NULL
);
CREATE INDEX login_tokens_expires_at ON login_tokens (expires_at);
-- Unlike SQLite's, this store keeps the index on user_id: a deleted
-- user's tokens go by cascade, and operators look a user's tokens up.
CREATE INDEX login_tokens_user_id ON login_tokens (user_id);
CREATE TABLE settings (
	key   text COLLATE "C" NOT NULL PRIMARY KEY,
	value bytea NOT NULL
);
`,
	// 2: users an administrator disabled (session/sqlite's migration 4).
	// No trigger, unlike SQLite's: CreateLoginToken locks the user's row
	// and checks the flag in its one statement. The index serves
	// FindUsersByEmail, whose comparison folds ASCII letters only; the
	// expression must stay the one asciiFold builds.
	`
ALTER TABLE users ADD COLUMN disabled boolean NOT NULL DEFAULT false;
CREATE INDEX users_email_ascii_fold ON users (` + asciiFold("email") + `);
`,
}

// migrate brings the schema up to len(migrations), one transaction per
// step, and refuses a database whose schema is newer than that. It holds
// an advisory lock, per schema, for the whole of it: replicas starting
// together wait for the first one, then find nothing left to do.
func migrate(ctx context.Context, pool *pgxpool.Pool, now time.Time) error {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	// A session-level lock: it goes when unlocked, or with the connection.
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock(hashtextextended('gatehouse.migrate.' || current_schema(), 0))`); err != nil {
		return fmt.Errorf("lock schema for migration: %w", err)
	}
	defer func() {
		// Unlock even if ctx is done; on failure, dropping the connection
		// releases the lock.
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if _, err := conn.Exec(uctx, `SELECT pg_advisory_unlock(hashtextextended('gatehouse.migrate.' || current_schema(), 0))`); err != nil {
			_ = conn.Conn().Close(uctx)
		}
	}()
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
	version    integer     NOT NULL PRIMARY KEY,
	applied_at timestamptz NOT NULL
)`); err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	var cur int
	if err := conn.QueryRow(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&cur); err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	if cur > len(migrations) {
		return fmt.Errorf("database schema version %d is newer than this gatehouse knows (%d); upgrade gatehouse", cur, len(migrations))
	}
	for v := cur + 1; v <= len(migrations); v++ {
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, migrations[v-1]); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)`, v, ms(now))
			return err
		})
		if err != nil {
			return fmt.Errorf("migrate schema to version %d: %w", v, err)
		}
	}
	return nil
}
