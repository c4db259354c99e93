package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/gatehouse-proxy/gatehouse/session"
)

// The administrator's reads and writes (`gatehouse users`, `gatehouse
// tokens`). None of them is on a request path. Those that select login
// tokens by user scan the token table once: migration 3 dropped the index
// on login_tokens.user_id, which cost every sign-in more than these rare
// commands gain from it.

// ListUsers returns a page of users sorted by id (see session.Store).
func (s *Store) ListUsers(ctx context.Context, afterID string, limit int) ([]session.UserSummary, error) {
	if limit < 1 || limit > session.MaxListUsers {
		return nil, fmt.Errorf("list users: %w: limit %d is not within 1..%d", errInvalid, limit, session.MaxListUsers)
	}
	// One read transaction: the counts come from the same snapshot as the
	// users.
	tx, err := s.read.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	rows, err := tx.QueryContext(ctx, `
SELECT u.id, u.email, u.name, u.created_at, u.synced_at, u.disabled,
	(SELECT COUNT(DISTINCT m.group_name) FROM memberships m WHERE m.user_id = u.id)
FROM users u WHERE u.id > ? ORDER BY u.id LIMIT ?`, afterID, limit)
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	defer rows.Close()
	out := []session.UserSummary{}
	for rows.Next() {
		var u session.UserSummary
		var created, synced int64
		if err := rows.Scan(&u.ID, &u.Email, &u.Name, &created, &synced, &u.Disabled, &u.Groups); err != nil {
			return nil, fmt.Errorf("list users: %w", err)
		}
		u.CreatedAt, u.SyncedAt = fromMillis(created), fromMillis(synced)
		out = append(out, u)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	if len(out) == 0 {
		return out, nil
	}
	// One scan of the token table for the page, not one per user.
	counts, err := tx.QueryContext(ctx,
		`SELECT user_id, COUNT(*) FROM login_tokens WHERE user_id BETWEEN ? AND ? GROUP BY user_id`,
		out[0].ID, out[len(out)-1].ID)
	if err != nil {
		return nil, fmt.Errorf("list users: count login tokens: %w", err)
	}
	defer counts.Close()
	n := make(map[string]int, len(out))
	for counts.Next() {
		var id string
		var c int
		if err := counts.Scan(&id, &c); err != nil {
			return nil, fmt.Errorf("list users: count login tokens: %w", err)
		}
		n[id] = c
	}
	if err := counts.Err(); err != nil {
		return nil, fmt.Errorf("list users: count login tokens: %w", err)
	}
	for i := range out {
		out[i].LoginTokens = n[out[i].ID]
	}
	return out, nil
}

// FindUsersByEmail returns the users with the e-mail address, ASCII case
// ignored (see session.Store).
func (s *Store) FindUsersByEmail(ctx context.Context, email string) ([]*session.User, error) {
	out := []*session.User{}
	if email == "" {
		return out, nil
	}
	tx, err := s.read.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("find users by e-mail: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	// NOCASE folds ASCII letters only, as the contract says.
	rows, err := tx.QueryContext(ctx, `SELECT id FROM users WHERE email = ? COLLATE NOCASE ORDER BY id`, email)
	if err != nil {
		return nil, fmt.Errorf("find users by e-mail: %w", err)
	}
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return nil, fmt.Errorf("find users by e-mail: %w", err)
		}
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("find users by e-mail: %w", err)
	}
	for _, id := range ids {
		u, err := getUser(ctx, tx, &s.readUser, id)
		if err != nil {
			return nil, fmt.Errorf("find users by e-mail: user %s: %w", id, err)
		}
		out = append(out, u)
	}
	return out, nil
}

// SetUserDisabled sets the user's disabled flag and, when disabling,
// deletes their login tokens in the same transaction.
func (s *Store) SetUserDisabled(ctx context.Context, userID string, disabled bool) (int64, error) {
	if checkID("user id", userID) != nil {
		return 0, fmt.Errorf("set user %s disabled: %w", clip(userID), session.ErrNotFound)
	}
	var n int64
	err := s.inWriteTx(ctx, func(tx *sql.Tx) error {
		r, err := tx.ExecContext(ctx, `UPDATE users SET disabled = ? WHERE id = ?`, disabled, userID)
		if err != nil {
			return err
		}
		if err := oneRow(r, userID); err != nil {
			return err
		}
		if !disabled {
			return nil
		}
		if r, err = tx.ExecContext(ctx, `DELETE FROM login_tokens WHERE user_id = ?`, userID); err != nil {
			return fmt.Errorf("delete login tokens: %w", err)
		}
		n, err = r.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("set user %s disabled=%t: %w", userID, disabled, err)
	}
	return n, nil
}

// MarkUserForResync makes the user's last sync the Unix epoch.
func (s *Store) MarkUserForResync(ctx context.Context, userID string) error {
	if checkID("user id", userID) != nil {
		return fmt.Errorf("mark user %s for resync: %w", clip(userID), session.ErrNotFound)
	}
	err := s.inWriteTx(ctx, func(tx *sql.Tx) error {
		r, err := tx.ExecContext(ctx, `UPDATE users SET synced_at = 0 WHERE id = ?`, userID)
		if err != nil {
			return err
		}
		return oneRow(r, userID)
	})
	if err != nil {
		return fmt.Errorf("mark user %s for resync: %w", userID, err)
	}
	return nil
}

// oneRow returns an error wrapping session.ErrNotFound if r changed no
// row of the user.
func oneRow(r sql.Result, userID string) error {
	n, err := r.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf("user %s: %w", userID, session.ErrNotFound)
	}
	return nil
}

// ListLoginTokens returns the user's tokens without their secret hashes.
func (s *Store) ListLoginTokens(ctx context.Context, userID string) ([]*session.LoginToken, error) {
	out := []*session.LoginToken{}
	if checkID("user id", userID) != nil {
		return out, nil
	}
	rows, err := s.read.QueryContext(ctx,
		`SELECT id, created_at, expires_at FROM login_tokens WHERE user_id = ? ORDER BY created_at, id`, userID)
	if err != nil {
		return nil, fmt.Errorf("list login tokens of %s: %w", userID, err)
	}
	defer rows.Close()
	for rows.Next() {
		t := &session.LoginToken{UserID: userID}
		var created, expires int64
		if err := rows.Scan(&t.ID, &created, &expires); err != nil {
			return nil, fmt.Errorf("list login tokens of %s: %w", userID, err)
		}
		t.CreatedAt, t.ExpiresAt = fromMillis(created), fromMillis(expires)
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list login tokens of %s: %w", userID, err)
	}
	return out, nil
}

// DeleteLoginTokensOfUser deletes the user's tokens and says how many.
func (s *Store) DeleteLoginTokensOfUser(ctx context.Context, userID string) (int64, error) {
	if checkID("user id", userID) != nil {
		return 0, nil
	}
	r, err := s.write.ExecContext(ctx, `DELETE FROM login_tokens WHERE user_id = ?`, userID)
	if err != nil {
		return 0, fmt.Errorf("delete login tokens of %s: %w", userID, err)
	}
	n, err := r.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("delete login tokens of %s: %w", userID, err)
	}
	return n, nil
}
