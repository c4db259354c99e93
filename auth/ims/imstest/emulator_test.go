package imstest_test

import (
	"bytes"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/gatehouse-proxy/gatehouse/auth/ims"
	"github.com/gatehouse-proxy/gatehouse/auth/ims/imstest"
)

const (
	userID   = "7F8F1234ABCD5678@AdobeID"
	orgID    = "1234ABCD@AdobeOrg"
	clientID = "cc-europa-desktop_1_0"
)

// clock is a settable clock for Options.Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

var alice = imstest.User{
	ID:          userID,
	Email:       "alice@example.com",
	FirstName:   "Alice",
	LastName:    "Liddell",
	CountryCode: "GB",
	Orgs: []imstest.Org{{
		ID:   orgID,
		Name: "Wonderland Inc.",
		Groups: []ims.Group{
			{GroupName: "authors", Ident: "123456789", Role: "TEAM_MEMBER", GroupType: "USER_GROUP"},
			{GroupName: "AEM Administrators", Ident: "987654321", Role: "GRP_ADMIN", GroupType: "LICENSE_GROUP"},
		},
	}},
}

// newServer starts an emulator on loopback with a settable clock and alice.
func newServer(t *testing.T) (*imstest.Server, *clock) {
	t.Helper()
	clk := &clock{t: time.Now().Truncate(time.Millisecond)}
	s := imstest.NewServer(imstest.Options{Now: clk.Now})
	t.Cleanup(s.Close)
	s.AddUser(alice)
	return s, clk
}

func mint(t *testing.T, s *imstest.Server, req imstest.TokenRequest) string {
	t.Helper()
	if req.UserID == "" {
		req.UserID = userID
	}
	if req.ClientID == "" {
		req.ClientID = clientID
	}
	tok, _, err := s.MintToken(req)
	if err != nil {
		t.Fatalf("MintToken: %v", err)
	}
	return tok
}

type request struct {
	method, path string
	bearer       string
	form         url.Values // sent as the body of a POST/PUT, else as the query
	json         string     // a JSON body instead of form
}

func do(t *testing.T, s *imstest.Server, rq request) (*http.Response, []byte) {
	t.Helper()
	if rq.method == "" {
		rq.method = http.MethodGet
	}
	u := s.URL + rq.path
	var body io.Reader
	ctype := ""
	switch {
	case rq.json != "":
		body, ctype = strings.NewReader(rq.json), "application/json"
	case rq.form != nil && (rq.method == http.MethodPost || rq.method == http.MethodPut):
		body, ctype = strings.NewReader(rq.form.Encode()), "application/x-www-form-urlencoded"
	case rq.form != nil:
		u += "?" + rq.form.Encode()
	}
	req, err := http.NewRequest(rq.method, u, body)
	if err != nil {
		t.Fatal(err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if rq.bearer != "" {
		req.Header.Set("Authorization", "Bearer "+rq.bearer)
	}
	resp, err := s.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", rq.method, rq.path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

func decode[T any](t *testing.T, b []byte) T {
	t.Helper()
	var v T
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	return v
}

// segment decodes one part of a JWT.
func segment(t *testing.T, tok string, i int) []byte {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("token has %d parts", len(parts))
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[i])
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// jwksKeys fetches /ims/keys and decodes the RSA keys by kid, independently
// of the emulator's code.
func jwksKeys(t *testing.T, s *imstest.Server) map[string]*rsa.PublicKey {
	t.Helper()
	resp, b := do(t, s, request{path: "/ims/keys"})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /ims/keys: %d %s", resp.StatusCode, b)
	}
	var set struct {
		Keys []struct{ Kty, Kid, Use, Alg, N, E string }
	}
	if err := json.Unmarshal(b, &set); err != nil {
		t.Fatal(err)
	}
	keys := map[string]*rsa.PublicKey{}
	for _, k := range set.Keys {
		if k.Kty != "RSA" || k.Use != "sig" || k.Alg != "RS256" || k.Kid == "" {
			t.Errorf("JWK %+v: want kty RSA, use sig, alg RS256 and a kid", k)
		}
		n, err1 := base64.RawURLEncoding.DecodeString(k.N)
		e, err2 := base64.RawURLEncoding.DecodeString(k.E)
		if err1 != nil || err2 != nil {
			t.Fatalf("JWK %s: bad n or e", k.Kid)
		}
		keys[k.Kid] = &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}
	}
	return keys
}

func jwksKeyfunc(t *testing.T, s *imstest.Server) jwt.Keyfunc {
	keys := jwksKeys(t, s)
	return func(tok *jwt.Token) (any, error) {
		kid, _ := tok.Header["kid"].(string)
		if k, ok := keys[kid]; ok {
			return k, nil
		}
		return nil, fmt.Errorf("no key %q", kid)
	}
}

// certKeyfunc fetches the PEM certificate named by the token's x5u.
func certKeyfunc(t *testing.T, s *imstest.Server, base string) jwt.Keyfunc {
	return func(tok *jwt.Token) (any, error) {
		x5u, _ := tok.Header["x5u"].(string)
		resp, b := do(t, s, request{path: base + x5u})
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("certificate %s: %d", x5u, resp.StatusCode)
		}
		if ct := resp.Header.Get("Content-Type"); ct != "application/x-x509-ca-cert" {
			t.Errorf("certificate Content-Type = %q", ct)
		}
		block, _ := pem.Decode(b)
		if block == nil || block.Type != "CERTIFICATE" {
			return nil, errors.New("not a PEM certificate")
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, err
		}
		return cert.PublicKey, nil
	}
}

