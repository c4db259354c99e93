package test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-proxy/gatehouse/auth/ims/imstest"
)

// The technical account of these tests, as the developer console would
// show it.
const (
	techClientID  = "gatehouse-e2e-integration"
	techSecret    = "p8e-e2e-tech-SECRET"
	techOrgID     = "7E57AB1E0000CAFE@AdobeOrg"
	techAccountID = "0123456789ABCDEF@techacct.adobe.com"
	techMetascope = "ent_cloudmgr_sdk"
)

var techScopes = []string{"openid", "AdobeID", "read_organizations"}

// addTechAccount adds the technical account to e with the given token
// lifetime (0: 24 hours).
func addTechAccount(e *imstest.Emulator, clientID string, lifetime time.Duration) {
	e.AddTechAccount(imstest.TechAccount{
		ClientID: clientID, ClientSecret: techSecret, OrgID: techOrgID, AccountID: techAccountID,
		Metascopes: []string{techMetascope}, Scopes: techScopes, TokenLifetime: lifetime,
	})
}

// certCreate runs `gatehouse cert create --out dir` and returns the key's
// and the certificate's paths, checking what it printed.
func certCreate(t *testing.T, dir string) (keyPath, certPath string) {
	t.Helper()
	code, stdout, stderr := runBinary(t, 60*time.Second, nil, "cert", "create", "--out", dir)
	if code != 0 {
		t.Fatalf("cert create: exit status %d; stderr:\n%s", code, stderr)
	}
	keyPath, certPath = filepath.Join(dir, "private.key"), filepath.Join(dir, "certificate_pub.crt")
	for _, want := range []string{keyPath, certPath, "GATEHOUSE_TECH_PRIVATE_KEY=" + keyPath, "certificate_pub.crt"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("cert create did not print %q:\n%s", want, stdout)
		}
	}
	if fi, err := os.Stat(keyPath); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("private key: %v, mode %v; want 0600", err, fi.Mode().Perm())
	}
	return keyPath, certPath
}

// upload registers the certificate through the emulator's development
// endpoint, as an integrator uploads it in the developer console.
func upload(t *testing.T, imsURL, clientID, certPath string) {
	t.Helper()
	pem, err := os.ReadFile(certPath)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post(imsURL+"/ims/dev/techaccounts/"+clientID+"/certificates", "application/x-pem-file", bytes.NewReader(pem))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("registering the certificate: %d %s", resp.StatusCode, body)
	}
}

// techVars are the GATEHOUSE_TECH_* settings (without the prefix) for one
// of the two methods.
func techVars(method, keyPath string) map[string]string {
	v := map[string]string{
		"TECH_CLIENT_ID":     techClientID,
		"TECH_CLIENT_SECRET": techSecret,
		"TECH_ORG_ID":        techOrgID,
	}
	if method == "jwt" {
		v["TECH_ACCOUNT_ID"] = techAccountID
		v["TECH_PRIVATE_KEY"] = keyPath
		v["TECH_METASCOPES"] = techMetascope
	} else {
		v["TECH_SCOPES"] = strings.Join(techScopes, ",")
	}
	return v
}

// envOf is the test's environment with vars (names without GATEHOUSE_;
// the value unset drops one) and nothing else of Gatehouse's.
func envOf(vars map[string]string) []string {
	env := cleanEnv()
	for k, v := range vars {
		if v != unset {
			env = append(env, "GATEHOUSE_"+k+"="+v)
		}
	}
	return env
}

