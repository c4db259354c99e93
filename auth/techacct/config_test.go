package techacct_test

import (
	"errors"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/gatehouse-proxy/gatehouse/auth/techacct"
)

func TestValidate(t *testing.T) {
	base := techacct.Config{ClientID: clientID, ClientSecret: secret, OrgID: orgID}
	with := func(f func(c *techacct.Config)) techacct.Config {
		c := base
		f(&c)
		return c
	}
	jwtSet := func(c *techacct.Config) {
		c.AccountID, c.PrivateKey, c.Metascopes = accountID, techKey(), []string{metascope}
	}
	for _, tc := range []struct {
		name        string
		cfg         techacct.Config
		method      string
		missing     []string
		noMethod    bool
		conflicting []string
		invalid     []string
		envs        []string // named by Describe(EnvName)
	}{
		{name: "jwt", cfg: with(jwtSet), method: techacct.MethodJWT},
		{name: "client credentials", cfg: with(func(c *techacct.Config) { c.Scopes = scopes }), method: techacct.MethodClientCredentials},
		{name: "empty", cfg: techacct.Config{}, missing: []string{"ClientID", "ClientSecret", "OrgID"}, noMethod: true,
			envs: []string{"GATEHOUSE_TECH_CLIENT_ID", "GATEHOUSE_TECH_CLIENT_SECRET", "GATEHOUSE_TECH_ORG_ID", "GATEHOUSE_TECH_SCOPES", "GATEHOUSE_TECH_PRIVATE_KEY"}},
		{name: "no method", cfg: base, noMethod: true},
		{name: "blank scopes do not count", cfg: with(func(c *techacct.Config) { c.Scopes = []string{"", " "} }), noMethod: true},
		{name: "only the account id", cfg: with(func(c *techacct.Config) { c.AccountID = accountID }), method: techacct.MethodJWT,
			missing: []string{"PrivateKey", "Metascopes"}, envs: []string{"GATEHOUSE_TECH_PRIVATE_KEY", "GATEHOUSE_TECH_METASCOPES"}},
		{name: "no account id", cfg: with(func(c *techacct.Config) { c.PrivateKey, c.Metascopes = techKey(), []string{metascope} }), method: techacct.MethodJWT,
			missing: []string{"AccountID"}, envs: []string{"GATEHOUSE_TECH_ACCOUNT_ID"}},
		{name: "secret missing too", cfg: with(func(c *techacct.Config) { c.ClientSecret = " "; c.Metascopes = []string{metascope} }), method: techacct.MethodJWT,
			missing: []string{"ClientSecret", "AccountID", "PrivateKey"}},
		{name: "both", cfg: with(func(c *techacct.Config) { jwtSet(c); c.Scopes = scopes }), method: techacct.MethodJWT,
			conflicting: []string{"AccountID", "PrivateKey", "Metascopes", "Scopes"}, envs: []string{"GATEHOUSE_TECH_SCOPES", "GATEHOUSE_TECH_ACCOUNT_ID"}},
		{name: "half and scopes", cfg: with(func(c *techacct.Config) { c.AccountID = accountID; c.Scopes = scopes }), method: techacct.MethodJWT,
			conflicting: []string{"AccountID", "Scopes"}},
		{name: "bad IMS URL", cfg: with(func(c *techacct.Config) { c.Scopes = scopes; c.IMSURL = "ims-na1.adobelogin.com" }), method: techacct.MethodClientCredentials,
			invalid: []string{"IMSURL"}, envs: []string{"GATEHOUSE_TECH_IMS_URL"}},
		{name: "IMS URL with a query", cfg: with(func(c *techacct.Config) { c.Scopes = scopes; c.IMSURL = "https://ims.example/?a=b" }), method: techacct.MethodClientCredentials,
			invalid: []string{"IMSURL"}},
		{name: "small key", cfg: with(func(c *techacct.Config) { jwtSet(c); c.PrivateKey = genKey(1024) }), method: techacct.MethodJWT,
			invalid: []string{"PrivateKey"}},
		{name: "negative JWT lifetime", cfg: with(func(c *techacct.Config) { jwtSet(c); c.JWTLifetime = -time.Second }), method: techacct.MethodJWT,
			invalid: []string{"JWTLifetime"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.cfg.Method(); got != tc.method {
				t.Errorf("Method() = %q, want %q", got, tc.method)
			}
			err := tc.cfg.Validate()
			_, newErr := techacct.New(tc.cfg)
			valid := tc.missing == nil && !tc.noMethod && tc.conflicting == nil && tc.invalid == nil
			if valid {
				if err != nil || newErr != nil {
					t.Fatalf("Validate: %v; New: %v", err, newErr)
				}
				return
			}
			var ce *techacct.ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("Validate: %v (%T), want *ConfigError", err, err)
			}
			if !errors.As(newErr, new(*techacct.ConfigError)) {
				t.Errorf("New: %v, want the *ConfigError", newErr)
			}
			var invalid []string
			for _, f := range ce.Invalid {
				invalid = append(invalid, f.Field)
			}
			if !slices.Equal(ce.Missing, tc.missing) || ce.NoMethod != tc.noMethod || !slices.Equal(ce.Conflicting, tc.conflicting) || !slices.Equal(invalid, tc.invalid) {
				t.Errorf("got missing %v, no method %v, conflicting %v, invalid %v", ce.Missing, ce.NoMethod, ce.Conflicting, invalid)
			}
			for _, f := range append(append(slices.Clone(tc.missing), tc.conflicting...), tc.invalid...) {
				if !regexp.MustCompile(`\b` + f + `\b`).MatchString(err.Error()) {
					t.Errorf("Error() %q does not name %s", err, f)
				}
			}
			described := ce.Describe(techacct.EnvName)
			for _, env := range tc.envs {
				if !strings.Contains(described, env) {
					t.Errorf("Describe(EnvName) %q does not name %s", described, env)
				}
			}
			if strings.Contains(described, "ClientSecret") || strings.Contains(err.Error(), secret) {
				t.Errorf("Describe(EnvName) %q: a field name or the secret", described)
			}
			t.Log(described)
		})
	}
}

