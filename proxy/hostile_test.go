package proxy

import (
	"bufio"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"
)

// rawConn is a client connection to Gatehouse that writes bytes as given,
// for what a well-behaved client library refuses to send. Every read has a
// generous deadline, so that a server that never answers fails the test
// instead of hanging it.
type rawConn struct {
	net.Conn
	br *bufio.Reader
}

const rawTimeout = 5 * time.Second

func dialRaw(t *testing.T, h *harness) *rawConn {
	t.Helper()
	c, err := net.Dial("tcp", h.server.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &rawConn{Conn: c, br: bufio.NewReader(c)}
}

func (c *rawConn) send(t *testing.T, raw string) {
	t.Helper()
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatalf("write: %v", err)
	}
}

// response reads one response within rawTimeout, body included.
func (c *rawConn) response(t *testing.T, method string) (*http.Response, string) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(rawTimeout))
	res, err := http.ReadResponse(c.br, &http.Request{Method: method})
	if err != nil {
		t.Fatalf("no response within %s: %v", rawTimeout, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("reading the response body: %v", err)
	}
	return res, string(body)
}

// wantClosed checks that the server closes the connection within
// rawTimeout without sending anything more.
func (c *rawConn) wantClosed(t *testing.T) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(rawTimeout))
	b, err := c.br.ReadByte()
	switch {
	case err == nil:
		line, _ := c.br.ReadString('\n') // the status line is enough
		t.Errorf("connection still serving: got %q", append([]byte{b}, line...))
	case errors.Is(err, os.ErrDeadlineExceeded):
		t.Errorf("connection still open after %s", rawTimeout)
	case !errors.Is(err, io.EOF):
		t.Logf("connection ended with %v", err) // a reset is closed too
	}
}

// wantReason checks the X-Reason header and that the body is Gatehouse's
// JSON error with the same reason.
func wantReason(t *testing.T, res *http.Response, body, reason string) {
	t.Helper()
	if got := res.Header.Get("X-Reason"); got != reason {
		t.Errorf("X-Reason %q, want %q", got, reason)
	}
	var e struct{ Reason string }
	if err := json.Unmarshal([]byte(body), &e); err != nil || e.Reason != reason {
		t.Errorf("body %q, want JSON with reason %q", body, reason)
	}
}

// TestUnsentBodyRefusedAtOnce: a request that declares a body and never
// sends it gets its refusal at once, and the connection is closed: the
// body is not waited for, whatever Config.UnauthenticatedBodyTimeout.
// Once authenticated, a body may take longer than that timeout.
func TestUnsentBodyRefusedAtOnce(t *testing.T) {
	tests := []struct {
		name, raw  string
		wantStatus int
	}{
		{"content-length, no credentials",
			"POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\n", 401},
		{"content-length, bad bearer",
			"PUT /upload HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer bad\r\nContent-Length: 100\r\n\r\n", 401},
		{"chunked, no credentials",
			"POST /upload HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n", 401},
		{"reserved path",
			"POST /gatehouse/healthz HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\n", 405},
		{"refused method",
			"TRACE / HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer good\r\nContent-Length: 100\r\n\r\n", 405},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, nil, func(c *Config) { c.UnauthenticatedBodyTimeout = time.Minute })
			c := dialRaw(t, h)
			c.send(t, tt.raw)
			res, _ := c.response(t, "POST")
			if res.StatusCode != tt.wantStatus || !res.Close {
				t.Errorf("got %d, Connection: close %v; want %d and close", res.StatusCode, res.Close, tt.wantStatus)
			}
			c.wantClosed(t)
			if n := h.upstream.hits.Load(); n != 0 {
				t.Errorf("upstream hit %d times", n)
			}
		})
	}

	t.Run("authenticated body slower than the timeout", func(t *testing.T) {
		h := newHarness(t, func(w http.ResponseWriter, r *http.Request) {
			b, err := io.ReadAll(r.Body)
			if err != nil {
				w.WriteHeader(http.StatusTeapot)
				return
			}
			_, _ = w.Write(b)
		}, func(c *Config) { c.UnauthenticatedBodyTimeout = 100 * time.Millisecond })
		c := dialRaw(t, h)
		c.send(t, "POST /upload HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer good\r\nContent-Length: 10\r\n\r\n")
		for _, part := range []string{"01234", "56789"} {
			time.Sleep(300 * time.Millisecond)
			c.send(t, part)
		}
		res, body := c.response(t, "POST")
		if res.StatusCode != http.StatusOK || body != "0123456789" {
			t.Errorf("got %d %q, want 200 with the body echoed", res.StatusCode, body)
		}
		if res.Close {
			t.Error("Connection: close after an authenticated request of known length")
		}
		// The connection serves a next request.
		c.send(t, "GET /next HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer good\r\n\r\n")
		if res, _ := c.response(t, "GET"); res.StatusCode != http.StatusOK {
			t.Errorf("next request: %d", res.StatusCode)
		}
	})
}