func merge(ms ...map[string]string) map[string]string {
	out := map[string]string{}
	for _, m := range ms {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}

// egressURL is the address the egress listener of p logged.
func (p *proc) egressURL(t *testing.T) string {
	t.Helper()
	return p.loggedURL(t, "egress listening")
}

// loggedURL is the http:// URL of the address in p's log line msg (a
// listener's start-up line).
func (p *proc) loggedURL(t *testing.T, msg string) string {
	t.Helper()
	for _, l := range p.logs.lines(t) {
		if l.str("msg") == msg && l.str("addr") != "" {
			return "http://" + l.str("addr")
		}
	}
	t.Fatalf("no %q line in:\n%s", msg, p.logs)
	return ""
}

// testAPIAnswer is the emulator's test API's answer.
type testAPIAnswer struct {
	OK        bool   `json:"ok"`
	Method    string `json:"method"`
	Path      string `json:"path"`
	ClientID  string `json:"client_id"`
	Org       string `json:"org"`
	BodyBytes int64  `json:"body_bytes"`
}

// call sends a request through the egress listener, as the backend would.
func call(t *testing.T, method, target string, body io.Reader, header map[string]string) (int, []byte) {
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
		t.Fatalf("%s %s: %v", method, target, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// TestTechnicalAccount walks an integrator's steps with the real binary,
// for both ways of obtaining tokens: key pair, certificate upload,
// check-health, token, the egress listener to an API that insists on the
// three headers, and tokens that expire every few seconds renewed without
// a failed call.
func TestTechnicalAccount(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		method   string
		endpoint string // the emulator's token endpoint for it
	}{
		{"jwt", imstest.EndpointExchange},
		{"client_credentials", imstest.EndpointToken},
	} {
		t.Run(tc.method, func(t *testing.T) {
			t.Parallel()
			const lifetime = 3 * time.Second
			w := newWorld(t)
			addTechAccount(w.ims.Emulator, techClientID, lifetime)

			keyPath := ""
			if tc.method == "jwt" {
				dir := filepath.Join(t.TempDir(), "tech")
				var certPath string
				keyPath, certPath = certCreate(t, dir)
				key, _ := os.ReadFile(keyPath)

				// A second run must not overwrite the pair.
				code, stdout, stderr := runBinary(t, 30*time.Second, nil, "cert", "create", "--out", dir)
				if code != 1 || !strings.Contains(stderr, "--force") || stdout != "" {
					t.Errorf("cert create over an existing pair: exit %d, stdout %q, stderr %q; want 1 and a hint at --force", code, stdout, stderr)
				}
				if again, _ := os.ReadFile(keyPath); !bytes.Equal(key, again) {
					t.Fatal("cert create overwrote the private key without --force")
				}

				// Before the upload, IMS does not know the key.
				env := envOf(merge(techVars(tc.method, keyPath), map[string]string{"IMS_URL": w.ims.URL}))
				code, _, stderr = runBinary(t, 30*time.Second, env, "check-health")
				if code == 0 || !strings.Contains(stderr, "invalid_signature") {
					t.Errorf("check-health before the upload: exit %d, stderr %q; want a refused signature", code, stderr)
				}
				upload(t, w.ims.URL, techClientID, certPath)

				// The console's three values (API key, client secret, JWT
				// payload with an exp long past) and the private key are all
				// check-health needs; the IMS URL is the emulator's.
				payload := `{"exp":1550001438,"iss":"` + techOrgID + `","sub":"` + techAccountID + `","aud":"` + w.ims.URL + `/c/` + techClientID +
					`","` + w.ims.URL + `/s/` + techMetascope + `":true}`
				pasted := envOf(map[string]string{"TECH_CLIENT_ID": techClientID, "TECH_CLIENT_SECRET": techSecret,
					"TECH_JWT_PAYLOAD": payload, "TECH_PRIVATE_KEY": keyPath, "IMS_URL": w.ims.URL})
				if code, stdout, stderr := runBinary(t, 30*time.Second, pasted, "check-health"); code != 0 || stdout != "Token retrieved successfully\n" {
					t.Errorf("check-health with the pasted JWT payload: exit %d, stdout %q, stderr %q", code, stdout, stderr)
				}
				bad := strings.Replace(payload, `"sub"`, `"subject"`, 1)
				pasted = envOf(map[string]string{"TECH_CLIENT_ID": techClientID, "TECH_CLIENT_SECRET": techSecret,
					"TECH_JWT_PAYLOAD": bad, "TECH_PRIVATE_KEY": keyPath, "IMS_URL": w.ims.URL})
				if code, _, stderr := runBinary(t, 30*time.Second, pasted, "check-health"); code == 0 || !strings.Contains(stderr, `GATEHOUSE_TECH_JWT_PAYLOAD: claim "sub": missing`) {
					t.Errorf("check-health with a payload without sub: exit %d, stderr %q; want the claim named", code, stderr)
				}
			}

			// The TECH_* settings are all these commands need (and the IMS URL,
			// which TECH_IMS_URL defaults to).
			env := envOf(merge(techVars(tc.method, keyPath), map[string]string{"IMS_URL": w.ims.URL}))
			code, stdout, stderr := runBinary(t, 30*time.Second, env, "check-health")
			if code != 0 || stdout != "Token retrieved successfully\n" {
				t.Fatalf("check-health: exit %d, stdout %q, stderr %q", code, stdout, stderr)
			}
			code, stdout, stderr = runBinary(t, 30*time.Second, env, "token")
			token := strings.TrimSuffix(stdout, "\n")
			if code != 0 || stderr != "" || strings.ContainsAny(token, "\n \t") || strings.Count(token, ".") != 2 {
				t.Fatalf("token: exit %d, stdout %q, stderr %q; want one access token and nothing else", code, stdout, stderr)
			}
			status, body := call(t, "GET", w.ims.URL+"/testapi/direct", nil, map[string]string{
				"Authorization": "Bearer " + token, "x-api-key": techClientID, "x-gw-ims-org-id": techOrgID})
			if status != 200 {
				t.Fatalf("the printed token with the three headers: test API answered %d %s", status, body)
			}

			// The egress listener: the backend calls the API with no
			// credentials (or wrong ones), and Gatehouse adds the three headers.
			p := w.start(t, merge(techVars(tc.method, keyPath), map[string]string{
				"EGRESS_LISTEN":   "127.0.0.1:0",
				"EGRESS_UPSTREAM": w.ims.URL,
			}))
			eg := p.egressURL(t)
			status, body = call(t, "GET", eg+"/testapi/programs?limit=1", nil, map[string]string{
				"Authorization": "Bearer not-a-token", "x-api-key": "wrong", "x-gw-ims-org-id": "WRONG@AdobeOrg"})
			if status != 200 {
				t.Fatalf("through the egress listener: %d %s", status, body)
			}
			var a testAPIAnswer
			if err := json.Unmarshal(body, &a); err != nil || !a.OK || a.ClientID != techClientID || a.Org != techOrgID || a.Path != "/testapi/programs" {
				t.Errorf("test API answer %s (%v)", body, err)
			}
			status, body = call(t, "PUT", eg+"/testapi/upload", strings.NewReader(strings.Repeat("x", 100_000)), nil)
			if err := json.Unmarshal(body, &a); status != 200 || err != nil || a.BodyBytes != 100_000 {
				t.Errorf("PUT through the egress listener: %d %s", status, body)
			}

			// Tokens live 3 s: call for four lifetimes; every call must succeed,
			// the token being renewed ahead of its expiry.
			before := w.ims.Calls(tc.endpoint)
			deadline := time.Now().Add(4 * lifetime)
			calls := 0
			for time.Now().Before(deadline) {
				calls++
				if status, body := call(t, "GET", eg+"/testapi/poll", nil, nil); status != 200 {
					t.Fatalf("call %d through the egress listener: %d %s", calls, status, body)
				}
				time.Sleep(100 * time.Millisecond)
			}
			renewals := w.ims.Calls(tc.endpoint) - before
			if renewals < 2 {
				t.Errorf("%d calls to %s over four token lifetimes, want renewals (at least 2)", renewals, tc.endpoint)
			}
			p.stop(t) // log lines are buffered: count them once the process has flushed and exited
			retried := strings.Count(p.logs.String(), `"token_renewed":true`)
			t.Logf("%d calls over %s, %d token renewals, %d after a 401", calls, 4*lifetime, renewals, retried)

			if strings.Contains(p.logs.String(), "eyJ") || strings.Contains(p.logs.String(), techSecret) {
				t.Errorf("a token or the secret is in the log:\n%s", p.logs)
			}
			var egressLines int
			for _, l := range p.logs.lines(t) {
				if l.str("msg") == "egress request" {
					egressLines++
				}
			}
			if egressLines != calls+2 {
				t.Errorf("%d egress access lines, want %d", egressLines, calls+2)
			}
		})
	}
}

// TestTechnicalAccountErrors: every way a technical account can be wrong
// ends in check-health with exit status 1 and a message that says what to
// fix.
func TestTechnicalAccountErrors(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	addTechAccount(w.ims.Emulator, techClientID, 0)
	keyPath, certPath := certCreate(t, filepath.Join(t.TempDir(), "good"))
	upload(t, w.ims.URL, techClientID, certPath)
	// Another integration with the certificate of another key.
	addTechAccount(w.ims.Emulator, "other-integration", 0)
	_, otherCert := certCreate(t, filepath.Join(t.TempDir(), "other"))
	upload(t, w.ims.URL, "other-integration", otherCert)

	// An IMS whose clock is an hour ahead: every JWT has expired by it.
	late := imstest.NewServer(imstest.Options{Now: func() time.Time { return time.Now().Add(time.Hour) }})
	t.Cleanup(late.Close)
	addTechAccount(late.Emulator, techClientID, 0)
	upload(t, late.URL, techClientID, certPath)

	// IMS reached through another address (a forwarding proxy): the JWT's
	// audience names that address, not IMS's host.
	target, _ := url.Parse(w.ims.URL)
	front := httptest.NewServer(&httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) { pr.SetURL(target) }})
	t.Cleanup(front.Close)

	jwt := merge(techVars("jwt", keyPath), map[string]string{"TECH_IMS_URL": w.ims.URL})
	cc := merge(techVars("client_credentials", ""), map[string]string{"TECH_IMS_URL": w.ims.URL})
	for _, tc := range []struct {
		name string
		vars map[string]string
		want []string
	}{
		{"wrong key", merge(jwt, map[string]string{"TECH_CLIENT_ID": "other-integration"}),
			[]string{"invalid_signature", "upload the certificate of GATEHOUSE_TECH_PRIVATE_KEY"}},
		{"wrong secret", merge(jwt, map[string]string{"TECH_CLIENT_SECRET": "wrong"}),
			[]string{"invalid_client", "GATEHOUSE_TECH_CLIENT_SECRET"}},
		{"wrong secret, client credentials", merge(cc, map[string]string{"TECH_CLIENT_SECRET": "wrong"}),
			[]string{"invalid_client", "GATEHOUSE_TECH_CLIENT_SECRET"}},
		{"expired JWT", merge(jwt, map[string]string{"TECH_IMS_URL": late.URL}),
			[]string{"expired", "this machine's clock"}},
		{"wrong audience", merge(jwt, map[string]string{"TECH_IMS_URL": front.URL}),
			[]string{"audience", front.URL + "/c/" + techClientID, "GATEHOUSE_TECH_IMS_URL"}},
		{"missing metascope", merge(jwt, map[string]string{"TECH_METASCOPES": "ent_unsubscribed_sdk"}),
			[]string{"invalid_scope", "metascope ent_unsubscribed_sdk is not subscribed", "GATEHOUSE_TECH_METASCOPES"}},
		{"scope not allowed", merge(cc, map[string]string{"TECH_SCOPES": "openid,write_everything"}),
			[]string{"invalid_scope", "write_everything", "GATEHOUSE_TECH_SCOPES"}},
		{"missing settings", map[string]string{"TECH_CLIENT_ID": techClientID},
			[]string{"GATEHOUSE_TECH_CLIENT_SECRET and GATEHOUSE_TECH_ORG_ID are required", "GATEHOUSE_TECH_SCOPES"}},
		{"half-filled JWT settings", merge(jwt, map[string]string{"TECH_METASCOPES": unset}),
			[]string{"GATEHOUSE_TECH_METASCOPES is missing"}},
		{"both methods", merge(jwt, map[string]string{"TECH_SCOPES": "openid"}),
			[]string{"GATEHOUSE_TECH_SCOPES", "are all set", "not both"}},
		{"secret file unreadable", merge(cc, map[string]string{"TECH_CLIENT_SECRET": unset, "TECH_CLIENT_SECRET_FILE": "/nonexistent/secret"}),
			[]string{"GATEHOUSE_TECH_CLIENT_SECRET_FILE: open /nonexistent/secret"}},
		{"IMS unreachable", merge(cc, map[string]string{"TECH_IMS_URL": "http://127.0.0.1:1"}),
			[]string{"could not be reached", "GATEHOUSE_TECH_IMS_URL"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			code, stdout, stderr := runBinary(t, 30*time.Second, envOf(tc.vars), "check-health")
			if code != 1 || stdout != "" {
				t.Errorf("exit status %d, stdout %q; want 1 and nothing", code, stdout)
			}
			for _, want := range tc.want {
				if !strings.Contains(stderr, want) {
					t.Errorf("stderr does not say %q:\n%s", want, stderr)
				}
			}
			if strings.Contains(stderr, techSecret) {
				t.Error("the secret is in the message")
			}
			// token fails the same way, with nothing on stdout for a script.
			code, stdout, _ = runBinary(t, 30*time.Second, envOf(tc.vars), "token")
			if code != 1 || stdout != "" {
				t.Errorf("token: exit status %d, stdout %q; want 1 and nothing", code, stdout)
			}
		})
	}
}

