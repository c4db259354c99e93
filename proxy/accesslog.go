package proxy

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"runtime/debug"
	"strconv"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/gatehouse-proxy/gatehouse/proxy/jsonlog"
)

// statusClientClosedRequest is logged, never sent, when the client went
// away before it got its answer (nginx's 499).
const statusClientClosedRequest = 499

// record is what the access-log line says about a request that the
// handlers further down the chain know and the access log does not: they
// see a request with a different context, so they fill this in through
// the pointer the access log put in the context.
type record struct {
	requestID  string
	userID     string
	clientGone bool // the upstream round trip ended because the client left
	// authenticated: releaseBody ran, the request is being forwarded.
	authenticated bool
	// rw is the writer the access log wraps around the server's, so that
	// steps behind writers without Unwrap can still reach the connection.
	rw *ResponseRecorder
}

// setCloseConn sets whether the answer closes the connection.
func (rec *record) setCloseConn(v bool) {
	if rec.rw != nil {
		rec.rw.closeConn = v
	}
}

// controller returns a ResponseController for the request's connection:
// through the access log's writer when there is one, else through w.
func (rec *record) controller(w http.ResponseWriter) *http.ResponseController {
	if rec.rw != nil {
		w = rec.rw
	}
	return http.NewResponseController(w)
}

type recordKey struct{}

// recordFrom returns the request's record. Handlers outside the chain (in
// tests) get a throwaway one so that they need no nil checks.
func recordFrom(ctx context.Context) *record {
	if rec, ok := ctx.Value(recordKey{}).(*record); ok {
		return rec
	}
	return &record{}
}

// accessLog writes one line per request and turns a panic into a 500. It
// is the outermost step so that it sees every answer, including those of
// the steps that answer themselves. The line goes to direct when set, else
// to log.
func accessLog(log *zap.Logger, direct *AccessLogJSON) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			start := time.Now()
			rec := &record{}
			rw := NewResponseRecorder(w)
			rec.rw = rw
			in := r.WithContext(context.WithValue(r.Context(), recordKey{}, rec))

			defer func() {
				p := recover()
				aborted := p == http.ErrAbortHandler
				if p != nil && !aborted {
					log.Error("panic while handling request",
						zap.String("request_id", rec.requestID),
						zap.Any("panic", p),
						zap.ByteString("stack", debug.Stack()))
					if rw.Started() {
						// Too late for a 500: abort so that the client sees
						// a cut-off response rather than a complete one.
						aborted = true
					} else {
						writeText(rw, http.StatusInternalServerError, "gatehouse: internal error")
					}
				}

				line := accessLine{
					method: r.Method,
					// The path only: queries may carry secrets.
					path:      r.URL.EscapedPath(),
					status:    rw.LogStatus(r, rec.clientGone, aborted),
					bytes:     rw.bytes,
					duration:  time.Since(start),
					requestID: rec.requestID,
					remote:    r.RemoteAddr,
					user:      rec.userID,
					aborted:   aborted,
				}
				if direct != nil {
					direct.write(&line)
				} else {
					log.Info("request", line.fields()...)
				}

				if aborted {
					// net/http closes the connection quietly on this value.
					panic(http.ErrAbortHandler)
				}
			}()
			next.ServeHTTP(rw, in)
		})
	}
}

// accessLine is what the access log says about a request.
type accessLine struct {
	method, path      string
	status            int
	bytes             int64
	duration          time.Duration
	requestID, remote string
	user              string // "" for none
	aborted           bool
}

func (l *accessLine) fields() []zap.Field {
	// Room for every field up front: one allocation, not two.
	fields := append(make([]zap.Field, 0, 9),
		zap.String("method", l.method),
		zap.String("path", l.path),
		zap.Int("status", l.status),
		zap.Int64("bytes", l.bytes),
		zap.Duration("duration", l.duration),
		zap.String("request_id", l.requestID),
		zap.String("remote", l.remote),
	)
	if l.user != "" {
		fields = append(fields, zap.String("user", l.user))
	}
	if l.aborted {
		fields = append(fields, zap.Bool("aborted", true))
	}
	return fields
}

// AccessLogJSON writes access-log lines straight to W, as the JSON
// encoder of zap.NewProductionEncoderConfig with jsonlog.ISO8601TimeEncoder
// writes them for a logger named Name at level info: the same bytes,
// without zap's generic encoding, which was the costliest thing Gatehouse
// added to a proxied request. Each line is one Write.
type AccessLogJSON struct {
	W    io.Writer
	Name string // the logger's name; "" for none
	// Now is the clock of the "ts" field. Nil: time.Now.
	Now func() time.Time
}

var linePool = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

