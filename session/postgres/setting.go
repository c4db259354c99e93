package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/gatehouse-proxy/gatehouse/session"
	"github.com/gatehouse-proxy/gatehouse/session/internal/input"
)

// GetSetting returns the value stored under key, or an error wrapping
// session.ErrNotFound. A key that is empty or longer than 255 bytes is
// session.ErrInvalid; one PostgreSQL text cannot hold (NUL, invalid
// UTF-8) cannot have been stored, so it is not found.
func (s *Store) GetSetting(ctx context.Context, key string) ([]byte, error) {
	ctx, cancel := bound(ctx)
	defer cancel()
	if err := input.CheckID("setting key", key); err != nil {
		return nil, fmt.Errorf("get setting %s: %w", input.Clip(key), err)
	}
	if !storable(key) {
		return nil, fmt.Errorf("get setting %s: %w", input.Clip(key), session.ErrNotFound)
	}
	var got []byte
	err := s.pool.QueryRow(ctx, `SELECT value FROM settings WHERE key = $1`, key).Scan(&got)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return nil, fmt.Errorf("get setting %s: %w", key, session.ErrNotFound)
	case err != nil:
		return nil, fmt.Errorf("get setting %s: %w", key, err)
	}
	if got == nil {
		got = []byte{}
	}
	return got, nil
}

// CompareAndSwapSetting replaces the value under key with value if the
// stored one equals old, byte for byte (nil and empty are equal), and
// reports whether it did. The UPDATE's WHERE clause is the comparison:
// under READ COMMITTED a concurrent swap that committed first makes this
// one re-read the row, find another value and change nothing, so of
// replicas swapping from the same old value exactly one wins. A missing
// key is session.ErrNotFound (a swap never creates it).
func (s *Store) CompareAndSwapSetting(ctx context.Context, key string, old, value []byte) (bool, error) {
	ctx, cancel := bound(ctx)
	defer cancel()
	if err := input.CheckID("setting key", key); err != nil {
		return false, fmt.Errorf("swap setting %s: %w", input.Clip(key), err)
	}
	if !storable(key) {
		return false, fmt.Errorf("swap setting %s: %w", input.Clip(key), session.ErrNotFound)
	}
	if old == nil {
		old = []byte{}
	}
	if value == nil {
		value = []byte{}
	}
	// The notification goes with the swap, in one statement, and only if
	// it swapped.
	tag, err := s.pool.Exec(ctx, `
WITH u AS (UPDATE settings SET value = $3 WHERE key = $1 AND value = $2 RETURNING key)
SELECT pg_notify($5, $4) FROM u`, key, old, value, payload(kindSetting, key), s.channel)
	if err != nil {
		return false, fmt.Errorf("swap setting %s: %w", key, err)
	}
	if tag.RowsAffected() == 1 {
		return true, nil
	}
	var one int
	err = s.pool.QueryRow(ctx, `SELECT 1 FROM settings WHERE key = $1`, key).Scan(&one)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return false, fmt.Errorf("swap setting %s: %w", key, session.ErrNotFound)
	case err != nil:
		return false, fmt.Errorf("swap setting %s: %w", key, err)
	}
	return false, nil
}
