package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gatehouse-proxy/gatehouse/cmd/runtime/gctune"
	"github.com/gatehouse-proxy/gatehouse/proxy"
)

// process is a proxy running as a child process, so that its memory is its
// own and it competes for the CPU as a deployed one would.
type process struct {
	name string
	cmd  *exec.Cmd
	addr string
	done chan struct{}
	err  error

	mu  sync.Mutex
	out tailBuffer // the end of its output, for errors
}

func (p *process) URL() string { return "http://" + p.addr }

// stop sends SIGINT and waits for the process to exit.
func (p *process) stop() {
	if p.cmd.Process == nil {
		return
	}
	_ = p.cmd.Process.Signal(os.Interrupt)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

func (p *process) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

// start runs cmd and waits until findAddr, fed its output line by line,
// returns the address it listens on. The rest of the output is read and
// dropped (Gatehouse writes one access-log line per request), keeping
// the last few kilobytes.
func start(name string, cmd *exec.Cmd, findAddr func(line string) string) (*process, error) {
	p := &process{name: name, cmd: cmd, done: make(chan struct{})}
	pr, pw := io.Pipe()
	cmd.Stdout = pw
	cmd.Stderr = pw
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() {
		p.err = cmd.Wait()
		pw.Close()
		close(p.done)
	}()
	addrc := make(chan string, 1)
	go func() {
		sc := lineScanner(pr)
		for sc.Scan() {
			p.mu.Lock()
			p.out.Write(append(sc.Bytes(), '\n'))
			p.mu.Unlock()
			if findAddr == nil {
				break
			}
			if a := findAddr(sc.Text()); a != "" {
				addrc <- a
				break
			}
		}
		buf := make([]byte, 64<<10)
		for {
			n, err := pr.Read(buf)
			p.mu.Lock()
			p.out.Write(buf[:n])
			p.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	if findAddr == nil {
		return p, nil // the caller knows the address
	}
	select {
	case p.addr = <-addrc:
		return p, nil
	case <-p.done:
		return nil, fmt.Errorf("%s exited before listening (%v): %s", name, p.err, p.output())
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		<-p.done
		return nil, fmt.Errorf("%s did not report its address within 30s: %s", name, p.output())
	}
}

// tailBuffer keeps the last 16 KiB written to it.
type tailBuffer struct{ b []byte }

func (t *tailBuffer) Write(p []byte) {
	const keep = 16 << 10
	t.b = append(t.b, p...)
	if len(t.b) > 2*keep {
		t.b = append(t.b[:0], t.b[len(t.b)-keep:]...)
	}
}

func (t *tailBuffer) String() string {
	const keep = 4 << 10
	if len(t.b) > keep {
		return "…" + string(t.b[len(t.b)-keep:])
	}
	return string(t.b)
}

// buildGatehouse builds the binary from the module the command runs in.
// With profiling, the build gets one more file in package main (through
// go build -overlay, so the checkout is untouched): profileHook, which
// writes CPU and allocation profiles when the benchmark signals it. The
// product itself has no such switch.
//
// overlay, if not empty, is a go build -overlay file of the caller's, for
// measuring a variant of the code without changing the checkout.
func buildGatehouse(ctx context.Context, dir string, profiling bool, overlay string) (string, error) {
	root, err := moduleRoot(ctx)
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "gatehouse")
	args := []string{"build", "-o", bin}
	replace := map[string]string{}
	if overlay != "" {
		var ov struct{ Replace map[string]string }
		b, err := os.ReadFile(overlay)
		if err == nil {
			err = json.Unmarshal(b, &ov)
		}
		if err != nil {
			return "", fmt.Errorf("-overlay: %w", err)
		}
		for k, v := range ov.Replace {
			if !filepath.IsAbs(k) {
				k = filepath.Join(root, k)
			}
			replace[k] = v
		}
	}
	if profiling {
		hook := filepath.Join(dir, "profilehook.go")
		if err := os.WriteFile(hook, []byte(profileHook), 0o600); err != nil {
			return "", err
		}
		replace[filepath.Join(root, "cmd", "gatehouse", "zz_bench_profile_hook.go")] = hook
	}
	if len(replace) > 0 {
		js, _ := json.Marshal(map[string]any{"Replace": replace})
		ov := filepath.Join(dir, "overlay.json")
		if err := os.WriteFile(ov, js, 0o600); err != nil {
			return "", err
		}
		args = append(args, "-overlay", ov)
	}
	cmd := exec.CommandContext(ctx, "go", append(args, "./cmd/gatehouse")...)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/gatehouse: %w: %s", err, out)
	}
	return bin, nil
}

// profileEnv names the directory where the profiling build writes its
// profiles; the file "next" there holds the name of the next one.
const profileEnv = "GATEHOUSE_BENCH_PROFILE_DIR"

// profileHook is added to the gatehouse build under -profile: SIGUSR1
// starts a CPU profile, SIGUSR2 stops it and writes the allocation profile
// (cumulative since start-up; the one written at SIGUSR1 is its base).
const profileHook = `package main

import (
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"syscall"
)

func init() {
	dir := os.Getenv("` + profileEnv + `")
	if dir == "" {
		return
	}
	c := make(chan os.Signal, 4)
	signal.Notify(c, syscall.SIGUSR1, syscall.SIGUSR2)
	go func() {
		var cpu *os.File
		for s := range c {
			name, _ := os.ReadFile(filepath.Join(dir, "next"))
			base := filepath.Join(dir, string(name))
			if s == syscall.SIGUSR1 {
				writeBenchProfile(base + ".allocs-base.prof")
				cpu, _ = os.Create(base + ".cpu.prof")
				_ = pprof.StartCPUProfile(cpu)
				_ = os.WriteFile(base+".started", nil, 0o600)
				continue
			}
			pprof.StopCPUProfile()
			_ = cpu.Close()
			writeBenchProfile(base + ".allocs.prof")
			_ = os.WriteFile(base+".stopped", nil, 0o600)
		}
	}()
}

func writeBenchProfile(path string) {
	f, err := os.Create(path)
	if err != nil {
		return
	}
	_ = pprof.Lookup("allocs").WriteTo(f, 0)
	_ = f.Close()
}
`

// profiler drives the profiling build's hook.
type profiler struct {
	dir string
}

// signal asks the process for a profile step and waits for it to be done.
func (pf *profiler) signal(p *process, name string, sig os.Signal, done string) error {
	if err := os.WriteFile(filepath.Join(pf.dir, "next"), []byte(name), 0o600); err != nil {
		return err
	}
	if err := p.cmd.Process.Signal(sig); err != nil {
		return err
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := os.Stat(filepath.Join(pf.dir, name+done)); err == nil {
			return nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	return fmt.Errorf("profile %s: gatehouse did not answer", name)
}

func moduleRoot(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", errors.New("run the benchmark inside the gatehouse module (go run ./test/bench from the repository)")
	}
	return filepath.Dir(mod), nil
}

// startGatehouse runs `gatehouse serve` with env (GATEHOUSE_* settings
// that replace any in the environment) and waits until it is ready.
func startGatehouse(bin string, env []string) (*process, error) {
	cmd := exec.Command(bin, "serve")
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GATEHOUSE_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, env...)
	findAddr := func(line string) string {
		var l struct {
			Msg  string `json:"msg"`
			Addr string `json:"addr"`
		}
		if json.Unmarshal([]byte(line), &l) == nil && l.Msg == "gatehouse listening" {
			return l.Addr
		}
		return ""
	}
	// With the log below info (the access log off) there is no "gatehouse
	// listening" line: such runs give a fixed address instead.
	known := ""
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "GATEHOUSE_LISTEN="); ok && !strings.HasSuffix(v, ":0") {
			known = v
		}
	}
	if known != "" {
		findAddr = nil
	}
	p, err := start("gatehouse", cmd, findAddr)
	if err != nil {
		return nil, err
	}
	if known != "" {
		p.addr = known
	}
	if err := waitReady(p.URL() + "/gatehouse/readyz"); err != nil {
		p.stop()
		return nil, fmt.Errorf("gatehouse: %w: %s", err, p.output())
	}
	return p, nil
}

