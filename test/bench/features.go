package main

import (
	"fmt"
	"net"
	"slices"
	"strings"
)

// The per-request features an operator turns on in production, each of
// which costs every request something: the access-log line, the metrics
// and the signed identity assertion. -features names the sets of them the
// paths run with, so that each feature's cost shows in one run.
const (
	featureLog       = "log"
	featureMetrics   = "metrics"
	featureAssertion = "assertion"
)

var allFeatures = []string{featureLog, featureMetrics, featureAssertion}

// featureSets are the names -features accepts: "on" is what a production
// sidecar runs with, "off" is none of it, and "no-X" is "on" without X.
func featureSet(name string) ([]string, bool) {
	switch name {
	case "on":
		return allFeatures, true
	case "off":
		return nil, true
	}
	if f, ok := strings.CutPrefix(name, "no-"); ok && slices.Contains(allFeatures, f) {
		return slices.DeleteFunc(slices.Clone(allFeatures), func(x string) bool { return x == f }), true
	}
	return nil, false
}

// parseFeatures reads -features: comma-separated set names, each once.
// The first set is the one the budget is judged on.
func parseFeatures(s string) ([]string, error) {
	var sets []string
	for name := range strings.SplitSeq(s, ",") {
		name = strings.ToLower(strings.TrimSpace(name))
		if _, ok := featureSet(name); !ok {
			return nil, fmt.Errorf("-features %q: unknown set %q (want on, off, no-log, no-metrics or no-assertion)", s, name)
		}
		if slices.Contains(sets, name) {
			return nil, fmt.Errorf("-features %q: %q given twice", s, name)
		}
		sets = append(sets, name)
	}
	return sets, nil
}

// Settings of the assertion the benchmark turns on; the upstream does not
// verify it (that is the upstream's cost, not Gatehouse's).
const (
	benchPublicURL = "https://gatehouse.bench.example"
	benchAudience  = "bench-backend"
)

// featureEnv returns Gatehouse's settings for the set: the access log is
// on at the default level and off at warn; metrics listen on a free
// loopback port of their own.
func featureEnv(set string) ([]string, error) {
	on, _ := featureSet(set)
	var env []string
	if !slices.Contains(on, featureLog) {
		// Without info lines Gatehouse does not log its address: give it one.
		addr, err := freeLoopbackAddr()
		if err != nil {
			return nil, fmt.Errorf("a port for gatehouse: %w", err)
		}
		env = append(env, "GATEHOUSE_LOG_LEVEL=warn", "GATEHOUSE_LISTEN="+addr)
	}
	if slices.Contains(on, featureMetrics) {
		addr, err := freeLoopbackAddr()
		if err != nil {
			return nil, fmt.Errorf("a port for metrics: %w", err)
		}
		env = append(env, "GATEHOUSE_METRICS_LISTEN="+addr)
	}
	if slices.Contains(on, featureAssertion) {
		env = append(env, "GATEHOUSE_PUBLIC_URL="+benchPublicURL, "GATEHOUSE_ASSERTION_AUDIENCE="+benchAudience)
	}
	return env, nil
}

// describeFeatures says what a set turns on, for the report.
func describeFeatures(set string) string {
	on, _ := featureSet(set)
	if len(on) == 0 {
		return set + ": access log, metrics and assertion all off"
	}
	return set + ": " + strings.Join(on, ", ") + " on"
}

func freeLoopbackAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// variantLabel names a store and feature set in the report's tables; a
// run of SQLite alone with one feature set has no label, and reads as
// runs always did.
func variantLabel(store, features string, manyStores, manySets bool) string {
	var parts []string
	if manyStores || store != storeSQLite {
		parts = append(parts, store)
	}
	if manySets {
		parts = append(parts, "features "+features)
	}
	return strings.Join(parts, ", ")
}
