package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gatehouse-proxy/gatehouse/session"
	"github.com/gatehouse-proxy/gatehouse/session/internal/input"
)

// userColumns select a user's profile, memberships and organizations in
// one row: memberships as two arrays in the same (group, source) order,
// the primary key's, so that they pair up.
const userColumns = `u.id, u.email, u.name, u.first_name, u.last_name, u.created_at, u.updated_at, u.synced_at, u.disabled,
	ARRAY(SELECT m.group_name FROM memberships m WHERE m.user_id = u.id ORDER BY m.group_name, m.source),
	ARRAY(SELECT m.source FROM memberships m WHERE m.user_id = u.id ORDER BY m.group_name, m.source),
	ARRAY(SELECT o.org_id FROM user_orgs o WHERE o.user_id = u.id ORDER BY o.org_id)`

const sqlGetUser = `SELECT ` + userColumns + ` FROM users u WHERE u.id = $1`

// userScan receives userColumns.
type userScan struct {
	u               session.User
	groups, sources []string
}

func (us *userScan) dest() []any {
	u := &us.u
	return []any{&u.ID, &u.Email, &u.Name, &u.FirstName, &u.LastName, &u.CreatedAt, &u.UpdatedAt, &u.SyncedAt, &u.Disabled,
		&us.groups, &us.sources, &u.Orgs}
}

func (us *userScan) user() (*session.User, error) {
	if len(us.groups) != len(us.sources) {
		return nil, fmt.Errorf("read memberships: %d groups but %d sources", len(us.groups), len(us.sources))
	}
	u := us.u
	u.CreatedAt, u.UpdatedAt, u.SyncedAt = u.CreatedAt.UTC(), u.UpdatedAt.UTC(), u.SyncedAt.UTC()
	if len(us.groups) > 0 {
		u.Memberships = make([]session.Membership, len(us.groups))
		for i, g := range us.groups {
			u.Memberships[i] = session.Membership{Group: g, Source: us.sources[i]}
		}
	}
	if len(u.Orgs) == 0 {
		u.Orgs = nil
	}
	return &u, nil
}

// GetUser returns the user with the given IMS id and all memberships, or
// an error wrapping session.ErrNotFound.
func (s *Store) GetUser(ctx context.Context, id string) (*session.User, error) {
	ctx, cancel := bound(ctx)
	defer cancel()
	if input.CheckID("user id", id) != nil || !storable(id) {
		return nil, fmt.Errorf("get user %s: %w", input.Clip(id), session.ErrNotFound)
	}
	u, err := getUser(ctx, s.pool, id)
	if err != nil {
		return nil, fmt.Errorf("get user %s: %w", id, err)
	}
	return u, nil
}

// querier is what the pool and a transaction have in common for reading.
type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

func getUser(ctx context.Context, q querier, id string) (*session.User, error) {
	var us userScan
	err := q.QueryRow(ctx, sqlGetUser, id).Scan(us.dest()...)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, session.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	return us.user()
}

// SyncUser creates or updates the user's profile and makes its SourceIMS
// memberships exactly imsGroups (empty names ignored, duplicates merged),
// in one transaction. Concurrent syncs of one user, from this process or
// another, queue on the user's row: each sees the one before it, and the
// last to commit decides. It rejects what session/sqlite rejects, and
// text PostgreSQL cannot hold (invalid UTF-8, NUL), writing nothing.
func (s *Store) SyncUser(ctx context.Context, p session.Profile, imsGroups []string, now time.Time) (*session.SyncResult, error) {
	ctx, cancel := bound(ctx)
	defer cancel()
	if err := input.CheckID("user id", p.ID); err != nil {
		return nil, fmt.Errorf("sync user %s: %w", input.Clip(p.ID), err)
	}
	want, err := input.NormalizeGroups(imsGroups)
	if err != nil {
		return nil, fmt.Errorf("sync user %s: %w", p.ID, err)
	}
	if p.Orgs, err = input.NormalizeGroups(p.Orgs); err != nil {
		return nil, fmt.Errorf("sync user %s: organizations: %w", p.ID, err)
	}
	if err := errors.Join(checkText("user id", p.ID), checkText("profile field", p.Email, p.Name, p.FirstName, p.LastName),
		checkText("group", want...), checkText("organization", p.Orgs...)); err != nil {
		return nil, fmt.Errorf("sync user %s: %w", input.Clip(p.ID), err)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("sync user %s: %w", p.ID, err)
	}
	var res *session.SyncResult
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		var err error
		res, err = syncUser(ctx, tx, p, want, ms(now), s.channel)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("sync user %s: %w", p.ID, err)
	}
	return res, nil
}

