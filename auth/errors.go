package auth

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// ErrNoCredentials is returned by an authentication step when the request
// carries no credential of its kind, so that the next step may run.
var ErrNoCredentials = errors.New("no credentials")

// RFC 6750 error codes, sent in WWW-Authenticate.
const (
	CodeInvalidRequest    = "invalid_request"
	CodeInvalidToken      = "invalid_token"
	CodeInsufficientScope = "insufficient_scope"
)

// Reasons sent in X-Reason, for clients that act on them (the desktop
// extension signs in again on EXPIRED_TOKEN without tripping loop detection).
const (
	ReasonExpiredToken = "EXPIRED_TOKEN"
	ReasonInvalidToken = "INVALID_TOKEN"
	ReasonNoCredential = "NO_CREDENTIALS"
	ReasonUnavailable  = "IDENTITY_SERVICE_UNAVAILABLE"
	// ReasonServiceError: the identity service answered, but its answer
	// could not be used (502), as opposed to not answering (503).
	ReasonServiceError = "IDENTITY_SERVICE_ERROR"
	ReasonForbidden    = "FORBIDDEN"
	// ReasonAmbiguousCookie: the request carries the login-token cookie
	// more than once, so it does not say who is calling.
	ReasonAmbiguousCookie = "AMBIGUOUS_COOKIE"
	// ReasonUserDisabled: an administrator disabled the user on this
	// server (`gatehouse users disable`); signing in again does not help.
	ReasonUserDisabled = "USER_DISABLED"
)

// Error is an authentication failure together with the answer the client
// should get. Err, the cause, is for logs and is never shown to the client.
type Error struct {
	Status      int    // HTTP status: 400, 401, 403, 429, 502 or 503
	Code        string // RFC 6750 error code, or "" when none applies
	Reason      string // X-Reason header value, or ""
	Description string // what went wrong, in words a person can act on
	Err         error  // the cause; may be nil
	// RetryAfter, when positive, is sent as Retry-After (whole seconds,
	// rounded up): when the client may try again.
	RetryAfter time.Duration
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %v", e.Description, e.Err)
	}
	return e.Description
}

func (e *Error) Unwrap() error { return e.Err }

// Unauthorized returns a 401 Error with RFC 6750 code invalid_token.
func Unauthorized(reason, description string, cause error) *Error {
	return &Error{Status: http.StatusUnauthorized, Code: CodeInvalidToken, Reason: reason, Description: description, Err: cause}
}

// BadRequest returns a 400 Error with RFC 6750 code invalid_request.
func BadRequest(description string, cause error) *Error {
	return &Error{Status: http.StatusBadRequest, Code: CodeInvalidRequest, Reason: ReasonInvalidToken, Description: description, Err: cause}
}

// DefaultRetryAfter is the Retry-After of a 503 when the cause did not say
// how long to wait.
const DefaultRetryAfter = 5 * time.Second

// Unavailable returns a 503 Error with reason IDENTITY_SERVICE_UNAVAILABLE
// and a Retry-After of retryAfter, or DefaultRetryAfter when that is not
// positive.
func Unavailable(description string, retryAfter time.Duration, cause error) *Error {
	if retryAfter <= 0 {
		retryAfter = DefaultRetryAfter
	}
	return &Error{Status: http.StatusServiceUnavailable, Reason: ReasonUnavailable, Description: description, Err: cause, RetryAfter: retryAfter}
}

// ServiceError returns a 502 Error with reason IDENTITY_SERVICE_ERROR: the
// identity service answered, but not usably.
func ServiceError(description string, cause error) *Error {
	return &Error{Status: http.StatusBadGateway, Reason: ReasonServiceError, Description: description, Err: cause}
}

// UserDisabled returns the 403 for a user an administrator disabled. It
// carries no RFC 6750 code and so no challenge: a new token would be
// refused alike.
func UserDisabled(cause error) *Error {
	return &Error{Status: http.StatusForbidden, Reason: ReasonUserDisabled,
		Description: "your account is disabled on this server; contact the administrator", Err: cause}
}

// AsError returns err as an *Error. Anything that is not one already is an
// internal failure: 500, with a generic description, so that no detail of
// it reaches the client.
func AsError(err error) *Error {
	var ae *Error
	if errors.As(err, &ae) {
		return ae
	}
	return &Error{Status: http.StatusInternalServerError, Description: "internal error", Err: err}
}

// WriteError answers the request with err: status, WWW-Authenticate (on 401,
// and on 400/403 when a code applies), X-Reason, and a small JSON body
// {"error": code, "error_description": description, "reason": reason}.
func WriteError(w http.ResponseWriter, err error) {
	ae := AsError(err)
	h := w.Header()
	if ae.Status == http.StatusUnauthorized || ae.Code != "" {
		h.Set("WWW-Authenticate", challenge(ae))
	}
	if ae.Reason != "" {
		h.Set("X-Reason", ae.Reason)
	}
	retry := ae.RetryAfter
	if retry <= 0 && ae.Status == http.StatusServiceUnavailable && h.Get("Retry-After") == "" {
		// Every 503 here is "try again shortly" (IMS or the store away);
		// saying when keeps well-behaved clients from retrying in a loop.
		retry = DefaultRetryAfter
	}
	if retry > 0 {
		h.Set("Retry-After", strconv.FormatInt(int64((retry+time.Second-1)/time.Second), 10))
	}
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(ae.Status)
	_ = json.NewEncoder(w).Encode(struct {
		Error       string `json:"error,omitempty"`
		Description string `json:"error_description"`
		Reason      string `json:"reason,omitempty"`
	}{ae.Code, ae.Description, ae.Reason})
}

func challenge(ae *Error) string {
	var b strings.Builder
	b.WriteString(`Bearer realm="gatehouse"`)
	if ae.Code != "" {
		fmt.Fprintf(&b, `, error="%s"`, ae.Code)
		// RFC 6750 limits error_description to printable ASCII without '"' and '\'.
		fmt.Fprintf(&b, `, error_description="%s"`, quoteSafe(ae.Description))
	}
	return b.String()
}

func quoteSafe(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r > 0x7e || r == '"' || r == '\\' {
			return -1
		}
		return r
	}, s)
}
