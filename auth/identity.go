// Package auth holds what every authentication step shares: the identity a
// request was authenticated as, and the error type that becomes the client's
// answer. The steps themselves live in sub-packages (ims, bearer, provision,
// signin); this package depends on none of them.
package auth

import "context"

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
}

type identityKey struct{}

// WithIdentity returns a copy of ctx carrying id.
func WithIdentity(ctx context.Context, id *Identity) context.Context {
	return context.WithValue(ctx, identityKey{}, id)
}

// FromContext returns the identity stored by WithIdentity, if any.
func FromContext(ctx context.Context) (*Identity, bool) {
	id, ok := ctx.Value(identityKey{}).(*Identity)
	return id, ok && id != nil
}
