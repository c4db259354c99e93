package ims

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// TokenResponse is an access token from IMS's token endpoints, with its
// expiry normalised.
type TokenResponse struct {
	AccessToken string
	TokenType   string // "bearer"
	// ExpiresAt comes from the token's own claims (created_at + expires_in
	// milliseconds, or exp) when they are readable, else from the answer's
	// expires_in in the endpoint's unit, counted from when the answer
	// arrived.
	ExpiresAt time.Time
}

// TokenError is IMS's error answer from a token endpoint: status 400, 401
// or 403, with the JSON body {"error": Code, "error_description":
// Description}. Code is empty when the body did not name one.
type TokenError struct {
	Status      int
	Code        string // "error", e.g. invalid_client, invalid_scope
	Description string // "error_description", clipped
}

func (e *TokenError) Error() string {
	code := e.Code
	if code == "" {
		code = "no error code"
	}
	if e.Description == "" {
		return fmt.Sprintf("ims token endpoint refused the request: %s (status %d)", code, e.Status)
	}
	return fmt.Sprintf("ims token endpoint refused the request: %s: %s (status %d)", code, e.Description, e.Status)
}

// ExchangeJWT trades a signed JWT of a technical account for an access
// token at POST /ims/exchange/jwt (the JWT exchange; the service's
// expires_in there is in milliseconds). The client secret and the JWT
// travel only in the form body.
//
// Errors: *TokenError when IMS refuses the request (400, 401, 403; read it
// with errors.As), an error wrapping ErrRateLimited (a *RateLimitError) for
// 429, one wrapping ErrBadAnswer for a success answer without a usable
// access_token or expiry, and one wrapping ErrUnavailable for anything
// else (network, 5xx).
func (c *Client) ExchangeJWT(ctx context.Context, clientID, clientSecret, jwt string) (*TokenResponse, error) {
	form := url.Values{
		"client_id":     {clientID},
		"client_secret": {clientSecret},
		"jwt_token":     {jwt},
	}
	r, err := c.postToken(ctx, "/ims/exchange/jwt", form, time.Millisecond)
	if err != nil {
		return nil, wrapTokenErr("ims exchange jwt", err)
	}
	return r, nil
}

// ClientCredentials obtains an access token for a technical account with
// the OAuth server-to-server flow: POST /ims/token/v3 with
// grant_type=client_credentials and the scopes comma-joined (the service's
// expires_in there is in seconds; there is no refresh token, ask again).
// The client secret travels only in the form body. Errors are those of
// ExchangeJWT.
func (c *Client) ClientCredentials(ctx context.Context, clientID, clientSecret string, scopes []string) (*TokenResponse, error) {
	form := url.Values{
		"grant_type":    {"client_credentials"},
		"client_id":     {clientID},
		"client_secret": {clientSecret},
		"scope":         {strings.Join(scopes, ",")},
	}
	r, err := c.postToken(ctx, "/ims/token/v3", form, time.Second)
	if err != nil {
		return nil, wrapTokenErr("ims client credentials", err)
	}
	return r, nil
}

// AuthorizationCode trades the authorization code of a browser sign-in for
// the person's access token: POST /ims/token/v3 with
// grant_type=authorization_code, the redirect_uri the code was issued for,
// the PKCE verifier, and the client secret when clientSecret is not empty
// (a public client proves itself by the verifier alone). The answer is
// read as every token answer is (expires_in in seconds here). Errors are
// those of ExchangeJWT; IMS refuses a used, expired or mismatched code with
// a *TokenError of Code "invalid_grant".
func (c *Client) AuthorizationCode(ctx context.Context, clientID, clientSecret, code, redirectURI, verifier string) (*TokenResponse, error) {
	form := url.Values{
		"grant_type":    {"authorization_code"},
		"client_id":     {clientID},
		"code":          {code},
		"redirect_uri":  {redirectURI},
		"code_verifier": {verifier},
	}
	if clientSecret != "" {
		form.Set("client_secret", clientSecret)
	}
	r, err := c.postToken(ctx, "/ims/token/v3", form, time.Second)
	if err != nil {
		return nil, wrapTokenErr("ims authorization code", err)
	}
	return r, nil
}

// wrapTokenErr prefixes transport errors with what was being done, and
// leaves a *TokenError as it is (its own message says what happened).
func wrapTokenErr(what string, err error) error {
	var te *TokenError
	if errors.As(err, &te) {
		return te
	}
	return fmt.Errorf("%s: %w", what, err)
}

// postToken POSTs form to a token endpoint and reads the answer; unit is
// that of the endpoint's expires_in.
func (c *Client) postToken(ctx context.Context, path string, form url.Values, unit time.Duration) (*TokenResponse, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+path, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	resp, body, err := c.do(req)
	if err != nil {
		return nil, err
	}
	received := time.Now()
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusBadRequest, http.StatusUnauthorized, http.StatusForbidden:
		return nil, tokenError(resp.StatusCode, body)
	default:
		return nil, statusError(resp)
	}

	a, err := decodeTokenAnswer(body)
	if err != nil {
		return nil, err
	}
	r := &TokenResponse{AccessToken: string(a.AccessToken), TokenType: text(a.TokenType)}
	if exp := unverifiedExpiry(r.AccessToken); !exp.IsZero() {
		r.ExpiresAt = exp
		return r, nil
	}
	switch {
	case a.ExpiresIn.set && a.ExpiresIn.v > 0:
		r.ExpiresAt = received.Add(time.Duration(a.ExpiresIn.v) * unit)
		return r, nil
	case a.ExpiresIn.raw != "" || a.ExpiresIn.set:
		return nil, fmt.Errorf("%w: expires_in %q is not a positive whole number", ErrBadAnswer, a.ExpiresIn.raw)
	}
	return nil, fmt.Errorf("%w: the answer states no expiry (no expires_in, and none in the token)", ErrBadAnswer)
}

// maxDescription bounds the error_description kept from an answer.
const maxDescription = 256

// tokenError reads IMS's refusal of a token request.
func tokenError(status int, body []byte) *TokenError {
	e := &TokenError{Status: status}
	var b struct {
		Error       any `json:"error"`
		Description any `json:"error_description"`
	}
	if len(body) > 0 && json.Unmarshal(body, &b) == nil {
		if s, ok := b.Error.(string); ok {
			e.Code = clip(s)
		}
		if s, ok := b.Description.(string); ok {
			if len(s) > maxDescription {
				s = s[:maxDescription] + "..."
			}
			e.Description = s
		}
	}
	return e
}

// unverifiedExpiry reads the expiry from the claims of a token IMS just
// issued to us over TLS, without checking its signature: it is only used
// to schedule renewal. The zero time means the claims are unreadable or
// state no expiry.
func unverifiedExpiry(token string) time.Time {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return time.Time{}
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return time.Time{}
	}
	c, err := DecodeClaims(payload)
	if err != nil {
		return time.Time{}
	}
	return c.ExpiresAt()
}
