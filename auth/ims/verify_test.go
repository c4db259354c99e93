package ims

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// verifyNow is the verifiers' clock in these tests.
var verifyNow = time.Date(2024, 11, 5, 10, 0, 0, 0, time.UTC)

const x5uOnly = "ims_na1-key-at-2.cer" // served as a certificate, in no JWKS

// newTestVerifier returns a verifier over a key server that publishes keyA
// as testKid in its JWKS and keyB as the certificate x5uOnly.
func newTestVerifier(t testing.TB, clients ...string) (*Verifier, *keyServer) {
	t.Helper()
	srv := newKeyServer(t, jwksBody(t, jwkOf(testKid, &keyA().PublicKey)))
	srv.certs[x5uOnly] = certPEM(t, keyB())
	ks, err := NewKeySet(KeySetConfig{JWKSURL: srv.jwksURL(), CertsURL: srv.certsURL()})
	if err != nil {
		t.Fatal(err)
	}
	if err := ks.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	v, err := NewVerifier(VerifierConfig{
		Keys:      ks,
		Cluster:   testCluster,
		ClientIDs: clients,
		Now:       func() time.Time { return verifyNow },
	})
	if err != nil {
		t.Fatal(err)
	}
	return v, srv
}

func TestVerify(t *testing.T) {
	v, _ := newTestVerifier(t, testClient, "InDesignAem2")
	closed, _ := newTestVerifier(t) // empty allow-list

	pubDER, err := x509.MarshalPKIXPublicKey(&keyA().PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}

	created := verifyNow.Add(-time.Hour)
	// tok signs the IMS header and claims, changed by edit, with keyA.
	tok := func(edit func(h, c map[string]any)) string {
		h, c := imsHeader(), imsClaims(created)
		if edit != nil {
			edit(h, c)
		}
		return signToken(t, jwt.SigningMethodRS256, keyA(), h, c)
	}
	withAlg := func(m jwt.SigningMethod, key any) string {
		h, c := imsHeader(), imsClaims(created)
		h["alg"] = m.Alg()
		return signToken(t, m, key, h, c)
	}
	valid := tok(nil)
	parts := strings.Split(valid, ".")
	otherPayload, _ := json.Marshal(func() map[string]any {
		c := imsClaims(created)
		c["user_id"] = "SOMEONE-ELSE@AdobeID"
		return c
	}())
	noneToken := func() string {
		h, c := imsHeader(), imsClaims(created)
		h["alg"] = "none"
		s, err := jwt.SigningMethodNone.Sign("", jwt.UnsafeAllowNoneSignatureType)
		if err != nil {
			t.Fatal(err)
		}
		hb, _ := json.Marshal(h)
		cb, _ := json.Marshal(c)
		return b64(hb) + "." + b64(cb) + "." + b64(s)
	}()

	tests := []struct {
		name     string
		v        *Verifier
		token    string
		want     error // nil: valid
		wantUser string
	}{
		{name: "valid, times as strings", token: valid},
		{name: "valid, times as numbers", token: tok(func(h, c map[string]any) {
			c["created_at"] = created.UnixMilli()
			c["expires_in"] = 86400000
		})},
		{name: "valid, other allowed client", token: tok(func(h, c map[string]any) { c["client_id"] = "InDesignAem2" })},
		{name: "valid, exp only", token: tok(func(h, c map[string]any) {
			delete(c, "created_at")
			delete(c, "expires_in")
			c["exp"] = verifyNow.Add(time.Hour).Unix()
		})},
		{name: "valid, header in another order without itt", token: tok(func(h, c map[string]any) { delete(h, "itt") })},
		{name: "expired", want: ErrExpired, token: tok(func(h, c map[string]any) {
			c["created_at"] = strconv.FormatInt(verifyNow.Add(-25*time.Hour).UnixMilli(), 10)
		})},
		{name: "expired by exp", want: ErrExpired, token: tok(func(h, c map[string]any) {
			c["exp"] = verifyNow.Add(-time.Hour).Unix()
		})},
		{name: "expired within skew", token: tok(func(h, c map[string]any) {
			c["created_at"] = strconv.FormatInt(verifyNow.Add(-24*time.Hour-30*time.Second).UnixMilli(), 10)
		})},
		{name: "not yet valid", want: ErrNotYetValid, token: tok(func(h, c map[string]any) {
			c["created_at"] = strconv.FormatInt(verifyNow.Add(5*time.Minute).UnixMilli(), 10)
		})},
		{name: "not yet valid by nbf", want: ErrNotYetValid, token: tok(func(h, c map[string]any) {
			c["nbf"] = verifyNow.Add(5 * time.Minute).Unix()
		})},
		{name: "created within skew ahead", token: tok(func(h, c map[string]any) {
			c["created_at"] = strconv.FormatInt(verifyNow.Add(30*time.Second).UnixMilli(), 10)
		})},
		{name: "refresh token", want: ErrWrongType, token: tok(func(h, c map[string]any) { c["type"] = TypeRefreshToken })},
		{name: "no type", want: ErrWrongType, token: tok(func(h, c map[string]any) { delete(c, "type") })},
		{name: "wrong cluster", want: ErrWrongCluster, token: tok(func(h, c map[string]any) { c["as"] = "ims-na1-stg1" })},
		{name: "client not allowed", want: ErrClientNotAllowed, token: tok(func(h, c map[string]any) { c["client_id"] = "some-web-app" })},
		{name: "no client id", want: ErrClientNotAllowed, token: tok(func(h, c map[string]any) { delete(c, "client_id") })},
		{name: "empty allow-list refuses all", v: closed, want: ErrClientNotAllowed, token: valid},
		{name: "alg none", want: ErrAlgorithm, token: noneToken},
		{name: "alg missing", want: ErrAlgorithm, token: tok(func(h, c map[string]any) { delete(h, "alg") })},
		{name: "alg unknown", want: ErrAlgorithm, token: tok(func(h, c map[string]any) { h["alg"] = "XS999" })},
		{name: "HS256 with the public key PEM as secret", want: ErrAlgorithm, token: withAlg(jwt.SigningMethodHS256, pubPEM)},
		{name: "HS256 with the public key DER as secret", want: ErrAlgorithm, token: withAlg(jwt.SigningMethodHS256, pubDER)},
		{name: "RS384", want: ErrAlgorithm, token: withAlg(jwt.SigningMethodRS384, keyA())},
		{name: "PS256", want: ErrAlgorithm, token: withAlg(jwt.SigningMethodPS256, keyA())},
		{name: "ES256", want: ErrAlgorithm, token: withAlg(jwt.SigningMethodES256, ecKey)},
		{name: "unknown kid", want: ErrUnknownKey, token: tok(func(h, c map[string]any) {
			h["kid"] = "ims_na1-key-at-9"
			delete(h, "x5u")
		})},
		{name: "key by x5u when no kid", token: func() string {
			h, c := imsHeader(), imsClaims(created)
			delete(h, "kid")
			h["x5u"] = x5uOnly
			return signToken(t, jwt.SigningMethodRS256, keyB(), h, c)
		}()},
		{name: "key by x5u when kid unknown", token: func() string {
			h, c := imsHeader(), imsClaims(created)
			h["kid"], h["x5u"] = "ims_na1-key-at-2", x5uOnly
			return signToken(t, jwt.SigningMethodRS256, keyB(), h, c)
		}()},
		{name: "x5u a URL", want: ErrMalformed, token: tok(func(h, c map[string]any) {
			delete(h, "kid")
			h["x5u"] = "https://evil.example/x.cer"
		})},
		{name: "kid not a string", want: ErrMalformed, token: tok(func(h, c map[string]any) { h["kid"] = 7 })},
		{name: "no key named", want: ErrUnknownKey, token: tok(func(h, c map[string]any) {
			delete(h, "kid")
			delete(h, "x5u")
		})},
		{name: "tampered payload", want: ErrBadSignature, token: parts[0] + "." + b64(otherPayload) + "." + parts[2]},
		{name: "signed by another key under a known kid", want: ErrBadSignature, token: func() string {
			return signToken(t, jwt.SigningMethodRS256, keyC(), imsHeader(), imsClaims(created))
		}()},
		{name: "signature cut", want: ErrBadSignature, token: parts[0] + "." + parts[1] + "." + parts[2][:20]},
		{name: "empty", want: ErrMalformed, token: ""},
		{name: "abc", want: ErrMalformed, token: "abc"},
		{name: "a.b", want: ErrMalformed, token: "a.b"},
		{name: "a.b.c.d", want: ErrMalformed, token: "a.b.c.d"},
		{name: "a.b.c", want: ErrMalformed, token: "a.b.c"},
		{name: "9 KiB", want: ErrMalformed, token: parts[0] + "." + strings.Repeat("A", 9<<10) + "." + parts[2]},
		// Claims are read only once the signature holds: an unsigned
		// change is a bad signature whatever it contains.
		{name: "payload not JSON, not signed", want: ErrBadSignature, token: parts[0] + "." + b64([]byte("not json")) + "." + parts[2]},
		{name: "payload not JSON", want: ErrMalformed, token: signRaw(t, parts[0], []byte("not json"))},
		{name: "payload a JSON array", want: ErrMalformed, token: signRaw(t, parts[0], []byte(`["user_id"]`))},
		{name: "payload JSON null", want: ErrMalformed, token: signRaw(t, parts[0], []byte(` null`))},
		{name: "payload after whitespace", token: signRaw(t, parts[0], append([]byte("\n "), mustJSON(t, imsClaims(created))...))},
		{name: "claim named twice", want: ErrMalformed, token: signRaw(t, parts[0],
			[]byte(strings.Replace(string(mustJSON(t, imsClaims(created))), `"user_id":`, `"user_id":"admin@AdobeID","user_id":`, 1)))},
		{name: "claim names differ in case only", want: ErrMalformed, token: tok(func(h, c map[string]any) {
			c["User_ID"] = c["user_id"] // encoding/json would read it as user_id
			delete(c, "user_id")
		})},
		{name: "header crit", want: ErrMalformed, token: tok(func(h, c map[string]any) { h["crit"] = []string{"exp"} })},
		{name: "header not JSON", want: ErrMalformed, token: b64([]byte("{alg")) + "." + parts[1] + "." + parts[2]},
		{name: "expires_in not a number", want: ErrMalformed, token: tok(func(h, c map[string]any) { c["expires_in"] = "soon" })},
		{name: "missing user_id", want: ErrMalformed, token: tok(func(h, c map[string]any) { delete(c, "user_id") })},
		{name: "no expiry claims", want: ErrNoExpiry, token: tok(func(h, c map[string]any) {
			delete(c, "created_at")
			delete(c, "expires_in")
		})},
		{name: "expires_in without created_at", want: ErrNoExpiry, token: tok(func(h, c map[string]any) { delete(c, "created_at") })},
	}
	sentinels := []error{ErrMalformed, ErrAlgorithm, ErrUnknownKey, ErrKeysUnavailable, ErrBadSignature,
		ErrWrongType, ErrWrongCluster, ErrClientNotAllowed, ErrNoExpiry, ErrExpired, ErrNotYetValid}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vv := tt.v
			if vv == nil {
				vv = v
			}
			c, err := vv.Verify(context.Background(), tt.token)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				if c.UserID != testUser || c.Type != TypeAccessToken || c.Cluster != testCluster {
					t.Errorf("claims %+v", c)
				}
				if c.ExpiresAt().IsZero() {
					t.Error("no expiry in the claims returned")
				}
				return
			}
			if c != nil {
				t.Errorf("claims returned with an error")
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("err %v, want %v", err, tt.want)
			}
			for _, s := range sentinels {
				if s != tt.want && errors.Is(err, s) {
					t.Errorf("err %v is also %v", err, s)
				}
			}
			if tt.token != "" && len(tt.token) > 10 && strings.Contains(err.Error(), tt.token) {
				t.Errorf("the token appears in the error")
			}
			if strings.Count(tt.token, ".") == 2 && len(tt.token) > 40 {
				if sig := tt.token[strings.LastIndexByte(tt.token, '.')+1:]; len(sig) > 10 && strings.Contains(err.Error(), sig) {
					t.Errorf("the signature appears in the error")
				}
			}
		})
	}
}

