package rs256

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"math/big"
	mrand "math/rand/v2"
	"sync"
	"testing"
)

// Keys are slow to generate; each size is made once per test binary.
var (
	keysOnce sync.Once
	keys     map[int]*rsa.PrivateKey
)

func testKey(t testing.TB, bits int) *rsa.PrivateKey {
	t.Helper()
	keysOnce.Do(func() {
		keys = map[int]*rsa.PrivateKey{}
		for _, b := range []int{2048, 3072, 4096} {
			k, err := rsa.GenerateKey(rand.Reader, b)
			if err != nil {
				panic(err)
			}
			keys[b] = k
		}
	})
	return keys[bits]
}

// rawSign returns em^d mod n as a modulus-sized signature: any encoded
// message, well-formed or not, signed with the private key.
func rawSign(priv *rsa.PrivateKey, em []byte) []byte {
	m := new(big.Int).SetBytes(em)
	s := new(big.Int).Exp(m, priv.D, priv.N)
	return s.FillBytes(make([]byte, priv.Size()))
}

// stdVerify is the reference: crypto/rsa on the same input.
func stdVerify(pub *rsa.PublicKey, input string, sig []byte) bool {
	h := sha256.Sum256([]byte(input))
	return rsa.VerifyPKCS1v15(pub, crypto.SHA256, h[:], sig) == nil
}

// wellFormedEM is the correct encoding of input's SHA-256 digest for priv.
func wellFormedEM(priv *rsa.PrivateKey, input string) []byte {
	h := sha256.Sum256([]byte(input))
	t := append(append([]byte{}, digestInfoSHA256...), h[:]...)
	em := make([]byte, priv.Size())
	em[1] = 1
	for i := 2; i < len(em)-len(t)-1; i++ {
		em[i] = 0xff
	}
	copy(em[len(em)-len(t):], t)
	return em
}

// TestVerifyAgreesWithCryptoRSA runs each case through Key.Verify and
// crypto/rsa.VerifyPKCS1v15 and wants the same verdict, and the verdict
// the case expects. The malformed encodings are the classic forgeries:
// a signature over a different hash, garbage after or inside the padding,
// too little padding, a wrong block type.
func TestVerifyAgreesWithCryptoRSA(t *testing.T) {
	const input = "eyJhbGciOiJSUzI1NiJ9.eyJ1c2VyX2lkIjoiYSJ9"
	for _, bits := range []int{2048, 3072, 4096} {
		priv := testKey(t, bits)
		h := sha256.Sum256([]byte(input))
		good, err := rsa.SignPKCS1v15(rand.Reader, priv, crypto.SHA256, h[:])
		if err != nil {
			t.Fatal(err)
		}
		h384 := sha512.Sum384([]byte(input))
		sig384, _ := rsa.SignPKCS1v15(rand.Reader, priv, crypto.SHA384, h384[:])
		h1 := sha1.Sum([]byte(input))
		sig1, _ := rsa.SignPKCS1v15(rand.Reader, priv, crypto.SHA1, h1[:])
		em := wellFormedEM(priv, input)
		mutate := func(f func(em []byte) []byte) []byte {
			return rawSign(priv, f(bytes.Clone(em)))
		}
		flip := func(i int) []byte { s := bytes.Clone(good); s[i] ^= 0x01; return s }
		n := priv.N.FillBytes(make([]byte, priv.Size()))
		nPlus := new(big.Int).Add(new(big.Int).SetBytes(good), priv.N)

		cases := []struct {
			name  string
			input string
			sig   []byte
			ok    bool
		}{
			{"valid", input, good, true},
			{"valid, encoded by hand", input, rawSign(priv, em), true},
			{"other input", input + "x", good, false},
			{"first byte flipped", input, flip(0), false},
			{"last byte flipped", input, flip(len(good) - 1), false},
			{"middle byte flipped", input, flip(len(good) / 2), false},
			{"one byte short", input, good[1:], false},
			{"leading zero added", input, append([]byte{0}, good...), false},
			{"empty", input, nil, false},
			{"all zero", input, make([]byte, len(good)), false},
			{"equal to the modulus", input, n, false},
			{"plus the modulus", input, nPlus.Bytes(), false},
			{"SHA-384 signature", input, sig384, false},
			{"SHA-1 signature", input, sig1, false},
			{"block type 2", input, mutate(func(em []byte) []byte { em[1] = 2; return em }), false},
			{"non-zero first byte", input, mutate(func(em []byte) []byte { em[0] = 1; return em })[:], false},
			{"padding byte not 0xFF", input, mutate(func(em []byte) []byte { em[10] = 0xfe; return em }), false},
			{"no zero after padding", input, mutate(func(em []byte) []byte {
				em[len(em)-len(digestInfoSHA256)-sha256.Size-1] = 0xff
				return em
			}), false},
			{"garbage in place of padding (short padding)", input, mutate(func(em []byte) []byte {
				// 0x00 0x01 0xFF×8 0x00 DigestInfo H, then garbage: the
				// Bleichenbacher 2006 forgery shape.
				t := em[len(em)-len(digestInfoSHA256)-sha256.Size:]
				out := make([]byte, len(em))
				out[1] = 1
				for i := 2; i < 10; i++ {
					out[i] = 0xff
				}
				copy(out[11:], t)
				for i := 11 + len(t); i < len(out); i++ {
					out[i] = 0x5a
				}
				return out
			}), false},
			{"wrong DigestInfo OID", input, mutate(func(em []byte) []byte {
				em[len(em)-sha256.Size-5] ^= 0x01
				return em
			}), false},
			{"DigestInfo length byte", input, mutate(func(em []byte) []byte {
				em[len(em)-sha256.Size-1] = 0x21
				return em
			}), false},
		}
		key, err := NewKey(&priv.PublicKey)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range cases {
			got := key.Verify(c.input, c.sig) == nil
			ref := stdVerify(&priv.PublicKey, c.input, c.sig)
			if got != c.ok || ref != c.ok {
				t.Errorf("%d bits, %s: Verify %v, crypto/rsa %v, want %v", bits, c.name, got, ref, c.ok)
			}
			if !got && key.Verify(c.input, c.sig) != ErrVerification {
				t.Errorf("%d bits, %s: error is not ErrVerification", bits, c.name)
			}
		}
	}
}

