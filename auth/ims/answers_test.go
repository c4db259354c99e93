package ims

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

// answerClaims is the token object of a valid validate_token answer.
const answerClaims = `{"id":"1700000000000_x_ue1","type":"access_token","client_id":"` + testClient + `","user_id":"` + testUser +
	`","as":"ims-na1","created_at":"1700000000000","expires_in":"86400000","scope":"AdobeID,openid"}`

// answerCall is one IMS endpoint as the Client calls it.
type answerCall struct {
	endpoint string
	call     func(c *Client) (any, error)
}

var answerCalls = map[string]answerCall{
	"validate_token": {"/ims/validate_token/v1", func(c *Client) (any, error) {
		return c.ValidateToken(context.Background(), clientToken, testClient)
	}},
	"profile": {"/ims/profile/v1", func(c *Client) (any, error) { return c.Profile(context.Background(), clientToken) }},
	"organizations": {"/ims/organizations/v5", func(c *Client) (any, error) {
		return c.Organizations(context.Background(), clientToken)
	}},
	"exchange_jwt": {"/ims/exchange/jwt", func(c *Client) (any, error) {
		return c.ExchangeJWT(context.Background(), techClient, techSecret, exchangeJW)
	}},
	"token_v3": {"/ims/token/v3", func(c *Client) (any, error) {
		return c.ClientCredentials(context.Background(), techClient, techSecret, []string{"openid"})
	}},
}

