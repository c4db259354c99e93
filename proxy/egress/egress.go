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
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/gatehouse-proxy/gatehouse/auth/techacct"
	"github.com/gatehouse-proxy/gatehouse/proxy"
	"github.com/gatehouse-proxy/gatehouse/proxy/plumb"
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
	// Observe, when set, is called once per request after its access-log
	// line (see plumb.AccessLogConfig.Observe): the metrics.
	Observe func(r *http.Request, rec *plumb.Record, status int, d time.Duration)
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
			h[plumb.HeaderAPIKey] = []string{clientID}
			h[plumb.HeaderOrgID] = []string{orgID}
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
	// The same plumbing as the proxy listener's: access log and panic
	// recovery outermost, then the request id.
	return plumb.AccessLog(plumb.AccessLogConfig{
		Logger: log, Message: "egress request", InternalError: "gatehouse egress: internal error",
		Observe: cfg.Observe,
	})(plumb.RequestID(rp)), nil
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
		case c == plumb.HeaderAPIKey, c == plumb.HeaderOrgID, c == "Authorization":
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
		rec := plumb.RecordFrom(r.Context())
		fields := []zap.Field{zap.Error(err), zap.String("upstream", upstreamHost), zap.String("request_id", rec.RequestID)}
		if errors.Is(r.Context().Err(), context.Canceled) {
			rec.ClientGone = true
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
			plumb.WriteText(w, http.StatusServiceUnavailable, strings.TrimSpace(bodyNoToken+msg))
			return
		}
		var ne net.Error
		if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
			log.Warn("API timed out", fields...)
			plumb.WriteText(w, http.StatusGatewayTimeout, bodyUpstreamTimeout)
			return
		}
		log.Warn("API unavailable", fields...)
		plumb.WriteText(w, http.StatusBadGateway, bodyUpstreamUnavailable)
	}
}
