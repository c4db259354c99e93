package ims

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// floodWindows is how many MinRefreshInterval windows a flood test spans.
const floodWindows = 3

// flood runs n lookups from 8 goroutines and returns how many failed with
// another error than want.
func flood(n int, lookup func(i int) error, want error) int64 {
	var wrong atomic.Int64
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := g; i < n; i += 8 {
				if err := lookup(i); !errors.Is(err, want) {
					wrong.Add(1)
				}
			}
		})
	}
	wg.Wait()
	return wrong.Load()
}

func TestKeySetKidFloodIsUnknownKey(t *testing.T) {
	for _, tt := range []struct {
		name       string
		hostStatus int // after the first load; 0: healthy
	}{
		{"host healthy", 0},
		{"host failing", http.StatusBadGateway},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := newKeyServer(t, jwksBody(t, jwkOf(testKid, &keyA().PublicKey)))
			k, clk := clockedKeySet(t, KeySetConfig{JWKSURL: srv.jwksURL()})
			ctx := context.Background()
			srv.set(func(s *keyServer) { s.status = tt.hostStatus })
			for w := range floodWindows {
				clk.Advance(defaultMinRefreshInterval)
				wrong := flood(500, func(i int) error {
					_, err := k.Key(ctx, fmt.Sprintf("flood-%d-%d", w, i), "")
					return err
				}, ErrUnknownKey)
				if wrong != 0 {
					t.Fatalf("window %d: %d of 500 unknown kids did not fail with ErrUnknownKey", w, wrong)
				}
			}
			if n := srv.jwksHits.Load(); n > 1+floodWindows {
				t.Errorf("JWKS fetched %d times over %d windows, want at most %d", n, floodWindows, 1+floodWindows)
			}
			if _, err := k.Key(ctx, testKid, ""); err != nil {
				t.Errorf("held key after the flood: %v", err)
			}
		})
	}
}

// junkToken is a token naming x5u (and kid, when not empty), with a
// signature no key made.
func junkToken(t testing.TB, kid, x5u string) string {
	t.Helper()
	h := map[string]any{"alg": "RS256", "x5u": x5u}
	if kid != "" {
		h["kid"] = kid
	}
	sig := make([]byte, 256)
	_, _ = rand.Read(sig)
	return b64(mustJSON(t, h)) + "." + b64(mustJSON(t, imsClaims(verifyNow.Add(-time.Hour)))) + "." + b64(sig)
}

// spendCertBudget verifies junk tokens naming more new certificates than
// the fetch budget of window w allows, and fails t unless each is refused
// as an unknown key.
func spendCertBudget(t *testing.T, v *Verifier, w int) {
	t.Helper()
	wrong := flood(certFetchBudget+20, func(i int) error {
		_, err := v.Verify(context.Background(), junkToken(t, "", fmt.Sprintf("junk-%d-%d.cer", w, i)))
		return err
	}, ErrUnknownKey)
	if wrong != 0 {
		t.Fatalf("window %d: %d junk names did not fail with ErrUnknownKey", w, wrong)
	}
}

// x5uToken is a valid token signed by keyB that names its key by the
// certificate x5uOnly alone: no kid, or one the JWKS lacks.
func x5uToken(t testing.TB, kid string) string {
	h := map[string]any{"alg": "RS256", "x5u": x5uOnly}
	if kid != "" {
		h["kid"] = kid
	}
	return signToken(t, jwt.SigningMethodRS256, keyB(), h, imsClaims(verifyNow.Add(-time.Hour)))
}

