package ims

import (
	"bytes"
	"context"
	"crypto/rsa"
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func newTestKeySet(t *testing.T, cfg KeySetConfig) *KeySet {
	t.Helper()
	k, err := NewKeySet(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func sameKey(a, b *rsa.PublicKey) bool {
	return a != nil && b != nil && a.Equal(b)
}

func TestNewKeySetConfig(t *testing.T) {
	tests := []struct {
		name    string
		cfg     KeySetConfig
		wantErr string // substring; "" means no error
	}{
		{"jwks only", KeySetConfig{JWKSURL: "https://ims-na1.adobelogin.com/ims/keys"}, ""},
		{"certs only", KeySetConfig{CertsURL: "https://static.adobelogin.com/keys/prod"}, ""},
		{"both", KeySetConfig{JWKSURL: "https://ims-na1.adobelogin.com/ims/keys", CertsURL: "https://static.adobelogin.com/keys/prod/"}, ""},
		{"neither", KeySetConfig{}, "JWKSURL, CertsURL"},
		{"relative jwks", KeySetConfig{JWKSURL: "/ims/keys"}, "JWKSURL"},
		{"ftp certs", KeySetConfig{CertsURL: "ftp://static.adobelogin.com/keys/"}, "CertsURL"},
		{"unparsable", KeySetConfig{JWKSURL: "http://[::1"}, "JWKSURL"},
		{"certs query", KeySetConfig{CertsURL: "https://static.adobelogin.com/keys/?x=1"}, "CertsURL"},
		{"credentials", KeySetConfig{JWKSURL: "https://u:p@ims/keys"}, "JWKSURL"},
		{"negative min", KeySetConfig{JWKSURL: "https://ims/keys", MinRefreshInterval: -1}, "MinRefreshInterval"},
		{"refresh below min", KeySetConfig{JWKSURL: "https://ims/keys", MinRefreshInterval: time.Minute, RefreshInterval: time.Second}, "RefreshInterval"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, err := NewKeySet(tt.cfg)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("NewKeySet: %v", err)
				}
				if k.minRefresh != defaultMinRefreshInterval || k.refresh != defaultRefreshInterval {
					t.Errorf("defaults: min %s, refresh %s", k.minRefresh, k.refresh)
				}
				if k.certsURL != "" && !strings.HasSuffix(k.certsURL, "/") {
					t.Errorf("certsURL %q: want a trailing slash", k.certsURL)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("NewKeySet: err %v, want one naming %q", err, tt.wantErr)
			}
		})
	}
}

func TestKeySetLoadAndKid(t *testing.T) {
	srv := newKeyServer(t, jwksBody(t, jwkOf("ims", &keyB().PublicKey), jwkOf(testKid, &keyA().PublicKey)))
	k := newTestKeySet(t, KeySetConfig{JWKSURL: srv.jwksURL()})
	if k.Ready() {
		t.Fatal("Ready before Load")
	}
	if err := k.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !k.Ready() {
		t.Fatal("not Ready after Load")
	}
	for _, tt := range []struct {
		kid  string
		want *rsa.PublicKey
	}{{testKid, &keyA().PublicKey}, {"ims", &keyB().PublicKey}} {
		t.Run(tt.kid, func(t *testing.T) {
			for range 3 {
				got, err := k.Key(context.Background(), tt.kid, "")
				if err != nil {
					t.Fatal(err)
				}
				if !sameKey(got, tt.want) {
					t.Fatal("wrong key")
				}
			}
		})
	}
	if n := k.Fetches(); n != 1 {
		t.Errorf("Fetches = %d, want 1", n)
	}
}

func TestKeySetCerts(t *testing.T) {
	for _, tt := range []struct {
		name string
		body []byte
	}{
		{"PEM", certPEM(t, keyA())},
		{"DER", certDER(t, keyA())},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := newKeyServer(t, nil)
			srv.certs[testX5U] = tt.body
			k := newTestKeySet(t, KeySetConfig{CertsURL: srv.certsURL()})
			if !k.Ready() {
				t.Error("certificate-only key set not Ready from the start")
			}
			for range 5 {
				got, err := k.Key(context.Background(), "", testX5U)
				if err != nil {
					t.Fatal(err)
				}
				if !sameKey(got, &keyA().PublicKey) {
					t.Fatal("wrong key")
				}
			}
			// A kid the JWKS does not know still finds the certificate.
			if _, err := k.Key(context.Background(), "unknown-kid", testX5U); err != nil {
				t.Fatal(err)
			}
			if n := srv.certHits.Load(); n != 1 {
				t.Errorf("certificate fetched %d times, want 1", n)
			}
		})
	}
}

