package ims_test

import (
	"context"
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"github.com/gatehouse-proxy/gatehouse/auth/ims"
	"github.com/gatehouse-proxy/gatehouse/auth/ims/imstest"
)

const fuzzClient = "cc-europa-desktop_1_0"

// verifySentinels are the errors Verify documents; every error it returns
// wraps one of them.
var verifySentinels = []error{
	ims.ErrMalformed, ims.ErrAlgorithm, ims.ErrUnknownKey, ims.ErrKeysUnavailable, ims.ErrBadSignature,
	ims.ErrWrongType, ims.ErrWrongCluster, ims.ErrClientNotAllowed, ims.ErrNoExpiry, ims.ErrExpired, ims.ErrNotYetValid,
}

// FuzzVerify runs Verifier.Verify over arbitrary token strings, with the
// key set of a real emulator: it never panics, never lets the token into
// its error, accepts only what passes every check, and refuses with one of
// its sentinels.
func FuzzVerify(f *testing.F) {
	idp := imstest.NewServer(imstest.Options{})
	f.Cleanup(idp.Close)
	idp.AddUser(imstest.User{ID: "7F8F1A2B3C4D5E6F7A8B9C0D@AdobeID", Email: "erika@example.com"})
	token, _, err := idp.MintToken(imstest.TokenRequest{UserID: "7F8F1A2B3C4D5E6F7A8B9C0D@AdobeID", ClientID: fuzzClient})
	if err != nil {
		f.Fatal(err)
	}
	h, p, s := split(token)
	enc := base64.RawURLEncoding
	for _, seed := range []string{
		token,
		h + "." + p + ".",
		h + "." + p + "." + s[:len(s)-2],
		enc.EncodeToString([]byte(`{"alg":"none"}`)) + "." + p + ".",
		enc.EncodeToString([]byte(`{"alg":"HS256","kid":"ims_na1-key-at-1"}`)) + "." + p + "." + s,
		enc.EncodeToString([]byte(`{"alg":"RS256","kid":"unknown","x5u":"../../etc/passwd"}`)) + "." + p + "." + s,
		enc.EncodeToString([]byte(`{"alg":"RS256","kid":"ims_na1-key-at-1","crit":["exp"]}`)) + "." + p + "." + s,
		h + "." + enc.EncodeToString([]byte(`{"type":"access_token","ctp":"x"}`)) + "." + s,
		"", ".", "..", "a.b.c", "a.b.c.d", strings.Repeat("A", 9000),
	} {
		f.Add(seed)
	}
	keys, err := ims.NewKeySet(ims.KeySetConfig{JWKSURL: idp.URL + "/ims/keys", CertsURL: idp.URL + idp.CertsPath()})
	if err != nil {
		f.Fatal(err)
	}
	if err := keys.Load(context.Background()); err != nil {
		f.Fatal(err)
	}
	v, err := ims.NewVerifier(ims.VerifierConfig{Keys: keys, Cluster: imstest.DefaultCluster, ClientIDs: []string{fuzzClient}})
	if err != nil {
		f.Fatal(err)
	}
	if _, err := v.Verify(context.Background(), token); err != nil {
		f.Fatalf("the emulator's token: %v", err)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		c, err := v.Verify(context.Background(), raw)
		if err == nil {
			if c.Type != ims.TypeAccessToken || c.Cluster != imstest.DefaultCluster || c.ClientID != fuzzClient ||
				c.UserID == "" || c.ExpiresAt().IsZero() {
				t.Fatalf("accepted claims %+v", c)
			}
			return
		}
		if c != nil {
			t.Fatalf("claims %+v returned with error %v", c, err)
		}
		if !slicesContainsIs(err, verifySentinels) {
			t.Fatalf("error %v wraps none of the package sentinels", err)
		}
		if len(raw) > 16 && strings.Contains(err.Error(), raw) {
			t.Fatalf("error %q shows the token", err)
		}
	})
}

func split(token string) (header, payload, sig string) {
	parts := strings.SplitN(token, ".", 3)
	return parts[0], parts[1], parts[2]
}

func slicesContainsIs(err error, targets []error) bool {
	for _, target := range targets {
		if errors.Is(err, target) {
			return true
		}
	}
	return false
}
