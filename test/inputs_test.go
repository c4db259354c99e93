package test

import (
	"crypto"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-proxy/gatehouse/auth/ims/imstest"
)

// TestBadInputs sends what a confused or hostile client might: every case
// is refused with the right status and RFC 6750 code, explained in the
// body, answered without calling IMS, and never forwarded.
func TestBadInputs(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	p := w.start(t, nil)

	// Alice signs in and out: her cookie is revoked. Bob stays signed in.
	r := p.do(t, request{path: whoami, bearer: w.mint(t, alice, clientID)})
	wantUser(t, r, alice)
	revoked := r.newCookie(t).value
	wantStatus(t, p.do(t, request{method: "POST", path: "/gatehouse/logout", cookie: revoked}), http.StatusOK)
	tokB := w.mint(t, bob, clientID)
	r = p.do(t, request{path: whoami, bearer: tokB})
	wantUser(t, r, bob)
	cookieB := r.newCookie(t).value

	// Tokens that are not what they claim. The payload is always a genuine,
	// live one, so only the named defect makes them fail.
	genuine := w.mint(t, alice, clientID)
	hdr, payload := jwtParts(t, genuine)
	kid, _ := hdr["kid"].(string)
	x5u, _ := hdr["x5u"].(string)

	other, err := imstest.New(imstest.Options{}) // same kid, another key
	if err != nil {
		t.Fatal(err)
	}
	addUsers(other)
	foreign, _, err := other.MintToken(imstest.TokenRequest{UserID: alice.id, ClientID: clientID})
	if err != nil {
		t.Fatal(err)
	}
	strangerKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	unknownKid := craftJWT(t, map[string]any{"alg": "RS256", "kid": "ims_na1-key-at-99", "x5u": "ims_na1-key-at-99.cer", "itt": "at"},
		payload, func(in []byte) []byte {
			sum := sha256.Sum256(in)
			sig, err := rsa.SignPKCS1v15(rand.Reader, strangerKey, crypto.SHA256, sum[:])
			if err != nil {
				t.Fatal(err)
			}
			return sig
		})
	algNone := craftJWT(t, map[string]any{"alg": "none", "kid": kid, "x5u": x5u, "itt": "at"}, payload,
		func([]byte) []byte { return nil })
	pub := imsPublicKey(t, w.ims.URL, kid)
	pkix, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	hs256 := func(secret []byte) string {
		return craftJWT(t, map[string]any{"alg": "HS256", "kid": kid, "x5u": x5u, "itt": "at"}, payload,
			func(in []byte) []byte {
				m := hmac.New(sha256.New, secret)
				m.Write(in)
				return m.Sum(nil)
			})
	}
	now := time.Now()
	expired := w.mintReq(t, imstest.TokenRequest{UserID: alice.id, ClientID: clientID, CreatedAt: now.Add(-2 * time.Hour), Lifetime: time.Hour})
	notYet := w.mintReq(t, imstest.TokenRequest{UserID: alice.id, ClientID: clientID, CreatedAt: now.Add(time.Hour)})
	refresh := w.mintReq(t, imstest.TokenRequest{UserID: alice.id, ClientID: clientID, Type: "refresh_token"})
	otherClient := w.mintReq(t, imstest.TokenRequest{UserID: alice.id, ClientID: "some-other-client"})
	otherCluster := w.mintReq(t, imstest.TokenRequest{UserID: alice.id, ClientID: clientID, Cluster: "ims-eu1"})

	spoof := map[string][]string{
		"X-Forwarded-User":   {"admin"},
		"x-forwarded-email":  {"admin@evil.example"},
		"X-Forwarded-Groups": {"administrators"},
		"X_Forwarded_User":   {"admin"},
		"x_forwarded_email":  {"admin@evil.example"},
		"X_FORWARDED_GROUPS": {"administrators"},
	}

	const (
		invalidRequest = "invalid_request"
		invalidToken   = "invalid_token"
	)
	for _, tc := range []struct {
		name   string
		path   string // default /content/dam/we-retail.json
		auth   string // Authorization value
		cookie string
		header map[string][]string
		status int
		code   string // RFC 6750 error code; "" when none applies
		reason string // X-Reason
		clears bool   // the answer deletes the cookie
		plain  bool   // not Gatehouse's answer: net/http's own
	}{
		{name: "no credentials", status: 401, reason: "NO_CREDENTIALS"},
		{name: "Bearer without a token", auth: "Bearer", status: 400, code: invalidRequest, reason: "INVALID_TOKEN"},
		{name: "Bearer and blanks", auth: "Bearer    ", status: 400, code: invalidRequest, reason: "INVALID_TOKEN"},
		{name: "Basic credentials", auth: "Basic dXNlcjpwYXNz", status: 401, code: invalidRequest, reason: "NO_CREDENTIALS"},
		{name: "two Authorization headers", header: map[string][]string{"Authorization": {"Bearer " + genuine, "Bearer " + genuine}},
			status: 400, code: invalidRequest, reason: "INVALID_TOKEN"},
		{name: "token with characters no token has", auth: "Bearer abc def!", status: 400, code: invalidRequest, reason: "INVALID_TOKEN"},
		{name: "not a JWT", auth: "Bearer not-a-jwt", status: 401, code: invalidToken, reason: "INVALID_TOKEN"},
		{name: "three parts of garbage", auth: "Bearer aaaa.bbbb.cccc", status: 401, code: invalidToken, reason: "INVALID_TOKEN"},
		{name: "signed by another IMS with the same kid", auth: "Bearer " + foreign, status: 401, code: invalidToken, reason: "INVALID_TOKEN"},
		{name: "signed by an unknown kid", auth: "Bearer " + unknownKid, status: 401, code: invalidToken, reason: "INVALID_TOKEN"},
		{name: "alg none", auth: "Bearer " + algNone, status: 401, code: invalidToken, reason: "INVALID_TOKEN"},
		{name: "HS256 keyed with the public key as PEM", auth: "Bearer " + hs256(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pkix})),
			status: 401, code: invalidToken, reason: "INVALID_TOKEN"},
		{name: "HS256 keyed with the public key as DER", auth: "Bearer " + hs256(pkix), status: 401, code: invalidToken, reason: "INVALID_TOKEN"},
		{name: "HS256 keyed with the PKCS#1 public key", auth: "Bearer " + hs256(pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(pub)})),
			status: 401, code: invalidToken, reason: "INVALID_TOKEN"},
		{name: "signature stripped", auth: "Bearer " + genuine[:strings.LastIndexByte(genuine, '.')+1], status: 401, code: invalidToken, reason: "INVALID_TOKEN"},
		{name: "expired", auth: "Bearer " + expired, status: 401, code: invalidToken, reason: "EXPIRED_TOKEN"},
		{name: "not yet valid", auth: "Bearer " + notYet, status: 401, code: invalidToken, reason: "INVALID_TOKEN"},
		{name: "refresh token", auth: "Bearer " + refresh, status: 401, code: invalidToken, reason: "INVALID_TOKEN"},
		{name: "client id not allowed", auth: "Bearer " + otherClient, status: 401, code: invalidToken, reason: "INVALID_TOKEN"},
		{name: "another IMS cluster", auth: "Bearer " + otherCluster, status: 401, code: invalidToken, reason: "INVALID_TOKEN"},
		{name: "10 KiB token", auth: "Bearer " + strings.Repeat("a", 10<<10), status: 401, code: invalidToken, reason: "INVALID_TOKEN"},
		{name: "garbage cookie", cookie: "garbage", status: 401, code: invalidToken, reason: "INVALID_TOKEN", clears: true},
		{name: "truncated cookie", cookie: cookieB[:len(cookieB)/2], status: 401, code: invalidToken, reason: "INVALID_TOKEN", clears: true},
		{name: "5 KiB cookie", cookie: strings.Repeat("A", 5<<10), status: 401, code: invalidToken, reason: "INVALID_TOKEN", clears: true},
		{name: "cookie replayed after logout", cookie: revoked, status: 401, code: invalidToken, reason: "INVALID_TOKEN", clears: true},
		{name: "spoofed identity headers without credentials", header: spoof, status: 401, reason: "NO_CREDENTIALS"},
		{name: "token in the query string", path: "/content/dam/we-retail.json?access_token=" + genuine, status: 401, reason: "NO_CREDENTIALS"},
		{name: "80 KiB of headers", header: map[string][]string{"X-Padding": {strings.Repeat("p", 80<<10)}},
			status: http.StatusRequestHeaderFieldsTooLarge, plain: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.path == "" {
				tc.path = "/content/dam/we-retail.json"
			}
			n, before := w.backend.Requests(), w.calls()
			r := p.do(t, request{path: tc.path, auth: tc.auth, cookie: tc.cookie, header: tc.header})
			if tc.plain {
				wantStatus(t, r, tc.status)
			} else {
				wantAuthError(t, r, tc.status, tc.code, tc.reason)
			}
			if tc.clears {
				r.wantClearedCookie(t)
			} else if len(r.loginCookies()) != 0 {
				t.Errorf("Set-Cookie %q on a refused request", r.header.Values("Set-Cookie"))
			}
			if got := w.backend.Requests() - n; got != 0 {
				t.Errorf("the upstream was reached %d times", got)
			}
			w.wantCalls(t, before, imsCalls{})
		})
	}

	// Spoofed identity headers on authenticated requests: the upstream sees
	// Gatehouse's headers only, under their canonical names.
	for _, tc := range []struct {
		name string
		req  request
	}{
		{"via cookie", request{path: whoami, cookie: cookieB, header: spoof}},
		{"via bearer", request{path: whoami, bearer: tokB, header: spoof}},
	} {
		t.Run("spoofed identity headers "+tc.name, func(t *testing.T) {
			wantUser(t, p.do(t, tc.req), bob)
			got := w.rec.last(t)
			want := map[string]string{
				"x-forwarded-user":   bob.id,
				"x-forwarded-email":  bob.email,
				"x-forwarded-groups": strings.Join(bob.groups, ","),
			}
			for name, values := range got {
				norm := strings.ToLower(strings.ReplaceAll(name, "_", "-"))
				v, ours := want[norm]
				switch {
				case !ours:
				case name != http.CanonicalHeaderKey(norm):
					t.Errorf("upstream got a client's identity header %q: %q", name, values)
				case len(values) != 1 || values[0] != v:
					t.Errorf("upstream got %s %q, want only %q", name, values, v)
				}
			}
			for norm := range want {
				if _, ok := got[http.CanonicalHeaderKey(norm)]; !ok {
					t.Errorf("upstream got no %s", http.CanonicalHeaderKey(norm))
				}
			}
		})
	}
}

