package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/gatehouse-proxy/gatehouse/session"
	"github.com/gatehouse-proxy/gatehouse/session/internal/input"
)

// sqlCreateToken inserts a token if its user exists and is not disabled,
// and says which of these held, in one statement. FOR SHARE is what makes
// the check and the insert atomic with respect to SetUserDisabled: the
// foreign key's own lock (FOR KEY SHARE) does not conflict with an UPDATE
// of the flag, this one does. So a disabling that comes first makes this
// statement wait and then read the flag it wrote, and one that comes
// second waits for this insert to commit and then deletes the token.
const sqlCreateToken = `
WITH u AS (SELECT id, disabled FROM users WHERE id = $2 FOR SHARE),
ins AS (
	INSERT INTO login_tokens (id, user_id, secret_hash, created_at, expires_at)
	SELECT $1, u.id, $3, $4, $5 FROM u WHERE NOT u.disabled
	ON CONFLICT (id) DO NOTHING RETURNING 1
)
SELECT (SELECT disabled FROM u), (SELECT COUNT(*) FROM ins)`

// CreateLoginToken stores a new login token. It returns an error wrapping
// session.ErrNotFound if the user does not exist, one wrapping
// session.ErrUserDisabled if the user is disabled, and an error if a
// token with the same id exists, the id is empty or longer than 255
// bytes, or the secret hash is empty.
func (s *Store) CreateLoginToken(ctx context.Context, t *session.LoginToken) error {
	ctx, cancel := bound(ctx)
	defer cancel()
	if t == nil {
		return fmt.Errorf("create login token: %w: nil token", session.ErrInvalid)
	}
	if err := errors.Join(input.CheckID("token id", t.ID), checkText("token id", t.ID)); err != nil {
		return fmt.Errorf("create login token %s: %w", input.Clip(t.ID), err)
	}
	if len(t.SecretHash) == 0 {
		return fmt.Errorf("create login token %s: %w: empty secret hash", t.ID, session.ErrInvalid)
	}
	if input.CheckID("user id", t.UserID) != nil || !storable(t.UserID) {
		return fmt.Errorf("create login token %s: user %s: %w", t.ID, input.Clip(t.UserID), session.ErrNotFound)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("create login token %s: %w", t.ID, err)
	}
	return s.tokens.Create(ctx, t)
}

// insertToken writes one token by sqlCreateToken, its own transaction.
func insertToken(ctx context.Context, pool *pgxpool.Pool, t *session.LoginToken) error {
	var (
		disabled *bool // nil: no such user
		inserted int64
	)
	err := pool.QueryRow(ctx, sqlCreateToken, t.ID, t.UserID, t.SecretHash, ms(t.CreatedAt), ms(t.ExpiresAt)).
		Scan(&disabled, &inserted)
	switch {
	case isForeignKey(err):
		// The lock keeps the user from being deleted before the insert,
		// so the foreign key should not fire; if it does, it means this.
		return fmt.Errorf("create login token %s: user %s: %w", t.ID, t.UserID, session.ErrNotFound)
	case err != nil:
		return fmt.Errorf("create login token %s: %w", t.ID, err)
	}
	return tokenOutcome(t, disabled, inserted > 0)
}

// sqlGetTokenUser reads a token with its user in one statement: one round
// trip for a cold cookie. The join makes a token whose user is gone a
// plain no-rows.
const sqlGetTokenUser = `SELECT t.secret_hash, t.created_at, t.expires_at, ` + userColumns + `
FROM login_tokens t JOIN users u ON u.id = t.user_id WHERE t.id = $1`

// GetLoginTokenWithUser returns the token with the given id, expired or
// not, with its user, memberships and organizations, read by one
// statement; or an error wrapping session.ErrNotFound.
func (s *Store) GetLoginTokenWithUser(ctx context.Context, id string) (*session.LoginToken, *session.User, error) {
	ctx, cancel := bound(ctx)
	defer cancel()
	if input.CheckID("token id", id) != nil || !storable(id) {
		return nil, nil, fmt.Errorf("get login token %s: %w", input.Clip(id), session.ErrNotFound)
	}
	t := &session.LoginToken{ID: id}
	var us userScan
	err := s.pool.QueryRow(ctx, sqlGetTokenUser, id).
		Scan(append([]any{&t.SecretHash, &t.CreatedAt, &t.ExpiresAt}, us.dest()...)...)
	if errors.Is(err, pgx.ErrNoRows) {
		err = session.ErrNotFound
	}
	var u *session.User
	if err == nil {
		u, err = us.user()
	}
	if err != nil {
		return nil, nil, fmt.Errorf("get login token %s: %w", id, err)
	}
	t.UserID = u.ID
	t.CreatedAt, t.ExpiresAt = t.CreatedAt.UTC(), t.ExpiresAt.UTC()
	return t, u, nil
}