func TestKeySetInvalidX5URejectedWithoutFetch(t *testing.T) {
	srv := newKeyServer(t, jwksBody(t, jwkOf(testKid, &keyA().PublicKey)))
	k := newTestKeySet(t, KeySetConfig{CertsURL: srv.certsURL()})
	for _, x5u := range []string{
		"https://evil/x.cer", "http://169.254.169.254/latest/meta-data", "//evil/x.cer",
		"../x", "..", "a..b", "a/b", `a\b`, "/etc/passwd", "x.cer?y=1", "x.cer#f", "x%2f.cer",
		"C:x.cer", "a b.cer", "x.cer\n", "\x00", "é.cer", strings.Repeat("a", 129),
	} {
		t.Run(x5u, func(t *testing.T) {
			_, err := k.Key(context.Background(), "", x5u)
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("err %v, want ErrMalformed", err)
			}
			if strings.Contains(err.Error(), x5u) {
				t.Errorf("error repeats the rejected name: %v", err)
			}
		})
	}
	if n := k.Fetches(); n != 0 {
		t.Errorf("Fetches = %d, want 0", n)
	}
	// The longest accepted name is 128 characters.
	if !validCertName(strings.Repeat("a", 128)) || !validCertName("ims_na1-stg1-key-at-1.cer") {
		t.Error("a valid name is refused")
	}
}

func TestKeySetUnknownKidRateLimited(t *testing.T) {
	srv := newKeyServer(t, jwksBody(t, jwkOf(testKid, &keyA().PublicKey)))
	k, clk := clockedKeySet(t, KeySetConfig{JWKSURL: srv.jwksURL()})
	ctx := context.Background()

	// Just after the load: an unknown kid does not fetch.
	if _, err := k.Key(ctx, "nope", ""); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("err %v, want ErrUnknownKey", err)
	}
	if n := srv.jwksHits.Load(); n != 1 {
		t.Fatalf("JWKS fetched %d times, want 1", n)
	}

	// After the interval: one refresh.
	clk.Advance(defaultMinRefreshInterval + time.Second)
	if _, err := k.Key(ctx, "nope", ""); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("err %v, want ErrUnknownKey", err)
	}
	if n := srv.jwksHits.Load(); n != 2 {
		t.Fatalf("JWKS fetched %d times, want 2", n)
	}

	// A flood of unknown kids inside the interval: no fetch at all.
	var wg sync.WaitGroup
	var wrong atomic.Int64
	for i := range 1000 {
		wg.Go(func() {
			_, err := k.Key(ctx, "flood-"+string(rune('a'+i%26)), "")
			if !errors.Is(err, ErrUnknownKey) {
				wrong.Add(1)
			}
		})
	}
	wg.Wait()
	if n := wrong.Load(); n != 0 {
		t.Errorf("%d lookups did not fail with ErrUnknownKey", n)
	}
	if n := srv.jwksHits.Load(); n != 2 {
		t.Errorf("JWKS fetched %d times after the flood, want 2", n)
	}

	// A known kid never fetches, whatever the clock says.
	clk.Advance(time.Hour)
	for range 100 {
		if _, err := k.Key(ctx, testKid, ""); err != nil {
			t.Fatal(err)
		}
	}
	if n := k.Fetches(); n != 2 {
		t.Errorf("Fetches = %d, want 2", n)
	}
}

