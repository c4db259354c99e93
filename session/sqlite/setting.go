package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/gatehouse-proxy/gatehouse/session"
)

// GetOrCreateSetting returns the value stored under key, storing value
// first if there is none. A nil value is stored as an empty one. It
// rejects an empty key or one longer than 255 bytes.
func (s *Store) GetOrCreateSetting(ctx context.Context, key string, value []byte) ([]byte, error) {
	if err := checkID("setting key", key); err != nil {
		return nil, fmt.Errorf("get or create setting %s: %w", clip(key), err)
	}
	if value == nil {
		value = []byte{}
	}
	var got []byte
	err := s.inWriteTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx,
			`INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING`, key, value); err != nil {
			return err
		}
		return tx.QueryRowContext(ctx, `SELECT value FROM settings WHERE key = ?`, key).Scan(&got)
	})
	if err != nil {
		return nil, fmt.Errorf("get or create setting %s: %w", key, err)
	}
	if got == nil {
		got = []byte{}
	}
	return got, nil
}

// GetSetting returns the value stored under key, or session.ErrNotFound.
// It reads on the read pool, so polling it never queues behind writers.
func (s *Store) GetSetting(ctx context.Context, key string) ([]byte, error) {
	if err := checkID("setting key", key); err != nil {
		return nil, fmt.Errorf("get setting %s: %w", clip(key), err)
	}
	var got []byte
	err := s.read.QueryRowContext(ctx, `SELECT value FROM settings WHERE key = ?`, key).Scan(&got)
	switch {
	case errors.Is(err, sql.ErrNoRows):
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
// stored one is old. The single write connection serializes swaps; the
// UPDATE's WHERE clause is the comparison, so no read-then-write window
// exists even across processes sharing the file (BEGIN IMMEDIATE).
func (s *Store) CompareAndSwapSetting(ctx context.Context, key string, old, value []byte) (bool, error) {
	if err := checkID("setting key", key); err != nil {
		return false, fmt.Errorf("swap setting %s: %w", clip(key), err)
	}
	if old == nil {
		old = []byte{}
	}
	if value == nil {
		value = []byte{}
	}
	swapped := false
	err := s.inWriteTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE settings SET value = ? WHERE key = ? AND value = ?`, value, key, old)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		if n == 1 {
			swapped = true
			return nil
		}
		var one int
		err = tx.QueryRowContext(ctx, `SELECT 1 FROM settings WHERE key = ?`, key).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			return session.ErrNotFound
		}
		return err
	})
	if err != nil {
		return false, fmt.Errorf("swap setting %s: %w", key, err)
	}
	return swapped, nil
}
