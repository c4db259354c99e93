package test

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"
)

// TestHostileConnections: what a client writes on a raw connection, bytes
// a client library would not send, against the real binary.
//   - A request that declares a body and never sends it is refused at once
//     and its connection closed, long before GATEHOUSE_READ_HEADER_TIMEOUT.
//   - A request with both Content-Length and Transfer-Encoding gets one
//     answer and its connection is closed: what follows its chunked body is
//     never served as a second request.
//   - CONNECT is refused and never forwarded, even when authenticated.
func TestHostileConnections(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	p := w.start(t, map[string]string{"READ_HEADER_TIMEOUT": "1m"})
	bearer := w.mint(t, alice, clientID)
	// Sign in once, so that the requests below are not the first sign-in.
	wantStatus(t, p.do(t, request{path: whoami, bearer: bearer}), http.StatusOK)
	smuggled := "GET /smuggled HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer " + bearer + "\r\n\r\n"

	tests := []struct {
		name, raw  string
		wantStatus int  // 0: any but 5xx
		keepAlive  bool // the connection may serve a next request
	}{
		{"body declared, never sent, no credentials",
			"PUT /content/dam/x.jpg HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\n", 401, false},
		{"chunked body never sent, bad bearer",
			"PUT /content/dam/x.jpg HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer bad\r\nTransfer-Encoding: chunked\r\n\r\n", 401, false},
		{"content-length and chunked, signed in",
			"POST " + whoami + " HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer " + bearer +
				"\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n" +
				smuggled, 0, false},
		{"content-length and chunked, no credentials",
			"POST " + whoami + " HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n5\r\nhello\r\n0\r\n\r\n" +
				smuggled, 401, false},
		{"CONNECT, signed in",
			"CONNECT 127.0.0.1:22 HTTP/1.1\r\nHost: 127.0.0.1:22\r\nAuthorization: Bearer " + bearer + "\r\n\r\n", 405, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := w.backend.Requests()
			c, err := net.Dial("tcp", strings.TrimPrefix(p.url, "http://"))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if _, err := io.WriteString(c, tt.raw); err != nil {
				t.Fatal(err)
			}
			br := bufio.NewReader(c)
			start := time.Now()
			_ = c.SetReadDeadline(start.Add(5 * time.Second))
			res, err := http.ReadResponse(br, &http.Request{Method: http.MethodPost})
			if err != nil {
				t.Fatalf("no answer within 5s: %v", err)
			}
			_, _ = io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if tt.wantStatus != 0 && res.StatusCode != tt.wantStatus || res.StatusCode >= 500 {
				t.Errorf("status %d, want %d", res.StatusCode, tt.wantStatus)
			}
			if tt.wantStatus != 0 && w.backend.Requests() != before {
				t.Errorf("the backend got %d requests", w.backend.Requests()-before)
			}
			if tt.keepAlive {
				return
			}
			if !res.Close {
				t.Error("no Connection: close")
			}
			switch b, err := br.ReadByte(); {
			case err == nil:
				line, _ := br.ReadString('\n') // the status line; the rest may hold a cookie
				t.Errorf("the connection goes on serving: %q", append([]byte{b}, line...))
			case errors.Is(err, os.ErrDeadlineExceeded):
				t.Errorf("the connection is still open after %s", time.Since(start).Round(time.Millisecond))
			}
			for _, s := range w.backend.Seen() {
				if s.Path == "/smuggled" {
					t.Error("the smuggled request reached the backend")
				}
			}
		})
	}
}
