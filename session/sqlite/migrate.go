package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// migrations are the schema's steps, in order: migrations[i] takes the
// schema from version i to version i+1. Append new steps; never edit or
// reorder released ones. Times are INTEGER Unix milliseconds and the SQL
// stays close to what PostgreSQL accepts.
var migrations = []string{
	// 1: users, memberships, login tokens, settings.
	`
CREATE TABLE users (
	id         TEXT    NOT NULL PRIMARY KEY,
	email      TEXT    NOT NULL,
	name       TEXT    NOT NULL,
	first_name TEXT    NOT NULL,
	last_name  TEXT    NOT NULL,
	created_at INTEGER NOT NULL,
	updated_at INTEGER NOT NULL,
	synced_at  INTEGER NOT NULL
) STRICT;

CREATE TABLE memberships (
	user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	group_name TEXT NOT NULL,
	source     TEXT NOT NULL,
	PRIMARY KEY (user_id, group_name, source)
) STRICT, WITHOUT ROWID;

CREATE TABLE login_tokens (
	id          TEXT    NOT NULL PRIMARY KEY,
	user_id     TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	secret_hash BLOB    NOT NULL,
	created_at  INTEGER NOT NULL,
	expires_at  INTEGER NOT NULL
) STRICT;

CREATE INDEX login_tokens_expires_at ON login_tokens (expires_at);
CREATE INDEX login_tokens_user_id ON login_tokens (user_id);

CREATE TABLE settings (
	key   TEXT NOT NULL PRIMARY KEY,
	value BLOB NOT NULL
) STRICT;
`,
	// 2: the IMS organizations each user belongs to, for the API check of
	// x-gw-ims-org-id.
	`
CREATE TABLE user_orgs (
	user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	org_id  TEXT NOT NULL,
	PRIMARY KEY (user_id, org_id)
) STRICT, WITHOUT ROWID;
`,
	// 3: no index on login_tokens.user_id. Nothing looks tokens up by user;
	// the index served only ON DELETE CASCADE, when a user row is deleted
	// by hand, and it cost every sign-in a write to a page of its own (one
	// per user): with 100,000 tokens of 200 users stored, a token insert
	// took 3x as long with it. A user deleted by hand now scans the
	// token table once.
	`
DROP INDEX IF EXISTS login_tokens_user_id;
`,
	// 4: users an administrator disabled. The trigger refuses a login
	// token for a disabled user inside the INSERT itself, so a sign-in
	// that read the user before `gatehouse users disable` committed
	// cannot leave a token behind it: the single writer runs the two one
	// after the other. It costs an insert one lookup of the user row,
	// which the foreign key reads anyway.
	`
ALTER TABLE users ADD COLUMN disabled INTEGER NOT NULL DEFAULT 0;

CREATE TRIGGER login_tokens_user_enabled BEFORE INSERT ON login_tokens
WHEN (SELECT disabled FROM users WHERE id = NEW.user_id) = 1
BEGIN
	SELECT RAISE(ABORT, 'user disabled');
END;
`,
}

// migrate brings the schema up to len(migrations), one transaction per
// step, and refuses a database whose schema is newer than that.
func migrate(ctx context.Context, db *sql.DB, now time.Time) error {
	if _, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
	version    INTEGER NOT NULL PRIMARY KEY,
	applied_at INTEGER NOT NULL
)`); err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	cur, err := schemaVersion(ctx, db)
	if err != nil {
		return err
	}
	if cur > len(migrations) {
		return fmt.Errorf("database schema version %d is newer than this gatehouse (%d); upgrade gatehouse", cur, len(migrations))
	}
	for v := cur + 1; v <= len(migrations); v++ {
		if err := applyMigration(ctx, db, v, now); err != nil {
			return fmt.Errorf("migrate schema to version %d: %w", v, err)
		}
	}
	return nil
}

// applyMigration applies step v in its own transaction, unless another
// process sharing the file applied it first.
func applyMigration(ctx context.Context, db *sql.DB, v int, now time.Time) error {
	tx, err := db.BeginTx(ctx, nil) // BEGIN IMMEDIATE: holds the write lock
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }()

	cur, err := schemaVersion(ctx, tx)
	if err != nil {
		return err
	}
	if cur >= v {
		return nil
	}
	if _, err := tx.ExecContext(ctx, migrations[v-1]); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx,
		`INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)`, v, millis(now)); err != nil {
		return err
	}
	return tx.Commit()
}

// schemaVersion returns the highest applied migration, 0 for none.
func schemaVersion(ctx context.Context, q querier) (int, error) {
	var v int
	if err := q.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&v); err != nil {
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	return v, nil
}
