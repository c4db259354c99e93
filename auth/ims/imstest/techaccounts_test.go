package imstest_test

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/gatehouse-proxy/gatehouse/auth/ims"
	"github.com/gatehouse-proxy/gatehouse/auth/ims/imstest"
)

const (
	techClientID = "gatehouse-integration"
	techSecret   = "p8e-tech-secret"
	techOrg      = "5678EFAB@AdobeOrg"
	techAccount  = "ABCDEF0123456789@techacct.adobe.com"
	metascope    = "ent_cloudmgr_sdk"
)

// RSA keys are generated once: generation is slow under the race detector.
var (
	techKey  = sync.OnceValue(func() *rsa.PrivateKey { return genKey() })
	otherKey = sync.OnceValue(func() *rsa.PrivateKey { return genKey() })
)

func genKey() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
}

// selfSigned is a PEM certificate for key, valid from notBefore to notAfter.
func selfSigned(t *testing.T, key *rsa.PrivateKey, notBefore, notAfter time.Time) []byte {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "integration"},
		NotBefore:    notBefore,
		NotAfter:     notAfter,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// newTechServer is newServer with a technical account whose certificate
// (of techKey) is registered.
func newTechServer(t *testing.T) (*imstest.Server, *clock) {
	t.Helper()
	s, clk := newServer(t)
	s.AddTechAccount(imstest.TechAccount{
		ClientID:      techClientID,
		ClientSecret:  techSecret,
		OrgID:         techOrg,
		AccountID:     techAccount,
		Metascopes:    []string{metascope, "ent_other_sdk"},
		Scopes:        []string{"openid", "AdobeID", "read_organizations"},
		TokenLifetime: 2 * time.Hour,
	})
	now := clk.Now()
	if err := s.RegisterCertificate(techClientID, selfSigned(t, techKey(), now.Add(-time.Hour), now.AddDate(1, 0, 0))); err != nil {
		t.Fatal(err)
	}
	return s, clk
}

// exchangeClaims are valid claims for the technical account, with host as
// the IMS host of aud and the metascope.
func exchangeClaims(host string, now time.Time) jwt.MapClaims {
	return jwt.MapClaims{
		"exp":                    now.Add(5 * time.Minute).Unix(),
		"iss":                    techOrg,
		"sub":                    techAccount,
		"aud":                    host + "/c/" + techClientID,
		host + "/s/" + metascope: true,
		"jti":                    "a-random-id",
	}
}

func signRS256(t *testing.T, key *rsa.PrivateKey, claims jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodRS256, claims).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// raw sends a request with headers and a body and returns the answer.
func raw(t *testing.T, s *imstest.Server, method, path string, header map[string]string, body io.Reader) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, s.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := s.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

// claimsOf decodes a token's payload.
func claimsOf(t *testing.T, tok string) ims.Claims {
	t.Helper()
	var c ims.Claims
	if err := json.Unmarshal(segment(t, tok, 1), &c); err != nil {
		t.Fatal(err)
	}
	return c
}

// checkValid asks the emulator's validate_token about tok.
func checkValid(t *testing.T, s *imstest.Server, tok string) {
	t.Helper()
	_, b := do(t, s, request{method: "POST", path: "/ims/validate_token/v1",
		form: url.Values{"type": {"access_token"}, "client_id": {techClientID}, "token": {tok}}})
	if r := decode[ims.ValidationResult](t, b); !r.Valid {
		t.Errorf("validate_token: %s", b)
	}
}

