package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/gatehouse-proxy/gatehouse/session"
)

// errNotYet: the admin methods merged from h-admin are not ported to
// PostgreSQL yet; the port follows in its own commit.
var errNotYet = fmt.Errorf("postgres: admin methods: %w", errors.ErrUnsupported)

// ListUsers is not ported yet.
func (s *Store) ListUsers(ctx context.Context, afterID string, limit int) ([]session.UserSummary, error) {
	return nil, errNotYet
}

// FindUsersByEmail is not ported yet.
func (s *Store) FindUsersByEmail(ctx context.Context, email string) ([]*session.User, error) {
	return nil, errNotYet
}

// SetUserDisabled is not ported yet.
func (s *Store) SetUserDisabled(ctx context.Context, userID string, disabled bool) (int64, error) {
	return 0, errNotYet
}

// MarkUserForResync is not ported yet.
func (s *Store) MarkUserForResync(ctx context.Context, userID string) error {
	return errNotYet
}

// ListLoginTokens is not ported yet.
func (s *Store) ListLoginTokens(ctx context.Context, userID string) ([]*session.LoginToken, error) {
	return nil, errNotYet
}

// DeleteLoginTokensOfUser is not ported yet.
func (s *Store) DeleteLoginTokensOfUser(ctx context.Context, userID string) (int64, error) {
	return 0, errNotYet
}