func TestKeySetSingleFlight(t *testing.T) {
	srv := newKeyServer(t, jwksBody(t, jwkOf(testKid, &keyA().PublicKey)))
	srv.delay = 100 * time.Millisecond
	k := newTestKeySet(t, KeySetConfig{JWKSURL: srv.jwksURL()})
	ctx := context.Background()
	start := make(chan struct{})
	var wg sync.WaitGroup
	var found, unknown, other atomic.Int64
	for i := range 1000 {
		kid := "nope"
		if i%2 == 0 {
			kid = testKid
		}
		wg.Go(func() {
			<-start
			key, err := k.Key(ctx, kid, "")
			switch {
			case err == nil && sameKey(key, &keyA().PublicKey):
				found.Add(1)
			case errors.Is(err, ErrUnknownKey):
				unknown.Add(1)
			default:
				other.Add(1)
			}
		})
	}
	close(start)
	wg.Wait()
	if n := srv.jwksHits.Load(); n > 1 {
		t.Errorf("1000 concurrent lookups fetched the JWKS %d times, want at most 1", n)
	}
	if found.Load() != 500 || unknown.Load() != 500 || other.Load() != 0 {
		t.Errorf("found %d, unknown %d, other %d; want 500, 500, 0", found.Load(), unknown.Load(), other.Load())
	}
}

func TestKeySetRotation(t *testing.T) {
	srv := newKeyServer(t, jwksBody(t, jwkOf(testKid, &keyA().PublicKey)))
	clk := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	k := newTestKeySet(t, KeySetConfig{JWKSURL: srv.jwksURL()})
	k.now = clk.Now
	ctx := context.Background()
	if err := k.Load(ctx); err != nil {
		t.Fatal(err)
	}
	srv.set(func(s *keyServer) { s.jwks = jwksBody(t, jwkOf("ims_na1-key-at-2", &keyB().PublicKey)) })
	clk.Advance(defaultMinRefreshInterval)
	got, err := k.Key(ctx, "ims_na1-key-at-2", "")
	if err != nil || !sameKey(got, &keyB().PublicKey) {
		t.Fatalf("rotated key: %v", err)
	}
	// The refresh replaced the set: the retired key is gone.
	if _, err := k.Key(ctx, testKid, ""); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("retired key: err %v, want ErrUnknownKey", err)
	}
}

func TestKeySetHostDown(t *testing.T) {
	t.Run("after load", func(t *testing.T) {
		srv := newKeyServer(t, jwksBody(t, jwkOf(testKid, &keyA().PublicKey)))
		clk := &fakeClock{t: time.Unix(1_700_000_000, 0)}
		k := newTestKeySet(t, KeySetConfig{JWKSURL: srv.jwksURL()})
		k.now = clk.Now
		ctx := context.Background()
		if err := k.Load(ctx); err != nil {
			t.Fatal(err)
		}
		srv.Close()
		if err := k.Load(ctx); !errors.Is(err, ErrKeysUnavailable) {
			t.Fatalf("Load with the host down: err %v, want ErrKeysUnavailable", err)
		}
		if !k.Ready() {
			t.Error("not Ready after a failed refresh")
		}
		if got, err := k.Key(ctx, testKid, ""); err != nil || !sameKey(got, &keyA().PublicKey) {
			t.Fatalf("held key: %v", err)
		}
		// A kid not held, while the last word from the host is a failure:
		// a key set is held, so it is an unknown key, not an outage.
		clk.Advance(time.Minute)
		if _, err := k.Key(ctx, "ims_na1-key-at-2", ""); !errors.Is(err, ErrUnknownKey) {
			t.Errorf("unknown kid with the host down: err %v, want ErrUnknownKey", err)
		}
	})
	t.Run("before load", func(t *testing.T) {
		srv := newKeyServer(t, nil)
		srv.Close()
		k := newTestKeySet(t, KeySetConfig{JWKSURL: srv.jwksURL(), CertsURL: srv.certsURL()})
		ctx := context.Background()
		if _, err := k.Key(ctx, testKid, ""); !errors.Is(err, ErrKeysUnavailable) {
			t.Errorf("kid: err %v, want ErrKeysUnavailable", err)
		}
		if _, err := k.Key(ctx, "", testX5U); !errors.Is(err, ErrKeysUnavailable) {
			t.Errorf("x5u: err %v, want ErrKeysUnavailable", err)
		}
		if _, err := k.Key(ctx, testKid, ""); !errors.Is(err, ErrKeysUnavailable) {
			t.Errorf("kid again, inside the interval: err %v, want ErrKeysUnavailable", err)
		}
		if k.Ready() {
			t.Error("Ready without any key")
		}
		if errors.Is(ErrKeysUnavailable, ErrUnknownKey) || errors.Is(ErrUnknownKey, ErrKeysUnavailable) {
			t.Error("ErrKeysUnavailable and ErrUnknownKey must be distinct")
		}
	})
	t.Run("error status", func(t *testing.T) {
		srv := newKeyServer(t, nil)
		srv.status = http.StatusBadGateway
		k := newTestKeySet(t, KeySetConfig{JWKSURL: srv.jwksURL()})
		if err := k.Load(context.Background()); !errors.Is(err, ErrKeysUnavailable) {
			t.Errorf("err %v, want ErrKeysUnavailable", err)
		}
	})
}

