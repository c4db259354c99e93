package imstest

import (
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math/big"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/gatehouse-proxy/gatehouse/auth/ims"
)

// maxBody is the largest request body any endpoint reads.
const maxBody = 1 << 20

// maxLifetime bounds expires_in on the development token endpoint.
const maxLifetime = 10 * 365 * 24 * time.Hour

// ServeHTTP serves the IMS endpoints and the development endpoints.
func (e *Emulator) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	e.handler.ServeHTTP(w, r)
}

var (
	methodsGet     = []string{http.MethodGet, http.MethodHead}
	methodsPost    = []string{http.MethodPost}
	methodsPut     = []string{http.MethodPut}
	methodsGetPost = []string{http.MethodGet, http.MethodHead, http.MethodPost}
)

func (e *Emulator) routes() *http.ServeMux {
	mux := http.NewServeMux()
	for _, rt := range []struct {
		pattern  string
		endpoint string
		methods  []string
		handle   http.HandlerFunc
	}{
		{"/ims/.well-known/openid-configuration", EndpointDiscovery, methodsGet, e.serveDiscovery},
		{"/ims/keys", EndpointKeys, methodsGet, e.serveKeys},
		{"/keys/prod/{file}", EndpointCerts, methodsGet, e.serveCert},
		{"/keys/nonprod/{file}", EndpointCerts, methodsGet, e.serveCert},
		{"/ims/validate_token/v1", EndpointValidate, methodsGetPost, e.serveValidate},
		{"/ims/profile/v1", EndpointProfile, methodsGet, e.serveProfile},
		{"/ims/organizations/v5", EndpointOrganizations, methodsGet, e.serveOrganizations},
		{"/ims/organizations/v6", EndpointOrganizations, methodsGet, e.serveOrganizations},
		{"/ims/userinfo/v2", EndpointUserInfo, methodsGetPost, e.serveUserInfo},
		{"/ims/revoke", EndpointRevoke, methodsPost, e.serveRevoke},
		// Emulator only: not part of the real service.
		{"/ims/dev/users", EndpointDev, methodsPost, e.serveDevAddUser},
		{"/ims/dev/users/{id}/orgs/{orgID}/groups", EndpointDev, methodsPut, e.serveDevSetGroups},
		{"/ims/dev/token", EndpointDev, methodsPost, e.serveDevToken},
		{"/ims/dev/rotate-key", EndpointDev, methodsPost, e.serveDevRotateKey},
		// Technical accounts (techaccounts.go).
		{"/ims/exchange/jwt", EndpointExchange, methodsPost, e.serveExchangeJWT},
		{"/ims/token/v3", EndpointToken, methodsPost, e.serveTokenV3},
		{"/ims/dev/techaccounts", EndpointDev, methodsPost, e.serveDevAddTechAccount},
		{"/ims/dev/techaccounts/{clientID}/certificates", EndpointDev, methodsPost, e.serveDevRegisterCertificate},
		// Browser sign-in, the authorization code flow (browser.go).
		{"/ims/authorize/v2", EndpointAuthorize, methodsGetPost, e.serveAuthorize},
		{"/ims/logout/v1", EndpointLogout, methodsGet, e.serveLogout},
		{"/ims/dev/browserclients", EndpointDev, methodsPost, e.serveDevAddBrowserClient},
		// Emulator only: an API behind the gateway, any method.
		{"/testapi/", EndpointTestAPI, nil, e.serveTestAPI},
	} {
		mux.Handle(rt.pattern, e.endpoint(rt.endpoint, rt.methods, rt.handle))
	}
	mux.Handle("/", e.endpoint(endpointUnknown, nil, func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "not_found", "no such endpoint: "+r.URL.Path)
	}))
	return mux
}

