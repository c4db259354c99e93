package main

import (
	"bytes"
	"encoding/base64"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseStores(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
		err  bool
	}{
		{"sqlite", []string{"sqlite"}, false},
		{"postgres", []string{"postgres"}, false},
		{"both", []string{"sqlite", "postgres"}, false},
		{" Both ", []string{"sqlite", "postgres"}, false},
		{"", nil, true},
		{"mysql", nil, true},
		{"sqlite,postgres", nil, true},
	} {
		got, err := parseStores(tc.in)
		if (err != nil) != tc.err || !slices.Equal(got, tc.want) {
			t.Errorf("parseStores(%q) = %v, %v; want %v, error %v", tc.in, got, err, tc.want, tc.err)
		}
	}
}

func TestRedactSetting(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"GATEHOUSE_STORE=sqlite:/tmp/x.db", "GATEHOUSE_STORE=sqlite:/tmp/x.db"},
		{"GATEHOUSE_STORE=postgres://gh:s3cret@db:5432/gh?search_path=s", "GATEHOUSE_STORE=postgres://gh:xxxxx@db:5432/gh?search_path=s"},
		{"GATEHOUSE_STORE=postgres://gh@db/gh?password=s3cret&search_path=s", "GATEHOUSE_STORE=postgres://gh@db/gh?password=xxxxx&search_path=s"},
		{"GATEHOUSE_LISTEN=127.0.0.1:0", "GATEHOUSE_LISTEN=127.0.0.1:0"},
	} {
		got := redactSetting(tc.in)
		if got != tc.want || strings.Contains(got, "s3cret") {
			t.Errorf("redactSetting(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestSummarizeLatencies(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []time.Duration
		want latencySummary
	}{
		{"empty", nil, latencySummary{}},
		{"one", []time.Duration{3 * time.Millisecond}, latencySummary{P50ms: 3, P90ms: 3, P99ms: 3, MaxMs: 3}},
		{"hundred, shuffled", func() []time.Duration {
			var ds []time.Duration
			for i := 100; i >= 1; i-- {
				ds = append(ds, time.Duration(i)*time.Millisecond)
			}
			return ds
		}(), latencySummary{P50ms: 50, P90ms: 90, P99ms: 99, MaxMs: 100}},
	} {
		if got := summarizeLatencies(tc.in); got != tc.want {
			t.Errorf("%s: got %+v, want %+v", tc.name, got, tc.want)
		}
	}
}

// TestColdTokenID: the filled store's ids have the shape of real ones
// (16 bytes, creation milliseconds first), are distinct and sort by
// creation, as session.NewLoginTokenID's do.
func TestColdTokenID(t *testing.T) {
	base := time.UnixMilli(1_700_000_000_000)
	seen := map[string]bool{}
	var prevMs int64
	for i := range 1000 {
		id := coldTokenID(i, base)
		raw, err := base64.RawURLEncoding.DecodeString(id)
		if err != nil || len(raw) != 16 {
			t.Fatalf("id %d = %q: %d bytes, %v", i, id, len(raw), err)
		}
		var ms int64
		for _, c := range raw[:6] {
			ms = ms<<8 | int64(c)
		}
		if want := base.UnixMilli() + int64(i/10); ms != want || ms < prevMs {
			t.Fatalf("id %d: milliseconds %d, want %d", i, ms, want)
		}
		prevMs = ms
		if seen[id] {
			t.Fatalf("id %d = %q twice", i, id)
		}
		seen[id] = true
	}
}

// TestStoresReport: a run on both stores prints each path on each side by
// side, the cold lookups and the spread, and judges them by their targets.
func TestStoresReport(t *testing.T) {
	path := func(name, store string, rps, ratio, p99 float64) *pathResult {
		return &pathResult{Name: name, Store: store, Ratio: ratio, Gatehouse: series{RPS: rps, P99ms: p99}}
	}
	r := &results{
		Settings: settingsInfo{Stores: []string{"sqlite", "postgres"}},
		Paths: []*pathResult{
			path("cookie", "sqlite", 20000, 0.95, 3), path("bearer-first-seen", "sqlite", 9000, 0.5, 9),
			path("cookie", "postgres", 19000, 0.93, 4), path("bearer-first-seen", "postgres", 5000, 0.3, 20),
		},
		ColdLookups: []*coldResult{
			{Store: "sqlite", Tokens: 1000000, Users: 1000, Lookups: 20000, Goroutines: 4, Rounds: []coldRound{
				{latencySummary: latencySummary{P50ms: 0.04, P99ms: 0.7}}, {latencySummary: latencySummary{P50ms: 0.03, P99ms: 0.5}}, {latencySummary: latencySummary{P50ms: 0.02, P99ms: 3}},
			}},
			{Store: "postgres", Tokens: 1000000, Users: 1000, Lookups: 20000, Goroutines: 4, TargetP99ms: 2, latencySummary: latencySummary{P50ms: 0.2, P99ms: 2.5}},
		},
		Spread: &spreadResult{Replicas: 3, Revocations: 100, CacheTTL: "5m0s", PollEvery: "2ms", TargetMs: 1000,
			latencySummary: latencySummary{P50ms: 4, P99ms: 12, MaxMs: 15}},
	}
	r.ColdLookups[0].summarize()
	if c := r.ColdLookups[0]; c.P50ms != 0.03 || c.P99ms != 0.7 {
		t.Errorf("cold lookups' medians: p50 %v, p99 %v; want 0.03, 0.7", c.P50ms, c.P99ms)
	}
	rows := sideBySide(r.Paths)
	if len(rows) != 2 || rows[0].Path != "cookie" || rows[1].Path != "bearer-first-seen" ||
		rows[0].ByStore["postgres"].Gatehouse.RPS != 19000 || rows[1].ByStore["sqlite"].Gatehouse.RPS != 9000 {
		t.Fatalf("sideBySide = %+v", rows)
	}
	r.evaluate(options{})
	var buf bytes.Buffer
	r.print(&buf)
	out := buf.String()
	for _, want := range []string{
		"| path | sqlite req/s | sqlite × bare | sqlite p99 | postgres req/s | postgres × bare | postgres p99 |",
		"| cookie | 20000 | 0.950× | 3.00 ms | 19000 | 0.930× | 4.00 ms |",
		"| bearer-first-seen | 9000 | 0.500× | 9.00 ms | 5000 | 0.300× | 20.00 ms |",
		"| cookie (postgres) | ",
		"| sqlite | 1000000 / 1000 | 3 × 20000 × 4 | 0.030 ms | 0.000 ms | 0.700 ms | 0.00 ms | 0 | 0.70, 0.50, 3.00 ms | (none; for comparison) |",
		"| cold cookie lookup on postgres, 1000000 tokens stored | p99 < 2 ms | p50 0.200 ms, p99 2.500 ms | **no** |",
		"| revocation spread, 3 replicas, 100 revocations | p99 < 1000 ms | p50 4.0 ms, p99 12.0 ms, max 15.0 ms | yes |",
		"100 revocations: p50 4.0 ms, p99 12.0 ms, max 15.0 ms",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
	// No cold-lookup target for SQLite: it is there for comparison.
	if strings.Contains(out, "cold cookie lookup on sqlite") {
		t.Errorf("SQLite's cold lookups judged against PostgreSQL's target:\n%s", out)
	}
	// A run of SQLite alone prints no store table and no store in names.
	one := &results{Settings: settingsInfo{Stores: []string{"sqlite"}}, Paths: []*pathResult{path("cookie", "", 20000, 0.95, 3)}}
	buf.Reset()
	one.print(&buf)
	if strings.Contains(buf.String(), "sqlite req/s") || strings.Contains(buf.String(), "cookie (") {
		t.Errorf("single-store report:\n%s", buf.String())
	}
}
