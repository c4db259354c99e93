package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// These tests keep the benchmark's pieces honest; they are quick, and the
// benchmark itself is not run by go test.

func TestParseWrkOutput(t *testing.T) {
	out := []byte("Running 3s test @ http://127.0.0.1:1/x\n" +
		`BENCHJSON {"requests":30000,"duration_us":3000000,"p50_us":2100,"p90_us":4000,"p99_us":9000,"max_us":20000,"status_errors":3,"net_errors":1,"exhausted":2,"statuses":{"401":7}}` + "\n")
	r, err := parseWrkOutput(out)
	if err != nil {
		t.Fatal(err)
	}
	want := result{Requests: 30000, Seconds: 3, RPS: 10000, P50ms: 2.1, P90ms: 4, P99ms: 9, MaxMs: 20,
		Non2xx: 3, NetErrors: 1, Exhausted: true, Statuses: map[string]int64{"401": 7}}
	if fmt.Sprint(*r) != fmt.Sprint(want) {
		t.Errorf("got %+v\nwant %+v", *r, want)
	}
	if _, err := parseWrkOutput([]byte("wrk: connection refused")); err == nil {
		t.Error("no error for output without a result")
	}
}

func TestPatternReader(t *testing.T) {
	for _, n := range []int64{0, 1, 100, 32 << 10, 100<<10 + 7} {
		var got int64
		r := newPatternReader(n)
		buf := make([]byte, 7000)
		for {
			k, err := r.Read(buf)
			for i := range k {
				if want := byte('a' + (got+int64(i))%int64(len(pattern))%26); buf[i] != want {
					t.Fatalf("n=%d: byte %d is %q, want %q", n, got+int64(i), buf[i], want)
				}
			}
			got += int64(k)
			if err == io.EOF {
				break
			}
		}
		if got != n {
			t.Errorf("n=%d: read %d bytes", n, got)
		}
	}
}

func TestMedianAndPercentile(t *testing.T) {
	if m := median([]float64{3, 1, 2}); m != 2 {
		t.Errorf("median = %v, want 2", m)
	}
	if m := median([]float64{4, 1, 2, 3}); m != 2.5 {
		t.Errorf("median = %v, want 2.5", m)
	}
	var ds []time.Duration
	for i := 1; i <= 100; i++ {
		ds = append(ds, time.Duration(i))
	}
	if p := percentile(ds, 99); p != 99 {
		t.Errorf("p99 = %v, want 99", p)
	}
	if p := percentile(ds, 50); p != 50 {
		t.Errorf("p50 = %v, want 50", p)
	}
}

func TestUpstream(t *testing.T) {
	srv := httptest.NewServer(upstreamHandler())
	defer srv.Close()
	resp, err := http.Get(srv.URL + pathDownload + "?bytes=100000")
	if err != nil {
		t.Fatal(err)
	}
	n, _ := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if n != 100000 || resp.ContentLength != 100000 {
		t.Errorf("download: %d bytes, Content-Length %d", n, resp.ContentLength)
	}
	resp, err = http.Post(srv.URL+pathUpload, "application/octet-stream", newPatternReader(12345))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "12345" {
		t.Errorf("upload answered %q, want 12345", body)
	}
}

func TestCPUAccounting(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc")
	}
	before := takeCPUSnapshot(os.Getpid())
	deadline := time.Now().Add(50 * time.Millisecond)
	for time.Now().Before(deadline) {
	}
	after := takeCPUSnapshot(os.Getpid())
	if before.busy < 0 || after.self < before.self || after.procs[os.Getpid()] < before.procs[os.Getpid()] {
		t.Errorf("snapshots %+v then %+v", before, after)
	}
	if m, err := readMemory(os.Getpid()); err != nil || m.RSSKiB <= 0 || m.HWMKiB < m.RSSKiB {
		t.Errorf("readMemory = %+v, %v", m, err)
	}
}

// TestLoadGenerators runs each load generator for a second against a
// server that records the bearer tokens it sees: no token twice, and the
// run ends early when they are used up (a request or so per connection
// may be dropped then); statuses are counted.
func TestLoadGenerators(t *testing.T) {
	var mu sync.Mutex
	seen := map[string]int{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if ok && r.Header.Get("X-Static") == "yes" {
			mu.Lock()
			seen[tok]++
			mu.Unlock()
			w.WriteHeader(http.StatusUnauthorized)
		}
	}))
	defer srv.Close()
	tokens := make([]string, 500)
	for i := range tokens {
		tokens[i] = fmt.Sprintf("tok-%d", i)
	}
	w := workload{method: "GET", path: "/x", headers: map[string]string{"X-Static": "yes"}, tokens: tokens, statuses: true}
	gens := []loadGen{&goGen{connections: 4}}
	if g, ok := findWrk(t.TempDir(), 2, 4); ok {
		gens = append(gens, g)
	}
	for _, g := range gens {
		t.Run(g.name(), func(t *testing.T) {
			mu.Lock()
			clear(seen)
			mu.Unlock()
			r, err := g.run(context.Background(), srv.URL, w, time.Second)
			if err != nil {
				t.Fatal(err)
			}
			mu.Lock()
			defer mu.Unlock()
			for tok, n := range seen {
				if n > 1 {
					t.Errorf("token %s sent %d times", tok, n)
				}
			}
			if !r.Exhausted || len(seen) < len(tokens)-4 {
				t.Errorf("exhausted %v, %d tokens seen, want (about) all %d", r.Exhausted, len(seen), len(tokens))
			}
			// 500 requests on loopback take milliseconds; the rate must be
			// over that time, not the whole one-second run.
			if r.Seconds <= 0 || r.Seconds > 0.9 {
				t.Errorf("timed %.3fs for a run whose tokens ran out early, want the time until they did", r.Seconds)
			}
			if r.Statuses["401"] == 0 || r.Statuses["401"] > int64(len(tokens)) {
				t.Errorf("statuses %v", r.Statuses)
			}
		})
	}
}
