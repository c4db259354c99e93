package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-proxy/gatehouse/auth/techacct"
)

// keyPairDir holds the package's one key pair (see keyPair); TestMain
// removes it.
var keyPairDir string

// keyPair is one key pair for the whole package's tests: RSA generation is
// slow under the race detector.
var keyPair = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "gatehouse-cmd-test-")
	if err != nil {
		return "", err
	}
	keyPairDir = dir
	key, _, err := techacct.CreateKeyPair(dir, 1, "", false)
	return key, err
})

func TestMain(m *testing.M) {
	code := m.Run()
	if keyPairDir != "" {
		_ = os.RemoveAll(keyPairDir)
	}
	os.Exit(code)
}

func keyPath(t *testing.T) string {
	t.Helper()
	p, err := keyPair()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func writeFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func vars(kv ...string) map[string]string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m["GATEHOUSE_"+kv[i]] = kv[i+1]
	}
	return m
}

func TestLoadTechConfig(t *testing.T) {
	key := keyPath(t)
	base := []string{"TECH_CLIENT_ID", "cid", "TECH_CLIENT_SECRET", "s3cret", "TECH_ORG_ID", "ORG@AdobeOrg"}
	jwt := append([]string{"TECH_ACCOUNT_ID", "ACC@techacct.adobe.com", "TECH_PRIVATE_KEY", key, "TECH_METASCOPES", "ent_cloudmgr_sdk, ent_other"}, base...)

	t.Run("JWT exchange", func(t *testing.T) {
		c, err := loadTechConfig(vars(jwt...))
		if err != nil {
			t.Fatal(err)
		}
		if c.Method() != techacct.MethodJWT || c.PrivateKey == nil || c.IMSURL != techacct.DefaultIMSURL ||
			c.JWTLifetime != 5*time.Minute || !reflect.DeepEqual(c.Metascopes, []string{"ent_cloudmgr_sdk", " ent_other"}) {
			t.Errorf("config %+v", c)
		}
	})
	t.Run("client credentials, IMS URL from GATEHOUSE_IMS_URL", func(t *testing.T) {
		c, err := loadTechConfig(vars(append([]string{"TECH_SCOPES", "openid,AdobeID", "IMS_URL", "http://127.0.0.1:8180"}, base...)...))
		if err != nil {
			t.Fatal(err)
		}
		if c.Method() != techacct.MethodClientCredentials || c.IMSURL != "http://127.0.0.1:8180" {
			t.Errorf("method %q IMS URL %q", c.Method(), c.IMSURL)
		}
	})
	t.Run("TECH_IMS_URL wins", func(t *testing.T) {
		c, err := loadTechConfig(vars(append([]string{"TECH_SCOPES", "openid", "IMS_URL", "http://a", "TECH_IMS_URL", "http://b"}, base...)...))
		if err != nil || c.IMSURL != "http://b" {
			t.Fatalf("%v %+v", err, c)
		}
	})
	t.Run("secret from a file", func(t *testing.T) {
		for _, content := range []string{"from-file\n", "from-file\r\n", "from-file"} {
			c, err := loadTechConfig(vars("TECH_CLIENT_ID", "cid", "TECH_ORG_ID", "O@AdobeOrg", "TECH_SCOPES", "openid",
				"TECH_CLIENT_SECRET_FILE", writeFile(t, content)))
			if err != nil || c.ClientSecret != "from-file" {
				t.Errorf("content %q: %v, secret %q", content, err, c.ClientSecret)
			}
		}
		c, _ := loadTechConfig(vars("TECH_CLIENT_ID", "cid", "TECH_ORG_ID", "O@AdobeOrg", "TECH_SCOPES", "openid",
			"TECH_CLIENT_SECRET_FILE", writeFile(t, "two\n\n")))
		if c.ClientSecret != "two\n" {
			t.Errorf("secret %q: want only one newline trimmed", c.ClientSecret)
		}
	})

	errCases := []struct {
		name string
		env  map[string]string
		want []string
		not  []string
	}{
		{"nothing", vars(), []string{"GATEHOUSE_TECH_CLIENT_ID, GATEHOUSE_TECH_CLIENT_SECRET and GATEHOUSE_TECH_ORG_ID are required",
			"GATEHOUSE_TECH_SCOPES"}, nil},
		{"half-filled JWT", vars(append([]string{"TECH_ACCOUNT_ID", "A@techacct.adobe.com"}, base...)...),
			[]string{"GATEHOUSE_TECH_PRIVATE_KEY and GATEHOUSE_TECH_METASCOPES are missing"}, []string{"GATEHOUSE_TECH_CLIENT_ID"}},
		{"both methods", vars(append([]string{"TECH_SCOPES", "openid"}, jwt...)...),
			[]string{"GATEHOUSE_TECH_SCOPES", "GATEHOUSE_TECH_ACCOUNT_ID", "not both"}, nil},
		{"secret twice", vars(append([]string{"TECH_SCOPES", "openid", "TECH_CLIENT_SECRET_FILE", "/x"}, base...)...),
			[]string{"GATEHOUSE_TECH_CLIENT_SECRET and GATEHOUSE_TECH_CLIENT_SECRET_FILE are both set"}, []string{"required"}},
		{"secret file missing", vars("TECH_CLIENT_ID", "c", "TECH_ORG_ID", "O@AdobeOrg", "TECH_SCOPES", "openid", "TECH_CLIENT_SECRET_FILE", "/nonexistent/secret"),
			[]string{"GATEHOUSE_TECH_CLIENT_SECRET_FILE: open /nonexistent/secret"}, []string{"required"}},
		{"secret file empty", vars("TECH_CLIENT_ID", "c", "TECH_ORG_ID", "O@AdobeOrg", "TECH_SCOPES", "openid", "TECH_CLIENT_SECRET_FILE", writeFile(t, "\n")),
			[]string{"GATEHOUSE_TECH_CLIENT_SECRET_FILE", "is empty"}, nil},
		{"key file missing", vars(append([]string{"TECH_ACCOUNT_ID", "A@techacct.adobe.com", "TECH_METASCOPES", "m", "TECH_PRIVATE_KEY", "/nonexistent/private.key"}, base...)...),
			[]string{"GATEHOUSE_TECH_PRIVATE_KEY: load private key: open /nonexistent/private.key"}, []string{"bits", "missing", "technical account:"}},
		{"key file is a certificate", vars(append([]string{"TECH_ACCOUNT_ID", "A@techacct.adobe.com", "TECH_METASCOPES", "m",
			"TECH_PRIVATE_KEY", filepath.Join(filepath.Dir(key), techacct.CertificateFile)}, base...)...),
			[]string{"GATEHOUSE_TECH_PRIVATE_KEY", "no private key"}, nil},
		{"key without the rest", vars(append([]string{"TECH_PRIVATE_KEY", "/nonexistent/k"}, base...)...),
			[]string{"GATEHOUSE_TECH_PRIVATE_KEY: load private key", "GATEHOUSE_TECH_ACCOUNT_ID and GATEHOUSE_TECH_METASCOPES are missing"}, nil},
		{"JWT lifetime", vars(append([]string{"TECH_SCOPES", "openid", "TECH_JWT_LIFETIME", "soon"}, base...)...),
			[]string{"GATEHOUSE_TECH_JWT_LIFETIME"}, nil},
		{"JWT lifetime zero", vars(append([]string{"TECH_SCOPES", "openid", "TECH_JWT_LIFETIME", "0s"}, base...)...),
			[]string{"GATEHOUSE_TECH_JWT_LIFETIME: 0s: must be a positive duration"}, nil},
		{"bad TECH_IMS_URL", vars(append([]string{"TECH_SCOPES", "openid", "TECH_IMS_URL", "ims.example.com"}, base...)...),
			[]string{"GATEHOUSE_TECH_IMS_URL: \"ims.example.com\""}, nil},
		{"bad IMS_URL as the default", vars(append([]string{"TECH_SCOPES", "openid", "IMS_URL", "ims.example.com"}, base...)...),
			[]string{"GATEHOUSE_IMS_URL (the default of GATEHOUSE_TECH_IMS_URL)"}, nil},
	}
	for _, tc := range errCases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := loadTechConfig(tc.env)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			for _, n := range tc.not {
				if strings.Contains(err.Error(), n) {
					t.Errorf("error %q says %q", err, n)
				}
			}
		})
	}
}