// maxSyncAttempts bounds syncUser's retries when the user is deleted
// between its insert and its lock: a race that needs an operator.
const maxSyncAttempts = 3

// syncUser does SyncUser's work in tx, and notifies channel if the user
// changed in a way other replicas' caches must hear of.
func syncUser(ctx context.Context, tx pgx.Tx, p session.Profile, want []string, now time.Time, channel string) (*session.SyncResult, error) {
	res := &session.SyncResult{}
	var (
		old  session.Profile
		have []string
	)
	for attempt := 1; ; attempt++ {
		// Insert, or find the row: a concurrent insert of the same id
		// waits for ours to commit and then finds the row.
		tag, err := tx.Exec(ctx, `
INSERT INTO users (id, email, name, first_name, last_name, created_at, updated_at, synced_at)
VALUES ($1, $2, $3, $4, $5, $6, $6, $6) ON CONFLICT (id) DO NOTHING`,
			p.ID, p.Email, p.Name, p.FirstName, p.LastName, now)
		if err != nil {
			return nil, fmt.Errorf("write profile: %w", err)
		}
		if tag.RowsAffected() == 1 {
			res.Created = true
			break
		}
		// Lock the row, so that syncs of this user queue here. NO KEY
		// UPDATE does not wait for a membership insert's key-share lock.
		err = tx.QueryRow(ctx, `
SELECT email, name, first_name, last_name FROM users WHERE id = $1 FOR NO KEY UPDATE`, p.ID).
			Scan(&old.Email, &old.Name, &old.FirstName, &old.LastName)
		if errors.Is(err, pgx.ErrNoRows) && attempt < maxSyncAttempts {
			continue // deleted meanwhile: insert again
		}
		if err != nil {
			return nil, fmt.Errorf("read profile: %w", err)
		}
		// A statement of its own: the one that waited for the lock reads
		// the memberships as they were before the wait.
		err = tx.QueryRow(ctx, `
SELECT ARRAY(SELECT group_name FROM memberships WHERE user_id = $1 AND source = $2 ORDER BY group_name),
	ARRAY(SELECT org_id FROM user_orgs WHERE user_id = $1 ORDER BY org_id)`,
			p.ID, session.SourceIMS).Scan(&have, &old.Orgs)
		if err != nil {
			return nil, fmt.Errorf("read IMS groups: %w", err)
		}
		break
	}
	res.Added, res.Removed = input.Diff(have, want)

	b := &pgx.Batch{}
	changed := old.Email != p.Email || old.Name != p.Name || old.FirstName != p.FirstName || old.LastName != p.LastName
	switch {
	case res.Created:
	case changed:
		b.Queue(`UPDATE users SET email = $2, name = $3, first_name = $4, last_name = $5, updated_at = $6, synced_at = $6 WHERE id = $1`,
			p.ID, p.Email, p.Name, p.FirstName, p.LastName, now)
	default:
		b.Queue(`UPDATE users SET synced_at = $2 WHERE id = $1`, p.ID, now)
	}
	if len(res.Added) > 0 {
		// ON CONFLICT: AddMembership takes no lock on the user, and may
		// grant one of these meanwhile.
		b.Queue(`INSERT INTO memberships (user_id, group_name, source)
SELECT $1, g, $3 FROM unnest($2::text[]) AS g ON CONFLICT DO NOTHING`, p.ID, res.Added, session.SourceIMS)
	}
	if len(res.Removed) > 0 {
		b.Queue(`DELETE FROM memberships WHERE user_id = $1 AND source = $3 AND group_name = ANY($2::text[])`,
			p.ID, res.Removed, session.SourceIMS)
	}
	// Organizations are replaced as a set; they change rarely and are few.
	b.Queue(`DELETE FROM user_orgs WHERE user_id = $1`, p.ID)
	if len(p.Orgs) > 0 {
		b.Queue(`INSERT INTO user_orgs (user_id, org_id) SELECT $1, o FROM unnest($2::text[]) AS o`, p.ID, p.Orgs)
	}
	// Other replicas hear of a change with the commit, and of nothing if
	// it rolls back. A new user is in no one's cache.
	if !res.Created && (changed || len(res.Added) > 0 || len(res.Removed) > 0 || !slices.Equal(old.Orgs, p.Orgs)) {
		b.Queue(notifySQL, payload(kindUser, p.ID), channel)
	}
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return nil, fmt.Errorf("write groups: %w", err)
	}
	var err error
	if res.User, err = getUser(ctx, tx, p.ID); err != nil {
		return nil, fmt.Errorf("reload: %w", err)
	}
	return res, nil
}

