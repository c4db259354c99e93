package plumb

import (
	"context"
	"io"
	"net/http"
	"runtime/debug"
	"strconv"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/gatehouse-proxy/gatehouse/auth"
	"github.com/gatehouse-proxy/gatehouse/proxy/jsonlog"
)

// AccessLogConfig configures AccessLog.
type AccessLogConfig struct {
	// Logger receives panics, and the access lines unless Direct is set.
	// Nil: no logs.
	Logger *zap.Logger
	// Direct, when set, writes the access lines instead of Logger (the
	// same lines, written directly; see AccessLogJSON).
	Direct *AccessLogJSON
	// Message is the access line's message, e.g. "request". Panics are
	// logged as "panic while handling " + Message.
	Message string
	// InternalError is the body of the 500 that answers a panic.
	InternalError string
	// Observe, when set, is called once per request after its line is
	// written, with the request's record, the logged status and the time
	// the request took: the listener's metrics. It runs on the request's
	// goroutine, so it must be cheap.
	Observe func(r *http.Request, rec *Record, status int, d time.Duration)
}

// AccessLog returns the outermost step of a listener's chain: it writes
// one line per request and turns a panic into a 500. Being outermost, it
// sees every answer, including those of the steps that answer themselves.
// It puts the request's Record in the context for the steps further down.
// The line has the path without its query (which may carry secrets) and
// never a header.
func AccessLog(cfg AccessLogConfig) func(http.Handler) http.Handler {
	log := cfg.Logger
	if log == nil {
		log = zap.NewNop()
	}
	panicMsg := "panic while handling " + cfg.Message
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			start := time.Now()
			l := &logged{}
			rec, rw := &l.rec, &l.rw
			rec.Start = start
			rw.ResponseWriter = w
			rec.rw = rw
			l.ctx = recordContext{Context: r.Context(), rec: rec}
			in := r.WithContext(&l.ctx)

			defer func() {
				p := recover()
				aborted := p == http.ErrAbortHandler
				if p != nil && !aborted {
					log.Error(panicMsg,
						zap.String("request_id", rec.RequestID),
						zap.Any("panic", p),
						zap.ByteString("stack", debug.Stack()))
					if rw.Started() {
						// Too late for a 500: abort so that the client sees
						// a cut-off response rather than a complete one.
						aborted = true
					} else {
						WriteText(rw, http.StatusInternalServerError, cfg.InternalError)
					}
				}

				line := accessLine{
					method: r.Method,
					// The path only: queries may carry secrets.
					path:      r.URL.EscapedPath(),
					status:    rw.LogStatus(r, rec.ClientGone, aborted),
					bytes:     rw.bytes,
					duration:  time.Since(start),
					requestID: rec.RequestID,
					remote:    r.RemoteAddr,
					user:      rec.User,
					renewed:   rec.TokenRenewed,
					retried:   rec.Retried,
					aborted:   aborted,
				}
				switch {
				case rec.Probe:
					if log.Core().Enabled(zap.DebugLevel) {
						log.Debug(cfg.Message, line.fields()...)
					}
				case cfg.Direct != nil:
					cfg.Direct.write(cfg.Message, &line)
				default:
					log.Info(cfg.Message, line.fields()...)
				}
				if cfg.Observe != nil {
					cfg.Observe(r, rec, line.status, line.duration)
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

// logged is what the access log allocates for a request, as one object
// rather than three: the record, the writer that watches the answer, and
// the context that carries the record and the identity's slot.
type logged struct {
	rec Record
	rw  ResponseRecorder
	ctx recordContext
}

// recordContext is the request's context with its record and identity
// slot (auth.Slot) as values: one context for both, where two
// context.WithValue would each allocate. Everything else is its parent's.
type recordContext struct {
	context.Context
	rec *Record
}

// Value implements context.Context.
func (c *recordContext) Value(key any) any {
	switch key.(type) {
	case recordKey:
		return c.rec
	case auth.SlotKey:
		return &c.rec.slot
	}
	return c.Context.Value(key)
}

// accessLine is what the access log says about a request.
type accessLine struct {
	method, path      string
	status            int
	bytes             int64
	duration          time.Duration
	requestID, remote string
	user              string // "" for none
	renewed, retried  bool   // logged when renewed
	aborted           bool
}

func (l *accessLine) fields() []zap.Field {
	// Room for every field up front: one allocation, not two.
	fields := append(make([]zap.Field, 0, 11),
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
	if l.renewed {
		fields = append(fields, zap.Bool("token_renewed", true), zap.Bool("retried", l.retried))
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

func (a *AccessLogJSON) write(msg string, l *accessLine) {
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
	b = append(b, `,"msg":`...)
	b = jsonlog.AppendString(b, msg)
	b = append(b, `,"method":`...)
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
	if l.renewed {
		b = append(b, `,"token_renewed":true,"retried":`...)
		b = strconv.AppendBool(b, l.retried)
	}
	if l.aborted {
		b = append(b, `,"aborted":true`...)
	}
	b = append(b, "}\n"...)
	_, _ = a.W.Write(b) // nowhere to report a failing log but the log
	*bp = b
	linePool.Put(bp)
}
