package postgres

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-proxy/gatehouse/session"
	"github.com/gatehouse-proxy/gatehouse/session/postgres/pgtest"
)

// TestDisableRacesSignInsAcrossReplicas: sign-ins on two replicas race an
// administrator disabling the user on a third, round after round. Once
// SetUserDisabled returned and the sign-ins are done, no token of the
// user is left, and each sign-in either stored its token or was refused
// with ErrUserDisabled. (The storetest case races within one pool; this
// one repeats the race, across pools, to make a lost one likely.)
func TestDisableRacesSignInsAcrossReplicas(t *testing.T) {
	url := pgtest.URL(t)
	const rounds, perReplica = 15, 8
	admin, a, b := open(t, url), open(t, url), open(t, url)
	for _, s := range []*Store{admin, a, b} {
		t.Cleanup(func() { _ = s.Close() })
	}
	ctx := t.Context()
	const id = "u1@AdobeID"
	if _, err := admin.SyncUser(ctx, session.Profile{ID: id}, nil, time.Now()); err != nil {
		t.Fatal(err)
	}
	c := raw(t, url)
	for round := range rounds {
		if _, err := admin.SetUserDisabled(ctx, id, false); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		start := make(chan struct{})
		errs := make([]error, 2*perReplica)
		for i := range errs {
			s := a
			if i%2 == 1 {
				s = b
			}
			wg.Go(func() {
				<-start
				tok := &session.LoginToken{ID: fmt.Sprintf("tok-%d-%d", round, i), UserID: id, SecretHash: []byte{1},
					CreatedAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour)}
				errs[i] = s.CreateLoginToken(ctx, tok)
			})
		}
		close(start)
		if _, err := admin.SetUserDisabled(ctx, id, true); err != nil {
			t.Fatal(err)
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil && !errors.Is(err, session.ErrUserDisabled) {
				t.Errorf("round %d: CreateLoginToken %d: %v, want nil or ErrUserDisabled", round, i, err)
			}
		}
		if n := count(t, c, `SELECT COUNT(*) FROM login_tokens WHERE user_id = $1`, id); n != 0 {
			t.Fatalf("round %d: %d tokens of the disabled user survived", round, n)
		}
	}
}

// TestTokenOfDisabledUser: a token that escaped the revocation (the flag
// set behind the store's back, as a restored backup could) is read with
// its user's Disabled flag, which the manager's cold path refuses on; and
// the e-mail search and the user read report the flag too.
func TestTokenOfDisabledUser(t *testing.T) {
	url := pgtest.URL(t)
	s := open(t, url)
	t.Cleanup(func() { _ = s.Close() })
	ctx := t.Context()
	p := session.Profile{ID: "u1@AdobeID", Email: "u1@example.com"}
	if _, err := s.SyncUser(ctx, p, nil, time.Now()); err != nil {
		t.Fatal(err)
	}
	tok := &session.LoginToken{ID: "tok-1", UserID: p.ID, SecretHash: []byte{1}, CreatedAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour)}
	if err := s.CreateLoginToken(ctx, tok); err != nil {
		t.Fatal(err)
	}
	c := raw(t, url)
	for _, disabled := range []bool{true, false} {
		if _, err := c.Exec(ctx, `UPDATE users SET disabled = $1 WHERE id = $2`, disabled, p.ID); err != nil {
			t.Fatal(err)
		}
		_, u, err := s.GetLoginTokenWithUser(ctx, tok.ID)
		if err != nil {
			t.Fatal(err)
		}
		found, err := s.FindUsersByEmail(ctx, p.Email)
		if err != nil || len(found) != 1 {
			t.Fatalf("FindUsersByEmail = %v, %v; want the user", found, err)
		}
		got, err := s.GetUser(ctx, p.ID)
		if err != nil {
			t.Fatal(err)
		}
		for what, u := range map[string]*session.User{"GetLoginTokenWithUser": u, "FindUsersByEmail": found[0], "GetUser": got} {
			if u.Disabled != disabled {
				t.Errorf("flag set to %t: %s's user has Disabled = %t", disabled, what, u.Disabled)
			}
		}
	}
}

// TestMigrationAddsDisabled upgrades a version-1 schema holding a user
// and a token: the user is enabled, the token stays, and a disabled user
// is refused a token afterwards.
func TestMigrationAddsDisabled(t *testing.T) {
	url := pgtest.URL(t)
	ctx := t.Context()
	s := open(t, url)
	if _, err := s.SyncUser(ctx, session.Profile{ID: "u1"}, []string{"g"}, time.Now()); err != nil {
		t.Fatal(err)
	}
	tok := &session.LoginToken{ID: "tok-v1", UserID: "u1", SecretHash: []byte{1}, CreatedAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour)}
	if err := s.CreateLoginToken(ctx, tok); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	c := raw(t, url)
	for _, q := range []string{
		`DROP INDEX users_email_ascii_fold`,
		`ALTER TABLE users DROP COLUMN disabled`,
		`DELETE FROM schema_migrations WHERE version > 1`,
	} {
		if _, err := c.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}

	s = open(t, url)
	t.Cleanup(func() { _ = s.Close() })
	if got := count(t, c, `SELECT COUNT(*) FROM schema_migrations`); got != len(migrations) {
		t.Errorf("%d migrations recorded, want %d", got, len(migrations))
	}
	u, err := s.GetUser(ctx, "u1")
	if err != nil || u.Disabled || len(u.Memberships) != 1 {
		t.Fatalf("user after migrating = %+v, %v; want it enabled, with its group", u, err)
	}
	if _, _, err := s.GetLoginTokenWithUser(ctx, tok.ID); err != nil {
		t.Fatalf("token after migrating: %v", err)
	}
	if _, err := s.SetUserDisabled(ctx, "u1", true); err != nil {
		t.Fatal(err)
	}
	late := &session.LoginToken{ID: "tok-late", UserID: "u1", SecretHash: []byte{1}, CreatedAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour)}
	if err := s.CreateLoginToken(ctx, late); !errors.Is(err, session.ErrUserDisabled) {
		t.Errorf("CreateLoginToken for the disabled user: %v, want ErrUserDisabled", err)
	}
}
