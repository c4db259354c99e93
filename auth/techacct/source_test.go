package techacct_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/gatehouse-proxy/gatehouse/auth/ims/imstest"
	"github.com/gatehouse-proxy/gatehouse/auth/techacct"
)

func TestToken(t *testing.T) {
	for _, m := range methods {
		t.Run(m.name, func(t *testing.T) {
			s := newEmulator(t, 2*time.Hour)
			src := newSource(t, m.config(s))
			before := time.Now()
			tok, err := src.Token(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if got := callAPI(t, s, src, tok); got != 200 {
				t.Errorf("test API answered %d", got)
			}
			if exp := src.ExpiresAt(); exp.Before(before.Add(2*time.Hour-time.Second)) || exp.After(time.Now().Add(2*time.Hour)) {
				t.Errorf("ExpiresAt %v, want about now + 2h", exp)
			}
			if src.ClientID() != clientID || src.OrgID() != orgID {
				t.Errorf("ClientID %q OrgID %q", src.ClientID(), src.OrgID())
			}

			// Cached: no second IMS call.
			again, err := src.Token(context.Background())
			if err != nil || again != tok {
				t.Errorf("second Token: %v, same token %v", err, again == tok)
			}
			if n := s.Calls(m.endpoint); n != 1 {
				t.Errorf("%d calls to %s, want 1", n, m.endpoint)
			}
			if ok, failed := src.Fetches(); ok != 1 || failed != 0 {
				t.Errorf("Fetches = %d ok, %d failed; want 1 and 0", ok, failed)
			}
		})
	}
}

// Failed attempts are counted apart from tokens obtained (the metrics'
// renewal counts).
func TestFetchesCountFailures(t *testing.T) {
	s := newEmulator(t, 2*time.Hour)
	src := newSource(t, ccConfig(s))
	s.SetDown(true)
	if _, err := src.Token(context.Background()); err == nil {
		t.Fatal("Token with IMS down: no error")
	}
	if ok, failed := src.Fetches(); ok != 0 || failed != 1 {
		t.Errorf("Fetches = %d ok, %d failed; want 0 and 1", ok, failed)
	}
}

func TestTokenConcurrentCallersShareOneFetch(t *testing.T) {
	for _, m := range methods {
		t.Run(m.name, func(t *testing.T) {
			s := newEmulator(t, 0)
			src := newSource(t, m.config(s))
			tokens := make([]string, 50)
			var wg sync.WaitGroup
			for i := range tokens {
				wg.Go(func() {
					tok, err := src.Token(context.Background())
					if err != nil {
						t.Error(err)
					}
					tokens[i] = tok
				})
			}
			wg.Wait()
			for _, tok := range tokens {
				if tok != tokens[0] {
					t.Fatal("callers got different tokens")
				}
			}
			if n := s.Calls(m.endpoint); n != 1 {
				t.Errorf("%d fetches, want 1", n)
			}
		})
	}
}

func TestTokenCallerGivesUp(t *testing.T) {
	s := newEmulator(t, 0)
	src := newSource(t, ccConfig(s))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := src.Token(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v, want context.Canceled", err)
	}
	// The fetch went on for others.
	if _, err := src.Token(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := s.Calls(imstest.EndpointToken); n != 1 {
		t.Errorf("%d fetches, want 1", n)
	}
}

func TestRenew(t *testing.T) {
	for _, m := range methods {
		t.Run(m.name, func(t *testing.T) {
			s := newEmulator(t, 0)
			src := newSource(t, m.config(s))
			ctx := context.Background()
			stale, err := src.Token(ctx)
			if err != nil {
				t.Fatal(err)
			}
			s.Revoke(stale) // the API now answers 401 to it

			renewed := make([]string, 50)
			var wg sync.WaitGroup
			for i := range renewed {
				wg.Go(func() {
					tok, err := src.Renew(ctx, stale)
					if err != nil {
						t.Error(err)
					}
					renewed[i] = tok
				})
			}
			wg.Wait()
			fresh := renewed[0]
			if fresh == stale {
				t.Fatal("Renew returned the stale token")
			}
			for _, tok := range renewed {
				if tok != fresh {
					t.Fatal("callers got different tokens")
				}
			}
			if n := s.Calls(m.endpoint); n != 2 {
				t.Errorf("%d fetches, want 2 (the first token and one renewal)", n)
			}
			if got := callAPI(t, s, src, fresh); got != 200 {
				t.Errorf("test API answered %d to the renewed token", got)
			}

			// A late caller with the stale token gets the current one.
			if tok, err := src.Renew(ctx, stale); err != nil || tok != fresh {
				t.Errorf("late Renew: %v, current %v", err, tok == fresh)
			}
			if tok, _ := src.Token(ctx); tok != fresh {
				t.Error("Token does not return the renewed token")
			}
			if n := s.Calls(m.endpoint); n != 2 {
				t.Errorf("%d fetches after late callers, want 2", n)
			}
		})
	}
}

func TestRunRenewsBeforeExpiry(t *testing.T) {
	for _, m := range methods {
		t.Run(m.name, func(t *testing.T) {
			t.Parallel()
			const lifetime = 4 * time.Second
			s := newEmulator(t, lifetime)
			src := newSource(t, m.config(s))
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { src.Run(ctx); close(done) }()
			defer func() { cancel(); <-done }()

			seen := map[string]bool{}
			calls := 0
			for end := time.Now().Add(lifetime * 5 / 2); time.Now().Before(end); time.Sleep(25 * time.Millisecond) {
				tok, err := src.Token(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if got := callAPI(t, s, src, tok); got != 200 {
					t.Fatalf("call %d: test API answered %d (token expires %v, now %v)", calls, got, src.ExpiresAt(), time.Now())
				}
				seen[tok] = true
				calls++
			}
			if len(seen) < 3 {
				t.Errorf("%d distinct tokens over 2.5 lifetimes, want at least 3", len(seen))
			}
			// One fetch per 80% of a lifetime: no hammering.
			if n := s.Calls(m.endpoint); n > 4 {
				t.Errorf("%d fetches over 2.5 lifetimes", n)
			}
			t.Logf("%d calls, %d tokens, %d fetches", calls, len(seen), s.Calls(m.endpoint))
		})
	}
}

func TestFailuresBackOff(t *testing.T) {
	t.Parallel()
	s := newEmulator(t, 0)
	src := newSource(t, ccConfig(s))
	s.SetDown(true)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { src.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	// Callers hammer Token for 3.5 s while IMS is down.
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			for end := time.Now().Add(3500 * time.Millisecond); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
				_, err := src.Token(ctx)
				var e *techacct.Error
				if !errors.As(err, &e) || e.Code != techacct.CodeUnavailable || !e.Temporary() {
					t.Errorf("err %v, want an unavailable *Error", err)
					return
				}
			}
		})
	}
	wg.Wait()
	// Attempts at 0, ~1 s, ~3 s (less jitter): three, four at most.
	if n := s.Calls(imstest.EndpointToken); n < 2 || n > 4 {
		t.Errorf("%d attempts in 3.5 s, want 2 to 4", n)
	}

	s.SetDown(false)
	deadline := time.Now().Add(10 * time.Second)
	for {
		tok, err := src.Token(ctx)
		if err == nil {
			if got := callAPI(t, s, src, tok); got != 200 {
				t.Errorf("test API answered %d", got)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no token 10 s after IMS came back: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestOutageKeepsValidToken(t *testing.T) {
	t.Parallel()
	const lifetime = 2 * time.Second
	s := newEmulator(t, lifetime)
	src := newSource(t, ccConfig(s))
	ctx := context.Background()
	first, err := src.Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	s.SetDown(true)
	// In the renewal margin (after 80%), with IMS down: the old token.
	time.Sleep(lifetime * 17 / 20)
	tok, err := src.Token(ctx)
	if err != nil || tok != first {
		t.Fatalf("in the margin with IMS down: %v, old token %v", err, tok == first)
	}
	if got := callAPI(t, s, src, tok); got != 200 {
		t.Errorf("test API answered %d", got)
	}
	// Once it has expired: the failure.
	time.Sleep(time.Until(src.ExpiresAt()) + 50*time.Millisecond)
	for {
		_, err = src.Token(ctx)
		var e *techacct.Error
		if errors.As(err, &e) && e.Code == techacct.CodeUnavailable {
			break
		}
		if err != nil {
			t.Fatalf("err %v", err)
		}
		t.Fatal("an expired token was handed out")
	}
	if !strings.Contains(err.Error(), "IMS could not be reached") {
		t.Errorf("message %q", err)
	}
}

func TestActionableErrors(t *testing.T) {
	s := newEmulator(t, 0)
	// A proxy in front of IMS under another host name: the JWT names the
	// proxy's host in aud, which IMS does not accept.
	target, _ := url.Parse(s.URL)
	proxy := httptest.NewServer(&httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) { pr.SetURL(target) }})
	defer proxy.Close()
	closed := httptest.NewServer(nil)
	closed.Close()

	for _, tc := range []struct {
		name   string
		cfg    func(c *techacct.Config)
		method func(*imstest.Server) techacct.Config
		setup  func()
		code   string
		want   []string
	}{
		{"wrong key", func(c *techacct.Config) { c.PrivateKey = otherKey() }, jwtConfig, nil,
			"invalid_signature", []string{"does not match a certificate registered", "upload the certificate of GATEHOUSE_TECH_PRIVATE_KEY"}},
		{"wrong secret (jwt)", func(c *techacct.Config) { c.ClientSecret = "wrong" }, jwtConfig, nil,
			"invalid_client", []string{"client secret", "GATEHOUSE_TECH_CLIENT_ID", "GATEHOUSE_TECH_CLIENT_SECRET"}},
		{"wrong secret (client credentials)", func(c *techacct.Config) { c.ClientSecret = "wrong" }, ccConfig, nil,
			"invalid_client", []string{"GATEHOUSE_TECH_CLIENT_SECRET"}},
		{"unknown client", func(c *techacct.Config) { c.ClientID = "nobody" }, ccConfig, nil,
			"invalid_client", []string{"GATEHOUSE_TECH_CLIENT_ID"}},
		{"expired JWT", func(c *techacct.Config) { c.Now = func() time.Time { return time.Now().Add(-10 * time.Minute) } }, jwtConfig, nil,
			"invalid_token", []string{"expired", "this machine's clock"}},
		{"wrong audience", func(c *techacct.Config) { c.IMSURL = proxy.URL }, jwtConfig, nil,
			"invalid_token", []string{"audience", "GATEHOUSE_TECH_IMS_URL", proxy.URL + "/c/" + clientID}},
		{"wrong org", func(c *techacct.Config) { c.OrgID = "OTHER@AdobeOrg" }, jwtConfig, nil,
			"invalid_token", []string{"issuer", "GATEHOUSE_TECH_ORG_ID"}},
		{"wrong account", func(c *techacct.Config) { c.AccountID = "OTHER@techacct.adobe.com" }, jwtConfig, nil,
			"invalid_token", []string{"subject", "GATEHOUSE_TECH_ACCOUNT_ID"}},
		{"metascope not subscribed", func(c *techacct.Config) { c.Metascopes = []string{metascope, "ent_analytics_bulk_ingest_sdk"} }, jwtConfig, nil,
			"invalid_scope", []string{"metascope ent_analytics_bulk_ingest_sdk is not subscribed for this integration", "GATEHOUSE_TECH_METASCOPES"}},
		{"scope not allowed", func(c *techacct.Config) { c.Scopes = []string{"openid", "write_everything"} }, ccConfig, nil,
			"invalid_scope", []string{"scope write_everything is not subscribed for this integration", "GATEHOUSE_TECH_SCOPES"}},
		{"IMS unreachable", func(c *techacct.Config) { c.IMSURL = closed.URL }, ccConfig, nil,
			techacct.CodeUnavailable, []string{"IMS could not be reached", "GATEHOUSE_TECH_IMS_URL"}},
		{"IMS down", func(*techacct.Config) {}, jwtConfig, func() { s.SetDown(true) },
			techacct.CodeUnavailable, []string{"IMS could not be reached", "503"}},
		{"IMS rate limiting", func(*techacct.Config) {}, ccConfig, func() { s.SetRateLimited(true) },
			techacct.CodeUnavailable, []string{"rate limiting"}},
		{"IMS answers without access_token (jwt)", func(*techacct.Config) {}, jwtConfig,
			func() { s.SetAnswer(imstest.EndpointExchange, []byte(`{"token_type":"bearer","expires_in":86399000}`)) },
			techacct.CodeUnavailable, []string{"cannot be used", "access_token", "GATEHOUSE_TECH_IMS_URL"}},
		{"IMS answers null (client credentials)", func(*techacct.Config) {}, ccConfig,
			func() { s.SetAnswer(imstest.EndpointToken, []byte(`null`)) },
			techacct.CodeUnavailable, []string{"cannot be used", "not a JSON object"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.setup != nil {
				tc.setup()
				defer s.SetDown(false)
				defer s.SetRateLimited(false)
				defer s.SetAnswer(imstest.EndpointExchange, nil)
				defer s.SetAnswer(imstest.EndpointToken, nil)
			}
			cfg := tc.method(s)
			tc.cfg(&cfg)
			src := newSource(t, cfg)
			s.ResetCalls()
			_, err := src.Token(context.Background())
			var e *techacct.Error
			if !errors.As(err, &e) {
				t.Fatalf("err %v (%T), want *techacct.Error", err, err)
			}
			if e.Code != tc.code {
				t.Errorf("Code %q, want %q (%s)", e.Code, tc.code, e.Message)
			}
			if e.Error() != e.Message {
				t.Error("Error() is not Message")
			}
			for _, w := range tc.want {
				if !strings.Contains(e.Message, w) {
					t.Errorf("message %q lacks %q", e.Message, w)
				}
			}
			if strings.Contains(e.Message, secret) {
				t.Errorf("message %q shows the secret", e.Message)
			}
			if e.Unwrap() == nil {
				t.Error("no underlying error")
			}
			// The failure is remembered through the backoff: no new IMS call.
			calls := s.Calls(imstest.EndpointExchange) + s.Calls(imstest.EndpointToken)
			if _, err2 := src.Token(context.Background()); err2 == nil || err2.Error() != err.Error() {
				t.Errorf("second Token: %v", err2)
			}
			if n := s.Calls(imstest.EndpointExchange) + s.Calls(imstest.EndpointToken); n != calls {
				t.Errorf("second Token within the backoff called IMS")
			}
		})
	}
}

func TestLogsNoSecrets(t *testing.T) {
	s := newEmulator(t, 0)
	core, logs := observer.New(zap.DebugLevel)
	good := jwtConfig(s)
	good.Logger = zap.New(core)
	bad := good
	bad.ClientSecret = secret + "-wrong"

	tok, err := newSource(t, good).Token(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := newSource(t, bad).Token(context.Background()); err == nil {
		t.Fatal("no error with a wrong secret")
	}
	// The log lines are written after the callers are answered.
	deadline := time.Now().Add(5 * time.Second)
	for logs.Len() < 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	entries := logs.All()
	if len(entries) != 2 {
		t.Fatalf("%d log entries, want 2", len(entries))
	}
	if failures := logs.FilterLevelExact(zap.ErrorLevel).FilterField(zap.String("code", "invalid_client")).Len(); failures != 1 {
		t.Errorf("%d error entries for invalid_client, want 1: %v", failures, entries)
	}
	for _, e := range entries {
		for k, v := range e.ContextMap() {
			if s, ok := v.(string); ok && (strings.Contains(s, secret) || strings.Contains(s, tok[:30])) {
				t.Errorf("log field %s carries a secret or the token", k)
			}
		}
	}
}
