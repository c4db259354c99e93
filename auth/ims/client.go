package ims

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// maxResponseBody bounds every IMS answer read by Client.
const maxResponseBody = 1 << 20

// Client calls the IMS endpoints Gatehouse needs. Tokens travel only in the
// Authorization header, never in a URL, an error or a log. It is safe for
// concurrent use.
type Client struct {
	base string // no trailing slash
	hc   *http.Client
}

// NewClient returns a Client for the IMS host at baseURL (e.g.
// https://ims-na1.adobelogin.com). hc nil: a client with a 10 s timeout.
// Redirects are never followed, whatever hc says: a redirect would carry the
// token elsewhere.
func NewClient(baseURL string, hc *http.Client) (*Client, error) {
	u, err := parseHTTPURL(baseURL)
	if err != nil {
		return nil, fmt.Errorf("ims client: base URL: %w", err)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("ims client: base URL %q: must not have a query or fragment", baseURL)
	}
	return &Client{base: strings.TrimRight(u.String(), "/"), hc: noRedirects(hc)}, nil
}

// ValidateToken asks IMS whether token is a valid access token for
// clientID. A token IMS refuses (an answer of valid=false, or status 400,
// 401 or 403) is a result with Valid false and a Reason, not an error; a
// valid answer always carries the token's claims. Errors wrap
// ErrRateLimited (429: back off), ErrUnavailable, or ErrBadAnswer (an
// answer that is not usable: valid missing, valid without claims, claims
// that DecodeClaims refuses).
func (c *Client) ValidateToken(ctx context.Context, token, clientID string) (*ValidationResult, error) {
	form := url.Values{"type": {TypeAccessToken}, "client_id": {clientID}}
	req, err := c.request(ctx, http.MethodPost, "/ims/validate_token/v1", token, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, fmt.Errorf("ims validate token: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, body, err := c.do(req)
	if err != nil {
		return nil, fmt.Errorf("ims validate token: %w", err)
	}
	switch resp.StatusCode {
	case http.StatusOK:
		r, err := decodeValidation(body)
		if err != nil {
			return nil, fmt.Errorf("ims validate token: %w", err)
		}
		return r, nil
	case http.StatusBadRequest, http.StatusUnauthorized, http.StatusForbidden:
		return &ValidationResult{Valid: false, Reason: refusalReason(body, resp.StatusCode)}, nil
	}
	return nil, fmt.Errorf("ims validate token: %w", statusError(resp))
}

// Profile returns the profile of the token's user. Errors wrap
// ErrUnauthorized (401, 403), ErrRateLimited (429), ErrUnavailable, or
// ErrBadAnswer (not an object, no userId, no e-mail address).
func (c *Client) Profile(ctx context.Context, token string) (*Profile, error) {
	body, err := c.get(ctx, "/ims/profile/v1", token)
	if err != nil {
		return nil, fmt.Errorf("ims profile: %w", err)
	}
	p, err := decodeProfile(body)
	if err != nil {
		return nil, fmt.Errorf("ims profile: %w", err)
	}
	return p, nil
}

// Organizations returns the organizations of the token's user, with the
// user's groups in each. Errors wrap ErrUnauthorized (401, 403),
// ErrRateLimited (429), ErrUnavailable, or ErrBadAnswer (not an array).
// An entry that is incomplete is returned with its Problem set.
func (c *Client) Organizations(ctx context.Context, token string) ([]Organization, error) {
	body, err := c.get(ctx, "/ims/organizations/v5", token)
	if err != nil {
		return nil, fmt.Errorf("ims organizations: %w", err)
	}
	orgs, err := decodeOrganizations(body)
	if err != nil {
		return nil, fmt.Errorf("ims organizations: %w", err)
	}
	return orgs, nil
}

// get sends a GET with the token and returns the body of a 200 answer.
func (c *Client) get(ctx context.Context, path, token string) ([]byte, error) {
	req, err := c.request(ctx, http.MethodGet, path, token, nil)
	if err != nil {
		return nil, err
	}
	resp, body, err := c.do(req)
	if err != nil {
		return nil, err
	}
	switch resp.StatusCode {
	case http.StatusOK:
		return body, nil
	case http.StatusUnauthorized, http.StatusForbidden:
		return nil, fmt.Errorf("%w: status %d", ErrUnauthorized, resp.StatusCode)
	}
	return nil, statusError(resp)
}

func (c *Client) request(ctx context.Context, method, path, token string, body io.Reader) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Accept", "application/json")
	return req, nil
}

// do sends req and reads the answer, of at most maxResponseBody bytes.
// Its errors wrap ErrUnavailable.
func (c *Client) do(req *http.Request) (*http.Response, []byte, error) {
	resp, err := c.hc.Do(req)
	if err != nil {
		// A *url.Error names the URL, which never holds the token.
		return nil, nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	defer resp.Body.Close()
	body, err := readBody(resp.Body, maxResponseBody)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: status %d: %w", ErrUnavailable, resp.StatusCode, err)
	}
	return resp, body, nil
}

// statusError is the error for an answer that is neither success nor a
// refusal of the token: 429 wraps ErrRateLimited, the rest ErrUnavailable.
func statusError(resp *http.Response) error {
	if resp.StatusCode == http.StatusTooManyRequests {
		return &RateLimitError{RetryAfter: retryAfter(resp.Header.Get("Retry-After"), time.Now())}
	}
	return &StatusError{Status: resp.StatusCode}
}

// retryAfter reads a Retry-After header: seconds or an HTTP date.
func retryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil {
		if s < 0 {
			return 0
		}
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now).Round(time.Second)
	}
	return 0
}

// refusalReason is the reason IMS gave for refusing a token with status
// 400, 401 or 403: that of the body, else "http_<status>".
func refusalReason(body []byte, status int) string {
	if r := bodyReason(body); r != "" {
		return r
	}
	return "http_" + strconv.Itoa(status)
}

// bodyReason is the "reason" or else the "error" field of a JSON body, or
// "" when there is neither.
func bodyReason(body []byte) string {
	var r struct {
		Reason any `json:"reason"`
		Error  any `json:"error"`
	}
	if len(body) == 0 || json.Unmarshal(body, &r) != nil {
		return ""
	}
	for _, v := range []any{r.Reason, r.Error} {
		if s, ok := v.(string); ok && s != "" {
			return clip(s)
		}
	}
	return ""
}
