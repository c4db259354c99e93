// Package tokenbatch collects concurrent login-token writes into batches
// for one writer goroutine, so that a store can group-commit them: every
// bearer sign-in writes a token, and a commit costs more than the row.
// Both stores use it; how a batch is written is each store's own.
package tokenbatch

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"

	"github.com/gatehouse-proxy/gatehouse/session"
)

// ErrClosed is returned for a token queued after Close.
var ErrClosed = errors.New("session store is closed")

// Req is one caller's token, waiting in a batch.
type Req struct {
	Ctx    context.Context // the caller's; a batch must not be cancelled by it
	Token  *session.LoginToken
	result chan error // buffered: the writer never blocks on a caller that left
}

// NewReq is t queued by a caller whose context is ctx.
func NewReq(ctx context.Context, t *session.LoginToken) *Req {
	return &Req{Ctx: ctx, Token: t, result: make(chan error, 1)}
}

// Wait returns the outcome Done gave, waiting for it.
func (r *Req) Wait() error { return <-r.result }

// Done gives the caller its outcome. The write function calls it exactly
// once per request.
func (r *Req) Done(err error) { r.result <- err }

// Writer runs one goroutine that hands batches of queued tokens to its
// write function. A batch is whatever queued while the previous one was
// written, up to the maximum size: no timer holds a lone token back.
type Writer struct {
	write func([]*Req)

	mu     sync.RWMutex // held for reading while enqueuing, for writing by Close
	closed bool
	queue  chan *Req
	done   chan struct{} // closed when the writer goroutine has returned
}

// New starts a writer whose batches have at most maxBatch tokens.
func New(maxBatch int, write func(batch []*Req)) *Writer {
	w := &Writer{write: write, queue: make(chan *Req, maxBatch), done: make(chan struct{})}
	go w.run(maxBatch)
	return w
}

// Create queues t and waits until its batch has been written or ctx is
// done. A caller that stops waiting may still find its token written; an
// unused token expires like any other.
func (w *Writer) Create(ctx context.Context, t *session.LoginToken) error {
	req := NewReq(ctx, t)
	w.mu.RLock()
	if w.closed {
		w.mu.RUnlock()
		return fmt.Errorf("create login token %s: %w", t.ID, ErrClosed)
	}
	select {
	case w.queue <- req:
	case <-ctx.Done():
		w.mu.RUnlock()
		return fmt.Errorf("create login token %s: %w", t.ID, ctx.Err())
	}
	w.mu.RUnlock()
	select {
	case err := <-req.result:
		return err
	case <-ctx.Done():
		return fmt.Errorf("create login token %s: %w", t.ID, ctx.Err())
	}
}

// Close stops accepting tokens and waits for the queued ones to be written.
func (w *Writer) Close() {
	w.mu.Lock()
	if !w.closed {
		w.closed = true
		close(w.queue)
	}
	w.mu.Unlock()
	<-w.done
}

func (w *Writer) run(maxBatch int) {
	defer close(w.done)
	batch := make([]*Req, 0, maxBatch)
	for req := range w.queue {
		batch = append(batch[:0], req)
		// Let the goroutines that are about to queue a token run first:
		// on few cores, the next sign-ins are still being verified when the
		// first one is queued. A yield costs nanoseconds; a timer would
		// cost a lone sign-in a millisecond on this kind of machine.
		runtime.Gosched()
	fill:
		for len(batch) < maxBatch {
			select {
			case r, ok := <-w.queue:
				if !ok {
					break fill
				}
				batch = append(batch, r)
			default:
				break fill
			}
		}
		w.write(batch)
		clear(batch) // drop the references to the callers' tokens
	}
}

// Waited reports whether every caller of batch still waits, so that none
// of the tokens is to be skipped.
func Waited(batch []*Req) bool {
	for _, req := range batch {
		if req.Ctx.Err() != nil {
			return false
		}
	}
	return true
}

// Queued reports how many tokens wait for the next batch.
func (w *Writer) Queued() int { return len(w.queue) }
