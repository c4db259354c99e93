package plumb

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/gatehouse-proxy/gatehouse/auth"
	"github.com/gatehouse-proxy/gatehouse/proxy/jsonlog"
)

func TestResponseWriterPassesThrough(t *testing.T) {
	// The access log's writer must keep what ReverseProxy and handlers
	// need from the server's writer.
	var w http.ResponseWriter = NewResponseRecorder(httptest.NewRecorder())
	if _, ok := w.(http.Flusher); !ok {
		t.Error("not an http.Flusher")
	}
	if _, ok := w.(http.Hijacker); !ok {
		t.Error("not an http.Hijacker")
	}

	errs := make(chan error, 3)
	srv := httptest.NewServer(AccessLog(AccessLogConfig{})(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		errs <- rc.SetWriteDeadline(time.Now().Add(time.Minute)) // via Unwrap
		errs <- rc.Flush()
		conn, _, err := rc.Hijack()
		if err == nil {
			conn.Close()
		}
		errs <- err
	})))
	defer srv.Close()
	res, err := srv.Client().Get(srv.URL)
	if err == nil {
		res.Body.Close()
	}
	for _, what := range []string{"SetWriteDeadline", "Flush", "Hijack"} {
		if err := <-errs; err != nil {
			t.Errorf("%s through the access log's writer: %v", what, err)
		}
	}
}

// The direct access log writes the bytes zap would: same fields, same
// order, same escaping, same time format.
func TestAccessLogJSONMatchesZap(t *testing.T) {
	at := time.Date(2026, 11, 23, 3, 4, 5, 678_000_000, time.UTC)
	lines := []accessLine{
		{method: "GET", path: "/content/dam/a.json", status: 200, bytes: 1234, duration: 1234567 * time.Nanosecond,
			requestID: "01KAB", remote: "127.0.0.1:5000", user: "7F8F@AdobeID"},
		{method: "POST", path: "/x%22y", status: 401, duration: time.Microsecond, requestID: "r", remote: "[::1]:1"},
		{method: "PUT", path: "/big", status: 499, bytes: 1 << 40, duration: 90 * time.Second, requestID: "r2",
			remote: "10.0.0.1:9", user: "odd \"user\" \\ é \xff", aborted: true},
		{method: "GET", path: "/api", status: 401, requestID: "e1", remote: "127.0.0.1:7", renewed: true},
		{method: "PUT", path: "/api", status: 200, requestID: "e2", remote: "127.0.0.1:7", renewed: true, retried: true},
	}
	for _, name := range []string{"proxy", ""} {
		for i, l := range lines {
			msg := "request"
			if l.renewed {
				msg = "egress request"
			}
			var direct, viaZap strings.Builder
			(&AccessLogJSON{W: &direct, Name: name, Now: func() time.Time { return at }}).write(msg, &l)

			ec := zap.NewProductionEncoderConfig()
			ec.EncodeTime = jsonlog.ISO8601TimeEncoder
			log := zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(ec), zapcore.AddSync(&viaZap), zapcore.InfoLevel),
				zap.WithClock(fixedClock(at)))
			if name != "" {
				log = log.Named(name)
			}
			log.Info(msg, l.fields()...)
			if direct.String() != viaZap.String() {
				t.Errorf("line %d: direct line\n%s differs from zap's\n%s", i, direct.String(), viaZap.String())
			}
		}
	}
}

type fixedClock time.Time

func (c fixedClock) Now() time.Time                         { return time.Time(c) }
func (c fixedClock) NewTicker(d time.Duration) *time.Ticker { return time.NewTicker(d) }

// BenchmarkAccessLog is the access-log step alone around a handler that
// answers at once, writing to io.Discard: through zap's JSON encoder with
// gatehouse serve's configuration, and directly (AccessLogJSON), which
// serve uses for JSON logs. What the line costs besides its write(2).
func BenchmarkAccessLog(b *testing.B) {
	ec := zap.NewProductionEncoderConfig()
	ec.EncodeTime = jsonlog.ISO8601TimeEncoder
	log := zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(ec), zapcore.AddSync(io.Discard), zapcore.InfoLevel)).Named("proxy")
	for _, bc := range []struct {
		name   string
		direct *AccessLogJSON
	}{
		{"zap", nil},
		{"direct", &AccessLogJSON{W: io.Discard, Name: "proxy"}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			h := AccessLog(AccessLogConfig{Logger: log, Direct: bc.direct, Message: "request"})(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				rec := RecordFrom(r.Context())
				rec.RequestID, rec.User = "0123456789ABCDEFGHIJKLMNOP", "7F8F1A2B3C4D5E6F7A8B9C0D@AdobeID"
				w.WriteHeader(http.StatusOK)
			}))
			r := httptest.NewRequest("GET", "/content/dam/we-retail.json", nil)
			r.Header.Set("Cookie", "login-token="+strings.Repeat("x", 200))
			r.Header.Set("User-Agent", "bench")
			w := httptest.NewRecorder()
			b.ReportAllocs()
			for b.Loop() {
				h.ServeHTTP(w, r)
			}
		})
	}
}

// The access log's context carries the record and an identity slot in
// its one allocation: the authentication step's SetIdentity fills it
// without copying the request, the access log's own request sees the
// identity afterwards, and the context still ends with the client's.
func TestAccessLogContextCarriesSlot(t *testing.T) {
	id := &auth.Identity{UserID: "7F8F@AdobeID"}
	var outer *http.Request
	h := AccessLog(AccessLogConfig{})(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		RecordFrom(r.Context()).RequestID = "rid"
		if next := auth.SetIdentity(r, id); next != r {
			t.Error("SetIdentity copied the request: no slot in the access log's context")
		}
		outer = r
	}))
	ctx, cancel := context.WithCancel(context.Background())
	r := httptest.NewRequest("GET", "/", nil).WithContext(ctx)
	h.ServeHTTP(httptest.NewRecorder(), r)
	if got, ok := auth.FromContext(outer.Context()); !ok || got != id {
		t.Errorf("FromContext = %v, %v; want the identity set", got, ok)
	}
	if RecordFrom(outer.Context()).RequestID != "rid" {
		t.Error("record not reachable through the context")
	}
	cancel()
	select {
	case <-outer.Context().Done():
	default:
		t.Error("the access log's context does not end with the client's")
	}
}

// headerWriter is a ResponseWriter with its header map made up front, as
// the server's is, so that only the steps' own allocations are counted.
type headerWriter struct{ h http.Header }

func (w *headerWriter) Header() http.Header         { return w.h }
func (w *headerWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *headerWriter) WriteHeader(int)             {}

// The access log (direct JSON, as serve writes it) and the request id,
// around a handler that does nothing, allocate two objects per request: the access log's (record, writer and
// context in one) and the request's copy with that context. The response's
// X-Request-Id value lives in the record.
func TestAccessLogAndRequestIDAllocations(t *testing.T) {
	var got string
	h := AccessLog(AccessLogConfig{Direct: &AccessLogJSON{W: io.Discard}})(RequestID(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = RecordFrom(r.Context()).RequestID
	})))
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set(HeaderRequestID, "client-id-1")
	w := &headerWriter{h: http.Header{}}
	if n := testing.AllocsPerRun(100, func() { h.ServeHTTP(w, r) }); n > 2 {
		t.Errorf("%v allocations per request, want at most 2", n)
	}
	if got != "client-id-1" || w.h.Get(HeaderRequestID) != "client-id-1" {
		t.Errorf("request id %q, response header %q; want the client's", got, w.h.Get(HeaderRequestID))
	}
}
