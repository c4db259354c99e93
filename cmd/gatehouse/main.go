// Command gatehouse is an authenticating reverse proxy for AEM-Author-like
// content backends: it signs desktop clients in with IMS bearer tokens,
// keeps them signed in with a login-token cookie, and forwards their
// requests with their identity.
//
// Usage:
//
//	gatehouse serve          run the proxy (settings: GATEHOUSE_* variables; -h lists them)
//	gatehouse demo           run the whole sign-in flow on loopback and report each step
//	gatehouse cert create    make a key pair for a technical account's JWT exchange
//	gatehouse token          print an access token of the technical account (GATEHOUSE_TECH_*)
//	gatehouse check-health   check that the technical account obtains a token
//	gatehouse check-config   check serve's settings, store, IMS keys and technical account without serving
//	gatehouse ims-emulator   run the IMS emulator alone
//	gatehouse healthcheck    probe a running gatehouse (for container HEALTHCHECKs)
//	gatehouse keys           rotate, drop or list the cookie keys kept in the store
//	gatehouse users          list, show, resync, disable or enable the users in the store
//	gatehouse tokens         revoke login tokens in the store
//	gatehouse version        print the version
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

// errUsage marks a command-line mistake: exit status 2.
var errUsage = errors.New("usage")

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
	case errors.Is(err, errUsage):
		os.Exit(2)
	default:
		fmt.Fprintf(os.Stderr, "gatehouse: %v\n", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		usage(stderr)
		return errUsage
	}
	switch cmd, rest := args[0], args[1:]; cmd {
	case "serve":
		return serveCommand(ctx, rest, stdout, stderr)
	case "demo":
		return demoCommand(ctx, rest, stdout, stderr)
	case "ims-emulator":
		return emulatorCommand(ctx, rest, stdout, stderr)
	case "healthcheck":
		return healthcheckCommand(ctx, rest, stdout, stderr)
	case "cert":
		return certCommand(ctx, rest, stdout, stderr)
	case "token":
		return tokenCommand(ctx, rest, stdout, stderr)
	case "check-health":
		return checkHealthCommand(ctx, rest, stdout, stderr)
	case "check-config":
		return checkConfigCommand(ctx, rest, stdout, stderr)
	case "keys":
		return keysCommand(ctx, rest, stdout, stderr)
	case "users":
		return usersCommand(ctx, rest, stdout, stderr)
	case "tokens":
		return tokensCommand(ctx, rest, stdout, stderr)
	case "version", "-version", "--version":
		fmt.Fprintln(stdout, "gatehouse", versionString())
		return nil
	case "help", "-h", "-help", "--help":
		usage(stdout)
		return nil
	default:
		fmt.Fprintf(stderr, "gatehouse: unknown command %q\n\n", cmd)
		usage(stderr)
		return errUsage
	}
}

func usage(w io.Writer) {
	fmt.Fprint(w, `Gatehouse: an authenticating reverse proxy for content backends.

Usage:
  gatehouse serve          run the proxy; settings are GATEHOUSE_* variables ('gatehouse serve -h' lists them)
  gatehouse demo [--keep]  run the desktop sign-in flow on loopback and report each step
  gatehouse ims-emulator   run the IMS emulator alone ('gatehouse ims-emulator -h')
  gatehouse healthcheck    ask a running gatehouse for /gatehouse/healthz (-ready: readyz); for container HEALTHCHECKs
  gatehouse check-config   check serve's settings, the store, IMS's keys and the technical account, without serving
  gatehouse version        print the version

Cookie keys kept in the store (GATEHOUSE_STORE), shared by every replica ('gatehouse keys -h'):
  gatehouse keys rotate    make a new pair that signs from now on; the older pairs still verify
  gatehouse keys drop-old  keep only the newest pair
  gatehouse keys list      the pairs: fingerprint and creation time (--json: one JSON document)

Users and login tokens in the store (GATEHOUSE_STORE); USER is an IMS user id or an e-mail ('gatehouse users -h'):
  gatehouse users list     every user: e-mail, name, groups, login tokens, last sync, disabled (--json)
  gatehouse users show USER
                           profile, organizations, groups with their source, login tokens
  gatehouse users resync USER
                           the next bearer sign-in syncs the user from IMS again
  gatehouse users disable USER | enable USER
                           refuse the user (403 USER_DISABLED) and revoke their tokens, or let them in again
  gatehouse tokens revoke --user USER | --token ID
                           revoke all of a user's login tokens, or one

Technical accounts (settings: GATEHOUSE_TECH_* variables; 'gatehouse token -h' lists them):
  gatehouse cert create --out DIR [--days N] [--subject /CN=…] [--force]
                           make a private key and the certificate to upload to the developer console
  gatehouse token          print a fresh access token, and nothing else, on stdout
  gatehouse check-health   print "Token retrieved successfully", or why not (exit status 1)
`)
}

func versionString() string {
	if version != "dev" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				return "dev-" + s.Value[:12]
			}
		}
	}
	return version
}
