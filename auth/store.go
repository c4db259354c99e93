package auth

import (
	"net/http"
)

// ReasonStoreUnavailable is the X-Reason of a sign-in refused because the
// session store cannot be read or written (its disk full or read-only, say).
// It is not IDENTITY_SERVICE_UNAVAILABLE: the identity service is fine, and
// an operator looking for the cause must be sent to the right place.
const ReasonStoreUnavailable = "STORE_UNAVAILABLE"

// StoreRetryAfter is the Retry-After of a StoreUnavailable answer. A store
// recovers when an operator acts, so there is no better guess than the
// short default pause that does not turn clients into a retry storm.
const StoreRetryAfter = DefaultRetryAfter

// StoreUnavailable returns the 503 for a failure of the session store.
// what is the refused action in words for the client ("sign-in"); cause
// is for the log.
func StoreUnavailable(what string, cause error) *Error {
	return &Error{Status: http.StatusServiceUnavailable, Reason: ReasonStoreUnavailable,
		Description: what + " is temporarily unavailable: the session store cannot be used; retry shortly",
		RetryAfter:  StoreRetryAfter, Err: cause}
}
