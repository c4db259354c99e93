package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/gatehouse-proxy/gatehouse/session"
)

// CreateLoginToken stores a new login token. It returns an error wrapping
// session.ErrNotFound if the user does not exist, and an error if a token
// with the same id exists, the id is empty or longer than 255 bytes, or
// the secret hash is empty.
func (s *Store) CreateLoginToken(ctx context.Context, t *session.LoginToken) error {
	if t == nil {
		return fmt.Errorf("create login token: %w: nil token", errInvalid)
	}
	if err := checkID("token id", t.ID); err != nil {
		return fmt.Errorf("create login token: %w", err)
	}
	if len(t.SecretHash) == 0 {
		return fmt.Errorf("create login token %s: %w: empty secret hash", t.ID, errInvalid)
	}
	if checkID("user id", t.UserID) != nil {
		return fmt.Errorf("create login token %s: user %s: %w", t.ID, clip(t.UserID), session.ErrNotFound)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("create login token %s: %w", t.ID, err)
	}
	return s.tokens.Create(ctx, t)
}

// GetLoginTokenWithUser returns the token with the given id, expired or
// not, with its user, memberships and organizations, all read in one read
// transaction; or an error wrapping session.ErrNotFound.
func (s *Store) GetLoginTokenWithUser(ctx context.Context, id string) (*session.LoginToken, *session.User, error) {
	if checkID("token id", id) != nil {
		return nil, nil, fmt.Errorf("get login token %s: %w", clip(id), session.ErrNotFound)
	}
	tx, err := s.read.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, nil, fmt.Errorf("get login token %s: %w", id, err)
	}
	defer func() { _ = tx.Rollback() }()
	t := &session.LoginToken{ID: id}
	u := &session.User{}
	var created, expires, uCreated, uUpdated, uSynced int64
	err = tx.StmtContext(ctx, s.getTokenUser).QueryRowContext(ctx, id).
		Scan(&t.UserID, &t.SecretHash, &created, &expires,
			&u.Email, &u.Name, &u.FirstName, &u.LastName, &uCreated, &uUpdated, &uSynced, &u.Disabled)
	if errors.Is(err, sql.ErrNoRows) {
		err = session.ErrNotFound
	}
	if err == nil {
		u.ID = t.UserID
		u.CreatedAt, u.UpdatedAt, u.SyncedAt = fromMillis(uCreated), fromMillis(uUpdated), fromMillis(uSynced)
		err = readGroups(ctx, tx, &s.readUser, u)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("get login token %s: %w", id, err)
	}
	t.CreatedAt = fromMillis(created)
	t.ExpiresAt = fromMillis(expires)
	return t, u, nil
}

// ExtendLoginToken sets a token's expiry, or returns an error wrapping
// session.ErrNotFound if the token does not exist.
func (s *Store) ExtendLoginToken(ctx context.Context, id string, expiresAt time.Time) error {
	r, err := s.extendToken.ExecContext(ctx, millis(expiresAt), id)
	if err != nil {
		return fmt.Errorf("extend login token %s: %w", clip(id), err)
	}
	n, err := r.RowsAffected()
	if err != nil {
		return fmt.Errorf("extend login token %s: %w", clip(id), err)
	}
	if n == 0 {
		return fmt.Errorf("extend login token %s: %w", clip(id), session.ErrNotFound)
	}
	return nil
}

// DeleteLoginToken removes a token; removing a missing one is not an error.
func (s *Store) DeleteLoginToken(ctx context.Context, id string) error {
	if _, err := s.deleteToken.ExecContext(ctx, id); err != nil {
		return fmt.Errorf("delete login token %s: %w", clip(id), err)
	}
	return nil
}

// DeleteExpiredLoginTokens removes every token whose expiry is at or
// before now, and returns how many it removed.
func (s *Store) DeleteExpiredLoginTokens(ctx context.Context, now time.Time) (int64, error) {
	r, err := s.write.ExecContext(ctx, `DELETE FROM login_tokens WHERE expires_at <= ?`, millis(now))
	if err != nil {
		return 0, fmt.Errorf("delete expired login tokens: %w", err)
	}
	n, err := r.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("delete expired login tokens: %w", err)
	}
	return n, nil
}

// CountLoginTokens returns how many login tokens are stored.
func (s *Store) CountLoginTokens(ctx context.Context) (int64, error) {
	var n int64
	if err := s.read.QueryRowContext(ctx, `SELECT COUNT(*) FROM login_tokens`).Scan(&n); err != nil {
		return 0, fmt.Errorf("count login tokens: %w", err)
	}
	return n, nil
}