// TestSmuggledRequestNotServed: a request with both Content-Length and
// Transfer-Encoding gets one answer and the connection is closed, so the
// bytes after its chunked body are never served as a second request. Go's
// server hides Content-Length from handlers in that case, so every request
// with a chunked body closes its connection.
func TestSmuggledRequestNotServed(t *testing.T) {
	const smuggled = "GET /smuggled HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer good\r\n\r\n"
	tests := []struct {
		name, head string
		wantStatus int
	}{
		{"content-length and chunked, authenticated",
			"POST /a HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer good\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", 200},
		{"chunked and content-length, no credentials",
			"POST /a HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n", 401},
		{"chunked alone, authenticated",
			"POST /a HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer good\r\nTransfer-Encoding: chunked\r\n\r\n", 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, func(w http.ResponseWriter, r *http.Request) {
				// 103 first: ReverseProxy clears the header map after it.
				w.Header().Set("Link", "</style.css>; rel=preload")
				w.WriteHeader(http.StatusEarlyHints)
				_, _ = io.Copy(io.Discard, r.Body)
				_, _ = io.WriteString(w, "upstream ok")
			}, nil)
			c := dialRaw(t, h)
			c.send(t, tt.head+"5\r\nhello\r\n0\r\n\r\n"+smuggled)
			res, _ := c.response(t, "POST")
			for res.StatusCode == http.StatusEarlyHints {
				res, _ = c.response(t, "POST")
			}
			if res.StatusCode != tt.wantStatus || !res.Close {
				t.Errorf("got %d, Connection: close %v; want %d and close", res.StatusCode, res.Close, tt.wantStatus)
			}
			c.wantClosed(t)
			h.upstream.mu.Lock()
			defer h.upstream.mu.Unlock()
			for _, s := range h.upstream.seen {
				if s.Path == "/smuggled" {
					t.Error("the smuggled request reached the upstream")
				}
			}
		})
	}
}

// TestClientBodyErrors: a body that cannot be read while it is forwarded
// is the client's fault (400 BAD_REQUEST_BODY) or the client's departure
// (499 in the access log), never the upstream's (502).
func TestClientBodyErrors(t *testing.T) {
	tests := []struct {
		name, raw  string
		hangUp     bool
		wantStatus int // sent; 0: none, the client is gone
		wantLog    int // in the access log
	}{
		{"bad chunk size",
			"POST /up HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer good\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\n", false, 400, 400},
		{"chunk longer than announced",
			"POST /up HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer good\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhello\r\n0\r\n\r\n", false, 400, 400},
		{"hang-up in a body of known length",
			"POST /up HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer good\r\nContent-Length: 1000\r\n\r\nhello", true, 0, 499},
		{"hang-up in a chunked body",
			"POST /up HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer good\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n", true, 0, 499},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.Copy(io.Discard, r.Body)
				_, _ = io.WriteString(w, "upstream ok")
			}, nil)
			c := dialRaw(t, h)
			c.send(t, tt.raw)
			if tt.hangUp {
				// Wait until the upstream is being sent the body, then go.
				deadline := time.Now().Add(rawTimeout)
				for h.upstream.hits.Load() == 0 && time.Now().Before(deadline) {
					time.Sleep(5 * time.Millisecond)
				}
				c.Close()
			} else {
				res, body := c.response(t, "POST")
				if res.StatusCode != tt.wantStatus {
					t.Errorf("got %d %q, want %d", res.StatusCode, body, tt.wantStatus)
				}
				wantReason(t, res, body, ReasonBadRequestBody)
				c.wantClosed(t)
			}
			line := h.waitAccessLine(t, func(m map[string]any) bool { return m["path"] == "/up" })
			if line["status"] != int64(tt.wantLog) {
				t.Errorf("access log status %v, want %d", line["status"], tt.wantLog)
			}
			if n := h.logs.FilterMessage("upstream unavailable").Len(); n != 0 {
				t.Errorf("logged %d times that the upstream is unavailable", n)
			}
		})
	}
}

// TestRefusedMethods: CONNECT, TRACE and TRACK are refused with 405, an
// Allow header without them and X-Reason, and never reach the upstream,
// authenticated or not.
func TestRefusedMethods(t *testing.T) {
	tests := []struct{ name, raw string }{
		{"CONNECT authority, bearer", "CONNECT 127.0.0.1:22 HTTP/1.1\r\nHost: 127.0.0.1:22\r\nAuthorization: Bearer good\r\n\r\n"},
		{"CONNECT authority, cookie", "CONNECT 127.0.0.1:22 HTTP/1.1\r\nHost: 127.0.0.1:22\r\nCookie: login-token=good\r\n\r\n"},
		{"CONNECT path, bearer", "CONNECT /content HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer good\r\n\r\n"},
		{"CONNECT, no credentials", "CONNECT 127.0.0.1:22 HTTP/1.1\r\nHost: 127.0.0.1:22\r\n\r\n"},
		{"connect in lower case, cookie", "connect /content HTTP/1.1\r\nHost: a\r\nCookie: login-token=good\r\n\r\n"},
		{"TRACE, cookie", "TRACE /content HTTP/1.1\r\nHost: a\r\nCookie: login-token=good\r\n\r\n"},
		{"TRACK, bearer", "TRACK /content HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer good\r\n\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, nil, nil)
			c := dialRaw(t, h)
			c.send(t, tt.raw)
			res, body := c.response(t, "GET")
			if res.StatusCode != http.StatusMethodNotAllowed {
				t.Errorf("got %d %q, want 405", res.StatusCode, body)
			}
			wantReason(t, res, body, ReasonMethodNotAllowed)
			allow := res.Header.Get("Allow")
			if allow == "" || strings.Contains(allow, "CONNECT") || strings.Contains(allow, "TRACE") {
				t.Errorf("Allow %q", allow)
			}
			if n := h.upstream.hits.Load(); n != 0 {
				t.Errorf("upstream hit %d times", n)
			}
		})
	}
}
