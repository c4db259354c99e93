// Package apicheck is the inbound API check: on configured path prefixes,
// a request must come the way calls to APIs behind IMS's gateway do, with
// a bearer token and the two gateway headers that go with it:
//
//   - it was authenticated by (or came with) an IMS bearer token: a
//     login-token cookie alone is 401, with a Bearer challenge;
//   - x-api-key is the client id of that token;
//   - x-gw-ims-org-id names an organization the caller belongs to: the
//     configured organization (GATEHOUSE_IMS_ORG) when there is one, else
//     any of the user's organizations as of the last sync.
//
// A wrong or missing header is 403 with reason FORBIDDEN and a description
// naming the header. The check runs after the authentication step, which
// puts the *auth.Identity it reads in the request context.
package apicheck

import (
	"errors"
	"fmt"
	"net/http"
	"path"
	"slices"
	"strings"

	"go.uber.org/zap"

	"github.com/gatehouse-proxy/gatehouse/auth"
	"github.com/gatehouse-proxy/gatehouse/proxy"
	"github.com/gatehouse-proxy/gatehouse/proxy/plumb"
)

// The gateway headers the check reads (named in package plumb, which the
// egress listener that sets them shares).
const (
	HeaderAPIKey = plumb.HeaderAPIKey
	HeaderOrgID  = plumb.HeaderOrgID
)

// Config configures the check.
type Config struct {
	// Paths are the path prefixes of the API, e.g. "/api/", "/bin/api/".
	// Each starts with "/". A prefix ending in "/" covers the paths below
	// it and the path without the slash ("/api"); one that does not is
	// read as a whole segment ("/api" covers "/api" and "/api/…", not
	// "/apis"). Matching is conservative, so that an upstream's own reading
	// of a path cannot dodge the check: case-insensitive, after undoing
	// repeated percent-encoding, "\" read as "/", ";parameters" cut from
	// segments, and ".." resolved. Empty: the check is off.
	Paths []string
	// Org is the organization (…@AdobeOrg) the API belongs to. When set,
	// x-gw-ims-org-id must be it and the user must belong to it; empty
	// accepts any organization of the user's.
	Org string
	// Logger receives one line per refusal (never a token). Nil: none.
	Logger *zap.Logger
}

// New returns the check as a middleware, or an error naming a malformed
// prefix. With no Paths it returns a middleware that changes nothing.
func New(cfg Config) (func(http.Handler) http.Handler, error) {
	match, err := Matcher(cfg.Paths)
	if err != nil {
		return nil, err
	}
	if match == nil {
		return func(next http.Handler) http.Handler { return next }, nil
	}
	log := cfg.Logger
	if log == nil {
		log = zap.NewNop()
	}
	c := &checker{match: match, org: strings.TrimSpace(cfg.Org), log: log}
	return c.middleware, nil
}

// Matcher returns the matcher of the API paths (Config.Paths), as the
// check reads them, so that others (the browser sign-in, which leaves API
// paths alone) decide alike. It returns nil when paths names none, and an
// error naming a malformed prefix.
func Matcher(paths []string) (*proxy.PathMatcher, error) {
	var prefixes []string
	for _, p := range paths {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		if !strings.HasPrefix(p, "/") || strings.ContainsAny(p, "?#%;\\") || strings.Contains(p, "..") {
			return nil, fmt.Errorf("apicheck: path prefix %q: want a plain path starting with /, e.g. /api/", p)
		}
		p = strings.ToLower(path.Clean(p))
		if p != "/" {
			p += "/"
		}
		if !slices.Contains(prefixes, p) {
			prefixes = append(prefixes, p)
		}
	}
	if len(prefixes) == 0 {
		return nil, nil
	}
	return proxy.NewPathMatcher(prefixes...), nil
}

type checker struct {
	match *proxy.PathMatcher // read as the reserved paths are: no encoding trick skips the check
	org   string
	log   *zap.Logger
}

func (c *checker) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !c.match.Match(r.URL.Path) {
			next.ServeHTTP(w, r)
			return
		}
		if err := c.check(r); err != nil {
			ae := auth.AsError(err)
			fields := []zap.Field{zap.String("outcome", "refused"), zap.Int("status", ae.Status),
				zap.String("reason", ae.Reason), zap.String("description", ae.Description),
				zap.String("path", r.URL.EscapedPath())}
			if id, ok := auth.FromContext(r.Context()); ok {
				fields = append(fields, zap.String("user", id.UserID), zap.String("client_id", id.ClientID))
			}
			c.log.Info("api check refused", fields...)
			auth.WriteError(w, ae)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// check returns nil when r may pass, else an *auth.Error for the client.
func (c *checker) check(r *http.Request) error {
	id, ok := auth.FromContext(r.Context())
	if !ok {
		// The authentication step runs first and never calls on without
		// an identity: this is a wiring mistake, not the client's.
		return &auth.Error{Status: http.StatusInternalServerError, Description: "internal error",
			Err: errors.New("apicheck: no identity in the request context")}
	}
	if id.ClientID == "" {
		return &auth.Error{Status: http.StatusUnauthorized, Reason: auth.ReasonNoCredential,
			Description: "API paths need a bearer token: send Authorization: Bearer <IMS access token> with the x-api-key and x-gw-ims-org-id headers (a login-token cookie alone is not enough here)"}
	}
	key, err := single(r.Header, HeaderAPIKey)
	switch {
	case err != nil:
		return forbidden(err.Error())
	case key == "":
		return forbidden("x-api-key header is missing: send your client id (the client_id of your access token)")
	case key != id.ClientID:
		return forbidden("x-api-key header does not match the token's client id: send the client id your access token was issued to")
	}
	org, err := single(r.Header, HeaderOrgID)
	switch {
	case err != nil:
		return forbidden(err.Error())
	case org == "":
		return forbidden("x-gw-ims-org-id header is missing: send your organization id (…@AdobeOrg)")
	case c.org != "" && org != c.org:
		return forbidden(fmt.Sprintf("x-gw-ims-org-id header names an organization this service does not serve: send %s", c.org))
	case !slices.Contains(id.Orgs, org):
		return forbidden(fmt.Sprintf("x-gw-ims-org-id header names %s, an organization you do not belong to (as of your last sign-in)", org))
	}
	return nil
}

func forbidden(description string) *auth.Error {
	return &auth.Error{Status: http.StatusForbidden, Reason: auth.ReasonForbidden, Description: description}
}

// single is the one value of header name, "" when absent. Several values
// (or a comma-joined list) are refused: which one counts would be a guess.
func single(h http.Header, name string) (string, error) {
	vs := h.Values(name)
	switch {
	case len(vs) == 0:
		return "", nil
	case len(vs) > 1 || strings.Contains(vs[0], ","):
		return "", fmt.Errorf("%s header is sent more than once: send one value", strings.ToLower(name))
	}
	return strings.TrimSpace(vs[0]), nil
}
