package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-proxy/gatehouse/session"
	"github.com/gatehouse-proxy/gatehouse/session/sqlite"
)

// adminStore is a store with four users: alice (two groups, an
// organization, two login tokens, one expired), two users who share an
// e-mail address but for its case, and carol (one token).
func adminStore(t *testing.T) (*sqlite.Store, string) {
	t.Helper()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "g.db")
	st, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	now := time.Now().UTC().Truncate(time.Millisecond)
	for _, u := range []struct {
		p      session.Profile
		groups []string
		tokens map[string]time.Duration // id → lifetime left
	}{
		{session.Profile{ID: "A11CE@AdobeID", Email: "alice@example.com", Name: "Alice Author", FirstName: "Alice", LastName: "Author",
			Orgs: []string{"ORG1@AdobeOrg"}}, []string{"dam-users", "authors"},
			map[string]time.Duration{"tok-alice-1": time.Hour, "tok-alice-2": -time.Minute}},
		{session.Profile{ID: "B0B1@AdobeID", Email: "bob@example.com", Name: "Bob One"}, nil, map[string]time.Duration{"tok-bob": time.Hour}},
		{session.Profile{ID: "B0B2@AdobeID", Email: "Bob@Example.com", Name: "Bob Two"}, nil, nil},
		{session.Profile{ID: "CA401@AdobeID", Email: "carol@example.com", Name: "Carol"}, []string{"readers"}, map[string]time.Duration{"tok-carol": time.Hour}},
	} {
		if _, err := st.SyncUser(ctx, u.p, u.groups, now); err != nil {
			t.Fatal(err)
		}
		for id, left := range u.tokens {
			tok := &session.LoginToken{ID: id, UserID: u.p.ID, SecretHash: secretHash(id), CreatedAt: now.Add(-time.Hour), ExpiresAt: now.Add(left)}
			if err := st.CreateLoginToken(ctx, tok); err != nil {
				t.Fatal(err)
			}
		}
	}
	return st, path
}

func secretHash(id string) []byte { return []byte("hash-of-" + id + "-0123456789abcdef") }