// TestEgressErrors: the egress listener without a technical account stops
// start-up; with one that cannot obtain a token it answers 503 and says why.
func TestEgressErrors(t *testing.T) {
	t.Parallel()
	t.Run("no technical account", func(t *testing.T) {
		t.Parallel()
		w := newWorld(t)
		vars := merge(w.baseEnv(), map[string]string{"EGRESS_LISTEN": "127.0.0.1:0", "EGRESS_UPSTREAM": w.ims.URL})
		code, _, stderr := runBinary(t, 20*time.Second, envOf(vars), "serve")
		if code != 1 {
			t.Errorf("exit status %d, want 1", code)
		}
		for _, want := range []string{"GATEHOUSE_EGRESS_LISTEN", "GATEHOUSE_TECH_CLIENT_ID"} {
			if !strings.Contains(stderr, want) {
				t.Errorf("stderr does not name %s:\n%s", want, stderr)
			}
		}
	})
	t.Run("half a technical account", func(t *testing.T) {
		t.Parallel()
		w := newWorld(t)
		vars := merge(w.baseEnv(), techVars("jwt", "/nonexistent/private.key"), map[string]string{
			"TECH_METASCOPES": unset, "EGRESS_LISTEN": "127.0.0.1:0", "EGRESS_UPSTREAM": w.ims.URL})
		code, _, stderr := runBinary(t, 20*time.Second, envOf(vars), "serve")
		if code != 1 {
			t.Errorf("exit status %d, want 1", code)
		}
		for _, want := range []string{"GATEHOUSE_TECH_PRIVATE_KEY: load private key", "GATEHOUSE_TECH_METASCOPES is missing"} {
			if !strings.Contains(stderr, want) {
				t.Errorf("stderr does not say %q:\n%s", want, stderr)
			}
		}
	})
	t.Run("no token", func(t *testing.T) {
		t.Parallel()
		w := newWorld(t)
		addTechAccount(w.ims.Emulator, techClientID, 0)
		p := w.start(t, merge(techVars("client_credentials", ""), map[string]string{
			"TECH_CLIENT_SECRET": "wrong", "EGRESS_LISTEN": "127.0.0.1:0", "EGRESS_UPSTREAM": w.ims.URL,
		}))
		status, body := call(t, "GET", p.egressURL(t)+"/testapi/x", nil, nil)
		if status != http.StatusServiceUnavailable || !strings.Contains(string(body), "invalid_client") {
			t.Errorf("%d %s; want 503 saying invalid_client", status, body)
		}
		if n := w.ims.Calls(imstest.EndpointTestAPI); n != 0 {
			t.Errorf("the API was called %d times without a token", n)
		}
		// The main proxy stays ready: its users do not need the account.
		wantUser(t, p.do(t, request{path: whoami, bearer: w.mint(t, alice, clientID)}), alice)
	})
}

