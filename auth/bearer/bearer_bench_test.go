package bearer_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"runtime"
	"sync/atomic"
	"testing"

	"github.com/gatehouse-proxy/gatehouse/auth/bearer"
	"github.com/gatehouse-proxy/gatehouse/auth/ims"
	"github.com/gatehouse-proxy/gatehouse/auth/ims/imstest"
)

const benchClient = "bench-client_1_0"

// benchEmulator is an emulator of the benchmark's own, and a local-mode
// verifier trusting its keys.
func benchEmulator(b *testing.B) (*imstest.Server, *ims.Verifier) {
	b.Helper()
	emu := imstest.NewServer(imstest.Options{})
	b.Cleanup(emu.Close)
	keys, err := ims.NewKeySet(ims.KeySetConfig{JWKSURL: emu.URL + "/ims/keys"})
	if err != nil {
		b.Fatal(err)
	}
	if err := keys.Load(context.Background()); err != nil {
		b.Fatal(err)
	}
	v, err := ims.NewVerifier(ims.VerifierConfig{Keys: keys, Cluster: imstest.DefaultCluster, ClientIDs: []string{benchClient}})
	if err != nil {
		b.Fatal(err)
	}
	return emu, v
}

func newBenchAuthenticator(b *testing.B, v *ims.Verifier) *bearer.Authenticator {
	b.Helper()
	a, err := bearer.New(bearer.Config{Mode: bearer.ModeLocal, Verifier: v, ClientIDs: []string{benchClient}, Cluster: imstest.DefaultCluster})
	if err != nil {
		b.Fatal(err)
	}
	return a
}

// benchAuthenticator is a local-mode Authenticator trusting an emulator of
// its own, and a token of that emulator's.
func benchAuthenticator(b *testing.B) (*bearer.Authenticator, string) {
	b.Helper()
	const user = "BE0C0000000000000001@AdobeID"
	emu, v := benchEmulator(b)
	emu.AddUser(imstest.User{ID: user, Email: "bench@example.com"})
	a := newBenchAuthenticator(b, v)
	tok, _, err := emu.MintToken(imstest.TokenRequest{UserID: user, ClientID: benchClient})
	if err != nil {
		b.Fatal(err)
	}
	return a, tok
}

// BenchmarkAuthenticateCached is a bearer token seen before: a SHA-256 of
// the token and a cache lookup, no signature check.
func BenchmarkAuthenticateCached(b *testing.B) {
	a, tok := benchAuthenticator(b)
	ctx := context.Background()
	if _, err := a.Authenticate(ctx, tok); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(tok)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := a.Authenticate(ctx, tok); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAuthenticateFirstSeen is a bearer token not seen before: the
// hash, a cache miss, the signature check, the claims and the cache insert.
// Forgetting the token after each round keeps every round a first sighting
// without minting a token per round.
func BenchmarkAuthenticateFirstSeen(b *testing.B) {
	a, tok := benchAuthenticator(b)
	ctx := context.Background()
	b.SetBytes(int64(len(tok)))
	b.ReportAllocs()
	for b.Loop() {
		res, err := a.Authenticate(ctx, tok)
		if err != nil {
			b.Fatal(err)
		}
		a.Forget(res.Hash)
	}
}

// BenchmarkAuthenticateFirstSeenParallel is the first-seen path with every
// CPU busy, as in a loaded server: 16 tokens, 4 goroutines per CPU, each
// round a first sighting of its goroutine's token.
func BenchmarkAuthenticateFirstSeenParallel(b *testing.B) {
	emu, v := benchEmulator(b)
	a := newBenchAuthenticator(b, v)
	toks := mintTokens(b, emu, 16)
	var next atomic.Int64
	ctx := context.Background()
	b.SetParallelism(4)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		tok := toks[next.Add(1)%int64(len(toks))]
		for pb.Next() {
			res, err := a.Authenticate(ctx, tok)
			if err != nil {
				b.Error(err)
				return
			}
			a.Forget(res.Hash)
		}
	})
}

func BenchmarkAuthenticateCachedParallel(b *testing.B) {
	a, tok := benchAuthenticator(b)
	ctx := context.Background()
	if _, err := a.Authenticate(ctx, tok); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := a.Authenticate(ctx, tok); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkExtract reads the token from the Authorization header.
func BenchmarkExtract(b *testing.B) {
	_, tok := benchAuthenticator(b)
	r := httptest.NewRequest("GET", "/content/dam", nil)
	r.Header.Set("Authorization", "Bearer "+tok)
	b.SetBytes(int64(len(tok)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := bearer.Extract(r); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCacheMemory reports the heap each cached validation holds:
// 3,000 distinct tokens validated, heap after GC before and after.
func BenchmarkCacheMemory(b *testing.B) {
	const n = 3000
	emu, v := benchEmulator(b)
	toks := mintTokens(b, emu, n)
	ctx := context.Background()
	var per float64
	for b.Loop() {
		a := newBenchAuthenticator(b, v)
		before := heapAfterGC()
		for _, tok := range toks {
			if _, err := a.Authenticate(ctx, tok); err != nil {
				b.Fatal(err)
			}
		}
		per = float64(heapAfterGC()-before) / n
		runtime.KeepAlive(a)
	}
	b.ReportMetric(per, "B/token")
}

func heapAfterGC() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// mintTokens returns tokens of n distinct users of emu.
func mintTokens(b *testing.B, emu *imstest.Server, n int) []string {
	b.Helper()
	toks := make([]string, n)
	for i := range toks {
		user := fmt.Sprintf("BE0C%016X@AdobeID", i)
		emu.AddUser(imstest.User{ID: user, Email: "bench@example.com"})
		var err error
		if toks[i], _, err = emu.MintToken(imstest.TokenRequest{UserID: user, ClientID: benchClient}); err != nil {
			b.Fatal(err)
		}
	}
	return toks
}
