package browser

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// maxTokenAnswer bounds the token endpoint's answer read.
const maxTokenAnswer = 1 << 20

// Errors of the code exchange, by what the person can do about them.
var (
	// errCodeRefused: IMS refused the code (used already, expired, or
	// issued for another redirect_uri or verifier). Signing in again helps.
	errCodeRefused = errors.New("the identity service refused the authorization code")
	// errIMSUnavailable: IMS could not be reached, or answered 5xx or 429.
	// Trying again later helps.
	errIMSUnavailable = errors.New("the identity service is unavailable")
	// errMisconfigured: IMS refused this server's client (id or secret),
	// or answered in a way that cannot be used. Only the administrator
	// can help.
	errMisconfigured = errors.New("the identity service refused this server's sign-in request")
)

// tokenAnswer is what Gatehouse reads of the token endpoint's answer.
type tokenAnswer struct {
	AccessToken      string `json:"access_token"`
	TokenType        string `json:"token_type"`
	Error            string `json:"error"`
	ErrorDescription string `json:"error_description"`
}

// exchange trades an authorization code for an access token at IMS's
// token endpoint (grant_type=authorization_code), with the PKCE verifier
// always and the client secret when one is configured. The token never
// appears in an error.
func (h *Handler) exchange(ctx context.Context, code, verifier string) (string, error) {
	form := url.Values{
		"grant_type":    {"authorization_code"},
		"code":          {code},
		"redirect_uri":  {h.redirectURI},
		"client_id":     {h.cfg.ClientID},
		"code_verifier": {verifier},
	}
	if h.cfg.ClientSecret != "" {
		form.Set("client_secret", h.cfg.ClientSecret)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.tokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		return "", fmt.Errorf("%w: %w", errMisconfigured, err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	resp, err := h.cfg.HTTPClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("%w: token endpoint: %w", errIMSUnavailable, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxTokenAnswer+1))
	if err != nil {
		return "", fmt.Errorf("%w: token endpoint: reading the answer: %w", errIMSUnavailable, err)
	}
	if resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests {
		return "", fmt.Errorf("%w: token endpoint answered %d", errIMSUnavailable, resp.StatusCode)
	}
	if len(body) > maxTokenAnswer {
		return "", fmt.Errorf("%w: token endpoint: answer larger than %d bytes", errMisconfigured, maxTokenAnswer)
	}
	var ans tokenAnswer
	if err := json.Unmarshal(body, &ans); err != nil {
		return "", fmt.Errorf("%w: token endpoint answered %d with no usable JSON", errMisconfigured, resp.StatusCode)
	}
	if resp.StatusCode != http.StatusOK {
		e := fmt.Sprintf("token endpoint answered %d, error %q (%s)", resp.StatusCode, clip(ans.Error), clip(ans.ErrorDescription))
		if ans.Error == "invalid_grant" {
			return "", fmt.Errorf("%w: %s", errCodeRefused, e)
		}
		return "", fmt.Errorf("%w: %s", errMisconfigured, e)
	}
	if ans.AccessToken == "" || (ans.TokenType != "" && !strings.EqualFold(ans.TokenType, "bearer")) {
		return "", fmt.Errorf("%w: token endpoint answered 200 without a bearer access_token", errMisconfigured)
	}
	return ans.AccessToken, nil
}
