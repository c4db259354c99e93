package proxy

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/gatehouse-proxy/gatehouse/auth"
	"github.com/gatehouse-proxy/gatehouse/proxy/plumb"
)

// ReasonBadForwardedRequest: 400, a forward-auth request whose
// original-method or original-URI header cannot be used (see
// originalRequest).
const ReasonBadForwardedRequest = "BAD_FORWARDED_REQUEST"

// The headers through which a front proxy tells the forward-auth endpoint
// which request it is asking about: Traefik's forwardAuth sends the first
// pair, nginx's auth_request the second (the documented configuration sets
// them from $request_method and $request_uri).
const (
	HeaderForwardedMethod = "X-Forwarded-Method"
	HeaderForwardedURI    = "X-Forwarded-Uri"
	HeaderOriginalMethod  = "X-Original-Method"
	HeaderOriginalURI     = "X-Original-Uri"
)

// Limits on the original request's method and URI. nginx's default
// request line buffer is 8 KiB, so no URI it accepted is longer.
const (
	maxOriginalURILen    = 8 << 10
	maxOriginalMethodLen = 32
)

// forwardAuth is the chain of Prefix+"auth", the endpoint for front
// proxies (nginx auth_request, Traefik forwardAuth) that ask Gatehouse
// whether to let a request through instead of sending it through
// Gatehouse. The request is authenticated by the same step as a proxied
// one, as the request it stands for (originalRequest), so that the API
// path rules apply; then, instead of forwarding, the identity is answered
// in headers (answerIdentity). A refusal is the authentication step's
// own answer: the same status, WWW-Authenticate, X-Reason and body.
//
// With browser sign-in on (b not nil), a 401 to a browser's navigation
// also names the sign-in address (HeaderSignIn), for the front proxy to
// redirect to.
func forwardAuth(authenticate func(http.Handler) http.Handler, assert func(*auth.Identity) string, b BrowserSignIn) http.Handler {
	if b != nil {
		authenticate = hintBrowsers(authenticate, b)
	}
	return chain(answerIdentity(assert), originalRequest, authenticate, requireIdentity)
}

// answerIdentity is forward-auth's 200: the identity in the headers a
// proxied request would carry upstream, for the front proxy to copy onto
// its request to the backend. A Set-Cookie written by the authentication
// step (a login token issued or refreshed) is already in w's headers.
// assert, when not nil, adds the signed assertion, as on a proxied request.
func answerIdentity(assert func(*auth.Identity) string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, _ := auth.FromContext(r.Context()) // requireIdentity made sure there is one
		h := w.Header()
		writeIdentity(id, assert, func(name, value string) {
			if value == "" {
				delete(h, name)
				return
			}
			h[name] = []string{value}
		})
		h.Set("Cache-Control", "no-store")
		plumb.RecordFrom(r.Context()).IdentityAnswered = true
		w.WriteHeader(http.StatusOK)
	})
}

// originalRequest makes the forward-auth request look like the request the
// front proxy asks about: its method and URI are taken from
// X-Forwarded-Method and X-Forwarded-Uri, or X-Original-Method and
// X-Original-URI, so that the steps after it (the API check) judge that
// request's path. Without them it stands for GET /.
//
// What must not be trusted: these headers only steer the path rules;
// identity comes from the credentials alone, as on the proxy path. Each
// front proxy overwrites its own pair, but passes the other pair on as the
// client sent it, so a client behind nginx could add X-Forwarded-Uri (and
// one behind Traefik X-Original-URI) to dodge an API path. So when both
// pairs are present they must agree; a value sent twice, one that is not
// a path (absolute URIs included), too long, or with control characters
// is refused with 400 as well.
func originalRequest(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		method, uri, err := original(r.Header)
		if err != nil {
			auth.WriteError(w, &auth.Error{Status: http.StatusBadRequest, Reason: ReasonBadForwardedRequest,
				Description: err.Error()})
			return
		}
		u, err := url.ParseRequestURI(uri)
		if err != nil || u.Scheme != "" || u.Host != "" {
			auth.WriteError(w, &auth.Error{Status: http.StatusBadRequest, Reason: ReasonBadForwardedRequest,
				Description: "the original URI (X-Forwarded-Uri or X-Original-URI) is not a valid request path"})
			return
		}
		orig := *r // shallow: headers, context and body are shared, and nobody edits them
		orig.Method, orig.URL, orig.RequestURI = method, u, uri
		next.ServeHTTP(w, &orig)
	})
}

// original returns the method and URI the forward-auth request stands for.
func original(h http.Header) (method, uri string, err error) {
	method, err = oneOf(h, HeaderForwardedMethod, HeaderOriginalMethod, maxOriginalMethodLen)
	if err != nil {
		return "", "", err
	}
	if method == "" {
		method = http.MethodGet
	} else if !validToken(method) {
		return "", "", fmt.Errorf("the original method (%s or %s) is not an HTTP method", HeaderForwardedMethod, HeaderOriginalMethod)
	}
	uri, err = oneOf(h, HeaderForwardedURI, HeaderOriginalURI, maxOriginalURILen)
	if err != nil {
		return "", "", err
	}
	if uri == "" {
		return method, "/", nil
	}
	if uri[0] != '/' {
		return "", "", fmt.Errorf("the original URI (%s or %s) must be a path starting with /", HeaderForwardedURI, HeaderOriginalURI)
	}
	return method, uri, nil
}

// oneOf is the value the two headers a and b give, "" when neither is
// sent. Each may be sent once; when both are, they must be equal.
func oneOf(h http.Header, a, b string, limit int) (string, error) {
	va, err := single(h, a, limit)
	if err != nil {
		return "", err
	}
	vb, err := single(h, b, limit)
	if err != nil {
		return "", err
	}
	switch {
	case va == "":
		return vb, nil
	case vb != "" && va != vb:
		return "", fmt.Errorf("%s and %s disagree: send one of them (the front proxy must overwrite what the client sent)", a, b)
	}
	return va, nil
}

// single is the one value of header name, "" when absent.
func single(h http.Header, name string, limit int) (string, error) {
	vs := h.Values(name)
	switch {
	case len(vs) == 0:
		return "", nil
	case len(vs) > 1:
		return "", fmt.Errorf("%s is sent more than once: send one value", name)
	case len(vs[0]) > limit:
		return "", fmt.Errorf("%s is longer than %d bytes", name, limit)
	case !validHeaderValue(vs[0]) || strings.IndexByte(vs[0], '\t') >= 0:
		return "", fmt.Errorf("%s contains control characters", name)
	}
	return vs[0], nil
}
