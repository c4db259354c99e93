package proxy

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptrace"
	"strings"
	"sync"
	"syscall"
	"time"
)

// directTransport sends bodiless GET and HEAD requests to a plain-http
// upstream over its own pool of HTTP/1.1 connections, writing the request
// and reading the answer on the caller's goroutine; every other request
// (bodies, upgrades, other methods, https) goes to next, net/http's
// Transport.
//
// Why a second client: net/http's Transport runs a reader and a writer
// goroutine per connection and hands every request and response between
// them and the caller over channels, so a proxied request wakes three
// goroutines where one would do. In the benchmark (test/bench, the cookie
// path) those hand-offs were about a third of the forwarding's CPU time,
// more than all of Gatehouse's own per-request work. Browsing, searching
// and downloading renditions, nearly all of a content backend's traffic,
// are bodiless GETs; they take the direct path. The request is written by
// net/http's own serializer (Request.Write) and the answer read by its own
// parser (http.ReadResponse), so the wire format is net/http's.
//
// What it keeps from net/http's Transport: idle connections reused LIFO
// and closed after IdleConnTimeout; a request that finds a reused
// connection closed by the upstream before any byte of the answer arrived
// is retried on another connection (GET and HEAD are idempotent), as
// net/http does; the response-header timeout; a bound on the response
// header's size; 1xx answers passed to the client trace (ReverseProxy
// forwards 103 Early Hints that way); a canceled request closes its
// connection at once, also in the middle of a body; a connection is reused
// only after its answer was read to the end.
type directTransport struct {
	next          http.RoundTripper
	host          string // the upstream's host as in its URL
	addr          string // host:port to dial
	dial          func(ctx context.Context, network, addr string) (net.Conn, error)
	headerTimeout time.Duration
	idleTimeout   time.Duration
	maxIdle       int
	maxHeader     int64 // bytes of an answer's status line and headers

	mu   sync.Mutex
	idle []*directConn // most recently used last
}

// maxResponseHeaderBytes bounds an upstream answer's status line and
// headers, as net/http's Transport does by default.
const maxResponseHeaderBytes = 10 << 20

// max1xxResponses is how many informational answers may precede the
// final one, as in net/http.
const max1xxResponses = 5

// errDirectStale marks a reused connection the upstream had closed before
// any byte of the answer arrived: the request is sent again elsewhere.
var errDirectStale = errors.New("upstream closed an idle connection")

// aLongTimeAgo is a deadline in the past: setting it makes every pending
// read and write on a connection return at once.
var aLongTimeAgo = time.Unix(1, 0)

func newDirectTransport(next http.RoundTripper, host string, t Transport) *directTransport {
	dialer := &net.Dialer{Timeout: t.DialTimeout, KeepAlive: 30 * time.Second}
	addr := host
	if _, _, err := net.SplitHostPort(host); err != nil {
		addr = net.JoinHostPort(strings.Trim(host, "[]"), "80")
	}
	return &directTransport{
		next:          next,
		host:          host,
		addr:          addr,
		dial:          dialer.DialContext,
		headerTimeout: t.ResponseHeaderTimeout,
		idleTimeout:   t.IdleConnTimeout,
		maxIdle:       t.MaxIdleConnsPerHost,
		maxHeader:     maxResponseHeaderBytes,
	}
}

// direct reports whether req takes the direct path. Everything else is
// left to net/http, which handles it completely.
func (t *directTransport) direct(req *http.Request) bool {
	if req.Method != http.MethodGet && req.Method != http.MethodHead {
		return false
	}
	if req.Body != nil && req.Body != http.NoBody || req.ContentLength != 0 || len(req.TransferEncoding) > 0 {
		return false
	}
	if req.URL.Scheme != "http" || req.URL.Host != t.host {
		return false
	}
	// ReverseProxy sets these only for protocol upgrades (WebSocket),
	// which need net/http's hijackable response body.
	_, upgrade := req.Header["Upgrade"]
	_, connection := req.Header["Connection"]
	return !upgrade && !connection && len(req.Trailer) == 0
}

