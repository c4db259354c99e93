package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
	"reflect"
	"strings"
	"time"

	"github.com/gatehouse-proxy/gatehouse/auth/techacct"
)

// tokenTimeout bounds `gatehouse token` and `gatehouse check-health`.
const tokenTimeout = 45 * time.Second

// certCommand is `gatehouse cert create`: a key pair for the JWT exchange.
func certCommand(_ context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "create" {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "-help" || args[0] == "--help" || args[0] == "help") {
			certUsage(stdout, nil)
			return nil
		}
		certUsage(stderr, nil)
		return errUsage
	}
	flags := flag.NewFlagSet("cert create", flag.ContinueOnError)
	flags.SetOutput(stderr)
	out := flags.String("out", "", "directory to write "+techacct.PrivateKeyFile+" and "+techacct.CertificateFile+" to (created if missing; required)")
	days := flags.Int("days", techacct.DefaultCertDays, "days the certificate is valid")
	subject := flags.String("subject", techacct.DefaultCertSubject, "certificate subject, e.g. /CN=gatehouse/O=Example")
	force := flags.Bool("force", false, "replace an existing key pair in --out")
	flags.Usage = func() { certUsage(stdout, flags) }
	if err := flags.Parse(args[1:]); err != nil {
		return err
	}
	switch {
	case flags.NArg() > 0:
		fmt.Fprintf(stderr, "gatehouse cert create: unexpected argument %q\n", flags.Arg(0))
		return errUsage
	case *out == "":
		fmt.Fprintln(stderr, "gatehouse cert create: --out DIR is required: the directory for the private key and the certificate")
		return errUsage
	case *days <= 0:
		fmt.Fprintf(stderr, "gatehouse cert create: --days %d: must be at least 1\n", *days)
		return errUsage
	}
	keyPath, certPath, err := techacct.CreateKeyPair(*out, *days, *subject, *force)
	if errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("cert create: %s already holds a key pair (%s, %s); not overwritten: keep it, choose another --out, or pass --force to replace it (then upload the new certificate)",
			*out, techacct.PrivateKeyFile, techacct.CertificateFile)
	}
	if err != nil {
		return fmt.Errorf("cert %w", err)
	}
	if abs, err := filepath.Abs(keyPath); err == nil {
		keyPath = abs
	}
	if abs, err := filepath.Abs(certPath); err == nil {
		certPath = abs
	}
	fmt.Fprintf(stdout, `Created a key pair for the JWT exchange:
  private key:  %s  (mode 0600: keep it secret, never upload it)
  certificate:  %s  (valid %d days)

Next:
  1. Upload %s to the integration's JWT credential in the developer console.
  2. Set GATEHOUSE_TECH_PRIVATE_KEY=%s
     (with GATEHOUSE_TECH_CLIENT_ID, _CLIENT_SECRET, _ORG_ID, _ACCOUNT_ID and _METASCOPES)
  3. Run 'gatehouse check-health'.
`, keyPath, certPath, *days, techacct.CertificateFile, keyPath)
	return nil
}

func certUsage(w io.Writer, fs *flag.FlagSet) {
	fmt.Fprint(w, `Usage: gatehouse cert create --out DIR [--days N] [--subject /CN=…] [--force]

Creates a private key (`+techacct.PrivateKeyFile+`, PEM PKCS#8, RSA 2048, mode 0600) and a
self-signed certificate for it (`+techacct.CertificateFile+`) to upload to the developer
console for the JWT exchange. Existing files are not overwritten without --force.

`)
	if fs != nil {
		fs.SetOutput(w)
		fs.PrintDefaults()
	}
}

// tokenCommand is `gatehouse token`: a fresh access token of the technical
// account on stdout, and nothing else there.
func tokenCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	src, err := techSource("token", args, stdout, stderr,
		"Prints a fresh access token of the technical account, and nothing else, on stdout:\n  curl -H \"Authorization: Bearer $(gatehouse token)\" …")
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, tokenTimeout)
	defer cancel()
	token, err := src.Token(ctx)
	if err != nil {
		return fmt.Errorf("token: %w", err)
	}
	fmt.Fprintln(stdout, token)
	return nil
}

// checkHealthCommand is `gatehouse check-health`: can the technical account
// obtain a token?
func checkHealthCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	src, err := techSource("check-health", args, stdout, stderr,
		"Obtains an access token for the technical account and prints \"Token retrieved successfully\",\nor says why it could not and exits with status 1.")
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, tokenTimeout)
	defer cancel()
	if _, err := src.Token(ctx); err != nil {
		return fmt.Errorf("check-health: no token: %w", err)
	}
	fmt.Fprintln(stdout, "Token retrieved successfully")
	return nil
}

// techSource parses the command's (absent) flags and builds the technical
// account's token source from the GATEHOUSE_TECH_* variables alone.
func techSource(name string, args []string, stdout, stderr io.Writer, about string) (*techacct.Source, error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stdout, "Usage: gatehouse %s\n\n%s\n\nSettings (environment variables):\n\n", name, about)
		printTable(stdout, reflect.TypeOf(techSettings{}))
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "gatehouse %s: unexpected argument %q (settings are GATEHOUSE_TECH_* variables; see -h)\n", name, fs.Arg(0))
		return nil, errUsage
	}
	vars := environMap(environ())
	cfg, err := loadTechConfig(vars)
	if err != nil {
		return nil, fmt.Errorf("%s: settings:\n%w", name, err)
	}
	src, err := techacct.New(*cfg)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return src, nil
}

// environMap turns os.Environ()-style pairs into a map.
func environMap(environ []string) map[string]string {
	vars := make(map[string]string, len(environ))
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			vars[k] = v
		}
	}
	return vars
}
