package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/gatehouse-proxy/gatehouse/session"
)

// adminTimeout bounds one `gatehouse users` or `gatehouse tokens` command:
// a store that does not answer in it is an error, not a hang.
const adminTimeout = 30 * time.Second

// errNoSuchUser and errAmbiguousUser are the lookups of USER that fail;
// both exit with status 1, as every failure that is not a usage mistake.
var (
	errNoSuchUser    = errors.New("no such user")
	errAmbiguousUser = errors.New("e-mail address of several users")
)

// cacheBound says, in the commands' messages, how soon a running serve
// notices a change made in the store.
const cacheBound = "within GATEHOUSE_SESSION_CACHE_TTL"

// storeFromEnv opens the store that GATEHOUSE_STORE names (or its
// default), as serve does.
func storeFromEnv(ctx context.Context) (session.Store, error) {
	vars := environMap(environ())
	cfg := &config{Store: vars[envPrefix+"STORE"]}
	if cfg.Store == "" {
		cfg.Store = settingDefault("Store")
	}
	if err := cfg.checkStore(); err != nil {
		return nil, err
	}
	return openStore(ctx, cfg)
}

// adminArgs parses a command's flags, which may come before or after its
// arguments ("show USER --json" as well as "show --json USER"), and
// returns the arguments.
func adminArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

// adminFlags is what every admin command accepts.
type adminFlags struct {
	fs     *flag.FlagSet
	asJSON *bool
}

func newAdminFlags(name string, stderr io.Writer) adminFlags {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {} // the flag package says what was wrong; we say where help is
	return adminFlags{fs: fs, asJSON: fs.Bool("json", false, "print one JSON document instead of text")}
}

// parse parses args; help and mistakes are answered here (usage on
// stdout for help, a pointer to it on stderr for a mistake).
func (f adminFlags) parse(args []string, cmd string, stdout, stderr io.Writer, usage func(io.Writer)) ([]string, error) {
	pos, err := adminArgs(f.fs, args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		usage(stdout)
		return nil, flag.ErrHelp
	case err != nil:
		fmt.Fprintf(stderr, "gatehouse %s: see 'gatehouse %s -h'\n", cmd, strings.Fields(cmd)[0])
		return nil, errUsage
	}
	return pos, nil
}

// subcommand picks args[0] from subs for `gatehouse group …`. done is
// true when the call is answered already: help printed (err nil), or a
// missing or unknown subcommand reported with the usage (err errUsage).
func subcommand(group string, args, subs []string, usage func(io.Writer), stdout, stderr io.Writer) (sub string, done bool, err error) {
	if len(args) == 0 {
		usage(stderr)
		return "", true, errUsage
	}
	switch sub = args[0]; {
	case slices.Contains(subs, sub):
		return sub, false, nil
	case sub == "-h", sub == "-help", sub == "--help", sub == "help":
		usage(stdout)
		return "", true, nil
	}
	want := subs[len(subs)-1]
	if len(subs) > 1 {
		want = strings.Join(subs[:len(subs)-1], ", ") + " or " + want
	}
	fmt.Fprintf(stderr, "gatehouse %s: unknown command %q: want %s\n\n", group, sub, want)
	usage(stderr)
	return "", true, errUsage
}