// RoundTrip implements http.RoundTripper.
func (t *directTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if !t.direct(req) {
		return t.next.RoundTrip(req)
	}
	ctx := req.Context()
	for {
		c, err := t.get(ctx)
		if err != nil {
			return nil, err
		}
		res, err := c.roundTrip(ctx, req)
		if err == nil {
			return res, nil
		}
		c.close()
		if c.reused && errors.Is(err, errDirectStale) && ctx.Err() == nil {
			continue // another idle connection, or a new one: the pool shrinks every time
		}
		return nil, err
	}
}

// get returns an idle connection or dials a new one.
func (t *directTransport) get(ctx context.Context) (*directConn, error) {
	now := time.Now()
	t.mu.Lock()
	for n := len(t.idle); n > 0; n = len(t.idle) {
		c := t.idle[n-1]
		t.idle[n-1] = nil
		t.idle = t.idle[:n-1]
		if now.Sub(c.idleSince) < t.idleTimeout {
			t.mu.Unlock()
			c.reused = true
			return c, nil
		}
		// Past its idle time: idle connections below it are older still.
		t.mu.Unlock()
		c.close()
		t.mu.Lock()
	}
	t.mu.Unlock()
	nc, err := t.dial(ctx, "tcp", t.addr)
	if err != nil {
		return nil, fmt.Errorf("dial upstream %s: %w", t.addr, err)
	}
	c := &directConn{t: t, nc: nc}
	c.lr = limitedConn{nc: nc}
	c.br = bufio.NewReaderSize(&c.lr, 4<<10)
	c.bw = bufio.NewWriterSize(nc, 4<<10)
	return c, nil
}

// put returns c to the idle pool, or closes it if the pool is full. The
// oldest idle connection is closed when it has been idle too long, so that
// a pool that shrank after a burst gives its sockets back.
func (t *directTransport) put(c *directConn) {
	c.idleSince = time.Now()
	t.mu.Lock()
	var expired *directConn
	if len(t.idle) > 0 && c.idleSince.Sub(t.idle[0].idleSince) >= t.idleTimeout {
		expired = t.idle[0]
		t.idle = append(t.idle[:0], t.idle[1:]...)
	}
	full := len(t.idle) >= t.maxIdle
	if !full {
		t.idle = append(t.idle, c)
	}
	t.mu.Unlock()
	if expired != nil {
		expired.close()
	}
	if full {
		c.close()
	}
}

// CloseIdleConnections closes the idle connections of both paths.
func (t *directTransport) CloseIdleConnections() {
	t.mu.Lock()
	idle := t.idle
	t.idle = nil
	t.mu.Unlock()
	for _, c := range idle {
		c.close()
	}
	if ci, ok := t.next.(interface{ CloseIdleConnections() }); ok {
		ci.CloseIdleConnections()
	}
}

// directConn is one connection of the direct path's pool.
type directConn struct {
	t         *directTransport
	nc        net.Conn
	lr        limitedConn
	br        *bufio.Reader
	bw        *bufio.Writer
	reused    bool
	idleSince time.Time
}

func (c *directConn) close() { _ = c.nc.Close() }

// roundTrip writes req and reads the answer's headers. On success the
// connection belongs to the response's body until it is read to the end
// (then it goes back to the pool) or closed.
func (c *directConn) roundTrip(ctx context.Context, req *http.Request) (*http.Response, error) {
	// A canceled request (the client went away) must not leave the
	// handler blocked on a slow upstream, whether it waits for the
	// headers or is in the middle of the body.
	stop := context.AfterFunc(ctx, func() { _ = c.nc.SetDeadline(aLongTimeAgo) })
	res, err := c.exchange(req)
	if err != nil {
		stop()
		return nil, err
	}
	body := &directBody{c: c, stop: stop, reusable: !res.Close && !req.Close}
	if res.Body == http.NoBody {
		body.done()
		return res, nil
	}
	body.rc = res.Body
	res.Body = body
	return res, nil
}

