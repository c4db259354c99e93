// Package session keeps what Gatehouse remembers between requests: users
// provisioned from IMS, their group memberships, and login tokens. Store is
// the persistence contract; sqlite (one machine) and postgres (several
// replicas) implement it, and storetest is the conformance suite every
// implementation must pass.
package session

import (
	"context"
	"errors"
	"sort"
	"time"
)

// ErrNotFound is returned when the requested record does not exist.
var ErrNotFound = errors.New("not found")

// ErrUserDisabled is returned, wrapped, when a login token would be issued
// to, or validated for, a user an administrator disabled.
var ErrUserDisabled = errors.New("user disabled")

// ErrInvalid is returned, wrapped with the detail, for input a store
// refuses before writing anything: an empty or over-long id, group name or
// source (each must be 1 to 255 bytes), or more than 1000 groups in one
// sync.
var ErrInvalid = errors.New("invalid input")

// SourceIMS marks memberships that came from an IMS sync. A sync replaces
// only these; memberships with any other source are left alone.
const SourceIMS = "ims"

// SourceLocal marks memberships granted in Gatehouse, not by IMS.
const SourceLocal = "local"

// User is a person provisioned from IMS.
type User struct {
	ID          string // IMS user id: the external id, e.g. "7F8F…@AdobeID"
	Email       string
	Name        string
	FirstName   string
	LastName    string
	Memberships []Membership // sorted by group, then source
	// Orgs are the ids of the IMS organizations the user belonged to at the
	// last sync ("…@AdobeOrg"), sorted.
	Orgs      []string
	CreatedAt time.Time
	UpdatedAt time.Time // last change of the profile fields (not of memberships)
	SyncedAt  time.Time // last sync of profile and IMS groups, changed or not
	// Disabled: an administrator disabled the user (SetUserDisabled). A
	// disabled user is not signed in, and no login token is issued to them.
	Disabled bool
}

// UserSummary is one line of ListUsers: a user's profile and counts,
// without the memberships themselves.
type UserSummary struct {
	ID          string
	Email       string
	Name        string
	CreatedAt   time.Time
	SyncedAt    time.Time
	Disabled    bool
	Groups      int // distinct group names over all memberships
	LoginTokens int // stored login tokens, expired ones not yet deleted included
}

// MaxListUsers is the most users one ListUsers call returns.
const MaxListUsers = 1000

// Groups returns the distinct group names of all memberships, sorted.
// It runs for every authenticated request: memberships kept sorted, as
// stores return them, need neither a set nor a sort.
func (u *User) Groups() []string {
	out := make([]string, 0, len(u.Memberships))
	for i, m := range u.Memberships {
		if i > 0 {
			prev := u.Memberships[i-1].Group
			if m.Group < prev {
				return u.groupsUnsorted()
			}
			if m.Group == prev {
				continue
			}
		}
		out = append(out, m.Group)
	}
	return out
}

func (u *User) groupsUnsorted() []string {
	seen := make(map[string]struct{}, len(u.Memberships))
	out := make([]string, 0, len(u.Memberships))
	for _, m := range u.Memberships {
		if _, ok := seen[m.Group]; !ok {
			seen[m.Group] = struct{}{}
			out = append(out, m.Group)
		}
	}
	sort.Strings(out)
	return out
}

// Membership says a user belongs to a group, and where that came from.
type Membership struct {
	Group  string
	Source string // SourceIMS or SourceLocal
}

// Profile is what a sync writes about a user.
type Profile struct {
	ID        string
	Email     string
	Name      string
	FirstName string
	LastName  string
	// Orgs are the user's IMS organization ids; a sync replaces the stored
	// set with these (empty names ignored, duplicates merged, at most 1000).
	Orgs []string
}

// SyncResult says what a sync changed.
type SyncResult struct {
	User    *User
	Created bool     // the user did not exist before
	Added   []string // IMS groups added, sorted
	Removed []string // IMS groups removed, sorted
}

// LoginToken is the server-side record behind a login-token cookie. Only a
// hash of the token's secret is stored; the secret itself lives only in
// the cookie.
type LoginToken struct {
	ID         string // random, URL-safe; the lookup key
	UserID     string
	SecretHash []byte // SHA-256 of the secret
	CreatedAt  time.Time
	ExpiresAt  time.Time
}

