package proxy

import (
	"errors"
	"net/http"
	"strings"

	"go.uber.org/zap"

	"github.com/gatehouse-proxy/gatehouse/auth"
)

// The headers through which the upstream learns who the user is, and the
// request id shared with it. The upstream trusts the identity headers, so
// only Gatehouse may set them.
const (
	HeaderUser      = "X-Forwarded-User"
	HeaderEmail     = "X-Forwarded-Email"
	HeaderGroups    = "X-Forwarded-Groups"
	HeaderRequestID = "X-Request-Id"
)

// stripIdentityHeaders deletes every client-sent header that the upstream
// could take for one of ours, before any other step sees the request.
// Go canonicalizes header names, so case variants arrive as one key; but
// underscores are kept ("X_Forwarded_User"), and upstreams that map "_" to
// "-" (CGI, some Java and Python servers) would read those as ours, so
// they go too. Declared trailers are cleaned as well.
func stripIdentityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for _, h := range []http.Header{r.Header, r.Trailer} {
			for name := range h {
				if isIdentityHeader(name) {
					delete(h, name)
				}
			}
		}
		next.ServeHTTP(w, r)
	})
}

func isIdentityHeader(name string) bool {
	return sameHeaderName(name, "x-forwarded-user") || sameHeaderName(name, "x-forwarded-email") ||
		sameHeaderName(name, "x-forwarded-groups")
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

// injectIdentity runs after authentication. It tells the upstream who the
// user is and removes the client's credentials, which are Gatehouse's
// business, not the upstream's. A request that reaches it without an
// identity is refused: should an authentication step ever call next by
// mistake, nothing unauthenticated is forwarded.
func injectIdentity(log *zap.Logger, passAuthorization, passCookie bool, cookieName string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			id, ok := auth.FromContext(r.Context())
			if !ok || id.UserID == "" {
				auth.WriteError(w, auth.Unauthorized(auth.ReasonNoCredential, "authentication required", nil))
				return
			}
			groups := strings.Join(id.Groups, ",")
			if !validHeaderValue(id.UserID) || !validHeaderValue(id.Email) || !validHeaderValue(groups) {
				// The transport would refuse the request anyway; say why.
				log.Error("identity cannot be sent in headers",
					zap.String("request_id", recordFrom(r.Context()).requestID))
				auth.WriteError(w, auth.AsError(errInvalidIdentity))
				return
			}
			recordFrom(r.Context()).userID = id.UserID

			r.Header.Set(HeaderUser, id.UserID)
			setOrDelete(r.Header, HeaderEmail, id.Email)
			setOrDelete(r.Header, HeaderGroups, groups)
			if !passAuthorization {
				r.Header.Del("Authorization")
			}
			if !passCookie {
				removeCookie(r.Header, cookieName)
			}
			next.ServeHTTP(w, r)
		})
	}
}

var errInvalidIdentity = errors.New("identity contains characters not allowed in a header")

func setOrDelete(h http.Header, name, value string) {
	if value == "" {
		h.Del(name)
		return
	}
	h.Set(name, value)
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