func TestTokenFormat(t *testing.T) {
	s, clk := newServer(t)
	tok, claims, err := s.MintToken(imstest.TokenRequest{UserID: userID, ClientID: clientID})
	if err != nil {
		t.Fatal(err)
	}

	t.Run("header", func(t *testing.T) {
		got := string(segment(t, tok, 0))
		want := `{"alg":"RS256","x5u":"ims_na1-key-at-1.cer","kid":"ims_na1-key-at-1","itt":"at"}`
		if got != want {
			t.Errorf("header = %s, want %s", got, want)
		}
	})

	t.Run("payload", func(t *testing.T) {
		raw := decode[map[string]any](t, segment(t, tok, 1))
		created := strconv.FormatInt(clk.Now().UnixMilli(), 10)
		wantStrings := map[string]string{
			"type":       "access_token",
			"client_id":  clientID,
			"user_id":    userID,
			"as":         "ims-na1",
			"scope":      "AdobeID,openid,read_organizations",
			"created_at": created,
			"expires_in": "86400000",
			"aa_id":      userID,
		}
		for k, want := range wantStrings {
			if got, ok := raw[k].(string); !ok || got != want {
				t.Errorf("%s = %#v, want the string %q", k, raw[k], want)
			}
		}
		for _, k := range []string{"id", "pac", "rtid", "moi", "rtea", "sid"} {
			if v, ok := raw[k].(string); !ok || v == "" {
				t.Errorf("%s = %#v, want a non-empty string", k, raw[k])
			}
		}
		if n, ok := raw["ctp"].(json.Number); !ok || n.String() != "0" {
			t.Errorf("ctp = %#v, want the number 0", raw["ctp"])
		}
		for _, k := range []string{"exp", "iss", "aud", "nbf", "iat"} {
			if v, ok := raw[k]; ok {
				t.Errorf("payload has %s = %v; IMS tokens do not", k, v)
			}
		}
		if raw["id"] != claims.ID {
			t.Errorf("id = %v, MintToken said %s", raw["id"], claims.ID)
		}
	})

	t.Run("claims returned match the token", func(t *testing.T) {
		var c ims.Claims
		if err := json.Unmarshal(segment(t, tok, 1), &c); err != nil {
			t.Fatal(err)
		}
		if c.ID != claims.ID || c.CreatedAt != claims.CreatedAt || c.ExpiresIn != claims.ExpiresIn || c.Scope != claims.Scope {
			t.Errorf("token claims %+v differ from returned %+v", c, *claims)
		}
		if got, want := claims.ExpiresAt(), clk.Now().Add(24*time.Hour); !got.Equal(want) {
			t.Errorf("ExpiresAt = %v, want %v", got, want)
		}
	})

	for _, tc := range []struct {
		name string
		kf   jwt.Keyfunc
	}{
		{"verifies against the JWKS", jwksKeyfunc(t, s)},
		{"verifies against the prod certificate named by x5u", certKeyfunc(t, s, s.CertsPath())},
		{"verifies against the nonprod certificate named by x5u", certKeyfunc(t, s, "/keys/nonprod/")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			parsed, err := jwt.Parse(tok, tc.kf, jwt.WithValidMethods([]string{"RS256"}))
			if err != nil || !parsed.Valid {
				t.Fatalf("jwt.Parse: %v", err)
			}
			mc := parsed.Claims.(jwt.MapClaims)
			if mc["user_id"] != userID {
				t.Errorf("user_id = %v", mc["user_id"])
			}
		})
	}

	t.Run("options change cluster, key id and request fields", func(t *testing.T) {
		s2 := imstest.NewServer(imstest.Options{Cluster: "ims-na1-stg1", KeyID: "ims"})
		defer s2.Close()
		s2.AddUser(alice)
		created := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
		tok, c, err := s2.MintToken(imstest.TokenRequest{
			UserID: userID, ClientID: "other", Scope: "openid", Lifetime: time.Hour,
			CreatedAt: created, Type: ims.TypeRefreshToken,
		})
		if err != nil {
			t.Fatal(err)
		}
		if c.Cluster != "ims-na1-stg1" || c.Scope != "openid" || c.Type != ims.TypeRefreshToken ||
			!c.CreatedAt.Time().Equal(created) || c.ExpiresIn.Duration() != time.Hour {
			t.Errorf("claims = %+v", *c)
		}
		h := decode[map[string]any](t, segment(t, tok, 0))
		if h["kid"] != "ims" || h["x5u"] != "ims.cer" {
			t.Errorf("header = %v", h)
		}
	})
}

func TestMintTokenErrors(t *testing.T) {
	s, _ := newServer(t)
	for _, tc := range []struct {
		name        string
		req         imstest.TokenRequest
		unknownUser bool
	}{
		{"unknown user", imstest.TokenRequest{UserID: "nobody@AdobeID", ClientID: clientID}, true},
		{"no user id", imstest.TokenRequest{ClientID: clientID}, false},
		{"no client id", imstest.TokenRequest{UserID: userID}, false},
		{"negative lifetime", imstest.TokenRequest{UserID: userID, ClientID: clientID, Lifetime: -time.Second}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := s.MintToken(tc.req)
			if err == nil {
				t.Fatal("MintToken succeeded")
			}
			if got := errors.Is(err, imstest.ErrUnknownUser); got != tc.unknownUser {
				t.Errorf("errors.Is(%v, ErrUnknownUser) = %v", err, got)
			}
		})
	}
}

