package main

import (
	"bytes"
	"net/http"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-proxy/gatehouse/auth/bearer"
)

func TestLoadConfigDefaults(t *testing.T) {
	c, err := loadConfig([]string{"GATEHOUSE_UPSTREAM=http://127.0.0.1:4502", "UNRELATED=x"})
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"listen", c.Listen, ":8080"},
		{"upstream", c.upstream.String(), "http://127.0.0.1:4502"},
		{"IMS URL", c.IMSURL, "https://ims-na1.adobelogin.com"},
		{"keys URL derived from IMS URL", c.IMSKeysURL, "https://ims-na1.adobelogin.com/ims/keys"},
		{"cluster", c.IMSCluster, "ims-na1"},
		{"validation", c.validation, bearer.ModeBoth},
		{"store", c.sqlitePath, "gatehouse.db"},
		{"cookie secure", c.CookieSecure, true},
		{"same site", c.sameSite, http.SameSiteLaxMode},
		{"login token TTL", c.LoginTokenTTL, 12 * time.Hour},
		{"sync interval", c.SyncInterval, time.Hour},
		{"IMS stale if error", c.IMSStaleIfError, 15 * time.Minute},
		{"idle pool per host", c.UpstreamMaxIdleConnsPerHost, 256},
		{"bearer sign-in off without client ids", len(c.IMSClientIDs), 0},
		{"GC headroom", c.GCHeadroomMiB, 32},
		{"cookie keys reload", c.KeysReload, 5 * time.Second},
	}
	for _, ch := range checks {
		if !reflect.DeepEqual(ch.got, ch.want) {
			t.Errorf("%s = %v, want %v", ch.name, ch.got, ch.want)
		}
	}
}

func TestLoadConfigValues(t *testing.T) {
	c, err := loadConfig([]string{
		"GATEHOUSE_UPSTREAM=https://author.example.com",
		"GATEHOUSE_IMS_URL=http://127.0.0.1:8180/",
		"GATEHOUSE_IMS_CERTS_URL=http://127.0.0.1:8180/keys/prod",
		"GATEHOUSE_IMS_CLIENT_IDS= cc-europa-desktop_10_0 , ,InDesignAem2",
		"GATEHOUSE_IMS_VALIDATION=LOCAL",
		"GATEHOUSE_GROUP_MAPPING=*:GRP_ADMIN=administrators",
		"GATEHOUSE_STORE=sqlite:/var/lib/gatehouse/g.db",
		"GATEHOUSE_COOKIE_SAMESITE=Strict",
		"GATEHOUSE_LOGIN_TOKEN_TTL=90m",
		"GATEHOUSE_IMS_STALE_IF_ERROR=0",
	})
	if err != nil {
		t.Fatal(err)
	}
	if c.IMSKeysURL != "http://127.0.0.1:8180/ims/keys" {
		t.Errorf("keys URL %q: the IMS URL's trailing slash must not double", c.IMSKeysURL)
	}
	if c.IMSCertsURL != "http://127.0.0.1:8180/keys/prod/" {
		t.Errorf("certs URL %q: want a trailing slash so x5u appends as a file name", c.IMSCertsURL)
	}
	if !reflect.DeepEqual(c.IMSClientIDs, []string{"cc-europa-desktop_10_0", "InDesignAem2"}) {
		t.Errorf("client ids %q", c.IMSClientIDs)
	}
	if c.validation != bearer.ModeLocal || c.sameSite != http.SameSiteStrictMode || c.LoginTokenTTL != 90*time.Minute {
		t.Errorf("validation %q same site %v TTL %s", c.validation, c.sameSite, c.LoginTokenTTL)
	}
	if c.IMSStaleIfError != 0 {
		t.Errorf("stale if error %s, want 0 (off)", c.IMSStaleIfError)
	}
	if c.sqlitePath != "/var/lib/gatehouse/g.db" || len(c.mapping.Rules()) != 1 {
		t.Errorf("store %q mapping %v", c.sqlitePath, c.mapping.Rules())
	}
}

// GATEHOUSE_STORE picks the store by its prefix; a PostgreSQL URL is kept
// as given, for the driver.
// Port 0 gives each listener a free port of its own, so the same
// "127.0.0.1:0" for the proxy and the metrics is not the same address.
func TestMetricsListenPortZero(t *testing.T) {
	if _, err := loadConfig([]string{"GATEHOUSE_UPSTREAM=http://127.0.0.1:4502",
		"GATEHOUSE_LISTEN=127.0.0.1:0", "GATEHOUSE_METRICS_LISTEN=127.0.0.1:0"}); err != nil {
		t.Fatal(err)
	}
}

