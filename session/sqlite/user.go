package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/gatehouse-proxy/gatehouse/session"
	"github.com/gatehouse-proxy/gatehouse/session/internal/input"
)

// GetUser returns the user with the given IMS id and all memberships, or
// an error wrapping session.ErrNotFound.
func (s *Store) GetUser(ctx context.Context, id string) (*session.User, error) {
	if checkID("user id", id) != nil {
		// No such user can have been stored.
		return nil, fmt.Errorf("get user %s: %w", clip(id), session.ErrNotFound)
	}
	// One read transaction, so that profile and memberships come from the
	// same snapshot.
	tx, err := s.read.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("get user %s: %w", id, err)
	}
	defer func() { _ = tx.Rollback() }()
	u, err := getUser(ctx, tx, &s.readUser, id)
	if err != nil {
		return nil, fmt.Errorf("get user %s: %w", id, err)
	}
	return u, nil
}

// getUser reads a user and its memberships inside tx, with statements
// prepared on tx's pool. (Separate statements are faster than one join that
// repeats the profile on every membership row.)
func getUser(ctx context.Context, tx *sql.Tx, us *userStmts, id string) (*session.User, error) {
	u := &session.User{ID: id}
	var created, updated, synced int64
	err := tx.StmtContext(ctx, us.profile).QueryRowContext(ctx, id).
		Scan(&u.Email, &u.Name, &u.FirstName, &u.LastName, &created, &updated, &synced, &u.Disabled)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, session.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	u.CreatedAt, u.UpdatedAt, u.SyncedAt = fromMillis(created), fromMillis(updated), fromMillis(synced)
	if err := readGroups(ctx, tx, us, u); err != nil {
		return nil, err
	}
	return u, nil
}

// readGroups reads u's memberships and organizations inside tx.
func readGroups(ctx context.Context, tx *sql.Tx, us *userStmts, u *session.User) error {
	rows, err := tx.StmtContext(ctx, us.memberships).QueryContext(ctx, u.ID)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var m session.Membership
		if err := rows.Scan(&m.Group, &m.Source); err != nil {
			return err
		}
		u.Memberships = append(u.Memberships, m)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	orgs, err := tx.StmtContext(ctx, us.orgs).QueryContext(ctx, u.ID)
	if err != nil {
		return err
	}
	defer orgs.Close()
	for orgs.Next() {
		var o string
		if err := orgs.Scan(&o); err != nil {
			return err
		}
		u.Orgs = append(u.Orgs, o)
	}
	return orgs.Err()
}

