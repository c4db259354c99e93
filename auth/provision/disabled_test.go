package provision_test

import (
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/gatehouse-proxy/gatehouse/auth"
	"github.com/gatehouse-proxy/gatehouse/auth/provision"
	"github.com/gatehouse-proxy/gatehouse/session"
)

// TestDisabledUser: a disabled user is refused with 403 USER_DISABLED
// without a call to IMS, whether their sync is fresh, stale or marked for
// resync, and is never cached: enabling takes effect at the next Ensure.
// An enabled user cached before the disabling is served for CacheTTL (the
// store then refuses their login token; see Forget).
func TestDisabledUser(t *testing.T) {
	f := newFixture(t, func(c *provision.Config) { c.CacheTTL = 10 * time.Second })
	id, token, claims := newUser(t)
	if _, err := f.p.Ensure(t.Context(), token, claims); err != nil {
		t.Fatal(err)
	}
	if _, err := f.store.SetUserDisabled(t.Context(), id, true); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name     string
		before   func()
		disabled bool // want 403 USER_DISABLED, else the user
	}{
		{"cached before the disabling", nil, false},
		{"forgotten: read from the store", func() { f.p.Forget(id) }, true},
		{"refused again: not cached", nil, true},
		{"sync due", func() { f.clock.Advance(2 * time.Hour) }, true},
		{"marked for resync", func() { _ = f.store.MarkUserForResync(t.Context(), id) }, true},
		{"enabled", func() { _, _ = f.store.SetUserDisabled(t.Context(), id, false) }, false},
	}
	for _, s := range steps {
		if s.before != nil {
			s.before()
		}
		p0, o0 := imsCalls()
		u, err := f.p.Ensure(t.Context(), token, claims)
		if !s.disabled {
			if err != nil || u.ID != id {
				t.Fatalf("%s: Ensure = %v, %v; want the user", s.name, u, err)
			}
			continue
		}
		ae := auth.AsError(err)
		if ae.Status != http.StatusForbidden || ae.Reason != auth.ReasonUserDisabled || !errors.Is(err, session.ErrUserDisabled) {
			t.Fatalf("%s: Ensure error %v (%d %s), want 403 USER_DISABLED", s.name, err, ae.Status, ae.Reason)
		}
		wantCalls(t, p0, o0, 0, 0)
	}
}