// TestAPICheck: on GATEHOUSE_API_PATHS a request needs a bearer token,
// x-api-key (its client id) and x-gw-ims-org-id (an organization of the
// caller's, the configured one).
func TestAPICheck(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	// whoami is under an API prefix here, so that a passing request shows
	// the backend's answer.
	p := w.start(t, map[string]string{"API_PATHS": "/api/,/libs/granite/security/"})
	tokA := w.mint(t, alice, clientID)
	r := p.do(t, request{path: "/bin/querybuilder.json", bearer: tokA}) // not an API path: a plain sign-in
	wantStatus(t, r, http.StatusOK)
	cookieA := r.newCookie(t).value

	hdr := func(key, org string) map[string][]string {
		h := map[string][]string{}
		if key != "" {
			h["x-api-key"] = []string{key}
		}
		if org != "" {
			h["x-gw-ims-org-id"] = []string{org}
		}
		return h
	}
	for _, tc := range []struct {
		name    string
		r       request
		status  int
		mention string
	}{
		{"x-api-key missing", request{path: whoami, bearer: tokA, header: hdr("", orgID)}, 403, "x-api-key header is missing"},
		{"x-api-key wrong", request{path: whoami, bearer: tokA, header: hdr(clientID2, orgID)}, 403, "x-api-key header does not match the token's client id"},
		{"x-gw-ims-org-id missing", request{path: whoami, bearer: tokA, header: hdr(clientID, "")}, 403, "x-gw-ims-org-id header is missing"},
		{"org not the user's", request{path: whoami, bearer: tokA, header: hdr(clientID, otherOrgID)}, 403, "x-gw-ims-org-id"},
		{"org of the user's but not GATEHOUSE_IMS_ORG", request{path: "/api/x", bearer: w.mint(t, bob, clientID), header: hdr(clientID, otherOrgID)}, 403, "x-gw-ims-org-id"},
		{"cookie only", request{path: whoami, cookie: cookieA, header: hdr(clientID, orgID)}, 401, "bearer token"},
		{"cookie only, encoded path", request{path: "/%61pi/x", cookie: cookieA}, 401, "bearer token"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := w.backend.Requests()
			r := p.do(t, tc.r)
			reason := "FORBIDDEN"
			if tc.status == 401 {
				reason = "NO_CREDENTIALS"
			}
			wantAuthError(t, r, tc.status, "", reason)
			if !strings.Contains(string(r.body), tc.mention) {
				t.Errorf("body %s does not say %q", r.body, tc.mention)
			}
			if w.backend.Requests() != n {
				t.Error("the refused request reached the upstream")
			}
		})
	}
	t.Run("right headers", func(t *testing.T) {
		wantUser(t, p.do(t, request{path: whoami, bearer: tokA, header: hdr(clientID, orgID)}), alice)
		// A cookie with the same user's bearer serves too.
		wantUser(t, p.do(t, request{path: whoami, bearer: tokA, cookie: cookieA, header: hdr(clientID, orgID)}), alice)
		// Headers sent in any case.
		wantUser(t, p.do(t, request{path: whoami, bearer: tokA, header: map[string][]string{"X-API-KEY": {clientID}, "X-Gw-Ims-Org-Id": {orgID}}}), alice)
	})
	t.Run("cookie only outside the API paths", func(t *testing.T) {
		wantStatus(t, p.do(t, request{path: "/bin/querybuilder.json", cookie: cookieA}), http.StatusOK)
	})
	p.stop(t) // log lines are buffered: count them once the process has flushed and exited
	if lines := strings.Count(p.logs.String(), `"api check refused"`); lines < 7 {
		t.Errorf("%d \"api check refused\" log lines, want one per refusal", lines)
	}

}
