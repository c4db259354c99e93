package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// workload is what one load run sends: the same request over and over, or
// one bearer token per request from a list.
type workload struct {
	name    string
	method  string
	path    string
	headers map[string]string // sent with every request
	// tokens, when set, are sent one per request as "Authorization: Bearer
	// <token>", each at most once unless wrap is set. A run that has used
	// them all ends early: its rate is still requests over the time it ran.
	tokens []string
	wrap   bool
	// statuses asks for a count of responses per status code (it slows
	// wrk down, so only the floods use it).
	statuses bool
}

// result is one load run's outcome.
type result struct {
	Requests  int64   `json:"requests"`
	Seconds   float64 `json:"seconds"`
	RPS       float64 `json:"rps"`
	P50ms     float64 `json:"p50_ms"`
	P90ms     float64 `json:"p90_ms"`
	P99ms     float64 `json:"p99_ms"`
	MaxMs     float64 `json:"max_ms"`
	Non2xx    int64   `json:"non_2xx_3xx"`    // responses with another status
	NetErrors int64   `json:"network_errors"` // connect, read, write errors and timeouts
	// Statuses counts responses per status code, when asked for.
	Statuses map[string]int64 `json:"statuses,omitempty"`
	// Exhausted says the run ended early because its tokens ran out.
	Exhausted bool `json:"tokens_exhausted,omitempty"`
	// CPU is where the machine's CPU time went during the run.
	CPU cpuUsage `json:"cpu"`
}

// loadGen drives a target with a workload for a while.
type loadGen interface {
	name() string
	run(ctx context.Context, baseURL string, w workload, d time.Duration) (*result, error)
}

// wrkGen runs wrk with a generated Lua script.
type wrkGen struct {
	bin         string
	version     string
	threads     int
	connections int
	dir         string // for scripts and token files
	seq         int
}

func (g *wrkGen) name() string { return g.version }

func findWrk(dir string, threads, connections int) (*wrkGen, bool) {
	bin, err := exec.LookPath("wrk")
	if err != nil {
		return nil, false
	}
	out, _ := exec.Command(bin, "-v").CombinedOutput() // exits 1 after printing its usage
	version := "wrk"
	if line, _, _ := strings.Cut(string(out), "\n"); strings.HasPrefix(line, "wrk ") {
		if f := strings.Fields(line); len(f) >= 2 {
			version = "wrk " + f[1]
		}
	}
	return &wrkGen{bin: bin, version: version, threads: threads, connections: connections, dir: dir}, true
}

func (g *wrkGen) run(ctx context.Context, baseURL string, w workload, d time.Duration) (*result, error) {
	g.seq++
	tokensFile := ""
	if len(w.tokens) > 0 {
		tokensFile = filepath.Join(g.dir, fmt.Sprintf("tokens-%d.txt", g.seq))
		if err := os.WriteFile(tokensFile, []byte(strings.Join(w.tokens, "\n")+"\n"), 0o600); err != nil {
			return nil, err
		}
		defer os.Remove(tokensFile)
	}
	script := filepath.Join(g.dir, fmt.Sprintf("run-%d.lua", g.seq))
	if err := os.WriteFile(script, []byte(luaScript(w, tokensFile, g.threads)), 0o600); err != nil {
		return nil, err
	}
	defer os.Remove(script)
	secs := max(1, int(d.Round(time.Second)/time.Second))
	cmd := exec.CommandContext(ctx, g.bin, "-t", strconv.Itoa(g.threads), "-c", strconv.Itoa(g.connections),
		"-d", strconv.Itoa(secs)+"s", "--timeout", "10s", "-s", script, baseURL+w.path)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("wrk: %w: %s", err, tail(out, 500))
	}
	return parseWrkOutput(out)
}

