package bearer_test

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-proxy/gatehouse/auth"
	"github.com/gatehouse-proxy/gatehouse/auth/bearer"
	"github.com/gatehouse-proxy/gatehouse/auth/ims"
	"github.com/gatehouse-proxy/gatehouse/auth/ims/imstest"
)

// TestValidateAnswers: validate_token answers in variant shapes are read;
// answers that say nothing usable are 502 IDENTITY_SERVICE_ERROR, not 503,
// and are not cached.
func TestValidateAnswers(t *testing.T) {
	tests := []struct {
		name   string
		answer string // "" for the emulator's own, in variant shapes
		ok     bool
	}{
		{"variant shapes", "", true},
		{"empty object", `{}`, false},
		{"null", `null`, false},
		{"an array", `[{"valid":true}]`, false},
		{"not JSON", `<html>maintenance</html>`, false},
		{"valid a word", `{"valid":"maybe"}`, false},
		{"valid without token", `{"valid":true}`, false},
		{"valid \"true\" without token", `{"valid":"true","expires_at":"1700000000000"}`, false},
		{"valid with token null", `{"valid":true,"token":null}`, false},
		{"valid with token a string", `{"valid":true,"token":"eyJ0eXAiOiJKV1QifQ"}`, false},
		{"valid with type a number", `{"valid":true,"token":{"type":1,"user_id":"` + testUser + `"}}`, false},
		{"valid with a duplicate user_id", `{"valid":true,"token":{"user_id":"` + testUser + `","user_id":"x@AdobeID"}}`, false},
	}
	for _, tt := range tests {
		for _, mode := range []bearer.Mode{bearer.ModeRemote, bearer.ModeBoth} {
			t.Run(tt.name+"/"+string(mode), func(t *testing.T) {
				f := newFixture(t, mode, nil)
				token, _ := mint(t, idp, nil)
				if tt.answer == "" {
					idp.SetVariantAnswers(true)
					t.Cleanup(func() { idp.SetVariantAnswers(false) })
				} else {
					idp.SetAnswer(imstest.EndpointValidate, []byte(tt.answer))
					t.Cleanup(func() { idp.SetAnswer(imstest.EndpointValidate, nil) })
				}
				res, err := f.a.Authenticate(t.Context(), token)
				if tt.ok {
					if err != nil || res.Claims.UserID != testUser {
						t.Fatalf("Authenticate = %+v, %v; want the token accepted", res, err)
					}
					return
				}
				wantAuthError(t, err, http.StatusBadGateway, "", auth.ReasonServiceError, ims.ErrBadAnswer)
				if n := f.a.CacheLen(); n != 0 {
					t.Errorf("CacheLen = %d: an unusable answer was cached", n)
				}
			})
		}
	}
}

// TestRateLimitedRetryAfter: a 503 for IMS's 429 carries IMS's Retry-After,
// and a 503 for an outage a default one.
func TestRateLimitedRetryAfter(t *testing.T) {
	for _, tt := range []struct {
		name string
		set  func(bool)
		want time.Duration
	}{
		{"rate limited", idp.SetRateLimited, time.Second}, // the emulator's Retry-After
		{"down", idp.SetDown, auth.DefaultRetryAfter},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, bearer.ModeRemote, nil)
			token, _ := mint(t, idp, nil)
			tt.set(true)
			t.Cleanup(func() { tt.set(false) })
			_, err := f.a.Authenticate(t.Context(), token)
			wantAuthError(t, err, http.StatusServiceUnavailable, "", auth.ReasonUnavailable, nil)
			if got := auth.AsError(err).RetryAfter; got != tt.want {
				t.Errorf("RetryAfter = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestRemoteClaimsReading: in remote mode the claims are read before IMS
// is asked with the reading a local verification uses (ims.DecodeClaims):
// an unused claim of an unexpected type is skipped, while a deciding claim
// of the wrong type or given twice refuses the token without an IMS call.
func TestRemoteClaimsReading(t *testing.T) {
	created := time.Now().Add(-time.Minute).UnixMilli()
	claims := func(extra string) string {
		return fmt.Sprintf(`{"id":"1_x_ue1","type":"access_token","client_id":%q,"user_id":%q,"as":%q,`+
			`"created_at":"%d","expires_in":"86400000"%s}`, testClient, testUser, imstest.DefaultCluster, created, extra)
	}
	tests := []struct {
		name    string
		payload string
		ok      bool
	}{
		{"ctp a string, aa_id a number", claims(`,"ctp":"zero","aa_id":42,"fg":{"x":[1]},"sid":null`), true},
		{"id and scope numbers", claims(`,"scope":7`), true},
		{"created_at a boolean", strings.Replace(claims(""), `"created_at":"`, `"created_at":true,"x":"`, 1), false},
		{"client_id twice", claims(`,"client_id":"cc-europa-desktop_0_1"`), false},
		{"user_id a number", strings.Replace(claims(""), `"user_id":"`+testUser+`"`, `"user_id":7`, 1), false},
		{"exp a string", claims(`,"exp":"1900000000"`), false},
		{"not an object", `["access_token"]`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, bearer.ModeRemote, nil)
			enc := base64.RawURLEncoding
			token := enc.EncodeToString([]byte(`{"alg":"RS256","kid":"ims"}`)) + "." +
				enc.EncodeToString([]byte(tt.payload)) + "." + enc.EncodeToString([]byte("signature"))
			// IMS vouches for the token, echoing its claims.
			idp.SetAnswer(imstest.EndpointValidate, []byte(`{"valid":true,"token":`+tt.payload+`}`))
			t.Cleanup(func() { idp.SetAnswer(imstest.EndpointValidate, nil) })
			calls := validateCalls()
			res, err := f.a.Authenticate(t.Context(), token)
			if tt.ok {
				if err != nil || res.Claims.UserID != testUser {
					t.Fatalf("Authenticate = %+v, %v; want the token accepted", res, err)
				}
				return
			}
			wantAuthError(t, err, http.StatusUnauthorized, auth.CodeInvalidToken, auth.ReasonInvalidToken, ims.ErrMalformed)
			if n := validateCalls() - calls; n != 0 {
				t.Errorf("validate_token calls = %d, want 0", n)
			}
		})
	}
}
