package ims

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Keys are generated once per test binary: RSA generation is slow under
// the race detector.
var (
	keyA    = sync.OnceValue(func() *rsa.PrivateKey { return genKey(2048) })
	keyB    = sync.OnceValue(func() *rsa.PrivateKey { return genKey(2048) })
	keyC    = sync.OnceValue(func() *rsa.PrivateKey { return genKey(2048) })
	key1024 = sync.OnceValue(func() *rsa.PrivateKey { return genKey(1024) })
)

func genKey(bits int) *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		panic(err)
	}
	return k
}

// certDER returns a self-signed certificate for key.
func certDER(t testing.TB, key *rsa.PrivateKey) []byte {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "ims-na1 token signing"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func certPEM(t testing.TB, key *rsa.PrivateKey) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: certDER(t, key)})
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// jwkOf is the JWKS entry of pub, as IMS publishes it.
func jwkOf(kid string, pub *rsa.PublicKey) map[string]any {
	return map[string]any{
		"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256",
		"n": b64(pub.N.Bytes()), "e": b64(big.NewInt(int64(pub.E)).Bytes()),
	}
}

func jwksBody(t testing.TB, entries ...map[string]any) []byte {
	t.Helper()
	b, err := json.Marshal(map[string]any{"keys": entries})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// keyServer plays the JWKS endpoint (/ims/keys) and the certificate host
// (/keys/prod/<name>), counting hits.
type keyServer struct {
	*httptest.Server
	jwksHits atomic.Int64
	certHits atomic.Int64

	mu     sync.Mutex
	jwks   []byte
	status int // when not 0, every answer has this status
	certs  map[string][]byte
	delay  time.Duration
}

func newKeyServer(t testing.TB, jwks []byte) *keyServer {
	ks := &keyServer{jwks: jwks, certs: map[string][]byte{}}
	ks.Server = httptest.NewServer(http.HandlerFunc(ks.serve))
	t.Cleanup(ks.Close)
	return ks
}

func (ks *keyServer) serve(w http.ResponseWriter, r *http.Request) {
	ks.mu.Lock()
	jwks, status, delay := ks.jwks, ks.status, ks.delay
	cert, certOK := ks.certs[strings.TrimPrefix(r.URL.Path, "/keys/prod/")]
	ks.mu.Unlock()
	switch {
	case r.URL.Path == "/ims/keys":
		ks.jwksHits.Add(1)
	case strings.HasPrefix(r.URL.Path, "/keys/prod/"):
		ks.certHits.Add(1)
	}
	time.Sleep(delay)
	if status != 0 {
		w.WriteHeader(status)
		return
	}
	switch {
	case r.URL.Path == "/ims/keys":
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(jwks)
	case certOK:
		_, _ = w.Write(cert)
	default:
		http.NotFound(w, r)
	}
}

func (ks *keyServer) set(f func(ks *keyServer)) {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	f(ks)
}

func (ks *keyServer) jwksURL() string  { return ks.URL + "/ims/keys" }
func (ks *keyServer) certsURL() string { return ks.URL + "/keys/prod/" }

// fakeClock is a settable clock for rate-limit tests.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// signToken builds a compact JWT from header and claims, marshalled as
// given, signed with method and key.
func signToken(t testing.TB, method jwt.SigningMethod, key any, header, claims map[string]any) string {
	t.Helper()
	h, err := json.Marshal(header)
	if err != nil {
		t.Fatal(err)
	}
	c, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	signing := b64(h) + "." + b64(c)
	sig, err := method.Sign(signing, key)
	if err != nil {
		t.Fatal(err)
	}
	return signing + "." + b64(sig)
}

const (
	testKid     = "ims_na1-key-at-1"
	testX5U     = "ims_na1-key-at-1.cer"
	testCluster = "ims-na1"
	testClient  = "cc-europa-desktop_1_0"
	testUser    = "7F8F1A2B3C4D5E6F7A8B9C0D@AdobeID"
)

// imsHeader is the header of a real IMS access token.
func imsHeader() map[string]any {
	return map[string]any{"alg": "RS256", "x5u": testX5U, "kid": testKid, "itt": "at"}
}

// imsClaims is the payload of a real IMS access token created at created,
// with created_at and expires_in as decimal strings.
func imsClaims(created time.Time) map[string]any {
	ms := created.UnixMilli()
	return map[string]any{
		"id":         "1700000000000_2f6c0d0e-7a54-4b0e-9d1e-0c7d3f5b6a21_ue1",
		"type":       "access_token",
		"client_id":  testClient,
		"user_id":    testUser,
		"as":         testCluster,
		"aa_id":      "7F8F1A2B3C4D5E6F7A8B9C0D@adobe.com",
		"ctp":        0,
		"fg":         "X4ZQ2NFTXPP5AHUKHMQVYHQAXY======",
		"sid":        "1700000000000_a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d_ue1",
		"moi":        "5f0a0c1e",
		"pac":        "cc-europa-desktop_1_0_ue1",
		"rtid":       "1700000000000_9e8d7c6b-5a4f-4e3d-2c1b-0a9f8e7d6c5b_ue1",
		"rtea":       "1701209600000",
		"scope":      "AdobeID,openid,read_organizations,additional_info.projectedProductContext",
		"created_at": strconv.FormatInt(ms, 10),
		"expires_in": "86400000",
	}
}

// signRaw signs an arbitrary payload under an already encoded header, for
// payloads json.Marshal would not produce.
func signRaw(t testing.TB, header string, payload []byte) string {
	t.Helper()
	signing := header + "." + b64(payload)
	sig, err := jwt.SigningMethodRS256.Sign(signing, keyA())
	if err != nil {
		t.Fatal(err)
	}
	return signing + "." + b64(sig)
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// clockedKeySet returns a key set of cfg on a fake clock, loaded.
func clockedKeySet(t *testing.T, cfg KeySetConfig) (*KeySet, *fakeClock) {
	t.Helper()
	clk := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	k, err := NewKeySet(cfg)
	if err != nil {
		t.Fatal(err)
	}
	k.now = clk.Now
	if err := k.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	return k, clk
}