// TestAnswerVariants reads each endpoint's answers in the shapes the
// service has been seen to use or might: accepted ones with what Gatehouse
// keeps of them, refused ones with ErrBadAnswer naming the member at fault.
func TestAnswerVariants(t *testing.T) {
	created := time.Now().Add(-time.Hour)
	signed := accessToken(created, 24*time.Hour) // claims say when it expires
	tests := []struct {
		call    string
		name    string
		body    string
		refused string // what the error must say; "" when the answer is accepted
		check   func(t *testing.T, got any)
	}{
		// validate_token
		{call: "validate_token", name: "as documented", body: `{"valid":true,"token":` + answerClaims + `,"expires_at":1700086400000}`,
			check: wantValidation(true, "", 1700086400000)},
		{call: "validate_token", name: "valid and expires_at strings, token last, extra members",
			body:  `{"expires_at":"1700086400000","valid":"true","handler":{"x":[1,null]},"client":42,"token":` + answerClaims + `}`,
			check: wantValidation(true, "", 1700086400000)},
		{call: "validate_token", name: "unused claims of any type",
			body:  `{"valid":true,"token":` + strings.TrimSuffix(answerClaims, "}") + `,"ctp":"zero","aa_id":42,"fg":null,"pac":{"a":1},"sid":7}}`,
			check: wantValidation(true, "", 0)},
		{call: "validate_token", name: "expires_at null", body: `{"valid":true,"token":` + answerClaims + `,"expires_at":null}`,
			check: wantValidation(true, "", 0)},
		{call: "validate_token", name: "expires_at \"null\"", body: `{"valid":true,"token":` + answerClaims + `,"expires_at":"null"}`,
			check: wantValidation(true, "", 0)},
		{call: "validate_token", name: "invalid, reason", body: `{"valid":false,"reason":"bad_signature","token":null}`,
			check: wantValidation(false, "bad_signature", 0)},
		{call: "validate_token", name: "invalid as a string, error member", body: `{"valid":"false","error":"invalid_token"}`,
			check: wantValidation(false, "invalid_token", 0)},
		{call: "validate_token", name: "invalid, reason a number", body: `{"valid":false,"reason":42}`,
			check: wantValidation(false, "", 0)},
		{call: "validate_token", name: "invalid with unvouched claims", body: `{"valid":false,"token":{"type":5}}`,
			check: wantValidation(false, "", 0)},
		{call: "validate_token", name: "empty object", body: `{}`, refused: "valid is missing"},
		{call: "validate_token", name: "null", body: `null`, refused: "not a JSON object"},
		{call: "validate_token", name: "array", body: `[{"valid":true}]`, refused: "not a JSON object"},
		{call: "validate_token", name: "valid a number", body: `{"valid":1,"token":` + answerClaims + `}`, refused: "valid is missing or not a boolean"},
		{call: "validate_token", name: "valid without token", body: `{"valid":true}`, refused: "token"},
		{call: "validate_token", name: "valid with token null", body: `{"valid":true,"token":null}`, refused: "token"},
		{call: "validate_token", name: "valid with token a string", body: `{"valid":"true","token":"` + clientToken[:20] + `"}`, refused: "token"},
		{call: "validate_token", name: "type a number", body: `{"valid":true,"token":{"type":1}}`, refused: "/type"},
		{call: "validate_token", name: "created_at a boolean", body: `{"valid":true,"token":{"created_at":true}}`, refused: "/created_at"},
		{call: "validate_token", name: "duplicate claim", body: `{"valid":true,"token":{"user_id":"a@AdobeID","user_id":"b@AdobeID"}}`, refused: "duplicate"},
		{call: "validate_token", name: "truncated", body: `{"valid":true,"token":` + answerClaims, refused: "well-formed"},

		// profile
		{call: "profile", name: "as captured", body: profileAnswer,
			check: wantProfile(Profile{UserID: testUser, Email: "erika@example.com", Name: "Erika Mustermann",
				DisplayName: "Erika Mustermann", FirstName: "Erika", LastName: "Mustermann"})},
		{call: "profile", name: "unused members of any type",
			body: `{"countryCode":42,"preferred_languages":"en","projectedProductContext":{},"emailVerified":"true",` +
				`"account_type":null,"utcOffset":"null","name":17,"first_name":null,"last_name":["x"],"userId":"` + testUser + `","email":"erika@example.com",` +
				`"displayName":"Erika","tags":[{"a":null}],"authId":7}`,
			check: wantProfile(Profile{UserID: testUser, Email: "erika@example.com", DisplayName: "Erika"})},
		{call: "profile", name: "projectedProductContext null, ids numbers",
			body:  `{"userId":"` + testUser + `","email":" erika@example.com ","projectedProductContext":[null,{},{"prodCtx":{"groupid":123,"owningEntity":7}}],"name":"null"}`,
			check: wantProfile(Profile{UserID: testUser, Email: "erika@example.com"})},
		{call: "profile", name: "an unused member twice, invalid UTF-8 in a name",
			body:  "{\"tags\":1,\"tags\":[],\"userId\":\"" + testUser + "\",\"email\":\"erika@example.com\",\"displayName\":\"Er\xffika\"}",
			check: wantProfile(Profile{UserID: testUser, Email: "erika@example.com", DisplayName: "Er\uFFFDika"})},
		{call: "profile", name: "a member twice counts as the last",
			body:  `{"email":"old@example.com","userId":"` + testUser + `","email":"erika@example.com"}`,
			check: wantProfile(Profile{UserID: testUser, Email: "erika@example.com"})},
		{call: "profile", name: "only the needed members", body: `{"userId":"` + testUser + `","email":"erika@example.com"}`,
			check: wantProfile(Profile{UserID: testUser, Email: "erika@example.com"})},
		{call: "profile", name: "empty object", body: `{}`, refused: "userId is missing"},
		{call: "profile", name: "null", body: `null`, refused: "not a JSON object"},
		{call: "profile", name: "array", body: `[]`, refused: "not a JSON object"},
		{call: "profile", name: "number", body: `42`, refused: "not a JSON object"},
		{call: "profile", name: "no userId", body: `{"email":"erika@example.com","name":"Erika"}`, refused: "userId is missing"},
		{call: "profile", name: "userId null", body: `{"userId":null,"email":"erika@example.com"}`, refused: "userId"},
		{call: "profile", name: "userId \"null\"", body: `{"userId":"null","email":"erika@example.com"}`, refused: "userId"},
		{call: "profile", name: "userId an object", body: `{"userId":{"id":"x"},"email":"erika@example.com"}`, refused: "userId"},
		{call: "profile", name: "no email", body: `{"userId":"` + testUser + `"}`, refused: "email is missing"},
		{call: "profile", name: "email null", body: `{"userId":"` + testUser + `","email":null}`, refused: "email"},
		{call: "profile", name: "email \"null\"", body: `{"userId":"` + testUser + `","email":"null"}`, refused: "email"},
		{call: "profile", name: "email a number", body: `{"userId":"` + testUser + `","email":42}`, refused: "email"},
		{call: "profile", name: "email not an address", body: `{"userId":"` + testUser + `","email":"erika"}`, refused: "email is not an e-mail address"},

		// organizations
		{call: "organizations", name: "mixed idents, groups null, extra members", body: orgsAnswer,
			check: wantOrgs([]string{"1234ABCD5678@AdobeOrg", "99887766@AdobeOrg"}, [][]string{{"AEM-Users", "AEM-Admins"}, {}}, nil)},
		{call: "organizations", name: "empty", body: `[]`, check: wantOrgs([]string{}, nil, nil)},
		{call: "organizations", name: "groups absent, idents null, display names null",
			body: `[{"orgRef":{"authSrc":"AdobeOrg","ident":"A1"},"countryCode":42},` +
				`{"groups":[{"ident":null,"groupName":"G","groupDisplayName":null,"role":7}],"orgRef":{"ident":"B2","authSrc":"AdobeOrg","x":{}},"orgType":null}]`,
			check: wantOrgs([]string{"A1@AdobeOrg", "B2@AdobeOrg"}, [][]string{{}, {"G"}}, nil)},
		{call: "organizations", name: "incomplete entries are kept with their problem",
			body: `[null,{"orgRef":"x","groups":[]},{"orgRef":{"ident":"C3"},"groups":[]},{"orgRef":{"ident":"D4","authSrc":"AdobeOrg"},"groups":{}},` +
				`{"orgRef":{"ident":"E5","authSrc":"AdobeOrg"},"groups":[{"groupName":"ok"},{"groupName":""},7]}]`,
			check: wantOrgs([]string{"@", "@", "C3@", "D4@AdobeOrg", "E5@AdobeOrg"}, [][]string{nil, {}, {}, {}, {"ok"}}, []string{
				"organizations[0] is not an object", "organizations[1].orgRef.ident", "organizations[2].orgRef.authSrc",
				"organizations[3].groups is not an array", "organizations[4].groups[1].groupName"})},
		{call: "organizations", name: "groups twice, the last an array",
			body:  `[{"orgRef":{"ident":"A1","authSrc":"AdobeOrg"},"groups":"none","groups":[{"groupName":"G"}],"orgRef":{"ident":"B2","authSrc":"AdobeOrg"}}]`,
			check: wantOrgs([]string{"B2@AdobeOrg"}, [][]string{{"G"}}, nil)},
		{call: "organizations", name: "null", body: `null`, refused: "not a JSON array"},
		{call: "organizations", name: "object", body: `{"organizations":[]}`, refused: "not a JSON array"},
		{call: "organizations", name: "string", body: `"[]"`, refused: "not a JSON array"},
		{call: "organizations", name: "truncated", body: `[{"orgRef":{"ident":"A1"`, refused: "well-formed"},
	}
	for _, call := range []string{"exchange_jwt", "token_v3"} {
		unit := time.Millisecond
		if call == "token_v3" {
			unit = time.Second
		}
		for _, tc := range []struct {
			name    string
			body    string
			refused string
			in      time.Duration // expected lifetime from now; 0: the token's own expiry
		}{
			{"as documented", `{"token_type":"bearer","access_token":"` + opaqueToken + `","expires_in":86399}`, "", 86399 * unit},
			{"expires_in a string, extra members", `{"expires_in":"3600","refresh_token":null,"scope":7,"access_token":"` + opaqueToken + `","id_token":"null"}`, "", 3600 * unit},
			{"the token's claims win", `{"access_token":"` + signed + `","expires_in":"soon","token_type":42}`, "", 0},
			{"empty object", `{}`, "access_token is missing", 0},
			{"null", `null`, "not a JSON object", 0},
			{"array", `["` + opaqueToken + `"]`, "not a JSON object", 0},
			{"access_token null", `{"access_token":null,"expires_in":3600}`, "access_token", 0},
			{"access_token a number", `{"access_token":42,"expires_in":3600}`, "access_token", 0},
			{"access_token empty", `{"access_token":"","expires_in":3600}`, "access_token", 0},
			{"expires_in a word", `{"access_token":"` + opaqueToken + `","expires_in":"soon"}`, `expires_in "soon"`, 0},
			{"expires_in zero", `{"access_token":"` + opaqueToken + `","expires_in":0}`, "expires_in", 0},
			{"expires_in a fraction", `{"access_token":"` + opaqueToken + `","expires_in":1.5}`, "expires_in", 0},
			{"no expiry", `{"access_token":"` + opaqueToken + `","expires_in":null}`, "states no expiry", 0},
		} {
			want := created.Add(24 * time.Hour).Truncate(time.Millisecond)
			in := tc.in
			tests = append(tests, struct {
				call    string
				name    string
				body    string
				refused string
				check   func(t *testing.T, got any)
			}{call: call, name: tc.name, body: tc.body, refused: tc.refused, check: func(t *testing.T, got any) {
				r := got.(*TokenResponse)
				if in > 0 {
					if d := time.Until(r.ExpiresAt); d > in || d < in-time.Minute {
						t.Errorf("ExpiresAt in %v, want %v", d, in)
					}
				} else if !r.ExpiresAt.Equal(want) {
					t.Errorf("ExpiresAt %v, want the token's own %v", r.ExpiresAt, want)
				}
				if r.AccessToken == "" {
					t.Error("no access token")
				}
			}})
		}
	}
	for _, tt := range tests {
		t.Run(tt.call+"/"+tt.name, func(t *testing.T) {
			c := answerCalls[tt.call]
			s := newIMSServer(t, http.StatusOK, tt.body)
			s.check = func(t *testing.T, r *http.Request) {
				if r.URL.Path != c.endpoint {
					t.Errorf("path %s, want %s", r.URL.Path, c.endpoint)
				}
			}
			got, err := c.call(newTestClient(t, s))
			if tt.refused == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				tt.check(t, got)
				return
			}
			if !errors.Is(err, ErrBadAnswer) || errors.Is(err, ErrUnavailable) {
				t.Fatalf("err %v, want ErrBadAnswer", err)
			}
			if !strings.Contains(err.Error(), tt.refused) {
				t.Errorf("err %q does not say %q", err, tt.refused)
			}
			if strings.Contains(err.Error(), clientToken) || strings.Contains(err.Error(), opaqueToken) {
				t.Errorf("err %q shows a token", err)
			}
		})
	}
}

