// Package auth holds what every authentication step shares: the identity a
// request was authenticated as, and the error type that becomes the client's
// answer. The steps themselves live in sub-packages (ims, bearer, provision,
// signin); this package depends on none of them.
package auth

import (
	"context"
	"net/http"
	"sync/atomic"
)

// Method says which credential authenticated a request.
type Method string

// The credentials Gatehouse accepts.
const (
	MethodBearer Method = "bearer"
	MethodCookie Method = "cookie"
)

// Identity is who a request was authenticated as. It is what the upstream
// learns through the X-Forwarded-* headers.
type Identity struct {
	// UserID is the IMS user id (for example "7F8F…@AdobeID"); it is the
	// user's external id in the store.
	UserID string
	Email  string
	Name   string
	// Groups are the local group names the user belongs to, IMS-synced and
	// local memberships alike, sorted.
	Groups []string
	Method Method
	// ClientID is the client id of the IMS access token that authenticated
	// the request or came with it (a bearer for the same user as a valid
	// login-token cookie), e.g. "cc-europa-desktop_10_0"; "" when no bearer
	// token did (a cookie alone). The inbound API check compares x-api-key
	// with it.
	ClientID string
	// Orgs are the ids of the IMS organizations the user belonged to at the
	// last sync ("…@AdobeOrg"), sorted. Shared with the session layer: do
	// not modify.
	Orgs []string

	// encoded memoizes the identity headers (see Encoded).
	encoded atomic.Pointer[EncodedHeaders]
}

// EncodedHeaders are an identity's header values as the proxy sends them
// (X-Forwarded-User, -Email and -Groups, encoded by package
// proxy/idheader).
type EncodedHeaders struct{ User, Email, Groups string }

// Encoded returns id's header values, computed by encode on the first
// call and kept with id. An Identity is read only once built, and the
// sign-in step shares one per cached user, so a user's headers are
// encoded once rather than on every request; a changed user gets a new
// Identity. encode must be the same function on every call (concurrent
// first calls may each run it, and either result is kept).
func (id *Identity) Encoded(encode func(*Identity) EncodedHeaders) *EncodedHeaders {
	if e := id.encoded.Load(); e != nil {
		return e
	}
	e := encode(id)
	id.encoded.Store(&e)
	return &e
}

type identityKey struct{}

// WithIdentity returns a copy of ctx carrying id.
func WithIdentity(ctx context.Context, id *Identity) context.Context {
	return context.WithValue(ctx, identityKey{}, id)
}

// FromContext returns the identity stored by WithIdentity, or else the one
// SetIdentity put in the request's Slot, if any.
func FromContext(ctx context.Context) (*Identity, bool) {
	if id, ok := ctx.Value(identityKey{}).(*Identity); ok && id != nil {
		return id, true
	}
	if s, ok := ctx.Value(SlotKey{}).(*Slot); ok && s.id != nil {
		return s.id, true
	}
	return nil, false
}

// Slot is a place for a request's identity, put in its context before
// authentication (the access log does, in the same allocation as its own
// record), so that the authentication step can hand the identity on
// without copying the request and growing its context: two allocations
// and a few hundred bytes on every authenticated request. A Slot is
// filled once, on the request's goroutine; whatever shares the context
// sees the identity from then on.
type Slot struct{ id *Identity }

// SlotKey is the context key of a *Slot. A context type that carries a
// Slot in its own allocation answers Value(SlotKey{}) with it; otherwise
// use WithSlot.
type SlotKey struct{}

// WithSlot returns a copy of ctx carrying s.
func WithSlot(ctx context.Context, s *Slot) context.Context {
	return context.WithValue(ctx, SlotKey{}, s)
}

// SetIdentity returns r carrying id: r itself, with id in its context's
// Slot, when it has an empty one; otherwise (no Slot, or one already
// filled by an earlier authentication of the same request) a copy of r
// whose context carries id (WithIdentity), which FromContext prefers.
func SetIdentity(r *http.Request, id *Identity) *http.Request {
	if s, ok := r.Context().Value(SlotKey{}).(*Slot); ok && s != nil && s.id == nil {
		s.id = id
		return r
	}
	return r.WithContext(WithIdentity(r.Context(), id))
}
