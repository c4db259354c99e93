package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gatehouse-proxy/gatehouse/auth/browser"
)

func TestBrowserSettings(t *testing.T) {
	secretFile := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secretFile, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	base := []string{"GATEHOUSE_UPSTREAM=http://127.0.0.1:4502"}
	tests := []struct {
		name    string
		env     []string
		on      bool
		wantErr []string // each must appear in the error
	}{
		{"off", nil, false, nil},
		{"on", []string{"GATEHOUSE_BROWSER_CLIENT_ID=web", "GATEHOUSE_PUBLIC_URL=https://aem.example.com"}, true, nil},
		{"secret from a file", []string{"GATEHOUSE_BROWSER_CLIENT_ID=web", "GATEHOUSE_PUBLIC_URL=https://aem.example.com/",
			"GATEHOUSE_BROWSER_CLIENT_SECRET_FILE=" + secretFile}, true, nil},
		{"no public URL", []string{"GATEHOUSE_BROWSER_CLIENT_ID=web"}, false, []string{"GATEHOUSE_PUBLIC_URL", "required"}},
		{"public URL with a path", []string{"GATEHOUSE_BROWSER_CLIENT_ID=web", "GATEHOUSE_PUBLIC_URL=https://aem.example.com/aem"}, false,
			[]string{"GATEHOUSE_PUBLIC_URL"}},
		{"secret without client id", []string{"GATEHOUSE_BROWSER_CLIENT_SECRET=x"}, false,
			[]string{"GATEHOUSE_BROWSER_CLIENT_ID", "GATEHOUSE_BROWSER_CLIENT_SECRET"}},
		{"sign-out URL without client id", []string{"GATEHOUSE_BROWSER_SIGNOUT_URL=https://ims.example.com/ims/logout/v1"}, false,
			[]string{"GATEHOUSE_BROWSER_CLIENT_ID", "GATEHOUSE_BROWSER_SIGNOUT_URL"}},
		{"both secrets", []string{"GATEHOUSE_BROWSER_CLIENT_ID=web", "GATEHOUSE_PUBLIC_URL=https://aem.example.com",
			"GATEHOUSE_BROWSER_CLIENT_SECRET=x", "GATEHOUSE_BROWSER_CLIENT_SECRET_FILE=" + secretFile}, false,
			[]string{"GATEHOUSE_BROWSER_CLIENT_SECRET and GATEHOUSE_BROWSER_CLIENT_SECRET_FILE"}},
		{"relative sign-out URL", []string{"GATEHOUSE_BROWSER_CLIENT_ID=web", "GATEHOUSE_PUBLIC_URL=https://aem.example.com",
			"GATEHOUSE_BROWSER_SIGNOUT_URL=/bye"}, false, []string{"GATEHOUSE_BROWSER_SIGNOUT_URL"}},
		{"plain HTTP with Secure cookies", []string{"GATEHOUSE_BROWSER_CLIENT_ID=web", "GATEHOUSE_PUBLIC_URL=http://aem.example.com"}, false,
			[]string{"GATEHOUSE_PUBLIC_URL", "GATEHOUSE_COOKIE_SECURE"}},
		{"plain HTTP for development", []string{"GATEHOUSE_BROWSER_CLIENT_ID=web", "GATEHOUSE_PUBLIC_URL=http://127.0.0.1:8080",
			"GATEHOUSE_COOKIE_SECURE=false"}, true, nil},
		{"empty scopes", []string{"GATEHOUSE_BROWSER_CLIENT_ID=web", "GATEHOUSE_PUBLIC_URL=https://aem.example.com",
			"GATEHOUSE_BROWSER_SCOPES= , "}, false, []string{"GATEHOUSE_BROWSER_SCOPES"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := loadConfig(append(slices.Clone(base), tt.env...))
			if len(tt.wantErr) > 0 {
				if err == nil {
					t.Fatal("accepted")
				}
				for _, s := range tt.wantErr {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("error %q does not name %q", err, s)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if (c.browser != nil) != tt.on {
				t.Fatalf("browser sign-in on = %v, want %v", c.browser != nil, tt.on)
			}
			if tt.on && (!strings.Contains(c.browser.publicURL, "://") || strings.HasSuffix(c.browser.publicURL, "/") || !slices.Equal(c.browser.scopes, browser.DefaultScopes)) {
				t.Errorf("config %+v", c.browser)
			}
			if tt.name == "secret from a file" && c.browser.clientSecret != "s3cret" {
				t.Error("the secret file was not read")
			}
		})
	}
}