func TestExchangeJWT(t *testing.T) {
	s, clk := newTechServer(t)
	now := clk.Now()
	// A second account with no certificate.
	s.AddTechAccount(imstest.TechAccount{ClientID: "no-cert", ClientSecret: "s", OrgID: techOrg, AccountID: "X@techacct.adobe.com", Metascopes: []string{metascope}})
	with := func(f func(c jwt.MapClaims)) jwt.MapClaims {
		c := exchangeClaims(s.URL, now)
		f(c)
		return c
	}
	form := func(jwtToken string) url.Values {
		return url.Values{"client_id": {techClientID}, "client_secret": {techSecret}, "jwt_token": {jwtToken}}
	}
	good := signRS256(t, techKey(), exchangeClaims(s.URL, now))
	hs256, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, exchangeClaims(s.URL, now)).SignedString([]byte(techSecret))

	for _, tc := range []struct {
		name     string
		form     url.Values
		status   int
		code     string
		descHas  string
		wantScop string // scope claim of the token on success
	}{
		{"success", form(good), 200, "", "", metascope},
		{"production host in aud and metascope", form(signRS256(t, techKey(), exchangeClaims(imstest.ProductionURL, now))), 200, "", "", metascope},
		{"two metascopes", form(signRS256(t, techKey(), with(func(c jwt.MapClaims) { c[s.URL+"/s/ent_other_sdk"] = true }))), 200, "", "", metascope + ",ent_other_sdk"},
		{"aud as an array", form(signRS256(t, techKey(), with(func(c jwt.MapClaims) { c["aud"] = []string{s.URL + "/c/" + techClientID} }))), 200, "", "", metascope},
		{"expired within the skew", form(signRS256(t, techKey(), with(func(c jwt.MapClaims) { c["exp"] = now.Add(-10 * time.Second).Unix() }))), 200, "", "", metascope},
		{"missing jwt_token", url.Values{"client_id": {techClientID}, "client_secret": {techSecret}}, 400, "bad_request", "jwt_token", ""},
		{"missing client_id", url.Values{"client_secret": {techSecret}, "jwt_token": {good}}, 400, "bad_request", "client_id", ""},
		{"unknown client", url.Values{"client_id": {"nobody"}, "client_secret": {techSecret}, "jwt_token": {good}}, 401, "invalid_client", "", ""},
		{"wrong secret", url.Values{"client_id": {techClientID}, "client_secret": {"wrong"}, "jwt_token": {good}}, 401, "invalid_client", "", ""},
		{"key of no registered certificate", form(signRS256(t, otherKey(), exchangeClaims(s.URL, now))), 400, "invalid_signature", "certificate", ""},
		{"HS256 with the secret", form(hs256), 400, "invalid_signature", "", ""},
		{"client without certificate", url.Values{"client_id": {"no-cert"}, "client_secret": {"s"}, "jwt_token": {good}}, 400, "invalid_signature", "no certificate", ""},
		{"not a JWT", form("not.a.jwt"), 400, "invalid_token", "malformed", ""},
		{"expired", form(signRS256(t, techKey(), with(func(c jwt.MapClaims) { c["exp"] = now.Add(-time.Minute).Unix() }))), 400, "invalid_token", "expired", ""},
		{"no exp", form(signRS256(t, techKey(), with(func(c jwt.MapClaims) { delete(c, "exp") }))), 400, "invalid_token", "exp", ""},
		{"audience of another host", form(signRS256(t, techKey(), with(func(c jwt.MapClaims) { c["aud"] = "https://ims-na1-stg1.adobelogin.com/c/" + techClientID }))), 400, "invalid_token", "audience", ""},
		{"audience of another client", form(signRS256(t, techKey(), with(func(c jwt.MapClaims) { c["aud"] = s.URL + "/c/other" }))), 400, "invalid_token", "audience", ""},
		{"no audience", form(signRS256(t, techKey(), with(func(c jwt.MapClaims) { delete(c, "aud") }))), 400, "invalid_token", "audience", ""},
		{"wrong issuer", form(signRS256(t, techKey(), with(func(c jwt.MapClaims) { c["iss"] = "OTHER@AdobeOrg" }))), 400, "invalid_token", "issuer", ""},
		{"wrong subject", form(signRS256(t, techKey(), with(func(c jwt.MapClaims) { c["sub"] = "OTHER@techacct.adobe.com" }))), 400, "invalid_token", "subject", ""},
		{"no metascope", form(signRS256(t, techKey(), with(func(c jwt.MapClaims) { delete(c, s.URL+"/s/"+metascope) }))), 400, "invalid_scope", "no metascope", ""},
		{"metascope false", form(signRS256(t, techKey(), with(func(c jwt.MapClaims) { c[s.URL+"/s/"+metascope] = false }))), 400, "invalid_scope", "no metascope", ""},
		{"metascope not subscribed", form(signRS256(t, techKey(), with(func(c jwt.MapClaims) { c[s.URL+"/s/ent_analytics_bulk_ingest_sdk"] = true }))), 400, "invalid_scope", "ent_analytics_bulk_ingest_sdk", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, b := do(t, s, request{method: "POST", path: "/ims/exchange/jwt", form: tc.form})
			if resp.StatusCode != tc.status {
				t.Fatalf("status = %d, want %d: %s", resp.StatusCode, tc.status, b)
			}
			raw := decode[map[string]any](t, b)
			if tc.status != 200 {
				desc, _ := raw["error_description"].(string)
				if raw["error"] != tc.code || !strings.Contains(desc, tc.descHas) {
					t.Errorf("answer = %s, want error %s mentioning %q", b, tc.code, tc.descHas)
				}
				return
			}
			// expires_in is in milliseconds here.
			if raw["token_type"] != "bearer" || raw["expires_in"] != json.Number("7200000") || raw["refresh_token"] != nil {
				t.Errorf("answer = %s", b)
			}
			tok, _ := raw["access_token"].(string)
			c := claimsOf(t, tok)
			if c.Type != "access_token" || c.ClientID != techClientID || c.UserID != techAccount || c.Cluster != "ims-na1" ||
				c.Scope != tc.wantScop || c.ExpiresIn.Duration() != 2*time.Hour || !c.CreatedAt.Time().Equal(now) {
				t.Errorf("claims = %+v", c)
			}
			checkValid(t, s, tok)
		})
	}

	t.Run("malformed form", func(t *testing.T) {
		resp, b := raw(t, s, "POST", "/ims/exchange/jwt", map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, strings.NewReader("client_id=%zz"))
		if resp.StatusCode != 400 || decode[map[string]any](t, b)["error"] != "bad_request" {
			t.Errorf("%d %s", resp.StatusCode, b)
		}
	})
	t.Run("secrets in the query are not read", func(t *testing.T) {
		resp, b := do(t, s, request{method: "POST", path: "/ims/exchange/jwt?" + form(good).Encode()})
		if resp.StatusCode != 400 {
			t.Errorf("%d %s", resp.StatusCode, b)
		}
	})
	t.Run("GET", func(t *testing.T) {
		if resp, _ := do(t, s, request{path: "/ims/exchange/jwt"}); resp.StatusCode != 405 {
			t.Errorf("status = %d", resp.StatusCode)
		}
	})
}

