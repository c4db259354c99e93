package imstest_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-proxy/gatehouse/auth/ims"
	"github.com/gatehouse-proxy/gatehouse/auth/ims/imstest"
)

// TestVariantAnswers: with SetVariantAnswers on, every answer a sign-in
// reads (validate_token, profile, organizations) and both token endpoints
// differ in shape from the standard ones, and ims.Client reads the same
// content from them.
func TestVariantAnswers(t *testing.T) {
	s, clk := newTechServer(t)
	c, err := ims.NewClient(s.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	tok := mint(t, s, imstest.TokenRequest{})
	ctx := context.Background()
	read := func() (res *ims.ValidationResult, p *ims.Profile, orgs []ims.Organization, exch, cc *ims.TokenResponse) {
		t.Helper()
		var err error
		if res, err = c.ValidateToken(ctx, tok, clientID); err != nil {
			t.Fatal(err)
		}
		if p, err = c.Profile(ctx, tok); err != nil {
			t.Fatal(err)
		}
		if orgs, err = c.Organizations(ctx, tok); err != nil {
			t.Fatal(err)
		}
		if exch, err = c.ExchangeJWT(ctx, techClientID, techSecret, signRS256(t, techKey(), exchangeClaims(s.URL, clk.Now()))); err != nil {
			t.Fatal(err)
		}
		if cc, err = c.ClientCredentials(ctx, techClientID, techSecret, []string{"openid"}); err != nil {
			t.Fatal(err)
		}
		return
	}
	res, p, orgs, exch, cc := read()

	// The shapes differ: raw answers in variant mode.
	s.SetVariantAnswers(true)
	t.Cleanup(func() { s.SetVariantAnswers(false) })
	_, b := raw(t, s, http.MethodGet, "/ims/profile/v1", map[string]string{"Authorization": "Bearer " + tok}, nil)
	for _, want := range []string{`"countryCode":42`, `"preferred_languages":"en"`, `"name":17`, `"emailVerified":"true"`, `"groupid":987654321`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("variant profile %s: no %s", b, want)
		}
	}
	_, b = raw(t, s, http.MethodGet, "/ims/organizations/v5", map[string]string{"Authorization": "Bearer " + tok}, nil)
	if !strings.Contains(string(b), `"ident":"123456789"`) || !strings.Contains(string(b), `"groups":null`) {
		t.Errorf("variant organizations %s", b)
	}

	vres, vp, vorgs, vexch, vcc := read()
	if !vres.Valid || *vres.Token != *res.Token || vres.ExpiresAt != res.ExpiresAt {
		t.Errorf("validate_token: %+v, want %+v", vres, res)
	}
	if vp.UserID != p.UserID || vp.Email != p.Email || vp.FullName() != p.FullName() {
		t.Errorf("profile: %+v, want %+v", vp, p)
	}
	if len(vorgs) != len(orgs)+1 || vorgs[0].ID() != orgs[0].ID() || len(vorgs[0].Groups) != len(orgs[0].Groups) {
		t.Fatalf("organizations: %+v, want %+v and an unrelated one", vorgs, orgs)
	}
	for i, g := range vorgs[0].Groups {
		if w := orgs[0].Groups[i]; g.GroupName != w.GroupName || g.Ident != w.Ident || g.Role != w.Role {
			t.Errorf("group %+v, want %+v", g, w)
		}
	}
	for _, tr := range [][2]*ims.TokenResponse{{vexch, exch}, {vcc, cc}} {
		if d := tr[0].ExpiresAt.Sub(tr[1].ExpiresAt); d < -time.Minute || d > time.Minute {
			t.Errorf("token expires at %v, want about %v", tr[0].ExpiresAt, tr[1].ExpiresAt)
		}
	}
}

// TestSetAnswer: an endpoint answers whatever body it is given, after the
// outage check, until the answer is cleared.
func TestSetAnswer(t *testing.T) {
	s, _ := newServer(t)
	tok := mint(t, s, imstest.TokenRequest{})
	c, err := ims.NewClient(s.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	s.SetAnswer(imstest.EndpointProfile, []byte(`{}`))
	if _, err := c.Profile(context.Background(), tok); !errors.Is(err, ims.ErrBadAnswer) {
		t.Errorf("profile with answer {}: %v, want ErrBadAnswer", err)
	}
	s.SetDown(true)
	if _, err := c.Profile(context.Background(), tok); !errors.Is(err, ims.ErrUnavailable) {
		t.Errorf("profile while down: %v, want ErrUnavailable", err)
	}
	s.SetDown(false)
	s.SetAnswer(imstest.EndpointProfile, nil)
	if p, err := c.Profile(context.Background(), tok); err != nil || p.UserID != userID {
		t.Errorf("profile after SetAnswer(nil): %+v, %v", p, err)
	}
}