// parseWrkOutput reads the line the script's done() prints.
func parseWrkOutput(out []byte) (*result, error) {
	const marker = "BENCHJSON "
	for line := range strings.SplitSeq(string(out), "\n") {
		js, ok := strings.CutPrefix(strings.TrimSpace(line), marker)
		if !ok {
			continue
		}
		var raw struct {
			Requests  int64            `json:"requests"`
			Micros    int64            `json:"duration_us"`
			P50       float64          `json:"p50_us"`
			P90       float64          `json:"p90_us"`
			P99       float64          `json:"p99_us"`
			Max       float64          `json:"max_us"`
			Status    int64            `json:"status_errors"`
			Net       int64            `json:"net_errors"`
			Statuses  map[string]int64 `json:"statuses"`
			Exhausted int              `json:"exhausted"`
		}
		if err := json.Unmarshal([]byte(js), &raw); err != nil {
			return nil, fmt.Errorf("wrk output %q: %w", js, err)
		}
		r := &result{
			Requests: raw.Requests, Seconds: float64(raw.Micros) / 1e6,
			P50ms: raw.P50 / 1000, P90ms: raw.P90 / 1000, P99ms: raw.P99 / 1000, MaxMs: raw.Max / 1000,
			Non2xx: raw.Status, NetErrors: raw.Net, Exhausted: raw.Exhausted > 0,
		}
		if len(raw.Statuses) > 0 {
			r.Statuses = raw.Statuses
		}
		if r.Seconds > 0 {
			r.RPS = float64(r.Requests) / r.Seconds
		}
		return r, nil
	}
	return nil, fmt.Errorf("wrk printed no result: %s", tail(out, 500))
}

// luaScript is the wrk script for w. Every thread reads its share of the
// tokens (every threads-th line) in init; done() prints one JSON line.
func luaScript(w workload, tokensFile string, threads int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "wrk.method = %q\n", w.method)
	keys := make([]string, 0, len(w.headers))
	for k := range w.headers {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	b.WriteString("local static = {}\n")
	for _, k := range keys {
		fmt.Fprintf(&b, "wrk.headers[%q] = %q\nstatic[%q] = %q\n", k, w.headers[k], k, w.headers[k])
	}
	fmt.Fprintf(&b, "local nthreads = %d\n", threads)
	b.WriteString(`
local threads = {}
local nextid = 0
function setup(thread)
  thread:set("id", nextid)
  nextid = nextid + 1
  table.insert(threads, thread)
end

statuses = {}
exhausted = 0
`)
	if tokensFile != "" {
		fmt.Fprintf(&b, "local tokens_file = %q\nlocal wrap = %v\n", tokensFile, w.wrap)
		b.WriteString(`
local tokens = {}
local idx = 1
-- wrk divides by the whole -d duration even when a thread stops early, so
-- a thread whose tokens run out times itself with the monotonic clock.
local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } gh_timespec;
int clock_gettime(int clk, gh_timespec *ts);
]]
local ts = ffi.new("gh_timespec")
local function now_us()
  ffi.C.clock_gettime(1, ts) -- CLOCK_MONOTONIC
  return tonumber(ts.tv_sec) * 1000000 + math.floor(tonumber(ts.tv_nsec) / 1000)
end
local started
function init(args)
  local i = 0
  for line in io.lines(tokens_file) do
    if line ~= "" then
      if i % nthreads == id then table.insert(tokens, line) end
      i = i + 1
    end
  end
end

function request()
  if not started then started = now_us() end
  if idx > #tokens then
    if not wrap then
      -- Out of tokens: stop. wrk may still send what this returns, so it
      -- is Gatehouse's health check rather than a token seen before.
      if exhausted == 0 then wrk.thread:set("ran_us", now_us() - started) end
      exhausted = 1
      wrk.thread:stop()
      return wrk.format("GET", "/gatehouse/healthz", static)
    end
    idx = 1
  end
  local h = {}
  for k, v in pairs(static) do h[k] = v end
  h["Authorization"] = "Bearer " .. tokens[idx]
  idx = idx + 1
  return wrk.format(nil, nil, h)
end
`)
	}
	if w.statuses {
		b.WriteString(`
function response(status, headers, body)
  local k = tostring(status)
  statuses[k] = (statuses[k] or 0) + 1
end
`)
	}
	b.WriteString(`
function done(summary, latency, requests)
  local ex = 0
  local st = {}
  -- A run cut short by running out of tokens lasted as long as its
  -- longest-running thread, not the -d duration wrk reports.
  local ran = 0
  for _, t in ipairs(threads) do
    local r = t:get("ran_us")
    if t:get("exhausted") == 1 and r then
      ex = ex + 1
      if r > ran then ran = r end
    else
      ran = summary.duration
    end
    local s = t:get("statuses")
    if s then
      for k, v in pairs(s) do st[k] = (st[k] or 0) + v end
    end
  end
  local parts = {}
  for k, v in pairs(st) do table.insert(parts, string.format("%q:%d", k, v)) end
  local e = summary.errors
  io.write(string.format(
    "BENCHJSON {\"requests\":%d,\"duration_us\":%d,\"p50_us\":%d,\"p90_us\":%d,\"p99_us\":%d,\"max_us\":%d," ..
    "\"status_errors\":%d,\"net_errors\":%d,\"exhausted\":%d,\"statuses\":{%s}}\n",
    summary.requests, math.min(ran, summary.duration), latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, e.status, e.connect + e.read + e.write + e.timeout,
    ex, table.concat(parts, ",")))
end
`)
	return b.String()
}

