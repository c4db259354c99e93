package postgres

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"testing"

	"github.com/gatehouse-proxy/gatehouse/session"
)

// FuzzRedactURL: for any PostgreSQL URL with a password, in its user info
// or its query, the redacted URL, and any error quoting the URL as given
// (raw or escaped), show no form of the password.
func FuzzRedactURL(f *testing.F) {
	f.Add("gatehouse", "s3cr3t-Pa55", "db.internal:5432", "gatehouse", "sslmode=require", false)
	f.Add("u", "p@ss:w/rd?#%", "127.0.0.1", "test", "", false)
	f.Add("", "only-a-password", "[::1]:5432", "", "search_path=gh", false)
	f.Add("gatehouse", "pa ss+word&x=y", "h", "d", "sslmode=disable", true)
	f.Add("ü", "пароль-секрет", "host", "db", "a=b&password=other", true)
	f.Fuzz(func(t *testing.T, user, pw, host, db, query string, inQuery bool) {
		if len(pw) < 6 || strings.Contains(pw, "x") {
			return // too short to tell from other text, or part of the mask
		}
		build := func(pw string) string {
			u := &url.URL{Scheme: "postgres", Host: host, Path: "/" + db, RawQuery: query}
			if inQuery {
				q, _ := url.ParseQuery(query)
				q.Set("password", pw)
				u.RawQuery = q.Encode()
				u.User = url.User(user)
			} else {
				u.User = url.UserPassword(user, pw)
			}
			return u.String()
		}
		if _, err := url.ParseQuery(query); inQuery && err != nil {
			return
		}
		raw := build(pw)
		forms := []string{pw, url.QueryEscape(pw), url.PathEscape(pw), strings.TrimPrefix(url.UserPassword("", pw).String(), ":")}
		for _, part := range []string{user, host, db, query} {
			for _, f := range forms {
				if strings.Contains(part, f) {
					return // the password is also elsewhere in the URL
				}
			}
		}
		safe, secrets, err := redactURL(raw)
		if err != nil {
			if msg := err.Error(); containsAny(msg, forms) {
				t.Fatalf("redactURL(%q) error %q shows the password", raw, msg)
			}
			return
		}
		// Escaping the other parts can make the password's text appear by
		// chance ("\x10" then "00000" is "%1000000"): what counts is that
		// it appears no more often than with another password in its place.
		other, _, err := redactURL(build("QQQQQQQQ"))
		if err != nil {
			t.Fatalf("redactURL of the same URL with another password: %v", err)
		}
		for _, f := range forms {
			if f != "" && strings.Count(safe, f) > strings.Count(other, f) {
				t.Fatalf("redactURL(%q) = %q, shows the password", raw, safe)
			}
		}
		quoted := redacted(fmt.Errorf("cannot parse `%s`: %w", raw, errors.New("no")), secrets)
		if containsAny(quoted.Error(), forms) {
			t.Fatalf("redacted error %q shows the password", quoted)
		}
		if errors.Unwrap(quoted) == nil {
			t.Fatal("redacted error does not wrap the original")
		}
	})
}

func containsAny(s string, subs []string) bool {
	for _, sub := range subs {
		if sub != "" && strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

// FuzzParsePayload: any notification payload, however made, parses to a
// change without panicking; one this store sends round-trips, and one it
// does not know is ChangeAll with no id (forgetting everything is safe).
func FuzzParsePayload(f *testing.F) {
	for _, p := range []string{"t:AZPm3k0AAAB3xq9-Lm2VQw", "u:A11CE0000000000000000001@AdobeID", "r:u1@AdobeID",
		"s:cookie_keys", "t:", "x:what-a-newer-replica-sends", "", "u", ":", "u:a:b", "\x00:\xff", "ü:ü"} {
		f.Add(p)
	}
	f.Fuzz(func(t *testing.T, p string) {
		c := parsePayload(p)
		switch c.Kind {
		case session.ChangeToken, session.ChangeUser, session.ChangeUserTokens, session.ChangeSetting:
			if got := payload(p[0], c.ID); got != p {
				t.Fatalf("payload %q parsed to %+v, which is sent as %q", p, c, got)
			}
		case session.ChangeAll:
			if c.ID != "" {
				t.Fatalf("payload %q parsed to ChangeAll with id %q", p, c.ID)
			}
			if len(p) >= 2 && p[1] == ':' && strings.IndexByte("turs", p[0]) >= 0 {
				t.Fatalf("payload %q of a known kind parsed to ChangeAll", p)
			}
		default:
			t.Fatalf("payload %q parsed to kind %d", p, c.Kind)
		}
		if c.Err != nil {
			t.Fatalf("payload %q parsed with an error: %v", p, c.Err)
		}
	})
}