// Store persists users, memberships, login tokens and settings. Every method
// is safe for concurrent use, and every write is atomic: a failed call
// leaves nothing half-written. Times are stored with at least millisecond
// precision and returned in UTC.
type Store interface {
	// GetUser returns the user with the given IMS id and all memberships.
	// It returns ErrNotFound if there is none.
	GetUser(ctx context.Context, id string) (*User, error)

	// SyncUser creates the user if missing, writes the profile (including
	// its organizations), and makes the user's SourceIMS memberships exactly
	// imsGroups (adding and removing
	// as needed; memberships of other sources are untouched), and sets
	// SyncedAt to now — all in one transaction. Concurrent syncs of the same
	// user must not fail or duplicate rows.
	SyncUser(ctx context.Context, p Profile, imsGroups []string, now time.Time) (*SyncResult, error)

	// CreateLoginToken stores a new login token. It returns ErrNotFound if
	// the user does not exist, ErrUserDisabled (wrapped) if the user is
	// disabled, and an error if the id is taken. The check of the disabled
	// flag and the insert are atomic with respect to SetUserDisabled: no
	// token is left stored for a user once SetUserDisabled(true) returned.
	CreateLoginToken(ctx context.Context, t *LoginToken) error

	// GetLoginTokenWithUser returns the token with the given id, expired
	// or not, together with its user and all the user's memberships and
	// organizations, read at one point in time: what a cookie check needs,
	// in one round trip. It returns ErrNotFound if there is no such token,
	// or (which the store's constraints prevent) no such user.
	GetLoginTokenWithUser(ctx context.Context, id string) (*LoginToken, *User, error)
	// ExtendLoginToken sets a token's expiry. It returns ErrNotFound if the
	// token does not exist (for example, it was revoked meanwhile).
	ExtendLoginToken(ctx context.Context, id string, expiresAt time.Time) error

	// DeleteLoginToken removes a token; removing a missing one is not an
	// error.
	DeleteLoginToken(ctx context.Context, id string) error

	// DeleteExpiredLoginTokens removes every token whose expiry is at or
	// before now, and returns how many it removed.
	DeleteExpiredLoginTokens(ctx context.Context, now time.Time) (int64, error)

	// ListUsers returns at most limit users whose id sorts after afterID
	// (bytewise; "" starts at the first), sorted by id, for paging through
	// all users: pass the last id of a page as the next afterID. A limit
	// outside 1..MaxListUsers is ErrInvalid. An empty page means the end.
	ListUsers(ctx context.Context, afterID string, limit int) ([]UserSummary, error)

	// FindUsersByEmail returns the users whose e-mail address equals email
	// ignoring the case of ASCII letters (only: other letters compare as
	// exact bytes), with memberships and organizations as GetUser returns
	// them, sorted by id. None is an empty slice, not an error; so is an
	// empty email.
	FindUsersByEmail(ctx context.Context, email string) ([]*User, error)

	// SetUserDisabled sets the user's Disabled flag. Disabling also
	// deletes every login token of the user, in the same transaction, and
	// returns how many it deleted; enabling deletes nothing and returns 0.
	// Setting the flag it already has is not an error (disabling again
	// still deletes tokens, if any). It returns ErrNotFound if the user
	// does not exist, writing nothing. Nothing else of the user changes.
	SetUserDisabled(ctx context.Context, userID string, disabled bool) (int64, error)

	// MarkUserForResync sets the user's SyncedAt to the Unix epoch
	// (1970-01-01T00:00:00Z), so that their sync is stale under any sync
	// interval and the next bearer sign-in syncs them from IMS again.
	// Profile, memberships, UpdatedAt and Disabled are unchanged. It
	// returns ErrNotFound if the user does not exist.
	MarkUserForResync(ctx context.Context, userID string) error

	// ListLoginTokens returns the user's login tokens, expired ones not
	// yet deleted included, sorted by CreatedAt then id, with SecretHash
	// left nil: listing is for showing, never for checking a secret. An
	// unknown user has none: an empty slice, not an error.
	ListLoginTokens(ctx context.Context, userID string) ([]*LoginToken, error)

	// DeleteLoginTokensOfUser deletes every login token of the user, in one
	// statement, and returns how many it deleted (0 for an unknown user,
	// not an error).
	DeleteLoginTokensOfUser(ctx context.Context, userID string) (int64, error)

	// GetOrCreateSetting returns the value stored under key; when there is
	// none, it stores value and returns it. Of several replicas racing to
	// create the same key, all get the one value that won.
	GetOrCreateSetting(ctx context.Context, key string, value []byte) ([]byte, error)

	// GetSetting returns the value stored under key, or ErrNotFound. It is
	// a read: replicas poll it (the cookie keys) without writing. Like
	// every setting method, it rejects an empty key or one longer than 255
	// bytes with ErrInvalid.
	GetSetting(ctx context.Context, key string) ([]byte, error)

	// CompareAndSwapSetting replaces the value stored under key with value
	// if, and only if, the stored value is old, byte for byte (nil and
	// empty are the same value), and reports whether it did. A stored value
	// other than old is not an error: it returns false and changes nothing,
	// and the caller reads again and decides anew. It returns ErrNotFound
	// if nothing is stored under key (GetOrCreateSetting creates). Of
	// concurrent swaps from one old value, exactly one returns true; a
	// reader sees the old value or the new one, never a mix.
	CompareAndSwapSetting(ctx context.Context, key string, old, value []byte) (bool, error)

	// Ping checks the store is reachable (for readiness).
	Ping(ctx context.Context) error

	// Close releases the store's resources.
	Close() error
}
