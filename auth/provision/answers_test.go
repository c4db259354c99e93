package provision_test

import (
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-proxy/gatehouse/auth"
	"github.com/gatehouse-proxy/gatehouse/auth/ims"
	"github.com/gatehouse-proxy/gatehouse/auth/ims/imstest"
	"github.com/gatehouse-proxy/gatehouse/auth/provision"
	"github.com/gatehouse-proxy/gatehouse/session"
)

// TestVariantAnswers: a first sign-in and a resync work when IMS answers
// in the variant shapes the real service uses (ids as numbers and strings,
// emailVerified "true", members of other types, nulls, extra members).
func TestVariantAnswers(t *testing.T) {
	idp.SetVariantAnswers(true)
	t.Cleanup(func() { idp.SetVariantAnswers(false) })
	f := newFixture(t, func(c *provision.Config) { c.Mapping = mustMapping(t, "Admins:GRP_ADMIN=administrators") })
	id, token, claims := newUser(t)
	u, err := f.p.Ensure(t.Context(), token, claims)
	if err != nil {
		t.Fatalf("first sign-in against variant answers: %v", err)
	}
	if u.ID != id || u.Email != "ada@example.com" || u.Name != "Ada Lovelace" {
		t.Errorf("user = %+v", u)
	}
	wantGroups(t, u, "Authors", "Readers", "administrators")
	if want := []string{orgA, "31337@AdobeOrg", orgB}; !slices.Equal(u.Orgs, want) {
		t.Errorf("orgs = %q, want %q", u.Orgs, want)
	}
}

// TestUnusableAnswers: when IMS answers 200 with something that lacks what
// a user is made of, nothing is provisioned: the sign-in gets 502
// IDENTITY_SERVICE_ERROR naming the member at fault, a new user gets no
// row, and a known user is neither changed nor marked fresh.
func TestUnusableAnswers(t *testing.T) {
	okOrg := `{"orgName":"A","orgRef":{"ident":"1234ABCD5678EF90","authSrc":"AdobeOrg"},"groups":[{"groupName":"Authors","ident":1}]}`
	tests := []struct {
		name     string
		endpoint string
		body     string
		field    string // what the error must name
	}{
		{"profile {}", imstest.EndpointProfile, `{}`, "userId"},
		{"profile null", imstest.EndpointProfile, `null`, "not a JSON object"},
		{"profile an array", imstest.EndpointProfile, `[{"userId":"x@AdobeID","email":"a@b.c"}]`, "not a JSON object"},
		{"profile a string", imstest.EndpointProfile, `"userId"`, "not a JSON object"},
		{"profile not JSON", imstest.EndpointProfile, `<html>ok</html>`, "not a JSON object"},
		{"profile without userId", imstest.EndpointProfile, `{"email":"ada@example.com","name":"Ada"}`, "userId"},
		{"profile userId null", imstest.EndpointProfile, `{"userId":null,"email":"ada@example.com"}`, "userId"},
		{"profile without email", imstest.EndpointProfile, `{"userId":"%s","name":"Ada"}`, "email"},
		{"profile email null", imstest.EndpointProfile, `{"userId":"%s","email":null}`, "email"},
		{"profile email \"null\"", imstest.EndpointProfile, `{"userId":"%s","email":"null"}`, "email"},
		{"profile email a number", imstest.EndpointProfile, `{"userId":"%s","email":42}`, "email"},
		{"profile of another user", imstest.EndpointProfile, `{"userId":"0000@AdobeID","email":"eve@example.com"}`, "userId"},
		{"organizations null", imstest.EndpointOrganizations, `null`, "not a JSON array"},
		{"organizations an object", imstest.EndpointOrganizations, `{"orgs":[]}`, "not a JSON array"},
		{"organizations a string", imstest.EndpointOrganizations, `"[]"`, "not a JSON array"},
		{"organizations truncated", imstest.EndpointOrganizations, `[` + okOrg, "well-formed"},
		{"configured org: group without groupName", imstest.EndpointOrganizations,
			`[{"orgRef":{"ident":"1234ABCD5678EF90","authSrc":"AdobeOrg"},"groups":[{"groupName":"Authors"},{"ident":7,"role":"GRP_ADMIN"}]}]`,
			"organizations[0].groups[1].groupName"},
		{"configured org: groups not an array", imstest.EndpointOrganizations,
			`[{"orgRef":{"ident":"1234ABCD5678EF90","authSrc":"AdobeOrg"},"groups":{"groupName":"Authors"}}]`,
			"organizations[0].groups"},
		{"configured org: no authSrc", imstest.EndpointOrganizations,
			`[{"orgRef":{"ident":"1234ABCD5678EF90"},"groups":[]}]`, "organizations[0].orgRef.authSrc"},
		{"an org without ident", imstest.EndpointOrganizations,
			`[` + okOrg + `,{"orgName":"B","groups":[{"groupName":"Admins","role":"GRP_ADMIN"}]}]`, "organizations[1].orgRef.ident"},
		{"an entry not an object", imstest.EndpointOrganizations, `[` + okOrg + `,null]`, "organizations[1]"},
	}
	for _, tt := range tests {
		// refused makes IMS give the unusable answer, and checks that the
		// sign-in is refused for it.
		refused := func(t *testing.T, f *fixture, id, token string, claims *ims.Claims) {
			t.Helper()
			idp.SetAnswer(tt.endpoint, []byte(strings.ReplaceAll(tt.body, "%s", id)))
			t.Cleanup(func() { idp.SetAnswer(tt.endpoint, nil) })
			u, err := f.p.Ensure(t.Context(), token, claims)
			if u != nil {
				t.Errorf("user = %+v, want none", u)
			}
			wantServiceError(t, err, tt.field)
		}
		t.Run(tt.name+"/new user", func(t *testing.T) {
			f := newFixture(t, nil)
			id, token, claims := newUser(t)
			refused(t, f, id, token, claims)
			if _, err := f.store.GetUser(t.Context(), id); !errors.Is(err, session.ErrNotFound) {
				t.Errorf("GetUser after an unusable answer: %v, want ErrNotFound", err)
			}
		})
		t.Run(tt.name+"/known stale user", func(t *testing.T) {
			f := newFixture(t, nil)
			id, token, claims := newUser(t)
			first, err := f.p.Ensure(t.Context(), token, claims)
			if err != nil {
				t.Fatal(err)
			}
			f.clock.Advance(2 * time.Hour)
			refused(t, f, id, token, claims)
			stored, err := f.store.GetUser(t.Context(), id)
			if err != nil {
				t.Fatal(err)
			}
			if !stored.SyncedAt.Equal(first.SyncedAt) || stored.Email != first.Email || !slices.Equal(stored.Groups(), first.Groups()) {
				t.Errorf("stored user %+v changed by an unusable answer (was %+v)", stored, first)
			}
		})
	}
}