func TestStoreSetting(t *testing.T) {
	for _, tc := range []struct{ store, sqlite, postgres string }{
		{"sqlite:/var/lib/gatehouse/g.db", "/var/lib/gatehouse/g.db", ""},
		{"postgres://gatehouse:pw@db.internal:5432/gatehouse?sslmode=require", "", "postgres://gatehouse:pw@db.internal:5432/gatehouse?sslmode=require"},
		{"postgresql://db/gatehouse?search_path=gh", "", "postgresql://db/gatehouse?search_path=gh"},
	} {
		c, err := loadConfig([]string{"GATEHOUSE_UPSTREAM=http://127.0.0.1:4502", "GATEHOUSE_STORE=" + tc.store})
		if err != nil {
			t.Fatalf("%s: %v", tc.store, err)
		}
		if c.sqlitePath != tc.sqlite || c.postgresURL != tc.postgres {
			t.Errorf("%s: SQLite path %q, PostgreSQL URL %q; want %q and %q", tc.store, c.sqlitePath, c.postgresURL, tc.sqlite, tc.postgres)
		}
	}
}

func TestLoadConfigErrorsNameTheVariable(t *testing.T) {
	up := "GATEHOUSE_UPSTREAM=http://127.0.0.1:4502"
	tests := []struct {
		name string
		env  []string
		want string
	}{
		{"upstream missing", nil, "GATEHOUSE_UPSTREAM: required"},
		{"upstream not a URL", []string{"GATEHOUSE_UPSTREAM=127.0.0.1:4502"}, "GATEHOUSE_UPSTREAM"},
		{"upstream with credentials", []string{"GATEHOUSE_UPSTREAM=http://admin:secret@h"}, "GATEHOUSE_UPSTREAM"},
		{"bad duration", []string{up, "GATEHOUSE_LOGIN_TOKEN_TTL=abc"}, "GATEHOUSE_LOGIN_TOKEN_TTL"},
		{"negative duration", []string{up, "GATEHOUSE_SYNC_INTERVAL=-1h"}, "GATEHOUSE_SYNC_INTERVAL"},
		{"negative stale if error", []string{up, "GATEHOUSE_IMS_STALE_IF_ERROR=-1s"}, "GATEHOUSE_IMS_STALE_IF_ERROR"},
		{"bad bool", []string{up, "GATEHOUSE_COOKIE_SECURE=maybe"}, "GATEHOUSE_COOKIE_SECURE"},
		{"bad int", []string{up, "GATEHOUSE_UPSTREAM_MAX_IDLE_CONNS=lots"}, "GATEHOUSE_UPSTREAM_MAX_IDLE_CONNS"},
		{"validation mode", []string{up, "GATEHOUSE_IMS_VALIDATION=sometimes"}, "GATEHOUSE_IMS_VALIDATION"},
		{"same site none needs secure", []string{up, "GATEHOUSE_COOKIE_SAMESITE=none", "GATEHOUSE_COOKIE_SECURE=false"}, "GATEHOUSE_COOKIE_SAMESITE"},
		{"store scheme", []string{up, "GATEHOUSE_STORE=redis://x"}, "GATEHOUSE_STORE"},
		{"store empty path", []string{up, "GATEHOUSE_STORE=sqlite:"}, "GATEHOUSE_STORE"},
		{"cookie keys reload off", []string{up, "GATEHOUSE_COOKIE_KEYS_RELOAD_INTERVAL=0s"}, "GATEHOUSE_COOKIE_KEYS_RELOAD_INTERVAL"},
		{"store postgres URL does not parse", []string{up, "GATEHOUSE_STORE=postgres://u:s3cr3t-pw@db:port/g"}, "GATEHOUSE_STORE: the PostgreSQL URL does not parse"},
		{"store postgres URL without host", []string{up, "GATEHOUSE_STORE=postgresql://u:s3cr3t-pw@/g"}, "GATEHOUSE_STORE: the PostgreSQL URL postgresql://u:xxxxx@/g names no host"},
		{"store of a misspelt kind", []string{up, "GATEHOUSE_STORE=postgre://u:s3cr3t-pw@db/g"}, "GATEHOUSE_STORE"},
		{"group mapping", []string{up, "GATEHOUSE_GROUP_MAPPING=nonsense"}, "GATEHOUSE_GROUP_MAPPING"},
		{"org format", []string{up, "GATEHOUSE_IMS_ORG=1234"}, "GATEHOUSE_IMS_ORG"},
		{"prefix", []string{up, "GATEHOUSE_PREFIX=gatehouse"}, "GATEHOUSE_PREFIX"},
		{"log level", []string{up, "GATEHOUSE_LOG_LEVEL=loud"}, "GATEHOUSE_LOG_LEVEL"},
		{"negative GC headroom", []string{up, "GATEHOUSE_GC_HEADROOM_MIB=-1"}, "GATEHOUSE_GC_HEADROOM_MIB"},
		{"GC headroom past 16 GiB", []string{up, "GATEHOUSE_GC_HEADROOM_MIB=20000"}, "GATEHOUSE_GC_HEADROOM_MIB"},
		{"metrics listen not host:port", []string{up, "GATEHOUSE_METRICS_LISTEN=9090"}, "GATEHOUSE_METRICS_LISTEN"},
		{"metrics on the proxied port", []string{up, "GATEHOUSE_LISTEN=:8080", "GATEHOUSE_METRICS_LISTEN=:8080"}, "GATEHOUSE_METRICS_LISTEN: must differ from GATEHOUSE_LISTEN"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := loadConfig(tt.env)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v, want it to name %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "s3cr3t") {
				t.Errorf("error %q shows the password", err)
			}
		})
	}
}

