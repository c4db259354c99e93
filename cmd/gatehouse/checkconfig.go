package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/gatehouse-proxy/gatehouse/auth/ims"
	"github.com/gatehouse-proxy/gatehouse/auth/techacct"
)

// checkConfigCommand is `gatehouse check-config`: everything serve checks
// before it listens, without listening. It reads the settings, opens the
// store, loads IMS's keys and, when a technical account is set, obtains a
// token; it prints one line per check and exits 1 when any failed. An
// operator runs it before a rollout (or as an init container) to learn
// every problem at once, not one per crash loop.
func checkConfigCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if err := parseNoArgs("check-config", args, stdout, stderr, func(w io.Writer) {
		fmt.Fprintln(w, "Usage: gatehouse check-config\n\nChecks serve's settings (the GATEHOUSE_* variables, as 'gatehouse serve -h' lists them),\nopens the store, loads IMS's signing keys and, when a technical account is set, obtains\na token for it, without serving. Prints one line per check; exits 1 if any failed.")
	}); err != nil {
		return err
	}
	env := environ()
	failed := 0
	report := func(name string, err error, ok string) {
		if err != nil {
			failed++
			fmt.Fprintf(stdout, "FAIL  %s: %s\n", name, indent(err.Error()))
			return
		}
		fmt.Fprintf(stdout, "ok    %s: %s\n", name, ok)
	}
	for _, k := range unknownSettings(env) {
		fmt.Fprintf(stdout, "warn  %s is not a setting of Gatehouse's and is ignored (a typo?)\n", k)
	}
	cfg, err := loadConfig(env)
	report("settings", err, "every GATEHOUSE_* variable is valid")
	if err != nil {
		return fmt.Errorf("check-config: the settings are invalid; fix them first, then the store and IMS are checked")
	}
	report("store", checkStoreReachable(ctx, cfg), "reachable ("+storeKind(cfg)+")")
	n, err := checkIMSKeys(ctx, cfg)
	report("IMS signing keys", err, n)
	if cfg.tech != nil {
		report("technical account", checkTechToken(ctx, cfg.tech), "a token was obtained ("+cfg.tech.Method()+")")
	}
	if failed > 0 {
		return fmt.Errorf("check-config: %d check(s) failed", failed)
	}
	fmt.Fprintln(stdout, "configuration OK")
	return nil
}

// indent keeps a multi-line reason under its check.
func indent(s string) string { return strings.ReplaceAll(s, "\n", "\n      ") }

func storeKind(cfg *config) string {
	if cfg.postgresURL != "" {
		return "PostgreSQL " + redactedStore(cfg.postgresURL)
	}
	return "SQLite " + cfg.sqlitePath
}

// checkStoreReachable opens the store as serve does and pings it. A SQLite
// file that does not exist yet is not created: its directory must take
// it.
func checkStoreReachable(ctx context.Context, cfg *config) error {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if cfg.postgresURL == "" {
		if _, err := os.Stat(cfg.sqlitePath); errors.Is(err, os.ErrNotExist) {
			dir := filepath.Dir(cfg.sqlitePath)
			f, err := os.CreateTemp(dir, ".gatehouse-check-*")
			if err != nil {
				return fmt.Errorf("GATEHOUSE_STORE: %s does not exist yet, and its directory cannot take it: %w", cfg.sqlitePath, err)
			}
			name := f.Name()
			f.Close()
			return os.Remove(name)
		}
	}
	s, err := openStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer s.Close()
	if err := s.Ping(ctx); err != nil {
		return fmt.Errorf("GATEHOUSE_STORE: ping: %w", err)
	}
	return nil
}

// checkIMSKeys loads IMS's key set as serve does before it is ready.
func checkIMSKeys(ctx context.Context, cfg *config) (string, error) {
	if cfg.IMSKeysURL == "" {
		return "none configured (GATEHOUSE_IMS_KEYS_URL is empty): tokens are checked by IMS alone", nil
	}
	keys, err := ims.NewKeySet(ims.KeySetConfig{
		JWKSURL:    cfg.IMSKeysURL,
		CertsURL:   cfg.IMSCertsURL,
		HTTPClient: &http.Client{Timeout: cfg.IMSTimeout, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
	})
	if err != nil {
		return "", fmt.Errorf("GATEHOUSE_IMS_KEYS_URL: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.IMSTimeout)
	defer cancel()
	if err := keys.Load(ctx); err != nil {
		return "", fmt.Errorf("GATEHOUSE_IMS_KEYS_URL: %w", err)
	}
	return "loaded from " + cfg.IMSKeysURL, nil
}

func checkTechToken(ctx context.Context, tc *techacct.Config) error {
	src, err := techacct.New(*tc)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, tokenTimeout)
	defer cancel()
	_, err = src.Token(ctx)
	return err
}

// unknownSettings lists the GATEHOUSE_* variables in env that no setting
// reads, sorted: a misspelt setting is otherwise silently ignored. The
// test suite's own variables (GATEHOUSE_TEST_*) and the benchmark's
// (GATEHOUSE_BENCH_*) are not settings but are expected.
func unknownSettings(env []string) []string {
	known := map[string]bool{}
	for _, t := range settingsStructs {
		for _, k := range envKeysOf(t) {
			known[k] = true
			known[k+"_FILE"] = true // secretSetting's file variant
		}
	}
	var out []string
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, envPrefix) && !known[k] &&
			!strings.HasPrefix(k, envPrefix+"TEST_") && !strings.HasPrefix(k, envPrefix+"BENCH_") {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}