// TestVerifyRandomized checks many random inputs and single-bit changes of
// their signatures against crypto/rsa.
func TestVerifyRandomized(t *testing.T) {
	priv := testKey(t, 2048)
	key, err := NewKey(&priv.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	r := mrand.New(mrand.NewPCG(1, 2))
	for i := range 200 {
		in := make([]byte, r.IntN(2000))
		for j := range in {
			in[j] = byte(r.UintN(256))
		}
		h := sha256.Sum256(in)
		sig, err := rsa.SignPKCS1v15(rand.Reader, priv, crypto.SHA256, h[:])
		if err != nil {
			t.Fatal(err)
		}
		if err := key.Verify(string(in), sig); err != nil {
			t.Fatalf("input %d: valid signature refused: %v", i, err)
		}
		bit := r.IntN(len(sig) * 8)
		sig[bit/8] ^= 1 << (bit % 8)
		if got, ref := key.Verify(string(in), sig) == nil, stdVerify(&priv.PublicKey, string(in), sig); got || ref {
			t.Fatalf("input %d, bit %d flipped: Verify %v, crypto/rsa %v, want both false", i, bit, got, ref)
		}
	}
}

func TestNewKeyRefuses(t *testing.T) {
	priv := testKey(t, 2048)
	even := new(big.Int).Add(priv.N, big.NewInt(1))
	small, _ := new(big.Int).SetString("c8a2069182394a2ab7c3f4b0a12e47d65a8ea3cdb2cb8b5b9e2f6a6b1f0c6f0b", 16) // 256 bits, odd
	cases := []struct {
		name string
		pub  *rsa.PublicKey
	}{
		{"nil", nil},
		{"nil modulus", &rsa.PublicKey{E: 65537}},
		{"even modulus", &rsa.PublicKey{N: even, E: 65537}},
		{"negative modulus", &rsa.PublicKey{N: new(big.Int).Neg(priv.N), E: 65537}},
		{"exponent 1", &rsa.PublicKey{N: priv.N, E: 1}},
		{"even exponent", &rsa.PublicKey{N: priv.N, E: 65536}},
		{"modulus too small for SHA-256", &rsa.PublicKey{N: small, E: 65537}},
	}
	for _, c := range cases {
		if k, err := NewKey(c.pub); err == nil {
			t.Errorf("%s: NewKey = %v, want an error", c.name, k)
		}
	}
	if k, err := NewKey(&priv.PublicKey); err != nil || k.Public() != &priv.PublicKey {
		t.Fatalf("NewKey(valid) = %v, %v", k, err)
	}
}

// FuzzVerify wants Key.Verify and crypto/rsa to agree on any signature
// bytes and input: the seeds are a valid signature and its input.
func FuzzVerify(f *testing.F) {
	priv := testKey(f, 2048)
	key, err := NewKey(&priv.PublicKey)
	if err != nil {
		f.Fatal(err)
	}
	const input = "header.payload"
	h := sha256.Sum256([]byte(input))
	good, _ := rsa.SignPKCS1v15(rand.Reader, priv, crypto.SHA256, h[:])
	f.Add(input, good)
	f.Add(input, good[:len(good)-1])
	f.Add("", []byte{})
	f.Fuzz(func(t *testing.T, in string, sig []byte) {
		if got, ref := key.Verify(in, sig) == nil, stdVerify(&priv.PublicKey, in, sig); got != ref {
			t.Fatalf("Verify %v, crypto/rsa %v", got, ref)
		}
	})
}

func BenchmarkVerify(b *testing.B) {
	priv := testKey(b, 2048)
	input := string(bytes.Repeat([]byte("a"), 1200))
	h := sha256.Sum256([]byte(input))
	sig, _ := rsa.SignPKCS1v15(rand.Reader, priv, crypto.SHA256, h[:])
	key, err := NewKey(&priv.PublicKey)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("rs256.Key", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if key.Verify(input, sig) != nil {
				b.Fatal("refused")
			}
		}
	})
	b.Run("crypto/rsa", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			h := sha256.Sum256([]byte(input))
			if rsa.VerifyPKCS1v15(&priv.PublicKey, crypto.SHA256, h[:], sig) != nil {
				b.Fatal("refused")
			}
		}
	})
}