// SyncUser creates or updates the user's profile and makes its SourceIMS
// memberships exactly imsGroups (empty names ignored, duplicates merged),
// in one transaction. UpdatedAt moves to now only when the profile
// changed; SyncedAt always does. It rejects an id or group name longer
// than 255 bytes and more than 1000 distinct groups, writing nothing.
func (s *Store) SyncUser(ctx context.Context, p session.Profile, imsGroups []string, now time.Time) (*session.SyncResult, error) {
	if err := checkID("user id", p.ID); err != nil {
		return nil, fmt.Errorf("sync user %s: %w", clip(p.ID), err)
	}
	want, err := input.NormalizeGroups(imsGroups)
	if err != nil {
		return nil, fmt.Errorf("sync user %s: %w", p.ID, err)
	}
	if p.Orgs, err = input.NormalizeGroups(p.Orgs); err != nil {
		return nil, fmt.Errorf("sync user %s: organizations: %w", p.ID, err)
	}

	var res *session.SyncResult
	err = s.inWriteTx(ctx, func(tx *sql.Tx) error {
		var err error
		res, err = syncUser(ctx, tx, &s.writeUser, p, want, millis(now))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("sync user %s: %w", p.ID, err)
	}
	return res, nil
}

func syncUser(ctx context.Context, tx *sql.Tx, us *userStmts, p session.Profile, want []string, now int64) (*session.SyncResult, error) {
	res := &session.SyncResult{}

	var old session.Profile
	err := tx.QueryRowContext(ctx,
		`SELECT email, name, first_name, last_name FROM users WHERE id = ?`, p.ID).
		Scan(&old.Email, &old.Name, &old.FirstName, &old.LastName)
	changed := old.Email != p.Email || old.Name != p.Name || old.FirstName != p.FirstName || old.LastName != p.LastName
	switch {
	case errors.Is(err, sql.ErrNoRows):
		res.Created = true
		_, err = tx.ExecContext(ctx, `
INSERT INTO users (id, email, name, first_name, last_name, created_at, updated_at, synced_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
			p.ID, p.Email, p.Name, p.FirstName, p.LastName, now, now, now)
	case err != nil:
		return nil, fmt.Errorf("read profile: %w", err)
	case changed:
		_, err = tx.ExecContext(ctx, `
UPDATE users SET email = ?, name = ?, first_name = ?, last_name = ?, updated_at = ?, synced_at = ?
WHERE id = ?`,
			p.Email, p.Name, p.FirstName, p.LastName, now, now, p.ID)
	default:
		_, err = tx.ExecContext(ctx, `UPDATE users SET synced_at = ? WHERE id = ?`, now, p.ID)
	}
	if err != nil {
		return nil, fmt.Errorf("write profile: %w", err)
	}

	have, err := imsGroups(ctx, tx, p.ID)
	if err != nil {
		return nil, fmt.Errorf("read IMS groups: %w", err)
	}
	res.Added, res.Removed = input.Diff(have, want)

	if err := execEach(ctx, tx,
		`INSERT INTO memberships (user_id, group_name, source) VALUES (?, ?, ?)`,
		p.ID, res.Added); err != nil {
		return nil, fmt.Errorf("add IMS groups: %w", err)
	}
	if err := execEach(ctx, tx,
		`DELETE FROM memberships WHERE user_id = ? AND group_name = ? AND source = ?`,
		p.ID, res.Removed); err != nil {
		return nil, fmt.Errorf("remove IMS groups: %w", err)
	}

	// Organizations are replaced as a set; they change rarely and are few.
	if _, err := tx.ExecContext(ctx, `DELETE FROM user_orgs WHERE user_id = ?`, p.ID); err != nil {
		return nil, fmt.Errorf("replace organizations: %w", err)
	}
	for _, o := range p.Orgs {
		if _, err := tx.ExecContext(ctx, `INSERT INTO user_orgs (user_id, org_id) VALUES (?, ?)`, p.ID, o); err != nil {
			return nil, fmt.Errorf("replace organizations: %w", err)
		}
	}

	res.User, err = getUser(ctx, tx, us, p.ID)
	if err != nil {
		return nil, fmt.Errorf("reload: %w", err)
	}
	return res, nil
}

// imsGroups returns the user's SourceIMS groups, sorted.
func imsGroups(ctx context.Context, tx *sql.Tx, userID string) ([]string, error) {
	rows, err := tx.QueryContext(ctx,
		`SELECT group_name FROM memberships WHERE user_id = ? AND source = ? ORDER BY group_name`,
		userID, session.SourceIMS)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var g string
		if err := rows.Scan(&g); err != nil {
			return nil, err
		}
		out = append(out, g)
	}
	return out, rows.Err()
}

// execEach runs query, whose parameters are (user id, group, source), once
// for each group with source SourceIMS.
func execEach(ctx context.Context, tx *sql.Tx, query, userID string, groups []string) error {
	if len(groups) == 0 {
		return nil
	}
	stmt, err := tx.PrepareContext(ctx, query)
	if err != nil {
		return err
	}
	defer stmt.Close()
	for _, g := range groups {
		if _, err := stmt.ExecContext(ctx, userID, g, session.SourceIMS); err != nil {
			return fmt.Errorf("group %q: %w", g, err)
		}
	}
	return nil
}

// AddMembership grants a membership; granting an existing one is not an
// error. It returns an error wrapping session.ErrNotFound if the user does
// not exist, and rejects an empty or over-long group or source.
func (s *Store) AddMembership(ctx context.Context, userID, group, source string) error {
	if err := checkName("group", group); err != nil {
		return fmt.Errorf("add membership of %s: %w", clip(userID), err)
	}
	if err := checkName("source", source); err != nil {
		return fmt.Errorf("add membership of %s: %w", clip(userID), err)
	}
	if checkID("user id", userID) != nil {
		return fmt.Errorf("add membership of %s: user: %w", clip(userID), session.ErrNotFound)
	}
	err := s.inWriteTx(ctx, func(tx *sql.Tx) error {
		if err := userExists(ctx, tx, userID); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `
INSERT INTO memberships (user_id, group_name, source) VALUES (?, ?, ?)
ON CONFLICT (user_id, group_name, source) DO NOTHING`, userID, group, source)
		return err
	})
	if err != nil {
		return fmt.Errorf("add membership of %s in %s (%s): %w", userID, group, source, err)
	}
	return nil
}

// RemoveMembership revokes one membership; revoking a missing one is not
// an error.
func (s *Store) RemoveMembership(ctx context.Context, userID, group, source string) error {
	_, err := s.write.ExecContext(ctx,
		`DELETE FROM memberships WHERE user_id = ? AND group_name = ? AND source = ?`,
		userID, group, source)
	if err != nil {
		return fmt.Errorf("remove membership of %s in %s (%s): %w", clip(userID), clip(group), clip(source), err)
	}
	return nil
}

// userExists returns an error wrapping session.ErrNotFound if there is no
// user with the given id.
func userExists(ctx context.Context, tx *sql.Tx, id string) error {
	var one int
	err := tx.QueryRowContext(ctx, `SELECT 1 FROM users WHERE id = ?`, id).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("user %s: %w", id, session.ErrNotFound)
	}
	return err
}

// DeleteUser removes a user; the schema's cascades remove the user's
// memberships, organizations and login tokens. Removing a missing user is
// not an error.
func (s *Store) DeleteUser(ctx context.Context, id string) error {
	if _, err := s.write.ExecContext(ctx, `DELETE FROM users WHERE id = ?`, id); err != nil {
		return fmt.Errorf("delete user %s: %w", clip(id), err)
	}
	return nil
}