// TestIncompleteOtherOrg: an incomplete entry of an organization whose
// groups are not synced does not fail the sign-in; it is left out of the
// user's organization ids.
func TestIncompleteOtherOrg(t *testing.T) {
	for _, org := range []string{orgA, ""} {
		t.Run("configured org "+org, func(t *testing.T) {
			f := newFixture(t, func(c *provision.Config) { c.Org = org })
			_, token, claims := newUser(t)
			idp.SetAnswer(imstest.EndpointOrganizations, []byte(`[
				{"orgRef":{"ident":"1234ABCD5678EF90","authSrc":"AdobeOrg"},"groups":[{"groupName":"Authors","ident":"12"}]},
				{"orgRef":{"ident":"FEDC0987BA654321"},"groups":[{"role":"GRP_ADMIN"}]},
				{"orgRef":{"ident":99,"authSrc":"AdobeOrg"},"groups":"none"}]`))
			t.Cleanup(func() { idp.SetAnswer(imstest.EndpointOrganizations, nil) })
			u, err := f.p.Ensure(t.Context(), token, claims)
			if err != nil {
				t.Fatal(err)
			}
			if want := []string{orgA, "99@AdobeOrg"}; !slices.Equal(u.Orgs, want) {
				t.Errorf("orgs = %q, want %q", u.Orgs, want)
			}
		})
	}
}

func wantServiceError(t *testing.T, err error, field string) {
	t.Helper()
	wantAuthError(t, err, http.StatusBadGateway, "", auth.ReasonServiceError)
	if !errors.Is(err, ims.ErrBadAnswer) {
		t.Errorf("err = %v, want it to wrap ims.ErrBadAnswer", err)
	}
	if err != nil && !strings.Contains(err.Error(), field) {
		t.Errorf("err = %v, want it to name %q", err, field)
	}
}
