package test

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestConfigErrors runs the binary with one bad setting at a time: it must
// refuse to start, with exit status 1 and a message naming the variable.
func TestConfigErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		env     map[string]string // over a valid base; unset removes
		wantVar string
	}{
		{"missing UPSTREAM", map[string]string{"UPSTREAM": unset}, "GATEHOUSE_UPSTREAM"},
		{"LOGIN_TOKEN_TTL not a duration", map[string]string{"LOGIN_TOKEN_TTL": "abc"}, "GATEHOUSE_LOGIN_TOKEN_TTL"},
		{"IMS_VALIDATION unknown", map[string]string{"IMS_VALIDATION": "sometimes"}, "GATEHOUSE_IMS_VALIDATION"},
		{"SameSite=None without Secure", map[string]string{"COOKIE_SAMESITE": "none", "COOKIE_SECURE": "false"}, "GATEHOUSE_COOKIE_SAMESITE"},
		{"STORE of an unknown kind", map[string]string{"STORE": "redis://x"}, "GATEHOUSE_STORE"},
		{"GROUP_MAPPING malformed", map[string]string{"GROUP_MAPPING": "bad"}, "GATEHOUSE_GROUP_MAPPING"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			vars := map[string]string{
				"LISTEN":        "127.0.0.1:0",
				"UPSTREAM":      "http://127.0.0.1:9",
				"IMS_URL":       "http://127.0.0.1:9",
				"STORE":         "sqlite:" + filepath.Join(t.TempDir(), "g.db"),
				"COOKIE_SECURE": "false",
				"LOG_FORMAT":    "json",
			}
			for k, v := range tc.env {
				if v == unset {
					delete(vars, k)
				} else {
					vars[k] = v
				}
			}
			env := cleanEnv()
			for k, v := range vars {
				env = append(env, "GATEHOUSE_"+k+"="+v)
			}
			code, _, stderr := runBinary(t, 10*time.Second, env, "serve")
			if code != 1 {
				t.Errorf("exit status %d, want 1; stderr:\n%s", code, stderr)
			}
			if !strings.Contains(stderr, tc.wantVar) {
				t.Errorf("stderr does not name %s:\n%s", tc.wantVar, stderr)
			}
			// Only the bad setting is blamed: the base is valid.
			for _, line := range strings.Split(stderr, "\n") {
				if strings.HasPrefix(line, "GATEHOUSE_") && !strings.HasPrefix(line, tc.wantVar+":") {
					t.Errorf("stderr blames another setting: %q", line)
				}
			}
		})
	}

	t.Run("serve -h", func(t *testing.T) {
		t.Parallel()
		code, stdout, stderr := runBinary(t, 10*time.Second, nil, "serve", "-h")
		if code != 0 {
			t.Fatalf("exit status %d, want 0; stderr:\n%s", code, stderr)
		}
		defaults := map[string]string{}
		header := false
		for _, line := range strings.Split(stdout, "\n") {
			f := strings.Fields(line)
			switch {
			case len(f) >= 3 && f[0] == "VARIABLE" && f[1] == "DEFAULT":
				header = true
			case len(f) >= 3 && strings.HasPrefix(f[0], "GATEHOUSE_"):
				defaults[f[0]] = f[1]
			}
		}
		if !header {
			t.Errorf("no VARIABLE DEFAULT MEANING table in:\n%s", stdout)
		}
		for name, def := range map[string]string{
			"GATEHOUSE_UPSTREAM":        "-", // required: no default
			"GATEHOUSE_COOKIE_KEYS":     "-", // generated and kept in the store
			"GATEHOUSE_LISTEN":          ":8080",
			"GATEHOUSE_COOKIE_SECURE":   "true",
			"GATEHOUSE_LOGIN_TOKEN_TTL": "12h",
			"GATEHOUSE_IMS_VALIDATION":  "both",
		} {
			got, ok := defaults[name]
			switch {
			case !ok:
				t.Errorf("serve -h does not list %s", name)
			case got != def:
				t.Errorf("serve -h gives %s the default %q, want %q", name, got, def)
			}
		}
	})

	t.Run("version", func(t *testing.T) {
		t.Parallel()
		code, stdout, stderr := runBinary(t, 10*time.Second, nil, "version")
		if code != 0 || !strings.HasPrefix(stdout, "gatehouse ") {
			t.Errorf("exit status %d, stdout %q, stderr %q; want 0 and \"gatehouse <version>\"", code, stdout, stderr)
		}
	})

	t.Run("unknown command", func(t *testing.T) {
		t.Parallel()
		code, _, stderr := runBinary(t, 10*time.Second, nil, "frobnicate")
		if code != 2 || !strings.Contains(stderr, "frobnicate") {
			t.Errorf("exit status %d, stderr %q; want 2 and the command named", code, stderr)
		}
	})
}

