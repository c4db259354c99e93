// Command bench measures Gatehouse against a bare reverse proxy on loopback
// and checks the performance budget of the README's Performance section.
//
//	go run ./test/bench [-duration 2s] [-rounds 7] [-out bench-results.json]
//
// It starts a trivial upstream, the IMS emulator (in this process), a bare
// httputil.ReverseProxy with Gatehouse's default upstream pool (the floor)
// and the real gatehouse binary (built from this checkout), both as child
// processes. Each path is driven in alternating rounds, bare then
// Gatehouse, with the same load generator and concurrency: wrk when it is
// installed, else a Go load generator of its own. It then floods Gatehouse
// with forged tokens, streams 1 GiB each way through it, and measures the
// heap per cached login token. The results go to stdout as a table and to
// -out as JSON.
//
// -store postgres or both runs the paths on PostgreSQL too, each run on a
// schema of its own; -cold-tokens times a cold cookie's store lookup with
// that many tokens stored, and -spread how long a logout on one of three
// replicas takes to reach the other two.
package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse-proxy/gatehouse/auth/ims"
	"github.com/gatehouse-proxy/gatehouse/auth/ims/imstest"
)

// options are the command's flags.
type options struct {
	duration    time.Duration
	rounds      int
	tokenRounds int
	connections int
	threads     int
	out         string
	loadgen     string
	paths       string
	flood       time.Duration
	streamBytes int64
	memTokens   int
	gatehouse   string
	firstRate   int
	signinRate  int
	profile     string
	overlay     string
	barePool    bool
	bareGC      int
	env         envFlags
	store       string
	postgresURL string
	coldTokens  int
	coldUsers   int
	coldLookups int
	coldWorkers int
	coldRounds  int
	spread      int
	features    string
}

// envFlags collects repeated -env KEY=VALUE flags.
type envFlags []string

func (e *envFlags) String() string { return strings.Join(*e, " ") }

func (e *envFlags) Set(v string) error {
	if k, _, ok := strings.Cut(v, "="); !ok || !strings.HasPrefix(k, "GATEHOUSE_") {
		return fmt.Errorf("%q: want GATEHOUSE_NAME=value", v)
	}
	*e = append(*e, v)
	return nil
}

