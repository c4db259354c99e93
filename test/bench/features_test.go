package main

import (
	"bytes"
	"slices"
	"strings"
	"testing"
)

func TestParseFeatures(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
		err  bool
	}{
		{"on,off", []string{"on", "off"}, false},
		{" On , no-metrics", []string{"on", "no-metrics"}, false},
		{"no-log,no-assertion", []string{"no-log", "no-assertion"}, false},
		{"on,on", nil, true},
		{"all", nil, true},
		{"no-cache", nil, true},
		{"", nil, true},
	} {
		got, err := parseFeatures(tc.in)
		if !slices.Equal(got, tc.want) || (err != nil) != tc.err {
			t.Errorf("parseFeatures(%q) = %v, %v; want %v, error %v", tc.in, got, err, tc.want, tc.err)
		}
	}
}

// TestFeatureEnv: each set turns on exactly its features' settings.
func TestFeatureEnv(t *testing.T) {
	for _, tc := range []struct {
		set                      string
		logOff, metrics, asserts bool
	}{
		{"on", false, true, true},
		{"off", true, false, false},
		{"no-log", true, true, true},
		{"no-metrics", false, false, true},
		{"no-assertion", false, true, false},
	} {
		env, err := featureEnv(tc.set)
		if err != nil {
			t.Fatal(err)
		}
		joined := strings.Join(env, " ")
		if got := strings.Contains(joined, "GATEHOUSE_LOG_LEVEL=warn"); got != tc.logOff {
			t.Errorf("%s: log off = %v in %q", tc.set, got, joined)
		}
		if got := strings.Contains(joined, "GATEHOUSE_METRICS_LISTEN=127.0.0.1:"); got != tc.metrics {
			t.Errorf("%s: metrics = %v in %q", tc.set, got, joined)
		}
		if got := strings.Contains(joined, "GATEHOUSE_ASSERTION_AUDIENCE="+benchAudience) &&
			strings.Contains(joined, "GATEHOUSE_PUBLIC_URL="+benchPublicURL); got != tc.asserts {
			t.Errorf("%s: assertion = %v in %q", tc.set, got, joined)
		}
	}
}

func TestVariantLabel(t *testing.T) {
	for _, tc := range []struct {
		store, set   string
		stores, sets bool
		want         string
	}{
		{"sqlite", "on", false, false, ""},
		{"postgres", "on", false, false, "postgres"},
		{"sqlite", "off", true, true, "sqlite, features off"},
		{"sqlite", "off", false, true, "features off"},
	} {
		if got := variantLabel(tc.store, tc.set, tc.stores, tc.sets); got != tc.want {
			t.Errorf("variantLabel(%q, %q, %v, %v) = %q; want %q", tc.store, tc.set, tc.stores, tc.sets, got, tc.want)
		}
	}
}

// TestFeaturesReport: the budget is judged on the first feature set only;
// the others are reported side by side.
func TestFeaturesReport(t *testing.T) {
	path := func(label, set string, ratio float64) *pathResult {
		return &pathResult{Name: "cookie", Store: label, Features: set, Budget: budgets["cookie"].text, Ratio: ratio, Gatehouse: series{RPS: 20000 * ratio, P99ms: 3}}
	}
	r := &results{
		Settings: settingsInfo{Stores: []string{"sqlite"}, Features: []string{"on", "off"},
			FeatureSets: []string{describeFeatures("on"), describeFeatures("off")},
			Variants:    []string{"features on", "features off"}},
		Paths: []*pathResult{path("features on", "on", 0.96), path("features off", "off", 0.5)},
	}
	r.evaluate(options{})
	if len(r.Budget) == 0 || r.Budget[0].Item != "cookie (features on) path" || !*r.Budget[0].Met {
		t.Fatalf("budget = %+v; want the features-on cookie path, met", r.Budget)
	}
	for _, b := range r.Budget {
		if strings.Contains(b.Item, "features off") {
			t.Errorf("the features-off line is judged: %+v", b)
		}
	}
	var buf bytes.Buffer
	r.print(&buf)
	for _, want := range []string{
		"| path | features on req/s | features on × bare | features on p99 | features off req/s |",
		"| cookie | 19200 | 0.960× | 3.00 ms | 10000 | 0.500× | 3.00 ms |",
		"on: log, metrics, assertion on; off: access log, metrics and assertion all off",
		"| cookie (features off) | ",
	} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, buf.String())
		}
	}
	if strings.Contains(buf.String(), "| cookie (features off) | 0 | 10000 | 0.500× | 0.00 ms | 0.00 ms | 0.00 ms | 3.00 ms | 0 → 0 µs | ≥") {
		t.Errorf("the features-off row shows a budget:\n%s", buf.String())
	}
}