// endpoint wraps a handler with what every endpoint shares: counting,
// logging, the simulated outage, the method check, rate limiting and the
// body limit. A nil methods list accepts every method. The test API stands
// for another service: it is neither down nor rate limited with IMS, and
// reads bodies of any size.
func (e *Emulator) endpoint(name string, methods []string, h http.HandlerFunc) http.Handler {
	allow := strings.Join(methods, ", ")
	rateLimitable := name == EndpointValidate || name == EndpointProfile || name == EndpointOrganizations ||
		name == EndpointExchange || name == EndpointToken
	outage := name != EndpointDev && name != EndpointTestAPI
	bodyLimit := name != EndpointTestAPI
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.count(name)
		sw := &statusWriter{ResponseWriter: w}
		start := time.Now()
		defer func() {
			// The path only: validate_token's query may hold a token.
			e.log.Debug("ims emulator request",
				zap.String("endpoint", name),
				zap.String("method", r.Method),
				zap.String("path", r.URL.Path),
				zap.Int("status", sw.status()),
				zap.Duration("took", time.Since(start)))
		}()
		switch {
		case outage && e.down.Load():
			writeError(sw, http.StatusServiceUnavailable, "service_unavailable", "the identity service is unavailable (emulated outage)")
		case methods != nil && !slices.Contains(methods, r.Method):
			sw.Header().Set("Allow", allow)
			writeError(sw, http.StatusMethodNotAllowed, "method_not_allowed", r.Method+" is not allowed; use "+allow)
		case rateLimitable && e.rateLimited.Load():
			sw.Header().Set("Retry-After", "1")
			writeError(sw, http.StatusTooManyRequests, "too_many_requests", "rate limit exceeded (emulated)")
		case e.writeSetAnswer(sw, name):
		default:
			if bodyLimit {
				r.Body = http.MaxBytesReader(sw, r.Body, maxBody)
			}
			h(sw, r)
		}
	})
}

// statusWriter remembers the status for the request log.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) status() int {
	if w.code == 0 {
		return http.StatusOK
	}
	return w.code
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// errorBody is IMS's error answer.
type errorBody struct {
	Error            string `json:"error"`
	ErrorDescription string `json:"error_description,omitempty"`
}

func writeError(w http.ResponseWriter, status int, code, desc string) {
	writeJSON(w, status, errorBody{Error: code, ErrorDescription: desc})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, `{"error":"server_error"}`, http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// parseForm parses the query and a form body, answering 400 or 413 itself
// when it fails.
func parseForm(w http.ResponseWriter, r *http.Request) bool {
	if err := r.ParseForm(); err != nil {
		writeBodyError(w, err)
		return false
	}
	return true
}

func writeBodyError(w http.ResponseWriter, err error) {
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		writeError(w, http.StatusRequestEntityTooLarge, "invalid_request", "request body too large")
		return
	}
	writeError(w, http.StatusBadRequest, "invalid_request", "malformed request: "+err.Error())
}

// bearer is the token of an "Authorization: Bearer" header, or "".
func bearer(r *http.Request) string {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(token)
}

// baseURL is the emulator's own URL as the client addressed it.
func baseURL(r *http.Request) string {
	if r.TLS != nil {
		return "https://" + r.Host
	}
	return "http://" + r.Host
}

type discovery struct {
	Issuer                            string   `json:"issuer"`
	AuthorizationEndpoint             string   `json:"authorization_endpoint"`
	TokenEndpoint                     string   `json:"token_endpoint"`
	UserInfoEndpoint                  string   `json:"userinfo_endpoint"`
	RevocationEndpoint                string   `json:"revocation_endpoint"`
	JWKSURI                           string   `json:"jwks_uri"`
	ResponseTypesSupported            []string `json:"response_types_supported"`
	SubjectTypesSupported             []string `json:"subject_types_supported"`
	IDTokenSigningAlgValuesSupported  []string `json:"id_token_signing_alg_values_supported"`
	ScopesSupported                   []string `json:"scopes_supported"`
	TokenEndpointAuthMethodsSupported []string `json:"token_endpoint_auth_methods_supported"`
	ClaimsSupported                   []string `json:"claims_supported"`
}

func (e *Emulator) serveDiscovery(w http.ResponseWriter, r *http.Request) {
	base := baseURL(r)
	writeJSON(w, http.StatusOK, discovery{
		Issuer:                            base,
		AuthorizationEndpoint:             base + "/ims/authorize/v2",
		TokenEndpoint:                     base + "/ims/token/v3",
		UserInfoEndpoint:                  base + "/ims/userinfo/v2",
		RevocationEndpoint:                base + "/ims/revoke",
		JWKSURI:                           base + "/ims/keys",
		ResponseTypesSupported:            []string{"code", "token", "id_token", "code id_token", "token id_token"},
		SubjectTypesSupported:             []string{"public"},
		IDTokenSigningAlgValuesSupported:  []string{"RS256"},
		ScopesSupported:                   []string{"openid", "AdobeID", "email", "profile", "offline_access", "read_organizations"},
		TokenEndpointAuthMethodsSupported: []string{"client_secret_post"},
		ClaimsSupported:                   []string{"sub", "email", "email_verified", "name", "given_name", "family_name", "account_type"},
	})
}

type jwk struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Use string `json:"use"`
	Alg string `json:"alg"`
	N   string `json:"n"`
	E   string `json:"e"`
}

func publicJWK(kid string, pub *rsa.PublicKey) jwk {
	enc := base64.RawURLEncoding
	return jwk{
		Kty: "RSA",
		Kid: kid,
		Use: "sig",
		Alg: "RS256",
		N:   enc.EncodeToString(pub.N.Bytes()),
		E:   enc.EncodeToString(big.NewInt(int64(pub.E)).Bytes()),
	}
}

func (e *Emulator) serveKeys(w http.ResponseWriter, _ *http.Request) {
	set := struct {
		Keys []jwk `json:"keys"`
	}{Keys: []jwk{}}
	for _, k := range e.publishedKeys() {
		set.Keys = append(set.Keys, publicJWK(k.kid, &k.priv.PublicKey))
	}
	writeJSON(w, http.StatusOK, set)
}

func (e *Emulator) serveCert(w http.ResponseWriter, r *http.Request) {
	file := r.PathValue("file")
	k := e.keyFor("", file)
	if k == nil {
		writeError(w, http.StatusNotFound, "not_found", "no certificate named "+strconv.Quote(file))
		return
	}
	w.Header().Set("Content-Type", "application/x-x509-ca-cert")
	w.Header().Set("Content-Length", strconv.Itoa(len(k.certPEM)))
	_, _ = w.Write(k.certPEM)
}

// serveValidate answers /ims/validate_token/v1. Requests missing the token,
// client_id or type are malformed (400); a token that fails answers 200
// with valid=false and a reason, checked in this order: bad_signature,
// invalid_client_id, invalid_type, revoked, expired.
func (e *Emulator) serveValidate(w http.ResponseWriter, r *http.Request) {
	if !parseForm(w, r) {
		return
	}
	token := bearer(r)
	if token == "" {
		token = r.Form.Get("token")
	}
	clientID, typ := r.Form.Get("client_id"), r.Form.Get("type")
	switch {
	case token == "":
		writeError(w, http.StatusBadRequest, "invalid_request", "token is required (Authorization: Bearer or the token parameter)")
		return
	case clientID == "":
		writeError(w, http.StatusBadRequest, "invalid_request", "client_id is required")
		return
	case typ == "":
		writeError(w, http.StatusBadRequest, "invalid_request", "type is required")
		return
	}
	c, err := e.parse(token)
	var reason string
	switch {
	case err != nil:
		reason = reasonBadSignature
	case c.ClientID != clientID:
		reason = reasonInvalidClientID
	case c.Type != typ:
		reason = reasonInvalidType
	default:
		reason = e.liveness(c)
	}
	if reason != "" {
		if e.variant.Load() {
			writeJSON(w, http.StatusOK, map[string]any{"valid": "false", "reason": reason, "expires_at": nil})
			return
		}
		writeJSON(w, http.StatusOK, validation{Valid: false, Reason: reason})
		return
	}
	// The token object is the token's own payload, every claim included.
	payload := tokenPayload(token)
	expiresAt := c.ExpiresAt().UnixMilli()
	if e.variant.Load() {
		writeJSON(w, http.StatusOK, map[string]any{
			"valid": "true", "token": payload, "expires_at": strconv.FormatInt(expiresAt, 10),
			"reason": nil, "handler": map[string]any{"v": 1}, "client": 42,
		})
		return
	}
	writeJSON(w, http.StatusOK, validation{Valid: true, Token: payload, ExpiresAt: expiresAt})
}

// validation is /ims/validate_token/v1's answer.
type validation struct {
	Valid     bool            `json:"valid"`
	Token     json.RawMessage `json:"token,omitempty"`
	ExpiresAt int64           `json:"expires_at,omitempty"`
	Reason    string          `json:"reason,omitempty"`
}

// tokenPayload is the JSON payload of a token that parse accepted.
func tokenPayload(token string) json.RawMessage {
	parts := strings.Split(token, ".")
	b, _ := base64.RawURLEncoding.DecodeString(parts[1])
	return b
}

// authorize reads the bearer access token of a profile, organizations or
// userinfo request and finds its user, answering 401 itself on failure.
func (e *Emulator) authorize(w http.ResponseWriter, r *http.Request) (*ims.Claims, *User, bool) {
	token := bearer(r)
	if token == "" {
		unauthorized(w, "missing bearer token")
		return nil, nil, false
	}
	c, reason := e.check(token)
	if reason != "" {
		unauthorized(w, "token rejected: "+reason)
		return nil, nil, false
	}
	if c.Type != ims.TypeAccessToken {
		unauthorized(w, "not an access token")
		return nil, nil, false
	}
	u, ok := e.user(c.UserID)
	if !ok {
		unauthorized(w, "unknown user")
		return nil, nil, false
	}
	return c, u, true
}

func unauthorized(w http.ResponseWriter, desc string) {
	w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
	writeError(w, http.StatusUnauthorized, "invalid_token", desc)
}

// profile is /ims/profile/v1's answer. As from the real service,
// emailVerified is the string "true".
type profile struct {
	UserID                  string           `json:"userId"`
	AuthID                  string           `json:"authId"`
	Email                   string           `json:"email"`
	EmailVerified           string           `json:"emailVerified"`
	Name                    string           `json:"name"`
	DisplayName             string           `json:"displayName"`
	FirstName               string           `json:"first_name"`
	LastName                string           `json:"last_name"`
	AccountType             string           `json:"account_type"`
	CountryCode             string           `json:"countryCode"`
	PreferredLanguages      []string         `json:"preferred_languages"`
	ProjectedProductContext []productContext `json:"projectedProductContext"`
}

// productContext is one entry of projectedProductContext.
type productContext struct {
	ProdCtx struct {
		ServiceCode  string `json:"serviceCode"`
		OwningEntity string `json:"owningEntity"`
		GroupID      string `json:"groupid,omitempty"`
		Label        string `json:"label,omitempty"`
	} `json:"prodCtx"`
}

func fullName(u *User) string { return strings.TrimSpace(u.FirstName + " " + u.LastName) }

func displayName(u *User) string {
	if u.DisplayName != "" {
		return u.DisplayName
	}
	return fullName(u)
}

func (e *Emulator) serveProfile(w http.ResponseWriter, r *http.Request) {
	_, u, ok := e.authorize(w, r)
	if !ok {
		return
	}
	p := profile{
		UserID:                  u.ID,
		AuthID:                  u.ID,
		Email:                   u.Email,
		EmailVerified:           "true",
		Name:                    fullName(u),
		DisplayName:             displayName(u),
		FirstName:               u.FirstName,
		LastName:                u.LastName,
		AccountType:             u.AccountType,
		CountryCode:             u.CountryCode,
		PreferredLanguages:      []string{"en-us"},
		ProjectedProductContext: []productContext{},
	}
	for _, o := range u.Orgs {
		var pc productContext
		pc.ProdCtx.ServiceCode = "dma_aem_cloud"
		pc.ProdCtx.OwningEntity = o.ID
		pc.ProdCtx.Label = o.Name
		for _, g := range o.Groups {
			if g.GroupType == "LICENSE_GROUP" {
				pc.ProdCtx.GroupID = g.Ident.String()
				break
			}
		}
		p.ProjectedProductContext = append(p.ProjectedProductContext, pc)
	}
	if e.variant.Load() {
		writeJSON(w, http.StatusOK, variantProfile(&p))
		return
	}
	writeJSON(w, http.StatusOK, p)
}

func (e *Emulator) serveOrganizations(w http.ResponseWriter, r *http.Request) {
	_, u, ok := e.authorize(w, r)
	if !ok {
		return
	}
	if e.variant.Load() {
		writeJSON(w, http.StatusOK, variantOrganizations(u))
		return
	}
	orgs := make([]organization, 0, len(u.Orgs))
	for _, o := range u.Orgs {
		ident, src := splitOrgID(o.ID)
		orgs = append(orgs, organization{
			OrgName:     o.Name,
			OrgRef:      ims.OrgRef{Ident: ident, AuthSrc: src},
			OrgType:     "Enterprise",
			CountryCode: u.CountryCode,
			Groups:      o.Groups,
		})
	}
	writeJSON(w, http.StatusOK, orgs)
}

// organization is one entry of /ims/organizations/v5's answer.
type organization struct {
	OrgName     string      `json:"orgName"`
	OrgRef      ims.OrgRef  `json:"orgRef"`
	OrgType     string      `json:"orgType"`
	CountryCode string      `json:"countryCode"`
	Groups      []ims.Group `json:"groups"`
}

type userInfo struct {
	Sub           string `json:"sub"`
	Email         string `json:"email"`
	EmailVerified bool   `json:"email_verified"`
	Name          string `json:"name"`
	GivenName     string `json:"given_name"`
	FamilyName    string `json:"family_name"`
	AccountType   string `json:"account_type"`
}

// serveUserInfo answers /ims/userinfo/v2; client_id is required and must be
// the token's.
func (e *Emulator) serveUserInfo(w http.ResponseWriter, r *http.Request) {
	if !parseForm(w, r) {
		return
	}
	clientID := r.Form.Get("client_id")
	if clientID == "" {
		writeError(w, http.StatusBadRequest, "invalid_request", "client_id is required")
		return
	}
	c, u, ok := e.authorize(w, r)
	if !ok {
		return
	}
	if c.ClientID != clientID {
		unauthorized(w, "token was not issued to this client")
		return
	}
	writeJSON(w, http.StatusOK, userInfo{
		Sub:           u.ID,
		Email:         u.Email,
		EmailVerified: true,
		Name:          fullName(u),
		GivenName:     u.FirstName,
		FamilyName:    u.LastName,
		AccountType:   u.AccountType,
	})
}

// serveRevoke answers /ims/revoke as RFC 7009 asks: 200 with an empty body,
// also for a token that is unknown or malformed; 400 invalid_client for a
// token issued to another client.
func (e *Emulator) serveRevoke(w http.ResponseWriter, r *http.Request) {
	if !parseForm(w, r) {
		return
	}
	token, clientID := r.PostForm.Get("token"), r.PostForm.Get("client_id")
	switch {
	case token == "":
		writeError(w, http.StatusBadRequest, "invalid_request", "token is required")
		return
	case clientID == "":
		writeError(w, http.StatusBadRequest, "invalid_request", "client_id is required")
		return
	}
	if c, err := e.parse(token); err == nil {
		if c.ClientID != clientID {
			writeError(w, http.StatusBadRequest, "invalid_client", "token was not issued to this client")
			return
		}
		e.revoke(c.ID)
	}
	w.WriteHeader(http.StatusOK)
}

// decodeJSON reads a JSON body strictly, answering 400 or 413 itself.
func decodeJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeBodyError(w, err)
		return false
	}
	if dec.More() {
		writeError(w, http.StatusBadRequest, "invalid_request", "malformed request: more than one JSON value")
		return false
	}
	return true
}

func checkGroups(groups []ims.Group) string {
	for _, g := range groups {
		if g.GroupName == "" {
			return "every group needs a groupName"
		}
		if g.Ident != "" && !validIdent(g.Ident) {
			return "group " + strconv.Quote(g.GroupName) + ": ident must be a whole number"
		}
	}
	return ""
}