func TestKeySetJWKSEntries(t *testing.T) {
	der := certDER(t, keyC())
	x5cOnly := map[string]any{"kty": "RSA", "kid": "x5c-only", "use": "sig", "x5c": []string{base64.StdEncoding.EncodeToString(der)}}
	small := jwkOf("small", &key1024().PublicKey)
	enc := jwkOf("enc", &keyB().PublicKey)
	enc["use"] = "enc"
	rs512 := jwkOf("rs512", &keyB().PublicKey)
	rs512["alg"] = "RS512"
	ec := map[string]any{"kty": "EC", "kid": "ec", "crv": "P-256", "x": "AA", "y": "AA"}
	evenE := jwkOf("even-e", &keyB().PublicKey)
	evenE["e"] = b64([]byte{1, 0, 0})
	noKid := jwkOf("", &keyB().PublicKey)
	dup := jwkOf(testKid, &keyB().PublicKey)
	// An entry of an unexpected shape is skipped, not fatal to the others.
	numericKid := jwkOf("", &keyB().PublicKey)
	numericKid["kid"] = 7
	srv := newKeyServer(t, jwksBody(t, jwkOf(testKid, &keyA().PublicKey), dup, small, enc, rs512, ec, evenE, noKid, numericKid, x5cOnly))
	k := newTestKeySet(t, KeySetConfig{JWKSURL: srv.jwksURL()})
	ctx := context.Background()
	if err := k.Load(ctx); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		kid  string
		want *rsa.PublicKey // nil: skipped
	}{
		{testKid, &keyA().PublicKey}, // the first of duplicates
		{"x5c-only", &keyC().PublicKey},
		{"small", nil},
		{"enc", nil},
		{"rs512", nil},
		{"ec", nil},
		{"even-e", nil},
	} {
		t.Run(tt.kid, func(t *testing.T) {
			got, err := k.Key(ctx, tt.kid, "")
			if tt.want == nil {
				if !errors.Is(err, ErrUnknownKey) {
					t.Fatalf("err %v, want ErrUnknownKey", err)
				}
				return
			}
			if err != nil || !sameKey(got, tt.want) {
				t.Fatalf("err %v, or wrong key", err)
			}
		})
	}

	t.Run("only small keys", func(t *testing.T) {
		srv := newKeyServer(t, jwksBody(t, small))
		k := newTestKeySet(t, KeySetConfig{JWKSURL: srv.jwksURL()})
		if err := k.Load(ctx); !errors.Is(err, ErrKeysUnavailable) {
			t.Errorf("err %v, want ErrKeysUnavailable", err)
		}
	})
	t.Run("small certificate", func(t *testing.T) {
		srv := newKeyServer(t, nil)
		srv.certs["small.cer"] = certPEM(t, key1024())
		k := newTestKeySet(t, KeySetConfig{CertsURL: srv.certsURL()})
		if _, err := k.Key(ctx, "", "small.cer"); !errors.Is(err, ErrUnknownKey) {
			t.Errorf("err %v, want ErrUnknownKey", err)
		}
	})
}

