package signin

import (
	"net/http"
	"testing"

	"github.com/gatehouse-proxy/gatehouse/auth/bearer"
)

// The sign-in step alone, per credential, on the real store and verifier
// (see newWarmFixture). The first-seen benchmark mints its tokens before
// the timer starts; each request then costs a signature check, a store
// read of the user and a new login token written to the store.

func BenchmarkMiddlewareCookieWarm(b *testing.B) {
	f := newWarmFixture(b, bearer.ModeLocal)
	_, cookie := f.signIn(b)
	f.serve("", cookie)
	b.ReportAllocs()
	for b.Loop() {
		if w := f.serve("", cookie); w.Code != http.StatusNoContent {
			b.Fatalf("status %d", w.Code)
		}
	}
}

func BenchmarkMiddlewareBearerCached(b *testing.B) {
	f := newWarmFixture(b, bearer.ModeLocal)
	tok, _ := f.signIn(b)
	b.ReportAllocs()
	for b.Loop() {
		if w := f.serve(tok, ""); w.Code != http.StatusNoContent {
			b.Fatalf("status %d", w.Code)
		}
	}
}

func BenchmarkMiddlewareBearerFirstSeen(b *testing.B) {
	f := newWarmFixture(b, bearer.ModeLocal)
	f.signIn(b) // provisions the user
	toks := make([]string, b.N)
	for i := range toks {
		toks[i] = f.token(b)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if w := f.serve(toks[i], ""); w.Code != http.StatusNoContent {
			b.Fatalf("status %d", w.Code)
		}
	}
}

// BenchmarkMiddlewareBearerFirstSeenParallel is the first-seen sign-in
// under 64 concurrent requests, as the benchmark's load generator sends
// them: the store's token writer commits them in batches. ns/op is wall
// time per sign-in on all the machine's cores.
func BenchmarkMiddlewareBearerFirstSeenParallel(b *testing.B) {
	f := newWarmFixture(b, bearer.ModeLocal)
	f.signIn(b)
	toks := make(chan string, b.N)
	for range b.N {
		toks <- f.token(b)
	}
	close(toks)
	b.SetParallelism(32) // 64 goroutines on 2 cores
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if w := f.serve(<-toks, ""); w.Code != http.StatusNoContent {
				b.Errorf("status %d", w.Code)
				return
			}
		}
	})
}