func TestExchangeJWTCertificates(t *testing.T) {
	s, clk := newTechServer(t)
	now := clk.Now()
	signedByOther := url.Values{"client_id": {techClientID}, "client_secret": {techSecret},
		"jwt_token": {signRS256(t, otherKey(), exchangeClaims(s.URL, now))}}

	if resp, _ := do(t, s, request{method: "POST", path: "/ims/exchange/jwt", form: signedByOther}); resp.StatusCode != 400 {
		t.Fatalf("status = %d before the certificate is registered", resp.StatusCode)
	}
	if err := s.RegisterCertificate(techClientID, selfSigned(t, otherKey(), now.Add(-time.Hour), now.Add(time.Hour))); err != nil {
		t.Fatal(err)
	}
	if resp, b := do(t, s, request{method: "POST", path: "/ims/exchange/jwt", form: signedByOther}); resp.StatusCode != 200 {
		t.Fatalf("status = %d with a second certificate: %s", resp.StatusCode, b)
	}
	// Re-adding the account keeps its certificates.
	s.AddTechAccount(imstest.TechAccount{ClientID: techClientID, ClientSecret: techSecret, OrgID: techOrg, AccountID: techAccount, Metascopes: []string{metascope}})
	if resp, b := do(t, s, request{method: "POST", path: "/ims/exchange/jwt", form: signedByOther}); resp.StatusCode != 200 {
		t.Fatalf("status = %d after AddTechAccount again: %s", resp.StatusCode, b)
	}
	// Once the certificate has expired it no longer counts.
	clk.Add(2 * time.Hour)
	signedByOther.Set("jwt_token", signRS256(t, otherKey(), exchangeClaims(s.URL, clk.Now())))
	resp, b := do(t, s, request{method: "POST", path: "/ims/exchange/jwt", form: signedByOther})
	if resp.StatusCode != 400 || decode[map[string]any](t, b)["error"] != "invalid_signature" {
		t.Errorf("expired certificate: %d %s", resp.StatusCode, b)
	}

	for _, tc := range []struct {
		name     string
		clientID string
		pem      []byte
		unknown  bool
	}{
		{"unknown client", "nobody", selfSigned(t, otherKey(), now, now.Add(time.Hour)), true},
		{"not PEM", techClientID, []byte("hello"), false},
		{"a private key", techClientID, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{1}}), false},
		{"bad certificate", techClientID, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{1, 2}}), false},
	} {
		t.Run("register: "+tc.name, func(t *testing.T) {
			err := s.RegisterCertificate(tc.clientID, tc.pem)
			if err == nil || errors.Is(err, imstest.ErrUnknownTechAccount) != tc.unknown {
				t.Errorf("err = %v", err)
			}
		})
	}
}