func TestKeySetOversizedBody(t *testing.T) {
	ctx := context.Background()
	t.Run("JWKS", func(t *testing.T) {
		srv := newKeyServer(t, jwksBody(t, jwkOf(testKid, &keyA().PublicKey)))
		k := newTestKeySet(t, KeySetConfig{JWKSURL: srv.jwksURL()})
		if err := k.Load(ctx); err != nil {
			t.Fatal(err)
		}
		// Valid JSON, padded past 1 MiB.
		big := append(jwksBody(t, jwkOf("ims_na1-key-at-2", &keyB().PublicKey)), bytes.Repeat([]byte(" "), maxJWKSBody)...)
		srv.set(func(s *keyServer) { s.jwks = big })
		if err := k.Load(ctx); !errors.Is(err, ErrKeysUnavailable) || !errors.Is(err, errBodyTooLarge) {
			t.Fatalf("err %v, want ErrKeysUnavailable for a body too large", err)
		}
		if _, err := k.Key(ctx, testKid, ""); err != nil {
			t.Errorf("held key lost: %v", err)
		}
	})
	t.Run("certificate", func(t *testing.T) {
		srv := newKeyServer(t, nil)
		srv.certs["big.cer"] = append(certPEM(t, keyA()), bytes.Repeat([]byte("\n"), maxCertBody)...)
		k := newTestKeySet(t, KeySetConfig{CertsURL: srv.certsURL()})
		if _, err := k.Key(ctx, "", "big.cer"); !errors.Is(err, ErrUnknownKey) || !errors.Is(err, errBodyTooLarge) {
			t.Errorf("err %v, want ErrUnknownKey for a body too large", err)
		}
	})
}

func TestKeySetCertNegativeCache(t *testing.T) {
	ctx := context.Background()
	for _, tt := range []struct {
		name   string
		status int // 0: the host answers 404 for the missing name
		want   error
	}{
		{"missing", 0, ErrUnknownKey},
		{"forbidden", http.StatusForbidden, ErrUnknownKey},
		{"server error", http.StatusInternalServerError, ErrKeysUnavailable},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := newKeyServer(t, nil)
			srv.status = tt.status
			clk := &fakeClock{t: time.Unix(1_700_000_000, 0)}
			k := newTestKeySet(t, KeySetConfig{CertsURL: srv.certsURL()})
			k.now = clk.Now
			for range 10 {
				if _, err := k.Key(ctx, "", testX5U); !errors.Is(err, tt.want) {
					t.Fatalf("err %v, want %v", err, tt.want)
				}
			}
			if n := srv.certHits.Load(); n != 1 {
				t.Fatalf("fetched %d times inside the interval, want 1", n)
			}
			// After the interval the host is asked again, and now has it.
			srv.set(func(s *keyServer) { s.status = 0; s.certs[testX5U] = certPEM(t, keyA()) })
			clk.Advance(defaultMinRefreshInterval)
			if _, err := k.Key(ctx, "", testX5U); err != nil {
				t.Fatal(err)
			}
			if n := srv.certHits.Load(); n != 2 {
				t.Errorf("fetched %d times, want 2", n)
			}
		})
	}
}

func TestKeySetCertFetchBudget(t *testing.T) {
	srv := newKeyServer(t, nil)
	srv.certs[testX5U] = certPEM(t, keyA())
	clk := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	k := newTestKeySet(t, KeySetConfig{CertsURL: srv.certsURL()})
	k.now = clk.Now
	ctx := context.Background()
	for i := range 100 {
		name := "random-" + strings.Repeat("x", i%50) + string(rune('a'+i%26)) + ".cer"
		// Over budget too: an unknown key, not an outage.
		if _, err := k.Key(ctx, "", name); !errors.Is(err, ErrUnknownKey) {
			t.Fatalf("err %v, want ErrUnknownKey", err)
		}
	}
	if n := srv.certHits.Load(); n > certFetchBudget {
		t.Errorf("100 random names fetched %d times, want at most %d", n, certFetchBudget)
	}
	// In the next window the real certificate is fetched.
	clk.Advance(defaultMinRefreshInterval)
	if _, err := k.Key(ctx, "", testX5U); err != nil {
		t.Fatal(err)
	}
	if n := k.certs.Len(); n > certFetchBudget+1 {
		t.Errorf("%d certificate entries kept, want expired negatives pruned", n)
	}
}