// TestLoadTechConfigPayload: the console's JWT payload, pasted whole, stands
// for the organization, technical account and metascopes settings, and must
// agree with whatever is set beside it.
func TestLoadTechConfigPayload(t *testing.T) {
	key := keyPath(t)
	payload := func(ims, client string) string {
		return `{"exp":1550001438,"iss":"ORG@AdobeOrg","sub":"ACC@techacct.adobe.com","aud":"` + ims + `/c/` + client + `",` +
			`"` + ims + `/s/ent_cloudmgr_sdk":true,"` + ims + `/s/ent_other":true}`
	}
	const prod = techacct.DefaultIMSURL
	pasted := []string{"TECH_CLIENT_ID", "cid", "TECH_CLIENT_SECRET", "s3cret", "TECH_PRIVATE_KEY", key}
	with := func(kv ...string) map[string]string { return vars(append(append([]string{}, pasted...), kv...)...) }

	for _, tc := range []struct {
		name string
		env  map[string]string
		ims  string
	}{
		{"the three pasted values and the key", with("TECH_JWT_PAYLOAD", payload(prod, "cid")), prod},
		{"from a file", with("TECH_JWT_PAYLOAD_FILE", writeFile(t, payload(prod, "cid")+"\n")), prod},
		{"emulator IMS from GATEHOUSE_IMS_URL", with("TECH_JWT_PAYLOAD", payload("http://127.0.0.1:8180", "cid"), "IMS_URL", "http://127.0.0.1:8180/"), "http://127.0.0.1:8180/"},
		{"agreeing settings beside it", with("TECH_JWT_PAYLOAD", payload(prod, "cid"), "TECH_ORG_ID", "ORG@AdobeOrg",
			"TECH_ACCOUNT_ID", "ACC@techacct.adobe.com", "TECH_METASCOPES", "ent_other, ent_cloudmgr_sdk"), prod},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := loadTechConfig(tc.env)
			if err != nil {
				t.Fatal(err)
			}
			if c.Method() != techacct.MethodJWT || c.OrgID != "ORG@AdobeOrg" || c.AccountID != "ACC@techacct.adobe.com" || c.ClientID != "cid" ||
				c.IMSURL != tc.ims || strings.Join(trimmedSorted(c.Metascopes), ",") != "ent_cloudmgr_sdk,ent_other" || c.JWTLifetime != 5*time.Minute {
				t.Errorf("config %+v", c)
			}
		})
	}

	for _, tc := range []struct {
		name string
		env  map[string]string
		want []string
	}{
		{"not JSON", with("TECH_JWT_PAYLOAD", "exp=1"), []string{"GATEHOUSE_TECH_JWT_PAYLOAD: not a JSON object"}},
		{"a claim missing", with("TECH_JWT_PAYLOAD", strings.Replace(payload(prod, "cid"), `"sub"`, `"subject"`, 1)),
			[]string{`GATEHOUSE_TECH_JWT_PAYLOAD: claim "sub": missing`}},
		{"another client id", with("TECH_JWT_PAYLOAD", payload(prod, "other")),
			[]string{`claim "aud" is "other", but GATEHOUSE_TECH_CLIENT_ID is "cid"`}},
		{"another IMS", with("TECH_JWT_PAYLOAD", payload("https://ims-na1-stg1.adobelogin.com", "cid")),
			[]string{`claim "aud" names IMS https://ims-na1-stg1.adobelogin.com`, "GATEHOUSE_TECH_IMS_URL is unset, so " + prod + " is used"}},
		{"another organization", with("TECH_JWT_PAYLOAD", payload(prod, "cid"), "TECH_ORG_ID", "X@AdobeOrg"),
			[]string{`claim "iss" is "ORG@AdobeOrg", but GATEHOUSE_TECH_ORG_ID is "X@AdobeOrg"`}},
		{"another account", with("TECH_JWT_PAYLOAD", payload(prod, "cid"), "TECH_ACCOUNT_ID", "X@techacct.adobe.com"),
			[]string{`claim "sub"`, "GATEHOUSE_TECH_ACCOUNT_ID"}},
		{"other metascopes", with("TECH_JWT_PAYLOAD", payload(prod, "cid"), "TECH_METASCOPES", "ent_cloudmgr_sdk"),
			[]string{"GATEHOUSE_TECH_METASCOPES"}},
		{"with client-credentials scopes", with("TECH_JWT_PAYLOAD", payload(prod, "cid"), "TECH_SCOPES", "openid"),
			[]string{"GATEHOUSE_TECH_SCOPES", "not both"}},
		{"payload twice", with("TECH_JWT_PAYLOAD", payload(prod, "cid"), "TECH_JWT_PAYLOAD_FILE", "/x"),
			[]string{"GATEHOUSE_TECH_JWT_PAYLOAD and GATEHOUSE_TECH_JWT_PAYLOAD_FILE are both set"}},
		{"no private key", vars("TECH_CLIENT_ID", "cid", "TECH_CLIENT_SECRET", "s", "TECH_JWT_PAYLOAD", payload(prod, "cid")),
			[]string{"GATEHOUSE_TECH_PRIVATE_KEY"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := loadTechConfig(tc.env)
			if err == nil {
				t.Fatalf("accepted: %+v", c)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Errorf("error shows the secret: %q", err)
			}
		})
	}
}

