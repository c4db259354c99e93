package postgres

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gatehouse-proxy/gatehouse/session"
	"github.com/gatehouse-proxy/gatehouse/session/internal/input"
)

// The administrator's reads and writes (`gatehouse users`, `gatehouse
// tokens`). None of them is on a request path; each read is one
// statement, so one snapshot and one round trip.

// ListUsers returns a page of users sorted by id, bytewise (the id is
// COLLATE "C"). An afterID PostgreSQL's text cannot hold is ErrInvalid:
// no stored id can be compared with it.
func (s *Store) ListUsers(ctx context.Context, afterID string, limit int) ([]session.UserSummary, error) {
	ctx, cancel := bound(ctx)
	defer cancel()
	if limit < 1 || limit > session.MaxListUsers {
		return nil, fmt.Errorf("list users: %w: limit %d is not within 1..%d", session.ErrInvalid, limit, session.MaxListUsers)
	}
	if err := checkText("user id", afterID); err != nil {
		return nil, fmt.Errorf("list users after %s: %w", input.Clip(afterID), err)
	}
	rows, err := s.pool.Query(ctx, `
SELECT u.id, u.email, u.name, u.created_at, u.synced_at, u.disabled,
	(SELECT COUNT(DISTINCT m.group_name) FROM memberships m WHERE m.user_id = u.id),
	(SELECT COUNT(*) FROM login_tokens t WHERE t.user_id = u.id)
FROM users u WHERE u.id > $1 ORDER BY u.id LIMIT $2`, afterID, limit)
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	out := []session.UserSummary{}
	var u session.UserSummary
	_, err = pgx.ForEachRow(rows, []any{&u.ID, &u.Email, &u.Name, &u.CreatedAt, &u.SyncedAt, &u.Disabled, &u.Groups, &u.LoginTokens},
		func() error {
			v := u
			v.CreatedAt, v.SyncedAt = v.CreatedAt.UTC(), v.SyncedAt.UTC()
			out = append(out, v)
			return nil
		})
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	return out, nil
}

// asciiFold returns the SQL expression that lower-cases the ASCII letters
// of expr and no other: lower() would also fold É to é under most
// collations, which the session.Store contract forbids.
func asciiFold(expr string) string {
	return "translate(" + expr + ", 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz')"
}

// sqlFindByEmail compares with the expression of the index that
// migration 2 creates, so that the index serves it.
var sqlFindByEmail = `SELECT ` + userColumns + ` FROM users u WHERE ` + asciiFold("u.email") + ` = $1 ORDER BY u.id`