// TestUsersAndTokensCommands runs `gatehouse users` and `gatehouse
// tokens` step after step on one store, as an operator would, and checks
// the output and what each step left in the store.
func TestUsersAndTokensCommands(t *testing.T) {
	st, path := adminStore(t)
	ctx := context.Background()
	env := []string{"GATEHOUSE_STORE=sqlite:" + path}
	errAny := errors.New("any error")

	tokens := func(user string) int {
		toks, err := st.ListLoginTokens(ctx, user)
		if err != nil {
			t.Fatal(err)
		}
		return len(toks)
	}
	user := func(id string) *session.User {
		u, err := st.GetUser(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return u
	}
	type step struct {
		name    string
		env     []string // nil: env
		args    []string
		wantErr error // errUsage, errAny or nil
		errHas  []string
		outHas  []string
		json    func(t *testing.T, out []byte) // stdout is one JSON document; checks it
		check   func(t *testing.T)             // the store afterwards
	}
	steps := []step{
		{name: "list", args: []string{"users", "list"},
			outHas: []string{"ID", "E-MAIL", "GROUPS", "TOKENS", "LAST SYNC", "DISABLED", "A11CE@AdobeID", "alice@example.com", "Alice Author", "Bob@Example.com", "CA401@AdobeID"}},
		{name: "list --json", args: []string{"users", "list", "--json"}, json: func(t *testing.T, out []byte) {
			var rep usersReport
			mustJSON(t, out, &rep)
			if len(rep.Users) != 4 || rep.Users[0].ID != "A11CE@AdobeID" || rep.Users[3].ID != "CA401@AdobeID" {
				t.Fatalf("users %+v, want the four sorted by id", rep.Users)
			}
			if a := rep.Users[0]; a.Groups != 2 || a.LoginTokens != 2 || a.Disabled || a.ResyncPending || a.LastSync.IsZero() || a.Email != "alice@example.com" {
				t.Errorf("alice: %+v", a)
			}
		}},
		{name: "show by e-mail, any case", args: []string{"users", "show", "ALICE@example.com"},
			outHas: []string{"A11CE@AdobeID", "Alice Author", "ORG1@AdobeOrg", "groups (2)", "authors", "dam-users", "ims", "login tokens (2)", "tok-alice-1", "tok-alice-2", "(expired)", "disabled         no"}},
		{name: "show --json after the id", args: []string{"users", "show", "A11CE@AdobeID", "--json"}, json: func(t *testing.T, out []byte) {
			var rep userReport
			mustJSON(t, out, &rep)
			if rep.ID != "A11CE@AdobeID" || len(rep.Orgs) != 1 || len(rep.Groups) != 2 || rep.Groups[0] != (groupLine{"authors", "ims"}) {
				t.Errorf("user %+v", rep)
			}
			if len(rep.LoginTokens) != 2 || rep.LoginTokens[0].Expires.IsZero() || rep.LoginTokens[0].Created.IsZero() {
				t.Fatalf("login tokens %+v", rep.LoginTokens)
			}
			expired := map[string]bool{}
			for _, l := range rep.LoginTokens {
				expired[l.ID] = l.Expired
			}
			if expired["tok-alice-1"] || !expired["tok-alice-2"] {
				t.Errorf("expired: %v", expired)
			}
		}},
		{name: "show: an e-mail of two users", args: []string{"users", "show", "bob@example.com"}, wantErr: errAny,
			errHas: []string{"2 users have the e-mail address", "B0B1@AdobeID, B0B2@AdobeID", "IMS user id"}},
		{name: "show: the id of one of them", args: []string{"users", "show", "B0B2@AdobeID"}, outHas: []string{"Bob Two", "login tokens (0)"}},
		{name: "show: unknown", args: []string{"users", "show", "nobody@example.com"}, wantErr: errAny, errHas: []string{"no user has", "nobody@example.com"}},
		{name: "show: no user", args: []string{"users", "show"}, wantErr: errUsage, errHas: []string{"name the user"}},
		{name: "show: empty user", args: []string{"users", "show", " "}, wantErr: errUsage, errHas: []string{"name the user"}},
		{name: "show: two users", args: []string{"users", "show", "a", "b"}, wantErr: errUsage, errHas: []string{`unexpected argument "b"`}},
		{name: "list: an argument", args: []string{"users", "list", "all"}, wantErr: errUsage, errHas: []string{`unexpected argument "all"`}},
		{name: "unknown flag", args: []string{"users", "list", "--all"}, wantErr: errUsage, errHas: []string{"-all"}},
		{name: "unknown subcommand", args: []string{"users", "delete", "x"}, wantErr: errUsage, errHas: []string{`unknown command "delete"`}},
		{name: "no subcommand", args: []string{"users"}, wantErr: errUsage, errHas: []string{"Usage: gatehouse users"}},
		{name: "help", args: []string{"users", "-h"}, outHas: []string{"Usage: gatehouse users", "USER_DISABLED"}},
		{name: "help of a subcommand", args: []string{"users", "show", "-h"}, outHas: []string{"Usage: gatehouse users"}},
		{name: "bad store", env: []string{"GATEHOUSE_STORE=redis://x"}, args: []string{"users", "list"}, wantErr: errAny, errHas: []string{"GATEHOUSE_STORE"}},

		{name: "resync", args: []string{"users", "resync", "A11CE@AdobeID"}, outHas: []string{"marked A11CE@AdobeID (alice@example.com) for resync"},
			check: func(t *testing.T) {
				if u := user("A11CE@AdobeID"); !u.SyncedAt.Equal(time.Unix(0, 0)) || len(u.Memberships) != 2 {
					t.Errorf("after resync: synced %v, memberships %v", u.SyncedAt, u.Memberships)
				}
			}},
		{name: "list shows the pending resync", args: []string{"users", "list"}, outHas: []string{"resync pending"}},
		{name: "resync: unknown", args: []string{"users", "resync", "nobody@AdobeID"}, wantErr: errAny, errHas: []string{"no user has"}},
		{name: "disable by e-mail", args: []string{"users", "disable", "alice@example.com"},
			outHas: []string{"disabled A11CE@AdobeID", "revoked 2 login tokens", "GATEHOUSE_SESSION_CACHE_TTL"},
			check: func(t *testing.T) {
				if !user("A11CE@AdobeID").Disabled || tokens("A11CE@AdobeID") != 0 || tokens("CA401@AdobeID") != 1 {
					t.Error("alice not disabled with her tokens revoked, or carol's token gone")
				}
			}},
		{name: "disable again --json", args: []string{"users", "--json", "disable", "A11CE@AdobeID"}, wantErr: errUsage, errHas: []string{`unknown command "--json"`}},
		{name: "disable again, --json first", args: []string{"users", "disable", "--json", "A11CE@AdobeID"}, json: func(t *testing.T, out []byte) {
			var rep changeReport
			mustJSON(t, out, &rep)
			if rep != (changeReport{Command: "disable", User: "A11CE@AdobeID", Email: "alice@example.com", Disabled: true}) {
				t.Errorf("report %+v", rep)
			}
		}},
		{name: "show the disabled user", args: []string{"users", "show", "A11CE@AdobeID"}, outHas: []string{"disabled         yes", "login tokens (0)"}},
		{name: "disable: ambiguous", args: []string{"users", "disable", "BOB@EXAMPLE.COM"}, wantErr: errAny, errHas: []string{"B0B1@AdobeID, B0B2@AdobeID"},
			check: func(t *testing.T) {
				if user("B0B1@AdobeID").Disabled || user("B0B2@AdobeID").Disabled || tokens("B0B1@AdobeID") != 1 {
					t.Error("an ambiguous disable changed a user")
				}
			}},
		{name: "enable", args: []string{"users", "enable", "A11CE@AdobeID"}, outHas: []string{"enabled A11CE@AdobeID"},
			check: func(t *testing.T) {
				if user("A11CE@AdobeID").Disabled {
					t.Error("alice still disabled")
				}
			}},

		{name: "revoke --user", args: []string{"tokens", "revoke", "--user", "B0B1@AdobeID"}, outHas: []string{"revoked 1 login token of B0B1@AdobeID (bob@example.com)"},
			check: func(t *testing.T) {
				if tokens("B0B1@AdobeID") != 0 || tokens("CA401@AdobeID") != 1 || user("B0B1@AdobeID").Disabled {
					t.Error("bob's token not revoked, carol's gone, or bob disabled")
				}
			}},
		{name: "revoke --user: ambiguous", args: []string{"tokens", "revoke", "--user", "bob@example.com"}, wantErr: errAny, errHas: []string{"B0B1@AdobeID, B0B2@AdobeID"}},
		{name: "revoke --user: unknown", args: []string{"tokens", "revoke", "--user=nobody@example.com"}, wantErr: errAny, errHas: []string{"no user has"}},
		{name: "revoke --token --json", args: []string{"tokens", "revoke", "--token", "tok-carol", "--json"}, json: func(t *testing.T, out []byte) {
			var rep changeReport
			mustJSON(t, out, &rep)
			if rep != (changeReport{Command: "revoke", User: "CA401@AdobeID", Email: "carol@example.com", Revoked: 1, Token: "tok-carol"}) {
				t.Errorf("report %+v", rep)
			}
		}, check: func(t *testing.T) {
			if tokens("CA401@AdobeID") != 0 {
				t.Error("carol's token not revoked")
			}
		}},
		{name: "revoke --token: gone", args: []string{"tokens", "revoke", "--token", "tok-carol"}, wantErr: errAny, errHas: []string{`no login token has the id "tok-carol"`}},
		{name: "revoke: neither", args: []string{"tokens", "revoke"}, wantErr: errUsage, errHas: []string{"either --user USER"}},
		{name: "revoke: both", args: []string{"tokens", "revoke", "--user", "a", "--token", "b"}, wantErr: errUsage, errHas: []string{"not both"}},
		{name: "revoke: an argument", args: []string{"tokens", "revoke", "A11CE@AdobeID"}, wantErr: errUsage, errHas: []string{`unexpected argument "A11CE@AdobeID"`}},
		{name: "revoke: --user without a value", args: []string{"tokens", "revoke", "--user"}, wantErr: errUsage, errHas: []string{"-user"}},
		{name: "tokens: unknown subcommand", args: []string{"tokens", "list"}, wantErr: errUsage, errHas: []string{`unknown command "list"`}},
		{name: "tokens: none", args: []string{"tokens"}, wantErr: errUsage, errHas: []string{"Usage: gatehouse tokens"}},
		{name: "tokens: help", args: []string{"tokens", "revoke", "--help"}, outHas: []string{"Usage: gatehouse tokens revoke"}},
	}
	for _, s := range steps {
		e := s.env
		if e == nil {
			e = env
		}
		stdout, stderr, err := runCmd(t, e, s.args...)
		switch {
		case s.wantErr == nil && err != nil:
			t.Fatalf("%s: %v; stderr %s", s.name, err, stderr)
		case s.wantErr == errUsage && !errors.Is(err, errUsage):
			t.Fatalf("%s: %v, want a usage error (exit 2)", s.name, err)
		case s.wantErr == errAny && (err == nil || errors.Is(err, errUsage)):
			t.Fatalf("%s: %v, want an error that is not a usage error (exit 1)", s.name, err)
		}
		msg := stderr
		if err != nil {
			msg += err.Error()
		}
		for _, w := range s.errHas {
			if !strings.Contains(msg, w) {
				t.Errorf("%s: error %v, stderr %q; want it to say %q", s.name, err, stderr, w)
			}
		}
		if s.wantErr != nil && stdout != "" && s.wantErr != errUsage {
			t.Errorf("%s: failed, yet printed %q", s.name, stdout)
		}
		for _, w := range s.outHas {
			if !strings.Contains(stdout, w) {
				t.Errorf("%s: stdout does not say %q:\n%s", s.name, w, stdout)
			}
		}
		for _, secret := range []string{string(secretHash("tok-alice-1")), hex.EncodeToString(secretHash("tok-alice-1"))} {
			if strings.Contains(stdout, secret) {
				t.Errorf("%s: stdout shows a token's secret hash", s.name)
			}
		}
		if s.json != nil {
			s.json(t, []byte(stdout))
		}
		if s.check != nil {
			s.check(t)
		}
	}
}

// mustJSON decodes out, which must be exactly one JSON document, into v.
func mustJSON(t *testing.T, out []byte, v any) {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(string(out)))
	if err := dec.Decode(v); err != nil {
		t.Fatalf("stdout is not JSON (%v):\n%s", err, out)
	}
	if dec.More() {
		t.Fatalf("stdout holds more than one JSON document:\n%s", out)
	}
}