// tamper replaces the token's user id without re-signing.
func tamper(t *testing.T, tok string) string {
	parts := strings.Split(tok, ".")
	payload := strings.Replace(string(segment(t, tok, 1)), userID, "EVIL0000@AdobeID", 1)
	parts[1] = base64.RawURLEncoding.EncodeToString([]byte(payload))
	return strings.Join(parts, ".")
}

func TestValidateToken(t *testing.T) {
	s, clk := newServer(t)
	valid := mint(t, s, imstest.TokenRequest{})
	expired := mint(t, s, imstest.TokenRequest{CreatedAt: clk.Now().Add(-25 * time.Hour)})
	revoked := mint(t, s, imstest.TokenRequest{})
	s.Revoke(revoked)
	refresh := mint(t, s, imstest.TokenRequest{Type: ims.TypeRefreshToken})
	foreign := imstest.NewServer(imstest.Options{})
	defer foreign.Close()
	foreign.AddUser(alice)
	otherKey := mint(t, foreign, imstest.TokenRequest{})

	form := func(tok string) url.Values {
		v := url.Values{"type": {"access_token"}, "client_id": {clientID}}
		if tok != "" {
			v.Set("token", tok)
		}
		return v
	}
	const path = "/ims/validate_token/v1"
	for _, tc := range []struct {
		name       string
		rq         request
		wantStatus int
		wantValid  bool
		wantReason string
		wantError  string
	}{
		{"valid, bearer", request{method: "POST", path: path, bearer: valid, form: form("")}, 200, true, "", ""},
		{"valid, form token", request{method: "POST", path: path, form: form(valid)}, 200, true, "", ""},
		{"valid, GET query", request{path: path, form: form(valid)}, 200, true, "", ""},
		{"expired", request{method: "POST", path: path, form: form(expired)}, 200, false, "expired", ""},
		{"revoked", request{method: "POST", path: path, form: form(revoked)}, 200, false, "revoked", ""},
		{"tampered", request{method: "POST", path: path, form: form(tamper(t, valid))}, 200, false, "bad_signature", ""},
		{"signed by an unknown key", request{method: "POST", path: path, form: form(otherKey)}, 200, false, "bad_signature", ""},
		{"garbage", request{method: "POST", path: path, form: form("not-a-jwt")}, 200, false, "bad_signature", ""},
		{"wrong client", request{method: "POST", path: path, form: url.Values{"type": {"access_token"}, "client_id": {"someone-else"}, "token": {valid}}}, 200, false, "invalid_client_id", ""},
		{"wrong type", request{method: "POST", path: path, form: form(refresh)}, 200, false, "invalid_type", ""},
		{"missing token", request{method: "POST", path: path, form: form("")}, 400, false, "", "invalid_request"},
		{"missing client_id", request{method: "POST", path: path, form: url.Values{"type": {"access_token"}, "token": {valid}}}, 400, false, "", "invalid_request"},
		{"missing type", request{method: "POST", path: path, form: url.Values{"client_id": {clientID}, "token": {valid}}}, 400, false, "", "invalid_request"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, b := do(t, s, tc.rq)
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("status = %d, want %d (%s)", resp.StatusCode, tc.wantStatus, b)
			}
			raw := decode[map[string]any](t, b)
			if tc.wantError != "" {
				if raw["error"] != tc.wantError || raw["error_description"] == "" {
					t.Errorf("body = %s, want error %q with a description", b, tc.wantError)
				}
				return
			}
			if raw["valid"] != tc.wantValid {
				t.Errorf("valid = %v, want %v (%s)", raw["valid"], tc.wantValid, b)
			}
			if !tc.wantValid {
				if raw["reason"] != tc.wantReason {
					t.Errorf("reason = %v, want %q", raw["reason"], tc.wantReason)
				}
				if _, ok := raw["token"]; ok {
					t.Errorf("invalid answer carries the token: %s", b)
				}
				return
			}
			exp, ok := raw["expires_at"].(json.Number)
			if !ok {
				t.Fatalf("expires_at = %#v, want a number", raw["expires_at"])
			}
			if want := strconv.FormatInt(clk.Now().Add(24*time.Hour).UnixMilli(), 10); exp.String() != want {
				t.Errorf("expires_at = %s, want %s", exp, want)
			}
			token, _ := raw["token"].(map[string]any)
			if _, ok := token["created_at"].(string); !ok {
				t.Errorf("token.created_at = %#v, want a string", token["created_at"])
			}
			res := decode[ims.ValidationResult](t, b)
			if res.Token == nil || res.Token.UserID != userID || res.Token.ClientID != clientID {
				t.Errorf("token = %+v", res.Token)
			}
		})
	}

	t.Run("expires when the clock passes created_at+expires_in", func(t *testing.T) {
		tok := mint(t, s, imstest.TokenRequest{Lifetime: time.Minute})
		_, b := do(t, s, request{method: "POST", path: path, form: form(tok)})
		if res := decode[ims.ValidationResult](t, b); !res.Valid {
			t.Fatalf("fresh token invalid: %s", b)
		}
		clk.Add(time.Minute)
		_, b = do(t, s, request{method: "POST", path: path, form: form(tok)})
		if res := decode[ims.ValidationResult](t, b); res.Valid || res.Reason != "expired" {
			t.Errorf("after a minute: %s", b)
		}
	})
}

