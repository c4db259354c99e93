package main

import (
	"crypto/rsa"
	"errors"
	"fmt"
	"math/big"
	"os"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/caarlos0/env/v11"

	"github.com/gatehouse-proxy/gatehouse/auth/techacct"
)

// techSettings are the technical account's settings: all that `gatehouse
// token` and `gatehouse check-health` read, and what serve's egress
// listener needs besides its own two. The help tag is what `gatehouse
// serve -h` prints. The variables are techacct.EnvName's.
type techSettings struct {
	IMSURL           string        `env:"TECH_IMS_URL" help:"IMS of the technical account; it is also named in the exchange JWT's aud (default: GATEHOUSE_IMS_URL, itself https://ims-na1.adobelogin.com by default)"`
	ClientID         string        `env:"TECH_CLIENT_ID" help:"the integration's client id (API key); required for a technical account"`
	ClientSecret     string        `env:"TECH_CLIENT_SECRET" help:"the integration's client secret; required (or TECH_CLIENT_SECRET_FILE)"`
	ClientSecretFile string        `env:"TECH_CLIENT_SECRET_FILE" help:"file holding the client secret instead (a mounted secret; one trailing newline is ignored); not both"`
	OrgID            string        `env:"TECH_ORG_ID" help:"the integration's organization, …@AdobeOrg; required"`
	AccountID        string        `env:"TECH_ACCOUNT_ID" help:"JWT exchange: the technical account id, …@techacct.adobe.com"`
	PrivateKey       string        `env:"TECH_PRIVATE_KEY" help:"JWT exchange: PEM file of the private key whose certificate is uploaded ('gatehouse cert create' makes one)"`
	Metascopes       []string      `env:"TECH_METASCOPES" envSeparator:"," help:"JWT exchange: metascopes of the integration's APIs, comma separated, e.g. ent_cloudmgr_sdk"`
	Scopes           []string      `env:"TECH_SCOPES" envSeparator:"," help:"OAuth server-to-server (instead of the three above): scopes, comma separated, e.g. openid,AdobeID,read_organizations"`
	JWTLifetime      time.Duration `env:"TECH_JWT_LIFETIME" envDefault:"5m" help:"JWT exchange: how long the signed JWT is valid (its exp)"`
	JWTPayload       string        `env:"TECH_JWT_PAYLOAD" help:"JWT exchange: the developer console's JWT payload, pasted whole (JSON); gives the organization (iss), the technical account (sub) and the metascopes, instead of the three settings above"`
	JWTPayloadFile   string        `env:"TECH_JWT_PAYLOAD_FILE" help:"file holding the JWT payload instead; not both"`
}

