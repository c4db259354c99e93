package techacct

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// SignExchangeJWT signs the JWT that the JWT exchange trades for an access
// token, with RS256 and cfg.PrivateKey. Its claims: exp = now +
// cfg.JWTLifetime (default 5 minutes), iss = OrgID, sub = AccountID, aud =
// IMSURL + "/c/" + ClientID, IMSURL + "/s/" + m: true for each metascope m,
// and a random jti. IMSURL defaults to DefaultIMSURL; a trailing slash is
// ignored.
func SignExchangeJWT(cfg Config, now time.Time) (string, error) {
	cfg = cfg.normalized()
	switch {
	case cfg.PrivateKey == nil:
		return "", errors.New("sign exchange JWT: no private key")
	case cfg.ClientID == "" || cfg.OrgID == "" || cfg.AccountID == "":
		return "", errors.New("sign exchange JWT: the client id, org id and technical account id are required")
	case len(cfg.Metascopes) == 0:
		return "", errors.New("sign exchange JWT: no metascope")
	}
	claims := jwt.MapClaims{
		"exp": now.Add(cfg.JWTLifetime).Unix(),
		"iss": cfg.OrgID,
		"sub": cfg.AccountID,
		"aud": cfg.IMSURL + "/c/" + cfg.ClientID,
		"jti": randomID(),
	}
	for _, m := range cfg.Metascopes {
		claims[metascopeClaim(cfg.IMSURL, m)] = true
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodRS256, claims).SignedString(cfg.PrivateKey)
	if err != nil {
		return "", errors.New("sign exchange JWT: " + err.Error())
	}
	return s, nil
}

// metascopeClaim is the claim name of metascope m: "<imsURL>/s/<m>", or m
// itself when it is already a URL.
func metascopeClaim(imsURL, m string) string {
	if strings.HasPrefix(m, "https://") || strings.HasPrefix(m, "http://") {
		return m
	}
	return imsURL + "/s/" + m
}

func randomID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand panics instead)
	return hex.EncodeToString(b[:])
}