func TestProfile(t *testing.T) {
	s, _ := newServer(t)
	resp, b := do(t, s, request{path: "/ims/profile/v1", bearer: mint(t, s, imstest.TokenRequest{})})
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, b)
	}
	raw := decode[map[string]any](t, b)
	for k, want := range map[string]string{
		"userId":        userID,
		"authId":        userID,
		"email":         "alice@example.com",
		"emailVerified": "true", // a string, as captured from the real service
		"name":          "Alice Liddell",
		"displayName":   "Alice Liddell",
		"first_name":    "Alice",
		"last_name":     "Liddell",
		"account_type":  "type1",
		"countryCode":   "GB",
	} {
		if got, ok := raw[k].(string); !ok || got != want {
			t.Errorf("%s = %#v, want the string %q", k, raw[k], want)
		}
	}
	if langs, ok := raw["preferred_languages"].([]any); !ok || len(langs) != 1 || langs[0] != "en-us" {
		t.Errorf("preferred_languages = %#v", raw["preferred_languages"])
	}
	ppc, ok := raw["projectedProductContext"].([]any)
	if !ok || len(ppc) != 1 {
		t.Fatalf("projectedProductContext = %#v", raw["projectedProductContext"])
	}
	ctx, _ := ppc[0].(map[string]any)["prodCtx"].(map[string]any)
	if ctx["serviceCode"] != "dma_aem_cloud" || ctx["owningEntity"] != orgID || ctx["label"] != "Wonderland Inc." || ctx["groupid"] != "987654321" {
		t.Errorf("prodCtx = %v", ctx)
	}

	p := decode[ims.Profile](t, b)
	if p.UserID != userID || p.FullName() != "Alice Liddell" {
		t.Errorf("ims.Profile = %+v", p)
	}
}

func TestOrganizations(t *testing.T) {
	s, _ := newServer(t)
	tok := mint(t, s, imstest.TokenRequest{})
	for _, path := range []string{"/ims/organizations/v5", "/ims/organizations/v6"} {
		t.Run(path, func(t *testing.T) {
			resp, b := do(t, s, request{path: path, bearer: tok})
			if resp.StatusCode != 200 {
				t.Fatalf("status %d: %s", resp.StatusCode, b)
			}
			raw := decode[[]map[string]any](t, b)
			if len(raw) != 1 {
				t.Fatalf("%d orgs: %s", len(raw), b)
			}
			o := raw[0]
			if o["orgName"] != "Wonderland Inc." || o["orgType"] != "Enterprise" || o["countryCode"] != "GB" {
				t.Errorf("org = %v", o)
			}
			ref, _ := o["orgRef"].(map[string]any)
			if ref["ident"] != "1234ABCD" || ref["authSrc"] != "AdobeOrg" {
				t.Errorf("orgRef = %v", ref)
			}
			groups, _ := o["groups"].([]any)
			if len(groups) != 2 {
				t.Fatalf("groups = %v", o["groups"])
			}
			g, _ := groups[1].(map[string]any)
			if n, ok := g["ident"].(json.Number); !ok || n.String() != "987654321" {
				t.Errorf("ident = %#v, want the number 987654321", g["ident"])
			}
			if g["groupName"] != "AEM Administrators" || g["groupDisplayName"] != "AEM Administrators" ||
				g["role"] != "GRP_ADMIN" || g["groupType"] != "LICENSE_GROUP" {
				t.Errorf("group = %v", g)
			}
			orgs := decode[[]ims.Organization](t, b)
			if orgs[0].ID() != orgID {
				t.Errorf("ID() = %s", orgs[0].ID())
			}
		})
	}
}

func TestSetGroups(t *testing.T) {
	s, _ := newServer(t)
	tok := mint(t, s, imstest.TokenRequest{})
	orgs := func() []ims.Organization {
		_, b := do(t, s, request{path: "/ims/organizations/v5", bearer: tok})
		return decode[[]ims.Organization](t, b)
	}

	t.Run("replaces the groups of an existing org", func(t *testing.T) {
		if err := s.SetGroups(userID, orgID, []ims.Group{{GroupName: "editors"}}); err != nil {
			t.Fatal(err)
		}
		got := orgs()
		if len(got) != 1 || len(got[0].Groups) != 1 {
			t.Fatalf("orgs = %+v", got)
		}
		g := got[0].Groups[0]
		if g.GroupName != "editors" || g.Role != "TEAM_MEMBER" || g.GroupType != "USER_GROUP" || g.GroupDisplayName != "editors" {
			t.Errorf("group = %+v", g)
		}
		if _, err := g.Ident.Int64(); err != nil {
			t.Errorf("generated ident %q: %v", g.Ident, err)
		}
		if got[0].OrgName != "Wonderland Inc." {
			t.Errorf("org name lost: %q", got[0].OrgName)
		}
	})

	t.Run("adds a membership", func(t *testing.T) {
		if err := s.SetGroups(userID, "5678EFGH@AdobeOrg", []ims.Group{{GroupName: "admins", Ident: "42", Role: "GRP_ADMIN"}}); err != nil {
			t.Fatal(err)
		}
		got := orgs()
		if len(got) != 2 || got[1].ID() != "5678EFGH@AdobeOrg" || got[1].Groups[0].Ident != "42" {
			t.Errorf("orgs = %+v", got)
		}
	})

	t.Run("removes all groups", func(t *testing.T) {
		if err := s.SetGroups(userID, orgID, nil); err != nil {
			t.Fatal(err)
		}
		_, b := do(t, s, request{path: "/ims/organizations/v5", bearer: tok})
		if !bytes.Contains(b, []byte(`"groups":[]`)) {
			t.Errorf("want an empty groups array: %s", b)
		}
	})

	for _, tc := range []struct {
		name        string
		user, org   string
		groups      []ims.Group
		unknownUser bool
	}{
		{"unknown user", "nobody@AdobeID", orgID, nil, true},
		{"empty org", userID, "", nil, false},
		{"non-numeric ident", userID, orgID, []ims.Group{{GroupName: "x", Ident: "abc"}}, false},
	} {
		t.Run("error: "+tc.name, func(t *testing.T) {
			err := s.SetGroups(tc.user, tc.org, tc.groups)
			if err == nil {
				t.Fatal("SetGroups succeeded")
			}
			if errors.Is(err, imstest.ErrUnknownUser) != tc.unknownUser {
				t.Errorf("err = %v", err)
			}
		})
	}
}