func TestClientCredentials(t *testing.T) {
	s, clk := newTechServer(t)
	cc := func(scope string) url.Values {
		return url.Values{"grant_type": {"client_credentials"}, "client_id": {techClientID}, "client_secret": {techSecret}, "scope": {scope}}
	}
	for _, tc := range []struct {
		name      string
		form      url.Values
		status    int
		code      string
		descHas   string
		wantScope string
	}{
		{"success", cc("openid,AdobeID"), 200, "", "", "openid,AdobeID"},
		{"space separated", cc("openid AdobeID"), 200, "", "", "openid,AdobeID"},
		{"no scope: all allowed", cc(""), 200, "", "", "openid,AdobeID,read_organizations"},
		{"scope not allowed", cc("openid,ent_cloudmgr_sdk"), 400, "invalid_scope", "ent_cloudmgr_sdk", ""},
		{"wrong secret", url.Values{"grant_type": {"client_credentials"}, "client_id": {techClientID}, "client_secret": {"nope"}}, 401, "invalid_client", "", ""},
		{"unknown client", url.Values{"grant_type": {"client_credentials"}, "client_id": {"nobody"}, "client_secret": {techSecret}}, 401, "invalid_client", "", ""},
		{"no grant type", url.Values{"client_id": {techClientID}, "client_secret": {techSecret}}, 400, "invalid_request", "grant_type", ""},
		{"refresh token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"x"}, "client_id": {techClientID}, "client_secret": {techSecret}}, 400, "unsupported_grant_type", "", ""},
		// The code grant is the browser clients' (browser.go), not a technical account's.
		{"authorization code", url.Values{"grant_type": {"authorization_code"}, "code": {"x"}, "client_id": {techClientID}, "client_secret": {techSecret}}, 401, "invalid_client", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, b := do(t, s, request{method: "POST", path: "/ims/token/v3", form: tc.form})
			if resp.StatusCode != tc.status {
				t.Fatalf("status = %d, want %d: %s", resp.StatusCode, tc.status, b)
			}
			raw := decode[map[string]any](t, b)
			if tc.status != 200 {
				desc, _ := raw["error_description"].(string)
				if raw["error"] != tc.code || !strings.Contains(desc, tc.descHas) {
					t.Errorf("answer = %s, want error %s mentioning %q", b, tc.code, tc.descHas)
				}
				return
			}
			// expires_in is in seconds here, and there is no refresh token.
			if raw["token_type"] != "bearer" || raw["expires_in"] != json.Number("7200") {
				t.Errorf("answer = %s", b)
			}
			if _, ok := raw["refresh_token"]; ok {
				t.Errorf("answer has a refresh token: %s", b)
			}
			tok, _ := raw["access_token"].(string)
			c := claimsOf(t, tok)
			if c.Type != "access_token" || c.ClientID != techClientID || c.UserID != techAccount ||
				c.Scope != tc.wantScope || c.ExpiresIn.Duration() != 2*time.Hour || !c.CreatedAt.Time().Equal(clk.Now()) {
				t.Errorf("claims = %+v", c)
			}
			checkValid(t, s, tok)
		})
	}
}

func techToken(t *testing.T, s *imstest.Server) string {
	t.Helper()
	resp, b := do(t, s, request{method: "POST", path: "/ims/token/v3",
		form: url.Values{"grant_type": {"client_credentials"}, "client_id": {techClientID}, "client_secret": {techSecret}, "scope": {"openid"}}})
	if resp.StatusCode != 200 {
		t.Fatalf("token: %d %s", resp.StatusCode, b)
	}
	tok, _ := decode[map[string]any](t, b)["access_token"].(string)
	return tok
}