// usersCommand is `gatehouse users list|show|resync|disable|enable`.
func usersCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	sub, done, err := subcommand("users", args, []string{"list", "show", "resync", "disable", "enable"}, usersUsage, stdout, stderr)
	if done {
		return err
	}
	f := newAdminFlags("users "+sub, stderr)
	pos, err := f.parse(args[1:], "users "+sub, stdout, stderr, usersUsage)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	want := 1
	if sub == "list" {
		want = 0
	}
	switch {
	case len(pos) > want:
		fmt.Fprintf(stderr, "gatehouse users %s: unexpected argument %q (see 'gatehouse users -h')\n", sub, pos[want])
		return errUsage
	case len(pos) < want || (want == 1 && strings.TrimSpace(pos[0]) == ""):
		fmt.Fprintf(stderr, "gatehouse users %s: name the user: USER is the IMS user id (…@AdobeID) or the e-mail address\n", sub)
		return errUsage
	}

	ctx, cancel := context.WithTimeout(ctx, adminTimeout)
	defer cancel()
	store, err := storeFromEnv(ctx)
	if err != nil {
		return fmt.Errorf("users %s: %w", sub, err)
	}
	defer store.Close()

	var out any
	var text func(io.Writer)
	switch sub {
	case "list":
		rep, err := listUsers(ctx, store)
		if err != nil {
			return fmt.Errorf("users list: %w", err)
		}
		out, text = rep, rep.print
	case "show":
		rep, err := showUser(ctx, store, pos[0])
		if err != nil {
			return fmt.Errorf("users show: %w", err)
		}
		out, text = rep, rep.print
	default:
		rep, err := changeUser(ctx, store, sub, pos[0])
		if err != nil {
			return fmt.Errorf("users %s: %w", sub, err)
		}
		out, text = rep, rep.print
	}
	return writeReport(stdout, *f.asJSON, out, text)
}

// tokensCommand is `gatehouse tokens revoke --user USER | --token ID`.
func tokensCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if _, done, err := subcommand("tokens", args, []string{"revoke"}, tokensUsage, stdout, stderr); done {
		return err
	}
	f := newAdminFlags("tokens revoke", stderr)
	user := f.fs.String("user", "", "revoke every login token of this user (IMS user id or e-mail address)")
	tokenID := f.fs.String("token", "", "revoke the login token with this id (as 'gatehouse users show' lists it)")
	pos, err := f.parse(args[1:], "tokens revoke", stdout, stderr, tokensUsage)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	switch {
	case len(pos) > 0:
		fmt.Fprintf(stderr, "gatehouse tokens revoke: unexpected argument %q: say --user USER or --token ID\n", pos[0])
		return errUsage
	case (*user == "") == (*tokenID == ""):
		fmt.Fprintln(stderr, "gatehouse tokens revoke: say either --user USER (all of the user's login tokens) or --token ID (one), not both")
		return errUsage
	}

	ctx, cancel := context.WithTimeout(ctx, adminTimeout)
	defer cancel()
	store, err := storeFromEnv(ctx)
	if err != nil {
		return fmt.Errorf("tokens revoke: %w", err)
	}
	defer store.Close()
	rep, err := revokeTokens(ctx, store, *user, *tokenID)
	if err != nil {
		return fmt.Errorf("tokens revoke: %w", err)
	}
	return writeReport(stdout, *f.asJSON, rep, rep.print)
}

// writeReport prints rep as one JSON document, or as text.
func writeReport(w io.Writer, asJSON bool, rep any, text func(io.Writer)) error {
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	text(w)
	return nil
}

// resolveUser finds the user that arg names: an IMS user id, else an
// e-mail address that exactly one user has (ASCII case ignored).
func resolveUser(ctx context.Context, store session.Store, arg string) (*session.User, error) {
	u, err := store.GetUser(ctx, arg)
	if err == nil {
		return u, nil
	}
	if !errors.Is(err, session.ErrNotFound) {
		return nil, err
	}
	users, err := store.FindUsersByEmail(ctx, arg)
	if err != nil {
		return nil, err
	}
	switch len(users) {
	case 0:
		return nil, fmt.Errorf("%w: no user has the IMS user id or e-mail address %q ('gatehouse users list' lists them)", errNoSuchUser, arg)
	case 1:
		return users[0], nil
	}
	ids := make([]string, len(users))
	for i, u := range users {
		ids[i] = u.ID
	}
	return nil, fmt.Errorf("%w: %d users have the e-mail address %q: %s; name one by its IMS user id",
		errAmbiguousUser, len(users), arg, strings.Join(ids, ", "))
}