func TestUserInfo(t *testing.T) {
	s, _ := newServer(t)
	tok := mint(t, s, imstest.TokenRequest{})
	for _, tc := range []struct {
		name   string
		rq     request
		status int
	}{
		{"ok", request{path: "/ims/userinfo/v2", bearer: tok, form: url.Values{"client_id": {clientID}}}, 200},
		{"other client", request{path: "/ims/userinfo/v2", bearer: tok, form: url.Values{"client_id": {"x"}}}, 401},
		{"no client_id", request{path: "/ims/userinfo/v2", bearer: tok}, 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, b := do(t, s, tc.rq)
			if resp.StatusCode != tc.status {
				t.Fatalf("status = %d, want %d: %s", resp.StatusCode, tc.status, b)
			}
			if tc.status != 200 {
				return
			}
			raw := decode[map[string]any](t, b)
			want := map[string]any{
				"sub": userID, "email": "alice@example.com", "email_verified": true,
				"name": "Alice Liddell", "given_name": "Alice", "family_name": "Liddell", "account_type": "type1",
			}
			for k, v := range want {
				if raw[k] != v {
					t.Errorf("%s = %#v, want %#v", k, raw[k], v)
				}
			}
		})
	}
}

func TestProtectedEndpointsRejectBadTokens(t *testing.T) {
	s, clk := newServer(t)
	valid := mint(t, s, imstest.TokenRequest{})
	expired := mint(t, s, imstest.TokenRequest{CreatedAt: clk.Now().Add(-48 * time.Hour)})
	revoked := mint(t, s, imstest.TokenRequest{})
	s.Revoke(revoked)
	refresh := mint(t, s, imstest.TokenRequest{Type: ims.TypeRefreshToken})

	for _, path := range []string{"/ims/profile/v1", "/ims/organizations/v5", "/ims/organizations/v6", "/ims/userinfo/v2"} {
		for _, tc := range []struct {
			name  string
			token string
		}{
			{"missing", ""},
			{"tampered", tamper(t, valid)},
			{"expired", expired},
			{"revoked", revoked},
			{"refresh token", refresh},
			{"garbage", "abc"},
		} {
			t.Run(path+"/"+tc.name, func(t *testing.T) {
				resp, b := do(t, s, request{path: path, bearer: tc.token, form: url.Values{"client_id": {clientID}}})
				if resp.StatusCode != http.StatusUnauthorized {
					t.Fatalf("status = %d, want 401: %s", resp.StatusCode, b)
				}
				if raw := decode[map[string]any](t, b); raw["error"] != "invalid_token" || raw["error_description"] == "" {
					t.Errorf("body = %s", b)
				}
				if !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
					t.Errorf("WWW-Authenticate = %q", resp.Header.Get("WWW-Authenticate"))
				}
			})
		}
	}
}

func TestRevokeEndpoint(t *testing.T) {
	s, _ := newServer(t)
	tok := mint(t, s, imstest.TokenRequest{})
	validate := func() ims.ValidationResult {
		_, b := do(t, s, request{method: "POST", path: "/ims/validate_token/v1",
			form: url.Values{"type": {"access_token"}, "client_id": {clientID}, "token": {tok}}})
		return decode[ims.ValidationResult](t, b)
	}
	for _, tc := range []struct {
		name      string
		form      url.Values
		status    int
		wantValid bool
	}{
		{"other client is refused", url.Values{"token": {tok}, "client_id": {"x"}}, 400, true},
		{"missing client_id", url.Values{"token": {tok}}, 400, true},
		{"missing token", url.Values{"client_id": {clientID}}, 400, true},
		{"garbage token is accepted silently", url.Values{"token": {"abc"}, "client_id": {clientID}}, 200, true},
		{"revokes", url.Values{"token": {tok}, "client_id": {clientID}}, 200, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, b := do(t, s, request{method: "POST", path: "/ims/revoke", form: tc.form})
			if resp.StatusCode != tc.status {
				t.Fatalf("status = %d, want %d: %s", resp.StatusCode, tc.status, b)
			}
			if tc.status == 200 && len(b) != 0 {
				t.Errorf("body = %q, want empty", b)
			}
			if res := validate(); res.Valid != tc.wantValid {
				t.Errorf("valid afterwards = %v (%s)", res.Valid, res.Reason)
			}
		})
	}
}