func TestTestAPI(t *testing.T) {
	s, clk := newTechServer(t)
	tok := techToken(t, s)
	userTok := mint(t, s, imstest.TokenRequest{})
	revoked := techToken(t, s)
	s.Revoke(revoked)
	s.AddTechAccount(imstest.TechAccount{ClientID: "short", ClientSecret: "s", OrgID: techOrg, AccountID: "S@techacct.adobe.com", Scopes: []string{"openid"}, TokenLifetime: time.Minute})
	_, b := do(t, s, request{method: "POST", path: "/ims/token/v3", form: url.Values{"grant_type": {"client_credentials"}, "client_id": {"short"}, "client_secret": {"s"}}})
	expiring, _ := decode[map[string]any](t, b)["access_token"].(string)

	headers := func(token, key, org string) map[string]string {
		h := map[string]string{}
		if token != "" {
			h["Authorization"] = "Bearer " + token
		}
		if key != "" {
			h["x-api-key"] = key
		}
		if org != "" {
			h["x-gw-ims-org-id"] = org
		}
		return h
	}
	for _, tc := range []struct {
		name    string
		header  map[string]string
		advance time.Duration
		status  int
		code    string
		msgHas  string
	}{
		{"technical account", headers(tok, techClientID, techOrg), 0, 200, "", ""},
		{"user of the org", headers(userTok, clientID, orgID), 0, 200, "", ""},
		{"no Authorization", headers("", techClientID, techOrg), 0, 401, "401013", "Authorization"},
		{"not a token", headers("garbage", techClientID, techOrg), 0, 401, "401013", "bad_signature"},
		{"revoked token", headers(revoked, techClientID, techOrg), 0, 401, "401013", "revoked"},
		{"no x-api-key", headers(tok, "", techOrg), 0, 403, "403000", "x-api-key"},
		{"wrong x-api-key", headers(tok, "other-client", techOrg), 0, 403, "403003", "x-api-key"},
		{"no x-gw-ims-org-id", headers(tok, techClientID, ""), 0, 403, "403010", "x-gw-ims-org-id"},
		{"wrong x-gw-ims-org-id", headers(tok, techClientID, orgID), 0, 403, "403011", "x-gw-ims-org-id"},
		{"user not in the org", headers(userTok, clientID, techOrg), 0, 403, "403011", "x-gw-ims-org-id"},
		{"expired token", headers(expiring, "short", techOrg), 2 * time.Minute, 401, "401013", "expired"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk.Add(tc.advance)
			resp, b := raw(t, s, "PUT", "/testapi/programs/42?x=1", tc.header, strings.NewReader("hello"))
			if resp.StatusCode != tc.status {
				t.Fatalf("status = %d, want %d: %s", resp.StatusCode, tc.status, b)
			}
			m := decode[map[string]any](t, b)
			if tc.status != 200 {
				msg, _ := m["message"].(string)
				if m["error_code"] != tc.code || !strings.Contains(msg, tc.msgHas) {
					t.Errorf("answer = %s, want error_code %s mentioning %q", b, tc.code, tc.msgHas)
				}
				return
			}
			key, org := tc.header["x-api-key"], tc.header["x-gw-ims-org-id"]
			if m["ok"] != true || m["method"] != "PUT" || m["path"] != "/testapi/programs/42" || m["client_id"] != key ||
				m["org"] != org || m["body_bytes"] != json.Number("5") {
				t.Errorf("answer = %s", b)
			}
		})
	}

	t.Run("large body, IMS down", func(t *testing.T) {
		s.SetDown(true)
		defer s.SetDown(false)
		before := s.Calls(imstest.EndpointTestAPI)
		big := strings.Repeat("a", 3<<20)
		resp, b := raw(t, s, "POST", "/testapi/upload", headers(tok, techClientID, techOrg), strings.NewReader(big))
		if resp.StatusCode != 200 || decode[map[string]any](t, b)["body_bytes"] != json.Number("3145728") {
			t.Errorf("%d %s", resp.StatusCode, b)
		}
		if got := s.Calls(imstest.EndpointTestAPI) - before; got != 1 {
			t.Errorf("Calls(testapi) grew by %d", got)
		}
	})
}

