package main

import (
	"strings"
	"testing"
	"time"
)

func TestAssertionSettings(t *testing.T) {
	base := []string{"GATEHOUSE_UPSTREAM=http://127.0.0.1:4502"}
	tests := []struct {
		name     string
		env      []string
		errHas   []string // all in the error; none: no error
		iss, aud string
		lifetime time.Duration
	}{
		{name: "off by default", lifetime: 2 * time.Minute},
		{name: "on", env: []string{"GATEHOUSE_PUBLIC_URL=https://assets.example.com/", "GATEHOUSE_ASSERTION_AUDIENCE=aem-author", "GATEHOUSE_ASSERTION_LIFETIME=5m"},
			iss: "https://assets.example.com", aud: "aem-author", lifetime: 5 * time.Minute},
		{name: "public URL alone (browser sign-in's)", env: []string{"GATEHOUSE_PUBLIC_URL=https://assets.example.com"},
			iss: "https://assets.example.com", lifetime: 2 * time.Minute},
		{name: "audience without public URL", env: []string{"GATEHOUSE_ASSERTION_AUDIENCE=aem-author"},
			errHas: []string{"GATEHOUSE_PUBLIC_URL", "required when GATEHOUSE_ASSERTION_AUDIENCE is set"}},
		{name: "lifetime over 5m", env: []string{"GATEHOUSE_PUBLIC_URL=https://a.example", "GATEHOUSE_ASSERTION_AUDIENCE=x", "GATEHOUSE_ASSERTION_LIFETIME=6m"},
			errHas: []string{"GATEHOUSE_ASSERTION_LIFETIME", "5m0s"}},
		{name: "lifetime too short", env: []string{"GATEHOUSE_PUBLIC_URL=https://a.example", "GATEHOUSE_ASSERTION_AUDIENCE=x", "GATEHOUSE_ASSERTION_LIFETIME=1s"},
			errHas: []string{"GATEHOUSE_ASSERTION_LIFETIME"}},
		{name: "public URL not http", env: []string{"GATEHOUSE_PUBLIC_URL=ftp://a.example"}, errHas: []string{"GATEHOUSE_PUBLIC_URL"}},
		{name: "public URL with a query", env: []string{"GATEHOUSE_PUBLIC_URL=https://a.example/?x=1"}, errHas: []string{"GATEHOUSE_PUBLIC_URL", "want an origin"}},
		{name: "public URL with a path", env: []string{"GATEHOUSE_PUBLIC_URL=https://a.example/assets"}, errHas: []string{"GATEHOUSE_PUBLIC_URL", "want an origin"}},
		{name: "audience with control characters", env: []string{"GATEHOUSE_PUBLIC_URL=https://a.example", "GATEHOUSE_ASSERTION_AUDIENCE=a\nb"},
			errHas: []string{"GATEHOUSE_ASSERTION_AUDIENCE"}},
		{name: "audience too long", env: []string{"GATEHOUSE_PUBLIC_URL=https://a.example", "GATEHOUSE_ASSERTION_AUDIENCE=" + strings.Repeat("a", maxAudienceLen+1)},
			errHas: []string{"GATEHOUSE_ASSERTION_AUDIENCE"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := loadConfig(append(append([]string{}, base...), tt.env...))
			if len(tt.errHas) > 0 {
				if err == nil {
					t.Fatal("accepted")
				}
				for _, w := range tt.errHas {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not say %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.PublicURL != tt.iss || c.AssertionAudience != tt.aud || c.AssertionLifetime != tt.lifetime {
				t.Errorf("got %q %q %s, want %q %q %s", c.PublicURL, c.AssertionAudience, c.AssertionLifetime, tt.iss, tt.aud, tt.lifetime)
			}
		})
	}
}