// The JSON reports. Times are RFC 3339 in UTC; a user marked for resync
// has "resync_pending": true and no "last_sync".

type userLine struct {
	ID            string    `json:"id"`
	Email         string    `json:"email"`
	Name          string    `json:"name"`
	Created       time.Time `json:"created"`
	LastSync      time.Time `json:"last_sync,omitzero"`
	ResyncPending bool      `json:"resync_pending"`
	Disabled      bool      `json:"disabled"`
	Groups        int       `json:"groups"`
	LoginTokens   int       `json:"login_tokens"`
}

type usersReport struct {
	Users []userLine `json:"users"` // sorted by id
}

// lastSync is a SyncedAt as the reports show it: zero (absent) for a
// user marked for resync.
func lastSync(t time.Time) (time.Time, bool) {
	if !t.After(time.Unix(0, 0)) {
		return time.Time{}, true
	}
	return t.UTC(), false
}

func listUsers(ctx context.Context, store session.Store) (*usersReport, error) {
	rep := &usersReport{Users: []userLine{}}
	after := ""
	for {
		page, err := store.ListUsers(ctx, after, session.MaxListUsers)
		if err != nil {
			return nil, err
		}
		if len(page) == 0 {
			return rep, nil
		}
		for _, u := range page {
			l := userLine{ID: u.ID, Email: u.Email, Name: u.Name, Created: u.CreatedAt.UTC(), Disabled: u.Disabled,
				Groups: u.Groups, LoginTokens: u.LoginTokens}
			l.LastSync, l.ResyncPending = lastSync(u.SyncedAt)
			rep.Users = append(rep.Users, l)
		}
		after = page[len(page)-1].ID
	}
}

func (rep *usersReport) print(w io.Writer) {
	if len(rep.Users) == 0 {
		fmt.Fprintln(w, "no users yet: a user is created at their first bearer sign-in")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tE-MAIL\tNAME\tGROUPS\tTOKENS\tLAST SYNC\tDISABLED")
	for _, u := range rep.Users {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%s\t%s\n", u.ID, u.Email, u.Name, u.Groups, u.LoginTokens,
			syncText(u.LastSync, u.ResyncPending), yesNo(u.Disabled))
	}
	tw.Flush()
}

