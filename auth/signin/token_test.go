package signin

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/gatehouse-proxy/gatehouse/auth"
	"github.com/gatehouse-proxy/gatehouse/auth/bearer"
	"github.com/gatehouse-proxy/gatehouse/auth/ims"
	"github.com/gatehouse-proxy/gatehouse/auth/ims/imstest"
)

const browserClientID = "gatehouse-web"

// browserTokens is an authenticator whose allow-list is the browser
// client id alone, as serve wires it for SignInToken.
func (f *fixture) browserTokens() *bearer.Authenticator {
	f.t.Helper()
	keys, err := ims.NewKeySet(ims.KeySetConfig{JWKSURL: f.emu.URL + "/ims/keys"})
	if err != nil {
		f.t.Fatal(err)
	}
	if err := keys.Load(context.Background()); err != nil {
		f.t.Fatal(err)
	}
	v, err := ims.NewVerifier(ims.VerifierConfig{Keys: keys, Cluster: "ims-na1", ClientIDs: []string{browserClientID}, Now: f.clock.Now})
	if err != nil {
		f.t.Fatal(err)
	}
	a, err := bearer.New(bearer.Config{Mode: bearer.ModeLocal, Verifier: v, ClientIDs: []string{browserClientID},
		Cluster: "ims-na1", Now: f.clock.Now})
	if err != nil {
		f.t.Fatal(err)
	}
	return a
}

// The browser client's tokens sign in through SignInToken, exactly as a
// bearer does (provisioned, synced, a login token whose cookie then
// works), and only there: sent as a bearer token, the same token is
// refused, and a desktop client's token is refused by SignInToken.
func TestSignInTokenAcceptsTheBrowserClientOnlyThere(t *testing.T) {
	f := newFixture(t)
	browserToken, _, err := f.emu.MintToken(imstest.TokenRequest{UserID: bob, ClientID: browserClientID})
	if err != nil {
		t.Fatal(err)
	}
	tokens := f.browserTokens()

	w := httptest.NewRecorder()
	id, err := f.si.SignInToken(w, httptest.NewRequest("GET", "/gatehouse/callback", nil), tokens, browserToken)
	if err != nil {
		t.Fatalf("SignInToken: %v", err)
	}
	if id.UserID != bob || len(id.Groups) != 1 || id.Groups[0] != "administrators" {
		t.Errorf("identity %+v: want bob, synced and mapped to administrators", id)
	}
	cs := w.Result().Cookies()
	if len(cs) != 1 || cs[0].Name != "login-token" || cs[0].Value == "" {
		t.Fatalf("SignInToken set cookies %v, want the login token", w.Result().Header.Values("Set-Cookie"))
	}
	if r := f.request("GET", "/content/a", "", cs[0], nil); r.Code != http.StatusNoContent || f.seen == nil || f.seen.UserID != bob {
		t.Errorf("the login token from SignInToken: %d, want it to sign requests in as bob", r.Code)
	}

	if r := f.request("GET", "/content/a", browserToken, nil, nil); r.Code != http.StatusUnauthorized {
		t.Errorf("the browser client's token as a bearer: %d, want 401 (its client id is not a bearer client)", r.Code)
	}
	w = httptest.NewRecorder()
	_, err = f.si.SignInToken(w, httptest.NewRequest("GET", "/gatehouse/callback", nil), tokens, f.token(alice))
	if ae := auth.AsError(err); err == nil || ae.Status != http.StatusUnauthorized {
		t.Errorf("a desktop client's token through SignInToken: %v, want 401", err)
	}
}

func TestSignOutRevokesAndClears(t *testing.T) {
	f := newFixture(t)
	_, c := f.signIn(alice)
	w := httptest.NewRecorder()
	r := httptest.NewRequest("GET", "/gatehouse/sign-out", nil)
	r.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
	if err := f.si.SignOut(w, r); err != nil {
		t.Fatal(err)
	}
	if cs := w.Result().Cookies(); len(cs) != 1 || cs[0].Value != "" || cs[0].MaxAge >= 0 {
		t.Errorf("SignOut cookies %v, want the login token cleared", w.Result().Header.Values("Set-Cookie"))
	}
	if r := f.request("GET", "/content/a", "", c, nil); r.Code != http.StatusUnauthorized {
		t.Errorf("the login token after SignOut: %d, want 401", r.Code)
	}
}
