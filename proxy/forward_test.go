package proxy

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"testing/iotest"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/gatehouse-proxy/gatehouse/proxy/plumb"
)

func TestUpstreamDown(t *testing.T) {
	// A port that was free a moment ago: connection refused.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()

	h := newHarness(t, nil, func(c *Config) { c.Upstream.Host = addr })
	req := h.newRequest(t, http.MethodGet, "/content/dam.json?secret=1", nil)
	req.Header.Set("Authorization", "Bearer good")
	start := time.Now()
	res, body := h.do(t, req)
	if res.StatusCode != http.StatusBadGateway || strings.TrimSpace(body) != bodyUpstreamUnavailable ||
		res.Header.Get("X-Reason") != ReasonUpstreamUnavailable {
		t.Errorf("got %d %q, X-Reason %q; want 502 %q, %s", res.StatusCode, body, res.Header.Get("X-Reason"),
			bodyUpstreamUnavailable, ReasonUpstreamUnavailable)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("took %s", d)
	}
	errs := h.logs.FilterMessage("upstream unavailable").All()
	if len(errs) != 1 || errs[0].ContextMap()["upstream"] != addr {
		t.Errorf("want one upstream error logged with the upstream host, got %v", errs)
	}
}

func TestUpstreamSlow(t *testing.T) {
	release := make(chan struct{})
	h := newHarness(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}, func(c *Config) { c.Transport.ResponseHeaderTimeout = 200 * time.Millisecond })
	t.Cleanup(func() { close(release) }) // runs before the upstream closes

	req := h.newRequest(t, http.MethodGet, "/slow", nil)
	req.Header.Set("Authorization", "Bearer good")
	start := time.Now()
	res, body := h.do(t, req)
	if res.StatusCode != http.StatusGatewayTimeout || strings.TrimSpace(body) != bodyUpstreamTimeout ||
		res.Header.Get("X-Reason") != ReasonUpstreamTimeout {
		t.Errorf("got %d %q, X-Reason %q; want 504 %q, %s", res.StatusCode, body, res.Header.Get("X-Reason"),
			bodyUpstreamTimeout, ReasonUpstreamTimeout)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("took %s", d)
	}
}

// timeoutErr is a net.Error that timed out, as a dial timeout returns.
type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

// readErr is the error a read of b returns.
func (b clientBody) readErr() error {
	_, err := b.Read(make([]byte, 1))
	return err
}

func TestErrorHandlerMapping(t *testing.T) {
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name       string
		ctx        context.Context
		err        error
		wantStatus int // 0: nothing written
		wantBody   string
		wantReason string
	}{
		{"refused", context.Background(), &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}, 502, bodyUpstreamUnavailable, ReasonUpstreamUnavailable},
		{"reset", context.Background(), fmt.Errorf("read: %w", syscall.ECONNRESET), 502, bodyUpstreamUnavailable, ReasonUpstreamUnavailable},
		{"dns", context.Background(), &net.DNSError{Err: "no such host", Name: "aem.invalid", IsNotFound: true}, 502, bodyUpstreamUnavailable, ReasonUpstreamUnavailable},
		{"dial timeout", context.Background(), &net.OpError{Op: "dial", Net: "tcp", Err: timeoutErr{}}, 504, bodyUpstreamTimeout, ReasonUpstreamTimeout},
		{"deadline", context.Background(), fmt.Errorf("round trip: %w", context.DeadlineExceeded), 504, bodyUpstreamTimeout, ReasonUpstreamTimeout},
		{"client canceled", canceled, context.Canceled, 0, "", ""},
		{"malformed client body", context.Background(), clientBody{io.NopCloser(iotest.ErrReader(errors.New("malformed chunked encoding")))}.readErr(), 400, `"reason":"BAD_REQUEST_BODY"`, ReasonBadRequestBody},
		{"client hung up in its body", context.Background(), clientBody{io.NopCloser(iotest.ErrReader(io.ErrUnexpectedEOF))}.readErr(), 0, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			core, logs := observer.New(zapcore.DebugLevel)
			rec := &plumb.Record{}
			req := httptest.NewRequest(http.MethodGet, "/", nil).WithContext(plumb.NewContext(tt.ctx, rec))
			req.Header.Set("Authorization", "Bearer secret-value")
			w := httptest.NewRecorder()
			errorHandler(zap.New(core), "aem:4502")(w, req, tt.err)
			if tt.wantStatus == 0 {
				if !rec.ClientGone || w.Body.Len() != 0 {
					t.Errorf("clientGone %v, body %q", rec.ClientGone, w.Body)
				}
			} else if w.Code != tt.wantStatus || !strings.Contains(w.Body.String(), tt.wantBody) ||
				w.Header().Get("X-Reason") != tt.wantReason {
				t.Errorf("got %d %q, X-Reason %q; want %d %q, %q", w.Code, w.Body, w.Header().Get("X-Reason"),
					tt.wantStatus, tt.wantBody, tt.wantReason)
			}
			if logs.Len() != 1 {
				t.Fatalf("logged %d lines, want 1", logs.Len())
			}
			if m := logs.All()[0].ContextMap(); m["upstream"] != "aem:4502" || m["error"] == nil || strings.Contains(fmt.Sprint(m), "secret-value") {
				t.Errorf("log fields %v", m)
			}
		})
	}
}

