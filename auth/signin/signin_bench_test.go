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
