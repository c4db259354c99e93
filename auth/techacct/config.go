package techacct

import (
	"crypto/rsa"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"
)

// The two ways a technical account obtains tokens, as Method names them.
const (
	MethodJWT               = "jwt"                // the JWT exchange (deprecated, still in use)
	MethodClientCredentials = "client_credentials" // OAuth server-to-server
)

// Defaults of Config.
const (
	DefaultIMSURL      = "https://ims-na1.adobelogin.com"
	DefaultJWTLifetime = 5 * time.Minute
)

// MinKeyBits is the smallest RSA key accepted for the JWT exchange.
const MinKeyBits = 2048

// Config is one technical account. Fill either the JWT exchange fields
// (AccountID, PrivateKey, Metascopes) or Scopes (client credentials).
type Config struct {
	// IMSURL is the IMS base URL, e.g. https://ims-na1.adobelogin.com. It
	// is both where the token endpoints are called and the host named in
	// the exchange JWT's aud and metascope claims. Empty means
	// DefaultIMSURL.
	IMSURL string

	ClientID, ClientSecret string // of the integration; always required
	OrgID                  string // "…@AdobeOrg"; always required

	// JWT exchange (deprecated but in use).
	AccountID  string          // "…@techacct.adobe.com"
	PrivateKey *rsa.PrivateKey // whose certificate is registered for the integration
	// Metascopes are names like "ent_cloudmgr_sdk", claimed as
	// "<IMSURL>/s/<name>": true. A value that is already a URL (http:// or
	// https://…/s/<name>) is claimed as it is.
	Metascopes []string
	// JWTLifetime sets the JWT's exp to now + JWTLifetime. Zero means
	// DefaultJWTLifetime (5 minutes).
	JWTLifetime time.Duration

	// OAuth server-to-server (client credentials).
	Scopes []string // e.g. "openid", "AdobeID", "read_organizations"

	// HTTPClient calls IMS. Nil means a client with a 10 s timeout.
	// Redirects are never followed, whatever it says.
	HTTPClient *http.Client
	// Now is the clock for the JWT's exp and the token's renewal. Nil
	// means time.Now. Run's timers assume it advances with real time.
	Now func() time.Time
	// Logger receives renewal failures and successes (never a token or a
	// secret). Nil means no logging.
	Logger *zap.Logger
}

// EnvName is the environment variable `gatehouse` reads a Config field
// from ("ClientSecret" → "GATEHOUSE_TECH_CLIENT_SECRET"), or "" for a
// field that has none. Pass it to ConfigError.Describe.
func EnvName(field string) string {
	return envNames[field]
}

var envNames = map[string]string{
	"IMSURL":       "GATEHOUSE_TECH_IMS_URL",
	"ClientID":     "GATEHOUSE_TECH_CLIENT_ID",
	"ClientSecret": "GATEHOUSE_TECH_CLIENT_SECRET",
	"OrgID":        "GATEHOUSE_TECH_ORG_ID",
	"AccountID":    "GATEHOUSE_TECH_ACCOUNT_ID",
	"PrivateKey":   "GATEHOUSE_TECH_PRIVATE_KEY",
	"Metascopes":   "GATEHOUSE_TECH_METASCOPES",
	"Scopes":       "GATEHOUSE_TECH_SCOPES",
	"JWTLifetime":  "GATEHOUSE_TECH_JWT_LIFETIME",
}

// jwtFields are the fields of the JWT exchange, in declaration order.
var jwtFields = []string{"AccountID", "PrivateKey", "Metascopes"}

// ConfigError is Validate's answer: every problem found, by Config field
// name. Error() names the fields; Describe names them as the caller likes
// (for instance by their environment variables, with EnvName).
type ConfigError struct {
	// Missing are required fields that are empty, in declaration order:
	// any of ClientID, ClientSecret, OrgID, and the JWT exchange fields
	// not set when another of them is.
	Missing []string
	// NoMethod: neither the JWT exchange fields nor Scopes are set.
	NoMethod bool
	// Conflicting are the fields set of both methods (JWT exchange
	// fields and Scopes), when both are.
	Conflicting []string
	// Invalid are fields set to an unusable value.
	Invalid []FieldError
}

// FieldError is an unusable value of one field.
type FieldError struct {
	Field   string
	Problem string // does not name the field
}

func (e *ConfigError) Error() string {
	return "technical account: " + e.Describe(nil)
}

// Describe is the problems as one line, "; " between them, with every field
// name passed through name (nil: the Config field names). Fields name
// maps to "" keep their Config name.
func (e *ConfigError) Describe(name func(field string) string) string {
	n := func(f string) string {
		if name != nil {
			if s := name(f); s != "" {
				return s
			}
		}
		return f
	}
	names := func(fs []string) []string {
		out := make([]string, len(fs))
		for i, f := range fs {
			out[i] = n(f)
		}
		return out
	}
	methods := fmt.Sprintf("set %s for the JWT exchange, or %s for OAuth server-to-server credentials",
		list(names(jwtFields), "and"), n("Scopes"))

	var parts []string
	var base, jwt []string
	for _, f := range e.Missing {
		if slices.Contains(jwtFields, f) {
			jwt = append(jwt, f)
		} else {
			base = append(base, f)
		}
	}
	if len(base) > 0 {
		parts = append(parts, list(names(base), "and")+" "+isAre(len(base))+" required")
	}
	if len(jwt) > 0 {
		parts = append(parts, fmt.Sprintf("the JWT exchange needs %s: %s %s missing",
			list(names(jwtFields), "and"), list(names(jwt), "and"), isAre(len(jwt))))
	}
	if e.NoMethod {
		parts = append(parts, "no way to obtain tokens: "+methods)
	}
	if len(e.Conflicting) > 0 {
		all := "all"
		if len(e.Conflicting) == 2 {
			all = "both"
		}
		parts = append(parts, fmt.Sprintf("%s are %s set: %s, not both", list(names(e.Conflicting), "and"), all, methods))
	}
	for _, f := range e.Invalid {
		parts = append(parts, n(f.Field)+": "+f.Problem)
	}
	return strings.Join(parts, "; ")
}