func waitReady(u string) error {
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(u)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return errors.New("not ready within 20s")
}

// The bare proxy runs as this same program, started again with roleEnv
// set: a child process like Gatehouse.
const (
	roleEnv       = "GATEHOUSE_BENCH_ROLE"
	roleBare      = "bare-proxy"
	upstreamEnv   = "GATEHOUSE_BENCH_UPSTREAM"
	bufferPoolEnv = "GATEHOUSE_BENCH_BUFFER_POOL"
	gcHeadroomEnv = "GATEHOUSE_BENCH_GC_HEADROOM_MIB"
	bareListens   = "bare proxy listening on "
)

// bareOptions are what the floor may be given of Gatehouse's own tuning.
type bareOptions struct {
	bufferPool    bool // Gatehouse's pool of copy buffers
	gcHeadroomMiB int  // Gatehouse's GC tuning (cmd/runtime/gctune); 0: Go's defaults
}

func startBare(upstream, profileDir string, o bareOptions) (*process, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self)
	cmd.Env = append(os.Environ(), roleEnv+"="+roleBare, upstreamEnv+"="+upstream,
		bufferPoolEnv+"="+strconv.FormatBool(o.bufferPool), gcHeadroomEnv+"="+strconv.Itoa(o.gcHeadroomMiB))
	if profileDir != "" {
		cmd.Env = append(cmd.Env, profileEnv+"="+profileDir)
	}
	return start("bare proxy", cmd, func(line string) string {
		a, _ := strings.CutPrefix(line, bareListens)
		if a == line {
			return ""
		}
		return a
	})
}