// GATEHOUSE_COOKIE_NAME must be a cookie name a browser keeps: a token,
// and Secure when it carries a prefix that demands it.
func TestCookieNameSetting(t *testing.T) {
	tests := []struct {
		name, secure string
		want         string // the name in effect; "" when start-up must fail
	}{
		{"", "", "login-token"},
		{"login-token", "true", "login-token"},
		{"__Host-login-token", "true", "__Host-login-token"},
		{"__Secure-login-token", "true", "__Secure-login-token"},
		{"gh_session.v2", "false", "gh_session.v2"},
		{"__Host-login-token", "false", ""},
		{"__host-login-token", "false", ""}, // browsers match prefixes regardless of case
		{"__Secure-login-token", "false", ""},
		{"__SECURE-x", "false", ""},
		{"login token", "true", ""},
		{"login;token", "true", ""},
		{"login=token", "true", ""},
		{"(login)", "true", ""},
		{"jeton-é", "true", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name+" secure="+tt.secure, func(t *testing.T) {
			env := []string{"GATEHOUSE_UPSTREAM=http://127.0.0.1:4502"}
			if tt.name != "" {
				env = append(env, "GATEHOUSE_COOKIE_NAME="+tt.name)
			}
			if tt.secure != "" {
				env = append(env, "GATEHOUSE_COOKIE_SECURE="+tt.secure)
			}
			c, err := loadConfig(env)
			switch {
			case tt.want == "" && (err == nil || !strings.Contains(err.Error(), "GATEHOUSE_COOKIE_NAME")):
				t.Fatalf("error = %v, want one naming GATEHOUSE_COOKIE_NAME", err)
			case tt.want == "":
				if strings.HasPrefix(strings.ToLower(tt.name), "__") && !strings.Contains(err.Error(), "GATEHOUSE_COOKIE_SECURE=true") {
					t.Errorf("error = %v, want it to say how to fix it", err)
				}
			case err != nil:
				t.Fatal(err)
			case c.CookieName != tt.want:
				t.Errorf("cookie name %q, want %q", c.CookieName, tt.want)
			}
		})
	}
}

func TestPrintSettingsListsEverySetting(t *testing.T) {
	var b bytes.Buffer
	printSettings(&b)
	for _, typ := range settingsStructs {
		for field, key := range envKeysOf(typ) {
			if !strings.Contains(b.String(), key+" ") {
				t.Errorf("%s (%s) missing from the settings list", key, field)
			}
		}
	}
	if !strings.Contains(b.String(), "GATEHOUSE_LOGIN_TOKEN_TTL                   12h") {
		t.Errorf("defaults not listed:\n%s", b.String())
	}
}

// TestUnknownSettings: a misspelt variable is named; every variable the
// README's settings table lists, each _FILE variant, and the tests' and the
// benchmark's own variables are not.
func TestUnknownSettings(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	var env []string
	for _, m := range regexp.MustCompile("(?m)^\\| `(GATEHOUSE_[A-Z0-9_]+)` \\|").FindAllStringSubmatch(string(readme), -1) {
		env = append(env, m[1]+"=x")
	}
	if len(env) < 40 {
		t.Fatalf("found %d settings rows in README.md; the pattern is stale", len(env))
	}
	env = append(env, "GATEHOUSE_COOKIE_KEYS_FILE=/x", "GATEHOUSE_TEST_POSTGRES_URL=x", "GATEHOUSE_BENCH_ROLE=x", "PATH=/bin",
		"GATEHOUSE_IMS_CLIENTIDS=x", "GATEHOUSE_UPSTREAM=x", "GATEHOUSE_LISTEN_ADDR=x", "GATEHOUSE_IMS_CLIENTIDS=y")
	got := unknownSettings(env)
	if want := []string{"GATEHOUSE_IMS_CLIENTIDS", "GATEHOUSE_LISTEN_ADDR"}; !slices.Equal(got, want) {
		t.Errorf("unknownSettings = %v, want %v", got, want)
	}
}

// The README promises a table of every setting; keep it honest.
func TestREADMEListsEverySetting(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, typ := range settingsStructs {
		for i := 0; i < typ.NumField(); i++ {
			f := typ.Field(i)
			tag := f.Tag.Get("env")
			if tag == "" {
				continue
			}
			key := envPrefix + strings.Split(tag, ",")[0]
			row := "| `" + key + "` | "
			if def := f.Tag.Get("envDefault"); def != "" {
				row += "`" + def + "` |"
			}
			if !strings.Contains(string(readme), row) {
				t.Errorf("README.md has no row %q for %s", row, key)
			}
		}
	}
}
