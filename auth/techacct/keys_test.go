package techacct_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-proxy/gatehouse/auth/techacct"
)

func TestCreateKeyPair(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keys") // missing: created
	before := time.Now().Truncate(time.Second)
	keyPath, certPath, err := techacct.CreateKeyPair(dir, 30, "/CN=gatehouse/O=Example Corp", false)
	if err != nil {
		t.Fatal(err)
	}
	if keyPath != filepath.Join(dir, "private.key") || certPath != filepath.Join(dir, "certificate_pub.crt") {
		t.Errorf("paths %s %s", keyPath, certPath)
	}
	for _, f := range []struct {
		path string
		mode fs.FileMode
	}{{dir, 0o700 | fs.ModeDir}, {keyPath, 0o600}, {certPath, 0o644}} {
		fi, err := os.Stat(f.path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode() != f.mode {
			t.Errorf("%s: mode %v, want %v", f.path, fi.Mode(), f.mode)
		}
	}

	keyPEM, _ := os.ReadFile(keyPath)
	block, _ := pem.Decode(keyPEM)
	if block == nil || block.Type != "PRIVATE KEY" {
		t.Fatalf("key file: %q", keyPEM)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	key, ok := k.(*rsa.PrivateKey)
	if !ok || key.N.BitLen() != 2048 {
		t.Fatalf("key %T", k)
	}

	certPEM, _ := os.ReadFile(certPath)
	block, _ = pem.Decode(certPEM)
	if block == nil || block.Type != "CERTIFICATE" {
		t.Fatalf("certificate file: %q", certPEM)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if cert.Subject.CommonName != "gatehouse" || !slices.Equal(cert.Subject.Organization, []string{"Example Corp"}) {
		t.Errorf("subject %v", cert.Subject)
	}
	if cert.NotBefore.Before(before) || cert.NotBefore.After(time.Now()) || cert.NotAfter.Sub(cert.NotBefore) != 30*24*time.Hour {
		t.Errorf("validity %v to %v", cert.NotBefore, cert.NotAfter)
	}
	if !key.PublicKey.Equal(cert.PublicKey) {
		t.Error("the certificate is not of the key")
	}
	if err := cert.CheckSignature(cert.SignatureAlgorithm, cert.RawTBSCertificate, cert.Signature); err != nil {
		t.Errorf("not self-signed: %v", err)
	}

	t.Run("refuses to overwrite", func(t *testing.T) {
		_, _, err := techacct.CreateKeyPair(dir, 30, "", false)
		if !errors.Is(err, fs.ErrExist) || !strings.Contains(err.Error(), keyPath) {
			t.Errorf("err %v, want fs.ErrExist naming %s", err, keyPath)
		}
		if b, _ := os.ReadFile(keyPath); !bytes.Equal(b, keyPEM) {
			t.Error("the key was overwritten")
		}
		// Only the certificate there: still refused, the key not written.
		other := t.TempDir()
		if err := os.WriteFile(filepath.Join(other, "certificate_pub.crt"), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, _, err := techacct.CreateKeyPair(other, 30, "", false); !errors.Is(err, fs.ErrExist) {
			t.Errorf("err %v", err)
		}
		if _, err := os.Stat(filepath.Join(other, "private.key")); !errors.Is(err, fs.ErrNotExist) {
			t.Error("a key was written next to the existing certificate")
		}
	})

	t.Run("force", func(t *testing.T) {
		if err := os.Chmod(keyPath, 0o644); err != nil {
			t.Fatal(err)
		}
		k2, c2, err := techacct.CreateKeyPair(dir, 0, "CN=gatehouse,O=Example", true)
		if err != nil {
			t.Fatal(err)
		}
		if b, _ := os.ReadFile(k2); bytes.Equal(b, keyPEM) {
			t.Error("the key was not replaced")
		}
		if fi, _ := os.Stat(k2); fi.Mode() != 0o600 {
			t.Errorf("replaced key mode %v", fi.Mode())
		}
		loaded, err := techacct.LoadPrivateKey(k2)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := os.ReadFile(c2)
		block, _ := pem.Decode(b)
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		if !loaded.PublicKey.Equal(cert.PublicKey) || cert.NotAfter.Sub(cert.NotBefore) != 365*24*time.Hour {
			t.Errorf("replaced pair: key matches %v, validity %v", loaded.PublicKey.Equal(cert.PublicKey), cert.NotAfter.Sub(cert.NotBefore))
		}
		entries, _ := os.ReadDir(dir)
		if len(entries) != 2 {
			t.Errorf("%d files in the directory, want 2 (no temporary files left)", len(entries))
		}
	})

	t.Run("bad arguments", func(t *testing.T) {
		for _, tc := range []struct {
			days    int
			subject string
		}{{-1, ""}, {1, "CN"}, {1, "/XX=y"}, {1, "CN=a,"}, {1, "/"}} {
			if _, _, err := techacct.CreateKeyPair(t.TempDir(), tc.days, tc.subject, false); err == nil {
				t.Errorf("days %d subject %q: no error", tc.days, tc.subject)
			}
		}
	})
}

func TestCreatedCertificateWorksWithIMS(t *testing.T) {
	s := newEmulator(t, 0)
	keyPath, certPath, err := techacct.CreateKeyPair(t.TempDir(), 0, "", false)
	if err != nil {
		t.Fatal(err)
	}
	key, err := techacct.LoadPrivateKey(keyPath)
	if err != nil {
		t.Fatal(err)
	}
	cfg := jwtConfig(s)
	cfg.PrivateKey = key
	src := newSource(t, cfg)
	if _, err := src.Token(context.Background()); err == nil {
		t.Fatal("a token before the certificate was registered")
	}
	certPEM, _ := os.ReadFile(certPath)
	if err := s.RegisterCertificate(clientID, certPEM); err != nil {
		t.Fatal(err)
	}
	src = newSource(t, cfg) // the first one backs off after its failure
	tok, err := src.Token(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if got := callAPI(t, s, src, tok); got != 200 {
		t.Errorf("test API answered %d", got)
	}
}

func TestParseSubject(t *testing.T) {
	for _, tc := range []struct {
		in     string
		cn     string
		org    []string
		ou     []string
		c      []string
		hasErr bool
	}{
		{in: "/CN=gatehouse/O=Example", cn: "gatehouse", org: []string{"Example"}},
		{in: "CN=gatehouse,O=Example", cn: "gatehouse", org: []string{"Example"}},
		{in: "CN=gatehouse, O=Example, OU=Ops, C=DE", cn: "gatehouse", org: []string{"Example"}, ou: []string{"Ops"}, c: []string{"DE"}},
		{in: "/C=US/ST=CA/L=San Jose/O=Example, Inc./CN=gatehouse/", cn: "gatehouse", org: []string{"Example, Inc."}, c: []string{"US"}},
		{in: `CN=gatehouse,O=Example\, Inc.`, cn: "gatehouse", org: []string{"Example, Inc."}},
		{in: "cn=lower", cn: "lower"},
		{in: "", hasErr: true},
		{in: "gatehouse", hasErr: true},
		{in: "/CN=", hasErr: true},
		{in: "EMAIL=a@b", hasErr: true},
		{in: `CN=x\`, hasErr: true},
	} {
		t.Run(tc.in, func(t *testing.T) {
			n, err := techacct.ParseSubject(tc.in)
			if tc.hasErr {
				if err == nil {
					t.Errorf("no error: %v", n)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if n.CommonName != tc.cn || !slices.Equal(n.Organization, tc.org) || !slices.Equal(n.OrganizationalUnit, tc.ou) || !slices.Equal(n.Country, tc.c) {
				t.Errorf("name %+v", n)
			}
		})
	}
}

func TestLoadPrivateKey(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, blocks ...*pem.Block) string {
		var b []byte
		for _, bl := range blocks {
			b = append(b, pem.EncodeToMemory(bl)...)
		}
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	pkcs8, _ := x509.MarshalPKCS8PrivateKey(techKey())
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ecPKCS8, _ := x509.MarshalPKCS8PrivateKey(ec)
	certBlock, _ := pem.Decode(certPEM(t, techKey()))

	for _, tc := range []struct {
		name    string
		path    string
		wantErr string // "" for success
	}{
		{"PKCS#8", write("pkcs8.key", &pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8}), ""},
		{"PKCS#1", write("pkcs1.key", &pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(techKey())}), ""},
		{"certificate then key", write("both.pem", certBlock, &pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8}), ""},
		{"not PEM", write("garbage.key"), "no PEM block"},
		{"EC key", write("ec.key", &pem.Block{Type: "PRIVATE KEY", Bytes: ecPKCS8}), "not an RSA key"},
		{"SEC1 EC key", write("sec1.key", &pem.Block{Type: "EC PRIVATE KEY", Bytes: []byte{1}}), "not an RSA key"},
		{"encrypted PKCS#8", write("enc8.key", &pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: []byte{1}}), "encrypted keys are not supported"},
		{"encrypted PKCS#1", write("enc1.key", &pem.Block{Type: "RSA PRIVATE KEY", Headers: map[string]string{"Proc-Type": "4,ENCRYPTED", "DEK-Info": "AES-256-CBC,00"}, Bytes: []byte{1}}), "encrypted keys are not supported"},
		{"certificate only", write("cert.crt", certBlock), "no private key"},
		{"broken PKCS#8", write("broken.key", &pem.Block{Type: "PRIVATE KEY", Bytes: []byte{1, 2, 3}}), "PKCS#8"},
		{"missing file", filepath.Join(dir, "nope.key"), "no such file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k, err := techacct.LoadPrivateKey(tc.path)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				if !k.Equal(techKey()) {
					t.Error("another key")
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("err %v, want %q", err, tc.wantErr)
			}
		})
	}
}
