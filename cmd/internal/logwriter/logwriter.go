// Package logwriter is the output behind Gatehouse's logs: lines are
// buffered and written by a goroutine of their own, so that a slow log
// reader never makes a request wait.
package logwriter

import (
	"io"
	"sync"
	"time"

	"go.uber.org/zap/zapcore"
)

// Log lines are buffered and written by a goroutine of their own. A line
// per request is written at every request, and writing it out must not
// make requests wait: a stderr pipe holds 64 KiB, and when its reader (a
// container runtime, a supervisor) falls behind, a write blocks. With
// zap's BufferedWriteSyncer the request that found the buffer full, or
// the flush timer, wrote under the buffer's lock, and every request
// behind it queued on that lock; the benchmark measured that stall as a
// tenth of the cookie path's throughput.
//
// Lines reach the output at most logFlushInterval late, or as soon as
// logFlushSize bytes wait, and at once on Sync (start-up, shutdown). None
// is dropped: past logMaxBuffered bytes waiting, writers wait for the
// output. A process killed with SIGKILL loses what was waiting.
const (
	logFlushInterval = 100 * time.Millisecond
	logFlushSize     = 64 << 10
	logMaxBuffered   = 8 << 20
)

// Writer is the zapcore.WriteSyncer behind Gatehouse's logs.
type Writer struct {
	out      zapcore.WriteSyncer
	maxBytes int

	mu    sync.Mutex
	taken *sync.Cond // broadcast when the flusher has taken the buffer
	buf   []byte     // lines the flusher has not taken yet
	spare []byte     // the other buffer, written out or free
	kick  chan struct{}

	writeMu sync.Mutex // one flush at a time, so that lines stay in order
}

// New returns a Writer to out and starts its flusher, which runs for the
// life of the process.
func New(out io.Writer) *Writer {
	w := &Writer{out: zapcore.AddSync(out), maxBytes: logMaxBuffered, kick: make(chan struct{}, 1)}
	w.taken = sync.NewCond(&w.mu)
	go w.run()
	return w
}

// Write queues p, one encoded log line, and returns without waiting for
// the output unless logMaxBuffered bytes are already waiting.
func (w *Writer) Write(p []byte) (int, error) {
	w.mu.Lock()
	for len(w.buf) > 0 && len(w.buf)+len(p) > w.maxBytes {
		w.wake()
		w.taken.Wait()
	}
	w.buf = append(w.buf, p...)
	n := len(w.buf)
	w.mu.Unlock()
	if n >= logFlushSize {
		w.wake()
	}
	return len(p), nil
}

func (w *Writer) wake() {
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

// Sync writes out every line queued so far, then syncs the output.
func (w *Writer) Sync() error {
	err := w.flush()
	if serr := w.out.Sync(); err == nil {
		err = serr
	}
	return err
}

// run flushes for the life of the process, as zap's BufferedWriteSyncer
// does: a logger lives as long as its process.
func (w *Writer) run() {
	t := time.NewTicker(logFlushInterval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-w.kick:
		}
		_ = w.flush() // nowhere to report a failing log output but the log
	}
}

func (w *Writer) flush() error {
	w.writeMu.Lock()
	defer w.writeMu.Unlock()
	w.mu.Lock()
	b := w.buf
	w.buf, w.spare = w.spare[:0], nil
	w.taken.Broadcast()
	w.mu.Unlock()
	var err error
	if len(b) > 0 {
		_, err = w.out.Write(b)
	}
	w.mu.Lock()
	w.spare = b[:0]
	w.mu.Unlock()
	return err
}