func main() {
	if os.Getenv(roleEnv) == roleBare {
		gc, _ := strconv.Atoi(os.Getenv(gcHeadroomEnv))
		if err := runBare(os.Getenv(upstreamEnv), bareOptions{bufferPool: os.Getenv(bufferPoolEnv) != "false", gcHeadroomMiB: gc}); err != nil {
			fmt.Fprintln(os.Stderr, "bare proxy:", err)
			os.Exit(1)
		}
		return
	}
	var o options
	flag.DurationVar(&o.duration, "duration", 2*time.Second, "length of each measured run (wrk rounds it to whole seconds)")
	flag.IntVar(&o.rounds, "rounds", 7, "rounds of the cookie and cached-bearer paths; each runs the bare proxy and Gatehouse back to back (on a shared 2-vCPU VM the ratio moves by up to ±10 % between rounds; more rounds steady the median)")
	flag.IntVar(&o.tokenRounds, "token-rounds", 3, "rounds of the paths that need a new token per request (each round's tokens are made beforehand)")
	flag.IntVar(&o.connections, "connections", 64, "concurrent connections of the load generator")
	flag.IntVar(&o.threads, "threads", 2, "wrk threads")
	flag.StringVar(&o.out, "out", "bench-results.json", "where to write the results as JSON")
	flag.StringVar(&o.loadgen, "loadgen", "auto", "auto (wrk if installed, else go), wrk or go")
	flag.StringVar(&o.paths, "paths", strings.Join(allPaths, ","), "paths to measure, comma separated")
	flag.DurationVar(&o.flood, "flood", 5*time.Second, "length of each forged-token flood")
	flag.Int64Var(&o.streamBytes, "stream-bytes", 1<<30, "bytes uploaded and downloaded through Gatehouse")
	flag.IntVar(&o.memTokens, "mem-tokens", 100_000, "login tokens cached for the memory figure")
	flag.StringVar(&o.gatehouse, "gatehouse", "", "gatehouse binary to measure (default: built from this checkout)")
	flag.IntVar(&o.firstRate, "first-seen-rate", 8000, "expected requests/s of Gatehouse for first-seen bearers: sizes the tokens minted beforehand")
	flag.IntVar(&o.signinRate, "first-signin-rate", 1500, "expected requests/s of Gatehouse for first sign-ins: sizes the users and tokens made beforehand")
	flag.StringVar(&o.profile, "profile", "", "write CPU profiles of Gatehouse and the bare proxy, and allocation profiles of Gatehouse, under each path's first round to this directory (builds gatehouse with a profiling hook added through go build -overlay)")
	flag.StringVar(&o.overlay, "overlay", "", "build gatehouse with this go build -overlay file (relative paths from the module root), to measure a variant without changing the checkout")
	flag.BoolVar(&o.barePool, "bare-buffer-pool", true, "give the bare proxy Gatehouse's pool of copy buffers (false: a ReverseProxy's default, a new 32 KiB buffer per request)")
	flag.IntVar(&o.bareGC, "bare-gc-headroom", 32, "give the bare proxy Gatehouse's GC tuning (cmd/runtime/gctune) with this many MiB of headroom, as GATEHOUSE_GC_HEADROOM_MIB gives Gatehouse (32 by default), so that the floor is a proxy tuned as an operator would tune it; 0: Go's defaults, as an untuned plain proxy runs")
	flag.StringVar(&o.features, "features", "on,off", "sets of per-request features Gatehouse runs the paths with, comma separated: on (access log, metrics and the signed assertion, as a production sidecar runs), off (none), no-log, no-metrics, no-assertion; the budget is judged on the first, and the others run the cookie and cached-bearer paths on the first store only, to show each feature's cost")
	flag.Var(&o.env, "env", "a GATEHOUSE_NAME=value setting for Gatehouse on top of the benchmark's own (repeatable), e.g. to measure GATEHOUSE_IMS_VALIDATION=both")
	flag.StringVar(&o.store, "store", storeSQLite, "the store Gatehouse runs on: sqlite, postgres (a fresh schema on -postgres-url, dropped after) or both (every path on each, reported side by side)")
	flag.StringVar(&o.postgresURL, "postgres-url", defaultPostgresURL(), "PostgreSQL server for -store postgres, -cold-tokens and -spread; a role that may create schemas (default: $"+postgresURLEnv+", else the local server)")
	flag.IntVar(&o.coldTokens, "cold-tokens", 0, "fill each -store with this many login tokens (e.g. 1000000) and time a cold cookie's store lookup, GetLoginTokenWithUser, on random ones; 0: skip")
	flag.IntVar(&o.coldUsers, "cold-users", 1000, "users the -cold-tokens tokens belong to")
	flag.IntVar(&o.coldLookups, "cold-lookups", 20000, "cold lookups timed per round and store")
	flag.IntVar(&o.coldRounds, "cold-rounds", 3, "rounds of cold lookups per store; the report gives the medians of their percentiles")
	flag.IntVar(&o.coldWorkers, "cold-goroutines", 4, "goroutines doing the cold lookups")
	flag.IntVar(&o.spread, "spread", 0, "revocations to time across three gatehouse replicas on one PostgreSQL schema (logout on one, until the others refuse the cookie), e.g. 100; 0: skip")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// The measured paths.
const (
	pathCookie      = "cookie"
	pathBearerCache = "bearer-cached"
	pathBearerFirst = "bearer-first-seen"
	pathFirstSignIn = "first-sign-in"
)

var allPaths = []string{pathCookie, pathBearerCache, pathBearerFirst, pathFirstSignIn}

// Emulator set-up.
const (
	benchClientID = "bench-desktop_1_0"
	benchOrg      = "BE0C0001@AdobeOrg"
	knownUsers    = 16 // users signed in before the rounds; first-seen tokens are theirs
	minRefresh    = 10 * time.Second
)

func benchUser(prefix string, i int) imstest.User {
	return imstest.User{
		ID:        fmt.Sprintf("%s%011X@AdobeID", prefix, i),
		Email:     fmt.Sprintf("%s%d@example.com", strings.ToLower(prefix), i),
		FirstName: "Bench", LastName: fmt.Sprint(i),
		Orgs: []imstest.Org{{ID: benchOrg, Name: "Bench", Groups: []ims.Group{
			{GroupName: "AEM-Authors", Role: "TEAM_MEMBER"},
			{GroupName: "DAM-Users", Role: "TEAM_MEMBER"},
			{GroupName: fmt.Sprintf("Team-%d", i%20), Role: "TEAM_MEMBER"},
		}}},
	}
}

type bench struct {
	o      options
	dir    string
	emu    *imstest.Server
	gen    loadGen
	gh     *process
	bare   *process
	client *http.Client
	res    *results
	prof   *profiler // nil unless -profile
	bin    string    // the gatehouse binary measured
	// baseEnv is Gatehouse's settings but the store and -env.
	baseEnv []string
}

func run(ctx context.Context, o options) error {
	started := time.Now()
	b := &bench{o: o, res: &results{}}
	var err error
	if b.dir, err = os.MkdirTemp("", "gatehouse-bench-"); err != nil {
		return err
	}
	defer os.RemoveAll(b.dir)
	b.client = &http.Client{Timeout: 5 * time.Minute,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

	switch o.loadgen {
	case "auto", "wrk":
		if g, ok := findWrk(b.dir, o.threads, o.connections); ok {
			b.gen = g
		} else if o.loadgen == "wrk" {
			return errors.New("-loadgen wrk: wrk is not installed (apt-get install wrk)")
		} else {
			b.gen = &goGen{connections: o.connections}
		}
	case "go":
		b.gen = &goGen{connections: o.connections}
	default:
		return fmt.Errorf("-loadgen %q: want auto, wrk or go", o.loadgen)
	}
	paths := strings.Split(o.paths, ",")
	for _, p := range paths {
		if !slices.Contains(allPaths, p) {
			return fmt.Errorf("-paths: unknown path %q (want some of %s)", p, strings.Join(allPaths, ","))
		}
	}
	stores, err := parseStores(o.store)
	if err != nil {
		return err
	}
	sets, err := parseFeatures(o.features)
	if err != nil {
		return err
	}
	if o.spread > 0 && o.spread < 100 {
		say("-spread %d: the p99 of fewer than 100 revocations is their maximum", o.spread)
	}
	b.res.Machine = describeMachine()
	b.res.LoadGenerator = loadGenInfo{Name: b.gen.name(), Connections: o.connections, Threads: o.threads}
	if _, ok := b.gen.(*goGen); ok {
		b.res.LoadGenerator.Threads = 0
	}
	b.res.Settings = settingsInfo{Duration: o.duration.String(), Rounds: o.rounds, TokenRounds: o.tokenRounds,
		BareBufferPool: o.barePool, BareGCHeadroomMiB: o.bareGC, GatehouseGC: gatehouseGC(o.env), Command: "go run ./test/bench " + strings.Join(os.Args[1:], " ")}
	b.res.Settings.Command = strings.TrimSpace(b.res.Settings.Command)
	say("machine: %s, %d CPUs, %s; load generator: %s, %d connections", b.res.Machine.CPU, b.res.Machine.CPUs, b.res.Machine.Go, b.gen.name(), o.connections)

	// The pieces.
	upstream, stopUpstream, err := startUpstream()
	if err != nil {
		return err
	}
	defer stopUpstream()
	b.emu = imstest.NewServer(imstest.Options{})
	defer b.emu.Close()
	for i := range knownUsers {
		b.emu.AddUser(benchUser("K", i))
	}
	bin := o.gatehouse
	if o.profile != "" {
		if o.gatehouse != "" || profileStart == nil {
			return errors.New("-profile needs a Unix system and the gatehouse binary built by the benchmark (no -gatehouse)")
		}
		b.prof = &profiler{dir: filepath.Join(b.dir, "profiles")}
		if err := os.MkdirAll(b.prof.dir, 0o700); err != nil {
			return err
		}
	}
	if bin == "" {
		say("building gatehouse")
		if bin, err = buildGatehouse(ctx, b.dir, b.prof != nil, o.overlay); err != nil {
			return err
		}
	}
	profileDir := ""
	if b.prof != nil {
		profileDir = b.prof.dir
	}
	if b.bare, err = startBare("http://"+upstream, profileDir, bareOptions{bufferPool: o.barePool, gcHeadroomMiB: o.bareGC}); err != nil {
		return err
	}
	defer b.bare.stop()
	env := []string{
		"GATEHOUSE_LISTEN=127.0.0.1:0",
		"GATEHOUSE_UPSTREAM=http://" + upstream,
		"GATEHOUSE_IMS_URL=" + b.emu.URL,
		"GATEHOUSE_IMS_CLIENT_IDS=" + benchClientID,
		"GATEHOUSE_IMS_ORG=" + benchOrg,
		"GATEHOUSE_IMS_VALIDATION=local",
		"GATEHOUSE_IMS_KEYS_MIN_REFRESH=" + minRefresh.String(),
		"GATEHOUSE_GROUP_MAPPING=*:GRP_ADMIN=administrators",
		"GATEHOUSE_SYNC_INTERVAL=24h",
		"GATEHOUSE_COOKIE_SECURE=false",
	}
	b.bin, b.baseEnv = bin, env
	b.res.Settings.Gatehouse = append(slices.Clone(env[3:]), o.env...)
	b.res.Settings.Stores = stores
	b.res.Settings.Features = sets
	for _, set := range sets {
		b.res.Settings.FeatureSets = append(b.res.Settings.FeatureSets, describeFeatures(set))
	}
	say("upstream %s, bare proxy %s, IMS emulator %s", upstream, b.bare.addr, b.emu.URL)
	// Store by store, each with every feature set, so that the sets' costs
	// are measured minutes apart on the same store.
	// The feature sets after the first show what each feature costs: that
	// is the same on every store (the warm paths touch none), so they run
	// on the first store only, and only the paths that do no store work.
	n := 0
	for i, store := range stores {
		for j, set := range sets {
			vp := paths
			if j > 0 {
				if i > 0 {
					continue
				}
				vp = slices.DeleteFunc(slices.Clone(paths), func(p string) bool { return p != pathCookie && p != pathBearerCache })
				if len(vp) == 0 {
					continue
				}
			}
			v := variant{store: store, features: set, label: variantLabel(store, set, len(stores) > 1, len(sets) > 1)}
			if v.label != "" {
				b.res.Settings.Variants = append(b.res.Settings.Variants, v.label)
			}
			if err := b.measureStore(ctx, n, v, vp); err != nil {
				return fmt.Errorf("store %s, features %s: %w", store, set, err)
			}
			n++
		}
	}
	for _, pr := range b.res.Paths {
		pr.summarize()
	}
	b.bare.stop()
	if b.prof != nil {
		if err := b.saveProfiles(bin); err != nil {
			return err
		}
	}
	if o.coldTokens > 0 {
		for _, store := range stores {
			c, err := b.coldLookups(ctx, store, o.coldTokens, max(1, o.coldUsers), max(1, o.coldLookups), max(1, o.coldWorkers), max(1, o.coldRounds))
			if err != nil {
				return fmt.Errorf("cold lookups: %w", err)
			}
			b.res.ColdLookups = append(b.res.ColdLookups, c)
		}
	}
	if o.spread > 0 {
		if b.res.Spread, err = b.spread(ctx, o.spread); err != nil {
			return fmt.Errorf("revocation spread: %w", err)
		}
	}

	if o.memTokens > 0 {
		say("measuring the heap per cached login token (%d tokens)", o.memTokens)
		for _, users := range []int{o.memTokens, max(1, o.memTokens/100)} {
			m, err := measureTokenMemory(o.memTokens, users)
			if err != nil {
				return fmt.Errorf("token memory: %w", err)
			}
			b.res.TokenMemory = append(b.res.TokenMemory, m)
		}
	}
	b.res.Seconds = time.Since(started).Seconds()
	b.res.evaluate(o)
	fmt.Println()
	b.res.print(os.Stdout)
	if o.out != "" {
		js, err := json.MarshalIndent(b.res, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(o.out, append(js, '\n'), 0o644); err != nil {
			return err
		}
		fmt.Printf("\nresults written to %s\n", o.out)
	}
	return nil
}

func say(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s  "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}

func anomalies(r *result) string {
	var s []string
	if r.Non2xx > 0 {
		s = append(s, fmt.Sprintf("%d non-2xx", r.Non2xx))
	}
	if r.NetErrors > 0 {
		s = append(s, fmt.Sprintf("%d network errors", r.NetErrors))
	}
	if r.Exhausted {
		s = append(s, "tokens ran out")
	}
	if len(s) == 0 {
		return ""
	}
	return "  (" + strings.Join(s, ", ") + ")"
}

// mint returns a token of the user prefix+i.
func (b *bench) mint(prefix string, i int) string {
	tok, _, err := b.emu.MintToken(imstest.TokenRequest{UserID: benchUser(prefix, i).ID, ClientID: benchClientID})
	if err != nil {
		panic(err) // the users are ours: cannot happen
	}
	return tok
}

// mintRounds mints rounds×n tokens, on every CPU, for user(i).
func (b *bench) mintRounds(rounds, n int, user func(i int) string) [][]string {
	all := make([]string, rounds*n)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(all) {
					return
				}
				tok, _, err := b.emu.MintToken(imstest.TokenRequest{UserID: user(i), ClientID: benchClientID})
				if err != nil {
					panic(err)
				}
				all[i] = tok
			}
		}()
	}
	wg.Wait()
	out := make([][]string, rounds)
	for r := range out {
		out[r] = all[r*n : (r+1)*n]
	}
	return out
}

// signIn sends a bearer token to Gatehouse and returns the login token it
// got back.
func (b *bench) signIn(token string) (string, error) { return b.signInAt(b.gh.URL(), token) }

// signInAt signs in with the bearer token at the Gatehouse at base.
func (b *bench) signInAt(base, token string) (string, error) {
	req, _ := http.NewRequest("GET", base+pathSmall, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := b.client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("bearer sign-in: %s", resp.Status)
	}
	for _, c := range resp.Cookies() {
		if c.Name == "login-token" && c.Value != "" {
			return c.Value, nil
		}
	}
	return "", errors.New("bearer sign-in: no login-token cookie")
}

// warmCookie makes one cookie request, which puts the login token in the
// cache, and checks it is accepted.
func (b *bench) warmCookie(cookie string) error {
	code, err := b.cookieStatus(context.Background(), b.gh.URL(), cookie)
	if err == nil && code != http.StatusOK {
		err = fmt.Errorf("cookie request: status %d", code)
	}
	return err
}

// streaming uploads and downloads o.streamBytes through Gatehouse and
// samples its resident set meanwhile.
func (b *bench) streaming(ctx context.Context, cookie string) error {
	n := b.o.streamBytes
	for _, dir := range []string{"upload", "download"} {
		var req *http.Request
		if dir == "upload" {
			req, _ = http.NewRequestWithContext(ctx, "PUT", b.gh.URL()+pathUpload, newPatternReader(n))
			req.ContentLength = n
		} else {
			req, _ = http.NewRequestWithContext(ctx, "GET", fmt.Sprintf("%s%s?bytes=%d", b.gh.URL(), pathDownload, n), nil)
		}
		req.Header.Set("Cookie", "login-token="+cookie)
		pid := b.gh.cmd.Process.Pid
		base, err := readMemory(pid)
		if err != nil {
			return err
		}
		var peak atomic.Int64
		peak.Store(base.RSSKiB)
		stop := make(chan struct{})
		sampled := make(chan struct{})
		go func() {
			defer close(sampled)
			t := time.NewTicker(10 * time.Millisecond)
			defer t.Stop()
			for {
				select {
				case <-stop:
					return
				case <-t.C:
				}
				if m, err := readMemory(pid); err == nil && m.RSSKiB > peak.Load() {
					peak.Store(m.RSSKiB)
				}
			}
		}()
		t0 := time.Now()
		resp, err := b.client.Do(req)
		var got int64
		if err == nil {
			if dir == "upload" {
				var body []byte
				body, err = io.ReadAll(resp.Body)
				_, _ = fmt.Sscan(string(body), &got)
			} else {
				got, err = io.Copy(io.Discard, resp.Body)
			}
			resp.Body.Close()
			if err == nil && resp.StatusCode != http.StatusOK {
				err = fmt.Errorf("%s: %s", dir, resp.Status)
			}
		}
		elapsed := time.Since(t0)
		close(stop)
		<-sampled
		if err != nil {
			return err
		}
		if got != n {
			return fmt.Errorf("%s: %d bytes arrived, want %d", dir, got, n)
		}
		s := streamResult{Direction: dir, Bytes: n, Seconds: elapsed.Seconds(),
			MiBPerSecond: float64(n) / (1 << 20) / elapsed.Seconds(),
			RSSBeforeKiB: base.RSSKiB, RSSPeakKiB: peak.Load(), GrowthMiB: float64(peak.Load()-base.RSSKiB) / 1024}
		b.res.Streaming = append(b.res.Streaming, s)
		say("%s of %d MiB through gatehouse: %.0f MiB/s, RSS %d → peak %d KiB (+%.1f MiB)", dir, n>>20, s.MiBPerSecond, s.RSSBeforeKiB, s.RSSPeakKiB, s.GrowthMiB)
	}
	return nil
}

// floods sends forged tokens for a while: first with the key id of IMS's
// signing key and a wrong signature, then with key ids IMS does not
// publish, and counts the key-set fetches the emulator saw.
func (b *bench) floods(ctx context.Context, valid string) error {
	parts := strings.Split(valid, ".")
	if len(parts) != 3 {
		return errors.New("minted token is not a JWT")
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return err
	}
	header, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil {
		return err
	}
	const distinct = 1000
	badSig := make([]string, distinct)
	unknownKid := make([]string, distinct)
	for i := range distinct {
		s := slices.Clone(sig)
		s[i%len(s)] ^= byte(1 + i/len(s))
		s[(i*7+3)%len(s)] ^= 0x5a
		badSig[i] = parts[0] + "." + parts[1] + "." + base64.RawURLEncoding.EncodeToString(s)
		var h map[string]any
		if err := json.Unmarshal(header, &h); err != nil {
			return err
		}
		h["kid"] = fmt.Sprintf("bench-unknown-key-%d", i)
		hj, _ := json.Marshal(h)
		unknownKid[i] = base64.RawURLEncoding.EncodeToString(hj) + "." + parts[1] + "." + parts[2]
	}
	for _, f := range []struct {
		name   string
		tokens []string
		allow  int64
	}{
		{"known kid, bad signature", badSig, int64(b.o.flood / (10 * time.Second))},
		{"unknown kids", unknownKid, int64(b.o.flood/minRefresh) + 1},
	} {
		before := b.emu.Calls(imstest.EndpointKeys)
		r, err := b.gen.run(ctx, b.gh.URL(), workload{method: "GET", path: pathSmall, tokens: f.tokens, wrap: true, statuses: true}, b.o.flood)
		if err != nil {
			return err
		}
		fetches := b.emu.Calls(imstest.EndpointKeys) - before
		fr := floodResult{Name: f.name, Result: r, KeyFetches: fetches, AllowedFetches: max(f.allow, 1),
			All401: r.NetErrors == 0 && len(r.Statuses) == 1 && r.Statuses["401"] == r.Requests}
		b.res.Floods = append(b.res.Floods, fr)
		say("flood (%s): %d requests, %.0f req/s, p99 %.2f ms, key-set fetches %d, statuses %v", f.name, r.Requests, r.RPS, r.P99ms, fetches, r.Statuses)
	}
	return nil
}

// saveProfiles copies the profiles and the binary they belong to into the
// -profile directory.
func (b *bench) saveProfiles(bin string) error {
	if err := os.MkdirAll(b.o.profile, 0o755); err != nil {
		return err
	}
	files, _ := filepath.Glob(filepath.Join(b.prof.dir, "*.prof"))
	for _, f := range append(files, bin) {
		data, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(b.o.profile, filepath.Base(f)), data, 0o755); err != nil {
			return err
		}
	}
	say("profiles in %s: go tool pprof -top %s %s",
		b.o.profile, filepath.Join(b.o.profile, "gatehouse"), filepath.Join(b.o.profile, pathCookie+".cpu.prof"))
	say("allocations during a run: go tool pprof -sample_index=alloc_space -diff_base %s %s",
		filepath.Join(b.o.profile, pathCookie+".allocs-base.prof"), filepath.Join(b.o.profile, pathCookie+".allocs.prof"))
	return nil
}

