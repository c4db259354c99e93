package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse-proxy/gatehouse/auth/ims/imstest"
	"github.com/gatehouse-proxy/gatehouse/proxy"
)

// The chain benchmarks drive the wired Gatehouse (newApp, as `gatehouse
// serve` builds it, with the JSON access log written to /dev/null) over
// loopback, so that `go test -bench Chain -cpuprofile` or -memprofile
// shows where a request's time and allocations go. The client and the
// trivial upstream run in the same process: compare with the bare
// sub-benchmark, which is an httputil.ReverseProxy with the same pool.
// test/bench is the measurement; these are for profiling.

type chainEnv struct {
	emu       *imstest.Server
	gatehouse string // base URL
	bare      string
	client    *http.Client
	cookie    string
	bearer    string
	handler   http.Handler // the proxy listener's, for in-process benchmarks
}

var chainBody = []byte(`{"jcr:primaryType":"dam:Asset","jcr:created":"2024-01-01T00:00:00.000Z","bench":"a small upstream answer"}` + "\n")

// newChainEnv starts the chain; extra settings are added to the
// benchmark's own (the signed assertion, for one).
func newChainEnv(b *testing.B, extra ...string) *chainEnv {
	b.Helper()
	env := &chainEnv{}
	env.emu = imstest.NewServer(imstest.Options{})
	b.Cleanup(env.emu.Close)
	env.emu.AddUser(demoUser())
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(chainBody)
	}))
	b.Cleanup(up.Close)

	cfg, err := loadConfig(append([]string{
		"GATEHOUSE_LISTEN=127.0.0.1:0",
		"GATEHOUSE_UPSTREAM=" + up.URL,
		"GATEHOUSE_IMS_URL=" + env.emu.URL,
		"GATEHOUSE_IMS_CLIENT_IDS=" + demoClientID,
		"GATEHOUSE_IMS_ORG=" + demoOrgID,
		"GATEHOUSE_IMS_VALIDATION=local",
		"GATEHOUSE_GROUP_MAPPING=*:GRP_ADMIN=administrators",
		"GATEHOUSE_SYNC_INTERVAL=24h",
		"GATEHOUSE_STORE=sqlite:" + filepath.Join(b.TempDir(), "g.db"),
		"GATEHOUSE_COOKIE_SECURE=false",
	}, extra...))
	if err != nil {
		b.Fatal(err)
	}
	devNull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { devNull.Close() })
	lg, err := newLogs("info", "json", devNull)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	a, err := newApp(ctx, cfg, lg)
	if err != nil {
		b.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- a.serve(ctx, ln) }()
	b.Cleanup(func() {
		cancel()
		<-done
		a.close()
	})
	env.gatehouse = "http://" + ln.Addr().String()
	env.handler = a.handler

	u, _ := url.Parse(up.URL)
	bare := httptest.NewServer(&httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(u)
			pr.Out.Host = pr.In.Host
			pr.SetXForwarded()
		},
		Transport:  proxy.NewTransport(proxy.Transport{}),
		BufferPool: proxy.NewBufferPool(),
	})
	b.Cleanup(bare.Close)
	env.bare = bare.URL

	tr := &http.Transport{MaxIdleConnsPerHost: 128, DisableCompression: true}
	b.Cleanup(tr.CloseIdleConnections)
	env.client = &http.Client{Transport: tr, Timeout: 10 * time.Second}

	env.bearer = env.mint(b)
	resp := env.get(b, env.gatehouse, map[string]string{"Authorization": "Bearer " + env.bearer})
	for _, c := range resp.Cookies() {
		if c.Name == "login-token" {
			env.cookie = c.Value
		}
	}
	if env.cookie == "" {
		b.Fatal("no login token")
	}
	return env
}

func (env *chainEnv) mint(b *testing.B) string {
	tok, _, err := env.emu.MintToken(imstest.TokenRequest{UserID: demoUserID, ClientID: demoClientID})
	if err != nil {
		b.Fatal(err)
	}
	return tok
}

func (env *chainEnv) get(b *testing.B, base string, hdr map[string]string) *http.Response {
	req, _ := http.NewRequest("GET", base+"/content/dam/bench.json", nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := env.client.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b.Fatalf("status %d", resp.StatusCode)
	}
	return resp
}

