package techacct

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// File names CreateKeyPair writes, as the developer console's own
// instructions name them.
const (
	PrivateKeyFile  = "private.key"
	CertificateFile = "certificate_pub.crt"
)

// Defaults of CreateKeyPair.
const (
	DefaultCertDays    = 365
	DefaultCertSubject = "/CN=gatehouse"
)

// CreateKeyPair writes a new private key and a self-signed certificate for
// it into dir, for the developer console: private.key (PEM "PRIVATE KEY",
// PKCS#8, RSA 2048, mode 0600) and certificate_pub.crt (PEM X.509, mode
// 0644, valid from now for days days; 0 means 365). subject is written
// "/CN=gatehouse/O=Example" or "CN=gatehouse,O=Example" (attributes CN, O,
// OU, C, ST, L, STREET, POSTALCODE, SERIALNUMBER; a backslash escapes the
// separator); empty means "/CN=gatehouse". dir is created (mode 0700) when
// missing. Existing files are not overwritten unless force; the error then
// wraps fs.ErrExist. It returns the paths of both files.
func CreateKeyPair(dir string, days int, subject string, force bool) (keyPath, certPath string, err error) {
	if days < 0 {
		return "", "", fmt.Errorf("create key pair: %d days: must not be negative", days)
	}
	if days == 0 {
		days = DefaultCertDays
	}
	if subject == "" {
		subject = DefaultCertSubject
	}
	name, err := ParseSubject(subject)
	if err != nil {
		return "", "", fmt.Errorf("create key pair: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", "", fmt.Errorf("create key pair: %w", err)
	}
	keyPath, certPath = filepath.Join(dir, PrivateKeyFile), filepath.Join(dir, CertificateFile)
	if !force {
		var exist []string
		for _, p := range []string{keyPath, certPath} {
			if _, err := os.Lstat(p); err == nil {
				exist = append(exist, p)
			}
		}
		if len(exist) > 0 {
			return "", "", fmt.Errorf("create key pair: %s: %w (keep them, or force overwriting them)", strings.Join(exist, " and "), fs.ErrExist)
		}
	}

	key, err := rsa.GenerateKey(rand.Reader, MinKeyBits)
	if err != nil {
		return "", "", fmt.Errorf("create key pair: generate key: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return "", "", fmt.Errorf("create key pair: encode key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return "", "", fmt.Errorf("create key pair: serial number: %w", err)
	}
	now := time.Now().UTC().Truncate(time.Second)
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               name,
		NotBefore:             now,
		NotAfter:              now.AddDate(0, 0, days),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
	}
	certDER, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return "", "", fmt.Errorf("create key pair: create certificate: %w", err)
	}

	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: certDER})
	if err := writeFile(keyPath, keyPEM, 0o600, force); err != nil {
		return "", "", fmt.Errorf("create key pair: %w", err)
	}
	if err := writeFile(certPath, certPEM, 0o644, force); err != nil {
		if !force {
			os.Remove(keyPath) // ours: it did not exist a moment ago
		}
		return "", "", fmt.Errorf("create key pair: %w", err)
	}
	return keyPath, certPath, nil
}

