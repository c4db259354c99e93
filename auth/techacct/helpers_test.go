package techacct_test

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-proxy/gatehouse/auth/ims/imstest"
	"github.com/gatehouse-proxy/gatehouse/auth/techacct"
)

const (
	clientID  = "gatehouse-integration"
	secret    = "p8e-tech-SECRET-value"
	orgID     = "5678EFAB@AdobeOrg"
	accountID = "ABCDEF0123456789@techacct.adobe.com"
	metascope = "ent_cloudmgr_sdk"
)

var scopes = []string{"openid", "AdobeID", "read_organizations"}

// RSA keys are generated once: generation is slow under the race detector.
var (
	techKey  = sync.OnceValue(func() *rsa.PrivateKey { return genKey(2048) })
	otherKey = sync.OnceValue(func() *rsa.PrivateKey { return genKey(2048) })
)

func genKey(bits int) *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		panic(err)
	}
	return k
}

func certPEM(t *testing.T, key *rsa.PrivateKey) []byte {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "integration"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().AddDate(1, 0, 0),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// newEmulator starts an IMS emulator knowing the technical account, with
// tokens of the given lifetime (0: 24 hours) and the certificate of techKey
// registered.
func newEmulator(t *testing.T, lifetime time.Duration) *imstest.Server {
	t.Helper()
	s := imstest.NewServer(imstest.Options{})
	t.Cleanup(s.Close)
	s.AddTechAccount(imstest.TechAccount{
		ClientID:      clientID,
		ClientSecret:  secret,
		OrgID:         orgID,
		AccountID:     accountID,
		Metascopes:    []string{metascope},
		Scopes:        scopes,
		TokenLifetime: lifetime,
	})
	if err := s.RegisterCertificate(clientID, certPEM(t, techKey())); err != nil {
		t.Fatal(err)
	}
	return s
}

func jwtConfig(s *imstest.Server) techacct.Config {
	return techacct.Config{
		IMSURL:       s.URL,
		ClientID:     clientID,
		ClientSecret: secret,
		OrgID:        orgID,
		AccountID:    accountID,
		PrivateKey:   techKey(),
		Metascopes:   []string{metascope},
	}
}

func ccConfig(s *imstest.Server) techacct.Config {
	return techacct.Config{
		IMSURL:       s.URL,
		ClientID:     clientID,
		ClientSecret: secret,
		OrgID:        orgID,
		Scopes:       []string{"openid", "AdobeID"},
	}
}

// methods are the two ways to a token, for table-driven tests.
var methods = []struct {
	name     string
	config   func(*imstest.Server) techacct.Config
	endpoint string // counted by the emulator
}{
	{"jwt", jwtConfig, imstest.EndpointExchange},
	{"client credentials", ccConfig, imstest.EndpointToken},
}

func newSource(t *testing.T, cfg techacct.Config) *techacct.Source {
	t.Helper()
	src, err := techacct.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return src
}

// callAPI calls the emulator's test API with the three headers and
// returns the status.
func callAPI(t *testing.T, s *imstest.Server, src *techacct.Source, token string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, s.URL+"/testapi/programs", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("x-api-key", src.ClientID())
	req.Header.Set("x-gw-ims-org-id", src.OrgID())
	resp, err := s.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}
