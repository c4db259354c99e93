package plumb

import (
	"crypto/rand"
	"net/http"
)

// MaxRequestIDLen bounds a client-supplied request id, which ends up in
// every log line of the request and in the upstream's logs.
const MaxRequestIDLen = 128

// RequestID gives the request an id that is safe to log and forward: the
// client's X-Request-Id, if it is valid, else a fresh one. The id goes
// back to the client on the response and into the record (and so into
// the access log); the proxy listener also sends it upstream.
func RequestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get(HeaderRequestID)
		if !ValidRequestID(id) {
			id = rand.Text()
		}
		rec := RecordFrom(r.Context())
		rec.RequestID = id
		// The header's value slice lives in the record, allocated with it
		// by the access log, rather than one []string per request. Header
		// edits replace a value slice (Set) or grow it past this one's
		// capacity (Add); nothing writes into it.
		rec.idHeader[0] = id
		w.Header()[HeaderRequestID] = rec.idHeader[:1:1]
		next.ServeHTTP(w, r)
	})
}

// ValidRequestID accepts 1 to 128 characters from [A-Za-z0-9._-]: enough
// for UUIDs and the ids of common load balancers, and nothing that could
// forge a log line or a header.
func ValidRequestID(id string) bool {
	if id == "" || len(id) > MaxRequestIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9',
			c == '.', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}