func TestVerifyClaimsDecoded(t *testing.T) {
	v, _ := newTestVerifier(t, testClient)
	created := verifyNow.Add(-time.Hour)
	c, err := v.Verify(context.Background(), signToken(t, jwt.SigningMethodRS256, keyA(), imsHeader(), imsClaims(created)))
	if err != nil {
		t.Fatal(err)
	}
	want := created.Add(24 * time.Hour).UnixMilli()
	if got := c.ExpiresAt().UnixMilli(); got != want {
		t.Errorf("ExpiresAt %d, want %d", got, want)
	}
	if c.ClientID != testClient || c.Scope == "" || c.ID == "" {
		t.Errorf("claims %+v", c)
	}
}

func TestVerifyBadSignatureNeverFetches(t *testing.T) {
	v, _ := newTestVerifier(t, testClient)
	before := v.keys.Fetches()
	h, c := imsHeader(), imsClaims(verifyNow.Add(-time.Hour))
	forged := signToken(t, jwt.SigningMethodRS256, keyC(), h, c)
	for range 100 {
		if _, err := v.Verify(context.Background(), forged); !errors.Is(err, ErrBadSignature) {
			t.Fatalf("err %v, want ErrBadSignature", err)
		}
	}
	if n := v.keys.Fetches() - before; n != 0 {
		t.Errorf("%d fetches for a known kid with a bad signature", n)
	}
}

