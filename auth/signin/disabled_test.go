package signin

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gatehouse-proxy/gatehouse/auth"
)

// TestUserDisabled follows a signed-in user through `gatehouse users
// disable` and `enable`, made on the store as the command makes them, and
// checks every place the identity is established: a new bearer is refused
// at once (the store refuses the login token, though the provisioner had
// the user cached); the cookie and the bearer whose login token is
// remembered are trusted from memory for the session cache's TTL (30 s
// here), then refused; enabling lets a bearer sign in again at once.
func TestUserDisabled(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	oldBearer, cookie := f.signIn(alice)
	newBearer := f.token(alice)
	// Both in the session cache, as for a user at work.
	for _, w := range []*httptest.ResponseRecorder{
		f.request("GET", "/content", "", cookie, nil),
		f.request("GET", "/content", oldBearer, nil, nil),
	} {
		if w.Code != http.StatusNoContent {
			t.Fatalf("before disabling: status %d: %s", w.Code, w.Body)
		}
	}
	if n, err := f.store.SetUserDisabled(ctx, alice, true); err != nil || n != 1 {
		t.Fatalf("SetUserDisabled = %d, %v; want 1 token revoked", n, err)
	}
	const (
		ok       = http.StatusNoContent
		disabled = http.StatusForbidden
		revoked  = http.StatusUnauthorized
	)
	steps := []struct {
		name    string
		advance time.Duration
		bearer  string
		cookie  *http.Cookie
		want    int
		enable  bool // enable alice before the request
	}{
		{name: "new bearer: refused at once", bearer: newBearer, want: disabled},
		{name: "new bearer again", bearer: newBearer, want: disabled},
		{name: "cookie within the cache TTL", cookie: cookie, want: ok},
		{name: "remembered bearer within the cache TTL", bearer: oldBearer, want: ok},
		{name: "cookie past the cache TTL: its token was revoked", advance: 31 * time.Second, cookie: cookie, want: revoked},
		{name: "remembered bearer past the cache TTL", bearer: oldBearer, want: disabled},
		{name: "cookie and bearer", cookie: cookie, bearer: newBearer, want: disabled},
		{name: "bob is not affected", bearer: f.token(bob), want: ok},
		{name: "enabled: new bearer signs in at once", enable: true, bearer: newBearer, want: ok},
		{name: "enabled: remembered bearer", bearer: oldBearer, want: ok},
	}
	for _, s := range steps {
		f.clock.Add(s.advance)
		if s.enable {
			if _, err := f.store.SetUserDisabled(ctx, alice, false); err != nil {
				t.Fatal(err)
			}
		}
		w := f.request("GET", "/content", s.bearer, s.cookie, nil)
		switch s.want {
		case ok:
			if w.Code != ok {
				t.Fatalf("%s: status %d, want %d: %s", s.name, w.Code, ok, w.Body)
			}
		case disabled:
			wantRefusal(t, w, disabled, "", auth.ReasonUserDisabled)
			if w.Header().Get("WWW-Authenticate") != "" {
				t.Errorf("%s: WWW-Authenticate %q: signing in again does not help", s.name, w.Header().Get("WWW-Authenticate"))
			}
			if c := loginCookie(w); c != nil && c.Value != "" {
				t.Errorf("%s: a login token was handed out", s.name)
			}
		default:
			wantRefusal(t, w, s.want, "invalid_token", auth.ReasonInvalidToken)
		}
	}
}
