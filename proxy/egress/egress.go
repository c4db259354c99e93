// Package egress is Gatehouse's outbound listener: the content backend
// calls an API behind IMS's gateway through it, and Gatehouse adds what
// the gateway insists on, from the technical account:
//
//	Authorization: Bearer <access token>
//	x-api-key: <client id>
//	x-gw-ims-org-id: <org id>
//
// overwriting any values the backend sent. Bodies stream both ways. When
// the API answers 401 the token is renewed once and a request that is safe
// to repeat is sent again (see New). When no token can be had, the backend
// gets 503 with the reason as a short text body.
//
// The listener holds the technical account's credentials for whoever can
// reach it: bind it to loopback (127.0.0.1:8081), never to a public
// address.
package egress

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"runtime/debug"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/gatehouse-proxy/gatehouse/auth/techacct"
	"github.com/gatehouse-proxy/gatehouse/proxy"
)

// The headers Gatehouse sets on every call.
const (
	HeaderAPIKey = "X-Api-Key"
	HeaderOrgID  = "X-Gw-Ims-Org-Id"
)

// Config configures the handler New returns.
type Config struct {
	// Upstream is the API's base URL, e.g. https://cloudmanager.adobe.io:
	// scheme http or https, a host, optionally a base path that request
	// paths are appended to. Required.
	Upstream *url.URL
	// Tokens hands out the technical account's access token and renews
	// it. Required. Run it in the background (Source.Run) so that tokens
	// are renewed before they expire rather than on a caller's time.
	Tokens *techacct.Source
	// Transport sets up the connection pool to the API.
	Transport proxy.Transport
	// Logger receives one access line per request and upstream errors,
	// never a token. Nil: no logs.
	Logger *zap.Logger
}

// New returns the egress handler: an httputil.ReverseProxy whose Rewrite
// only points the request at Upstream and sets x-api-key and
// x-gw-ims-org-id, and whose transport sets Authorization and handles a
// 401 (see retryTransport):
//
//   - The token is renewed once (Source.Renew with the token the API
//     refused; concurrent refusals share one renewal).
//   - The request is sent once more with the new token when it is safe to
//     repeat: its method is idempotent (GET, HEAD, OPTIONS, TRACE, PUT,
//     DELETE) and it has no body, or a body of a declared Content-Length
//     of at most MaxReplayBody, which is then read into memory before the
//     first attempt. Larger bodies, bodies of unknown length, and other
//     methods (POST, PATCH) are streamed, never buffered; their 401 goes
//     back to the caller, and the renewed token serves its next call.
//   - A 401 to a token renewed less than renewGuard ago because of a 401
//     is returned without renewing again: an API that refuses every token
//     must not turn each call into a request to IMS.
func New(cfg Config) (http.Handler, error) {
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("egress: %w", err)
	}
	log := cfg.Logger
	if log == nil {
		log = zap.NewNop()
	}
	upstream := cfg.Upstream
	orgID, clientID := cfg.Tokens.OrgID(), cfg.Tokens.ClientID()
	rp := &httputil.ReverseProxy{
		// Rewrite only rewrites. The backend's X-Forwarded-* are already
		// dropped by ReverseProxy, and none are added: the API needs no
		// view of the backend's network.
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(upstream)
			h := pr.Out.Header
			h.Del("Authorization") // set by the transport, with the current token
			h[HeaderAPIKey] = []string{clientID}
			h[HeaderOrgID] = []string{orgID}
			delNonCanonical(h)
		},
		Transport: &retryTransport{
			next:   proxy.NewTransport(cfg.Transport),
			tokens: cfg.Tokens,
			log:    log,
			now:    time.Now,
		},
		ErrorHandler: errorHandler(log, upstream.Host),
		ErrorLog:     zap.NewStdLog(log.With(zap.String("upstream", upstream.Host))),
	}
	return accessLog(log, rp), nil
}

func (cfg Config) validate() error {
	u := cfg.Upstream
	switch {
	case u == nil:
		return errors.New("Upstream is required")
	case u.Scheme != "http" && u.Scheme != "https":
		return fmt.Errorf("Upstream must be an http or https URL, got scheme %q", u.Scheme)
	case u.Host == "":
		return errors.New("Upstream must have a host")
	case u.User != nil:
		return errors.New("Upstream must not contain credentials")
	case u.RawQuery != "" || u.Fragment != "":
		return errors.New("Upstream must not have a query or fragment")
	case cfg.Tokens == nil:
		return errors.New("Tokens is required")
	}
	return nil
}

// delNonCanonical removes header keys that are the gateway headers or
// Authorization in a spelling other than the canonical one (a Header built
// by hand, not parsed from the wire, may hold them), so that exactly one
// value of each reaches the API.
func delNonCanonical(h http.Header) {
	for k := range h {
		switch c := http.CanonicalHeaderKey(k); {
		case c == k:
		case c == HeaderAPIKey, c == HeaderOrgID, c == "Authorization":
			delete(h, k)
		}
	}
}