func TestClientCancel(t *testing.T) {
	tests := []struct {
		name string
		// upstream's behaviour; it signals started and then blocks
		headersFirst bool
	}{
		{"while waiting for headers", false},
		{"while streaming the body", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			started := make(chan struct{})
			release := make(chan struct{})
			h := newHarness(t, func(w http.ResponseWriter, r *http.Request) {
				if tt.headersFirst {
					_, _ = io.WriteString(w, "first")
					http.NewResponseController(w).Flush()
				}
				close(started)
				select {
				case <-release:
				case <-r.Context().Done():
				}
			}, nil)
			t.Cleanup(func() { close(release) })

			ctx, cancel := context.WithCancel(context.Background())
			req := h.newRequest(t, http.MethodGet, "/stream", nil).WithContext(ctx)
			req.Header.Set("Authorization", "Bearer good")
			done := make(chan error, 1)
			go func() {
				res, err := h.server.Client().Do(req)
				if err == nil {
					_, err = io.ReadAll(res.Body)
					res.Body.Close()
				}
				done <- err
			}()
			<-started
			time.Sleep(50 * time.Millisecond) // let the first bytes reach the client
			cancel()
			if err := <-done; !errors.Is(err, context.Canceled) {
				t.Errorf("client error %v, want context.Canceled", err)
			}
			line := h.waitAccessLine(t, func(m map[string]any) bool { return m["path"] == "/stream" })
			if line["status"] != int64(plumb.StatusClientClosedRequest) {
				t.Errorf("access log status %v, want 499", line["status"])
			}
			if n := h.logs.FilterMessage("panic while handling request").Len(); n != 0 {
				t.Errorf("%d panics logged", n)
			}
		})
	}
}

// TestStreamingLargeBodies moves 64 MiB each way with bodies generated on
// the fly, and checks that the process did not allocate anything close to
// the body size: nothing on the path buffers a body whole.
func TestStreamingLargeBodies(t *testing.T) {
	const size = 64 << 20
	want := patternHash(t, size)
	h := newHarness(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodPut:
			sum := sha256.New()
			n, err := io.Copy(sum, r.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			_ = json.NewEncoder(w).Encode(map[string]any{"size": n, "sha256": hex.EncodeToString(sum.Sum(nil))})
		case http.MethodGet:
			if r.URL.Query().Get("length") == "known" {
				w.Header().Set("Content-Length", strconv.Itoa(size))
			}
			_, _ = io.Copy(w, &patternReader{n: size})
		}
	}, nil)

	tests := []struct {
		name     string
		method   string
		target   string
		knownLen bool
	}{
		{"upload chunked", http.MethodPut, "/content/dam/big.bin", false},
		{"upload with length", http.MethodPut, "/content/dam/big.bin", true},
		{"download chunked", http.MethodGet, "/content/dam/big.bin", false},
		{"download with length", http.MethodGet, "/content/dam/big.bin?length=known", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var body io.Reader
			if tt.method == http.MethodPut {
				body = io.NopCloser(&patternReader{n: size}) // hide the type: no length guessing
			}
			req := h.newRequest(t, tt.method, tt.target, body)
			if tt.method == http.MethodPut && tt.knownLen {
				req.ContentLength = size
			}
			req.Header.Set("Authorization", "Bearer good")

			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			res, err := h.server.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			var got string
			if tt.method == http.MethodPut {
				var out struct {
					Size   int64
					SHA256 string
				}
				if err := json.NewDecoder(res.Body).Decode(&out); err != nil {
					t.Fatal(err)
				}
				if out.Size != size {
					t.Errorf("upstream got %d bytes, want %d", out.Size, size)
				}
				got = out.SHA256
			} else {
				sum := sha256.New()
				n, err := io.Copy(sum, res.Body)
				if err != nil || n != size {
					t.Fatalf("read %d bytes: %v", n, err)
				}
				got = hex.EncodeToString(sum.Sum(nil))
			}
			runtime.ReadMemStats(&after)
			if got != want {
				t.Errorf("sha256 %s, want %s", got, want)
			}
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > size/8 {
				t.Errorf("allocated %d MiB moving %d MiB: a body was buffered", alloc>>20, size>>20)
			}
		})
	}
}

