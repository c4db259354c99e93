package signin

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-proxy/gatehouse/auth"
	"github.com/gatehouse-proxy/gatehouse/session"
)

// encodeForTest stands in for the proxy's header encoding: what matters
// here is when it runs, not how it encodes.
func encodeForTest(id *auth.Identity) auth.EncodedHeaders {
	return auth.EncodedHeaders{User: id.UserID, Email: id.Email, Groups: strings.Join(id.Groups, ",")}
}

// A cached user's requests share one Identity, so that its headers are
// encoded once; a user changed in the store (a re-sync with new groups)
// gets a new Identity on the next request, whose headers carry the new
// groups, however the old one's were memoized.
func TestIdentitySharedUntilUserChanges(t *testing.T) {
	for _, tc := range []struct {
		name   string
		bearer bool // the cached bearer path, else the cookie
	}{
		{"cookie", false},
		{"bearer reusing its login token", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			tok, c := f.signIn(alice)
			send := func() *auth.Identity {
				t.Helper()
				var w *httptest.ResponseRecorder
				if tc.bearer {
					w = f.request("GET", "/content", tok, nil, nil)
				} else {
					w = f.request("GET", "/content", "", c, nil)
				}
				if w.Code != http.StatusNoContent || f.seen == nil {
					t.Fatalf("status %d: %s", w.Code, w.Body)
				}
				return f.seen
			}
			first := send()
			before := first.Encoded(encodeForTest).Groups
			if second := send(); second != first {
				t.Errorf("the second request of a cached user built a new Identity")
			}

			// Re-synced with a new group, as the provisioner does
			// (its OnSync is the manager's ForgetUser).
			if _, err := f.store.SyncUser(context.Background(), session.Profile{ID: alice, Email: "alice@example.com",
				Name: "Alice A", FirstName: "Alice", LastName: "A", Orgs: []string{orgID}},
				[]string{"Authors", "Editors"}, f.clock.Now()); err != nil {
				t.Fatal(err)
			}
			f.mgr.ForgetUser(alice)

			after := send()
			if after == first {
				t.Fatal("the re-synced user's request got the Identity built before the sync")
			}
			if !slices.Contains(after.Groups, "Editors") {
				t.Errorf("groups after the sync %q, want Editors among them", after.Groups)
			}
			if got := after.Encoded(encodeForTest).Groups; got == before || !strings.Contains(got, "Editors") {
				t.Errorf("encoded groups after the sync %q (before %q), want the new group", got, before)
			}
		})
	}
}

// Bearers never seen before of a cached user share its Identity too, with
// the one its cookie gets: each such sign-in issues a login token, but
// the user, and so its identity headers, are the same.
func TestIdentitySharedByFirstSeenBearers(t *testing.T) {
	f := newFixture(t)
	_, c := f.signIn(alice)
	var ids []*auth.Identity
	for range 2 {
		if w := f.request("GET", "/content", f.token(alice), nil, nil); w.Code != http.StatusNoContent || loginCookie(w) == nil {
			t.Fatalf("status %d: %s", w.Code, w.Body)
		}
		ids = append(ids, f.seen)
	}
	if w := f.request("GET", "/content", "", c, nil); w.Code != http.StatusNoContent {
		t.Fatalf("cookie: status %d: %s", w.Code, w.Body)
	}
	if ids[1] != ids[0] {
		t.Errorf("the second first-seen bearer of a cached user built a new Identity")
	}
	if f.seen.UserID != alice || ids[0].Method != auth.MethodBearer || !slices.Equal(ids[0].Groups, f.seen.Groups) {
		t.Errorf("bearer identity %+v, cookie identity %+v", ids[0], f.seen)
	}
}

// A bearer reusing its login token gets the Set-Cookie line formatted for
// the first such request while the cookie's Max-Age is unchanged, and a
// new one, with the Max-Age counted down, once a second has passed.
func TestReusedCookieLineFollowsMaxAge(t *testing.T) {
	f := newFixture(t)
	tok, _ := f.signIn(alice)
	maxAge := func() int {
		t.Helper()
		w := f.request("GET", "/content", tok, nil, nil)
		c := loginCookie(w)
		if w.Code != http.StatusNoContent || c == nil {
			t.Fatalf("status %d, cookie %v", w.Code, c)
		}
		return c.MaxAge
	}
	first := maxAge()
	if again := maxAge(); again != first {
		t.Errorf("Max-Age %d, then %d at the same moment", first, again)
	}
	f.clock.Add(2 * time.Second)
	if later := maxAge(); later != first-2 {
		t.Errorf("Max-Age %d two seconds after %d, want %d", later, first, first-2)
	}
}