// writeFile writes b to path with mode perm. Without force it never
// replaces an existing file; with force it replaces it whole (a new file
// renamed over it, so the mode is perm whatever the old file's was).
func writeFile(path string, b []byte, perm os.FileMode, force bool) error {
	if !force {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
		if err != nil {
			return err
		}
		if err := finish(f, b, perm); err != nil {
			os.Remove(path)
			return err
		}
		return nil
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	if err := finish(f, b, perm); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

// finish sets f's mode (whatever the umask), writes b, syncs and closes.
func finish(f *os.File, b []byte, perm os.FileMode) error {
	err := f.Chmod(perm)
	if err == nil {
		_, err = f.Write(b)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", f.Name(), err)
	}
	return nil
}

// ParseSubject reads a certificate subject written as OpenSSL's -subj
// ("/CN=gatehouse/O=Example") or as an RFC 4514-like list
// ("CN=gatehouse,O=Example"). Attributes: CN, O, OU, C, ST, L, STREET,
// POSTALCODE, SERIALNUMBER (case-insensitive); a backslash escapes the
// next character.
func ParseSubject(s string) (pkix.Name, error) {
	var name pkix.Name
	s = strings.TrimSpace(s)
	sep := ','
	if strings.HasPrefix(s, "/") {
		sep, s = '/', s[1:]
	}
	parts, err := splitEscaped(s, sep)
	if err != nil {
		return name, fmt.Errorf("subject %q: %w", s, err)
	}
	n := 0
	for _, p := range parts {
		if strings.TrimSpace(p) == "" && sep == '/' {
			continue // "/CN=x/" or "//"
		}
		k, v, ok := strings.Cut(p, "=")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if !ok || k == "" || v == "" {
			return name, fmt.Errorf("subject %q: %q: want ATTRIBUTE=value", s, p)
		}
		switch strings.ToUpper(k) {
		case "CN":
			name.CommonName = v
		case "O":
			name.Organization = append(name.Organization, v)
		case "OU":
			name.OrganizationalUnit = append(name.OrganizationalUnit, v)
		case "C":
			name.Country = append(name.Country, v)
		case "ST":
			name.Province = append(name.Province, v)
		case "L":
			name.Locality = append(name.Locality, v)
		case "STREET":
			name.StreetAddress = append(name.StreetAddress, v)
		case "POSTALCODE":
			name.PostalCode = append(name.PostalCode, v)
		case "SERIALNUMBER":
			name.SerialNumber = v
		default:
			return name, fmt.Errorf("subject %q: unknown attribute %q (use CN, O, OU, C, ST, L, STREET, POSTALCODE or SERIALNUMBER)", s, k)
		}
		n++
	}
	if n == 0 {
		return name, fmt.Errorf("subject %q: no attribute; for example /CN=gatehouse/O=Example", s)
	}
	return name, nil
}

// splitEscaped splits s at unescaped sep, removing the escapes.
func splitEscaped(s string, sep rune) ([]string, error) {
	var parts []string
	var cur strings.Builder
	escaped := false
	for _, r := range s {
		switch {
		case escaped:
			cur.WriteRune(r)
			escaped = false
		case r == '\\':
			escaped = true
		case r == sep:
			parts = append(parts, cur.String())
			cur.Reset()
		default:
			cur.WriteRune(r)
		}
	}
	if escaped {
		return nil, errors.New("ends with a lone backslash")
	}
	return append(parts, cur.String()), nil
}

// LoadPrivateKey reads an RSA private key from a PEM file: "PRIVATE KEY"
// (PKCS#8, as CreateKeyPair writes it) or "RSA PRIVATE KEY" (PKCS#1).
// Other PEM blocks in the file (a certificate next to the key) are
// skipped. Encrypted keys are not supported.
func LoadPrivateKey(path string) (*rsa.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load private key: %w", err)
	}
	key, err := parsePrivateKey(b)
	if err != nil {
		return nil, fmt.Errorf("load private key %s: %w", path, err)
	}
	return key, nil
}

func parsePrivateKey(b []byte) (*rsa.PrivateKey, error) {
	var seen []string
	for {
		var block *pem.Block
		block, b = pem.Decode(b)
		if block == nil {
			break
		}
		if block.Headers["Proc-Type"] != "" && strings.Contains(block.Headers["Proc-Type"], "ENCRYPTED") {
			return nil, errors.New("encrypted keys are not supported: decrypt it first (openssl pkey -in KEY -out private.key)")
		}
		switch block.Type {
		case "ENCRYPTED PRIVATE KEY":
			return nil, errors.New("encrypted keys are not supported: decrypt it first (openssl pkey -in KEY -out private.key)")
		case "PRIVATE KEY":
			k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
			if err != nil {
				return nil, fmt.Errorf("PKCS#8 private key: %w", err)
			}
			rk, ok := k.(*rsa.PrivateKey)
			if !ok {
				return nil, fmt.Errorf("not an RSA key (a %T): the JWT exchange signs with RS256", k)
			}
			return rk, nil
		case "RSA PRIVATE KEY":
			k, err := x509.ParsePKCS1PrivateKey(block.Bytes)
			if err != nil {
				return nil, fmt.Errorf("PKCS#1 private key: %w", err)
			}
			return k, nil
		case "EC PRIVATE KEY", "OPENSSH PRIVATE KEY", "DSA PRIVATE KEY":
			return nil, fmt.Errorf("not an RSA key (PEM %q): the JWT exchange signs with RS256", block.Type)
		}
		seen = append(seen, block.Type)
	}
	if len(seen) > 0 {
		return nil, fmt.Errorf("no private key: the file holds %s (the certificate goes to the developer console; this needs the private key)", strings.Join(seen, ", "))
	}
	return nil, errors.New("no PEM block: want a PEM \"PRIVATE KEY\" or \"RSA PRIVATE KEY\"")
}