func TestRotateKey(t *testing.T) {
	s, _ := newServer(t)
	before := mint(t, s, imstest.TokenRequest{})
	kid, err := s.RotateKey()
	if err != nil {
		t.Fatal(err)
	}
	if kid != "ims_na1-key-at-2" {
		t.Errorf("kid = %q", kid)
	}
	after := mint(t, s, imstest.TokenRequest{})

	keys := jwksKeys(t, s)
	if len(keys) != 2 || keys["ims_na1-key-at-1"] == nil || keys[kid] == nil {
		t.Fatalf("JWKS kids = %v", keys)
	}
	if h := decode[map[string]any](t, segment(t, after, 0)); h["kid"] != kid || h["x5u"] != kid+".cer" {
		t.Errorf("new token header = %v", h)
	}
	for _, tc := range []struct{ name, token string }{{"old key", before}, {"new key", after}} {
		t.Run(tc.name, func(t *testing.T) {
			for _, kf := range []jwt.Keyfunc{jwksKeyfunc(t, s), certKeyfunc(t, s, s.CertsPath())} {
				if _, err := jwt.Parse(tc.token, kf, jwt.WithValidMethods([]string{"RS256"})); err != nil {
					t.Errorf("jwt.Parse: %v", err)
				}
			}
			_, b := do(t, s, request{method: "POST", path: "/ims/validate_token/v1",
				form: url.Values{"type": {"access_token"}, "client_id": {clientID}, "token": {tc.token}}})
			if res := decode[ims.ValidationResult](t, b); !res.Valid {
				t.Errorf("validate: %s", b)
			}
		})
	}
}

