package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"
)

// healthcheckCommand asks a running Gatehouse whether it is alive (or, with
// -ready, ready). It exists for container HEALTHCHECKs: the image has no
// shell and no curl.
func healthcheckCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("healthcheck", flag.ContinueOnError)
	fs.SetOutput(stderr)
	ready := fs.Bool("ready", false, "check readiness (store and IMS keys) instead of liveness")
	if err := fs.Parse(args); err != nil {
		return err
	}
	listen, prefix := ":8080", "/gatehouse/"
	for _, kv := range environ() {
		if v, ok := strings.CutPrefix(kv, envPrefix+"LISTEN="); ok && v != "" {
			listen = v
		}
		if v, ok := strings.CutPrefix(kv, envPrefix+"PREFIX="); ok && v != "" {
			prefix = v
		}
	}
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return fmt.Errorf("GATEHOUSE_LISTEN: %w", err)
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	path := prefix + "healthz"
	if *ready {
		path = prefix + "readyz"
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+net.JoinHostPort(host, port)+path, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("healthcheck: %s: %s", resp.Status, strings.TrimSpace(string(body)))
	}
	fmt.Fprintln(stdout, strings.TrimSpace(string(body)))
	return nil
}