func (env *chainEnv) drive(b *testing.B, base string, hdr func(i int) map[string]string) {
	b.ReportAllocs()
	b.SetParallelism(32)
	b.ResetTimer()
	var n atomic.Int64
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := int(n.Add(1) - 1)
			env.get(b, base, hdr(i))
		}
	})
}

func BenchmarkChain(b *testing.B) {
	env := newChainEnv(b)
	b.Run("bare", func(b *testing.B) {
		h := map[string]string{"Cookie": "login-token=" + env.cookie}
		env.drive(b, env.bare, func(int) map[string]string { return h })
	})
	b.Run("cookie", func(b *testing.B) {
		h := map[string]string{"Cookie": "login-token=" + env.cookie}
		env.drive(b, env.gatehouse, func(int) map[string]string { return h })
	})
	// The cookie request again, with the signed assertion on: a cached
	// assertion per user, a new signature every half lifetime.
	envAssert := newChainEnv(b, "GATEHOUSE_PUBLIC_URL=https://gatehouse.example", "GATEHOUSE_ASSERTION_AUDIENCE=bench")
	b.Run("cookie-assertion", func(b *testing.B) {
		h := map[string]string{"Cookie": "login-token=" + envAssert.cookie}
		envAssert.drive(b, envAssert.gatehouse, func(int) map[string]string { return h })
	})
	b.Run("forward-auth-cookie", func(b *testing.B) {
		// The question nginx asks for the cookie request above; the "?"
		// turns the path get appends into a query, which forward-auth ignores.
		h := map[string]string{"Cookie": "login-token=" + env.cookie, "X-Original-URI": "/content/dam/bench.json"}
		env.drive(b, env.gatehouse+"/gatehouse/auth?", func(int) map[string]string { return h })
	})
	b.Run("bearer-cached", func(b *testing.B) {
		h := map[string]string{"Authorization": "Bearer " + env.bearer}
		env.drive(b, env.gatehouse, func(int) map[string]string { return h })
	})
	b.Run("bearer-first-seen", func(b *testing.B) {
		// One new token per request, minted before the timer starts.
		toks := make([]map[string]string, b.N)
		for i := range toks {
			toks[i] = map[string]string{"Authorization": "Bearer " + env.mint(b)}
		}
		env.drive(b, env.gatehouse, func(i int) map[string]string { return toks[i%len(toks)] })
	})
}

// BenchmarkChainMetrics is the cookie request with the metrics off and
// on (GATEHOUSE_METRICS_LISTEN set: every family observed, /metrics not
// scraped): what the metrics cost the hot path.
func BenchmarkChainMetrics(b *testing.B) {
	for _, bc := range []struct {
		name  string
		extra []string
	}{
		{"off", nil},
		{"on", []string{"GATEHOUSE_METRICS_LISTEN=127.0.0.1:0"}},
	} {
		b.Run("cookie/metrics="+bc.name, func(b *testing.B) {
			env := newChainEnv(b, bc.extra...)
			h := map[string]string{"Cookie": "login-token=" + env.cookie}
			cpu := processCPU(b)
			env.drive(b, env.gatehouse, func(int) map[string]string { return h })
			reportCPU(b, cpu)
		})
	}
}

// BenchmarkCookieMetrics is the cookie request served in-process by the
// proxy listener's handler (no client connection, so less of loopback's
// noise; the upstream round trip remains), metrics off and on. The
// difference is what observing a request costs: the access log's
// observer and the timed upstream round trip.
func BenchmarkCookieMetrics(b *testing.B) {
	for _, bc := range []struct {
		name  string
		extra []string
	}{
		{"off", nil},
		{"on", []string{"GATEHOUSE_METRICS_LISTEN=127.0.0.1:0"}},
	} {
		b.Run("metrics="+bc.name, func(b *testing.B) {
			env := newChainEnv(b, bc.extra...)
			b.ReportAllocs()
			b.ResetTimer()
			cpu := processCPU(b)
			defer reportCPU(b, cpu)
			b.RunParallel(func(pb *testing.PB) {
				req := httptest.NewRequest("GET", "/content/dam/bench.json", nil)
				req.RemoteAddr = "127.0.0.1:40000"
				req.Header.Set("Cookie", "login-token="+env.cookie)
				for pb.Next() {
					w := httptest.NewRecorder()
					env.handler.ServeHTTP(w, req)
					if w.Code != http.StatusOK {
						b.Fatalf("status %d", w.Code)
					}
				}
			})
		})
	}
}