func TestSignExchangeJWT(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	for _, tc := range []struct {
		name     string
		imsURL   string
		lifetime time.Duration
		meta     []string
		wantAud  string
		wantExp  int64
		wantMeta []string
	}{
		{"defaults", "", 0, []string{metascope}, "https://ims-na1.adobelogin.com/c/" + clientID, now.Add(5 * time.Minute).Unix(),
			[]string{"https://ims-na1.adobelogin.com/s/" + metascope}},
		{"trailing slash, two metascopes, lifetime", "http://127.0.0.1:8180/", time.Minute, []string{metascope, "ent_other_sdk"}, "http://127.0.0.1:8180/c/" + clientID, now.Add(time.Minute).Unix(),
			[]string{"http://127.0.0.1:8180/s/" + metascope, "http://127.0.0.1:8180/s/ent_other_sdk"}},
		{"metascope given as a URL", "", 0, []string{"https://ims-na1.adobelogin.com/s/" + metascope}, "https://ims-na1.adobelogin.com/c/" + clientID, now.Add(5 * time.Minute).Unix(),
			[]string{"https://ims-na1.adobelogin.com/s/" + metascope}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := techacct.Config{IMSURL: tc.imsURL, ClientID: clientID, OrgID: orgID, AccountID: accountID, PrivateKey: techKey(), Metascopes: tc.meta, JWTLifetime: tc.lifetime}
			s, err := techacct.SignExchangeJWT(cfg, now)
			if err != nil {
				t.Fatal(err)
			}
			claims := jwt.MapClaims{}
			tok, err := jwt.NewParser(jwt.WithValidMethods([]string{"RS256"}), jwt.WithoutClaimsValidation()).
				ParseWithClaims(s, claims, func(*jwt.Token) (any, error) { return &techKey().PublicKey, nil })
			if err != nil {
				t.Fatal(err)
			}
			if tok.Header["alg"] != "RS256" {
				t.Errorf("header %v", tok.Header)
			}
			if claims["iss"] != orgID || claims["sub"] != accountID || claims["aud"] != tc.wantAud || claims["exp"] != float64(tc.wantExp) {
				t.Errorf("claims %v", claims)
			}
			if jti, _ := claims["jti"].(string); len(jti) != 32 {
				t.Errorf("jti %q", jti)
			}
			for _, m := range tc.wantMeta {
				if claims[m] != true {
					t.Errorf("no %q: true in %v", m, claims)
				}
			}
			if len(claims) != 5+len(tc.wantMeta) {
				t.Errorf("claims %v: want exp, iss, sub, aud, jti and the metascopes only", claims)
			}
		})
	}
	t.Run("two JWTs differ by jti", func(t *testing.T) {
		cfg := techacct.Config{ClientID: clientID, OrgID: orgID, AccountID: accountID, PrivateKey: techKey(), Metascopes: []string{metascope}}
		a, _ := techacct.SignExchangeJWT(cfg, now)
		b, _ := techacct.SignExchangeJWT(cfg, now)
		if a == b {
			t.Error("same JWT twice")
		}
	})
	t.Run("no key", func(t *testing.T) {
		if _, err := techacct.SignExchangeJWT(techacct.Config{ClientID: clientID, OrgID: orgID, AccountID: accountID, Metascopes: []string{metascope}}, now); err == nil {
			t.Error("no error")
		}
	})
}
