package proxy

import (
	"net/http"
	"strings"

	"github.com/gatehouse-proxy/gatehouse/auth"
	"github.com/gatehouse-proxy/gatehouse/proxy/idheader"
	"github.com/gatehouse-proxy/gatehouse/proxy/plumb"
)

// The headers through which the upstream learns who the user is, and the
// request id shared with it. The upstream trusts the identity headers, so
// only Gatehouse may set them.
//
// Their values are encoded as package idheader describes: decode them with
// idheader.Decode and idheader.DecodeGroups.
const (
	HeaderUser      = "X-Forwarded-User"
	HeaderEmail     = "X-Forwarded-Email"
	HeaderGroups    = "X-Forwarded-Groups"
	HeaderRequestID = plumb.HeaderRequestID
	// HeaderAssertion carries the signed identity assertion (package
	// auth/assertion) when Config.Assertion is set.
	HeaderAssertion = "X-Gatehouse-Assertion"
)

// stripIdentityHeaders removes every client-sent header that the upstream
// could take for one of ours, before any other step sees the request.
// Go canonicalizes header names, so case variants arrive as one key; but
// underscores are kept ("X_Forwarded_User"), and upstreams that map "_" to
// "-" (CGI, some Java and Python servers) would read those as ours, so
// they go too. Declared trailers are cleaned as well.
//
// Only a request that carries such a header gets a cleaned copy of its
// headers: the others, all honest traffic, pass through without one.
func stripIdentityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hasIdentityHeader(r.Header) || hasIdentityHeader(r.Trailer) {
			r = r.Clone(r.Context())
			deleteIdentityHeaders(r.Header)
			deleteIdentityHeaders(r.Trailer)
		}
		next.ServeHTTP(w, r)
	})
}

func hasIdentityHeader(h http.Header) bool {
	for name := range h {
		if isIdentityHeader(name) {
			return true
		}
	}
	return false
}

func deleteIdentityHeaders(h http.Header) {
	for name := range h {
		if isIdentityHeader(name) {
			delete(h, name)
		}
	}
}

func isIdentityHeader(name string) bool {
	return sameHeaderName(name, "x-forwarded-user") || sameHeaderName(name, "x-forwarded-email") ||
		sameHeaderName(name, "x-forwarded-groups") || sameHeaderName(name, "x-gatehouse-assertion")
}

// sameHeaderName reports whether name is want (lower case, with '-') when
// compared regardless of case and with '_' read as '-'. It runs for every
// header of every request, so it allocates nothing.
func sameHeaderName(name, want string) bool {
	if len(name) != len(want) {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c == '_':
			c = '-'
		case 'A' <= c && c <= 'Z':
			c += 'a' - 'A'
		}
		if c != want[i] {
			return false
		}
	}
	return true
}

// requireIdentity runs after authentication. A request that reaches it
// without an identity is refused: should an authentication step ever call
// next by mistake, nothing unauthenticated is forwarded. Every identity
// can be sent, whatever bytes it holds, because upstreamHeaders encodes it
// (see package idheader); the headers themselves are written on the
// outgoing request.
func requireIdentity(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, ok := auth.FromContext(r.Context())
		if !ok || id.UserID == "" {
			auth.WriteError(w, auth.Unauthorized(auth.ReasonNoCredential, "authentication required", nil))
			return
		}
		plumb.RecordFrom(r.Context()).User = id.UserID
		next.ServeHTTP(w, r)
	})
}

// upstreamHeaders is the header policy for the upstream, applied to the
// outgoing request (ReverseProxy's own copy, so the client's request is
// never modified): it carries the request id, tells the upstream who the
// user is, and drops the client's credentials, which are Gatehouse's
// business, not the upstream's.
type upstreamHeaders struct {
	passAuthorization bool
	passCookie        bool
	cookieName        string
	assert            func(*auth.Identity) string // Config.Assertion; nil: none
}

func (p upstreamHeaders) apply(out *http.Request, in *http.Request) {
	h := out.Header
	// Credentials go first, so that the map has room for what is added.
	if !p.passAuthorization {
		delete(h, "Authorization")
	}
	if !p.passCookie {
		removeCookie(h, p.cookieName)
	}
	// One backing array for the values, as Header.Clone does: the request
	// id, three identity headers and the assertion.
	vals := make([]string, 0, 5)
	set := func(name, value string) {
		if value == "" {
			delete(h, name)
			return
		}
		vals = append(vals, value)
		h[name] = vals[len(vals)-1 : len(vals) : len(vals)]
	}
	set(HeaderRequestID, plumb.RecordFrom(in.Context()).RequestID)
	if id, ok := auth.FromContext(in.Context()); ok {
		writeIdentity(id, p.assert, set)
	}
}

// writeIdentity writes the headers that tell who the user is through set,
// which sends a header or, for "", none: on the request to the upstream
// and on forward-auth's answer alike, so that both always carry the same
// identity, and, when assert is not nil, its signed assertion. set must
// not keep the function: it runs on every proxied request, and a set that
// escaped would cost an allocation.
func writeIdentity(id *auth.Identity, assert func(*auth.Identity) string, set func(name, value string)) {
	// Encoded, so that no name can pass for two groups, lose the spaces
	// at its ends in transit, or break the header.
	// Once per Identity: the sign-in step shares one per cached user.
	enc := id.Encoded(encodeIdentity)
	set(HeaderUser, enc.User)
	set(HeaderEmail, enc.Email)
	set(HeaderGroups, enc.Groups)
	if assert != nil {
		// The client's was stripped on the way in; "" (signing failed)
		// sends none, so an upstream relying on it refuses the request.
		set(HeaderAssertion, assert(id))
	}
}

func encodeIdentity(id *auth.Identity) auth.EncodedHeaders {
	return auth.EncodedHeaders{User: idheader.Encode(id.UserID), Email: idheader.Encode(id.Email),
		Groups: idheader.EncodeGroups(id.Groups)}
}

// validHeaderValue reports whether s can be sent as a header value: no
// control characters other than tab.
func validHeaderValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < ' ' && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

// removeCookie drops the cookies called name from the Cookie headers and
// keeps the others byte for byte (re-encoding them through http.Cookie
// would drop or alter values it considers invalid). The name is matched
// regardless of case, because some servers match cookie names that way.
func removeCookie(h http.Header, name string) {
	lines := h.Values("Cookie")
	if len(lines) == 0 {
		return
	}
	var kept []string
	for _, line := range lines {
		for pair := range strings.SplitSeq(line, ";") {
			pair = strings.TrimSpace(pair)
			if pair == "" {
				continue
			}
			n, _, _ := strings.Cut(pair, "=")
			if strings.EqualFold(strings.TrimSpace(n), name) {
				continue
			}
			kept = append(kept, pair)
		}
	}
	if len(kept) == 0 {
		h.Del("Cookie")
		return
	}
	h.Set("Cookie", strings.Join(kept, "; "))
}
