package proxy

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zapcore"
)

func TestAccessLogLine(t *testing.T) {
	tests := []struct {
		name       string
		target     string
		header     http.Header
		wantStatus int64
		wantUser   any // nil: no user field
		// wantLevel: probes at debug, so that an orchestrator probing
		// every few seconds does not drown the log.
		wantLevel zapcore.Level
	}{
		{"authenticated with secrets in query, header and cookie", "/content/dam.json?token=query-secret&x=1",
			http.Header{"Authorization": {"Bearer good-bearer-secret"}, "Cookie": {"login-token=good-cookie-secret; a=1"}},
			200, testUser.UserID, zapcore.InfoLevel},
		{"rejected", "/content/dam.json?token=query-secret",
			http.Header{"Authorization": {"Bearer bad-bearer-secret"}}, 401, nil, zapcore.InfoLevel},
		{"health probe", "/gatehouse/healthz?token=query-secret", nil, 200, nil, zapcore.DebugLevel},
		{"readiness probe", "/gatehouse/readyz", nil, 200, nil, zapcore.DebugLevel},
		{"other reserved path", "/gatehouse/nothing-here", nil, 404, nil, zapcore.InfoLevel},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, nil, nil)
			req := h.newRequest(t, http.MethodGet, tt.target, nil)
			for k, v := range tt.header {
				req.Header[k] = v
			}
			res, _ := h.do(t, req)
			line := h.waitAccessLine(t, func(map[string]any) bool { return true })
			path, _, _ := strings.Cut(tt.target, "?")
			want := map[string]any{
				"method":     "GET",
				"path":       path,
				"status":     tt.wantStatus,
				"request_id": res.Header.Get(HeaderRequestID),
				"user":       tt.wantUser,
			}
			for k, v := range want {
				if line[k] != v {
					t.Errorf("%s = %v, want %v", k, line[k], v)
				}
			}
			if _, ok := line["duration"].(time.Duration); !ok {
				t.Errorf("duration = %v", line["duration"])
			}
			if _, ok := line["bytes"].(int64); !ok {
				t.Errorf("bytes = %v", line["bytes"])
			}
			for _, e := range h.logs.All() {
				s := e.Message + fmt.Sprint(e.ContextMap())
				if strings.Contains(s, "secret") {
					t.Errorf("log line leaks a secret: %s", s)
				}
			}
			if lines := h.accessLines(); len(lines) != 1 {
				t.Errorf("%d access-log lines, want 1", len(lines))
			} else if lines[0].Level != tt.wantLevel {
				t.Errorf("logged at %s, want %s", lines[0].Level, tt.wantLevel)
			}
		})
	}
}

func TestPanicRecovery(t *testing.T) {
	tests := []struct {
		name      string
		handler   http.HandlerFunc
		wantPanic any // re-panicked value the server must see; nil: answered 500
	}{
		{"panic before writing", func(w http.ResponseWriter, r *http.Request) { panic("boom") }, nil},
		{"panic after writing", func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusOK)
			panic(errors.New("boom"))
		}, http.ErrAbortHandler},
		{"abort handler", func(w http.ResponseWriter, r *http.Request) { panic(http.ErrAbortHandler) }, http.ErrAbortHandler},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, nil, func(c *Config) {
				c.Authenticate = func(http.Handler) http.Handler { return tt.handler }
			})
			rec := httptest.NewRecorder()
			var got any
			func() {
				defer func() { got = recover() }()
				h.handler.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/x", nil))
			}()
			if got != tt.wantPanic {
				t.Fatalf("panic %v, want %v", got, tt.wantPanic)
			}
			if tt.wantPanic == nil && (rec.Code != 500 || !strings.Contains(rec.Body.String(), "internal error")) {
				t.Errorf("got %d %q", rec.Code, rec.Body)
			}
			panics := h.logs.FilterMessage("panic while handling request").Len()
			if wantLogged := tt.name != "abort handler"; (panics == 1) != wantLogged {
				t.Errorf("%d panics logged", panics)
			}
			if len(h.accessLines()) != 1 {
				t.Errorf("%d access-log lines, want 1", len(h.accessLines()))
			}
		})
	}
}