func tail(b []byte, n int) string {
	s := strings.TrimSpace(string(b))
	if len(s) > n {
		s = "…" + s[len(s)-n:]
	}
	return s
}

// goGen is the load generator used when wrk is not installed: one
// goroutine per connection in a closed loop, like wrk, with exact
// percentiles from every latency recorded.
type goGen struct {
	connections int
}

func (g *goGen) name() string { return "go (built-in; wrk not found)" }

func (g *goGen) run(ctx context.Context, baseURL string, w workload, d time.Duration) (*result, error) {
	tr := &http.Transport{
		Proxy:               nil,
		MaxIdleConns:        g.connections,
		MaxIdleConnsPerHost: g.connections,
		MaxConnsPerHost:     g.connections,
		DisableCompression:  true,
		IdleConnTimeout:     time.Minute,
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()

	var next atomic.Int64
	var exhausted atomic.Bool
	type worker struct {
		lat      []time.Duration
		statuses map[int]int64
		netErrs  int64
	}
	workers := make([]*worker, g.connections)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range workers {
		wk := &worker{statuses: map[int]int64{}, lat: make([]time.Duration, 0, 4096)}
		workers[i] = wk
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				req, err := http.NewRequestWithContext(ctx, w.method, baseURL+w.path, nil)
				if err != nil {
					return
				}
				for k, v := range w.headers {
					req.Header.Set(k, v)
				}
				if len(w.tokens) > 0 {
					n := next.Add(1) - 1
					if n >= int64(len(w.tokens)) {
						if !w.wrap {
							exhausted.Store(true) // requests under way still finish
							return
						}
						n %= int64(len(w.tokens))
					}
					req.Header.Set("Authorization", "Bearer "+w.tokens[n])
				}
				t0 := time.Now()
				resp, err := client.Do(req)
				if err == nil {
					_, err = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				if ctx.Err() != nil {
					return // the run ended during this request: not counted
				}
				wk.lat = append(wk.lat, time.Since(t0))
				if err != nil {
					wk.netErrs++
					continue
				}
				wk.statuses[resp.StatusCode]++
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	var all []time.Duration
	r := &result{Seconds: elapsed.Seconds(), Exhausted: exhausted.Load()}
	statuses := map[int]int64{}
	for _, wk := range workers {
		all = append(all, wk.lat...)
		r.NetErrors += wk.netErrs
		for s, n := range wk.statuses {
			statuses[s] += n
			if s < 200 || s >= 400 {
				r.Non2xx += n
			}
		}
	}
	r.Requests = int64(len(all))
	if r.Seconds > 0 {
		r.RPS = float64(r.Requests) / r.Seconds
	}
	slices.Sort(all)
	ms := func(d time.Duration) float64 { return float64(d) / 1e6 }
	r.P50ms, r.P90ms, r.P99ms = ms(percentile(all, 50)), ms(percentile(all, 90)), ms(percentile(all, 99))
	if len(all) > 0 {
		r.MaxMs = ms(all[len(all)-1])
	}
	if w.statuses {
		r.Statuses = map[string]int64{}
		for s, n := range statuses {
			r.Statuses[strconv.Itoa(s)] = n
		}
	}
	if r.Requests == 0 {
		return r, errors.New("no request completed")
	}
	return r, nil
}

// percentile returns the p-th percentile of sorted (nearest rank).
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(p/100*float64(len(sorted))+0.5) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// lineScanner is bufio.Scanner with room for long log lines.
func lineScanner(r io.Reader) *bufio.Scanner {
	s := bufio.NewScanner(r)
	s.Buffer(make([]byte, 64<<10), 1<<20)
	return s
}
