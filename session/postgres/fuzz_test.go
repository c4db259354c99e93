package postgres

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"testing"
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
		u := &url.URL{Scheme: "postgres", Host: host, Path: "/" + db, RawQuery: query}
		if inQuery {
			q, err := url.ParseQuery(query)
			if err != nil {
				return
			}
			q.Set("password", pw)
			u.RawQuery = q.Encode()
			u.User = url.User(user)
		} else {
			u.User = url.UserPassword(user, pw)
		}
		raw := u.String()
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
		if containsAny(safe, forms) {
			t.Fatalf("redactURL(%q) = %q, shows the password", raw, safe)
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
