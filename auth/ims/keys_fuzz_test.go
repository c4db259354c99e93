package ims

import (
	"crypto/rsa"
	"encoding/base64"
	"encoding/pem"
	"testing"
)

// checkAcceptedKey fails t unless key meets the key-size policy.
func checkAcceptedKey(t *testing.T, what string, key *rsa.PublicKey) {
	t.Helper()
	if key == nil || key.N == nil {
		t.Fatalf("%s: accepted a nil key", what)
	}
	if bits := key.N.BitLen(); bits < minRSABits || bits > maxRSABits || key.N.Bit(0) == 0 {
		t.Fatalf("%s: accepted a modulus of %d bits (odd: %v)", what, bits, key.N.Bit(0) == 1)
	}
	if key.E < 3 || key.E%2 == 0 {
		t.Fatalf("%s: accepted exponent %d", what, key.E)
	}
}

// FuzzParseJWKS: whatever the key host sends, parseJWKS never panics,
// accepts only RSA keys of 2048 to 8192 bits under a non-empty kid, and
// each accepted key reads back the same from its own n and e.
func FuzzParseJWKS(f *testing.F) {
	a := &keyA().PublicKey
	x5c := map[string]any{"kty": "RSA", "kid": "x5c", "use": "sig", "x5c": []string{base64.StdEncoding.EncodeToString(certDER(f, keyB()))}}
	for _, doc := range [][]byte{
		jwksBody(f, jwkOf(testKid, a)),
		jwksBody(f, jwkOf(testKid, a), x5c, jwkOf("small", &key1024().PublicKey)),
		jwksBody(f, jwkOf(testKid, a), jwkOf(testKid, &keyB().PublicKey)),
		[]byte(`{"keys":[{"kty":"RSA","kid":7,"n":"AQAB","e":"AQAB"},null,{"kty":"EC"}]}`),
		[]byte(`{"keys":[{"kty":"RSA","kid":"k","n":"` + b64(a.N.Bytes()) + `","e":"AAAAAQAB"}]}`),
		[]byte(`{"keys":null}`), []byte(`null`), []byte(`[]`), []byte(`{"keys":{}}`), []byte(``),
	} {
		f.Add(doc)
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		keys, err := parseJWKS(doc, func(*jwk, error) {})
		if err != nil {
			if keys != nil {
				t.Fatalf("keys and error %v", err)
			}
			return
		}
		if len(keys) == 0 {
			t.Fatal("no error and no key")
		}
		for kid, key := range keys {
			if kid == "" {
				t.Fatal("accepted a key without a kid")
			}
			checkAcceptedKey(t, "JWKS", key)
			again, err := parseJWK(new(jwk), mustJSON(t, jwkOf(kid, key)))
			if err != nil || !again.Equal(key) {
				t.Fatalf("kid %q does not round-trip through n and e: %v", clip(kid), err)
			}
		}
	})
}

// FuzzParseCertificate: whatever the certificate host sends, PEM or DER,
// parseCertificate never panics, accepts only RSA keys of 2048 to 8192
// bits, and reads the same key from the DER and from its PEM wrapping.
func FuzzParseCertificate(f *testing.F) {
	der := certDER(f, keyA())
	f.Add(der)
	f.Add(certPEM(f, keyA()))
	f.Add(certPEM(f, key1024()))
	f.Add(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	f.Add(der[:len(der)/2])
	f.Add([]byte("-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		key, err := parseCertificate(b)
		if err != nil {
			if key != nil {
				t.Fatalf("key and error %v", err)
			}
			return
		}
		checkAcceptedKey(t, "certificate", key)
		// Whichever form was accepted, the other reads the same key.
		block, _ := pem.Decode(b)
		other := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: b})
		if block != nil {
			other = block.Bytes
		}
		again, err := parseCertificate(other)
		if err != nil || !again.Equal(key) {
			t.Fatalf("PEM and DER forms disagree: %v", err)
		}
	})
}