// runBare is the floor: a plain httputil.ReverseProxy to the upstream with
// the connection pool, copy-buffer pool and server limits Gatehouse uses
// by default, and nothing else. Without o.bufferPool it allocates its copy
// buffers, as a ReverseProxy does unless told otherwise; with
// o.gcHeadroomMiB it has Gatehouse's GC tuning, else Go's defaults.
func runBare(upstream string, o bareOptions) error {
	if o.gcHeadroomMiB > 0 {
		gctune.Start(uint64(o.gcHeadroomMiB) << 20)
	}
	u, err := url.Parse(upstream)
	if err != nil {
		return err
	}
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(u)
			pr.Out.Host = pr.In.Host
			pr.SetXForwarded()
		},
		// Gatehouse's defaults (cmd/gatehouse/config.go).
		Transport: proxy.NewTransport(proxy.Transport{
			DialTimeout:           5 * time.Second,
			ResponseHeaderTimeout: 60 * time.Second,
			IdleConnTimeout:       90 * time.Second,
			MaxIdleConns:          512,
			MaxIdleConnsPerHost:   256,
		}),
	}
	if o.bufferPool {
		// The floor is then Gatehouse's own forwarding without
		// authentication, identity headers and access log.
		rp.BufferPool = proxy.NewBufferPool()
	}
	if dir := os.Getenv(profileEnv); dir != "" {
		profileOnSignal(dir)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           rp,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    65536,
	}
	fmt.Println(bareListens + ln.Addr().String())
	return srv.Serve(ln)
}

// memory is a process's resident set, from /proc/<pid>/status.
type memory struct {
	RSSKiB int64 // VmRSS
	HWMKiB int64 // VmHWM: the peak
}

func readMemory(pid int) (memory, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return memory{}, err
	}
	var m memory
	for line := range bytes.SplitSeq(b, []byte("\n")) {
		k, v, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			continue
		}
		f := strings.Fields(string(v))
		if len(f) == 0 {
			continue
		}
		n, _ := strconv.ParseInt(f[0], 10, 64)
		switch string(k) {
		case "VmRSS":
			m.RSSKiB = n
		case "VmHWM":
			m.HWMKiB = n
		}
	}
	if m.RSSKiB == 0 {
		return m, errors.New("no VmRSS in /proc/<pid>/status")
	}
	return m, nil
}