func TestVerifyKeysUnavailable(t *testing.T) {
	srv := newKeyServer(t, nil)
	srv.Close()
	ks, err := NewKeySet(KeySetConfig{JWKSURL: srv.jwksURL()})
	if err != nil {
		t.Fatal(err)
	}
	v, err := NewVerifier(VerifierConfig{Keys: ks, Cluster: testCluster, ClientIDs: []string{testClient}, Now: func() time.Time { return verifyNow }})
	if err != nil {
		t.Fatal(err)
	}
	tok := signToken(t, jwt.SigningMethodRS256, keyA(), imsHeader(), imsClaims(verifyNow.Add(-time.Hour)))
	if _, err := v.Verify(context.Background(), tok); !errors.Is(err, ErrKeysUnavailable) || errors.Is(err, ErrUnknownKey) {
		t.Fatalf("err %v, want ErrKeysUnavailable only", err)
	}
}

func TestNewVerifierConfig(t *testing.T) {
	ks, err := NewKeySet(KeySetConfig{JWKSURL: "https://ims-na1.adobelogin.com/ims/keys"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name    string
		cfg     VerifierConfig
		wantErr string
	}{
		{"ok", VerifierConfig{Keys: ks, Cluster: "ims-na1"}, ""},
		{"no keys", VerifierConfig{Cluster: "ims-na1"}, "Keys"},
		{"no cluster", VerifierConfig{Keys: ks}, "Cluster"},
		{"negative skew", VerifierConfig{Keys: ks, Cluster: "ims-na1", ClockSkew: -time.Second}, "ClockSkew"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			v, err := NewVerifier(tt.cfg)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				if v.skew != defaultClockSkew || v.now == nil {
					t.Errorf("defaults not applied")
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err %v, want one naming %s", err, tt.wantErr)
			}
		})
	}
}

// BenchmarkVerify is the hot path: local RS256 verification of a real-shaped
// IMS access token whose key is held.
func BenchmarkVerify(b *testing.B) {
	v, _ := newTestVerifier(b, testClient)
	tok := signToken(b, jwt.SigningMethodRS256, keyA(), imsHeader(), imsClaims(verifyNow.Add(-time.Hour)))
	ctx := context.Background()
	if _, err := v.Verify(ctx, tok); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(tok)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(ctx, tok); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyRejectForged measures the cost of refusing a token signed
// by the wrong key: the same RSA work, no fetch.
func BenchmarkVerifyRejectForged(b *testing.B) {
	v, _ := newTestVerifier(b, testClient)
	tok := signToken(b, jwt.SigningMethodRS256, keyC(), imsHeader(), imsClaims(verifyNow.Add(-time.Hour)))
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(ctx, tok); !errors.Is(err, ErrBadSignature) {
			b.Fatal(err)
		}
	}
}

func TestEssentialKeepsWhatIsChecked(t *testing.T) {
	exp, nbf := int64(1_900_000_000), int64(1_700_000_000)
	c := &Claims{ID: "id", Type: TypeAccessToken, ClientID: "client", UserID: "u@AdobeID", Cluster: "ims-na1",
		Scope: "openid", CreatedAt: 1_800_000_000_000, ExpiresIn: 86_400_000, Exp: &exp, NotBefore: &nbf}
	e := c.Essential()
	if e.Type != c.Type || e.ClientID != c.ClientID || e.UserID != c.UserID || e.Cluster != c.Cluster {
		t.Errorf("Essential() = %+v: lost a checked claim of %+v", e, c)
	}
	if !e.ExpiresAt().Equal(c.ExpiresAt()) || !e.ValidFrom().Equal(c.ValidFrom()) {
		t.Errorf("validity changed: %v–%v, want %v–%v", e.ValidFrom(), e.ExpiresAt(), c.ValidFrom(), c.ExpiresAt())
	}
	if e.Scope != "" || e.ID != "" {
		t.Errorf("Essential() = %+v: kept claims nothing reads after validation", e)
	}
}
