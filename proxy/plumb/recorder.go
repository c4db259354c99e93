package plumb

import (
	"bufio"
	"net"
	"net/http"
)

// ResponseRecorder remembers the status and counts the body bytes of an
// answer, for access logs. It passes Flush and Hijack through (streaming
// responses and WebSocket upgrades need them) and unwraps for
// http.ResponseController.
type ResponseRecorder struct {
	http.ResponseWriter
	status      int
	wroteHeader bool
	hijacked    bool
	bytes       int64
	// closeConn: the final answer carries Connection: close. Set at the
	// moment of writing, so that nothing that edits the header map before
	// (ReverseProxy clears it after forwarding a 1xx) can drop it.
	closeConn bool
}

var (
	_ http.Flusher  = (*ResponseRecorder)(nil)
	_ http.Hijacker = (*ResponseRecorder)(nil)
)

// NewResponseRecorder wraps w.
func NewResponseRecorder(w http.ResponseWriter) *ResponseRecorder {
	return &ResponseRecorder{ResponseWriter: w}
}

// Started reports whether the answer has begun (a status was written or
// the connection was hijacked): too late to answer with an error.
func (w *ResponseRecorder) Started() bool { return w.wroteHeader || w.hijacked }

// Hijacked reports whether the connection was taken over (a protocol
// switch): it no longer speaks HTTP.
func (w *ResponseRecorder) Hijacked() bool { return w.hijacked }

// Bytes is the number of body bytes written (not counting what was written
// on a hijacked connection).
func (w *ResponseRecorder) Bytes() int64 { return w.bytes }

// LogStatus is the status an access log should record: 499 when the client
// went away before the answer was complete (clientGone, or a cancelled
// request that was aborted or never answered), 101 for a hijacked
// connection, 200 when nothing was written (what net/http sends), and the
// written status otherwise.
func (w *ResponseRecorder) LogStatus(r *http.Request, clientGone, aborted bool) int {
	switch {
	case clientGone, r.Context().Err() != nil && (aborted || !w.Started()):
		return StatusClientClosedRequest
	case w.hijacked && w.status == 0:
		return http.StatusSwitchingProtocols
	case w.status == 0:
		return http.StatusOK
	}
	return w.status
}

// WriteHeader implements http.ResponseWriter.
func (w *ResponseRecorder) WriteHeader(code int) {
	// Informational answers (100 Continue, 103 Early Hints) come before the
	// real one; ReverseProxy may send them from the transport's goroutine,
	// so they must not touch our fields.
	if code >= 100 && code < 200 && code != http.StatusSwitchingProtocols {
		w.ResponseWriter.WriteHeader(code)
		return
	}
	if !w.wroteHeader {
		w.status = code
		w.wroteHeader = true
		if w.closeConn && code >= 200 {
			w.Header().Set("Connection", "close")
		}
	}
	w.ResponseWriter.WriteHeader(code)
}

// Write implements http.ResponseWriter.
func (w *ResponseRecorder) Write(p []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	n, err := w.ResponseWriter.Write(p)
	w.bytes += int64(n)
	return n, err
}

// Flush implements http.Flusher.
func (w *ResponseRecorder) Flush() { _ = w.FlushError() }

// FlushError is what http.ResponseController calls, so that flush errors
// are not lost.
func (w *ResponseRecorder) FlushError() error {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	return http.NewResponseController(w.ResponseWriter).Flush()
}

// Hijack implements http.Hijacker. What is written on a hijacked
// connection is not counted in bytes.
func (w *ResponseRecorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err == nil {
		w.hijacked = true
	}
	return conn, brw, err
}

// Unwrap lets http.ResponseController reach the server's writer for the
// methods not implemented here (deadlines, full duplex).
func (w *ResponseRecorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }
