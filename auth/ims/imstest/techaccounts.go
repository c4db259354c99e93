package imstest

import (
	"crypto/rsa"
	"crypto/subtle"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/gatehouse-proxy/gatehouse/auth/ims"
)

// ProductionURL is the production IMS host. Exchange JWTs name their IMS
// host in the aud and metascope claims; the emulator accepts this one as
// well as its own URL as the client addressed it.
const ProductionURL = "https://ims-na1.adobelogin.com"

// exchangeSkew is the clock skew allowed on an exchange JWT's exp.
const exchangeSkew = 30 * time.Second

// ErrUnknownTechAccount is returned (wrapped) by RegisterCertificate for a
// client id that no technical account has.
var ErrUnknownTechAccount = errors.New("unknown technical account")

// TechAccount is an integration's technical account: the credentials of an
// integration in the developer console. Register its public certificates
// with RegisterCertificate for the JWT exchange.
type TechAccount struct {
	ClientID, ClientSecret string
	OrgID                  string // "…@AdobeOrg"
	AccountID              string // "…@techacct.adobe.com"; the user_id of its tokens
	// Metascopes the integration is subscribed to, for the JWT exchange
	// (e.g. "ent_cloudmgr_sdk").
	Metascopes []string
	// Scopes allowed for client credentials (e.g. "openid", "AdobeID",
	// "read_organizations").
	Scopes []string
	// TokenLifetime is the lifetime of tokens issued to it. Zero or
	// negative means 24 hours.
	TokenLifetime time.Duration
}

// techAccount is a stored account with its registered certificates.
type techAccount struct {
	TechAccount
	certs []*x509.Certificate
}

// AddTechAccount adds a, or replaces the account with the same ClientID
// (keeping the certificates registered for it). The emulator keeps a copy.
// An account without a ClientID is ignored.
func (e *Emulator) AddTechAccount(a TechAccount) {
	if a.ClientID == "" {
		e.log.Warn("imstest: AddTechAccount without a client id ignored")
		return
	}
	a.Metascopes = slices.Clone(a.Metascopes)
	a.Scopes = slices.Clone(a.Scopes)
	if a.TokenLifetime <= 0 {
		a.TokenLifetime = DefaultLifetime
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	t := &techAccount{TechAccount: a}
	if old, ok := e.techs[a.ClientID]; ok {
		t.certs = old.certs
	}
	e.techs[a.ClientID] = t
}

// RegisterCertificate registers the public certificate (PEM; one or more
// CERTIFICATE blocks) that an integration uploaded to the developer
// console. Several may be registered: an exchange JWT signed by the key of
// any of them that is within its validity period is accepted. It fails
// with ErrUnknownTechAccount for an unknown client id, and for PEM that
// holds no RSA certificate.
func (e *Emulator) RegisterCertificate(clientID string, certPEM []byte) error {
	certs, err := parseCertificates(certPEM)
	if err != nil {
		return fmt.Errorf("imstest: register certificate for %q: %w", clientID, err)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	t, ok := e.techs[clientID]
	if !ok {
		return fmt.Errorf("imstest: register certificate for %q: %w", clientID, ErrUnknownTechAccount)
	}
	t.certs = append(slices.Clone(t.certs), certs...)
	return nil
}

func parseCertificates(b []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	for {
		var block *pem.Block
		block, b = pem.Decode(b)
		if block == nil {
			break
		}
		switch {
		case block.Type == "CERTIFICATE":
		case strings.Contains(block.Type, "PRIVATE KEY"):
			return nil, errors.New("that is a private key: register the public certificate")
		default:
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parse certificate: %w", err)
		}
		if _, ok := c.PublicKey.(*rsa.PublicKey); !ok {
			return nil, errors.New("not an RSA certificate")
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, errors.New("no PEM CERTIFICATE block")
	}
	return certs, nil
}

// authenticateClient returns a copy of the account of clientID when secret
// is its client secret (compared in constant time).
func (e *Emulator) authenticateClient(clientID, secret string) (*techAccount, bool) {
	e.mu.RLock()
	defer e.mu.RUnlock()
	t, ok := e.techs[clientID]
	if !ok {
		return nil, false
	}
	if subtle.ConstantTimeCompare([]byte(secret), []byte(t.ClientSecret)) != 1 {
		return nil, false
	}
	c := *t
	c.certs = slices.Clone(t.certs)
	return &c, true
}

// techAccountOf is the technical account a token was issued to, if any.
func (e *Emulator) techAccountOf(c *ims.Claims) (TechAccount, bool) {
	e.mu.RLock()
	defer e.mu.RUnlock()
	t, ok := e.techs[c.ClientID]
	if !ok || t.AccountID != c.UserID {
		return TechAccount{}, false
	}
	return t.TechAccount, true
}

// exchangeAnswer is /ims/exchange/jwt's answer: expires_in in milliseconds.
type exchangeAnswer struct {
	TokenType   string `json:"token_type"`
	AccessToken string `json:"access_token"`
	ExpiresIn   int64  `json:"expires_in"`
}

// serveExchangeJWT answers POST /ims/exchange/jwt: form client_id,
// client_secret and jwt_token (in the body). The checks, in order: the
// form (400 bad_request), the client and its secret (401 invalid_client),
// the JWT's RS256 signature against a registered certificate (400
// invalid_signature; a JWT that does not parse is invalid_token), exp, aud,
// iss and sub (400 invalid_token), the metascopes (400 invalid_scope).
func (e *Emulator) serveExchangeJWT(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeError(w, http.StatusRequestEntityTooLarge, "bad_request", "request body too large")
			return
		}
		writeError(w, http.StatusBadRequest, "bad_request", "malformed form: "+err.Error())
		return
	}
	clientID, secret, assertion := r.PostForm.Get("client_id"), r.PostForm.Get("client_secret"), r.PostForm.Get("jwt_token")
	var missing []string
	for _, f := range []struct{ name, v string }{{"client_id", clientID}, {"client_secret", secret}, {"jwt_token", assertion}} {
		if f.v == "" {
			missing = append(missing, f.name)
		}
	}
	if len(missing) > 0 {
		writeError(w, http.StatusBadRequest, "bad_request", "missing form parameter "+strings.Join(missing, ", ")+" (in the request body)")
		return
	}
	t, ok := e.authenticateClient(clientID, secret)
	if !ok {
		writeError(w, http.StatusUnauthorized, "invalid_client", "invalid client_id or client_secret")
		return
	}
	metascopes, code, desc := e.verifyExchangeJWT(r, t, assertion)
	if code != "" {
		writeError(w, http.StatusBadRequest, code, desc)
		return
	}
	token, c, err := e.mint(TokenRequest{
		UserID:   t.AccountID,
		ClientID: t.ClientID,
		Scope:    strings.Join(metascopes, ","),
		Lifetime: t.TokenLifetime,
	})
	if err != nil {
		writeError(w, http.StatusInternalServerError, "server_error", "could not issue a token")
		return
	}
	if e.variant.Load() {
		writeJSON(w, http.StatusOK, variantToken(token, int64(c.ExpiresIn)))
		return
	}
	writeJSON(w, http.StatusOK, exchangeAnswer{TokenType: "bearer", AccessToken: token, ExpiresIn: int64(c.ExpiresIn)})
}

// verifyExchangeJWT checks an exchange JWT for t and returns the metascopes
// it claims, or an IMS error code and description.
func (e *Emulator) verifyExchangeJWT(r *http.Request, t *techAccount, assertion string) (metascopes []string, code, desc string) {
	now := e.now()
	if len(t.certs) == 0 {
		return nil, "invalid_signature", "no certificate is registered for this client"
	}
	var keys []jwt.VerificationKey
	for _, c := range t.certs {
		if now.Add(exchangeSkew).Before(c.NotBefore) || now.Add(-exchangeSkew).After(c.NotAfter) {
			continue
		}
		keys = append(keys, c.PublicKey)
	}
	if len(keys) == 0 {
		return nil, "invalid_signature", "every certificate registered for this client has expired or is not yet valid"
	}
	parser := jwt.NewParser(jwt.WithValidMethods([]string{jwt.SigningMethodRS256.Alg()}), jwt.WithoutClaimsValidation())
	claims := jwt.MapClaims{}
	_, err := parser.ParseWithClaims(assertion, claims, func(*jwt.Token) (any, error) {
		return jwt.VerificationKeySet{Keys: keys}, nil
	})
	switch {
	case errors.Is(err, jwt.ErrTokenMalformed):
		return nil, "invalid_token", "the JWT is malformed"
	case err != nil:
		return nil, "invalid_signature", "the JWT is not signed (RS256) by the key of a certificate registered for this client"
	}

	exp, err := claims.GetExpirationTime()
	switch {
	case err != nil:
		return nil, "invalid_token", "the JWT's exp is not a number of seconds"
	case exp == nil:
		return nil, "invalid_token", "the JWT has no exp claim"
	case !now.Before(exp.Add(exchangeSkew)):
		return nil, "invalid_token", "the JWT expired at " + exp.UTC().Format(time.RFC3339) + " (exp); the server's time is " + now.UTC().Format(time.RFC3339)
	}

	bases := []string{baseURL(r), ProductionURL}
	aud, err := claims.GetAudience()
	if err != nil || !audienceOK(aud, bases, t.ClientID) {
		return nil, "invalid_token", fmt.Sprintf("the JWT's audience (aud) %q is not %q", strings.Join(aud, ","), bases[0]+"/c/"+t.ClientID)
	}
	if iss, _ := claims.GetIssuer(); iss != t.OrgID {
		return nil, "invalid_token", fmt.Sprintf("the JWT's issuer (iss) %q is not the organization of this integration", clipClaim(iss))
	}
	if sub, _ := claims.GetSubject(); sub != t.AccountID {
		return nil, "invalid_token", fmt.Sprintf("the JWT's subject (sub) %q is not the technical account of this integration", clipClaim(sub))
	}

	for k, v := range claims {
		if b, ok := v.(bool); !ok || !b {
			continue
		}
		for _, base := range bases {
			if name, ok := strings.CutPrefix(k, base+"/s/"); ok && name != "" {
				metascopes = append(metascopes, name)
				break
			}
		}
	}
	sort.Strings(metascopes)
	if len(metascopes) == 0 {
		return nil, "invalid_scope", fmt.Sprintf("the JWT claims no metascope (%q: true)", bases[0]+"/s/<metascope>")
	}
	var unknown []string
	for _, m := range metascopes {
		if !slices.Contains(t.Metascopes, m) {
			unknown = append(unknown, m)
		}
	}
	switch len(unknown) {
	case 0:
		return metascopes, "", ""
	case 1:
		return nil, "invalid_scope", fmt.Sprintf("metascope %s is not subscribed for this integration", unknown[0])
	default:
		return nil, "invalid_scope", fmt.Sprintf("metascopes %s are not subscribed for this integration", strings.Join(unknown, ", "))
	}
}

func audienceOK(aud []string, bases []string, clientID string) bool {
	for _, a := range aud {
		for _, b := range bases {
			if a == b+"/c/"+clientID {
				return true
			}
		}
	}
	return false
}

func clipClaim(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}

// tokenV3Answer is /ims/token/v3's answer: expires_in in seconds, and no
// refresh token for client credentials.
type tokenV3Answer struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int64  `json:"expires_in"`
}

// serveTokenV3 answers POST /ims/token/v3 for grant_type=client_credentials
// (other grants: 400 unsupported_grant_type). The client and its secret
// come from the body (401 invalid_client); scope is comma separated, each
// one allowed for the account (400 invalid_scope); none asked means all the
// account's scopes.
func (e *Emulator) serveTokenV3(w http.ResponseWriter, r *http.Request) {
	if !parseForm(w, r) {
		return
	}
	switch grant := r.PostForm.Get("grant_type"); grant {
	case "client_credentials":
	case "authorization_code":
		e.serveAuthorizationCode(w, r)
		return
	case "":
		writeError(w, http.StatusBadRequest, "invalid_request", "grant_type is required")
		return
	default:
		writeError(w, http.StatusBadRequest, "unsupported_grant_type", "the emulator supports grant_type=client_credentials and authorization_code only, not "+strconv.Quote(clipClaim(grant)))
		return
	}
	t, ok := e.authenticateClient(r.PostForm.Get("client_id"), r.PostForm.Get("client_secret"))
	if !ok {
		writeError(w, http.StatusUnauthorized, "invalid_client", "invalid client_id or client_secret")
		return
	}
	scopes := splitScopes(r.PostForm.Get("scope"))
	if len(scopes) == 0 {
		scopes = t.Scopes
	}
	if len(scopes) == 0 {
		writeError(w, http.StatusBadRequest, "invalid_scope", "no scope asked for, and none is allowed for this integration")
		return
	}
	var unknown []string
	for _, s := range scopes {
		if !slices.Contains(t.Scopes, s) {
			unknown = append(unknown, s)
		}
	}
	switch len(unknown) {
	case 0:
	case 1:
		writeError(w, http.StatusBadRequest, "invalid_scope", fmt.Sprintf("scope %s is not allowed for this integration", clipClaim(unknown[0])))
		return
	default:
		writeError(w, http.StatusBadRequest, "invalid_scope", fmt.Sprintf("scopes %s are not allowed for this integration", clipClaim(strings.Join(unknown, ", "))))
		return
	}
	token, _, err := e.mint(TokenRequest{
		UserID:   t.AccountID,
		ClientID: t.ClientID,
		Scope:    strings.Join(scopes, ","),
		Lifetime: t.TokenLifetime,
	})
	if err != nil {
		writeError(w, http.StatusInternalServerError, "server_error", "could not issue a token")
		return
	}
	if e.variant.Load() {
		writeJSON(w, http.StatusOK, variantToken(token, int64(t.TokenLifetime/time.Second)))
		return
	}
	writeJSON(w, http.StatusOK, tokenV3Answer{AccessToken: token, TokenType: "bearer", ExpiresIn: int64(t.TokenLifetime / time.Second)})
}

// splitScopes splits a scope parameter on commas (IMS) and spaces (OAuth).
func splitScopes(s string) []string {
	var out []string
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' }) {
		if !slices.Contains(out, f) {
			out = append(out, f)
		}
	}
	return out
}

// apiError is the error body of the API gateway.
type apiError struct {
	ErrorCode string `json:"error_code"`
	Message   string `json:"message"`
}

// Error codes of the test API, in the manner of the real gateway.
const (
	apiCodeBadToken      = "401013" // bearer token missing or not valid
	apiCodeNoAPIKey      = "403000" // x-api-key missing
	apiCodeBadAPIKey     = "403003" // x-api-key not the token's client id
	apiCodeNoOrg         = "403010" // x-gw-ims-org-id missing
	apiCodeOrgNotAllowed = "403011" // x-gw-ims-org-id not an org of the token's account
)

func writeAPIError(w http.ResponseWriter, status int, code, msg string) {
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
	}
	writeJSON(w, status, apiError{ErrorCode: code, Message: msg})
}

// testAPIAnswer is the test API's success answer.
type testAPIAnswer struct {
	OK        bool   `json:"ok"`
	Method    string `json:"method"`
	Path      string `json:"path"`
	ClientID  string `json:"client_id"`
	Org       string `json:"org"`
	BodyBytes int64  `json:"body_bytes"`
}

// serveTestAPI is any method on /testapi/… (emulator only): an API behind
// the gateway, which insists on the three headers. A missing or unusable
// bearer token is 401; a missing or wrong x-api-key (the token's client id)
// or x-gw-ims-org-id (the technical account's org, or one of the user's) is
// 403. It reads and discards the body, of any size.
func (e *Emulator) serveTestAPI(w http.ResponseWriter, r *http.Request) {
	token := bearer(r)
	if token == "" {
		writeAPIError(w, http.StatusUnauthorized, apiCodeBadToken, "Oauth token is not valid: the Authorization header with a bearer token is missing")
		return
	}
	c, reason := e.check(token)
	if reason == "" && c.Type != ims.TypeAccessToken {
		reason = reasonInvalidType
	}
	if reason != "" {
		writeAPIError(w, http.StatusUnauthorized, apiCodeBadToken, "Oauth token is not valid: "+reason)
		return
	}
	key := r.Header.Get("x-api-key")
	switch {
	case key == "":
		writeAPIError(w, http.StatusForbidden, apiCodeNoAPIKey, "Api Key is required: the x-api-key header is missing")
		return
	case key != c.ClientID:
		writeAPIError(w, http.StatusForbidden, apiCodeBadAPIKey, "Api Key is invalid: the x-api-key header is not the client id of the access token")
		return
	}
	org := r.Header.Get("x-gw-ims-org-id")
	switch {
	case org == "":
		writeAPIError(w, http.StatusForbidden, apiCodeNoOrg, "Org is required: the x-gw-ims-org-id header is missing")
		return
	case !e.tokenInOrg(c, org):
		writeAPIError(w, http.StatusForbidden, apiCodeOrgNotAllowed, "Org is invalid: the x-gw-ims-org-id header does not name an organization of the access token's account")
		return
	}
	n, err := io.Copy(io.Discard, r.Body)
	if err != nil {
		writeAPIError(w, http.StatusBadRequest, "400000", "could not read the request body")
		return
	}
	writeJSON(w, http.StatusOK, testAPIAnswer{OK: true, Method: r.Method, Path: r.URL.Path, ClientID: c.ClientID, Org: org, BodyBytes: n})
}