// gatehouseGC says how Gatehouse's garbage collector was set up: by the
// operator's GOGC or GOMEMLIMIT, which it inherits, or by its own tuning.
func gatehouseGC(env envFlags) string {
	for _, k := range []string{"GOGC", "GOMEMLIMIT"} {
		if v, ok := os.LookupEnv(k); ok {
			return fmt.Sprintf("%s=%s, inherited from the environment (its own tuning is then off)", k, v)
		}
	}
	mib := "32"
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "GATEHOUSE_GC_HEADROOM_MIB="); ok {
			mib = v
		}
	}
	if mib == "0" {
		return "Go's defaults (GATEHOUSE_GC_HEADROOM_MIB=0)"
	}
	return "heap goal kept " + mib + " MiB above the live heap (GATEHOUSE_GC_HEADROOM_MIB)"
}

// variant is one store and feature set the paths run on.
type variant struct {
	store, features string
	// label names it in the report; empty for SQLite alone with one set.
	label string
}

// measureStore starts Gatehouse on a fresh store of the kind, with the
// variant's features, and drives every path against it and the bare proxy.
// The first variant measured also gets the streaming, the floods and the
// peak memory.
func (b *bench) measureStore(ctx context.Context, index int, v variant, paths []string) error {
	o, first, store := b.o, index == 0, v.store
	setting, cleanup, err := b.storeSetting(ctx, store)
	if err != nil {
		return err
	}
	defer cleanup()
	features, err := featureEnv(v.features)
	if err != nil {
		return err
	}
	env := append(slices.Clone(b.baseEnv), "GATEHOUSE_STORE="+setting)
	env = append(env, features...)
	env = append(env, o.env...)
	b.res.Settings.StoreSettings = append(b.res.Settings.StoreSettings, redactSetting("GATEHOUSE_STORE="+setting))
	if b.prof != nil {
		env = append(env, profileEnv+"="+b.prof.dir)
	}
	if b.gh, err = startGatehouse(b.bin, env); err != nil {
		return err
	}
	defer b.gh.stop()
	// A single variant's run reads as before; with several, each row says
	// which it was measured on.
	label, storeNote := v.label, ""
	if label != "" {
		storeNote = label + ": "
	}
	say("gatehouse %s on %s, %s", b.gh.addr, store, describeFeatures(v.features))

	// Sign-ins the paths need.
	cookieTok := b.mint("K", 0)
	cookie, err := b.signIn(cookieTok)
	if err != nil {
		return fmt.Errorf("sign in: %w", err)
	}
	cachedTok := b.mint("K", 1)
	if _, err := b.signIn(cachedTok); err != nil {
		return fmt.Errorf("sign in: %w", err)
	}
	for i := 2; i < knownUsers; i++ {
		if _, err := b.signIn(b.mint("K", i)); err != nil {
			return fmt.Errorf("sign in: %w", err)
		}
	}
	if err := b.warmCookie(cookie); err != nil {
		return err
	}

	// Streaming first, while the process is small.
	if first && o.streamBytes > 0 {
		if err := b.streaming(ctx, cookie); err != nil {
			return fmt.Errorf("streaming: %w", err)
		}
	}

	roundsFor := func(p string) int {
		if p == pathBearerFirst || p == pathFirstSignIn {
			return o.tokenRounds
		}
		return o.rounds
	}

	// Tokens for the paths that need a new one per request.
	perRun := func(rate int) int { return int(float64(rate)*o.duration.Seconds()*1.2) + 1000 }
	var firstSeen, firstSignIn [][]string
	if slices.Contains(paths, pathBearerFirst) {
		say("minting %d tokens for %s", perRun(o.firstRate)*o.tokenRounds, pathBearerFirst)
		firstSeen = b.mintRounds(o.tokenRounds, perRun(o.firstRate), func(i int) string {
			return benchUser("K", i%knownUsers).ID
		})
	}
	if slices.Contains(paths, pathFirstSignIn) {
		n := perRun(o.signinRate)
		say("minting tokens of %d new users for %s", n*o.tokenRounds, pathFirstSignIn)
		if first {
			// The emulator's users serve every store: each is new to each.
			for i := range n * o.tokenRounds {
				b.emu.AddUser(benchUser("N", i))
			}
		}
		firstSignIn = b.mintRounds(o.tokenRounds, n, func(i int) string { return benchUser("N", i).ID })
	}

	workloads := map[string]func(round int, bare bool) workload{
		pathCookie: func(int, bool) workload {
			return workload{method: "GET", path: pathSmall, headers: map[string]string{"Cookie": "login-token=" + cookie}}
		},
		pathBearerCache: func(int, bool) workload {
			return workload{method: "GET", path: pathSmall, headers: map[string]string{"Authorization": "Bearer " + cachedTok}}
		},
		pathBearerFirst: func(round int, bare bool) workload {
			return workload{method: "GET", path: pathSmall, tokens: firstSeen[round], wrap: bare}
		},
		pathFirstSignIn: func(round int, bare bool) workload {
			return workload{method: "GET", path: pathSmall, tokens: firstSignIn[round], wrap: bare}
		},
	}
	// A short warm-up of both, so that neither pays for its first connections in round 1.
	for _, t := range []*process{b.bare, b.gh} {
		if _, err := b.gen.run(ctx, t.URL(), workloads[pathCookie](0, true), time.Second); err != nil {
			return fmt.Errorf("warm-up %s: %w", t.name, err)
		}
	}
	for _, p := range paths {
		b.res.Paths = append(b.res.Paths, &pathResult{Name: p, Store: label, Features: v.features, Budget: budgets[p].text})
	}
	mine := b.res.Paths[len(b.res.Paths)-len(paths):]
	// Path by path, so that the paths that fill Gatehouse's caches with
	// tens of thousands of tokens come after the ones that do not; within
	// a path, rounds of bare and Gatehouse back to back, in the order
	// bare-Gatehouse, Gatehouse-bare, … so that a steady drift of the
	// machine's speed does not favour either.
	for i, p := range paths {
		pr := mine[i]
		for round := range roundsFor(p) {
			order := []bool{true, false}
			if round%2 == 1 {
				order = []bool{false, true}
			}
			for _, bare := range order {
				target := b.gh
				if bare {
					target = b.bare
				}
				profiled := b.prof != nil && round == 0 && first
				name := p
				if bare {
					name = "bare-" + p
				}
				if profiled {
					if err := b.prof.signal(target, name, profileStart, ".started"); err != nil {
						return err
					}
				}
				pids := []int{b.bare.cmd.Process.Pid, b.gh.cmd.Process.Pid}
				before := takeCPUSnapshot(pids...)
				r, err := b.gen.run(ctx, target.URL(), workloads[p](round, bare), o.duration)
				if err == nil {
					r.CPU = usage(before, takeCPUSnapshot(pids...), target.cmd.Process.Pid, r.Requests, r.Seconds, runtime.NumCPU())
				}
				if profiled {
					if err := b.prof.signal(target, name, profileStop, ".stopped"); err != nil {
						return err
					}
				}
				if err != nil {
					return fmt.Errorf("%s, %s, round %d: %w", p, target.name, round+1, err)
				}
				if bare {
					pr.Bare.Rounds = append(pr.Bare.Rounds, r)
				} else {
					pr.Gatehouse.Rounds = append(pr.Gatehouse.Rounds, r)
				}
				say("%sround %d %-18s %-10s %8.0f req/s  p50 %6.2f ms  p99 %6.2f ms  proxy CPU %5.1f µs/req  other load %3.0f%%%s",
					storeNote, round+1, p, target.name, r.RPS, r.P50ms, r.P99ms, r.CPU.ProxyMicros, r.CPU.ForeignPct, anomalies(r))
			}
		}
	}
	if first {
		// Floods of forged tokens.
		if o.flood > 0 {
			if err := b.floods(ctx, cachedTok); err != nil {
				return fmt.Errorf("flood: %w", err)
			}
		}
		// Peak memory of both processes over the run so far.
		if m, err := readMemory(b.gh.cmd.Process.Pid); err == nil {
			b.res.RSS.GatehousePeakKiB = m.HWMKiB
			b.res.RSS.GatehouseEndKiB = m.RSSKiB
		}
		if m, err := readMemory(b.bare.cmd.Process.Pid); err == nil {
			b.res.RSS.BarePeakKiB = m.HWMKiB
		}
	}
	return nil
}
