package session

import "context"

// ChangeKind says what a Change is about.
type ChangeKind uint8

// The kinds of Change. A subscriber that meets a kind it does not know
// must treat it as ChangeAll.
const (
	// ChangeToken: a login token was deleted (logout, revocation). ID is
	// the token's id.
	ChangeToken ChangeKind = iota + 1
	// ChangeUser: a user's profile, memberships, organizations or state
	// changed, or the user was deleted. ID is the user's id.
	ChangeUser
	// ChangeUserTokens: every login token of a user was revoked. ID is
	// the user's id.
	ChangeUserTokens
	// ChangeSetting: a setting was replaced (CompareAndSwapSetting). ID is
	// its key.
	ChangeSetting
	// ChangeAll: the feed has (re)started listening. Changes made while it
	// was not are unknown, so a subscriber forgets everything it cached;
	// from now on, changes are delivered again. It comes first, once the
	// feed listens, and after every reconnection.
	ChangeAll
	// ChangeLost: the feed stopped listening (its connection failed; Err
	// says why) and reconnects with backoff. Until the next ChangeAll no
	// change is delivered, and caches fall back to their staleness bound.
	ChangeLost
)

// Change is one change to the store, made by this process or another.
type Change struct {
	Kind ChangeKind
	ID   string // what changed; empty for ChangeAll and ChangeLost
	Err  error  // why the feed stopped, for ChangeLost
}

// Notifier is implemented by a store that tells every process sharing it
// about changes, so that each can drop what it cached at once instead of
// after its staleness bound (postgres does, with LISTEN/NOTIFY; a store
// on one machine need not). Serve subscribes the caches to it.
type Notifier interface {
	// WatchChanges calls fn with every change committed to the store,
	// from any process, in commit order, from one goroutine, until ctx is
	// done; then it returns. It never gives up: a lost connection is
	// reported (ChangeLost) and retried with backoff, and every
	// (re)connection is reported as ChangeAll. fn must not block long:
	// changes queue behind it.
	WatchChanges(ctx context.Context, fn func(Change))
}
