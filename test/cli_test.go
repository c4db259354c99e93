package test

import (
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
