package proxy

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/gatehouse-proxy/gatehouse/auth"
	"github.com/gatehouse-proxy/gatehouse/proxy/plumb"
)

// Reasons the proxy itself sends in X-Reason (authentication's own are in
// package auth).
const (
	// ReasonUpstreamUnavailable: 502, the upstream could not be reached or
	// broke off (refused, reset, unknown host, bad response).
	ReasonUpstreamUnavailable = "UPSTREAM_UNAVAILABLE"
	// ReasonUpstreamTimeout: 504, the upstream did not answer in time
	// (Transport.DialTimeout, Transport.ResponseHeaderTimeout).
	ReasonUpstreamTimeout = "UPSTREAM_TIMEOUT"
	// ReasonBadRequestBody: 400, the client's request body could not be
	// read while it was forwarded (for example a malformed chunk).
	ReasonBadRequestBody = "BAD_REQUEST_BODY"
	// ReasonMethodNotAllowed: 405, a method Gatehouse never forwards.
	ReasonMethodNotAllowed = "METHOD_NOT_ALLOWED"
)

// refusalDrainGrace is how long net/http may go on reading the body of a
// refused request after the answer was sent: long enough for a client that
// sent a small body right away to have it read (closing a socket with
// unread data makes the kernel reset the connection, and the client may
// lose the answer with it), short enough that a client that never sends it
// cannot hold the connection. net/http waits as long before it closes a
// connection whose body it gave up on.
const refusalDrainGrace = 500 * time.Millisecond

// guardBody bounds what a request with a body can make Gatehouse wait for
// before it is authenticated, and decides whether the connection outlives
// the request. It comes early in the chain so that every answer given
// before authentication goes through it.
//
// Nothing before authentication reads a body. But net/http, once the
// handler has answered, reads up to 256 KiB of unread body before it
// writes the answer, so that the connection can serve the next request: a
// client that declares a body and never sends it would wait forever for
// its 401, holding the connection. So, until releaseBody runs:
//   - the answer carries Connection: close, which makes net/http write it
//     at once instead of draining first;
//   - the connection has a read deadline (timeout), which bounds the
//     reading that net/http still does after the answer (it reads the rest
//     of the body to find trailers); once the handler is done, the deadline
//     is cut to refusalDrainGrace.
//
// Request smuggling: a request with both Content-Length and
// Transfer-Encoding is read by net/http as chunked, and it removes
// Content-Length before any handler runs, so such a request cannot be told
// from a plain chunked one here. Rather than parse raw bytes below the
// handler, Gatehouse closes the connection after every request with a
// chunked body: whatever follows the body on that connection (a smuggled
// second request, in the reading of a front end that went by
// Content-Length) is never read. Chunked uploads are rare and long, so
// the lost keep-alive costs little.
func guardBody(timeout time.Duration) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.ContentLength == 0 {
				next.ServeHTTP(w, r)
				return
			}
			rec := plumb.RecordFrom(r.Context())
			rec.SetCloseConn(true)
			rc := rec.Controller(w)
			// Errors: only writers without deadlines (tests' recorders)
			// refuse; Connection: close still applies there.
			_ = rc.SetReadDeadline(time.Now().Add(timeout))
			next.ServeHTTP(w, r)
			if !rec.Authenticated {
				_ = rc.SetReadDeadline(time.Now().Add(min(timeout, refusalDrainGrace)))
			}
		})
	}
}

// releaseBody runs once the request is authenticated and about to be
// forwarded: its body may now take as long as it needs (large uploads
// stream without a deadline), and a request with a body of known length
// may keep its connection. A chunked one may not; see guardBody.
func releaseBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := plumb.RecordFrom(r.Context())
		rec.Authenticated = true
		if r.ContentLength != 0 {
			if r.ContentLength > 0 {
				rec.SetCloseConn(false)
			}
			_ = rec.Controller(w).SetReadDeadline(time.Time{})
		}
		next.ServeHTTP(w, r)
	})
}

// allowedMethods is the Allow header of a 405. Gatehouse forwards any
// method but those refused by refuseMethods (WebDAV's, for example, for
// the upstream to judge); these are the ones the upstream is expected to
// serve.
const allowedMethods = "GET, HEAD, POST, PUT, DELETE, OPTIONS, PATCH"

// refuseMethods answers 405 to methods that make no sense through an
// authenticating reverse proxy, whoever asks:
//   - CONNECT asks for a tunnel. Forwarded, the upstream may answer 200
//     and the client believe it has one; Gatehouse is no forward proxy.
//   - TRACE (and IIS's TRACK) echo the request back, with its cookies and
//     Authorization header, to whatever script can read the answer.
//
// Methods are matched regardless of case: they are case-sensitive in
// HTTP, but some servers are not.
func refuseMethods(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if refusedMethod(r.Method) {
			w.Header().Set("Allow", allowedMethods)
			auth.WriteError(w, &auth.Error{
				Status:      http.StatusMethodNotAllowed,
				Reason:      ReasonMethodNotAllowed,
				Description: "method not allowed",
			})
			return
		}
		next.ServeHTTP(w, r)
	})
}

func refusedMethod(m string) bool {
	return strings.EqualFold(m, http.MethodConnect) || strings.EqualFold(m, http.MethodTrace) ||
		strings.EqualFold(m, "TRACK")
}

// errClientBody marks the errors of reading the client's request body
// while it is forwarded, so that the error handler can tell them from the
// upstream's: the transport returns both from the same round trip.
var errClientBody = errors.New("reading the client's request body")

// clientBody wraps the body of the outgoing request; see errClientBody.
type clientBody struct{ io.ReadCloser }

func (b clientBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil && err != io.EOF {
		err = fmt.Errorf("%w: %w", errClientBody, err)
	}
	return n, err
}

// clientHungUp reports whether a client-body error means the client went
// away (the connection ended before the body did) rather than sent a body
// that cannot be read.
func clientHungUp(err error) bool {
	var ne net.Error
	return errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) || errors.As(err, &ne)
}

// errBadRequestBody is the answer to a body that cannot be read.
func errBadRequestBody(cause error) *auth.Error {
	return &auth.Error{
		Status:      http.StatusBadRequest,
		Reason:      ReasonBadRequestBody,
		Description: "the request body is malformed",
		Err:         cause,
	}
}
