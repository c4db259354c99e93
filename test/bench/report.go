package main

import (
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"
)

// results is everything one run measured; it is also the JSON written to -out.
type results struct {
	Time          string          `json:"time"`
	Seconds       float64         `json:"seconds"`
	Machine       machineInfo     `json:"machine"`
	LoadGenerator loadGenInfo     `json:"load_generator"`
	Settings      settingsInfo    `json:"settings"`
	Paths         []*pathResult   `json:"paths"`
	Floods        []floodResult   `json:"floods"`
	Streaming     []streamResult  `json:"streaming"`
	TokenMemory   []*tokenMemory  `json:"token_memory"`
	RSS           rssInfo         `json:"rss"`
	Budget        []budgetOutcome `json:"budget"`
	// ColdLookups is a cold cookie's store lookup with many tokens stored,
	// per store (-cold-tokens).
	ColdLookups []*coldResult `json:"cold_lookups,omitempty"`
	// Spread is the revocation spread across three replicas (-spread).
	Spread *spreadResult `json:"revocation_spread,omitempty"`
}

type machineInfo struct {
	CPUs   int    `json:"cpus"`
	CPU    string `json:"cpu"`
	Memory string `json:"memory"`
	Kernel string `json:"kernel"`
	Go     string `json:"go"`
	OS     string `json:"os"`
}

type loadGenInfo struct {
	Name        string `json:"name"`
	Connections int    `json:"connections"`
	Threads     int    `json:"threads,omitempty"`
}

type settingsInfo struct {
	Command     string   `json:"command"`
	Duration    string   `json:"duration_per_run"`
	Rounds      int      `json:"rounds"`
	TokenRounds int      `json:"token_rounds"`
	Gatehouse   []string `json:"gatehouse_settings"`
	// BareBufferPool says the bare proxy had Gatehouse's copy-buffer pool.
	BareBufferPool bool `json:"bare_buffer_pool"`
	// BareGCHeadroomMiB is the GC headroom the bare proxy was given
	// (-bare-gc-headroom); 0: Go's defaults.
	BareGCHeadroomMiB int `json:"bare_gc_headroom_mib"`
	// GatehouseGC is Gatehouse's GC setting, as it was started.
	GatehouseGC string `json:"gatehouse_gc"`
	// Stores are the stores the paths ran on (-store), in order.
	Stores []string `json:"stores"`
	// StoreSettings are their GATEHOUSE_STORE values, passwords hidden.
	StoreSettings []string `json:"store_settings"`
	// Features are the feature sets (-features), in order; the budget is
	// judged on the first. FeatureSets says what each turns on.
	Features    []string `json:"features"`
	FeatureSets []string `json:"feature_sets"`
	// Variants label the store and feature-set columns of the side-by-side
	// table, in order; empty for a run of SQLite alone with one set.
	Variants []string `json:"variants,omitempty"`
}

// pathResult is one path: every round of both targets and their medians.
type pathResult struct {
	Name string `json:"name"`
	// Store labels the store and feature set Gatehouse ran with; empty on
	// a run of SQLite alone with one feature set.
	Store string `json:"store,omitempty"`
	// Features is the feature set (-features) Gatehouse ran with.
	Features  string `json:"features,omitempty"`
	Budget    string `json:"budget,omitempty"`
	Bare      series `json:"bare"`
	Gatehouse series `json:"gatehouse"`
	// Ratio is the median over the rounds of Gatehouse's rps over the bare
	// proxy's in the same round; P99Delta likewise for the difference of
	// their p99 latencies.
	Ratio    float64   `json:"rps_ratio"`
	P99Delta float64   `json:"p99_delta_ms"`
	Ratios   []float64 `json:"round_ratios"`
}

type series struct {
	Rounds []*result `json:"rounds"`
	// Medians over the rounds.
	RPS       float64 `json:"rps"`
	P50ms     float64 `json:"p50_ms"`
	P99ms     float64 `json:"p99_ms"`
	CPUMicros float64 `json:"proxy_cpu_us_per_request"`
	// The highest share of the machine other processes took in a round.
	MaxForeignPct float64 `json:"max_other_processes_cpu_percent"`
}

