package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"reflect"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/gatehouse-proxy/gatehouse/auth/assertion"
	"github.com/gatehouse-proxy/gatehouse/session"
)

// keysTimeout bounds `gatehouse keys`: a store that does not answer in it
// is an error, not a hang.
const keysTimeout = 30 * time.Second

// keysSourceStore and keysSourceSetting say where the keys in effect come
// from, in the output of `gatehouse keys`.
const (
	keysSourceStore   = "store"
	keysSourceSetting = "GATEHOUSE_COOKIE_KEYS"
)

// keysReport is the output of `gatehouse keys`, as --json prints it.
type keysReport struct {
	Command string    `json:"command"` // rotate, drop-old or list
	Source  string    `json:"source"`  // keysSourceStore or keysSourceSetting
	Keys    []keyInfo `json:"keys"`    // newest first; the first signs, all verify
	// Dropped are the pairs drop-old removed (empty when there was only
	// one); absent for the other commands.
	Dropped []keyInfo `json:"dropped,omitzero"`
	// Assertion are the identity assertion's signing keys, rotated and
	// dropped together with the cookie keys; absent when the store holds
	// none (the assertion was never on) or the cookie keys come from
	// GATEHOUSE_COOKIE_KEYS.
	Assertion *assertionKeys `json:"assertion,omitzero"`
}

// assertionKeys are the assertion's keys in keysReport: the ids the JWKS
// lists them by, newest (the signing key) first.
type assertionKeys struct {
	Keys    []string `json:"kids"`
	Dropped []string `json:"dropped,omitzero"`
}

// keyInfo describes one pair without revealing it.
type keyInfo struct {
	Fingerprint string    `json:"fingerprint"`
	Created     time.Time `json:"created,omitzero"` // absent when unknown
	Signs       bool      `json:"signs"`
}

func keyInfos(keys []session.StoredKey) []keyInfo {
	out := make([]keyInfo, len(keys))
	for i, k := range keys {
		out[i] = keyInfo{Fingerprint: k.Fingerprint(), Created: k.Created}
	}
	return out
}

func fingerprints(keys []keyInfo) string {
	fps := make([]string, len(keys))
	for i, k := range keys {
		fps[i] = k.Fingerprint
	}
	return strings.Join(fps, ", ")
}

// keysCommand is `gatehouse keys rotate|drop-old|list [--json]`: the
// cookie keys kept in the store that GATEHOUSE_STORE names, shared by every
// replica on it.
func keysCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	sub, done, err := subcommand("keys", args, []string{"rotate", "drop-old", "list"}, keysUsage, stdout, stderr)
	if done {
		return err
	}
	fs := flag.NewFlagSet("keys "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	asJSON := fs.Bool("json", false, "print one JSON document instead of text")
	assertionOnly := fs.Bool("assertion", false, "the signed assertion's keys only (also with GATEHOUSE_COOKIE_KEYS)")
	fs.Usage = func() {} // the flag package says what was wrong; we say where help is
	switch err := fs.Parse(args[1:]); {
	case errors.Is(err, flag.ErrHelp):
		keysUsage(stdout)
		return nil
	case err != nil:
		fmt.Fprintln(stderr, "gatehouse keys: see 'gatehouse keys -h'")
		return errUsage
	case fs.NArg() > 0:
		fmt.Fprintf(stderr, "gatehouse keys %s: unexpected argument %q (the store is GATEHOUSE_STORE; see 'gatehouse keys -h')\n", sub, fs.Arg(0))
		return errUsage
	}
	run := runKeys
	if *assertionOnly {
		run = runAssertionOnly
	}
	rep, err := run(ctx, sub)
	if err != nil {
		return fmt.Errorf("keys %s: %w", sub, err)
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	printKeysReport(stdout, rep)
	return nil
}

// runKeys carries out the command sub with the settings of the
// environment.
func runKeys(ctx context.Context, sub string) (*keysReport, error) {
	vars := environMap(environ())
	configured, err := secretSetting(vars, "COOKIE_KEYS")
	if err != nil {
		return nil, err
	}
	if strings.TrimSpace(configured) != "" {
		if sub != "list" {
			return nil, errors.New("the cookie keys come from GATEHOUSE_COOKIE_KEYS (or _FILE): the operator owns them, and the store's are not used. " +
				"To rotate them, put a new pair first in that setting (new,old; a pair is <hashKey>:<blockKey>, e.g. " +
				"\"$(openssl rand -base64 64 | tr -d '\\n'):$(openssl rand -base64 32)\"), restart the replicas, " +
				"and remove the old pair once the login-token lifetime has passed. " +
				"To let Gatehouse keep and rotate the keys instead, unset GATEHOUSE_COOKIE_KEYS and GATEHOUSE_COOKIE_KEYS_FILE")
		}
		pairs, err := session.ParseCookieKeys(configured)
		if err != nil {
			return nil, fmt.Errorf("GATEHOUSE_COOKIE_KEYS: %w", err)
		}
		keys := make([]session.StoredKey, len(pairs))
		for i, p := range pairs {
			keys[i] = session.StoredKey{KeyPair: p}
		}
		return newKeysReport(sub, keysSourceSetting, keys), nil
	}

	return withKeysStore(ctx, func(ctx context.Context, store session.Store) (*keysReport, error) {
		return storedKeysCommand(ctx, store, sub)
	})
}

// withKeysStore runs fn on the store GATEHOUSE_STORE names, bounded by
// keysTimeout.
func withKeysStore(ctx context.Context, fn func(context.Context, session.Store) (*keysReport, error)) (*keysReport, error) {
	ctx, cancel := context.WithTimeout(ctx, keysTimeout)
	defer cancel()
	store, err := storeFromEnv(ctx)
	if err != nil {
		return nil, err
	}
	defer store.Close()
	return fn(ctx, store)
}

// storedKeysCommand carries out sub on the cookie keys kept in store, and
// on the assertion's keys with them.
func storedKeysCommand(ctx context.Context, store session.Store, sub string) (*keysReport, error) {
	var keys, dropped []session.StoredKey
	var err error
	switch sub {
	case "rotate":
		keys, err = session.RotateCookieKeys(ctx, store, time.Now())
	case "drop-old":
		var kept session.StoredKey
		kept, dropped, err = session.DropOldCookieKeys(ctx, store)
		keys = []session.StoredKey{kept}
	default:
		keys, err = session.StoredCookieKeys(ctx, store)
	}
	if errors.Is(err, session.ErrNoStoredCookieKeys) {
		return nil, fmt.Errorf("%w: 'gatehouse serve' makes them at its first start (without GATEHOUSE_COOKIE_KEYS), or 'gatehouse keys rotate' does; is GATEHOUSE_STORE the store serve uses?", err)
	}
	if err != nil {
		return nil, err
	}
	rep := newKeysReport(sub, keysSourceStore, keys)
	if sub == "drop-old" {
		rep.Dropped = keyInfos(dropped)
		if rep.Dropped == nil {
			rep.Dropped = []keyInfo{}
		}
	}
	if rep.Assertion, err = runAssertionKeys(ctx, store, sub); err != nil {
		return nil, fmt.Errorf("the cookie keys are done, but not the %w", err)
	}
	return rep, nil
}

// runAssertionOnly is `gatehouse keys … --assertion`: sub on the
// assertion's keys alone, which the store keeps whatever the cookie keys'
// source, so that they can be rotated with GATEHOUSE_COOKIE_KEYS set too.
func runAssertionOnly(ctx context.Context, sub string) (*keysReport, error) {
	return withKeysStore(ctx, func(ctx context.Context, store session.Store) (*keysReport, error) {
		ak, err := runAssertionKeys(ctx, store, sub)
		switch {
		case err != nil:
			return nil, err
		case ak == nil:
			return nil, fmt.Errorf("%w: 'gatehouse serve' makes one at its first start with GATEHOUSE_ASSERTION_AUDIENCE set, or 'gatehouse keys rotate' does; is GATEHOUSE_STORE the store serve uses?", assertion.ErrNoKeys)
		}
		return &keysReport{Command: sub, Source: keysSourceStore, Keys: []keyInfo{}, Assertion: ak}, nil
	})
}

// runAssertionKeys carries out sub on the assertion's keys, which follow
// the cookie keys kept in the store: one rotation for every key Gatehouse
// signs with. A store without assertion keys (the assertion was never on)
// gets none from drop-old and list; rotate makes the first.
func runAssertionKeys(ctx context.Context, store session.Store, sub string) (*assertionKeys, error) {
	var keys, dropped []assertion.Key
	var err error
	switch sub {
	case "rotate":
		keys, err = assertion.Rotate(ctx, store, time.Now())
	case "drop-old":
		var kept assertion.Key
		kept, dropped, err = assertion.DropOld(ctx, store)
		keys = []assertion.Key{kept}
	default:
		keys, err = assertion.Stored(ctx, store)
	}
	switch {
	case errors.Is(err, assertion.ErrNoKeys):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("assertion keys: %w", err)
	}
	ak := &assertionKeys{}
	for _, k := range keys {
		ak.Keys = append(ak.Keys, k.ID)
	}
	if sub == "drop-old" {
		ak.Dropped = []string{}
		for _, k := range dropped {
			ak.Dropped = append(ak.Dropped, k.ID)
		}
	}
	return ak, nil
}

func newKeysReport(sub, source string, keys []session.StoredKey) *keysReport {
	rep := &keysReport{Command: sub, Source: source, Keys: keyInfos(keys)}
	rep.Keys[0].Signs = true
	return rep
}

// printKeysReport writes rep for a person: one line for rotate and
// drop-old, a small table for list.
func printKeysReport(w io.Writer, rep *keysReport) {
	printKeysTable(w, rep)
	if ak := rep.Assertion; ak != nil {
		fmt.Fprintf(w, "assertion: %s signs identity assertions; the JWKS lists %s (%s)", ak.Keys[0], countKeys(len(ak.Keys)), strings.Join(ak.Keys, ", "))
		if len(ak.Dropped) > 0 {
			fmt.Fprintf(w, "; dropped %s", strings.Join(ak.Dropped, ", "))
		}
		fmt.Fprintln(w)
	}
}

// printKeysTable writes the cookie keys' part of rep.
func printKeysTable(w io.Writer, rep *keysReport) {
	if len(rep.Keys) == 0 {
		return // --assertion: no cookie keys in the report
	}
	signing := rep.Keys[0].Fingerprint
	switch rep.Command {
	case "rotate":
		fmt.Fprintf(w, "rotated: %s signs new cookies now; %s verify (%s); serving replicas pick this up within GATEHOUSE_COOKIE_KEYS_RELOAD_INTERVAL\n",
			signing, countKeys(len(rep.Keys)), fingerprints(rep.Keys))
	case "drop-old":
		if len(rep.Dropped) == 0 {
			fmt.Fprintf(w, "nothing to drop: %s is the only key\n", signing)
			return
		}
		fmt.Fprintf(w, "dropped %s (%s); %s alone signs and verifies; cookies signed by the dropped keys are refused once serving replicas pick this up, and their users sign in again\n",
			countKeys(len(rep.Dropped)), fingerprints(rep.Dropped), signing)
	default:
		where := "in the store"
		if rep.Source == keysSourceSetting {
			where = "from GATEHOUSE_COOKIE_KEYS"
		}
		fmt.Fprintf(w, "%s %s, newest first: the first signs, all verify\n", countKeys(len(rep.Keys)), where)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "FINGERPRINT\tCREATED\tUSE")
		for _, k := range rep.Keys {
			created, use := "unknown", "verifies"
			if !k.Created.IsZero() {
				created = k.Created.UTC().Format(time.RFC3339)
			}
			if k.Signs {
				use = "signs, verifies"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\n", k.Fingerprint, created, use)
		}
		tw.Flush()
	}
}

func countKeys(n int) string {
	if n == 1 {
		return "1 key"
	}
	return fmt.Sprintf("%d keys", n)
}

// settingDefault is the default of the config field named field.
func settingDefault(field string) string {
	f, _ := reflect.TypeOf(config{}).FieldByName(field)
	return f.Tag.Get("envDefault")
}

func keysUsage(w io.Writer) {
	fmt.Fprint(w, `Usage: gatehouse keys rotate|drop-old|list [--json] [--assertion]

The cookie keys that sign and verify login-token cookies, kept in the store that
GATEHOUSE_STORE names and shared by every replica on it. Serving replicas re-read them
every GATEHOUSE_COOKIE_KEYS_RELOAD_INTERVAL: no restart is needed.

  rotate    make a new key pair, which signs new and refreshed cookies from now on;
            the older pairs still verify
  drop-old  keep only the newest pair: cookies signed by the others are refused,
            and their users sign in again
  list      the pairs, newest first: fingerprint (the first 12 hex digits of the
            SHA-256 of the pair, never the key) and creation time

  --json    print one JSON document instead of text

The signed identity assertion's key (GATEHOUSE_ASSERTION_AUDIENCE) is kept in the same
store and follows the cookie keys: rotate makes a new one, which signs at once while
the old ones stay in <PREFIX>jwks.json; drop-old removes the old ones from it.

  --assertion  the assertion's keys only; they are in the store even with
               GATEHOUSE_COOKIE_KEYS set, so this is how to rotate them then

With GATEHOUSE_COOKIE_KEYS (or _FILE) set, the operator owns the cookie keys: rotate and
drop-old refuse (without --assertion), and list shows the setting's pairs.
`)
}