func syncText(t time.Time, pending bool) string {
	if pending {
		return "resync pending"
	}
	return t.Format(time.RFC3339)
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

type groupLine struct {
	Group  string `json:"group"`
	Source string `json:"source"` // "ims" (synced) or "local"
}

type tokenLine struct {
	ID      string    `json:"id"`
	Created time.Time `json:"created"`
	Expires time.Time `json:"expires"`
	Expired bool      `json:"expired"`
}

type userReport struct {
	ID            string      `json:"id"`
	Email         string      `json:"email"`
	Name          string      `json:"name"`
	FirstName     string      `json:"first_name"`
	LastName      string      `json:"last_name"`
	Created       time.Time   `json:"created"`
	Updated       time.Time   `json:"updated"`
	LastSync      time.Time   `json:"last_sync,omitzero"`
	ResyncPending bool        `json:"resync_pending"`
	Disabled      bool        `json:"disabled"`
	Orgs          []string    `json:"orgs"`
	Groups        []groupLine `json:"groups"`
	LoginTokens   []tokenLine `json:"login_tokens"` // oldest first; never a secret or its hash
}

func showUser(ctx context.Context, store session.Store, arg string) (*userReport, error) {
	u, err := resolveUser(ctx, store, arg)
	if err != nil {
		return nil, err
	}
	toks, err := store.ListLoginTokens(ctx, u.ID)
	if err != nil {
		return nil, err
	}
	rep := &userReport{ID: u.ID, Email: u.Email, Name: u.Name, FirstName: u.FirstName, LastName: u.LastName,
		Created: u.CreatedAt.UTC(), Updated: u.UpdatedAt.UTC(), Disabled: u.Disabled,
		Orgs: append([]string{}, u.Orgs...), Groups: []groupLine{}, LoginTokens: []tokenLine{}}
	rep.LastSync, rep.ResyncPending = lastSync(u.SyncedAt)
	for _, m := range u.Memberships {
		rep.Groups = append(rep.Groups, groupLine{Group: m.Group, Source: m.Source})
	}
	now := time.Now()
	for _, t := range toks {
		rep.LoginTokens = append(rep.LoginTokens, tokenLine{ID: t.ID, Created: t.CreatedAt.UTC(), Expires: t.ExpiresAt.UTC(),
			Expired: !now.Before(t.ExpiresAt)})
	}
	return rep, nil
}

func (rep *userReport) print(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "user\t%s\n", rep.ID)
	fmt.Fprintf(tw, "e-mail\t%s\n", rep.Email)
	fmt.Fprintf(tw, "name\t%s (first %q, last %q)\n", rep.Name, rep.FirstName, rep.LastName)
	fmt.Fprintf(tw, "created\t%s\n", rep.Created.Format(time.RFC3339))
	fmt.Fprintf(tw, "profile changed\t%s\n", rep.Updated.Format(time.RFC3339))
	fmt.Fprintf(tw, "last sync\t%s\n", syncText(rep.LastSync, rep.ResyncPending))
	fmt.Fprintf(tw, "disabled\t%s\n", yesNo(rep.Disabled))
	fmt.Fprintf(tw, "organizations\t%s\n", noneOr(strings.Join(rep.Orgs, ", ")))
	tw.Flush()

	fmt.Fprintf(w, "\ngroups (%d):\n", len(rep.Groups))
	if len(rep.Groups) > 0 {
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "  GROUP\tSOURCE")
		for _, g := range rep.Groups {
			fmt.Fprintf(tw, "  %s\t%s\n", g.Group, g.Source)
		}
		tw.Flush()
	}
	fmt.Fprintf(w, "\nlogin tokens (%d):\n", len(rep.LoginTokens))
	if len(rep.LoginTokens) > 0 {
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "  ID\tCREATED\tEXPIRES")
		for _, t := range rep.LoginTokens {
			exp := t.Expires.Format(time.RFC3339)
			if t.Expired {
				exp += " (expired)"
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\n", t.ID, t.Created.Format(time.RFC3339), exp)
		}
		tw.Flush()
	}
}

