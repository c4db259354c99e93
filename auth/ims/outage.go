package ims

import (
	"errors"
	"fmt"
	"io"
	"net"
)

// StatusError is an answer from IMS with a status the caller did not
// expect (neither success nor a refusal of the token). errors.Is(err,
// ErrUnavailable) holds for it; 429 is a *RateLimitError instead.
type StatusError struct {
	Status int
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("%v: unexpected status %d", ErrUnavailable, e.Status)
}

func (e *StatusError) Unwrap() error { return ErrUnavailable }

// IsOutage reports whether err means IMS could not give an answer: it could
// not be reached, timed out, dropped the connection, answered 5xx, or
// answered 429. An answer IMS did give, but that could not be used (a body
// that does not decode, a 404), is not an outage: a caller that tolerates
// outages for a while must not tolerate a changed or broken service.
func IsOutage(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, ErrRateLimited) {
		return true
	}
	if se := (*StatusError)(nil); errors.As(err, &se) {
		return se.Status >= 500
	}
	// Transport failures: refused or reset connections and timeouts are
	// net.Errors (*url.Error is one); a body cut short is an unexpected EOF.
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, io.ErrUnexpectedEOF)
}
