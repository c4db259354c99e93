package sqlite

import (
	"context"
	"database/sql"
	"fmt"
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
