package main

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gatehouse-proxy/gatehouse/auth/assertion"
	"github.com/gatehouse-proxy/gatehouse/session"
	"github.com/gatehouse-proxy/gatehouse/session/sqlite"
)

// storedKeys are the cookie keys stored in the SQLite file at path, newest
// first (none when there are none).
func storedKeys(t *testing.T, path string) []session.StoredKey {
	t.Helper()
	st, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	keys, err := session.StoredCookieKeys(context.Background(), st)
	if err != nil && !errors.Is(err, session.ErrNoStoredCookieKeys) {
		t.Fatal(err)
	}
	return keys
}

// storedAssertionKeys are the ids of the assertion keys stored in the
// SQLite file at path, newest first.
func storedAssertionKeys(t *testing.T, path string) []string {
	t.Helper()
	st, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	keys, err := assertion.Stored(context.Background(), st)
	if err != nil && !errors.Is(err, assertion.ErrNoKeys) {
		t.Fatal(err)
	}
	var kids []string
	for _, k := range keys {
		kids = append(kids, k.ID)
	}
	return kids
}

// TestKeysCommand runs `gatehouse keys` step after step on one store, as
// an operator would.
func TestKeysCommand(t *testing.T) {
	path := filepath.Join(t.TempDir(), "g.db")
	storeEnv := []string{"GATEHOUSE_STORE=sqlite:" + path}
	owned, _ := session.GenerateKeyPair()
	ownedFile := filepath.Join(t.TempDir(), "keys")
	if err := os.WriteFile(ownedFile, []byte(owned.Encode()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	type step struct {
		name    string
		env     []string // nil: storeEnv
		args    []string
		wantErr error  // errUsage, errAny or nil
		errHas  string // in the error or stderr
		outHas  []string
		json    bool // stdout is one JSON document
		stored  int  // keys stored afterwards
		newKey  bool // the step made a new signing key
	}
	errAny := errors.New("any error")
	steps := []step{
		{name: "list before any key", args: []string{"keys", "list"}, wantErr: errAny, errHas: "no cookie keys in the store yet"},
		{name: "drop-old before any key", args: []string{"keys", "drop-old"}, wantErr: errAny, errHas: "no cookie keys in the store yet"},
		{name: "rotate makes the first", args: []string{"keys", "rotate"}, outHas: []string{"rotated: ", "1 key verify"}, stored: 1, newKey: true},
		{name: "rotate again", args: []string{"keys", "rotate"}, outHas: []string{"rotated: ", "2 keys verify"}, stored: 2, newKey: true},
		{name: "list", args: []string{"keys", "list"}, outHas: []string{"2 keys in the store", "FINGERPRINT", "signs, verifies", "  verifies"}, stored: 2},
		{name: "list --json", args: []string{"keys", "list", "--json"}, json: true, stored: 2},
		{name: "rotate -json", args: []string{"keys", "rotate", "-json"}, json: true, stored: 3, newKey: true},
		{name: "drop-old", args: []string{"keys", "drop-old"}, outHas: []string{"dropped 2 keys", "alone signs"}, stored: 1},
		{name: "drop-old --json, nothing left to drop", args: []string{"keys", "drop-old", "--json"}, json: true, outHas: []string{`"dropped": []`}, stored: 1},
		{name: "drop-old, nothing left to drop", args: []string{"keys", "drop-old"}, outHas: []string{"nothing to drop"}, stored: 1},

		{name: "no subcommand", args: []string{"keys"}, wantErr: errUsage, errHas: "Usage: gatehouse keys", stored: 1},
		{name: "unknown subcommand", args: []string{"keys", "remove"}, wantErr: errUsage, errHas: `unknown command "remove"`, stored: 1},
		{name: "extra argument", args: []string{"keys", "rotate", "now"}, wantErr: errUsage, errHas: `unexpected argument "now"`, stored: 1},
		{name: "unknown flag", args: []string{"keys", "rotate", "--force"}, wantErr: errUsage, errHas: "-force", stored: 1},
		{name: "bad flag value", args: []string{"keys", "list", "--json=maybe"}, wantErr: errUsage, errHas: "maybe", stored: 1},
		{name: "bad store", env: []string{"GATEHOUSE_STORE=redis://x"}, args: []string{"keys", "list"}, wantErr: errAny, errHas: "GATEHOUSE_STORE", stored: 1},
		{name: "help", args: []string{"keys", "-h"}, outHas: []string{"Usage: gatehouse keys", "drop-old"}, stored: 1},

		{name: "rotate refused with GATEHOUSE_COOKIE_KEYS", env: append([]string{"GATEHOUSE_COOKIE_KEYS=" + owned.Encode()}, storeEnv...),
			args: []string{"keys", "rotate"}, wantErr: errAny, errHas: "put a new pair first", stored: 1},
		{name: "drop-old refused with GATEHOUSE_COOKIE_KEYS_FILE", env: append([]string{"GATEHOUSE_COOKIE_KEYS_FILE=" + ownedFile}, storeEnv...),
			args: []string{"keys", "drop-old"}, wantErr: errAny, errHas: "the operator owns them", stored: 1},
		{name: "list shows GATEHOUSE_COOKIE_KEYS", env: append([]string{"GATEHOUSE_COOKIE_KEYS_FILE=" + ownedFile}, storeEnv...),
			args: []string{"keys", "list"}, outHas: []string{"1 key from GATEHOUSE_COOKIE_KEYS", owned.Fingerprint(), "unknown"}, stored: 1},
		{name: "both settings", env: append([]string{"GATEHOUSE_COOKIE_KEYS=" + owned.Encode(), "GATEHOUSE_COOKIE_KEYS_FILE=" + ownedFile}, storeEnv...),
			args: []string{"keys", "list"}, wantErr: errAny, errHas: "both set", stored: 1},
	}
	var signing string // the newest key's fingerprint
	var before []string
	for _, s := range steps {
		env := s.env
		if env == nil {
			env = storeEnv
		}
		stdout, stderr, err := runCmd(t, env, s.args...)
		switch {
		case s.wantErr == nil && err != nil:
			t.Fatalf("%s: %v; stderr %s", s.name, err, stderr)
		case s.wantErr == errUsage && !errors.Is(err, errUsage):
			t.Fatalf("%s: %v, want a usage error", s.name, err)
		case s.wantErr == errAny && (err == nil || errors.Is(err, errUsage)):
			t.Fatalf("%s: %v, want an error that is not a usage error", s.name, err)
		}
		if s.errHas != "" {
			msg := stderr
			if err != nil {
				msg += err.Error()
			}
			if !strings.Contains(msg, s.errHas) {
				t.Errorf("%s: error %v, stderr %q; want it to say %q", s.name, err, stderr, s.errHas)
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
		stored := storedKeys(t, path)
		var after []string
		for _, k := range stored {
			after = append(after, k.Fingerprint())
		}
		if len(after) != s.stored {
			t.Fatalf("%s: %d keys stored, want %d", s.name, len(after), s.stored)
		}
		switch {
		case s.newKey:
			if slices.Contains(before, after[0]) || !slices.Equal(after[1:], before) {
				t.Fatalf("%s: stored %v after %v; want a new key first, the others kept in order", s.name, after, before)
			}
			signing = after[0]
		case s.stored > 0 && after[0] != signing:
			t.Fatalf("%s: the signing key changed from %s to %s", s.name, signing, after[0])
		}
		if s.stored > 0 && s.wantErr == nil && !strings.Contains(stdout, after[0]) && !strings.Contains(s.name, "GATEHOUSE_COOKIE_KEYS") && s.name != "help" {
			t.Errorf("%s: stdout does not name the signing key %s:\n%s", s.name, after[0], stdout)
		}
		// The assertion's keys are rotated and dropped with the cookie
		// keys, so the store holds as many of them.
		kids := storedAssertionKeys(t, path)
		if len(kids) != s.stored {
			t.Fatalf("%s: %d assertion keys stored (%v), want %d", s.name, len(kids), kids, s.stored)
		}
		if s.stored > 0 && s.wantErr == nil && !strings.Contains(stdout, kids[0]) && !strings.Contains(s.name, "GATEHOUSE_COOKIE_KEYS") && s.name != "help" {
			t.Errorf("%s: stdout does not name the assertion's signing key %s:\n%s", s.name, kids[0], stdout)
		}
		if s.json {
			var rep keysReport
			dec := json.NewDecoder(strings.NewReader(stdout))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&rep); err != nil || dec.More() {
				t.Fatalf("%s: stdout is not one JSON report (%v):\n%s", s.name, err, stdout)
			}
			var fps []string
			for i, k := range rep.Keys {
				fps = append(fps, k.Fingerprint)
				if k.Signs != (i == 0) || k.Created.IsZero() {
					t.Errorf("%s: key %d: %+v; want only the first to sign, and a creation time", s.name, i, k)
				}
			}
			if rep.Assertion == nil || !slices.Equal(rep.Assertion.Keys, kids) {
				t.Errorf("%s: report's assertion keys %+v, want %v", s.name, rep.Assertion, kids)
			}
			if rep.Command != s.args[1] || rep.Source != "store" || !slices.Equal(fps, after) {
				t.Errorf("%s: report %+v; want command %s, source store, keys %v", s.name, rep, s.args[1], after)
			}
		}
		// No key material, ever.
		for _, k := range append(stored, session.StoredKey{KeyPair: owned}) {
			h, b, _ := strings.Cut(k.Encode(), ":")
			if strings.Contains(stdout+stderr, h[:12]) || strings.Contains(stdout+stderr, b[:12]) {
				t.Fatalf("%s: the output holds key material:\n%s%s", s.name, stdout, stderr)
			}
		}
		before = after
	}

	// serve loads what the commands stored: the signing key they named.
	st, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	keys, generated, err := session.LoadCookieKeys(context.Background(), st, "")
	if err != nil || !generated || len(keys) != 1 || keys[0].Fingerprint() != signing {
		t.Errorf("LoadCookieKeys = %d keys, %v; want the one the commands left, %s", len(keys), err, signing)
	}
}

// TestKeysAssertionOnly: --assertion rotates, drops and lists the
// assertion's keys alone, with the cookie keys owned by the operator too.
func TestKeysAssertionOnly(t *testing.T) {
	path := filepath.Join(t.TempDir(), "g.db")
	owned, _ := session.GenerateKeyPair()
	env := []string{"GATEHOUSE_STORE=sqlite:" + path, "GATEHOUSE_COOKIE_KEYS=" + owned.Encode()}
	steps := []struct {
		args    []string
		wantErr bool
		outHas  string
		kids    int // assertion keys stored afterwards
	}{
		{[]string{"keys", "list", "--assertion"}, true, "", 0},
		{[]string{"keys", "rotate", "--assertion"}, false, "signs identity assertions", 1},
		{[]string{"keys", "rotate", "--assertion"}, false, "the JWKS lists 2 keys", 2},
		{[]string{"keys", "list", "--assertion", "--json"}, false, `"kids"`, 2},
		{[]string{"keys", "drop-old", "--assertion"}, false, "dropped", 1},
		{[]string{"keys", "rotate"}, true, "", 1}, // the cookie keys are still the operator's
	}
	for _, s := range steps {
		stdout, stderr, err := runCmd(t, env, s.args...)
		if (err != nil) != s.wantErr {
			t.Fatalf("%q: %v, want error %v; stderr %s", s.args, err, s.wantErr, stderr)
		}
		if !strings.Contains(stdout, s.outHas) {
			t.Errorf("%q: stdout does not say %q:\n%s", s.args, s.outHas, stdout)
		}
		kids := storedAssertionKeys(t, path)
		if len(kids) != s.kids {
			t.Fatalf("%q: %d assertion keys stored, want %d", s.args, len(kids), s.kids)
		}
		if len(kids) > 0 && !s.wantErr && !strings.Contains(stdout, kids[0]) {
			t.Errorf("%q: stdout does not name the signing key %s:\n%s", s.args, kids[0], stdout)
		}
		if n := len(storedKeys(t, path)); n != 0 {
			t.Fatalf("%q: %d cookie keys stored, want none (they are the operator's)", s.args, n)
		}
	}
}