func noneOr(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// changeReport is the outcome of resync, disable, enable and tokens
// revoke.
type changeReport struct {
	Command  string `json:"command"` // resync, disable, enable or revoke
	User     string `json:"user"`
	Email    string `json:"email,omitempty"`
	Disabled bool   `json:"disabled"`
	// Revoked is how many login tokens were deleted (disable, revoke).
	Revoked int64  `json:"revoked_tokens"`
	Token   string `json:"token,omitempty"` // revoke --token: its id
}

func changeUser(ctx context.Context, store session.Store, sub, arg string) (*changeReport, error) {
	u, err := resolveUser(ctx, store, arg)
	if err != nil {
		return nil, err
	}
	rep := &changeReport{Command: sub, User: u.ID, Email: u.Email, Disabled: u.Disabled}
	switch sub {
	case "resync":
		err = store.MarkUserForResync(ctx, u.ID)
	default:
		rep.Disabled = sub == "disable"
		rep.Revoked, err = store.SetUserDisabled(ctx, u.ID, rep.Disabled)
	}
	if errors.Is(err, session.ErrNotFound) { // deleted since resolveUser
		err = fmt.Errorf("%w: %s is no longer in the store", errNoSuchUser, u.ID)
	}
	if err != nil {
		return nil, err
	}
	return rep, nil
}

func revokeTokens(ctx context.Context, store session.Store, user, tokenID string) (*changeReport, error) {
	rep := &changeReport{Command: "revoke"}
	if tokenID != "" {
		t, u, err := store.GetLoginTokenWithUser(ctx, tokenID)
		if errors.Is(err, session.ErrNotFound) {
			return nil, fmt.Errorf("no login token has the id %q (revoked, expired and cleaned up, or never issued; 'gatehouse users show USER' lists a user's)", tokenID)
		}
		if err != nil {
			return nil, err
		}
		if err := store.DeleteLoginToken(ctx, tokenID); err != nil {
			return nil, err
		}
		rep.Token, rep.User, rep.Revoked = tokenID, t.UserID, 1
		rep.Email, rep.Disabled = u.Email, u.Disabled
		return rep, nil
	}
	u, err := resolveUser(ctx, store, user)
	if err != nil {
		return nil, err
	}
	rep.User, rep.Email, rep.Disabled = u.ID, u.Email, u.Disabled
	if rep.Revoked, err = store.DeleteLoginTokensOfUser(ctx, u.ID); err != nil {
		return nil, err
	}
	return rep, nil
}

func (rep *changeReport) print(w io.Writer) {
	who := rep.User
	if rep.Email != "" {
		who += " (" + rep.Email + ")"
	}
	switch rep.Command {
	case "resync":
		fmt.Fprintf(w, "marked %s for resync: their next bearer sign-in syncs profile and groups from IMS; a running serve notices %s\n", who, cacheBound)
	case "disable":
		fmt.Fprintf(w, "disabled %s and revoked %s: new bearer sign-ins are refused now (403 USER_DISABLED), signed-in cookies %s\n",
			who, countTokens(rep.Revoked), cacheBound)
	case "enable":
		fmt.Fprintf(w, "enabled %s: they can sign in again with a bearer token\n", who)
	default:
		what := countTokens(rep.Revoked) + " of " + who
		if rep.Token != "" {
			what = "login token " + rep.Token + " of " + who
		}
		fmt.Fprintf(w, "revoked %s: cookies carrying it are refused %s, and the user signs in again\n", what, cacheBound)
	}
}

func countTokens(n int64) string {
	if n == 1 {
		return "1 login token"
	}
	return fmt.Sprintf("%d login tokens", n)
}

func usersUsage(w io.Writer) {
	fmt.Fprint(w, `Usage: gatehouse users list|show|resync|disable|enable [USER] [--json]

The users kept in the store that GATEHOUSE_STORE names (shared by every replica on it).
USER is the IMS user id (…@AdobeID) or the e-mail address; an address that several
users have is refused with their ids.

  list            every user: id, e-mail, name, groups, login tokens, last sync, disabled
  show USER       profile, organizations, groups with their source, login tokens
                  (id, creation, expiry; never a secret), last sync, disabled
  resync USER     the user's next bearer sign-in syncs profile and groups from IMS again
  disable USER    refuse the user (403, X-Reason: USER_DISABLED) and revoke their login tokens
  enable USER     let a disabled user sign in again

  --json          print one JSON document instead of text

A running serve sees the change at once for a new bearer sign-in, and within
GATEHOUSE_SESSION_CACHE_TTL for signed-in cookies and users it holds in memory.
Exit status: 0 done, 1 failed (unknown user, ambiguous e-mail, store error), 2 usage.
`)
}

func tokensUsage(w io.Writer) {
	fmt.Fprint(w, `Usage: gatehouse tokens revoke (--user USER | --token ID) [--json]

Revokes login tokens in the store that GATEHOUSE_STORE names. A cookie carrying a
revoked token is refused within GATEHOUSE_SESSION_CACHE_TTL, and its user signs in again.

  --user USER     every login token of the user (IMS user id or e-mail address)
  --token ID      one login token, by the id 'gatehouse users show USER' lists
  --json          print one JSON document instead of text

Exit status: 0 done, 1 failed (unknown user or token, store error), 2 usage.
`)
}