// exchange writes req and reads its final answer's headers.
func (c *directConn) exchange(req *http.Request) (*http.Response, error) {
	// Header values reach here from net/http's server, which refuses
	// control characters in them, or from Gatehouse, which encodes its
	// own; Request.Write turns any newline into a space regardless.
	if err := req.Write(c.bw); err != nil {
		return nil, c.wrap(err, true)
	}
	if err := c.bw.Flush(); err != nil {
		return nil, c.wrap(err, true)
	}
	if c.t.headerTimeout > 0 {
		_ = c.nc.SetReadDeadline(time.Now().Add(c.t.headerTimeout))
	}
	c.lr.remaining = c.t.maxHeader
	trace := httptrace.ContextClientTrace(req.Context())
	for n1xx := 0; ; n1xx++ {
		if _, err := c.br.Peek(1); err != nil {
			return nil, c.wrap(err, n1xx == 0)
		}
		res, err := http.ReadResponse(c.br, req)
		if err != nil {
			if errors.Is(err, errHeaderTooLong) {
				return nil, fmt.Errorf("upstream answer: headers longer than %d bytes", c.t.maxHeader)
			}
			return nil, c.wrap(err, false)
		}
		if res.StatusCode >= 200 || res.StatusCode < 100 {
			c.lr.remaining = math.MaxInt64
			if c.t.headerTimeout > 0 {
				_ = c.nc.SetReadDeadline(time.Time{})
			}
			return res, nil
		}
		if res.StatusCode == http.StatusSwitchingProtocols {
			return nil, errors.New("upstream answer: 101 Switching Protocols to a request that asked for no upgrade")
		}
		if n1xx == max1xxResponses {
			return nil, errors.New("upstream answer: too many 1xx informational responses")
		}
		if trace != nil && trace.Got1xxResponse != nil {
			if err := trace.Got1xxResponse(res.StatusCode, map[string][]string(res.Header)); err != nil {
				return nil, err
			}
		}
	}
}

// wrap turns a connection error into what the error handler expects: a
// timeout stays a net.Error with Timeout, and a reused connection found
// closed before any answer is errDirectStale, to be retried.
func (c *directConn) wrap(err error, beforeAnswer bool) error {
	if c.reused && beforeAnswer && c.br.Buffered() == 0 &&
		(errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)) {
		return fmt.Errorf("%w: %w", errDirectStale, err)
	}
	if errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("upstream %s: %w", c.t.addr, err)
}

// errHeaderTooLong is what limitedConn returns once an answer's headers
// have used up their bytes.
var errHeaderTooLong = errors.New("upstream answer headers too long")

// limitedConn bounds how much of the connection the answer's headers may
// use; the body is not bounded.
type limitedConn struct {
	nc        net.Conn
	remaining int64
}

func (l *limitedConn) Read(p []byte) (int, error) {
	if l.remaining <= 0 {
		return 0, errHeaderTooLong
	}
	if int64(len(p)) > l.remaining {
		p = p[:l.remaining]
	}
	n, err := l.nc.Read(p)
	l.remaining -= int64(n)
	return n, err
}

// directBody is the answer's body. Read to its end, it gives the
// connection back to the pool; closed before that, it closes the
// connection rather than read the rest, which may be gigabytes.
type directBody struct {
	c        *directConn
	rc       io.ReadCloser
	stop     func() bool
	reusable bool
	finished bool
}

func (b *directBody) Read(p []byte) (int, error) {
	if b.finished {
		return 0, io.EOF
	}
	n, err := b.rc.Read(p)
	if err == io.EOF {
		b.done()
	} else if err != nil {
		b.finished = true
		b.stop()
		b.c.close()
	}
	return n, err
}

// done is called once the whole answer was read: the connection goes back
// to the pool unless the answer or a cancellation ended it.
func (b *directBody) done() {
	b.finished = true
	if b.stop() && b.reusable {
		b.c.t.put(b.c)
		return
	}
	b.c.close()
}

func (b *directBody) Close() error {
	if !b.finished {
		b.finished = true
		b.stop()
		b.c.close() // before anything would read the rest of the body
	}
	return nil
}