// jwtParts decodes a token's header and returns its raw payload segment.
func jwtParts(t *testing.T, token string) (header map[string]any, payload string) {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("token has %d parts", len(parts))
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err == nil {
		err = json.Unmarshal(b, &header)
	}
	if err != nil {
		t.Fatalf("token header: %v", err)
	}
	return header, parts[1]
}

// craftJWT assembles a token from a header, a raw payload segment and a
// signing function.
func craftJWT(t *testing.T, header map[string]any, payload string, sign func([]byte) []byte) string {
	t.Helper()
	h, err := json.Marshal(header)
	if err != nil {
		t.Fatal(err)
	}
	input := base64.RawURLEncoding.EncodeToString(h) + "." + payload
	return input + "." + base64.RawURLEncoding.EncodeToString(sign([]byte(input)))
}

// imsPublicKey fetches the emulator's JWKS, as an attacker could, and
// returns the key with the given kid.
func imsPublicKey(t *testing.T, imsURL, kid string) *rsa.PublicKey {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(imsURL + "/ims/keys")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var set struct {
		Keys []struct{ Kid, N, E string }
	}
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
		t.Fatal(err)
	}
	for _, k := range set.Keys {
		if k.Kid != kid {
			continue
		}
		n, err1 := base64.RawURLEncoding.DecodeString(k.N)
		e, err2 := base64.RawURLEncoding.DecodeString(k.E)
		if err1 != nil || err2 != nil {
			t.Fatalf("JWKS key %q: bad n or e", kid)
		}
		return &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}
	}
	t.Fatalf("JWKS has no key %q", kid)
	return nil
}