func (p *pathResult) summarize() {
	p.Bare.summarize()
	p.Gatehouse.summarize()
	p.Ratios = nil
	var ratios, deltas []float64
	for i := range min(len(p.Bare.Rounds), len(p.Gatehouse.Rounds)) {
		b, g := p.Bare.Rounds[i], p.Gatehouse.Rounds[i]
		if b.RPS > 0 {
			ratios = append(ratios, g.RPS/b.RPS)
			p.Ratios = append(p.Ratios, round3(g.RPS/b.RPS))
		}
		deltas = append(deltas, g.P99ms-b.P99ms)
	}
	p.Ratio, p.P99Delta = median(ratios), median(deltas)
}

func (s *series) summarize() {
	var rps, p50, p99, cpu []float64
	s.MaxForeignPct = 0
	for _, r := range s.Rounds {
		rps = append(rps, r.RPS)
		p50 = append(p50, r.P50ms)
		p99 = append(p99, r.P99ms)
		cpu = append(cpu, r.CPU.ProxyMicros)
		s.MaxForeignPct = max(s.MaxForeignPct, r.CPU.ForeignPct)
	}
	s.RPS, s.P50ms, s.P99ms, s.CPUMicros = median(rps), median(p50), median(p99), median(cpu)
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func round3(x float64) float64 { return float64(int64(x*1000+0.5)) / 1000 }

type floodResult struct {
	Name           string  `json:"name"`
	Result         *result `json:"result"`
	KeyFetches     int64   `json:"key_set_fetches"`
	AllowedFetches int64   `json:"allowed_fetches"`
	All401         bool    `json:"all_401"`
}

type streamResult struct {
	Direction    string  `json:"direction"`
	Bytes        int64   `json:"bytes"`
	Seconds      float64 `json:"seconds"`
	MiBPerSecond float64 `json:"mib_per_second"`
	RSSBeforeKiB int64   `json:"rss_before_kib"`
	RSSPeakKiB   int64   `json:"rss_peak_kib"`
	GrowthMiB    float64 `json:"rss_growth_mib"`
}

type rssInfo struct {
	GatehousePeakKiB int64 `json:"gatehouse_peak_kib"` // VmHWM at the end of the run
	GatehouseEndKiB  int64 `json:"gatehouse_end_kib"`
	BarePeakKiB      int64 `json:"bare_proxy_peak_kib"`
}

type budgetOutcome struct {
	Item     string `json:"item"`
	Budget   string `json:"budget"`
	Measured string `json:"measured"`
	Met      *bool  `json:"met"` // nil: not measured in this run
}

// budgets are the per-path targets (issue 13's), against the fair floor:
// a bare proxy with Gatehouse's GC goal, and Gatehouse with the features
// a production sidecar runs.
var budgets = map[string]struct {
	text     string
	minRatio float64
	p99Plus  float64 // ms; 0: no p99 target
}{
	pathCookie:      {"≥ 0.95× bare req/s, p99 ≤ bare + 1 ms", 0.95, 1},
	pathBearerCache: {"≥ 0.90× bare req/s", 0.90, 0},
	pathBearerFirst: {"≥ 0.60× bare req/s", 0.60, 0},
	pathFirstSignIn: {"", 0, 0},
}

func (r *results) evaluate(o options) {
	r.Time = time.Now().UTC().Format(time.RFC3339)
	met := func(ok bool) *bool { return &ok }
	for _, p := range r.Paths {
		bg := budgets[p.Name]
		if bg.minRatio == 0 || !r.judged(p) {
			continue
		}
		ok := p.Ratio >= bg.minRatio
		m := fmt.Sprintf("%.3f×", p.Ratio)
		if bg.p99Plus > 0 {
			ok = ok && p.P99Delta <= bg.p99Plus
			m += fmt.Sprintf(", p99 %+.2f ms", p.P99Delta)
		}
		r.Budget = append(r.Budget, budgetOutcome{Item: p.title() + " path", Budget: bg.text, Measured: m, Met: met(ok)})
	}
	for _, c := range r.ColdLookups {
		if c.TargetP99ms == 0 {
			continue
		}
		r.Budget = append(r.Budget, budgetOutcome{Item: fmt.Sprintf("cold cookie lookup on %s, %d tokens stored", c.Store, c.Tokens),
			Budget: fmt.Sprintf("p99 < %g ms", c.TargetP99ms), Measured: fmt.Sprintf("p50 %.3f ms, p99 %.3f ms", c.P50ms, c.P99ms),
			Met: met(c.P99ms < c.TargetP99ms)})
	}
	if s := r.Spread; s != nil {
		r.Budget = append(r.Budget, budgetOutcome{Item: fmt.Sprintf("revocation spread, %d replicas, %d revocations", s.Replicas, s.Revocations),
			Budget: fmt.Sprintf("p99 < %g ms", s.TargetMs), Measured: fmt.Sprintf("p50 %.1f ms, p99 %.1f ms, max %.1f ms", s.P50ms, s.P99ms, s.MaxMs),
			Met: met(s.P99ms < s.TargetMs)})
	}
	for _, f := range r.Floods {
		r.Budget = append(r.Budget, budgetOutcome{Item: "flood: " + f.Name,
			Budget:   fmt.Sprintf("≤ %d key-set fetch(es) in %s, all 401", f.AllowedFetches, o.flood),
			Measured: fmt.Sprintf("%d fetch(es), %s 401 (%d requests, p99 %.2f ms)", f.KeyFetches, map[bool]string{true: "all", false: "NOT all"}[f.All401], f.Result.Requests, f.Result.P99ms),
			Met:      met(f.KeyFetches <= f.AllowedFetches && f.All401)})
	}
	for _, m := range r.TokenMemory {
		r.Budget = append(r.Budget, budgetOutcome{Item: fmt.Sprintf("heap per cached login token (%d tokens, %d users)", m.Tokens, m.Users),
			Budget: "≤ 1024 B", Measured: fmt.Sprintf("%.0f B", m.BytesPerToken), Met: met(m.BytesPerToken <= 1024)})
	}
	for _, s := range r.Streaming {
		r.Budget = append(r.Budget, budgetOutcome{Item: fmt.Sprintf("%d MiB %s: RSS growth", s.Bytes>>20, s.Direction),
			Budget: "< 64 MiB", Measured: fmt.Sprintf("%.1f MiB", s.GrowthMiB), Met: met(s.GrowthMiB < 64)})
	}
	r.Budget = append(r.Budget, budgetOutcome{Item: "warm cookie request: store round trips, IMS calls",
		Budget: "0 and 0", Measured: "counted by the test auth/signin/warm_test.go (go test ./auth/signin -run Warm)"})
}

// judged says whether the budget applies to the path: only with the first
// feature set, what operators run; the others show the features' costs.
func (r *results) judged(p *pathResult) bool {
	return p.Features == "" || len(r.Settings.Features) == 0 || p.Features == r.Settings.Features[0]
}

func (r *results) print(w io.Writer) {
	fmt.Fprintf(w, "Machine: %d CPUs, %s, %s, %s, %s\n", r.Machine.CPUs, r.Machine.CPU, r.Machine.Memory, r.Machine.Kernel, r.Machine.Go)
	lg := r.LoadGenerator.Name + fmt.Sprintf(", %d connections", r.LoadGenerator.Connections)
	if r.LoadGenerator.Threads > 0 {
		lg += fmt.Sprintf(", %d threads", r.LoadGenerator.Threads)
	}
	floor := "the bare proxy has Gatehouse's connection pool and copy-buffer pool"
	if !r.Settings.BareBufferPool {
		floor = "the bare proxy has Gatehouse's connection pool, and allocates its copy buffers per request (-bare-buffer-pool=false)"
	}
	if r.Settings.BareGCHeadroomMiB > 0 {
		floor += fmt.Sprintf(", and Gatehouse's GC tuning with %d MiB of headroom (-bare-gc-headroom)", r.Settings.BareGCHeadroomMiB)
	} else {
		floor += "; its garbage collector runs with Go's defaults"
	}
	fmt.Fprintf(w, "Floor: %s. Gatehouse's garbage collector: %s.\n", floor, r.Settings.GatehouseGC)
	if len(r.Settings.FeatureSets) > 0 {
		fmt.Fprintf(w, "Gatehouse's per-request features: %s; the budget is judged on the first.\n", strings.Join(r.Settings.FeatureSets, "; "))
	}
	fmt.Fprintf(w, "Load generator: %s; per path %d rounds (%d for the paths needing a new token per request), each a %s run of the bare proxy and one of Gatehouse back to back; medians over the rounds, ratio = median of the rounds' ratios\n\n",
		lg, r.Settings.Rounds, r.Settings.TokenRounds, r.Settings.Duration)
	fmt.Fprintln(w, "| path | bare req/s | gatehouse req/s | ratio | bare p50 | gatehouse p50 | bare p99 | gatehouse p99 | proxy CPU/req bare → gatehouse | budget |")
	fmt.Fprintln(w, "|---|--:|--:|--:|--:|--:|--:|--:|--:|---|")
	foreign := 0.0
	for _, p := range r.Paths {
		budget := p.Budget
		if budget == "" || !r.judged(p) {
			budget = "(none; reported)"
		}
		fmt.Fprintf(w, "| %s | %.0f | %.0f | %.3f× | %.2f ms | %.2f ms | %.2f ms | %.2f ms | %.0f → %.0f µs | %s |\n",
			p.title(), p.Bare.RPS, p.Gatehouse.RPS, p.Ratio, p.Bare.P50ms, p.Gatehouse.P50ms, p.Bare.P99ms, p.Gatehouse.P99ms,
			p.Bare.CPUMicros, p.Gatehouse.CPUMicros, budget)
		foreign = max(foreign, p.Bare.MaxForeignPct, p.Gatehouse.MaxForeignPct)
	}
	if len(r.Paths) > 0 {
		fmt.Fprintf(w, "\nOther processes took at most %.0f%% of the machine during a round", foreign)
		var notes []string
		if slices.Contains(r.Settings.Stores, storePostgres) {
			notes = append(notes, "on PostgreSQL, that includes the database server working for Gatehouse")
		}
		if foreign > 5 {
			notes = append(notes, "the machine was not quiet: take the ratios with care")
		}
		if len(notes) > 0 {
			fmt.Fprint(w, " ("+strings.Join(notes, "; ")+")")
		}
		fmt.Fprintln(w, ".")
	}
	printStores(w, r)
	if len(r.Floods) > 0 {
		fmt.Fprintln(w)
		fmt.Fprintln(w, "| flood | requests | req/s | p50 | p99 | statuses | key-set fetches |")
		fmt.Fprintln(w, "|---|--:|--:|--:|--:|---|--:|")
		for _, f := range r.Floods {
			fmt.Fprintf(w, "| %s | %d | %.0f | %.2f ms | %.2f ms | %s | %d (allowed %d) |\n", f.Name, f.Result.Requests, f.Result.RPS,
				f.Result.P50ms, f.Result.P99ms, formatStatuses(f.Result), f.KeyFetches, f.AllowedFetches)
		}
	}
	if len(r.Streaming) > 0 {
		fmt.Fprintln(w)
		for _, s := range r.Streaming {
			fmt.Fprintf(w, "Streaming %d MiB %s: %.0f MiB/s, Gatehouse RSS %.1f → %.1f MiB (growth %.1f MiB)\n",
				s.Bytes>>20, s.Direction, s.MiBPerSecond, float64(s.RSSBeforeKiB)/1024, float64(s.RSSPeakKiB)/1024, s.GrowthMiB)
		}
	}
	fmt.Fprintf(w, "Peak RSS (VmHWM): Gatehouse %.1f MiB, bare proxy %.1f MiB\n", float64(r.RSS.GatehousePeakKiB)/1024, float64(r.RSS.BarePeakKiB)/1024)
	for _, m := range r.TokenMemory {
		fmt.Fprintf(w, "Heap per cached login token: %.0f B (%d tokens of %d users; %s)\n", m.BytesPerToken, m.Tokens, m.Users, m.Method)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| budget item | budget | measured | met |")
	fmt.Fprintln(w, "|---|---|---|---|")
	for _, b := range r.Budget {
		met := "—"
		if b.Met != nil {
			met = map[bool]string{true: "yes", false: "**no**"}[*b.Met]
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s |\n", b.Item, b.Budget, b.Measured, met)
	}
	fmt.Fprintf(w, "\nWhole run: %.0f s\n", r.Seconds)
}

func formatStatuses(r *result) string {
	keys := make([]string, 0, len(r.Statuses))
	for k := range r.Statuses {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s×%d", k, r.Statuses[k]))
	}
	if r.NetErrors > 0 {
		parts = append(parts, fmt.Sprintf("network errors×%d", r.NetErrors))
	}
	return strings.Join(parts, ", ")
}

func describeMachine() machineInfo {
	m := machineInfo{CPUs: runtime.NumCPU(), Go: runtime.Version(), OS: runtime.GOOS + "/" + runtime.GOARCH, CPU: "unknown"}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "MemTotal:"); ok {
				var kib int64
				fmt.Sscan(strings.TrimSpace(v), &kib)
				m.Memory = fmt.Sprintf("%.0f GiB RAM", float64(kib)/(1<<20))
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = "Linux " + strings.TrimSpace(string(b))
	}
	return m
}

// title is the path's name, with its store when the run had several.
func (p *pathResult) title() string {
	if p.Store == "" {
		return p.Name
	}
	return p.Name + " (" + p.Store + ")"
}

// storeRow is one path measured on each store, for the side-by-side table.
type storeRow struct {
	Path    string
	ByStore map[string]*pathResult
}

// sideBySide groups the paths by name, in the order they ran, when they
// ran on more than one store.
func sideBySide(paths []*pathResult) []storeRow {
	var rows []storeRow
	at := map[string]int{}
	for _, p := range paths {
		if p.Store == "" {
			continue
		}
		i, ok := at[p.Name]
		if !ok {
			i = len(rows)
			at[p.Name] = i
			rows = append(rows, storeRow{Path: p.Name, ByStore: map[string]*pathResult{}})
		}
		rows[i].ByStore[p.Store] = p
	}
	return rows
}

// printStores prints the paths on each store side by side, then the cold
// lookups and the revocation spread.
func printStores(w io.Writer, r *results) {
	stores := r.Settings.Variants
	if len(stores) == 0 {
		stores = r.Settings.Stores
	}
	if len(stores) > 1 {
		fmt.Fprintln(w)
		head, rule := "| path |", "|---|"
		for _, s := range stores {
			head += fmt.Sprintf(" %s req/s | %s × bare | %s p99 |", s, s, s)
			rule += "--:|--:|--:|"
		}
		fmt.Fprintln(w, head)
		fmt.Fprintln(w, rule)
		for _, row := range sideBySide(r.Paths) {
			line := "| " + row.Path + " |"
			for _, s := range stores {
				if p := row.ByStore[s]; p != nil {
					line += fmt.Sprintf(" %.0f | %.3f× | %.2f ms |", p.Gatehouse.RPS, p.Ratio, p.Gatehouse.P99ms)
				} else {
					line += " — | — | — |"
				}
			}
			fmt.Fprintln(w, line)
		}
	}
	if len(r.ColdLookups) > 0 {
		fmt.Fprintln(w)
		fmt.Fprintln(w, "| cold cookie lookup (GetLoginTokenWithUser) | tokens / users stored | rounds × lookups × goroutines | p50 | p90 | p99 | max | lookups/s | p99 of each round | target |")
		fmt.Fprintln(w, "|---|--:|--:|--:|--:|--:|--:|--:|---|---|")
		for _, c := range r.ColdLookups {
			target := "(none; for comparison)"
			if c.TargetP99ms > 0 {
				target = fmt.Sprintf("p99 < %g ms", c.TargetP99ms)
			}
			var each []string
			for _, r := range c.Rounds {
				each = append(each, fmt.Sprintf("%.2f", r.P99ms))
			}
			fmt.Fprintf(w, "| %s | %d / %d | %d × %d × %d | %.3f ms | %.3f ms | %.3f ms | %.2f ms | %.0f | %s ms | %s |\n",
				c.Store, c.Tokens, c.Users, len(c.Rounds), c.Lookups, c.Goroutines, c.P50ms, c.P90ms, c.P99ms, c.MaxMs, c.PerSecond, strings.Join(each, ", "), target)
		}
		fmt.Fprintln(w, "\nMedians over the rounds; the load generator's goroutines, the machine's other load and PostgreSQL's server share its CPUs.")
	}
	if s := r.Spread; s != nil {
		fmt.Fprintf(w, "\nRevocation spread (%d replicas on one PostgreSQL schema, session cache TTL %s; logout on A, B and C polled every %s until both refuse the cookie), %d revocations: p50 %.1f ms, p99 %.1f ms, max %.1f ms (target p99 < %g ms)\n",
			s.Replicas, s.CacheTTL, s.PollEvery, s.Revocations, s.P50ms, s.P99ms, s.MaxMs, s.TargetMs)
	}
}