func (a *AccessLogJSON) write(l *accessLine) {
	now := time.Now
	if a.Now != nil {
		now = a.Now
	}
	bp := linePool.Get().(*[]byte)
	b := append((*bp)[:0], `{"level":"info","ts":"`...)
	b = jsonlog.AppendISO8601(b, now())
	b = append(b, '"')
	if a.Name != "" {
		b = append(b, `,"logger":`...)
		b = jsonlog.AppendString(b, a.Name)
	}
	b = append(b, `,"msg":"request","method":`...)
	b = jsonlog.AppendString(b, l.method)
	b = append(b, `,"path":`...)
	b = jsonlog.AppendString(b, l.path)
	b = append(b, `,"status":`...)
	b = strconv.AppendInt(b, int64(l.status), 10)
	b = append(b, `,"bytes":`...)
	b = strconv.AppendInt(b, l.bytes, 10)
	b = append(b, `,"duration":`...)
	b = jsonlog.AppendSeconds(b, l.duration)
	b = append(b, `,"request_id":`...)
	b = jsonlog.AppendString(b, l.requestID)
	b = append(b, `,"remote":`...)
	b = jsonlog.AppendString(b, l.remote)
	if l.user != "" {
		b = append(b, `,"user":`...)
		b = jsonlog.AppendString(b, l.user)
	}
	if l.aborted {
		b = append(b, `,"aborted":true`...)
	}
	b = append(b, "}\n"...)
	_, _ = a.W.Write(b) // nowhere to report a failing log but the log
	*bp = b
	linePool.Put(bp)
}

// ResponseRecorder remembers the status and counts the body bytes of an
// answer, for access logs. It passes Flush and Hijack through (streaming
// responses and WebSocket upgrades need them) and unwraps for
// http.ResponseController. The egress listener logs with it too.
type ResponseRecorder struct {
	http.ResponseWriter
	status      int
	wroteHeader bool
	hijacked    bool
	bytes       int64
	// closeConn: the final answer carries Connection: close. Set at the
	// moment of writing, so that nothing that edits the header map before
	// (ReverseProxy clears it after forwarding a 1xx) can drop it.
	closeConn bool
}

var (
	_ http.Flusher  = (*ResponseRecorder)(nil)
	_ http.Hijacker = (*ResponseRecorder)(nil)
)

// NewResponseRecorder wraps w.
func NewResponseRecorder(w http.ResponseWriter) *ResponseRecorder {
	return &ResponseRecorder{ResponseWriter: w}
}

// Started reports whether the answer has begun (a status was written or
// the connection was hijacked): too late to answer with an error.
func (w *ResponseRecorder) Started() bool { return w.wroteHeader || w.hijacked }

// Bytes is the number of body bytes written (not counting what was written
// on a hijacked connection).
func (w *ResponseRecorder) Bytes() int64 { return w.bytes }

// LogStatus is the status an access log should record: 499 when the client
// went away before the answer was complete (clientGone, or a cancelled
// request that was aborted or never answered), 101 for a hijacked
// connection, 200 when nothing was written (what net/http sends), and the
// written status otherwise.
func (w *ResponseRecorder) LogStatus(r *http.Request, clientGone, aborted bool) int {
	switch {
	case clientGone, r.Context().Err() != nil && (aborted || !w.Started()):
		return statusClientClosedRequest
	case w.hijacked && w.status == 0:
		return http.StatusSwitchingProtocols
	case w.status == 0:
		return http.StatusOK
	}
	return w.status
}

func (w *ResponseRecorder) WriteHeader(code int) {
	// Informational answers (100 Continue, 103 Early Hints) come before the
	// real one; ReverseProxy may send them from the transport's goroutine,
	// so they must not touch our fields.
	if code >= 100 && code < 200 && code != http.StatusSwitchingProtocols {
		w.ResponseWriter.WriteHeader(code)
		return
	}
	if !w.wroteHeader {
		w.status = code
		w.wroteHeader = true
		if w.closeConn && code >= 200 {
			w.Header().Set("Connection", "close")
		}
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *ResponseRecorder) Write(p []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	n, err := w.ResponseWriter.Write(p)
	w.bytes += int64(n)
	return n, err
}

// Flush implements http.Flusher.
func (w *ResponseRecorder) Flush() { _ = w.FlushError() }

// FlushError is what http.ResponseController calls, so that flush errors
// are not lost.
func (w *ResponseRecorder) FlushError() error {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	return http.NewResponseController(w.ResponseWriter).Flush()
}

// Hijack implements http.Hijacker. What is written on a hijacked
// connection is not counted in bytes.
func (w *ResponseRecorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err == nil {
		w.hijacked = true
	}
	return conn, brw, err
}

// Unwrap lets http.ResponseController reach the server's writer for the
// methods not implemented here (deadlines, full duplex).
func (w *ResponseRecorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }
