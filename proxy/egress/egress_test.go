package egress_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/gatehouse-proxy/gatehouse/auth/ims/imstest"
	"github.com/gatehouse-proxy/gatehouse/auth/techacct"
	"github.com/gatehouse-proxy/gatehouse/proxy/egress"
)

const (
	clientID = "egress-integration"
	secret   = "egress-SECRET-value"
	orgID    = "5678EFAB@AdobeOrg"
	account  = "ABCDEF0123456789@techacct.adobe.com"
)

// newIMS is an emulator that knows the technical account (client
// credentials).
func newIMS(t *testing.T) *imstest.Server {
	t.Helper()
	s := imstest.NewServer(imstest.Options{})
	t.Cleanup(s.Close)
	s.AddTechAccount(imstest.TechAccount{ClientID: clientID, ClientSecret: secret, OrgID: orgID, AccountID: account,
		Scopes: []string{"openid", "AdobeID"}})
	return s
}

func newSource(t *testing.T, s *imstest.Server, secret string) *techacct.Source {
	t.Helper()
	src, err := techacct.New(techacct.Config{IMSURL: s.URL, ClientID: clientID, ClientSecret: secret, OrgID: orgID,
		Scopes: []string{"openid"}})
	if err != nil {
		t.Fatal(err)
	}
	return src
}

// seen is one request as the API received it.
type seen struct {
	method, path, query, host string
	header                    http.Header
	body                      []byte
}

// api is a scripted API: it records every request and answers 401 to the
// tokens in refuse (every token when refuseAll), else 200.
type api struct {
	srv *httptest.Server

	mu        sync.Mutex
	seen      []seen
	refuse    map[string]bool
	refuseAll bool
}

func newAPI(t *testing.T) *api {
	t.Helper()
	a := &api{refuse: map[string]bool{}}
	a.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			t.Errorf("API: read body: %v", err)
		}
		token := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
		a.mu.Lock()
		a.seen = append(a.seen, seen{r.Method, r.URL.Path, r.URL.RawQuery, r.Host, r.Header.Clone(), body})
		refused := a.refuseAll || a.refuse[token]
		a.mu.Unlock()
		if refused {
			w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
			http.Error(w, `{"error_code":"401013","message":"Oauth token is not valid"}`, http.StatusUnauthorized)
			return
		}
		fmt.Fprintf(w, "ok %s %d", r.Method, len(body))
	}))
	t.Cleanup(a.srv.Close)
	return a
}

func (a *api) requests() []seen {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]seen(nil), a.seen...)
}

func (a *api) refuseToken(tok string) {
	a.mu.Lock()
	a.refuse[tok] = true
	a.mu.Unlock()
}

// newEgress is the egress in front of upstream, served on loopback.
func newEgress(t *testing.T, upstream string, src *techacct.Source, log *zap.Logger) string {
	t.Helper()
	u, err := url.Parse(upstream)
	if err != nil {
		t.Fatal(err)
	}
	h, err := egress.New(egress.Config{Upstream: u, Tokens: src, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

func do(t *testing.T, method, target string, body io.Reader, header map[string]string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, target, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestHeadersAreSetAndOverwritten(t *testing.T) {
	s := newIMS(t)
	src := newSource(t, s, secret)
	a := newAPI(t)
	eg := newEgress(t, a.srv.URL+"/base", src, nil)

	status, body := do(t, http.MethodGet, eg+"/v1/programs?limit=5", nil, map[string]string{
		"Authorization":   "Bearer the-backends-own",
		"X-Api-Key":       "wrong",
		"X-Gw-Ims-Org-Id": "WRONG@AdobeOrg",
		"X-Forwarded-For": "10.9.9.9",
		"X-Custom":        "kept",
	})
	if status != 200 {
		t.Fatalf("status %d: %s", status, body)
	}
	r := a.requests()[0]
	tok, err := src.Token(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct{ name, got, want string }{
		{"path", r.path, "/base/v1/programs"},
		{"query", r.query, "limit=5"},
		{"host", r.host, strings.TrimPrefix(a.srv.URL, "http://")},
		{"authorization", strings.Join(r.header.Values("Authorization"), "|"), "Bearer " + tok},
		{"x-api-key", strings.Join(r.header.Values("X-Api-Key"), "|"), clientID},
		{"x-gw-ims-org-id", strings.Join(r.header.Values("X-Gw-Ims-Org-Id"), "|"), orgID},
		{"x-forwarded-for", r.header.Get("X-Forwarded-For"), ""},
		{"other headers", r.header.Get("X-Custom"), "kept"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s: API saw %q, want %q", c.name, c.got, c.want)
		}
	}

	// And the real thing: the emulator's test API insists on all three.
	eg2 := newEgress(t, s.URL, src, nil)
	if status, body := do(t, http.MethodGet, eg2+"/testapi/hello", nil, nil); status != 200 || !strings.Contains(body, `"ok":true`) {
		t.Errorf("test API through the egress: %d %s", status, body)
	}
}

func TestRetryOn401(t *testing.T) {
	small := strings.Repeat("s", 1000)
	large := strings.Repeat("L", egress.MaxReplayBody+1)
	tests := []struct {
		name    string
		method  string
		body    func() io.Reader // nil: none
		chunked bool
		retried bool
	}{
		{"GET", http.MethodGet, nil, false, true},
		{"HEAD", http.MethodHead, nil, false, true},
		{"DELETE", http.MethodDelete, nil, false, true},
		{"PUT, small body", http.MethodPut, func() io.Reader { return strings.NewReader(small) }, false, true},
		{"PUT, body over the replay limit", http.MethodPut, func() io.Reader { return strings.NewReader(large) }, false, false},
		{"PUT, body of unknown length", http.MethodPut, func() io.Reader { return strings.NewReader(small) }, true, false},
		{"POST, no body", http.MethodPost, nil, false, false},
		{"POST, small body", http.MethodPost, func() io.Reader { return strings.NewReader(small) }, false, false},
		{"PATCH", http.MethodPatch, func() io.Reader { return strings.NewReader(small) }, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newIMS(t)
			src := newSource(t, s, secret)
			a := newAPI(t)
			core, logs := observer.New(zap.InfoLevel)
			eg := newEgress(t, a.srv.URL, src, zap.New(core))
			stale, err := src.Token(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			a.refuseToken(stale) // as if IMS had revoked it

			var body io.Reader
			var want string
			if tt.body != nil {
				body = tt.body()
				b, _ := io.ReadAll(tt.body())
				want = string(b)
				if tt.chunked {
					body = io.MultiReader(body) // hides the length: sent chunked
				}
			}
			status, _ := do(t, tt.method, eg+"/thing", body, nil)
			reqs := a.requests()
			if tt.retried {
				if status != 200 || len(reqs) != 2 {
					t.Fatalf("status %d after %d requests, want 200 after a retry", status, len(reqs))
				}
				if got := reqs[1].header.Get("Authorization"); got == "Bearer "+stale || got == "" {
					t.Errorf("the retry carried Authorization %q, want the renewed token", got)
				}
				if string(reqs[1].body) != want {
					t.Errorf("the retry's body is %d bytes, want %d", len(reqs[1].body), len(want))
				}
			} else if status != 401 || len(reqs) != 1 {
				t.Fatalf("status %d after %d requests, want the 401 back after one", status, len(reqs))
			}
			if string(reqs[0].body) != want {
				t.Errorf("the API got a body of %d bytes, want %d", len(reqs[0].body), len(want))
			}
			if n := s.Calls(imstest.EndpointToken); n != 2 {
				t.Errorf("%d token requests, want 2 (the first token and one renewal)", n)
			}

			// Either way the renewed token serves the next call.
			if status, body := do(t, http.MethodGet, eg+"/next", nil, nil); status != 200 {
				t.Errorf("next call: %d %s", status, body)
			}
			if n := s.Calls(imstest.EndpointToken); n != 2 {
				t.Errorf("%d token requests after the next call, want still 2", n)
			}
			lines := logs.FilterMessage("egress request").All()
			if len(lines) != 2 {
				t.Fatalf("%d access lines, want 2", len(lines))
			}
			f := lines[0].ContextMap()
			if f["token_renewed"] != true || f["retried"] != tt.retried || f["status"] != int64(status0(tt.retried)) {
				t.Errorf("access line %v", f)
			}
		})
	}
}

func status0(retried bool) int {
	if retried {
		return 200
	}
	return 401
}

// An API that refuses every token must not cost an IMS request per call.
func TestAPIThatRefusesEveryTokenIsNotHammered(t *testing.T) {
	s := newIMS(t)
	src := newSource(t, s, secret)
	a := newAPI(t)
	a.refuseAll = true
	eg := newEgress(t, a.srv.URL, src, nil)
	for i := range 5 {
		if status, _ := do(t, http.MethodGet, eg+"/x", nil, nil); status != 401 {
			t.Fatalf("call %d: status %d, want 401", i, status)
		}
	}
	if n := s.Calls(imstest.EndpointToken); n != 2 {
		t.Errorf("%d token requests for 5 refused calls, want 2 (the first token, one renewal)", n)
	}
	if n := len(a.requests()); n != 6 {
		t.Errorf("the API got %d requests, want 6 (one retry, then none)", n)
	}
}

func TestNoTokenIs503(t *testing.T) {
	s := newIMS(t)
	a := newAPI(t)
	core, logs := observer.New(zap.InfoLevel)
	eg := newEgress(t, a.srv.URL, newSource(t, s, "wrong-secret"), zap.New(core))
	status, body := do(t, http.MethodPost, eg+"/x", strings.NewReader("payload"), nil)
	if status != http.StatusServiceUnavailable {
		t.Fatalf("status %d, want 503: %s", status, body)
	}
	for _, want := range []string{"invalid_client", "GATEHOUSE_TECH_CLIENT_SECRET"} {
		if !strings.Contains(body, want) {
			t.Errorf("body %q does not say %q", body, want)
		}
	}
	if n := len(a.requests()); n != 0 {
		t.Errorf("the API got %d requests without a token", n)
	}
	if strings.Contains(fmt.Sprint(logs.All()), "wrong-secret") {
		t.Error("the secret was logged")
	}
}

func TestUpstreamDownIs502(t *testing.T) {
	s := newIMS(t)
	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close()
	eg := newEgress(t, dead.URL, newSource(t, s, secret), nil)
	if status, body := do(t, http.MethodGet, eg+"/x", nil, nil); status != http.StatusBadGateway {
		t.Errorf("status %d, want 502: %s", status, body)
	}
}

// Bodies stream both ways: the caller reads the start of the answer while
// the API is still writing, and a large upload is not held back.
func TestStreaming(t *testing.T) {
	s := newIMS(t)
	release := make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		fmt.Fprintf(w, "got %d\n", n)
		w.(http.Flusher).Flush()
		<-release
		fmt.Fprintln(w, "done")
	}))
	t.Cleanup(up.Close)
	t.Cleanup(func() {
		select {
		case <-release:
		default:
			close(release)
		}
	})
	eg := newEgress(t, up.URL, newSource(t, s, secret), nil)
	big := bytes.Repeat([]byte("x"), 8<<20)
	resp, err := http.Post(eg+"/upload", "application/octet-stream", io.MultiReader(bytes.NewReader(big)))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	line, err := br.ReadString('\n')
	if err != nil || line != fmt.Sprintf("got %d\n", len(big)) {
		t.Fatalf("first line %q, %v", line, err)
	}
	close(release)
	rest, _ := io.ReadAll(br)
	if string(rest) != "done\n" {
		t.Errorf("rest %q", rest)
	}
}

func TestAccessLogNeverHasTheToken(t *testing.T) {
	s := newIMS(t)
	src := newSource(t, s, secret)
	core, logs := observer.New(zap.DebugLevel)
	eg := newEgress(t, s.URL, src, zap.New(core))
	if status, body := do(t, http.MethodGet, eg+"/testapi/x?secret=q", nil, map[string]string{"X-Request-Id": "req-1"}); status != 200 {
		t.Fatalf("%d %s", status, body)
	}
	tok, _ := src.Token(context.Background())
	lines := logs.FilterMessage("egress request").All()
	if len(lines) != 1 {
		t.Fatalf("%d access lines, want 1", len(lines))
	}
	f := lines[0].ContextMap()
	if f["method"] != "GET" || f["path"] != "/testapi/x" || f["status"] != int64(200) || f["request_id"] != "req-1" {
		t.Errorf("access line %v", f)
	}
	all, _ := json.Marshal(fmt.Sprint(logs.All()))
	if strings.Contains(string(all), tok) || strings.Contains(string(all), "secret=q") {
		t.Error("the token or the query string was logged")
	}
}

func TestConfigErrors(t *testing.T) {
	s := newIMS(t)
	src := newSource(t, s, secret)
	for _, tc := range []struct {
		name     string
		upstream string
		tokens   *techacct.Source
		want     string
	}{
		{"no upstream", "", src, "Upstream is required"},
		{"not http", "ftp://x", src, "scheme"},
		{"credentials", "http://u:p@x", src, "credentials"},
		{"query", "http://x/?a=b", src, "query"},
		{"no tokens", "http://x", nil, "Tokens is required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var u *url.URL
			if tc.upstream != "" {
				u, _ = url.Parse(tc.upstream)
			}
			_, err := egress.New(egress.Config{Upstream: u, Tokens: tc.tokens})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want %q", err, tc.want)
			}
		})
	}
}
