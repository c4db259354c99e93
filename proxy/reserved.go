package proxy

import (
	"context"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/gatehouse-proxy/gatehouse/proxy/plumb"
)

// readyTimeout bounds Config.Ready, so that a hanging dependency makes the
// readiness probe fail instead of pile up.
const readyTimeout = 2 * time.Second

// reservedPaths answers the requests under the prefix: they belong to
// Gatehouse and are never authenticated or proxied.
//
// Which requests are under the prefix is decided conservatively, because a
// request Gatehouse proxies is interpreted again by the upstream, which may
// normalize paths differently. A request is reserved when any of these
// readings of its path is the prefix (with or without its trailing slash)
// or starts with it:
//   - the path as net/http decoded it, and the results of decoding it again
//     (up to maxUnescapes rounds in all), so "%2F", "%2e%2e" and double
//     encodings like "%252e%252e" cannot hide a segment;
//   - each of those with "\" read as "/", and with ";parameters" cut from
//     every segment (servlet containers ignore them: "/a/..;/gatehouse");
//   - each of those as is and after path.Clean, so ".." segments and
//     repeated slashes are resolved;
//   - compared regardless of case, for case-insensitive upstreams.
//
// A reserved request is then routed on path.Clean of the decoded path,
// case-sensitively: "/gatehouse/../gatehouse/healthz" and
// "//gatehouse/healthz" are the health check, while "/Gatehouse/healthz",
// "/a/..;/gatehouse/healthz" or a double-encoded path are reserved but
// match no endpoint, so they get 404. Either way nothing is proxied.
//
// The one endpoint that authenticates is forward-auth (Prefix+"auth"),
// which runs the authentication step itself; see forwardAuth.
type reservedPaths struct {
	prefix    string // e.g. "/gatehouse/"
	folded    string // prefix in lower case
	match     *PathMatcher
	ready     func(context.Context) error
	logout    http.Handler
	endpoints map[string]http.Handler // Config.Endpoints
	auth      http.Handler            // forward-auth; see forwardAuth
	jwks      http.Handler            // the assertion's verification keys; nil: none
}

func (rp *reservedPaths) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "" && !strings.HasPrefix(r.URL.Path, "/") {
			// "*" or another form we will not try to interpret.
			plumb.WriteText(w, http.StatusBadRequest, "gatehouse: bad request path")
			return
		}
		if !rp.isReserved(r.URL.Path) {
			next.ServeHTTP(w, r)
			return
		}
		switch path.Clean(r.URL.Path) {
		case rp.prefix + "healthz":
			markProbe(r)
			if allowGet(w, r) {
				plumb.WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
			}
		case rp.prefix + "readyz":
			markProbe(r)
			if allowGet(w, r) {
				rp.readyz(w, r)
			}
		case rp.prefix + "auth":
			if allowGet(w, r) {
				rp.auth.ServeHTTP(w, r)
			}
		case rp.prefix + "jwks.json":
			if rp.jwks == nil {
				plumb.WriteText(w, http.StatusNotFound, "gatehouse: not found")
				return
			}
			if allowGet(w, r) {
				rp.jwks.ServeHTTP(w, r)
			}
		case rp.prefix + "logout":
			if rp.logout == nil {
				plumb.WriteText(w, http.StatusNotFound, "gatehouse: not found")
				return
			}
			rp.logout.ServeHTTP(w, r)
		default:
			if h := rp.endpoint(path.Clean(r.URL.Path)); h != nil {
				h.ServeHTTP(w, r)
				return
			}
			plumb.WriteText(w, http.StatusNotFound, "gatehouse: not found")
		}
	})
}

// markProbe has the access log write the probe's line at debug.
func markProbe(r *http.Request) {
	if rec := plumb.RecordFrom(r.Context()); rec != nil {
		rec.Probe = true
	}
}

// endpoint is the handler of Config.Endpoints for the cleaned path p, or nil.
func (rp *reservedPaths) endpoint(p string) http.Handler {
	name, ok := strings.CutPrefix(p, rp.prefix)
	if !ok {
		return nil
	}
	return rp.endpoints[name]
}

func (rp *reservedPaths) readyz(w http.ResponseWriter, r *http.Request) {
	if rp.ready != nil {
		ctx, cancel := context.WithTimeout(r.Context(), readyTimeout)
		defer cancel()
		if err := rp.ready(ctx); err != nil {
			plumb.WriteJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "error": err.Error()})
			return
		}
	}
	plumb.WriteJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

// isReserved reports whether any reading of p falls under the prefix; see
// PathMatcher.
func (rp *reservedPaths) isReserved(p string) bool { return rp.match.Match(p) }

func allowGet(w http.ResponseWriter, r *http.Request) bool {
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		return true
	}
	w.Header().Set("Allow", "GET, HEAD")
	plumb.WriteText(w, http.StatusMethodNotAllowed, "gatehouse: method not allowed")
	return false
}
