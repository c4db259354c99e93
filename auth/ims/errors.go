package ims

import (
	"errors"
	"fmt"
	"time"
)

// Errors of local verification (Verify) and key lookup (KeySet.Key). Every
// error returned wraps exactly one of them, so errors.Is tells the cases
// apart. ErrKeysUnavailable means "try later" (503); the others mean the
// token is not acceptable (401).
var (
	ErrMalformed        = errors.New("ims: malformed token")
	ErrAlgorithm        = errors.New("ims: signing algorithm not allowed")
	ErrUnknownKey       = errors.New("ims: unknown signing key")
	ErrKeysUnavailable  = errors.New("ims: signing keys unavailable")
	ErrBadSignature     = errors.New("ims: bad signature")
	ErrWrongType        = errors.New("ims: not an access token")
	ErrWrongCluster     = errors.New("ims: token from another IMS cluster")
	ErrClientNotAllowed = errors.New("ims: client id not allowed")
	ErrNoExpiry         = errors.New("ims: token states no expiry")
	ErrExpired          = errors.New("ims: token expired")
	ErrNotYetValid      = errors.New("ims: token not yet valid")
)

// Errors of the HTTP client.
var (
	// ErrRateLimited: IMS answered 429. Back off; the token is not known to
	// be invalid. The error is a *RateLimitError when IMS said how long.
	ErrRateLimited = errors.New("ims: rate limited")
	// ErrUnavailable: IMS could not be reached, or answered with an
	// unexpected status (5xx…), or its answer could not be read whole.
	ErrUnavailable = errors.New("ims: service unavailable")
	// ErrBadAnswer: IMS answered with success, but the answer is not
	// usable: not JSON of the expected shape, or without a member a
	// decision needs (the error names it). Unlike ErrUnavailable, asking
	// again at once is unlikely to help.
	ErrBadAnswer = errors.New("ims: the service answered but the answer is unusable")
	// ErrUnauthorized: IMS did not accept the token (401 or 403).
	ErrUnauthorized = errors.New("ims: token not accepted")
)

// RateLimitError is a 429 answer from IMS. errors.Is(err, ErrRateLimited)
// holds for it; use errors.As to read RetryAfter.
type RateLimitError struct {
	RetryAfter time.Duration // from the Retry-After header; 0 when absent
}

func (e *RateLimitError) Error() string {
	if e.RetryAfter > 0 {
		return fmt.Sprintf("%v (retry after %s)", ErrRateLimited, e.RetryAfter)
	}
	return ErrRateLimited.Error()
}

func (e *RateLimitError) Unwrap() error { return ErrRateLimited }

// RetryAfterOf is the wait IMS asked for in a 429 answer, read from the
// *RateLimitError in err's chain; 0 when there is none or IMS did not say.
func RetryAfterOf(err error) time.Duration {
	var rl *RateLimitError
	if errors.As(err, &rl) {
		return rl.RetryAfter
	}
	return 0
}

// clip shortens a value that came from a token before it goes into an
// error message (print it with %q).
func clip(s string) string {
	const limit = 64
	if len(s) > limit {
		return s[:limit] + "..."
	}
	return s
}
