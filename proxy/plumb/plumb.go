// Package plumb is the plumbing every Gatehouse listener puts around its
// handler: the access log and panic recovery, the request record that the
// steps further down fill in for it, the request id, and the short
// plain-text answers Gatehouse writes itself. The proxy listener and the
// egress listener both use it, so that their logs (and what is measured
// of them) come from one place and read alike.
package plumb

import (
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/gatehouse-proxy/gatehouse/auth"
)

// Header names both listeners use.
const (
	// HeaderRequestID carries the request id: from the client when it is
	// valid, back on the response, and upstream with the request.
	HeaderRequestID = "X-Request-Id"
	// HeaderReason names why Gatehouse refused a request (auth.Reason*).
	HeaderReason = "X-Reason"
	// HeaderAPIKey and HeaderOrgID are the headers IMS's API gateway
	// reads: the proxy checks them on API paths (package apicheck), the
	// egress listener sets them from the technical account.
	HeaderAPIKey = "X-Api-Key"
	HeaderOrgID  = "X-Gw-Ims-Org-Id"
)

// StatusClientClosedRequest is logged, never sent, when the client went
// away before it got its answer (nginx's 499).
const StatusClientClosedRequest = 499

// Record is what the access-log line says about a request that the
// handlers further down the chain know and the access log does not: they
// see a request with a different context, so they fill it in through the
// pointer AccessLog puts in the context (see RecordFrom).
type Record struct {
	RequestID string
	User      string // the authenticated user; "" for none
	// ClientGone: the upstream round trip ended because the client left.
	ClientGone bool
	// Authenticated: the request passed authentication and is being
	// forwarded (the proxy listener's releaseBody sets it).
	Authenticated bool
	// TokenRenewed: a 401 made the egress listener renew the technical
	// account's token; Retried: and the request was sent again.
	TokenRenewed, Retried bool
	// Start is when the access log took the request in.
	Start time.Time
	// Own is Gatehouse's own time on a forwarded request: from Start
	// until the request was handed to the upstream's transport (0: not
	// forwarded). Upstream is the time spent in the round trip to the
	// upstream, up to its response headers, and UpstreamAnswered says the
	// upstream did answer (its answer, not Gatehouse's error, went back).
	// Set only when the listener has an observer (metrics), so that
	// Gatehouse's own time can be told from the upstream's.
	Own, Upstream    time.Duration
	UpstreamAnswered bool
	// IdentityAnswered: forward-auth answered 200 with the identity.
	IdentityAnswered bool
	// Probe: a health or readiness probe. Its access line is logged at
	// debug, not info, so that an orchestrator probing every few seconds
	// does not drown the requests people make.
	Probe bool

	// idHeader is the X-Request-Id value on the response (RequestID).
	idHeader [1]string
	// slot holds the request's identity once authenticated (auth.Slot;
	// AccessLog's context answers for it).
	slot auth.Slot

	// rw is the writer AccessLog wraps around the server's, so that steps
	// behind writers without Unwrap can still reach the connection.
	rw *ResponseRecorder
}

// SetCloseConn sets whether the answer closes the connection.
func (rec *Record) SetCloseConn(v bool) {
	if rec.rw != nil {
		rec.rw.closeConn = v
	}
}

// Reason is the X-Reason of the answer Gatehouse wrote ("" for none).
// Only meaningful for Gatehouse's own answers: an upstream's answer
// carries whatever headers the upstream sent.
func (rec *Record) Reason() string {
	if rec.rw == nil {
		return ""
	}
	if v := rec.rw.Header()[HeaderReason]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// Controller returns a ResponseController for the request's connection:
// through the access log's writer when there is one, else through w.
func (rec *Record) Controller(w http.ResponseWriter) *http.ResponseController {
	if rec.rw != nil {
		w = rec.rw
	}
	return http.NewResponseController(w)
}

type recordKey struct{}

// NewContext returns a copy of ctx that carries rec, for running steps
// outside a chain with AccessLog (tests). AccessLog does this itself.
func NewContext(ctx context.Context, rec *Record) context.Context {
	return context.WithValue(ctx, recordKey{}, rec)
}

// RecordFrom returns the request's record. Handlers outside a chain with
// AccessLog (in tests) get a throwaway one, so that they need no nil
// checks.
func RecordFrom(ctx context.Context) *Record {
	if rec, ok := ctx.Value(recordKey{}).(*Record); ok {
		return rec
	}
	return &Record{}
}

// WriteText sends Gatehouse's own short plain-text answers (errors of
// Gatehouse itself, as opposed to the upstream's).
func WriteText(w http.ResponseWriter, status int, msg string) {
	writeOwn(w, status, "text/plain; charset=utf-8")
	_, _ = w.Write([]byte(msg + "\n"))
}

// WriteJSON sends v as one of Gatehouse's own JSON answers (its health
// endpoints).
func WriteJSON(w http.ResponseWriter, status int, v any) {
	writeOwn(w, status, "application/json; charset=utf-8")
	_ = json.NewEncoder(w).Encode(v)
}

// writeOwn writes the header of an answer Gatehouse makes itself: never
// cached, never sniffed as another type.
func writeOwn(w http.ResponseWriter, status int, contentType string) {
	h := w.Header()
	h.Set("Content-Type", contentType)
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
}
