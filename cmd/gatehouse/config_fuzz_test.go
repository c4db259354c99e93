package main

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
)

// fuzzedSettings are the settings FuzzLoadConfig varies, in the order of
// its arguments: durations, comma lists, the group mapping, SameSite, the
// store and a URL.
var fuzzedSettings = []string{
	"IMS_STALE_IF_ERROR", "SYNC_INTERVAL", "IMS_CLIENT_IDS", "API_PATHS",
	"GROUP_MAPPING", "COOKIE_SAMESITE", "STORE", "UPSTREAM",
}

// FuzzLoadConfig: whatever the values of these settings, loading never
// panics, and either fails with errors that each name the variable at
// fault, or returns a configuration that passes its own validation again.
func FuzzLoadConfig(f *testing.F) {
	f.Add("15m", "1h", "cc-europa-desktop_10_0,InDesignAem2", "/api/,/bin/api/", "*:GRP_ADMIN=administrators", "lax", "sqlite:gatehouse.db", "http://127.0.0.1:4502")
	f.Add("0", "1s", " a , ,b ", "", "", "Strict", "sqlite:/var/lib/gatehouse/g.db", "https://author.example.com/")
	f.Add("-1s", "-1h", ",,,", "api", "nonsense", "none", "sqlite:", "127.0.0.1:4502")
	f.Add("9223372036854775807ns", "99999999999h", "\x00", "/", "a:b=c,d:e=f,*:*=*", "NONE", "postgres://u@h/db", "http://admin:secret@h")
	f.Add("1e3s", "1.5h", "x,", "/api/,", "AEM-Authors:*=dam-users,", "", "redis://x", "http://[::1")
	f.Add("", "", "", "", ":=", "lax\n", "sqlite:\x00", "http://h\n")
	f.Add("15m", "1h", "", "", "", "lax", "postgres://gatehouse:s3cr3t-pw@db.internal:5432/gatehouse?sslmode=require", "http://127.0.0.1:4502")
	f.Add("15m", "1h", "", "", "", "lax", "postgresql://gatehouse:s3cr3t-pw@/gatehouse", "http://127.0.0.1:4502")
	f.Add("15m", "1h", "", "", "", "lax", "postgre://gatehouse:s3cr3t-pw@db:5432/gatehouse", "http://127.0.0.1:4502")
	f.Fuzz(func(t *testing.T, stale, sync, clientIDs, apiPaths, mapping, sameSite, store, upstream string) {
		values := []string{stale, sync, clientIDs, apiPaths, mapping, sameSite, store, upstream}
		environ := []string{"GATEHOUSE_LISTEN=127.0.0.1:0"}
		for i, name := range fuzzedSettings {
			environ = append(environ, envPrefix+name+"="+values[i])
		}
		c, err := loadConfig(environ)
		if err != nil {
			if pw := storePassword(store); pw != "" && strings.Contains(err.Error(), pw) && !slices.ContainsFunc(append(values[:6:6], upstream), func(v string) bool { return strings.Contains(v, pw) }) {
				t.Errorf("error %q shows the store's password", err)
			}
			for _, e := range leafErrors(err) {
				if !namesFuzzedSetting(e.Error()) {
					t.Errorf("error %q names none of the settings fuzzed", e)
				}
			}
			return
		}
		if err := c.validate(environMap(environ)); err != nil {
			t.Fatalf("a loaded configuration fails its own validation: %v", err)
		}
		checkLoaded(t, c)
	})
}

// storePassword returns the password of a GATEHOUSE_STORE URL, when it
// is long enough not to turn up in a message by chance.
func storePassword(store string) string {
	if u, err := url.Parse(store); err == nil {
		if pw, ok := u.User.Password(); ok && len(pw) >= 6 {
			return pw
		}
	}
	return ""
}

// leafErrors splits a joined error into the errors it joins.
func leafErrors(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, leafErrors(e)...)
		}
		return out
	}
	return []error{err}
}

func namesFuzzedSetting(msg string) bool {
	for _, name := range fuzzedSettings {
		if strings.HasPrefix(msg, envPrefix+name+":") {
			return true
		}
	}
	return false
}

// checkLoaded checks what the rest of Gatehouse relies on in a loaded
// configuration.
func checkLoaded(t *testing.T, c *config) {
	t.Helper()
	switch {
	case c.upstream == nil || (c.upstream.Scheme != "http" && c.upstream.Scheme != "https") || c.upstream.Host == "":
		t.Errorf("upstream %v: want an absolute http(s) URL", c.upstream)
	case c.IMSStaleIfError < 0:
		t.Errorf("IMS_STALE_IF_ERROR %s is negative", c.IMSStaleIfError)
	case c.SyncInterval <= 0:
		t.Errorf("SYNC_INTERVAL %s is not positive", c.SyncInterval)
	case c.mapping == nil:
		t.Error("no group mapping")
	case (c.sqlitePath == "") == (c.postgresURL == ""):
		t.Errorf("SQLite path %q and PostgreSQL URL set %v: want exactly one store", c.sqlitePath, c.postgresURL != "")
	case c.sameSite != http.SameSiteLaxMode && c.sameSite != http.SameSiteStrictMode && c.sameSite != http.SameSiteNoneMode:
		t.Errorf("SameSite %v", c.sameSite)
	}
	for _, id := range c.IMSClientIDs {
		if id == "" || strings.TrimSpace(id) != id {
			t.Errorf("client id %q: empty or untrimmed", id)
		}
	}
}