func TestLoadConfigTechAndEgress(t *testing.T) {
	up := "GATEHOUSE_UPSTREAM=http://127.0.0.1:4502"
	tech := []string{"GATEHOUSE_TECH_CLIENT_ID=cid", "GATEHOUSE_TECH_CLIENT_SECRET=s", "GATEHOUSE_TECH_ORG_ID=O@AdobeOrg", "GATEHOUSE_TECH_SCOPES=openid"}

	c, err := loadConfig([]string{up})
	if err != nil || c.tech != nil {
		t.Fatalf("without TECH_*: %v, tech %v: want none loaded", err, c.tech)
	}
	c, err = loadConfig(append([]string{up, "GATEHOUSE_IMS_URL=http://127.0.0.1:8180", "GATEHOUSE_EGRESS_LISTEN=127.0.0.1:8081",
		"GATEHOUSE_EGRESS_UPSTREAM=https://api.example.com/base"}, tech...))
	if err != nil {
		t.Fatal(err)
	}
	if c.tech == nil || c.tech.IMSURL != "http://127.0.0.1:8180" || c.egressUp.String() != "https://api.example.com/base" {
		t.Errorf("tech %+v egress upstream %v", c.tech, c.egressUp)
	}
	c, err = loadConfig(append([]string{up, "GATEHOUSE_API_PATHS=/api/, /bin/api/"}, tech...))
	if err != nil || c.tech == nil || len(c.APIPaths) != 2 {
		t.Errorf("TECH_* without the egress: %v, tech %v, API paths %q", err, c.tech, c.APIPaths)
	}

	for _, tc := range []struct {
		name string
		env  []string
		want []string
	}{
		{"egress without a technical account", []string{up, "GATEHOUSE_EGRESS_LISTEN=127.0.0.1:8081", "GATEHOUSE_EGRESS_UPSTREAM=https://api.example.com"},
			[]string{"GATEHOUSE_EGRESS_LISTEN is set, but no technical account is", "GATEHOUSE_TECH_CLIENT_ID"}},
		{"egress without an upstream", append([]string{up, "GATEHOUSE_EGRESS_LISTEN=127.0.0.1:8081"}, tech...),
			[]string{"GATEHOUSE_EGRESS_UPSTREAM: required when GATEHOUSE_EGRESS_LISTEN is set"}},
		{"egress upstream alone", append([]string{up, "GATEHOUSE_EGRESS_UPSTREAM=https://api.example.com"}, tech...),
			[]string{"GATEHOUSE_EGRESS_UPSTREAM: set, but GATEHOUSE_EGRESS_LISTEN is not"}},
		{"egress upstream not a URL", append([]string{up, "GATEHOUSE_EGRESS_LISTEN=127.0.0.1:8081", "GATEHOUSE_EGRESS_UPSTREAM=api.example.com"}, tech...),
			[]string{"GATEHOUSE_EGRESS_UPSTREAM"}},
		{"egress listen not an address", append([]string{up, "GATEHOUSE_EGRESS_LISTEN=8081", "GATEHOUSE_EGRESS_UPSTREAM=https://api.example.com"}, tech...),
			[]string{"GATEHOUSE_EGRESS_LISTEN"}},
		{"half a technical account", []string{up, "GATEHOUSE_TECH_CLIENT_ID=cid"},
			[]string{"GATEHOUSE_TECH_CLIENT_SECRET and GATEHOUSE_TECH_ORG_ID are required"}},
		{"API paths", []string{up, "GATEHOUSE_API_PATHS=api/"}, []string{"GATEHOUSE_API_PATHS"}},
		{"cookie keys twice", []string{up, "GATEHOUSE_COOKIE_KEYS=a:b", "GATEHOUSE_COOKIE_KEYS_FILE=/x"},
			[]string{"GATEHOUSE_COOKIE_KEYS and GATEHOUSE_COOKIE_KEYS_FILE are both set"}},
		{"cookie keys file unreadable", []string{up, "GATEHOUSE_COOKIE_KEYS_FILE=/nonexistent/keys"},
			[]string{"GATEHOUSE_COOKIE_KEYS_FILE: open /nonexistent/keys"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := loadConfig(tc.env)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}

	c, err = loadConfig([]string{up, "GATEHOUSE_COOKIE_KEYS_FILE=" + writeFile(t, "aGFzaA==:YmxvY2s=\n")})
	if err != nil || c.CookieKeys != "aGFzaA==:YmxvY2s=" {
		t.Errorf("cookie keys from a file: %v, %q", err, c.CookieKeys)
	}
}

// runCmd runs the command line in process with environment env.
func runCmd(t *testing.T, env []string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	old := environ
	environ = func() []string { return env }
	t.Cleanup(func() { environ = old })
	var out, errOut bytes.Buffer
	err = run(context.Background(), args, &out, &errOut)
	return out.String(), errOut.String(), err
}

func TestCertCreateCommand(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keys")
	stdout, stderr, err := runCmd(t, nil, "cert", "create", "--out", dir, "--days", "30", "--subject", "/CN=test/O=Example")
	if err != nil {
		t.Fatalf("%v; stderr %s", err, stderr)
	}
	keyFile, certFile := filepath.Join(dir, techacct.PrivateKeyFile), filepath.Join(dir, techacct.CertificateFile)
	for _, want := range []string{keyFile, certFile, "GATEHOUSE_TECH_PRIVATE_KEY=" + keyFile, "Upload certificate_pub.crt"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("stdout does not say %q:\n%s", want, stdout)
		}
	}
	before, _ := os.ReadFile(keyFile)
	if _, err := techacct.LoadPrivateKey(keyFile); err != nil {
		t.Fatal(err)
	}

	_, _, err = runCmd(t, nil, "cert", "create", "--out", dir)
	if err == nil || !strings.Contains(err.Error(), "--force") || !strings.Contains(err.Error(), "not overwritten") {
		t.Errorf("second create: %v, want a refusal that mentions --force", err)
	}
	if after, _ := os.ReadFile(keyFile); !bytes.Equal(before, after) {
		t.Error("the key was overwritten without --force")
	}
	if _, _, err := runCmd(t, nil, "cert", "create", "--out", dir, "--force"); err != nil {
		t.Fatal(err)
	}
	if after, _ := os.ReadFile(keyFile); bytes.Equal(before, after) {
		t.Error("--force did not replace the key")
	}

	for _, args := range [][]string{{"cert"}, {"cert", "delete"}, {"cert", "create"}, {"cert", "create", "--out", dir, "--days", "0"}, {"cert", "create", "--out", dir, "extra"}} {
		if _, _, err := runCmd(t, nil, args...); !errors.Is(err, errUsage) {
			t.Errorf("%q: %v, want a usage error", args, err)
		}
	}
	if _, _, err := runCmd(t, nil, "cert", "create", "--out", t.TempDir(), "--subject", "/XX=y"); err == nil || !strings.Contains(err.Error(), "XX") {
		t.Errorf("bad subject: %v", err)
	}
}

func TestTokenCommandsNeedOnlyTechSettings(t *testing.T) {
	// No GATEHOUSE_UPSTREAM and no technical account: the error is about
	// the technical account only.
	for _, cmd := range []string{"token", "check-health"} {
		stdout, _, err := runCmd(t, []string{"GATEHOUSE_TECH_CLIENT_ID=cid"}, cmd)
		if err == nil || stdout != "" {
			t.Fatalf("%s: %v, stdout %q: want an error and nothing on stdout", cmd, err, stdout)
		}
		if !strings.Contains(err.Error(), "GATEHOUSE_TECH_CLIENT_SECRET") || strings.Contains(err.Error(), "UPSTREAM") {
			t.Errorf("%s: %v", cmd, err)
		}
		if _, _, err := runCmd(t, nil, cmd, "extra"); !errors.Is(err, errUsage) {
			t.Errorf("%s extra: %v, want a usage error", cmd, err)
		}
		stdout, _, err = runCmd(t, nil, cmd, "-h")
		if !strings.Contains(stdout, "GATEHOUSE_TECH_CLIENT_SECRET_FILE") {
			t.Errorf("%s -h: %v; does not list the settings:\n%s", cmd, err, stdout)
		}
	}
}
