package ims

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// The token the client tests send; it must never show up in a URL or an
// error.
const clientToken = "eyJhbGciOiJSUzI1NiIsIng1dSI6ImltcyJ9.eyJ0eXBlIjoiYWNjZXNzX3Rva2VuIn0.c2lnbmF0dXJlLXNlY3JldA"

// imsServer answers every request with status, header and body, after
// checking the request with check (which may be nil).
type imsServer struct {
	*httptest.Server
	hits   atomic.Int64
	status int
	header map[string]string
	body   string
	check  func(t *testing.T, r *http.Request)
	t      *testing.T
}

func newIMSServer(t *testing.T, status int, body string) *imsServer {
	s := &imsServer{status: status, body: body, t: t}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		if s.check != nil {
			s.check(t, r)
		}
		for k, v := range s.header {
			w.Header().Set(k, v)
		}
		if s.body != "" && s.body[0] != '<' {
			w.Header().Set("Content-Type", "application/json")
		}
		w.WriteHeader(s.status)
		_, _ = io.WriteString(w, s.body)
	}))
	t.Cleanup(s.Close)
	return s
}

func newTestClient(t *testing.T, s *imsServer) *Client {
	t.Helper()
	c, err := NewClient(s.URL+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// checkRequest asserts the shape common to every IMS call.
func checkRequest(t *testing.T, r *http.Request, method, path string) {
	t.Helper()
	if r.Method != method {
		t.Errorf("method %s, want %s", r.Method, method)
	}
	if r.URL.Path != path {
		t.Errorf("path %s, want %s", r.URL.Path, path)
	}
	if got := r.Header.Get("Authorization"); got != "Bearer "+clientToken {
		t.Errorf("Authorization %q", got)
	}
	if r.URL.RawQuery != "" || strings.Contains(r.URL.String(), clientToken) {
		t.Errorf("URL %s carries a query or the token", r.URL)
	}
}

const validAnswer = `{
  "valid": true,
  "token": {
    "id": "1700000000000_2f6c0d0e-7a54-4b0e-9d1e-0c7d3f5b6a21_ue1",
    "type": "access_token",
    "client_id": "cc-europa-desktop_1_0",
    "user_id": "7F8F1A2B3C4D5E6F7A8B9C0D@AdobeID",
    "as": "ims-na1",
    "aa_id": "7F8F1A2B3C4D5E6F7A8B9C0D@adobe.com",
    "ctp": 0,
    "fg": "X4ZQ2NFTXPP5AHUKHMQVYHQAXY======",
    "moi": "5f0a0c1e",
    "pac": "cc-europa-desktop_1_0_ue1",
    "rtid": "1700000000000_9e8d7c6b_ue1",
    "rtea": "1701209600000",
    "scope": "AdobeID,openid,read_organizations",
    "created_at": "1700000000000",
    "expires_in": "86400000"
  },
  "expires_at": 1700086400000
}`

func TestValidateTokenRequest(t *testing.T) {
	s := newIMSServer(t, http.StatusOK, validAnswer)
	s.check = func(t *testing.T, r *http.Request) {
		checkRequest(t, r, http.MethodPost, "/ims/validate_token/v1")
		if ct := r.Header.Get("Content-Type"); ct != "application/x-www-form-urlencoded" {
			t.Errorf("Content-Type %q", ct)
		}
		if err := r.ParseForm(); err != nil {
			t.Fatal(err)
		}
		if r.PostForm.Get("type") != "access_token" || r.PostForm.Get("client_id") != testClient {
			t.Errorf("form %v", r.PostForm)
		}
		if r.PostForm.Has("token") || len(r.PostForm) != 2 {
			t.Errorf("form %v: want only type and client_id", r.PostForm)
		}
	}
	res, err := newTestClient(t, s).ValidateToken(context.Background(), clientToken, testClient)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Valid || res.Token == nil || res.ExpiresAt != 1700086400000 {
		t.Fatalf("result %+v", res)
	}
	c := res.Token
	if c.UserID != testUser || c.ClientID != testClient || c.Cluster != "ims-na1" || c.Type != TypeAccessToken {
		t.Errorf("claims %+v", c)
	}
	if got := c.ExpiresAt().UnixMilli(); got != 1700086400000 {
		t.Errorf("ExpiresAt %d", got)
	}
	if s.hits.Load() != 1 {
		t.Errorf("%d requests", s.hits.Load())
	}
}

func TestValidateTokenStatuses(t *testing.T) {
	tests := []struct {
		name       string
		status     int
		header     map[string]string
		body       string
		wantReason string // for a result with Valid false
		wantErr    error
		retryAfter time.Duration
	}{
		{name: "valid false", status: 200, body: `{"valid":false,"reason":"bad_signature"}`, wantReason: "bad_signature"},
		{name: "valid false, error field", status: 200, body: `{"valid":false,"error":"invalid_token"}`, wantReason: "invalid_token"},
		{name: "400 with error", status: 400, body: `{"error":"invalid_token","error_description":"token is expired"}`, wantReason: "invalid_token"},
		{name: "401 with reason", status: 401, body: `{"valid":false,"reason":"expired"}`, wantReason: "expired"},
		{name: "401 without body", status: 401, wantReason: "http_401"},
		{name: "403 HTML", status: 403, body: "<html>Forbidden</html>", wantReason: "http_403"},
		{name: "429 seconds", status: 429, header: map[string]string{"Retry-After": "30"}, wantErr: ErrRateLimited, retryAfter: 30 * time.Second},
		{name: "429 bare", status: 429, wantErr: ErrRateLimited},
		{name: "500", status: 500, body: `{"error":"server_error"}`, wantErr: ErrUnavailable},
		{name: "503", status: 503, wantErr: ErrUnavailable},
		{name: "404", status: 404, wantErr: ErrUnavailable},
		{name: "200 not JSON", status: 200, body: "<html>maintenance</html>", wantErr: ErrBadAnswer},
		{name: "200 too large", status: 200, body: `{"valid":true,"reason":"` + strings.Repeat("x", maxResponseBody) + `"}`, wantErr: ErrUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newIMSServer(t, tt.status, tt.body)
			s.header = tt.header
			res, err := newTestClient(t, s).ValidateToken(context.Background(), clientToken, testClient)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err %v, want %v", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), clientToken) {
					t.Error("the token appears in the error")
				}
				var rl *RateLimitError
				if errors.As(err, &rl) && rl.RetryAfter != tt.retryAfter {
					t.Errorf("RetryAfter %s, want %s", rl.RetryAfter, tt.retryAfter)
				}
				if tt.retryAfter > 0 && !strings.Contains(err.Error(), "30s") {
					t.Errorf("error %q does not say when to retry", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("err %v: a refused token is a result, not an error", err)
			}
			if res.Valid || res.Reason != tt.wantReason || res.Token != nil {
				t.Errorf("result %+v, want invalid with reason %q", res, tt.wantReason)
			}
		})
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2024, 11, 5, 10, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		in   string
		want time.Duration
	}{
		{"", 0}, {"120", 2 * time.Minute}, {"-5", 0}, {"soon", 0},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{now.Add(-time.Minute).Format(http.TimeFormat), 0},
	} {
		if got := retryAfter(tt.in, now); got != tt.want {
			t.Errorf("retryAfter(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

const profileAnswer = `{
  "account_type": "type1",
  "authId": "7F8F1A2B3C4D5E6F7A8B9C0D@AdobeID",
  "countryCode": "DE",
  "displayName": "Erika Mustermann",
  "email": "erika@example.com",
  "emailVerified": "true",
  "first_name": "Erika",
  "last_name": "Mustermann",
  "name": "Erika Mustermann",
  "preferred_languages": ["de-de", "en-us"],
  "projectedProductContext": [
    {"prodCtx": {"serviceCode": "dma_aem_cloud", "owningEntity": "1234ABCD5678@AdobeOrg", "groupid": "987654", "label": "AEM Assets", "instance_id": "x", "serviceLevel": "standard"}}
  ],
  "userId": "7F8F1A2B3C4D5E6F7A8B9C0D@AdobeID",
  "utcOffset": "null",
  "mrktPerm": "EMAIL:true"
}`

func TestProfile(t *testing.T) {
	s := newIMSServer(t, http.StatusOK, profileAnswer)
	s.check = func(t *testing.T, r *http.Request) { checkRequest(t, r, http.MethodGet, "/ims/profile/v1") }
	p, err := newTestClient(t, s).Profile(context.Background(), clientToken)
	if err != nil {
		t.Fatal(err)
	}
	want := Profile{UserID: testUser, Email: "erika@example.com", Name: "Erika Mustermann", DisplayName: "Erika Mustermann",
		FirstName: "Erika", LastName: "Mustermann"}
	if *p != want {
		t.Errorf("profile %+v, want %+v", *p, want)
	}
}

const orgsAnswer = `[
  {
    "orgName": "Example Corp",
    "orgRef": {"ident": "1234ABCD5678", "authSrc": "AdobeOrg"},
    "orgType": "Enterprise",
    "countryCode": "DE",
    "groups": [
      {"groupName": "AEM-Users", "groupDisplayName": "AEM Users", "ident": 4711, "role": "TEAM_MEMBER", "groupType": "USER"},
      {"groupName": "AEM-Admins", "ident": "4712", "role": "GRP_ADMIN", "groupType": "USER"}
    ]
  },
  {
    "orgName": "Second Org",
    "orgRef": {"ident": 99887766, "authSrc": "AdobeOrg"},
    "orgType": "Enterprise",
    "groups": null,
    "someNewField": {"x": 1}
  }
]`

func TestOrganizations(t *testing.T) {
	s := newIMSServer(t, http.StatusOK, orgsAnswer)
	s.check = func(t *testing.T, r *http.Request) { checkRequest(t, r, http.MethodGet, "/ims/organizations/v5") }
	orgs, err := newTestClient(t, s).Organizations(context.Background(), clientToken)
	if err != nil {
		t.Fatal(err)
	}
	if len(orgs) != 2 {
		t.Fatalf("%d organizations", len(orgs))
	}
	o := orgs[0]
	if o.ID() != "1234ABCD5678@AdobeOrg" || o.OrgName != "Example Corp" || o.Problem() != nil {
		t.Errorf("org %+v", o)
	}
	if len(o.Groups) != 2 {
		t.Fatalf("groups %+v", o.Groups)
	}
	g := o.Groups[0]
	if g.GroupName != "AEM-Users" || g.GroupDisplayName != "AEM Users" || g.Ident.String() != "4711" || g.Role != "TEAM_MEMBER" || g.GroupType != "USER" {
		t.Errorf("group %+v", g)
	}
	if n, err := o.Groups[1].Ident.Int64(); err != nil || n != 4712 || o.Groups[1].Role != "GRP_ADMIN" {
		t.Errorf("group %+v", o.Groups[1])
	}
	if orgs[1].ID() != "99887766@AdobeOrg" || len(orgs[1].Groups) != 0 {
		t.Errorf("org %+v", orgs[1])
	}
}

func TestProfileAndOrganizationsStatuses(t *testing.T) {
	calls := map[string]func(*Client) error{
		"profile": func(c *Client) error {
			_, err := c.Profile(context.Background(), clientToken)
			return err
		},
		"organizations": func(c *Client) error {
			_, err := c.Organizations(context.Background(), clientToken)
			return err
		},
	}
	tests := []struct {
		name   string
		status int
		body   string
		want   error
	}{
		{"400", 400, `{"error":"invalid_request"}`, ErrUnavailable},
		{"401", 401, `{"error":"invalid_token"}`, ErrUnauthorized},
		{"403", 403, "", ErrUnauthorized},
		{"429", 429, "", ErrRateLimited},
		{"500", 500, "", ErrUnavailable},
		{"502", 502, "<html>bad gateway</html>", ErrUnavailable},
		{"200 not JSON", 200, "<html>maintenance</html>", ErrBadAnswer},
		{"200 too large", 200, `"` + strings.Repeat("x", maxResponseBody) + `"`, ErrUnavailable},
	}
	for call, fn := range calls {
		for _, tt := range tests {
			t.Run(call+"/"+tt.name, func(t *testing.T) {
				s := newIMSServer(t, tt.status, tt.body)
				err := fn(newTestClient(t, s))
				if !errors.Is(err, tt.want) {
					t.Fatalf("err %v, want %v", err, tt.want)
				}
				for _, other := range []error{ErrUnavailable, ErrUnauthorized, ErrRateLimited, ErrBadAnswer} {
					if other != tt.want && errors.Is(err, other) {
						t.Errorf("err %v is also %v", err, other)
					}
				}
				if !strings.HasPrefix(err.Error(), "ims "+call+": ") {
					t.Errorf("err %q: want the prefix %q", err, "ims "+call+": ")
				}
				if strings.Contains(err.Error(), clientToken) {
					t.Error("the token appears in the error")
				}
			})
		}
	}
}

func TestClientRedirectNotFollowed(t *testing.T) {
	var targetHits atomic.Int64
	var gotAuth atomic.Value
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		targetHits.Add(1)
		gotAuth.Store(r.Header.Get("Authorization"))
		_, _ = io.WriteString(w, profileAnswer)
	}))
	defer target.Close()
	s := newIMSServer(t, http.StatusFound, "")
	s.header = map[string]string{"Location": target.URL + "/ims/profile/v1"}
	// Neither the default client nor one that would follow redirects does.
	for name, hc := range map[string]*http.Client{"default": nil, "following": {}} {
		t.Run(name, func(t *testing.T) {
			c, err := NewClient(s.URL, hc)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.Profile(context.Background(), clientToken); !errors.Is(err, ErrUnavailable) {
				t.Errorf("profile: err %v, want ErrUnavailable", err)
			}
			if _, err := c.ValidateToken(context.Background(), clientToken, testClient); !errors.Is(err, ErrUnavailable) {
				t.Errorf("validate: err %v, want ErrUnavailable", err)
			}
		})
	}
	if n := targetHits.Load(); n != 0 {
		t.Errorf("redirect followed %d times (Authorization %v)", n, gotAuth.Load())
	}
}

func TestClientNetworkError(t *testing.T) {
	s := newIMSServer(t, http.StatusOK, "{}")
	c := newTestClient(t, s)
	s.Close()
	ctx := context.Background()
	if _, err := c.ValidateToken(ctx, clientToken, testClient); !errors.Is(err, ErrUnavailable) || strings.Contains(err.Error(), clientToken) {
		t.Errorf("validate: err %v", err)
	}
	if _, err := c.Profile(ctx, clientToken); !errors.Is(err, ErrUnavailable) {
		t.Errorf("profile: err %v", err)
	}
	if _, err := c.Organizations(ctx, clientToken); !errors.Is(err, ErrUnavailable) {
		t.Errorf("organizations: err %v", err)
	}
}

func TestClientContextCanceled(t *testing.T) {
	s := newIMSServer(t, http.StatusOK, profileAnswer)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := newTestClient(t, s).Profile(ctx, clientToken)
	if !errors.Is(err, ErrUnavailable) || !errors.Is(err, context.Canceled) {
		t.Errorf("err %v, want ErrUnavailable and context.Canceled", err)
	}
}

func TestNewClient(t *testing.T) {
	for _, tt := range []struct {
		in      string
		wantErr bool
		base    string
	}{
		{"https://ims-na1.adobelogin.com", false, "https://ims-na1.adobelogin.com"},
		{"https://ims-na1.adobelogin.com/", false, "https://ims-na1.adobelogin.com"},
		{"http://127.0.0.1:8080/prefix/", false, "http://127.0.0.1:8080/prefix"},
		{"", true, ""},
		{"ims-na1.adobelogin.com", true, ""},
		{"ftp://ims-na1.adobelogin.com", true, ""},
		{"https://ims-na1.adobelogin.com/?x=1", true, ""},
		{"https://user:pass@ims-na1.adobelogin.com", true, ""},
	} {
		t.Run(tt.in, func(t *testing.T) {
			c, err := NewClient(tt.in, nil)
			if tt.wantErr {
				if err == nil {
					t.Fatal("no error")
				}
				if strings.Contains(err.Error(), "pass") {
					t.Errorf("error %q shows the password", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.base != tt.base {
				t.Errorf("base %q, want %q", c.base, tt.base)
			}
			if c.hc.Timeout != defaultHTTPTimeout || c.hc.CheckRedirect == nil {
				t.Error("default client: want a timeout and no redirects")
			}
		})
	}
}