// tokenInOrg reports whether the token's account belongs to org: the org of
// the technical account it was issued to, or one of its user's orgs.
func (e *Emulator) tokenInOrg(c *ims.Claims, org string) bool {
	if t, ok := e.techAccountOf(c); ok {
		return t.OrgID == org
	}
	if u, ok := e.user(c.UserID); ok {
		for _, o := range u.Orgs {
			if o.ID == org {
				return true
			}
		}
	}
	return false
}

// devTechAccount is a TechAccount on the development endpoint.
type devTechAccount struct {
	ClientID             string   `json:"clientId"`
	ClientSecret         string   `json:"clientSecret,omitempty"`
	OrgID                string   `json:"orgId"`
	AccountID            string   `json:"accountId"`
	Metascopes           []string `json:"metascopes"`
	Scopes               []string `json:"scopes"`
	TokenLifetimeSeconds int64    `json:"tokenLifetimeSeconds"`
}

// serveDevAddTechAccount is POST /ims/dev/techaccounts (emulator only): body
// a devTechAccount; clientId, clientSecret, orgId and accountId are
// required; tokenLifetimeSeconds 0 means 24 hours. Answer 201 with the
// account as stored, without its secret.
func (e *Emulator) serveDevAddTechAccount(w http.ResponseWriter, r *http.Request) {
	var d devTechAccount
	if !decodeJSON(w, r, &d) {
		return
	}
	var missing []string
	for _, f := range []struct{ name, v string }{{"clientId", d.ClientID}, {"clientSecret", d.ClientSecret}, {"orgId", d.OrgID}, {"accountId", d.AccountID}} {
		if f.v == "" {
			missing = append(missing, f.name)
		}
	}
	if len(missing) > 0 {
		writeError(w, http.StatusBadRequest, "invalid_request", strings.Join(missing, ", ")+" required")
		return
	}
	if d.TokenLifetimeSeconds < 0 || d.TokenLifetimeSeconds > int64(maxLifetime/time.Second) {
		writeError(w, http.StatusBadRequest, "invalid_request", "tokenLifetimeSeconds must be between 0 (24 hours) and ten years")
		return
	}
	e.AddTechAccount(TechAccount{
		ClientID:      d.ClientID,
		ClientSecret:  d.ClientSecret,
		OrgID:         d.OrgID,
		AccountID:     d.AccountID,
		Metascopes:    d.Metascopes,
		Scopes:        d.Scopes,
		TokenLifetime: time.Duration(d.TokenLifetimeSeconds) * time.Second,
	})
	e.mu.RLock()
	t := e.techs[d.ClientID].TechAccount
	e.mu.RUnlock()
	writeJSON(w, http.StatusCreated, devTechAccount{
		ClientID:             t.ClientID,
		OrgID:                t.OrgID,
		AccountID:            t.AccountID,
		Metascopes:           nonNil(t.Metascopes),
		Scopes:               nonNil(t.Scopes),
		TokenLifetimeSeconds: int64(t.TokenLifetime / time.Second),
	})
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// serveDevRegisterCertificate is POST
// /ims/dev/techaccounts/{clientID}/certificates (emulator only): body a PEM
// certificate. Answer 201 with the number of certificates now registered.
func (e *Emulator) serveDevRegisterCertificate(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		writeBodyError(w, err)
		return
	}
	clientID := r.PathValue("clientID")
	err = e.RegisterCertificate(clientID, body)
	switch {
	case errors.Is(err, ErrUnknownTechAccount):
		writeError(w, http.StatusNotFound, "not_found", "unknown technical account "+strconv.Quote(clientID))
		return
	case err != nil:
		writeError(w, http.StatusBadRequest, "invalid_request", err.Error())
		return
	}
	e.mu.RLock()
	n := len(e.techs[clientID].certs)
	e.mu.RUnlock()
	writeJSON(w, http.StatusCreated, struct {
		ClientID     string `json:"clientId"`
		Certificates int    `json:"certificates"`
	}{clientID, n})
}
