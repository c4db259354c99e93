package proxy

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// rawUpstream is a loopback upstream that answers each request read on a
// connection with the next of answers (raw bytes, so that tests control
// the wire), then, when closeAfter is set, closes the connection.
type rawUpstream struct {
	ln       net.Listener
	accepted atomic.Int32
}

func newRawUpstream(t *testing.T, serve func(c net.Conn, br *bufio.Reader)) *rawUpstream {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := &rawUpstream{ln: ln}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u.accepted.Add(1)
			go func() {
				defer c.Close()
				serve(c, bufio.NewReader(c))
			}()
		}
	}()
	return u
}

// answerEach answers every request on a connection with answer(i), the
// i-th request overall, until answer returns "".
func answerEach(answer func(i int) string) func(c net.Conn, br *bufio.Reader) {
	var n atomic.Int32
	return func(c net.Conn, br *bufio.Reader) {
		for {
			req, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			_ = req.Body.Close()
			a := answer(int(n.Add(1) - 1))
			if a == "" {
				return
			}
			if _, err := io.WriteString(c, a); err != nil {
				return
			}
		}
	}
}

type countingNext struct{ n atomic.Int32 }

func (c *countingNext) RoundTrip(*http.Request) (*http.Response, error) {
	c.n.Add(1)
	return &http.Response{StatusCode: 299, Body: http.NoBody, Header: http.Header{}}, nil
}

func newTestDirect(addr string, next http.RoundTripper, headerTimeout time.Duration) *directTransport {
	t := Transport{ResponseHeaderTimeout: headerTimeout}.withDefaults()
	if headerTimeout < 0 {
		t.ResponseHeaderTimeout = 0
	}
	return newDirectTransport(next, addr, t)
}

func directGet(t *testing.T, tr http.RoundTripper, ctx context.Context, method, url string) (*http.Response, string, error) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := tr.RoundTrip(req)
	if err != nil {
		return nil, "", err
	}
	b, err := io.ReadAll(res.Body)
	_ = res.Body.Close()
	return res, string(b), err
}

const okAnswer = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"

// TestDirectReusesConnections: the answers, read to their end, leave one
// connection for a series of requests, whatever the framing, and a
// connection the upstream ends is not reused.
func TestDirectReusesConnections(t *testing.T) {
	for _, tc := range []struct {
		name     string
		method   string
		answer   string
		body     string
		wantConn int32
	}{
		{"content-length", "GET", okAnswer, "ok", 1},
		{"chunked with trailer", "GET", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-T\r\n\r\n2\r\nok\r\n0\r\nX-T: v\r\n\r\n", "ok", 1},
		{"head", "HEAD", "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n", "", 1},
		{"no content", "GET", "HTTP/1.1 204 No Content\r\n\r\n", "", 1},
		{"not modified", "GET", "HTTP/1.1 304 Not Modified\r\nContent-Length: 100\r\n\r\n", "", 1},
		{"connection close", "GET", "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok", "ok", 3},
		{"http/1.0", "GET", "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", "ok", 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			up := newRawUpstream(t, answerEach(func(int) string { return tc.answer }))
			next := &countingNext{}
			tr := newTestDirect(up.ln.Addr().String(), next, 0)
			for range 3 {
				res, body, err := directGet(t, tr, context.Background(), tc.method, "http://"+up.ln.Addr().String()+"/x")
				if err != nil {
					t.Fatal(err)
				}
				if body != tc.body {
					t.Fatalf("body %q, want %q", body, tc.body)
				}
				if strings.Contains(tc.name, "trailer") && res.Trailer.Get("X-T") != "v" {
					t.Fatalf("trailer %v", res.Trailer)
				}
			}
			if got := up.accepted.Load(); got != tc.wantConn {
				t.Errorf("%d connections for 3 requests, want %d", got, tc.wantConn)
			}
			if next.n.Load() != 0 {
				t.Error("the request went to net/http's transport")
			}
		})
	}
}

// TestDirectRetriesClosedIdleConnection: the upstream closes a connection
// after each answer (as one does when its idle timeout fires); the next
// request finds it closed before any answer and is sent again on a new
// connection, without an error reaching the client.
func TestDirectRetriesClosedIdleConnection(t *testing.T) {
	up := newRawUpstream(t, func(c net.Conn, br *bufio.Reader) {
		if _, err := http.ReadRequest(br); err == nil {
			_, _ = io.WriteString(c, okAnswer)
		}
	})
	tr := newTestDirect(up.ln.Addr().String(), &countingNext{}, 0)
	for i := range 4 {
		if _, body, err := directGet(t, tr, context.Background(), "GET", "http://"+up.ln.Addr().String()+"/"); err != nil || body != "ok" {
			t.Fatalf("request %d: %q, %v", i, body, err)
		}
		time.Sleep(20 * time.Millisecond) // let the close arrive
	}
	if got := up.accepted.Load(); got != 4 {
		t.Errorf("%d connections, want 4", got)
	}
}

