package tokenbatch

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-proxy/gatehouse/session"
)

func token(i int) *session.LoginToken {
	return &session.LoginToken{ID: fmt.Sprintf("t%d", i), UserID: "u"}
}

// recorder is a write function that records its batches and answers each
// token with the outcome outcome gives it.
type recorder struct {
	mu      sync.Mutex
	batches [][]string
	outcome func(*session.LoginToken) error
	gate    chan struct{} // when set, each write waits for it to be closed or sent on
	entered chan int      // when set, each write sends its batch's size on it first
}

func newGated() *recorder {
	return &recorder{gate: make(chan struct{}), entered: make(chan int, 100)}
}

func (r *recorder) write(batch []*Req) {
	if r.entered != nil {
		r.entered <- len(batch)
	}
	if r.gate != nil {
		<-r.gate
	}
	ids := make([]string, len(batch))
	for i, req := range batch {
		ids[i] = req.Token.ID
	}
	r.mu.Lock()
	r.batches = append(r.batches, ids)
	r.mu.Unlock()
	for _, req := range batch {
		var err error
		if r.outcome != nil {
			err = r.outcome(req.Token)
		}
		req.Done(err)
	}
}

func (r *recorder) written() (tokens, batches, largest int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, b := range r.batches {
		tokens += len(b)
		largest = max(largest, len(b))
	}
	return tokens, len(r.batches), largest
}

// TestCreateOutcomes: each caller gets its own token's outcome, not its
// batch's, and every token is written exactly once.
func TestCreateOutcomes(t *testing.T) {
	errTaken := errors.New("id taken")
	rec := &recorder{outcome: func(tok *session.LoginToken) error {
		if tok.ID == "t3" || tok.ID == "t7" {
			return errTaken
		}
		return nil
	}}
	w := New(4, rec.write)
	defer closeWithin(t, w)

	const n = 40
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { errs[i] = w.Create(context.Background(), token(i)) })
	}
	wg.Wait()
	for i, err := range errs {
		want := i == 3 || i == 7
		if got := errors.Is(err, errTaken); got != want {
			t.Errorf("token %d: error %v, want the id-taken error: %t", i, err, want)
		}
	}
	tokens, _, largest := rec.written()
	if tokens != n {
		t.Errorf("%d tokens written, want %d (each exactly once)", tokens, n)
	}
	if largest > 4 {
		t.Errorf("a batch of %d tokens, want at most the maximum of 4", largest)
	}
}

// TestBatchesFormWhileWriting: tokens queued while a batch is being written
// go together into the next one, up to the maximum, so that a slow commit
// is paid once for many sign-ins; and no timer holds a lone token back.
func TestBatchesFormWhileWriting(t *testing.T) {
	tests := []struct {
		name       string
		maxBatch   int
		queued     int // tokens queued while the first batch is held
		wantSecond int // the size of the batch after the held one
	}{
		{"fewer than the maximum", 8, 5, 5},
		{"exactly the maximum", 8, 8, 8},
		{"more than the maximum", 4, 10, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := newGated()
			w := New(tt.maxBatch, rec.write)
			defer closeWithin(t, w)

			first := make(chan error, 1)
			go func() { first <- w.Create(context.Background(), token(0)) }()
			if n := <-rec.entered; n != 1 {
				t.Fatalf("a lone token was written in a batch of %d", n)
			}
			errs := make(chan error, tt.queued)
			for i := 1; i <= tt.queued; i++ {
				go func() { errs <- w.Create(context.Background(), token(i)) }()
			}
			// The queue holds at most a batch; the rest wait to join it.
			waitFor(t, func() bool { return w.Queued() == min(tt.queued, tt.maxBatch) })
			close(rec.gate)
			if err := <-first; err != nil {
				t.Fatal(err)
			}
			for range tt.queued {
				if err := <-errs; err != nil {
					t.Fatal(err)
				}
			}
			if n := <-rec.entered; n != tt.wantSecond {
				t.Errorf("the batch after the held one had %d tokens, want %d", n, tt.wantSecond)
			}
			tokens, _, largest := rec.written()
			if tokens != tt.queued+1 {
				t.Errorf("%d tokens written, want %d", tokens, tt.queued+1)
			}
			if largest > tt.maxBatch {
				t.Errorf("a batch of %d tokens, want at most %d", largest, tt.maxBatch)
			}
		})
	}
}

