package logwriter

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// blockingOutput is a log output whose writes wait until it is opened,
// like a pipe whose reader has stopped reading.
type blockingOutput struct {
	open chan struct{}
	mu   sync.Mutex
	buf  bytes.Buffer
}

func (o *blockingOutput) Write(p []byte) (int, error) {
	<-o.open
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.Write(p)
}

func (o *blockingOutput) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.String()
}

func TestLogWriterDoesNotWaitForOutput(t *testing.T) {
	out := &blockingOutput{open: make(chan struct{})}
	w := New(out)
	const writers, lines = 8, 2000 // about 1.5 MiB: far past logFlushSize
	done := make(chan struct{})
	go func() {
		defer close(done)
		var wg sync.WaitGroup
		for g := range writers {
			wg.Go(func() {
				for i := range lines {
					fmt.Fprintf(w, "{\"g\":%d,\"i\":%06d,\"pad\":%q}\n", g, i, strings.Repeat("x", 64))
				}
			})
		}
		wg.Wait()
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("writers waited for a blocked output")
	}
	close(out.open)
	if err := w.Sync(); err != nil {
		t.Fatalf("Sync: %v", err)
	}
	got := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(got) != writers*lines {
		t.Fatalf("%d lines written, want %d", len(got), writers*lines)
	}
	next := make([]int, writers) // each writer's lines in its order, none torn
	for _, l := range got {
		var g, i int
		if _, err := fmt.Sscanf(l, "{\"g\":%d,\"i\":%d,", &g, &i); err != nil || !strings.HasSuffix(l, "x\"}") {
			t.Fatalf("torn line %q", l)
		}
		if i != next[g] {
			t.Fatalf("writer %d: line %d after %d", g, i, next[g]-1)
		}
		next[g]++
	}
}

func TestLogWriterWaitsPastItsLimit(t *testing.T) {
	out := &blockingOutput{open: make(chan struct{})}
	w := New(out)
	w.maxBytes = 1 << 10
	line := strings.Repeat("y", 99) + "\n"
	wrote := make(chan int)
	go func() {
		n := 0
		for range 40 { // 4000 bytes: twice what a blocked output lets through
			w.Write([]byte(line))
			n++
		}
		wrote <- n
	}()
	select {
	case n := <-wrote:
		t.Fatalf("all %d lines accepted while the output was blocked: nothing bounds the buffer", n)
	case <-time.After(300 * time.Millisecond):
	}
	close(out.open)
	select {
	case <-wrote:
	case <-time.After(10 * time.Second):
		t.Fatal("writers still waiting after the output opened")
	}
	if err := w.Sync(); err != nil {
		t.Fatal(err)
	}
	if got := strings.Count(out.String(), line); got != 40 {
		t.Fatalf("%d lines written, want 40: none may be dropped", got)
	}
}

func TestLogWriterFlushesOnItsOwn(t *testing.T) {
	var out blockingOutput
	out.open = make(chan struct{})
	close(out.open)
	w := New(&out)
	w.Write([]byte("one line\n"))
	deadline := time.Now().Add(5 * time.Second)
	for out.String() != "one line\n" {
		if time.Now().After(deadline) {
			t.Fatal("a quiet logger never wrote its last line")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
