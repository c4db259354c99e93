package proxy

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httputil"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/gatehouse-proxy/gatehouse/auth"
	"github.com/gatehouse-proxy/gatehouse/proxy/plumb"
)

// newForwarder returns the last step of the chain, which sends the
// authenticated request to the upstream.
//
// Decisions:
//   - Host: the upstream gets the Host the client asked for, not its own
//     address. AEM behind a sidecar builds absolute links, redirects and
//     Sling mappings from Host; the upstream's address is only where the
//     connection goes. X-Forwarded-Host and -Proto are set as well, and
//     X-Forwarded-For holds the peer address only: a chain sent by the
//     client is not trusted (ReverseProxy drops it before Rewrite).
//   - FlushInterval stays 0. ReverseProxy already flushes after every
//     write for responses that may be streams (unknown length or
//     text/event-stream), so server-sent events and chunked streams are
//     not delayed. Responses of known length are downloads, where
//     throughput matters: they go through a 32 KiB copy buffer and the
//     server's small write buffer, so nothing accumulates, and flushing
//     after every read would only add system calls.
//   - Bodies are streamed both ways by ReverseProxy; nothing here reads a
//     body. Its 32 KiB copy buffers come from a pool: otherwise each
//     request allocates one, the largest allocation of a proxied request
//     by far.
func newForwarder(cfg Config, headers upstreamHeaders, log *zap.Logger) http.Handler {
	upstream := cfg.Upstream
	var transport http.RoundTripper = NewTransport(cfg.Transport)
	if upstream.Scheme == "http" && !cfg.Transport.DisableDirect {
		transport = newDirectTransport(transport, upstream.Host, cfg.Transport.withDefaults())
	}
	if cfg.Observe != nil {
		transport = timedTransport{transport}
	}
	return &httputil.ReverseProxy{
		// Rewrite only rewrites: authentication and the decision to forward
		// happen earlier in the chain, where they can answer the request.
		// Headers are edited here, on ReverseProxy's copy of the request,
		// so that no step has to copy the client's headers to edit them.
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(upstream)
			pr.Out.Host = pr.In.Host
			pr.SetXForwarded()
			headers.apply(pr.Out, pr.In)
			if pr.Out.Body != nil && pr.Out.Body != http.NoBody {
				pr.Out.Body = clientBody{pr.Out.Body}
			}
		},
		Transport:      transport,
		BufferPool:     NewBufferPool(),
		ModifyResponse: modifyResponse(cfg.CookieName),
		ErrorHandler:   errorHandler(log, upstream.Host),
		ErrorLog:       zap.NewStdLog(log.With(zap.String("upstream", upstream.Host))),
	}
}

// timedTransport notes in the request's record when the request was
// handed to the upstream and how long the upstream took to answer, so that
// the metrics can tell Gatehouse's own time from the upstream's. It is
// used only when there is an observer: two clock reads and a context
// lookup per request are not worth it otherwise.
type timedTransport struct{ next http.RoundTripper }

func (t timedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	rec := plumb.RecordFrom(req.Context())
	start := time.Now()
	rec.Own = start.Sub(rec.Start)
	res, err := t.next.RoundTrip(req)
	rec.Upstream = time.Since(start)
	rec.UpstreamAnswered = err == nil
	return res, err
}

// modifyResponse keeps two things in Gatehouse's hands: the request id
// (already on the response; an upstream echo would duplicate it) and the
// login-token cookie, which the upstream must not be able to overwrite.
func modifyResponse(cookieName string) func(*http.Response) error {
	return func(res *http.Response) error {
		res.Header.Del(HeaderRequestID)
		if lines := res.Header.Values("Set-Cookie"); len(lines) > 0 {
			var kept []string
			for _, line := range lines {
				name, _, _ := strings.Cut(line, "=")
				if !strings.EqualFold(strings.TrimSpace(name), cookieName) {
					kept = append(kept, line)
				}
			}
			if len(kept) == 0 {
				res.Header.Del("Set-Cookie")
			} else {
				res.Header["Set-Cookie"] = kept
			}
		}
		return nil
	}
}

// Gatehouse's answers when the upstream cannot give one.
const (
	bodyUpstreamTimeout     = "gatehouse: upstream timed out"
	bodyUpstreamUnavailable = "gatehouse: upstream unavailable"
)

// errorHandler answers when the round trip to the upstream failed:
//   - the client went away (before the answer, or in the middle of its
//     body): nothing to answer; 499 in the access log;
//   - the client's body could not be read (a malformed chunk): 400
//     BAD_REQUEST_BODY, the client's fault, not the upstream's;
//   - the upstream was too slow (dial or response-header timeout): 504
//     UPSTREAM_TIMEOUT;
//   - anything else (refused, reset, DNS, bad response): 502
//     UPSTREAM_UNAVAILABLE.
//
// The error is logged once here; the request's headers never are.
func errorHandler(log *zap.Logger, upstreamHost string) func(http.ResponseWriter, *http.Request, error) {
	return func(w http.ResponseWriter, r *http.Request, err error) {
		rec := plumb.RecordFrom(r.Context())
		fields := []zap.Field{zap.Error(err), zap.String("upstream", upstreamHost), zap.String("request_id", rec.RequestID)}
		if errors.Is(r.Context().Err(), context.Canceled) {
			rec.ClientGone = true
			log.Debug("client went away during upstream round trip", fields...)
			return
		}
		if rw, ok := w.(*plumb.ResponseRecorder); ok && rw.Hijacked() {
			// Failed after the switch to another protocol: the connection
			// is no longer HTTP, so there is nobody to answer.
			log.Warn("upstream error after protocol switch", fields...)
			return
		}
		if errors.Is(err, errClientBody) {
			if clientHungUp(err) {
				rec.ClientGone = true
				log.Debug("client went away while sending its body", fields...)
				return
			}
			log.Info("bad request body", fields...)
			auth.WriteError(w, errBadRequestBody(err))
			return
		}
		var ne net.Error
		if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
			log.Warn("upstream timed out", fields...)
			w.Header().Set(plumb.HeaderReason, ReasonUpstreamTimeout)
			plumb.WriteText(w, http.StatusGatewayTimeout, bodyUpstreamTimeout)
			return
		}
		log.Warn("upstream unavailable", fields...)
		w.Header().Set(plumb.HeaderReason, ReasonUpstreamUnavailable)
		plumb.WriteText(w, http.StatusBadGateway, bodyUpstreamUnavailable)
	}
}

// copyBufferSize is the size of ReverseProxy's own copy buffers.
const copyBufferSize = 32 << 10

// NewBufferPool returns the pool of body copy buffers Gatehouse's reverse
// proxy uses. It is exported so that a baseline proxy in benchmarks can be
// tuned alike.
func NewBufferPool() httputil.BufferPool { return &bufferPool{} }

// bufferPool holds the buffers as array pointers: Put turns the slice back
// into its array's pointer without allocating, where storing a *[]byte
// would allocate a slice header on every request.
type bufferPool struct{ p sync.Pool }

func (b *bufferPool) Get() []byte {
	if v, ok := b.p.Get().(*[copyBufferSize]byte); ok {
		return v[:]
	}
	return make([]byte, copyBufferSize)
}

func (b *bufferPool) Put(buf []byte) {
	if cap(buf) != copyBufferSize {
		return
	}
	b.p.Put((*[copyBufferSize]byte)(buf[:copyBufferSize]))
}