// TestCallerGoesAway: a caller whose context ends while its batch is
// written gets its context's error at once, and the writer, which never
// blocks on a caller that left, goes on with the next batch.
func TestCallerGoesAway(t *testing.T) {
	rec := newGated()
	w := New(4, rec.write)
	defer closeWithin(t, w)

	ctx, cancel := context.WithCancel(context.Background())
	left := make(chan error, 1)
	go func() { left <- w.Create(ctx, token(0)) }()
	<-rec.entered // its batch is being written, held at the gate
	cancel()
	if err := <-left; !errors.Is(err, context.Canceled) {
		t.Fatalf("Create after cancel: %v, want context.Canceled", err)
	}
	close(rec.gate) // the held batch completes; answering the caller that left must not block

	ctx, cancel = context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := w.Create(ctx, token(1)); err != nil {
		t.Fatalf("the next token: %v (the writer is stuck on the caller that left?)", err)
	}
}

// TestCloseDrains: Close waits until every token queued before it is
// written, and refuses later ones with ErrClosed, so that a shutdown loses
// no sign-in that was accepted.
func TestCloseDrains(t *testing.T) {
	rec := newGated()
	w := New(8, rec.write)

	const n = 5
	errs := make([]error, n)
	var wg sync.WaitGroup
	wg.Go(func() { errs[0] = w.Create(context.Background(), token(0)) })
	<-rec.entered // one batch held at the gate
	for i := 1; i < n; i++ {
		wg.Go(func() { errs[i] = w.Create(context.Background(), token(i)) })
	}
	waitFor(t, func() bool { return w.Queued() == n-1 }) // the others queued behind it

	closed := make(chan struct{})
	go func() { w.Close(); close(closed) }()
	select {
	case <-closed:
		t.Fatal("Close returned while queued tokens were still unwritten")
	case <-time.After(100 * time.Millisecond):
	}
	close(rec.gate)
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return")
	}
	if tokens, _, _ := rec.written(); tokens != n {
		t.Errorf("%d tokens written when Close returned, want all %d queued before it", tokens, n)
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("token %d: %v", i, err)
		}
	}
	if err := w.Create(context.Background(), token(9)); !errors.Is(err, ErrClosed) {
		t.Errorf("Create after Close: %v, want ErrClosed", err)
	}
	w.Close() // a second Close returns too
}

func TestWaited(t *testing.T) {
	live := context.Background()
	gone, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name string
		ctxs []context.Context
		want bool
	}{
		{"all waiting", []context.Context{live, live}, true},
		{"one left", []context.Context{live, gone}, false},
		{"empty batch", nil, true},
	}
	for _, tt := range tests {
		var batch []*Req
		for i, ctx := range tt.ctxs {
			batch = append(batch, NewReq(ctx, token(i)))
		}
		if got := Waited(batch); got != tt.want {
			t.Errorf("%s: Waited = %t, want %t", tt.name, got, tt.want)
		}
	}
}

// waitFor polls cond until it holds, failing the test after 10 s.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 10 s")
		}
		time.Sleep(time.Millisecond)
	}
}

// closeWithin closes w, failing the test instead of hanging when the
// writer goroutine is stuck.
func closeWithin(t *testing.T, w *Writer) {
	t.Helper()
	closed := make(chan struct{})
	go func() { w.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Error("Close did not return in 10 s: the writer goroutine is stuck")
	}
}
