package test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// metricsURL is the address the metrics listener of p logged.
func (p *proc) metricsURL(t *testing.T) string {
	t.Helper()
	return p.loggedURL(t, "metrics listening")
}

// scrape reads /metrics in the text format into series -> value, a series
// written as Prometheus writes it: name{label="value",...}, labels sorted.
func scrape(t *testing.T, base string) map[string]float64 {
	t.Helper()
	res, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %d", res.StatusCode)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestMetrics runs the real binary with GATEHOUSE_METRICS_LISTEN, signs
// in with a bearer token, makes cookie requests, a refused one and a
// forward-auth one, and checks that the families moved; and that the
// metrics are not reachable through the proxied port.
func TestMetrics(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	addTechAccount(w.ims.Emulator, techClientID, time.Hour)
	p := w.start(t, merge(techVars("client_credentials", ""), map[string]string{
		"METRICS_LISTEN":  "127.0.0.1:0",
		"EGRESS_LISTEN":   "127.0.0.1:0",
		"EGRESS_UPSTREAM": w.ims.URL,
	}))
	mu := p.metricsURL(t)

	r := p.do(t, request{path: whoami, bearer: w.mint(t, alice, clientID)})
	wantUser(t, r, alice)
	cookie := r.newCookie(t).value
	for range 3 {
		wantUser(t, p.do(t, request{path: whoami, cookie: cookie}), alice)
	}
	wantStatus(t, p.do(t, request{path: whoami}), http.StatusUnauthorized)
	wantStatus(t, p.do(t, request{path: "/gatehouse/auth", cookie: cookie,
		header: map[string][]string{"X-Original-Uri": {"/content/a.json"}}}), http.StatusOK)
	if status, body := call(t, "GET", p.egressURL(t)+"/testapi/programs", nil, nil); status != http.StatusOK {
		t.Fatalf("through the egress listener: %d %s", status, body)
	}

	// The access log's observer runs after the answer went out: wait for
	// the last request to be counted rather than race it.
	var m map[string]float64
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		m = scrape(t, mu)
		if m[`gatehouse_requests_total{outcome="forward_auth",reason="none"}`] >= 1 &&
			m[`gatehouse_egress_requests_total{code="2xx"}`] >= 1 || time.Now().After(deadline) {
			break
		}
	}
	for _, c := range []struct {
		series string
		min    float64
	}{
		{`gatehouse_requests_total{outcome="upstream",reason="none"}`, 4},
		{`gatehouse_requests_total{outcome="gatehouse",reason="NO_CREDENTIALS"}`, 1},
		{`gatehouse_requests_total{outcome="forward_auth",reason="none"}`, 1},
		{`gatehouse_request_duration_seconds_count{outcome="upstream"}`, 4},
		{`gatehouse_upstream_request_duration_seconds_count`, 4},
		{`gatehouse_login_tokens_total{event="issued"}`, 1},
		{`gatehouse_cache_lookups_total{cache="cookie",result="hit"}`, 3},
		{`gatehouse_cache_lookups_total{cache="bearer",result="miss"}`, 1},
		{`gatehouse_signin_users_created_total`, 1},
		{`gatehouse_signin_syncs_total`, 1},
		{`gatehouse_signin_groups_added_total`, 1},
		{`gatehouse_ims_requests_total{code="2xx",endpoint="validate_token"}`, 1},
		{`gatehouse_ims_requests_total{code="2xx",endpoint="profile"}`, 1},
		{`gatehouse_ims_requests_total{code="2xx",endpoint="token"}`, 1},
		{`gatehouse_ims_key_set_fetches_total{result="ok"}`, 1},
		{`gatehouse_store_call_duration_seconds_count{op="CreateLoginToken"}`, 1},
		{`gatehouse_techacct_token_renewals_total{result="ok"}`, 1},
		{`gatehouse_techacct_token_expiry_timestamp_seconds`, float64(time.Now().Unix())},
		{`gatehouse_egress_requests_total{code="2xx"}`, 1},
	} {
		// The process is new: every counter started at 0.
		if got := m[c.series]; got < c.min {
			t.Errorf("%s = %v, want at least %v", c.series, got, c.min)
		}
	}
	build := 0
	for series := range m {
		if strings.HasPrefix(series, "gatehouse_build_info{") && strings.Contains(series, `goversion="go`) {
			build++
		}
		// No label value is a user, an e-mail address or a path.
		for _, leak := range []string{alice.id, alice.email, whoami, "/content/"} {
			if strings.Contains(series, leak) {
				t.Errorf("series %s carries %q", series, leak)
			}
		}
	}
	if build != 1 {
		t.Errorf("%d gatehouse_build_info series with a Go version, want 1", build)
	}

	// Not through the proxied port: unauthenticated it is a refusal, with
	// a login token it is the backend's path, never Gatehouse's metrics.
	for _, req := range []request{
		{path: "/metrics"},
		{path: "/metrics", cookie: cookie},
		{path: "/gatehouse/metrics", cookie: cookie},
	} {
		r := p.do(t, req)
		if strings.Contains(string(r.body), "gatehouse_") || r.status == http.StatusOK && strings.Contains(r.header.Get("Content-Type"), "text/plain; version=") {
			t.Errorf("GET %s through the proxied port (cookie %v): %d, the metrics:\n%.300s", req.path, req.cookie != "", r.status, r.body)
		}
	}
}

// TestMetricsListenerBusy: a metrics listener that cannot bind stops
// start-up, naming the setting, rather than serving without metrics.
func TestMetricsListenerBusy(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() { // hold the port; accept nothing of interest
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_, _ = io.Copy(io.Discard, c)
		}
	}()
	code, _, stderr := runBinary(t, 30*time.Second, envOf(merge(w.baseEnv(), map[string]string{
		"METRICS_LISTEN": ln.Addr().String(),
	})), "serve")
	if code == 0 || !strings.Contains(stderr, "GATEHOUSE_METRICS_LISTEN") {
		t.Errorf("serve with a busy metrics port: exit %d, stderr %q; want non-zero naming GATEHOUSE_METRICS_LISTEN", code, stderr)
	}
}