// serveDevAddUser is POST /ims/dev/users (emulator only): body a User,
// answer 201 with the user as stored.
func (e *Emulator) serveDevAddUser(w http.ResponseWriter, r *http.Request) {
	var u User
	if !decodeJSON(w, r, &u) {
		return
	}
	if u.ID == "" {
		writeError(w, http.StatusBadRequest, "invalid_request", "id is required")
		return
	}
	for _, o := range u.Orgs {
		if o.ID == "" {
			writeError(w, http.StatusBadRequest, "invalid_request", "every org needs an id")
			return
		}
		if msg := checkGroups(o.Groups); msg != "" {
			writeError(w, http.StatusBadRequest, "invalid_request", msg)
			return
		}
	}
	e.AddUser(u)
	stored, _ := e.user(u.ID)
	writeJSON(w, http.StatusCreated, stored)
}

// serveDevSetGroups is PUT /ims/dev/users/{id}/orgs/{orgID}/groups
// (emulator only): body a JSON array of groups, answer 204.
func (e *Emulator) serveDevSetGroups(w http.ResponseWriter, r *http.Request) {
	var groups []ims.Group
	if !decodeJSON(w, r, &groups) {
		return
	}
	if msg := checkGroups(groups); msg != "" {
		writeError(w, http.StatusBadRequest, "invalid_request", msg)
		return
	}
	err := e.SetGroups(r.PathValue("id"), r.PathValue("orgID"), groups)
	switch {
	case errors.Is(err, ErrUnknownUser):
		writeError(w, http.StatusNotFound, "not_found", "unknown user "+strconv.Quote(r.PathValue("id")))
	case err != nil:
		writeError(w, http.StatusBadRequest, "invalid_request", err.Error())
	default:
		w.WriteHeader(http.StatusNoContent)
	}
}

type devToken struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int64  `json:"expires_in"` // milliseconds
}

// serveDevToken is POST /ims/dev/token (emulator only): form user_id,
// client_id, optional scope and expires_in (milliseconds); answer the
// access token with expires_in in milliseconds.
func (e *Emulator) serveDevToken(w http.ResponseWriter, r *http.Request) {
	if !parseForm(w, r) {
		return
	}
	req := TokenRequest{
		UserID:   r.PostForm.Get("user_id"),
		ClientID: r.PostForm.Get("client_id"),
		Scope:    r.PostForm.Get("scope"),
	}
	switch {
	case req.UserID == "":
		writeError(w, http.StatusBadRequest, "invalid_request", "user_id is required")
		return
	case req.ClientID == "":
		writeError(w, http.StatusBadRequest, "invalid_request", "client_id is required")
		return
	}
	if s := r.PostForm.Get("expires_in"); s != "" {
		ms, err := strconv.ParseInt(s, 10, 64)
		if err != nil || ms <= 0 || ms > maxLifetime.Milliseconds() {
			writeError(w, http.StatusBadRequest, "invalid_request", "expires_in must be a positive number of milliseconds, at most ten years")
			return
		}
		req.Lifetime = time.Duration(ms) * time.Millisecond
	}
	token, c, err := e.MintToken(req)
	switch {
	case errors.Is(err, ErrUnknownUser):
		writeError(w, http.StatusNotFound, "not_found", "unknown user "+strconv.Quote(req.UserID))
		return
	case err != nil:
		writeError(w, http.StatusBadRequest, "invalid_request", err.Error())
		return
	}
	writeJSON(w, http.StatusOK, devToken{AccessToken: token, TokenType: "bearer", ExpiresIn: int64(c.ExpiresIn)})
}

// serveDevRotateKey is POST /ims/dev/rotate-key (emulator only).
func (e *Emulator) serveDevRotateKey(w http.ResponseWriter, _ *http.Request) {
	kid, err := e.RotateKey()
	if err != nil {
		e.log.Error("ims emulator: rotate key", zap.Error(err))
		writeError(w, http.StatusInternalServerError, "server_error", "could not create a key")
		return
	}
	writeJSON(w, http.StatusOK, struct {
		KID string `json:"kid"`
	}{kid})
}
