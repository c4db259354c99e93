package proxy

import (
	"fmt"
	"net"
	"net/http"
	"time"
)

// Transport holds the connection-pool settings for the upstream. A zero
// field takes the default written next to it.
type Transport struct {
	DialTimeout time.Duration // default 5s
	// ResponseHeaderTimeout bounds the wait for the upstream's response
	// headers. Bodies stream without a deadline, so that large downloads
	// and long-lived streams are not cut off.
	ResponseHeaderTimeout time.Duration // default 60s
	IdleConnTimeout       time.Duration // default 90s
	MaxIdleConns          int           // default 512
	// MaxIdleConnsPerHost is high because Gatehouse talks to one host
	// only: net/http's default of 2 would make a busy sidecar open and
	// close a connection for almost every request.
	MaxIdleConnsPerHost int           // default 256
	TLSHandshakeTimeout time.Duration // default 10s
	// DisableDirect sends every request through net/http's Transport,
	// also the bodiless GET and HEAD requests that otherwise take the
	// direct path (see directTransport). The proxy's upstream only.
	DisableDirect bool
}

// Defaults for the zero fields of Transport.
const (
	defaultDialTimeout           = 5 * time.Second
	defaultResponseHeaderTimeout = 60 * time.Second
	defaultIdleConnTimeout       = 90 * time.Second
	defaultMaxIdleConns          = 512
	defaultMaxIdleConnsPerHost   = 256
	defaultTLSHandshakeTimeout   = 10 * time.Second
)

func (t Transport) withDefaults() Transport {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&t.DialTimeout, defaultDialTimeout)
	def(&t.ResponseHeaderTimeout, defaultResponseHeaderTimeout)
	def(&t.IdleConnTimeout, defaultIdleConnTimeout)
	def(&t.TLSHandshakeTimeout, defaultTLSHandshakeTimeout)
	if t.MaxIdleConns == 0 {
		t.MaxIdleConns = defaultMaxIdleConns
	}
	if t.MaxIdleConnsPerHost == 0 {
		t.MaxIdleConnsPerHost = defaultMaxIdleConnsPerHost
	}
	return t
}

func (t Transport) validate() error {
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"DialTimeout", t.DialTimeout},
		{"ResponseHeaderTimeout", t.ResponseHeaderTimeout},
		{"IdleConnTimeout", t.IdleConnTimeout},
		{"TLSHandshakeTimeout", t.TLSHandshakeTimeout},
	} {
		if d.v < 0 {
			return fmt.Errorf("Transport.%s must not be negative, got %s", d.name, d.v)
		}
	}
	if t.MaxIdleConns < 0 {
		return fmt.Errorf("Transport.MaxIdleConns must not be negative, got %d", t.MaxIdleConns)
	}
	if t.MaxIdleConnsPerHost < 0 {
		return fmt.Errorf("Transport.MaxIdleConnsPerHost must not be negative, got %d", t.MaxIdleConnsPerHost)
	}
	return nil
}

// NewTransport returns the *http.Transport Gatehouse uses for the upstream,
// with t's settings and defaults for its zero fields. It is exported so
// that a baseline proxy in benchmarks can use identical pool settings.
//
// Unlike http.DefaultTransport it ignores HTTP_PROXY and friends (a
// sidecar talks to its upstream directly) and does not ask for gzip on the
// client's behalf: the proxy passes Accept-Encoding and Content-Encoding
// through untouched instead of decompressing responses itself.
func NewTransport(t Transport) *http.Transport {
	t = t.withDefaults()
	dialer := &net.Dialer{Timeout: t.DialTimeout, KeepAlive: 30 * time.Second}
	return &http.Transport{
		Proxy:                 nil,
		DialContext:           dialer.DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          t.MaxIdleConns,
		MaxIdleConnsPerHost:   t.MaxIdleConnsPerHost,
		IdleConnTimeout:       t.IdleConnTimeout,
		TLSHandshakeTimeout:   t.TLSHandshakeTimeout,
		ResponseHeaderTimeout: t.ResponseHeaderTimeout,
		ExpectContinueTimeout: 1 * time.Second,
		DisableCompression:    true,
	}
}