// ExtendLoginToken sets a token's expiry, or returns an error wrapping
// session.ErrNotFound if the token does not exist.
func (s *Store) ExtendLoginToken(ctx context.Context, id string, expiresAt time.Time) error {
	ctx, cancel := bound(ctx)
	defer cancel()
	if !storable(id) {
		return fmt.Errorf("extend login token %s: %w", input.Clip(id), session.ErrNotFound)
	}
	tag, err := s.pool.Exec(ctx, `UPDATE login_tokens SET expires_at = $2 WHERE id = $1`, id, ms(expiresAt))
	if err != nil {
		return fmt.Errorf("extend login token %s: %w", input.Clip(id), err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("extend login token %s: %w", input.Clip(id), session.ErrNotFound)
	}
	return nil
}

// DeleteLoginToken removes a token; removing a missing one is not an error.
func (s *Store) DeleteLoginToken(ctx context.Context, id string) error {
	ctx, cancel := bound(ctx)
	defer cancel()
	if !storable(id) {
		return nil // cannot have been stored
	}
	// One statement: the notification goes with the delete, and only if
	// there was a token.
	if _, err := s.pool.Exec(ctx, `
WITH d AS (DELETE FROM login_tokens WHERE id = $1 RETURNING id)
SELECT pg_notify($3, $2) FROM d`, id, payload(kindToken, id), s.channel); err != nil {
		return fmt.Errorf("delete login token %s: %w", input.Clip(id), err)
	}
	return nil
}

// purgeLock names the advisory lock DeleteExpiredLoginTokens takes, per
// schema (hashtextextended of this and the schema's name).
const purgeLock = "gatehouse.purge."

// DeleteExpiredLoginTokens removes every token whose expiry is at or
// before now, and returns how many it removed. One replica purges at a
// time: the statement takes a transaction-level advisory lock first, and
// a replica that does not get it skips this round (0, nil); the one
// purging will have removed what this one would have. Expired tokens are
// refused whether purged or not, so nobody is notified.
func (s *Store) DeleteExpiredLoginTokens(ctx context.Context, now time.Time) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, purgeTimeout)
	defer cancel()
	tag, err := s.pool.Exec(ctx, `
WITH l AS (SELECT pg_try_advisory_xact_lock(hashtextextended($2 || current_schema(), 0)) AS got)
DELETE FROM login_tokens WHERE expires_at <= $1 AND (SELECT got FROM l)`, ms(now), purgeLock)
	if err != nil {
		return 0, fmt.Errorf("delete expired login tokens: %w", err)
	}
	return tag.RowsAffected(), nil
}

// CountLoginTokens returns how many login tokens are stored. (Not part of
// session.Store: for tests and operators.)
func (s *Store) CountLoginTokens(ctx context.Context) (int64, error) {
	ctx, cancel := bound(ctx)
	defer cancel()
	var n int64
	if err := s.pool.QueryRow(ctx, `SELECT COUNT(*) FROM login_tokens`).Scan(&n); err != nil {
		return 0, fmt.Errorf("count login tokens: %w", err)
	}
	return n, nil
}

// GetOrCreateSetting returns the value stored under key, storing value
// first if there is none. A nil value is stored as an empty one. Of
// replicas racing to create the key, the first insert to commit wins and
// every one of them returns its value. It rejects an empty key or one
// longer than 255 bytes.
func (s *Store) GetOrCreateSetting(ctx context.Context, key string, value []byte) ([]byte, error) {
	ctx, cancel := bound(ctx)
	defer cancel()
	if err := errors.Join(input.CheckID("setting key", key), checkText("setting key", key)); err != nil {
		return nil, fmt.Errorf("get or create setting %s: %w", input.Clip(key), err)
	}
	if value == nil {
		value = []byte{}
	}
	// Two statements, not one: a statement's snapshot would not show a
	// row that a concurrent insert committed while this one waited on it.
	var got []byte
	err := s.pool.QueryRow(ctx,
		`INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING RETURNING value`, key, value).Scan(&got)
	if errors.Is(err, pgx.ErrNoRows) {
		err = s.pool.QueryRow(ctx, `SELECT value FROM settings WHERE key = $1`, key).Scan(&got)
	}
	if err != nil {
		return nil, fmt.Errorf("get or create setting %s: %w", key, err)
	}
	if got == nil {
		got = []byte{}
	}
	return got, nil
}