// loadTechConfig reads the technical account's settings from vars and
// checks them with techacct.Config.Validate. Every error names the
// variables to fix. TECH_IMS_URL defaults to GATEHOUSE_IMS_URL, and that to
// the production IMS.
func loadTechConfig(vars map[string]string) (*techacct.Config, error) {
	var s techSettings
	if err := env.ParseWithOptions(&s, env.Options{Prefix: envPrefix, Environment: vars}); err != nil {
		return nil, describeEnvError(err, envKeysOf(reflect.TypeOf(techSettings{})))
	}
	var errs []error
	name := techacct.EnvName
	if s.IMSURL == "" {
		s.IMSURL = vars[envPrefix+"IMS_URL"]
		if s.IMSURL != "" {
			// A bad value is GATEHOUSE_IMS_URL's: say so.
			name = func(field string) string {
				if field == "IMSURL" {
					return envPrefix + "IMS_URL (the default of " + techacct.EnvName("IMSURL") + ")"
				}
				return techacct.EnvName(field)
			}
		} else {
			s.IMSURL = techacct.DefaultIMSURL
		}
	}
	secret, err := secretSetting(vars, "TECH_CLIENT_SECRET")
	if err != nil {
		errs = append(errs, err)
		secret = "(from the file)" // for Validate: the secret was set, if badly
	}
	cfg := &techacct.Config{
		IMSURL:       s.IMSURL,
		ClientID:     s.ClientID,
		ClientSecret: secret,
		OrgID:        s.OrgID,
		AccountID:    s.AccountID,
		Metascopes:   s.Metascopes,
		Scopes:       s.Scopes,
		JWTLifetime:  s.JWTLifetime,
	}
	if err := applyPayload(vars, cfg, s.IMSURL != vars[envPrefix+"TECH_IMS_URL"]); err != nil {
		errs = append(errs, err)
	}
	keyLoaded := true
	if s.PrivateKey != "" {
		key, err := techacct.LoadPrivateKey(s.PrivateKey)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", techacct.EnvName("PrivateKey"), err))
			// For Validate: a key was set, so the JWT exchange was meant.
			// Its problem is the one just reported, not Validate's.
			key, keyLoaded = &rsa.PrivateKey{PublicKey: rsa.PublicKey{N: new(big.Int)}}, false
		}
		cfg.PrivateKey = key
	}
	if s.JWTLifetime <= 0 {
		errs = append(errs, fmt.Errorf("%s: %s: must be a positive duration, e.g. 5m", techacct.EnvName("JWTLifetime"), s.JWTLifetime))
		cfg.JWTLifetime = 0
	}
	if err := cfg.Validate(); err != nil {
		var ce *techacct.ConfigError
		if !errors.As(err, &ce) {
			return nil, err
		}
		if !keyLoaded {
			var kept []techacct.FieldError
			for _, f := range ce.Invalid {
				if f.Field != "PrivateKey" {
					kept = append(kept, f)
				}
			}
			ce.Invalid = kept
		}
		if d := ce.Describe(name); d != "" {
			errs = append(errs, errors.New("technical account: "+d))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return cfg, nil
}

// applyPayload fills cfg's JWT-exchange fields from GATEHOUSE_TECH_JWT_PAYLOAD
// (or its _FILE), the console's payload pasted whole. A setting given
// separately as well must agree with the payload's claim; aud must name
// the client id and the IMS in use, since the exchange sends the client
// secret there. imsDefaulted says the IMS URL came from GATEHOUSE_IMS_URL
// or the default rather than GATEHOUSE_TECH_IMS_URL, for the message.
func applyPayload(vars map[string]string, cfg *techacct.Config, imsDefaulted bool) error {
	const name = envPrefix + "TECH_JWT_PAYLOAD"
	raw, err := secretSetting(vars, "TECH_JWT_PAYLOAD")
	if err != nil || raw == "" {
		return err
	}
	p, err := techacct.ParsePayload([]byte(raw))
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	var errs []error
	contradicts := func(claim, field, claimed, given string) {
		errs = append(errs, fmt.Errorf("%s: claim %q is %q, but %s is %q: they must agree (or leave %[4]s unset)",
			name, claim, claimed, techacct.EnvName(field), given))
	}
	if cfg.ClientID == "" {
		cfg.ClientID = p.ClientID
	} else if cfg.ClientID != p.ClientID {
		contradicts("aud", "ClientID", p.ClientID, cfg.ClientID)
	}
	if !techacct.SameIMS(p.IMSURL, cfg.IMSURL) {
		from := techacct.EnvName("IMSURL")
		if imsDefaulted {
			from += " is unset, so " + cfg.IMSURL + " is used"
		} else {
			from += " is " + cfg.IMSURL
		}
		errs = append(errs, fmt.Errorf("%s: claim \"aud\" names IMS %s, but %s: the exchange would send the client secret to another IMS; set %s to the payload's IMS",
			name, p.IMSURL, from, techacct.EnvName("IMSURL")))
	}
	if cfg.OrgID == "" {
		cfg.OrgID = p.OrgID
	} else if cfg.OrgID != p.OrgID {
		contradicts("iss", "OrgID", p.OrgID, cfg.OrgID)
	}
	if cfg.AccountID == "" {
		cfg.AccountID = p.AccountID
	} else if cfg.AccountID != p.AccountID {
		contradicts("sub", "AccountID", p.AccountID, cfg.AccountID)
	}
	if len(cfg.Metascopes) == 0 {
		cfg.Metascopes = p.Metascopes
	} else if given := trimmedSorted(cfg.Metascopes); !slices.Equal(given, p.Metascopes) {
		contradicts("…/s/…", "Metascopes", strings.Join(p.Metascopes, ","), strings.Join(given, ","))
	}
	return errors.Join(errs...)
}

// listSetting is a comma-separated setting's values as given: each
// trimmed, empty ones dropped ("a, b," is a and b).
func listSetting(vs []string) []string {
	var out []string
	for _, v := range vs {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

// trimmedSorted is a list setting's values as a set, sorted.
func trimmedSorted(vs []string) []string {
	out := listSetting(vs)
	slices.Sort(out)
	return out
}

// secretSetting is the value of the variable GATEHOUSE_<name>, or the
// contents of the file named by GATEHOUSE_<name>_FILE, as container
// platforms mount secrets; one trailing newline of the file is dropped.
// Setting both, or naming a file that cannot be read or is empty, is an
// error naming the variables.
func secretSetting(vars map[string]string, name string) (string, error) {
	key, fileKey := envPrefix+name, envPrefix+name+"_FILE"
	value, path := vars[key], vars[fileKey]
	switch {
	case path == "":
		return value, nil
	case value != "":
		return "", fmt.Errorf("%s and %s are both set: set one of them", key, fileKey)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("%s: %w", fileKey, err)
	}
	s := string(b)
	if t, ok := strings.CutSuffix(s, "\n"); ok {
		s = strings.TrimSuffix(t, "\r")
	}
	if s == "" {
		return "", fmt.Errorf("%s: %s is empty", fileKey, path)
	}
	return s, nil
}