func TestVerifyX5UFlood(t *testing.T) {
	// IMS publishes its keys both ways: keyB is in the JWKS under a kid
	// and is the certificate x5uOnly.
	jwks := jwksBody(t, jwkOf(testKid, &keyA().PublicKey), jwkOf("ims_na1-key-at-2", &keyB().PublicKey))
	for _, tt := range []struct {
		name    string
		jwks    bool
		prefill bool // the certificate was fetched before the flood
	}{
		{"JWKS and certificates, certificate never fetched", true, false},
		{"JWKS and certificates, certificate fetched before", true, true},
		{"certificates only, certificate fetched before", false, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := newKeyServer(t, jwks)
			srv.certs[x5uOnly] = certPEM(t, keyB())
			cfg := KeySetConfig{CertsURL: srv.certsURL()}
			if tt.jwks {
				cfg.JWKSURL = srv.jwksURL()
			}
			ks, clk := clockedKeySet(t, cfg)
			ctx := context.Background()
			v, err := NewVerifier(VerifierConfig{Keys: ks, Cluster: testCluster, ClientIDs: []string{testClient},
				Now: func() time.Time { return verifyNow }})
			if err != nil {
				t.Fatal(err)
			}
			valid := []string{x5uToken(t, ""), x5uToken(t, "not-in-the-jwks")}
			if tt.prefill {
				if _, err := v.Verify(ctx, valid[0]); err != nil {
					t.Fatalf("before the flood: %v", err)
				}
			}
			certsBefore := srv.certHits.Load()

			for w := range floodWindows {
				clk.Advance(defaultMinRefreshInterval)
				// Spend the window's budget first, so the valid tokens
				// below are checked with none left.
				spendCertBudget(t, v, w)
				// Then junk and valid tokens side by side.
				var validErr atomic.Value
				wrong := flood(400, func(i int) error {
					if i%40 == 0 {
						if _, err := v.Verify(ctx, valid[i/40%2]); err != nil {
							validErr.Store(err)
						}
						return ErrUnknownKey
					}
					kid := ""
					if i%3 == 0 {
						kid = fmt.Sprintf("junk-kid-%d", i)
					}
					_, err := v.Verify(ctx, junkToken(t, kid, fmt.Sprintf("junk-%d-x%d.cer", w, i)))
					return err
				}, ErrUnknownKey)
				if wrong != 0 {
					t.Errorf("window %d: %d junk tokens did not fail with ErrUnknownKey", w, wrong)
				}
				if err := validErr.Load(); err != nil {
					t.Fatalf("window %d: a valid x5u-only token was refused during the flood: %v", w, err)
				}
			}
			if n := srv.certHits.Load() - certsBefore; n > floodWindows*certFetchBudget {
				t.Errorf("%d certificate fetches over %d windows, want at most %d", n, floodWindows, floodWindows*certFetchBudget)
			}
			if n := srv.jwksHits.Load(); tt.jwks && n > 1+floodWindows {
				t.Errorf("JWKS fetched %d times over %d windows, want at most %d", n, floodWindows, 1+floodWindows)
			}
		})
	}
}

// TestVerifyX5UFallbackIsStrict: trying the keys held for a token whose
// certificate cannot be had accepts only a signature one of them made.
func TestVerifyX5UFallbackIsStrict(t *testing.T) {
	v, srv := newTestVerifier(t, testClient)
	srv.set(func(s *keyServer) { s.status = http.StatusNotFound })
	ctx := context.Background()
	created := verifyNow.Add(-time.Hour)
	for _, tt := range []struct {
		name  string
		token string
		want  error // nil: accepted
	}{
		{"held key, unknown certificate", signToken(t, jwt.SigningMethodRS256, keyA(), map[string]any{"alg": "RS256", "x5u": "gone.cer"}, imsClaims(created)), nil},
		{"key not held", signToken(t, jwt.SigningMethodRS256, keyC(), map[string]any{"alg": "RS256", "x5u": "gone.cer"}, imsClaims(created)), ErrUnknownKey},
		{"junk signature", junkToken(t, "", "gone.cer"), ErrUnknownKey},
		{"kid only, key not held", signToken(t, jwt.SigningMethodRS256, keyA(), map[string]any{"alg": "RS256", "kid": "gone"}, imsClaims(created)), ErrUnknownKey},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := v.Verify(ctx, tt.token)
			if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("err %v, want %v", err, tt.want)
			}
		})
	}
}

// TestVerifyX5UNewKeyDuringFlood: IMS starts signing with a new key while
// junk certificate names spend every window's fetch budget. Once the JWKS
// has been refreshed (at most once a window), tokens naming the new key's
// certificate alone verify without its fetch.
func TestVerifyX5UNewKeyDuringFlood(t *testing.T) {
	srv := newKeyServer(t, jwksBody(t, jwkOf(testKid, &keyA().PublicKey)))
	srv.certs[x5uOnly] = certPEM(t, keyB())
	ks, clk := clockedKeySet(t, KeySetConfig{JWKSURL: srv.jwksURL(), CertsURL: srv.certsURL()})
	v, err := NewVerifier(VerifierConfig{Keys: ks, Cluster: testCluster, ClientIDs: []string{testClient},
		Now: func() time.Time { return verifyNow }})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	clk.Advance(defaultMinRefreshInterval)
	spendCertBudget(t, v, 0)
	// The rotation, in the middle of a window whose budget is spent.
	srv.set(func(s *keyServer) {
		s.jwks = jwksBody(t, jwkOf(testKid, &keyA().PublicKey), jwkOf("ims_na1-key-at-2", &keyB().PublicKey))
	})
	certs := srv.certHits.Load()
	for w := 1; w <= floodWindows; w++ {
		clk.Advance(defaultMinRefreshInterval)
		spendCertBudget(t, v, w)
		if _, err := v.Verify(ctx, x5uToken(t, "")); err != nil {
			t.Fatalf("window %d: the new key's x5u-only token: %v", w, err)
		}
	}
	if n := srv.certHits.Load() - certs; n > floodWindows*certFetchBudget {
		t.Errorf("%d certificate fetches over %d windows, want at most %d", n, floodWindows, floodWindows*certFetchBudget)
	}
	if n := srv.jwksHits.Load(); n > 2+floodWindows {
		t.Errorf("JWKS fetched %d times over %d windows, want at most %d", n, 1+floodWindows, 2+floodWindows)
	}
}