// TestDirectLeavesOtherRequestsToNetHTTP: bodies, other methods, upgrades
// and other hosts go to net/http's transport.
func TestDirectLeavesOtherRequestsToNetHTTP(t *testing.T) {
	addr := "127.0.0.1:1"
	for _, tc := range []struct {
		name  string
		build func() *http.Request
	}{
		{"post", func() *http.Request { r, _ := http.NewRequest("POST", "http://"+addr+"/", nil); return r }},
		{"get with body", func() *http.Request {
			r, _ := http.NewRequest("GET", "http://"+addr+"/", strings.NewReader("x"))
			return r
		}},
		{"upgrade", func() *http.Request {
			r, _ := http.NewRequest("GET", "http://"+addr+"/", nil)
			r.Header.Set("Connection", "Upgrade")
			r.Header.Set("Upgrade", "websocket")
			return r
		}},
		{"https", func() *http.Request { r, _ := http.NewRequest("GET", "https://"+addr+"/", nil); return r }},
		{"other host", func() *http.Request { r, _ := http.NewRequest("GET", "http://127.0.0.2:1/", nil); return r }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			next := &countingNext{}
			tr := newTestDirect(addr, next, 0)
			res, err := tr.RoundTrip(tc.build())
			if err != nil || res.StatusCode != 299 || next.n.Load() != 1 {
				t.Fatalf("not handed to net/http: %v, %v", res, err)
			}
		})
	}
}

// TestDirectFailures: what the upstream does wrong ends in an error the
// error handler classifies (a timeout stays a timeout), promptly, and the
// connection is not reused.
func TestDirectFailures(t *testing.T) {
	stall := func(first string) func(c net.Conn, br *bufio.Reader) {
		return func(c net.Conn, br *bufio.Reader) {
			if _, err := http.ReadRequest(br); err != nil {
				return
			}
			_, _ = io.WriteString(c, first)
			_, _ = io.Copy(io.Discard, c) // until the client closes
		}
	}
	for _, tc := range []struct {
		name    string
		serve   func(c net.Conn, br *bufio.Reader)
		timeout bool
		want    string
	}{
		{"no answer within the header timeout", stall(""), true, ""},
		{"garbage", answerEach(func(int) string { return "SPDY/9 what\r\n\r\n" }), false, "malformed HTTP"},
		{"closed before answering", answerEach(func(int) string { return "" }), false, "unexpected EOF"},
		{"switching protocols unasked", stall("HTTP/1.1 101 Switching Protocols\r\n\r\n"), false, "101"},
		{"endless 1xx", stall(strings.Repeat("HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n", 10)), false, "1xx"},
		{"headers too long", stall("HTTP/1.1 200 OK\r\nX-Big: " + strings.Repeat("a", 8<<10)), false, "longer than"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			up := newRawUpstream(t, tc.serve)
			tr := newTestDirect(up.ln.Addr().String(), &countingNext{}, 200*time.Millisecond)
			tr.maxHeader = 4 << 10
			start := time.Now()
			_, _, err := directGet(t, tr, context.Background(), "GET", "http://"+up.ln.Addr().String()+"/")
			if err == nil {
				t.Fatal("no error")
			}
			var ne net.Error
			if isTimeout := errors.As(err, &ne) && ne.Timeout(); isTimeout != tc.timeout {
				t.Errorf("timeout %v, want %v: %v", isTimeout, tc.timeout, err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q, want it to mention %q", err, tc.want)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("took %s", d)
			}
			if len(tr.idle) != 0 {
				t.Error("a failed connection went back to the pool")
			}
		})
	}
}

// TestDirectCancelAndEarlyClose: a client that goes away in the middle of
// a slow body frees the handler at once, and a body closed before its end
// closes the connection instead of reading a body that may never end.
func TestDirectCancelAndEarlyClose(t *testing.T) {
	up := newRawUpstream(t, func(c net.Conn, br *bufio.Reader) {
		if _, err := http.ReadRequest(br); err != nil {
			return
		}
		_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 1000000000\r\n\r\npartial")
		_, _ = io.Copy(io.Discard, c)
	})
	url := "http://" + up.ln.Addr().String() + "/"
	tr := newTestDirect(up.ln.Addr().String(), &countingNext{}, 0)

	t.Run("cancel", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
		res, err := tr.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		time.AfterFunc(100*time.Millisecond, cancel)
		start := time.Now()
		_, err = io.ReadAll(res.Body)
		if err == nil || time.Since(start) > 5*time.Second {
			t.Fatalf("read ended with %v after %s", err, time.Since(start))
		}
	})
	t.Run("close", func(t *testing.T) {
		req, _ := http.NewRequest("GET", url, nil)
		res, err := tr.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 3)
		_, _ = res.Body.Read(buf)
		done := make(chan struct{})
		go func() { _ = res.Body.Close(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatal("Close read the rest of the body")
		}
	})
	if len(tr.idle) != 0 {
		t.Error("an unfinished connection went back to the pool")
	}
}

// TestDirectEarlyHints: informational answers before the final one reach
// the client trace, through which ReverseProxy forwards them.
func TestDirectEarlyHints(t *testing.T) {
	up := newRawUpstream(t, answerEach(func(int) string {
		return "HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n" + okAnswer
	}))
	tr := newTestDirect(up.ln.Addr().String(), &countingNext{}, 0)
	var hints []string
	ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
		Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
			hints = append(hints, fmt.Sprintf("%d %s", code, h["Link"]))
			return nil
		},
	})
	_, body, err := directGet(t, tr, ctx, "GET", "http://"+up.ln.Addr().String()+"/")
	if err != nil || body != "ok" {
		t.Fatalf("%q, %v", body, err)
	}
	if len(hints) != 1 || hints[0] != "103 [</style.css>; rel=preload]" {
		t.Errorf("hints %q", hints)
	}
}
