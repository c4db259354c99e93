package ims

import (
	"bytes"
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
// 401 or 403) is a result with Valid false and a Reason, not an error.
// Errors wrap ErrRateLimited (429: back off) or ErrUnavailable.
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
		var r ValidationResult
		if err := json.Unmarshal(body, &r); err != nil {
			return nil, fmt.Errorf("ims validate token: %w: decode answer: %w", ErrUnavailable, err)
		}
		if !r.Valid {
			r.Token = nil // claims IMS does not vouch for
			if r.Reason == "" {
				r.Reason = bodyReason(body)
			}
		}
		return &r, nil
	case http.StatusBadRequest, http.StatusUnauthorized, http.StatusForbidden:
		return &ValidationResult{Valid: false, Reason: refusalReason(body, resp.StatusCode)}, nil
	}
	return nil, fmt.Errorf("ims validate token: %w", statusError(resp))
}

// Profile returns the profile of the token's user. Errors wrap
// ErrUnauthorized (401, 403), ErrRateLimited (429) or ErrUnavailable.
func (c *Client) Profile(ctx context.Context, token string) (*Profile, error) {
	body, err := c.get(ctx, "/ims/profile/v1", token)
	if err != nil {
		return nil, fmt.Errorf("ims profile: %w", err)
	}
	var p Profile
	if err := json.Unmarshal(body, &p); err != nil {
		return nil, fmt.Errorf("ims profile: %w: decode answer: %w", ErrUnavailable, err)
	}
	return &p, nil
}

// Organizations returns the organizations of the token's user, with the
// user's groups in each. Errors wrap ErrUnauthorized (401, 403),
// ErrRateLimited (429) or ErrUnavailable.
func (c *Client) Organizations(ctx context.Context, token string) ([]Organization, error) {
	body, err := c.get(ctx, "/ims/organizations/v5", token)
	if err != nil {
		return nil, fmt.Errorf("ims organizations: %w", err)
	}
	var wire []wireOrg
	if err := json.Unmarshal(body, &wire); err != nil {
		return nil, fmt.Errorf("ims organizations: %w: decode answer: %w", ErrUnavailable, err)
	}
	orgs := make([]Organization, len(wire))
	for i := range wire {
		w := &wire[i]
		o := w.Organization
		o.OrgRef = OrgRef{Ident: string(w.OrgRef.Ident), AuthSrc: w.OrgRef.AuthSrc}
		o.Groups = make([]Group, len(w.Groups))
		for j := range w.Groups {
			g := w.Groups[j].Group
			g.Ident = json.Number(w.Groups[j].Ident)
			o.Groups[j] = g
		}
		orgs[i] = o
	}
	return orgs, nil
}

// wireOrg reads an organization leniently: idents may be numbers or strings.
// The outer fields shadow those of the embedded types when decoding.
type wireOrg struct {
	Organization
	OrgRef struct {
		Ident   flexString `json:"ident"`
		AuthSrc string     `json:"authSrc"`
	} `json:"orgRef"`
	Groups []wireGroup `json:"groups"`
}

type wireGroup struct {
	Group
	Ident flexString `json:"ident"`
}

// flexString reads a JSON string, number or null as text.
type flexString string

func (f *flexString) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case bytes.Equal(b, []byte("null")):
		*f = ""
	case len(b) > 0 && b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*f = flexString(s)
	default:
		var n json.Number
		if err := json.Unmarshal(b, &n); err != nil {
			return fmt.Errorf("ident: want a string or a number: %w", err)
		}
		*f = flexString(n)
	}
	return nil
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
