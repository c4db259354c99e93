package signin

import (
	"hash/maphash"
	"sync/atomic"

	"github.com/gatehouse-proxy/gatehouse/auth"
	"github.com/gatehouse-proxy/gatehouse/session"
)

// identities keeps, for recently seen users, the *auth.Identity last built
// from their session.User, so that a cached user's requests share one
// Identity (and with it the identity headers encoded once, see
// auth.Identity.Encoded) instead of building and encoding it anew on
// every request.
//
// An entry is used only for the very *session.User it was built from:
// the session layer hands out one read-only *User per store read, and a
// user who is re-synced, changed or revoked is read again (or refused)
// there, so a changed user's next request brings a new *User and gets a
// new Identity. Nothing here decides who is signed in: the identity is
// looked up only after the cookie or bearer was validated.
//
// It is direct-mapped by user id: bounded, lock-free, and a collision or a
// user switching between cookie and bearer only costs a rebuild.
type identities struct {
	seed  maphash.Seed
	slots [identitySlots]atomic.Pointer[identityEntry]
}

// identitySlots bounds the users remembered; a power of two.
const identitySlots = 4096

type identityEntry struct {
	user *session.User
	id   *auth.Identity
}

func newIdentities() *identities { return &identities{seed: maphash.MakeSeed()} }

// get returns the identity of u for a request authenticated by m with a
// bearer of clientID ("" for none).
func (c *identities) get(u *session.User, m auth.Method, clientID string) *auth.Identity {
	slot := &c.slots[maphash.String(c.seed, u.ID)&(identitySlots-1)]
	if e := slot.Load(); e != nil && e.user == u && e.id.Method == m && e.id.ClientID == clientID {
		return e.id
	}
	id := identity(u, m, clientID)
	slot.Store(&identityEntry{user: u, id: id})
	return id
}