func isAre(n int) string {
	if n == 1 {
		return "is"
	}
	return "are"
}

// list joins "a", "b", "c" as "a, b and c".
func list(s []string, conj string) string {
	switch len(s) {
	case 0:
		return ""
	case 1:
		return s[0]
	}
	return strings.Join(s[:len(s)-1], ", ") + " " + conj + " " + s[len(s)-1]
}

// Validate reports every missing, conflicting or unusable field as a
// *ConfigError, by Config field name: ClientID, ClientSecret and OrgID are
// always required; exactly one of {AccountID, PrivateKey, Metascopes} (all
// three, for the JWT exchange) or {Scopes} (client credentials) must be
// set. Empty strings in Metascopes and Scopes do not count.
func (c *Config) Validate() error {
	var e ConfigError
	if c.IMSURL != "" {
		if p := checkIMSURL(c.IMSURL); p != "" {
			e.Invalid = append(e.Invalid, FieldError{"IMSURL", p})
		}
	}
	for _, f := range []struct{ name, v string }{{"ClientID", c.ClientID}, {"ClientSecret", c.ClientSecret}, {"OrgID", c.OrgID}} {
		if strings.TrimSpace(f.v) == "" {
			e.Missing = append(e.Missing, f.name)
		}
	}
	jwtSet := map[string]bool{
		"AccountID":  strings.TrimSpace(c.AccountID) != "",
		"PrivateKey": c.PrivateKey != nil,
		"Metascopes": len(clean(c.Metascopes)) > 0,
	}
	var set, unset []string
	for _, f := range jwtFields {
		if jwtSet[f] {
			set = append(set, f)
		} else {
			unset = append(unset, f)
		}
	}
	scopes := len(clean(c.Scopes)) > 0
	switch {
	case len(set) > 0 && scopes:
		e.Conflicting = append(set, "Scopes")
	case len(set) > 0:
		e.Missing = append(e.Missing, unset...)
	case !scopes:
		e.NoMethod = true
	}
	if c.PrivateKey != nil {
		if bits := c.PrivateKey.N.BitLen(); bits < MinKeyBits {
			e.Invalid = append(e.Invalid, FieldError{"PrivateKey", fmt.Sprintf("an RSA key of %d bits: at least %d are required", bits, MinKeyBits)})
		} else if err := c.PrivateKey.Validate(); err != nil {
			e.Invalid = append(e.Invalid, FieldError{"PrivateKey", "not a usable RSA key: " + err.Error()})
		}
	}
	if c.JWTLifetime < 0 {
		e.Invalid = append(e.Invalid, FieldError{"JWTLifetime", fmt.Sprintf("%s: must not be negative", c.JWTLifetime)})
	}
	if len(e.Missing) == 0 && !e.NoMethod && len(e.Conflicting) == 0 && len(e.Invalid) == 0 {
		return nil
	}
	return &e
}

func checkIMSURL(s string) string {
	u, err := url.Parse(s)
	switch {
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		return fmt.Sprintf("%q: want an absolute http or https URL such as %s", s, DefaultIMSURL)
	case u.User != nil:
		return "must not carry credentials"
	case u.RawQuery != "" || u.Fragment != "":
		return fmt.Sprintf("%q: must not have a query or fragment", s)
	}
	return ""
}

// Method is MethodJWT when any JWT exchange field is set, else
// MethodClientCredentials when Scopes is, else "". For a Config that
// Validate accepts it is the method Source uses.
func (c *Config) Method() string {
	switch {
	case strings.TrimSpace(c.AccountID) != "" || c.PrivateKey != nil || len(clean(c.Metascopes)) > 0:
		return MethodJWT
	case len(clean(c.Scopes)) > 0:
		return MethodClientCredentials
	}
	return ""
}

// normalized is c with defaults applied and lists cleaned.
func (c Config) normalized() Config {
	if c.IMSURL == "" {
		c.IMSURL = DefaultIMSURL
	}
	c.IMSURL = strings.TrimRight(c.IMSURL, "/")
	c.ClientID = strings.TrimSpace(c.ClientID)
	c.OrgID = strings.TrimSpace(c.OrgID)
	c.AccountID = strings.TrimSpace(c.AccountID)
	c.Metascopes = clean(c.Metascopes)
	c.Scopes = clean(c.Scopes)
	if c.JWTLifetime == 0 {
		c.JWTLifetime = DefaultJWTLifetime
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	return c
}

// clean trims the values, dropping empty ones and repeats.
func clean(s []string) []string {
	var out []string
	for _, v := range s {
		if v = strings.TrimSpace(v); v != "" && !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out
}