func TestOutageAndRateLimit(t *testing.T) {
	s, _ := newServer(t)
	tok := mint(t, s, imstest.TokenRequest{})
	vform := url.Values{"type": {"access_token"}, "client_id": {clientID}, "token": {tok}}
	requests := map[string]request{
		"discovery":     {path: "/ims/.well-known/openid-configuration"},
		"keys":          {path: "/ims/keys"},
		"certs":         {path: s.CertsPath() + "ims_na1-key-at-1.cer"},
		"validate":      {method: "POST", path: "/ims/validate_token/v1", form: vform},
		"profile":       {path: "/ims/profile/v1", bearer: tok},
		"organizations": {path: "/ims/organizations/v5", bearer: tok},
		"userinfo":      {path: "/ims/userinfo/v2", bearer: tok, form: url.Values{"client_id": {clientID}}},
		"unknown path":  {path: "/nope"},
	}
	rateLimited := map[string]bool{"validate": true, "profile": true, "organizations": true}

	for _, tc := range []struct {
		name  string
		set   func(bool)
		check func(t *testing.T, name string, resp *http.Response)
	}{
		{"down", s.SetDown, func(t *testing.T, name string, resp *http.Response) {
			if resp.StatusCode != http.StatusServiceUnavailable {
				t.Errorf("status = %d, want 503", resp.StatusCode)
			}
		}},
		{"rate limited", s.SetRateLimited, func(t *testing.T, name string, resp *http.Response) {
			if !rateLimited[name] {
				if resp.StatusCode >= 400 && name != "unknown path" {
					t.Errorf("status = %d, want success", resp.StatusCode)
				}
				return
			}
			if resp.StatusCode != http.StatusTooManyRequests {
				t.Errorf("status = %d, want 429", resp.StatusCode)
			}
			if resp.Header.Get("Retry-After") == "" {
				t.Error("no Retry-After")
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.set(true)
			for name, rq := range requests {
				t.Run(name, func(t *testing.T) {
					resp, _ := do(t, s, rq)
					tc.check(t, name, resp)
				})
			}
			t.Run("dev endpoints keep working", func(t *testing.T) {
				resp, b := do(t, s, request{method: "POST", path: "/ims/dev/token", form: url.Values{"user_id": {userID}, "client_id": {clientID}}})
				if resp.StatusCode != 200 {
					t.Errorf("status = %d: %s", resp.StatusCode, b)
				}
			})
			tc.set(false)
			for name, rq := range requests {
				t.Run("recovered/"+name, func(t *testing.T) {
					resp, b := do(t, s, rq)
					if want := 200; name == "unknown path" {
						if resp.StatusCode != 404 {
							t.Errorf("status = %d, want 404", resp.StatusCode)
						}
					} else if resp.StatusCode != want {
						t.Errorf("status = %d: %s", resp.StatusCode, b)
					}
				})
			}
		})
	}
}

func TestCalls(t *testing.T) {
	s, _ := newServer(t)
	tok := mint(t, s, imstest.TokenRequest{})
	do(t, s, request{path: "/ims/keys"})
	do(t, s, request{path: "/ims/keys"})
	do(t, s, request{method: "DELETE", path: "/ims/keys"}) // 405 still counts
	do(t, s, request{path: "/keys/prod/unknown.cer"})
	do(t, s, request{path: "/ims/profile/v1", bearer: tok})
	do(t, s, request{path: "/ims/organizations/v5", bearer: tok})
	do(t, s, request{path: "/ims/organizations/v6", bearer: tok})
	s.SetRateLimited(true)
	do(t, s, request{method: "POST", path: "/ims/validate_token/v1"}) // 429 still counts
	s.SetRateLimited(false)
	do(t, s, request{method: "POST", path: "/ims/dev/rotate-key"})
	do(t, s, request{path: "/nope"})

	for _, tc := range []struct {
		endpoint string
		want     int64
	}{
		{imstest.EndpointKeys, 3},
		{imstest.EndpointCerts, 1},
		{imstest.EndpointProfile, 1},
		{imstest.EndpointOrganizations, 2},
		{imstest.EndpointValidate, 1},
		{imstest.EndpointDev, 1},
		{imstest.EndpointUserInfo, 0},
		{imstest.EndpointRevoke, 0},
		{imstest.EndpointDiscovery, 0},
		{"", 1},
		{"no such endpoint", 0},
	} {
		t.Run(tc.endpoint, func(t *testing.T) {
			if got := s.Calls(tc.endpoint); got != tc.want {
				t.Errorf("Calls(%q) = %d, want %d", tc.endpoint, got, tc.want)
			}
		})
	}
	s.ResetCalls()
	if got := s.Calls(imstest.EndpointKeys); got != 0 {
		t.Errorf("after ResetCalls: %d", got)
	}
}

func TestDevEndpoints(t *testing.T) {
	s, _ := newServer(t)
	const bob = "B0B00000@AdobeID"

	t.Run("add user", func(t *testing.T) {
		resp, b := do(t, s, request{method: "POST", path: "/ims/dev/users", json: `{
			"id": "` + bob + `", "email": "bob@example.com", "firstName": "Bob", "lastName": "Builder",
			"countryCode": "US",
			"orgs": [{"id": "` + orgID + `", "name": "Wonderland Inc.",
			          "groups": [{"groupName": "authors", "ident": 111, "role": "TEAM_MEMBER"}]}]}`})
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("status = %d: %s", resp.StatusCode, b)
		}
		raw := decode[map[string]any](t, b)
		if raw["id"] != bob || raw["accountType"] != "type1" {
			t.Errorf("stored user = %s", b)
		}
	})

	var token string
	t.Run("token", func(t *testing.T) {
		resp, b := do(t, s, request{method: "POST", path: "/ims/dev/token",
			form: url.Values{"user_id": {bob}, "client_id": {clientID}, "scope": {"openid,read_organizations"}, "expires_in": {"3600000"}}})
		if resp.StatusCode != 200 {
			t.Fatalf("status = %d: %s", resp.StatusCode, b)
		}
		raw := decode[map[string]any](t, b)
		if raw["token_type"] != "bearer" || raw["expires_in"] != json.Number("3600000") {
			t.Errorf("answer = %s", b)
		}
		token, _ = raw["access_token"].(string)
		var c ims.Claims
		if err := json.Unmarshal(segment(t, token, 1), &c); err != nil {
			t.Fatal(err)
		}
		if c.UserID != bob || c.Scope != "openid,read_organizations" || c.ExpiresIn.Duration() != time.Hour {
			t.Errorf("claims = %+v", c)
		}
	})

	t.Run("set groups", func(t *testing.T) {
		path := "/ims/dev/users/" + url.PathEscape(bob) + "/orgs/" + url.PathEscape(orgID) + "/groups"
		resp, b := do(t, s, request{method: "PUT", path: path,
			json: `[{"groupName":"admins","ident":222,"role":"GRP_ADMIN","groupType":"USER_GROUP"}]`})
		if resp.StatusCode != http.StatusNoContent {
			t.Fatalf("status = %d: %s", resp.StatusCode, b)
		}
		_, b = do(t, s, request{path: "/ims/organizations/v5", bearer: token})
		orgs := decode[[]ims.Organization](t, b)
		if len(orgs) != 1 || len(orgs[0].Groups) != 1 || orgs[0].Groups[0].GroupName != "admins" || orgs[0].Groups[0].Ident != "222" {
			t.Errorf("orgs = %s", b)
		}
	})

	t.Run("rotate key", func(t *testing.T) {
		resp, b := do(t, s, request{method: "POST", path: "/ims/dev/rotate-key"})
		if resp.StatusCode != 200 {
			t.Fatalf("status = %d: %s", resp.StatusCode, b)
		}
		if raw := decode[map[string]any](t, b); raw["kid"] != "ims_na1-key-at-2" {
			t.Errorf("answer = %s", b)
		}
		if n := len(jwksKeys(t, s)); n != 2 {
			t.Errorf("%d keys published", n)
		}
	})

	for _, tc := range []struct {
		name   string
		rq     request
		status int
	}{
		{"user without id", request{method: "POST", path: "/ims/dev/users", json: `{"email":"x@example.com"}`}, 400},
		{"user with unknown field", request{method: "POST", path: "/ims/dev/users", json: `{"id":"x","mail":"x"}`}, 400},
		{"user with bad ident", request{method: "POST", path: "/ims/dev/users", json: `{"id":"x","orgs":[{"id":"o@AdobeOrg","groups":[{"groupName":"g","ident":"abc"}]}]}`}, 400},
		{"user not JSON", request{method: "POST", path: "/ims/dev/users", json: `{`}, 400},
		{"groups of unknown user", request{method: "PUT", path: "/ims/dev/users/nobody/orgs/o/groups", json: `[]`}, 404},
		{"token for unknown user", request{method: "POST", path: "/ims/dev/token", form: url.Values{"user_id": {"nobody"}, "client_id": {clientID}}}, 404},
		{"token without client", request{method: "POST", path: "/ims/dev/token", form: url.Values{"user_id": {bob}}}, 400},
		{"token with bad expires_in", request{method: "POST", path: "/ims/dev/token", form: url.Values{"user_id": {bob}, "client_id": {clientID}, "expires_in": {"-5"}}}, 400},
	} {
		t.Run("error: "+tc.name, func(t *testing.T) {
			resp, b := do(t, s, tc.rq)
			if resp.StatusCode != tc.status {
				t.Errorf("status = %d, want %d: %s", resp.StatusCode, tc.status, b)
			}
			if raw := decode[map[string]any](t, b); raw["error"] == nil {
				t.Errorf("no error code: %s", b)
			}
		})
	}
}

