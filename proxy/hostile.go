package proxy

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"

	"github.com/gatehouse-proxy/gatehouse/auth"
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