func TestKeySetCertSingleFlight(t *testing.T) {
	srv := newKeyServer(t, nil)
	srv.certs[testX5U] = certDER(t, keyA())
	srv.delay = 100 * time.Millisecond
	k := newTestKeySet(t, KeySetConfig{CertsURL: srv.certsURL()})
	var wg sync.WaitGroup
	var failed atomic.Int64
	for range 200 {
		wg.Go(func() {
			if _, err := k.Key(context.Background(), "", testX5U); err != nil {
				failed.Add(1)
			}
		})
	}
	wg.Wait()
	if n := failed.Load(); n != 0 {
		t.Errorf("%d lookups failed", n)
	}
	if n := srv.certHits.Load(); n != 1 {
		t.Errorf("fetched %d times, want 1", n)
	}
}

func TestKeySetWaitHonoursContext(t *testing.T) {
	srv := newKeyServer(t, jwksBody(t, jwkOf(testKid, &keyA().PublicKey)))
	srv.delay = 300 * time.Millisecond
	k := newTestKeySet(t, KeySetConfig{JWKSURL: srv.jwksURL()})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	_, err := k.Key(ctx, testKid, "")
	if !errors.Is(err, ErrKeysUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err %v, want ErrKeysUnavailable and DeadlineExceeded", err)
	}
	// The shared fetch went on without the caller who gave up.
	if err := k.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := srv.jwksHits.Load(); n != 1 {
		t.Errorf("JWKS fetched %d times, want 1", n)
	}
}

func TestKeySetRedirectNotFollowed(t *testing.T) {
	var targetHits atomic.Int64
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		targetHits.Add(1)
		_, _ = w.Write(jwksBody(t, jwkOf(testKid, &keyA().PublicKey)))
	}))
	defer target.Close()
	redir := httptest.NewServer(http.RedirectHandler(target.URL+"/ims/keys", http.StatusFound))
	defer redir.Close()
	// Even a client that would follow redirects does not.
	k := newTestKeySet(t, KeySetConfig{JWKSURL: redir.URL + "/ims/keys", HTTPClient: &http.Client{}})
	if err := k.Load(context.Background()); !errors.Is(err, ErrKeysUnavailable) {
		t.Fatalf("err %v, want ErrKeysUnavailable", err)
	}
	if n := targetHits.Load(); n != 0 {
		t.Errorf("redirect followed %d times", n)
	}
}

func TestKeySetRun(t *testing.T) {
	srv := newKeyServer(t, jwksBody(t, jwkOf(testKid, &keyA().PublicKey)))
	srv.status = http.StatusServiceUnavailable
	k := newTestKeySet(t, KeySetConfig{
		JWKSURL:            srv.jwksURL(),
		MinRefreshInterval: 10 * time.Millisecond,
		RefreshInterval:    40 * time.Millisecond,
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { k.Run(ctx); close(done) }()

	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	// Run retries while the host fails, then loads.
	waitFor("a retry", func() bool { return srv.jwksHits.Load() >= 2 })
	if k.Ready() {
		t.Fatal("Ready while the host fails")
	}
	srv.set(func(s *keyServer) { s.status = 0 })
	waitFor("Ready", k.Ready)
	// Then it refreshes periodically; failures keep the keys.
	srv.set(func(s *keyServer) { s.status = http.StatusInternalServerError })
	hits := srv.jwksHits.Load()
	waitFor("a periodic refresh", func() bool { return srv.jwksHits.Load() >= hits+2 })
	if !k.Ready() {
		t.Error("keys lost after failed refreshes")
	}
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
}