func TestTokenEndpointsOutageAndRateLimit(t *testing.T) {
	s, clk := newTechServer(t)
	exchange := request{method: "POST", path: "/ims/exchange/jwt", form: url.Values{"client_id": {techClientID}, "client_secret": {techSecret},
		"jwt_token": {signRS256(t, techKey(), exchangeClaims(s.URL, clk.Now()))}}}
	token := request{method: "POST", path: "/ims/token/v3", form: url.Values{"grant_type": {"client_credentials"}, "client_id": {techClientID}, "client_secret": {techSecret}}}
	for _, rq := range []request{exchange, token} {
		t.Run(rq.path, func(t *testing.T) {
			s.SetDown(true)
			if resp, _ := do(t, s, rq); resp.StatusCode != 503 {
				t.Errorf("down: %d", resp.StatusCode)
			}
			s.SetDown(false)
			s.SetRateLimited(true)
			if resp, _ := do(t, s, rq); resp.StatusCode != 429 || resp.Header.Get("Retry-After") == "" {
				t.Errorf("rate limited: %d", resp.StatusCode)
			}
			s.SetRateLimited(false)
			if resp, b := do(t, s, rq); resp.StatusCode != 200 {
				t.Errorf("recovered: %d %s", resp.StatusCode, b)
			}
		})
	}
	for _, tc := range []struct {
		endpoint string
		want     int64
	}{{imstest.EndpointExchange, 3}, {imstest.EndpointToken, 3}} {
		if got := s.Calls(tc.endpoint); got != tc.want {
			t.Errorf("Calls(%s) = %d, want %d", tc.endpoint, got, tc.want)
		}
	}
}

func TestDevTechAccounts(t *testing.T) {
	s, clk := newServer(t)
	now := clk.Now()
	resp, b := do(t, s, request{method: "POST", path: "/ims/dev/techaccounts", json: `{
		"clientId": "` + techClientID + `", "clientSecret": "` + techSecret + `", "orgId": "` + techOrg + `",
		"accountId": "` + techAccount + `", "metascopes": ["` + metascope + `"], "scopes": ["openid"],
		"tokenLifetimeSeconds": 60}`})
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("add: %d %s", resp.StatusCode, b)
	}
	if m := decode[map[string]any](t, b); m["clientId"] != techClientID || m["tokenLifetimeSeconds"] != json.Number("60") || m["clientSecret"] != nil {
		t.Errorf("add answer = %s", b)
	}
	resp, b = raw(t, s, "POST", "/ims/dev/techaccounts/"+techClientID+"/certificates", nil,
		strings.NewReader(string(selfSigned(t, techKey(), now.Add(-time.Hour), now.Add(time.Hour)))))
	if resp.StatusCode != http.StatusCreated || decode[map[string]any](t, b)["certificates"] != json.Number("1") {
		t.Fatalf("certificate: %d %s", resp.StatusCode, b)
	}
	resp, b = do(t, s, request{method: "POST", path: "/ims/exchange/jwt", form: url.Values{"client_id": {techClientID}, "client_secret": {techSecret},
		"jwt_token": {signRS256(t, techKey(), exchangeClaims(s.URL, now))}}})
	if resp.StatusCode != 200 || decode[map[string]any](t, b)["expires_in"] != json.Number("60000") {
		t.Fatalf("exchange: %d %s", resp.StatusCode, b)
	}
	if got := s.Calls(imstest.EndpointDev); got != 2 {
		t.Errorf("Calls(dev) = %d, want 2", got)
	}

	for _, tc := range []struct {
		name   string
		path   string
		body   string
		status int
	}{
		{"missing fields", "/ims/dev/techaccounts", `{"clientId":"x"}`, 400},
		{"unknown field", "/ims/dev/techaccounts", `{"clientId":"x","clientSecret":"s","orgId":"o","accountId":"a","secret":"s"}`, 400},
		{"negative lifetime", "/ims/dev/techaccounts", `{"clientId":"x","clientSecret":"s","orgId":"o","accountId":"a","tokenLifetimeSeconds":-1}`, 400},
		{"certificate of an unknown client", "/ims/dev/techaccounts/nobody/certificates", string(selfSigned(t, techKey(), now, now.Add(time.Hour))), 404},
		{"not a certificate", "/ims/dev/techaccounts/" + techClientID + "/certificates", "hello", 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, b := raw(t, s, "POST", tc.path, map[string]string{"Content-Type": "application/json"}, strings.NewReader(tc.body))
			if resp.StatusCode != tc.status {
				t.Errorf("status = %d, want %d: %s", resp.StatusCode, tc.status, b)
			}
			if decode[map[string]any](t, b)["error"] == nil {
				t.Errorf("no error code: %s", b)
			}
		})
	}
}
