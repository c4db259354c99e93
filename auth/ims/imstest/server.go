package imstest

import (
	"net/http"
	"net/http/httptest"
)

// Server is an Emulator listening on a loopback port, like
// httptest.Server. Its methods are the Emulator's, plus Close.
type Server struct {
	*Emulator
	// URL is the base URL, "http://127.0.0.1:<port>", without a trailing
	// slash: the JWKS is URL + "/ims/keys", the certificates
	// URL + CertsPath() + <x5u>.
	URL string

	ts *httptest.Server
}

// NewServer starts an Emulator on 127.0.0.1:0. Like httptest.NewServer, it
// panics when it cannot.
func NewServer(opts Options) *Server {
	e, err := New(opts)
	if err != nil {
		panic(err.Error())
	}
	ts := httptest.NewServer(e)
	return &Server{Emulator: e, URL: ts.URL, ts: ts}
}

// Client is an HTTP client for the server.
func (s *Server) Client() *http.Client { return s.ts.Client() }

// Close shuts the server down, waiting for requests in flight.
func (s *Server) Close() { s.ts.Close() }