// AddMembership grants a membership; granting an existing one is not an
// error. It returns an error wrapping session.ErrNotFound if the user does
// not exist, and rejects an empty or over-long group or source. (Not part
// of session.Store: nothing in a request grants memberships.)
func (s *Store) AddMembership(ctx context.Context, userID, group, source string) error {
	ctx, cancel := bound(ctx)
	defer cancel()
	for _, err := range []error{input.CheckName("group", group), input.CheckName("source", source), checkText("group or source", group, source)} {
		if err != nil {
			return fmt.Errorf("add membership of %s: %w", input.Clip(userID), err)
		}
	}
	if input.CheckID("user id", userID) != nil || !storable(userID) {
		return fmt.Errorf("add membership of %s: user: %w", input.Clip(userID), session.ErrNotFound)
	}
	_, err := s.pool.Exec(ctx, `
INSERT INTO memberships (user_id, group_name, source) VALUES ($1, $2, $3)
ON CONFLICT (user_id, group_name, source) DO NOTHING`, userID, group, source)
	if isForeignKey(err) {
		err = fmt.Errorf("user %s: %w", userID, session.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("add membership of %s in %s (%s): %w", userID, group, source, err)
	}
	return nil
}

// RemoveMembership revokes one membership; revoking a missing one is not
// an error.
func (s *Store) RemoveMembership(ctx context.Context, userID, group, source string) error {
	ctx, cancel := bound(ctx)
	defer cancel()
	if !storable(userID) || !storable(group) || !storable(source) {
		return nil // cannot have been stored
	}
	_, err := s.pool.Exec(ctx,
		`DELETE FROM memberships WHERE user_id = $1 AND group_name = $2 AND source = $3`, userID, group, source)
	if err != nil {
		return fmt.Errorf("remove membership of %s in %s (%s): %w", input.Clip(userID), input.Clip(group), input.Clip(source), err)
	}
	return nil
}

// DeleteUser removes a user; the schema's cascades remove the user's
// memberships, organizations and login tokens. Removing a missing user is
// not an error.
func (s *Store) DeleteUser(ctx context.Context, id string) error {
	ctx, cancel := bound(ctx)
	defer cancel()
	if !storable(id) {
		return nil
	}
	if _, err := s.pool.Exec(ctx, `
WITH d AS (DELETE FROM users WHERE id = $1 RETURNING id)
SELECT pg_notify($3, $2) FROM d`, id, payload(kindUser, id), s.channel); err != nil {
		return fmt.Errorf("delete user %s: %w", input.Clip(id), err)
	}
	return nil
}