// FindUsersByEmail returns the users with the e-mail address, ASCII case
// ignored, sorted by id.
func (s *Store) FindUsersByEmail(ctx context.Context, email string) ([]*session.User, error) {
	ctx, cancel := bound(ctx)
	defer cancel()
	out := []*session.User{}
	if email == "" || !storable(email) {
		return out, nil // cannot have been stored
	}
	rows, err := s.pool.Query(ctx, sqlFindByEmail, foldASCII(email))
	if err != nil {
		return nil, fmt.Errorf("find users by e-mail: %w", err)
	}
	var us userScan
	_, err = pgx.ForEachRow(rows, us.dest(), func() error {
		u, err := us.user()
		if err != nil {
			return err
		}
		out = append(out, u)
		us = userScan{}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("find users by e-mail: %w", err)
	}
	return out, nil
}

// foldASCII lower-cases the ASCII letters of s, as asciiFold does in SQL.
func foldASCII(s string) string {
	return strings.Map(func(r rune) rune {
		if 'A' <= r && r <= 'Z' {
			return r + ('a' - 'A')
		}
		return r
	}, s)
}

// SetUserDisabled sets the user's disabled flag and, when disabling,
// deletes their login tokens in the same transaction. Two statements, not
// one: the UPDATE waits for a CreateLoginToken that holds the user's row
// (see sqlCreateToken), and only a statement begun after that wait sees
// the token it committed.
func (s *Store) SetUserDisabled(ctx context.Context, userID string, disabled bool) (int64, error) {
	ctx, cancel := bound(ctx)
	defer cancel()
	if input.CheckID("user id", userID) != nil || !storable(userID) {
		return 0, fmt.Errorf("set user %s disabled: %w", input.Clip(userID), session.ErrNotFound)
	}
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("set user %s disabled=%t: %w", userID, disabled, err)
	}
	var n int64
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE users SET disabled = $2 WHERE id = $1`, userID, disabled)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("user %s: %w", userID, session.ErrNotFound)
		}
		// Every replica forgets the user (and, disabling, their tokens):
		// sent only if the transaction commits.
		kind := byte(kindUser)
		if disabled {
			if tag, err = tx.Exec(ctx, `DELETE FROM login_tokens WHERE user_id = $1`, userID); err != nil {
				return fmt.Errorf("delete login tokens: %w", err)
			}
			n = tag.RowsAffected()
			kind = kindUserTokens
		}
		if _, err := tx.Exec(ctx, notifySQL, payload(kind, userID), s.channel); err != nil {
			return fmt.Errorf("notify: %w", err)
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("set user %s disabled=%t: %w", userID, disabled, err)
	}
	return n, nil
}

// resyncEpoch is the SyncedAt of a user marked for resync.
var resyncEpoch = time.Unix(0, 0).UTC()

// MarkUserForResync makes the user's last sync the Unix epoch.
func (s *Store) MarkUserForResync(ctx context.Context, userID string) error {
	ctx, cancel := bound(ctx)
	defer cancel()
	if input.CheckID("user id", userID) != nil || !storable(userID) {
		return fmt.Errorf("mark user %s for resync: %w", input.Clip(userID), session.ErrNotFound)
	}
	// Every replica's user cache forgets the user, so the next sign-in
	// anywhere syncs from IMS; the notification goes out only if a row
	// changed.
	tag, err := s.pool.Exec(ctx, `WITH u AS (UPDATE users SET synced_at = $2 WHERE id = $1 RETURNING 1)
SELECT pg_notify($4, $3) FROM u`, userID, resyncEpoch, payload(kindUser, userID), s.channel)
	if err == nil && tag.RowsAffected() == 0 {
		err = session.ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("mark user %s for resync: %w", userID, err)
	}
	return nil
}

// ListLoginTokens returns the user's tokens without their secret hashes.
func (s *Store) ListLoginTokens(ctx context.Context, userID string) ([]*session.LoginToken, error) {
	ctx, cancel := bound(ctx)
	defer cancel()
	out := []*session.LoginToken{}
	if !storable(userID) {
		return out, nil
	}
	rows, err := s.pool.Query(ctx,
		`SELECT id, created_at, expires_at FROM login_tokens WHERE user_id = $1 ORDER BY created_at, id`, userID)
	if err != nil {
		return nil, fmt.Errorf("list login tokens of %s: %w", input.Clip(userID), err)
	}
	var t session.LoginToken
	_, err = pgx.ForEachRow(rows, []any{&t.ID, &t.CreatedAt, &t.ExpiresAt}, func() error {
		out = append(out, &session.LoginToken{ID: t.ID, UserID: userID, CreatedAt: t.CreatedAt.UTC(), ExpiresAt: t.ExpiresAt.UTC()})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list login tokens of %s: %w", input.Clip(userID), err)
	}
	return out, nil
}

// DeleteLoginTokensOfUser deletes the user's tokens and says how many.
func (s *Store) DeleteLoginTokensOfUser(ctx context.Context, userID string) (int64, error) {
	ctx, cancel := bound(ctx)
	defer cancel()
	if !storable(userID) {
		return 0, nil
	}
	// One statement: the deletion and, if it deleted anything, the
	// notification that makes every replica drop the user's tokens.
	var n int64
	err := s.pool.QueryRow(ctx, `WITH d AS (DELETE FROM login_tokens WHERE user_id = $1 RETURNING 1),
c AS (SELECT count(*) AS n FROM d)
SELECT n FROM c, LATERAL (SELECT CASE WHEN n > 0 THEN pg_notify($3, $2) END) AS x`,
		userID, payload(kindUserTokens, userID), s.channel).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("delete login tokens of %s: %w", input.Clip(userID), err)
	}
	return n, nil
}