// TestDemo runs `gatehouse demo`, the whole flow in one process, and
// expects every step to pass.
func TestDemo(t *testing.T) {
	t.Parallel()
	code, stdout, stderr := runBinary(t, 60*time.Second, nil, "demo")
	if code != 0 {
		t.Fatalf("exit status %d, want 0\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	if !strings.Contains(stdout, "All 12 steps behaved") {
		t.Errorf("no \"All 12 steps behaved\" in:\n%s", stdout)
	}
	ok := 0
	for _, line := range strings.Split(stdout, "\n") {
		switch {
		case strings.HasPrefix(line, "FAIL"):
			t.Errorf("failed step: %s", line)
		case strings.HasPrefix(line, "ok "):
			ok++
		}
	}
	if ok != 12 {
		t.Errorf("%d steps reported ok, want 12:\n%s", ok, stdout)
	}
}

// TestCheckConfig: check-config checks the settings, the store, IMS's keys
// and the technical account without serving, one line each, and exits 1
// with every failure named at once.
func TestCheckConfig(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	addTechAccount(w.ims.Emulator, techClientID, time.Hour)
	closed := func() string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		return "http://" + ln.Addr().String()
	}()
	for _, tc := range []struct {
		name string
		env  map[string]string
		code int
		want []string
		not  []string
	}{
		{"all good, store not created yet", nil, 0,
			[]string{"ok    settings:", "ok    store: reachable (SQLite ", "ok    IMS signing keys: loaded from " + w.ims.URL, "configuration OK"},
			[]string{"FAIL", "warn", "technical account"}},
		{"with a technical account", techVars("client_credentials", ""), 0,
			[]string{"ok    technical account: a token was obtained (client_credentials)", "configuration OK"}, []string{"FAIL"}},
		{"a misspelt setting", map[string]string{"IMS_CLIENTIDS": "x"}, 0,
			[]string{"warn  GATEHOUSE_IMS_CLIENTIDS is not a setting", "configuration OK"}, nil},
		{"a bad setting", map[string]string{"IMS_VALIDATION": "sometimes"}, 1,
			[]string{"FAIL  settings:", "GATEHOUSE_IMS_VALIDATION"}, []string{"ok    store", "configuration OK"}},
		{"IMS down and the store's directory missing", map[string]string{"IMS_URL": closed, "STORE": "sqlite:/nonexistent/dir/g.db"}, 1,
			[]string{"ok    settings:", "FAIL  store: GATEHOUSE_STORE: /nonexistent/dir/g.db does not exist yet", "FAIL  IMS signing keys: GATEHOUSE_IMS_KEYS_URL"},
			[]string{"configuration OK"}},
		{"a technical account IMS refuses", merge(techVars("client_credentials", ""), map[string]string{"TECH_CLIENT_SECRET": "wrong"}), 1,
			[]string{"FAIL  technical account:", "invalid_client"}, []string{"wrong", "configuration OK"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			vars := merge(w.baseEnv(), tc.env)
			vars["STORE"] = "sqlite:" + filepath.Join(t.TempDir(), "g.db")
			if s, ok := tc.env["STORE"]; ok {
				vars["STORE"] = s
			}
			code, stdout, stderr := runBinary(t, 30*time.Second, envOf(vars), "check-config")
			if code != tc.code {
				t.Errorf("exit %d, want %d; stdout:\n%s\nstderr:\n%s", code, tc.code, stdout, stderr)
			}
			for _, s := range tc.want {
				if !strings.Contains(stdout, s) {
					t.Errorf("stdout lacks %q:\n%s", s, stdout)
				}
			}
			for _, s := range tc.not {
				if strings.Contains(stdout+stderr, s) {
					t.Errorf("output has %q:\n%s%s", s, stdout, stderr)
				}
			}
			if p := strings.TrimPrefix(vars["STORE"], "sqlite:"); tc.code == 0 {
				if _, err := os.Stat(p); err == nil {
					t.Errorf("check-config created the store %s", p)
				}
			}
		})
	}
}