// TestResponseNotBuffered: the client gets the first chunk while the
// upstream is still blocked before finishing its response.
func TestResponseNotBuffered(t *testing.T) {
	tests := []struct {
		name        string
		contentType string
	}{
		{"chunked", "application/octet-stream"},
		{"server-sent events", "text/event-stream"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			release := make(chan struct{})
			h := newHarness(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", tt.contentType)
				_, _ = io.WriteString(w, "data: first\n\n")
				http.NewResponseController(w).Flush()
				select {
				case <-release:
				case <-r.Context().Done():
					return
				}
				_, _ = io.WriteString(w, "data: last\n\n")
			}, nil)
			req := h.newRequest(t, http.MethodGet, "/events", nil)
			req.Header.Set("Authorization", "Bearer good")
			res, err := h.server.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()

			first := make(chan string, 1)
			go func() {
				buf := make([]byte, len("data: first\n\n"))
				_, _ = io.ReadFull(res.Body, buf)
				first <- string(buf)
			}()
			select {
			case got := <-first:
				if got != "data: first\n\n" {
					t.Errorf("first chunk %q", got)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("first chunk did not arrive while the upstream was blocked")
			}
			close(release)
			rest, err := io.ReadAll(res.Body)
			if err != nil || string(rest) != "data: last\n\n" {
				t.Errorf("rest %q, %v", rest, err)
			}
		})
	}
}

func TestWebSocketUpgrade(t *testing.T) {
	h := newHarness(t, func(w http.ResponseWriter, r *http.Request) {
		if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") || !strings.EqualFold(r.Header.Get("Connection"), "Upgrade") {
			http.Error(w, "upgrade required", http.StatusUpgradeRequired)
			return
		}
		if r.Header.Get(HeaderUser) != testUser.UserID {
			http.Error(w, "no user", http.StatusForbidden)
			return
		}
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		_, _ = brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
		_ = brw.Flush()
		buf := make([]byte, 1024)
		for {
			n, err := brw.Read(buf)
			if n > 0 {
				if _, werr := conn.Write(buf[:n]); werr != nil {
					return
				}
			}
			if err != nil {
				return
			}
		}
	}, nil)

	conn, err := net.Dial("tcp", h.server.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	_, err = io.WriteString(conn, "GET /ws HTTP/1.1\r\nHost: author.example.com\r\nAuthorization: Bearer good\r\n"+
		"Connection: Upgrade\r\nUpgrade: websocket\r\nX-Forwarded-User: admin\r\n\r\n")
	if err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("status %d", res.StatusCode)
	}
	if res.Header.Get(HeaderRequestID) == "" {
		t.Error("no request id on the 101 response")
	}
	for _, msg := range []string{"hello", "second message"} {
		if _, err := io.WriteString(conn, msg); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, len(msg))
		if _, err := io.ReadFull(br, got); err != nil || string(got) != msg {
			t.Fatalf("echo %q, %v; want %q", got, err, msg)
		}
	}
	conn.Close()
	line := h.waitAccessLine(t, func(m map[string]any) bool { return m["path"] == "/ws" })
	if line["status"] != int64(http.StatusSwitchingProtocols) || line["user"] != testUser.UserID {
		t.Errorf("access log %v", line)
	}
}