func wantValidation(valid bool, reason string, expiresAt int64) func(t *testing.T, got any) {
	return func(t *testing.T, got any) {
		t.Helper()
		r := got.(*ValidationResult)
		if r.Valid != valid || r.Reason != reason || r.ExpiresAt != expiresAt {
			t.Errorf("result %+v, want valid %v, reason %q, expires_at %d", r, valid, reason, expiresAt)
		}
		switch {
		case valid && (r.Token == nil || r.Token.UserID != testUser || r.Token.ClientID != testClient || r.Token.ExpiresAt().IsZero()):
			t.Errorf("claims %+v", r.Token)
		case !valid && r.Token != nil:
			t.Errorf("claims %+v kept from an invalid answer", r.Token)
		}
	}
}

func wantProfile(want Profile) func(t *testing.T, got any) {
	return func(t *testing.T, got any) {
		t.Helper()
		if p := got.(*Profile); *p != want {
			t.Errorf("profile %+v, want %+v", *p, want)
		}
	}
}

// wantOrgs checks the ids, the group names and the problems (nil: none)
// of each organization.
func wantOrgs(ids []string, groups [][]string, problems []string) func(t *testing.T, got any) {
	return func(t *testing.T, got any) {
		t.Helper()
		orgs := got.([]Organization)
		if len(orgs) != len(ids) {
			t.Fatalf("%d organizations, want %d", len(orgs), len(ids))
		}
		for i := range orgs {
			o := &orgs[i]
			var names []string
			for _, g := range o.Groups {
				names = append(names, g.GroupName)
			}
			if o.ID() != ids[i] || (groups != nil && !slices.Equal(names, groups[i])) {
				t.Errorf("organizations[%d] = %s %q, want %s %q", i, o.ID(), names, ids[i], groups[i])
			}
			switch err := o.Problem(); {
			case problems == nil && err != nil:
				t.Errorf("organizations[%d] has a problem: %v", i, err)
			case problems != nil && (!errors.Is(err, ErrBadAnswer) || !strings.Contains(err.Error(), problems[i])):
				t.Errorf("organizations[%d] problem %v, want one naming %q", i, err, problems[i])
			}
		}
	}
}
