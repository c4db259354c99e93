package main

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"reflect"
	"strings"

	"github.com/caarlos0/env/v11"
	"go.uber.org/zap"

	"github.com/gatehouse-proxy/gatehouse/auth/bearer"
	"github.com/gatehouse-proxy/gatehouse/auth/browser"
	"github.com/gatehouse-proxy/gatehouse/auth/ims"
	"github.com/gatehouse-proxy/gatehouse/auth/signin"
	"github.com/gatehouse-proxy/gatehouse/proxy/apicheck"
	"github.com/gatehouse-proxy/gatehouse/session"
)

// browserSettings are the browser sign-in's settings (see auth/browser).
// Browser sign-in is on while BROWSER_CLIENT_ID is set. It builds its
// redirect_uri from GATEHOUSE_PUBLIC_URL, a setting of config's, which the
// signed assertion reads too.
type browserSettings struct {
	ClientID         string   `env:"BROWSER_CLIENT_ID" help:"IMS client id of the web credential browsers sign in with (authorization code + PKCE); accepted for tokens from that sign-in only; empty: browsers get 401 like any client"`
	ClientSecret     string   `env:"BROWSER_CLIENT_SECRET" help:"the web credential's client secret, sent with the code exchange; empty: PKCE alone (a public client)"`
	ClientSecretFile string   `env:"BROWSER_CLIENT_SECRET_FILE" help:"file holding the browser client secret instead (a mounted secret; one trailing newline is ignored); not both"`
	Scopes           []string `env:"BROWSER_SCOPES" envSeparator:"," envDefault:"openid,AdobeID,read_organizations" help:"scopes browser sign-in asks IMS for, comma separated"`
	SignOutURL       string   `env:"BROWSER_SIGNOUT_URL" help:"where <PREFIX>sign-out sends the browser afterwards, e.g. IMS's logout page; empty: a 'You are signed out' page"`
}

// browserConfig is the browser sign-in's checked settings; nil when it is
// off.
type browserConfig struct {
	publicURL    string
	clientID     string
	clientSecret string // never logged
	scopes       []string
	signOutURL   string
}

// loadBrowserConfig reads the browser sign-in's settings from vars. It
// returns nil when BROWSER_CLIENT_ID is not set, and an error naming the
// variables when the settings are half filled or malformed. cookieSecure
// is GATEHOUSE_COOKIE_SECURE.
func loadBrowserConfig(vars map[string]string, cookieSecure bool, publicURL string) (*browserConfig, error) {
	var s browserSettings
	if err := env.ParseWithOptions(&s, env.Options{Prefix: envPrefix, Environment: vars}); err != nil {
		return nil, describeEnvError(err, envKeysOf(reflect.TypeOf(browserSettings{})))
	}
	var errs []error
	bad := func(name, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s%s: %s", envPrefix, name, fmt.Sprintf(format, args...)))
	}
	secret, err := secretSetting(vars, "BROWSER_CLIENT_SECRET")
	if err != nil {
		errs = append(errs, err)
	}
	clientID := strings.TrimSpace(s.ClientID)
	if clientID == "" {
		// Off: but a setting that only means something with it is a
		// half-filled configuration, not a choice.
		var set []string
		for _, k := range []string{"BROWSER_CLIENT_SECRET", "BROWSER_CLIENT_SECRET_FILE", "BROWSER_SIGNOUT_URL"} {
			if vars[envPrefix+k] != "" {
				set = append(set, envPrefix+k)
			}
		}
		if len(set) > 0 {
			bad("BROWSER_CLIENT_ID", "not set, but %s is: set the browser client id to turn browser sign-in on, or unset them", strings.Join(set, ", "))
		}
		return nil, errors.Join(errs...)
	}
	switch {
	case publicURL == "":
		bad("PUBLIC_URL", "required with %sBROWSER_CLIENT_ID: the origin browsers reach Gatehouse at, e.g. https://aem.example.com", envPrefix)
	case cookieSecure && strings.HasPrefix(strings.ToLower(publicURL), "http://"):
		// A browser keeps Secure cookies from HTTPS pages only: every
		// sign-in would end without a cookie and start again.
		bad("PUBLIC_URL", "%q is plain HTTP, where browsers drop the Secure login-token cookie (%sCOOKIE_SECURE=true): use https, or COOKIE_SECURE=false for development", publicURL, envPrefix)
	}
	scopes := listSetting(s.Scopes)
	if len(scopes) == 0 {
		bad("BROWSER_SCOPES", "empty: name at least openid,AdobeID")
	}
	if s.SignOutURL != "" {
		if u, err := url.Parse(s.SignOutURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("BROWSER_SIGNOUT_URL", "%q: want an absolute http or https URL", s.SignOutURL)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return &browserConfig{publicURL: strings.TrimSuffix(publicURL, "/"), clientID: clientID, clientSecret: secret,
		scopes: scopes, signOutURL: s.SignOutURL}, nil
}

// wireBrowser builds the browser sign-in when it is on (nil otherwise).
// Tokens from its code exchange are validated by an authenticator of
// their own, whose allow-list is the browser client id alone: that id is
// accepted for tokens Gatehouse obtained itself, never for a bearer token
// a client sends, and the bearer ids are not accepted here.
func wireBrowser(cfg *config, keys func() []session.KeyPair, ks *ims.KeySet, client *ims.Client, httpc *http.Client,
	si *signin.Handler, log *zap.Logger) (*browser.Handler, error) {
	bc := cfg.browser
	if bc == nil {
		return nil, nil
	}
	ids := []string{bc.clientID}
	verifier, err := ims.NewVerifier(ims.VerifierConfig{Keys: ks, Cluster: cfg.IMSCluster, ClientIDs: ids, ClockSkew: cfg.IMSClockSkew})
	if err != nil {
		return nil, fmt.Errorf("browser sign-in: token verifier: %w", err)
	}
	tokens, err := bearer.New(bearer.Config{
		Mode: cfg.validation, Verifier: verifier, Client: client, ClientIDs: ids, Cluster: cfg.IMSCluster,
		ClockSkew: cfg.IMSClockSkew, RecheckInterval: cfg.IMSRecheckInterval, StaleIfError: cfg.IMSStaleIfError,
		Logger: log.Named("bearer"),
	})
	if err != nil {
		return nil, fmt.Errorf("browser sign-in: %w", err)
	}
	var isAPI func(string) bool
	if m, err := apicheck.Matcher(cfg.APIPaths); err == nil && m != nil {
		isAPI = m.Match
	}
	h, err := browser.New(browser.Config{
		IMSURL: cfg.IMSURL, ClientID: bc.clientID, ClientSecret: bc.clientSecret, PublicURL: bc.publicURL,
		Prefix: cfg.Prefix, Scopes: bc.scopes, SignOutURL: bc.signOutURL, KeysNow: keys, CookieSecure: cfg.CookieSecure,
		SignIn: func(w http.ResponseWriter, r *http.Request, token string) error {
			_, err := si.SignInToken(w, r, tokens, token)
			return err
		},
		SignOut: si.SignOut, IsAPIPath: isAPI, HTTPClient: httpc, Logger: log,
	})
	if err != nil {
		return nil, err
	}
	log.Info("browser sign-in on", zap.String("client_id", bc.clientID), zap.String("redirect_uri", h.RedirectURI()),
		zap.Bool("client_secret", bc.clientSecret != ""))
	return h, nil
}
