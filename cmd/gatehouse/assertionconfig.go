package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/gatehouse-proxy/gatehouse/auth"
	"github.com/gatehouse-proxy/gatehouse/auth/assertion"
)

// maxAudienceLen bounds GATEHOUSE_ASSERTION_AUDIENCE: it is copied into
// every assertion.
const maxAudienceLen = 256

// validateAssertion checks the assertion's settings: PUBLIC_URL (its iss)
// must be an http(s) URL and is required once ASSERTION_AUDIENCE turns the
// assertion on, so that a half-filled configuration stops start-up naming
// what is missing instead of signing assertions no upstream can check.
func (c *config) validateAssertion() error {
	var errs []error
	bad := func(name, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s%s: %s", envPrefix, name, fmt.Sprintf(format, args...)))
	}
	if c.PublicURL != "" {
		// An origin: browser sign-in appends the prefix to it, and an
		// upstream compares the assertion's iss with it as it is.
		if u, err := url.Parse(c.PublicURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
			u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
			bad("PUBLIC_URL", "%q: want an origin, scheme and host only, e.g. https://assets.example.com", c.PublicURL)
		} else {
			c.PublicURL = strings.TrimSuffix(c.PublicURL, "/")
		}
	}
	if c.AssertionAudience == "" {
		return errors.Join(errs...)
	}
	if c.PublicURL == "" {
		bad("PUBLIC_URL", "required when GATEHOUSE_ASSERTION_AUDIENCE is set: the assertion's issuer, the URL clients reach Gatehouse at, e.g. https://assets.example.com")
	}
	if len(c.AssertionAudience) > maxAudienceLen || !printable(c.AssertionAudience) {
		bad("ASSERTION_AUDIENCE", "want at most %d printable characters naming the upstream, e.g. aem-author", maxAudienceLen)
	}
	if c.AssertionLifetime < assertion.MinLifetime || c.AssertionLifetime > assertion.MaxLifetime {
		bad("ASSERTION_LIFETIME", "%s: want between %s and %s", c.AssertionLifetime, assertion.MinLifetime, assertion.MaxLifetime)
	}
	return errors.Join(errs...)
}

// printable reports whether s has no control characters.
func printable(s string) bool {
	for _, r := range s {
		if r < ' ' || r == 0x7f {
			return false
		}
	}
	return true
}

// wireAssertion makes the assertion's Issuer when
// GATEHOUSE_ASSERTION_AUDIENCE is set. Its keys are kept in the store
// (the first replica to start makes them), whatever the cookie keys' source:
// there is no setting for them, since every replica must sign with the
// same key and the store is what they share.
func (a *app) wireAssertion(ctx context.Context) error {
	cfg := a.cfg
	if cfg.AssertionAudience == "" {
		return nil
	}
	keys, err := assertion.Load(ctx, a.store, time.Now())
	if err != nil {
		return fmt.Errorf("GATEHOUSE_ASSERTION_AUDIENCE: %w", err)
	}
	a.assertion, err = assertion.New(assertion.Config{
		Issuer: cfg.PublicURL, Audience: cfg.AssertionAudience, Lifetime: cfg.AssertionLifetime,
		Store: a.store, Logger: a.log.Named("assertion"),
	}, keys)
	if err != nil {
		return fmt.Errorf("GATEHOUSE_ASSERTION_AUDIENCE: %w", err)
	}
	a.log.Info("signing identity assertions", zap.String("iss", cfg.PublicURL), zap.String("aud", cfg.AssertionAudience),
		zap.Duration("lifetime", cfg.AssertionLifetime), zap.String("kid", keys[0].ID))
	return nil
}

// assertFunc and jwks are the proxy's Config.Assertion and JWKS: nil when
// the assertion is off.
func (a *app) assertFunc() func(*auth.Identity) string {
	if a.assertion == nil {
		return nil
	}
	return a.assertion.Assertion
}

func (a *app) jwks() http.Handler {
	if a.assertion == nil {
		return nil
	}
	return a.assertion.JWKS()
}