// Gatehouse's own answers on the egress listener.
const (
	bodyUpstreamTimeout     = "gatehouse egress: the API timed out"
	bodyUpstreamUnavailable = "gatehouse egress: the API is unavailable"
	bodyNoToken             = "gatehouse egress: no access token for the technical account: "
)

// errorHandler answers when no response came from the API:
//   - the caller went away: nothing to answer; 499 in the access log;
//   - no token could be had: 503 with the reason (techacct.Error's message,
//     which names the setting to check; never a secret);
//   - the API was too slow: 504; anything else: 502.
func errorHandler(log *zap.Logger, upstreamHost string) func(http.ResponseWriter, *http.Request, error) {
	return func(w http.ResponseWriter, r *http.Request, err error) {
		rec := recordFrom(r.Context())
		fields := []zap.Field{zap.Error(err), zap.String("upstream", upstreamHost)}
		if rec.requestID != "" {
			fields = append(fields, zap.String("request_id", rec.requestID))
		}
		if errors.Is(r.Context().Err(), context.Canceled) {
			rec.clientGone = true
			log.Debug("client went away during the API round trip", fields...)
			return
		}
		var te *tokenError
		if errors.As(err, &te) {
			msg := te.Error()
			var e *techacct.Error
			if errors.As(err, &e) {
				msg = e.Message
				fields = append(fields, zap.String("code", e.Code))
			}
			log.Warn("no technical account token for an API call", fields...)
			if e != nil && e.Temporary() {
				w.Header().Set("Retry-After", "5")
			}
			writeText(w, http.StatusServiceUnavailable, bodyNoToken+msg)
			return
		}
		var ne net.Error
		if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
			log.Warn("API timed out", fields...)
			writeText(w, http.StatusGatewayTimeout, bodyUpstreamTimeout)
			return
		}
		log.Warn("API unavailable", fields...)
		writeText(w, http.StatusBadGateway, bodyUpstreamUnavailable)
	}
}

func writeText(w http.ResponseWriter, status int, msg string) {
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(strings.TrimSpace(msg) + "\n"))
}

// record is what the access line learns from further down: the transport
// and the error handler see the outbound request, whose context carries a
// pointer to it.
type record struct {
	requestID  string
	renewed    bool // a 401 made the transport renew the token
	retried    bool // and the request was sent again
	clientGone bool
}

type recordKey struct{}

func recordFrom(ctx context.Context) *record {
	if rec, ok := ctx.Value(recordKey{}).(*record); ok {
		return rec
	}
	return &record{}
}

// maxRequestIDLen bounds a caller's X-Request-Id in the access log.
const maxRequestIDLen = 128

// accessLog writes one line per request (the path without its query,
// which may carry secrets; never a header) and turns a panic into a 500.
func accessLog(log *zap.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &record{requestID: sanitizeRequestID(r.Header.Get("X-Request-Id"))}
		rw := proxy.NewResponseRecorder(w)
		r = r.WithContext(context.WithValue(r.Context(), recordKey{}, rec))
		defer func() {
			p := recover()
			aborted := p == http.ErrAbortHandler
			if p != nil && !aborted {
				log.Error("panic while handling an egress request", zap.Any("panic", p), zap.ByteString("stack", debug.Stack()))
				if rw.Started() {
					aborted = true
				} else {
					writeText(rw, http.StatusInternalServerError, "gatehouse egress: internal error")
				}
			}
			status := rw.LogStatus(r, rec.clientGone, aborted)
			fields := []zap.Field{
				zap.String("method", r.Method),
				zap.String("path", r.URL.EscapedPath()),
				zap.Int("status", status),
				zap.Int64("bytes", rw.Bytes()),
				zap.Duration("duration", time.Since(start)),
				zap.String("remote", r.RemoteAddr),
			}
			if rec.requestID != "" {
				fields = append(fields, zap.String("request_id", rec.requestID))
			}
			if rec.renewed {
				fields = append(fields, zap.Bool("token_renewed", true), zap.Bool("retried", rec.retried))
			}
			if aborted {
				fields = append(fields, zap.Bool("aborted", true))
			}
			log.Info("egress request", fields...)
			if aborted {
				panic(http.ErrAbortHandler)
			}
		}()
		next.ServeHTTP(rw, r)
	})
}

// sanitizeRequestID keeps a caller's request id only when it is 1 to 128
// characters of [A-Za-z0-9._-], as the main proxy does.
func sanitizeRequestID(id string) string {
	if id == "" || len(id) > maxRequestIDLen {
		return ""
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return ""
		}
	}
	return id
}
