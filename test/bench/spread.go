package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"time"
)

// spreadResult is how long a logout on one replica took to reach the
// others: from the start of the logout request on replica A to the last
// of replicas B and C refusing the cookie.
type spreadResult struct {
	Replicas    int       `json:"replicas"`
	Revocations int       `json:"revocations"`
	CacheTTL    string    `json:"session_cache_ttl"`
	PollEvery   string    `json:"poll_interval"`
	Samples     []float64 `json:"samples_ms"`
	latencySummary
	TargetMs float64 `json:"target_ms"`
}

// Revocation spread set-up: the session cache would keep a logged-out
// cookie valid on B and C for the whole TTL; only the notification can
// make them refuse it sooner.
const (
	spreadReplicas  = 3
	spreadCacheTTL  = 5 * time.Minute
	spreadPoll      = 2 * time.Millisecond
	spreadGiveUp    = 10 * time.Second
	spreadTargetMs  = 1000
	spreadUserIndex = 0 // the known user who signs in on A
)

// spread starts three gatehouse serve processes on one fresh PostgreSQL
// schema and measures n revocations.
func (b *bench) spread(ctx context.Context, n int) (*spreadResult, error) {
	schema, err := newPGSchema(ctx, b.o.postgresURL)
	if err != nil {
		return nil, err
	}
	defer schema.drop()
	env := append(append([]string{}, b.baseEnv...), "GATEHOUSE_STORE="+schema.url(),
		"GATEHOUSE_SESSION_CACHE_TTL="+spreadCacheTTL.String())
	env = append(env, b.o.env...)
	var reps []*process
	defer func() {
		for _, p := range reps {
			p.stop()
		}
	}()
	// One after the other: the first creates the schema and the cookie
	// keys, the others find them.
	for range spreadReplicas {
		p, err := startGatehouse(b.bin, env)
		if err != nil {
			return nil, err
		}
		reps = append(reps, p)
	}
	say("revocation spread: replicas %s, %s, %s on schema %s; %d revocations", reps[0].addr, reps[1].addr, reps[2].addr, schema.name, n)
	res := &spreadResult{Replicas: spreadReplicas, Revocations: n, CacheTTL: spreadCacheTTL.String(),
		PollEvery: spreadPoll.String(), TargetMs: spreadTargetMs}
	var ds []time.Duration
	for i := range n {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		d, err := b.revokeOnce(ctx, reps[0], reps[1:])
		if err != nil {
			return nil, fmt.Errorf("revocation %d: %w", i+1, err)
		}
		ds = append(ds, d)
		res.Samples = append(res.Samples, round3(float64(d)/1e6))
	}
	res.latencySummary = summarizeLatencies(ds)
	say("revocation spread over %d revocations: p50 %.2f ms, p99 %.2f ms, max %.2f ms", n, res.P50ms, res.P99ms, res.MaxMs)
	return res, nil
}

// revokeOnce signs in by bearer on a, warms the cookie on the others,
// logs out on a and returns the time from the logout's start until every
// other replica refused the cookie.
func (b *bench) revokeOnce(ctx context.Context, a *process, others []*process) (time.Duration, error) {
	cookie, err := b.signInAt(a.URL(), b.mint("K", spreadUserIndex))
	if err != nil {
		return 0, err
	}
	for _, p := range others {
		if code, err := b.cookieStatus(ctx, p.URL(), cookie); err != nil || code != http.StatusOK {
			return 0, fmt.Errorf("warm cookie on %s: status %d, %v", p.addr, code, err)
		}
	}
	start := time.Now()
	refused := make([]time.Duration, len(others))
	errs := make([]error, len(others))
	var wg sync.WaitGroup
	for i, p := range others {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Since(start) < spreadGiveUp {
				code, err := b.cookieStatus(ctx, p.URL(), cookie)
				if err != nil {
					errs[i] = err
					return
				}
				if code != http.StatusOK {
					refused[i] = time.Since(start)
					return
				}
				time.Sleep(spreadPoll)
			}
			errs[i] = fmt.Errorf("%s still accepted the cookie %s after the logout", p.addr, spreadGiveUp)
		}()
	}
	req, _ := http.NewRequestWithContext(ctx, "POST", a.URL()+"/gatehouse/logout", nil)
	req.Header.Set("Cookie", "login-token="+cookie)
	resp, err := b.client.Do(req)
	if err == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			err = fmt.Errorf("logout: %s", resp.Status)
		}
	}
	wg.Wait()
	if err = errors.Join(append(errs, err)...); err != nil {
		return 0, err
	}
	return slices.Max(refused), nil
}

// cookieStatus sends one request with the cookie and returns the status.
func (b *bench) cookieStatus(ctx context.Context, base, cookie string) (int, error) {
	req, _ := http.NewRequestWithContext(ctx, "GET", base+pathSmall, nil)
	req.Header.Set("Cookie", "login-token="+cookie)
	resp, err := b.client.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}