func TestDiscovery(t *testing.T) {
	s, _ := newServer(t)
	resp, b := do(t, s, request{path: "/ims/.well-known/openid-configuration"})
	if resp.StatusCode != 200 {
		t.Fatalf("status = %d", resp.StatusCode)
	}
	raw := decode[map[string]any](t, b)
	for k, want := range map[string]string{
		"issuer":                 s.URL,
		"authorization_endpoint": s.URL + "/ims/authorize/v2",
		"token_endpoint":         s.URL + "/ims/token/v3",
		"userinfo_endpoint":      s.URL + "/ims/userinfo/v2",
		"revocation_endpoint":    s.URL + "/ims/revoke",
		"jwks_uri":               s.URL + "/ims/keys",
	} {
		if raw[k] != want {
			t.Errorf("%s = %v, want %s", k, raw[k], want)
		}
	}
	if algs, _ := raw["id_token_signing_alg_values_supported"].([]any); len(algs) != 1 || algs[0] != "RS256" {
		t.Errorf("algs = %v", raw["id_token_signing_alg_values_supported"])
	}
}

func TestMethodsPathsAndLimits(t *testing.T) {
	s, _ := newServer(t)
	big := strings.Repeat("a", 2<<20)
	for _, tc := range []struct {
		name      string
		rq        request
		status    int
		wantAllow string
	}{
		{"POST keys", request{method: "POST", path: "/ims/keys"}, 405, "GET, HEAD"},
		{"DELETE validate", request{method: "DELETE", path: "/ims/validate_token/v1"}, 405, "GET, HEAD, POST"},
		{"GET revoke", request{path: "/ims/revoke"}, 405, "POST"},
		{"GET dev token", request{path: "/ims/dev/token"}, 405, "POST"},
		{"POST profile", request{method: "POST", path: "/ims/profile/v1"}, 405, "GET, HEAD"},
		{"unknown path", request{path: "/ims/nothing"}, 404, ""},
		{"keys with trailing slash", request{path: "/ims/keys/"}, 404, ""},
		{"unknown certificate", request{path: "/keys/prod/nope.cer"}, 404, ""},
		{"body over 1 MiB", request{method: "POST", path: "/ims/validate_token/v1", form: url.Values{"token": {big}}}, 413, ""},
		{"JSON body over 1 MiB", request{method: "POST", path: "/ims/dev/users", json: `{"id":"` + big + `"}`}, 413, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, b := do(t, s, tc.rq)
			if resp.StatusCode != tc.status {
				t.Fatalf("status = %d, want %d: %s", resp.StatusCode, tc.status, b)
			}
			if got := resp.Header.Get("Allow"); got != tc.wantAllow {
				t.Errorf("Allow = %q, want %q", got, tc.wantAllow)
			}
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Errorf("Content-Type = %q", ct)
			}
			if raw := decode[map[string]any](t, b); raw["error"] == nil {
				t.Errorf("no error code: %s", b)
			}
		})
	}
}

func TestConcurrentUse(t *testing.T) {
	s, _ := newServer(t)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 5 {
				tok, _, err := s.MintToken(imstest.TokenRequest{UserID: userID, ClientID: clientID})
				if err != nil {
					t.Error(err)
					return
				}
				_ = s.SetGroups(userID, orgID, []ims.Group{{GroupName: fmt.Sprintf("g%d-%d", i, j)}})
				s.AddUser(imstest.User{ID: fmt.Sprintf("u%d@AdobeID", i)})
				resp, b := do(t, s, request{path: "/ims/organizations/v5", bearer: tok})
				if resp.StatusCode != 200 {
					t.Errorf("organizations: %d %s", resp.StatusCode, b)
				}
				if j == 2 {
					s.Revoke(tok)
				}
				s.Calls(imstest.EndpointOrganizations)
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		if _, err := s.RotateKey(); err != nil {
			t.Error(err)
		}
	}()
	wg.Wait()
	if got := s.Calls(imstest.EndpointOrganizations); got != 40 {
		t.Errorf("Calls = %d, want 40", got)
	}
}

func TestNewRejectsBadKeyID(t *testing.T) {
	if _, err := imstest.New(imstest.Options{KeyID: "../etc/passwd"}); err == nil {
		t.Error("New accepted a key id with a slash")
	}
}

func TestLogsNoTokens(t *testing.T) {
	core, logs := observer.New(zap.DebugLevel)
	s := imstest.NewServer(imstest.Options{Logger: zap.New(core)})
	defer s.Close()
	s.AddUser(alice)
	tok := mint(t, s, imstest.TokenRequest{})
	do(t, s, request{path: "/ims/validate_token/v1", form: url.Values{"type": {"access_token"}, "client_id": {clientID}, "token": {tok}}})
	do(t, s, request{path: "/ims/profile/v1", bearer: tok})
	entries := logs.All()
	if len(entries) != 2 {
		t.Fatalf("%d log entries, want one per request", len(entries))
	}
	for _, e := range entries {
		for k, v := range e.ContextMap() {
			if s, ok := v.(string); ok && strings.Contains(s, tok[:20]) {
				t.Errorf("log field %s carries the token", k)
			}
		}
		if e.ContextMap()["endpoint"] == nil || e.ContextMap()["status"] == nil {
			t.Errorf("entry %v lacks endpoint or status", e.ContextMap())
		}
	}
}
