package metrics

import (
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// IMS endpoints, the endpoint label of the IMS families. A call to a URL
// none of them matches is "other".
var imsEndpoints = [...]string{"validate_token", "profile", "organizations", "exchange_jwt", "token", "keys", "certs", "other"}

const (
	epValidateToken = iota
	epProfile
	epOrganizations
	epExchangeJWT
	epToken
	epKeys
	epCerts
	epOther
	numEndpoints
)

// imsPaths maps a path prefix to its endpoint; the version that follows
// it does not matter.
var imsPaths = [...]struct {
	prefix string
	ep     int
}{
	{"/ims/validate_token/", epValidateToken},
	{"/ims/profile/", epProfile},
	{"/ims/organizations/", epOrganizations},
	{"/ims/exchange/jwt", epExchangeJWT},
	{"/ims/token/", epToken},
}

// imsCodes is the code label: the status class of IMS's answer, or error
// when there was none (unreachable, timed out).
var imsCodes = [...]string{"1xx", "2xx", "3xx", "4xx", "5xx", "error"}

const codeError = len(statusClasses)

type imsMetrics struct {
	calls     [numEndpoints][len(imsCodes)]prometheus.Counter
	durations [numEndpoints]prometheus.Observer
	keyFetch  [2]prometheus.Counter // ok, error
}

func newIMSMetrics(f factory) *imsMetrics {
	calls := f.counterVec("ims_requests_total",
		"Calls to IMS, by endpoint and status class of the answer (error: none came).", "endpoint", "code")
	dur := f.histogramVec("ims_request_duration_seconds",
		"Time of calls to IMS, up to the response headers, by endpoint.", networkBuckets, "endpoint")
	kf := f.counterVec("ims_key_set_fetches_total",
		"Fetches of IMS's signing-key set (GATEHOUSE_IMS_KEYS_URL), by result (ok: a 2xx answer).", "result")
	m := &imsMetrics{keyFetch: [2]prometheus.Counter{kf.WithLabelValues("ok"), kf.WithLabelValues("error")}}
	for e, name := range imsEndpoints {
		for c, code := range imsCodes {
			m.calls[e][c] = calls.WithLabelValues(name, code)
		}
		m.durations[e] = dur.WithLabelValues(name)
	}
	return m
}

// IMSTransport returns next, instrumented: every call is counted in
// gatehouse_ims_requests_total and timed. keysURL is the key set's URL,
// whose fetches are also counted in gatehouse_ims_key_set_fetches_total;
// certsURL ("" for none) is the base of the certificates' URLs. Use it
// for every HTTP client that talks to IMS.
func (m *Metrics) IMSTransport(next http.RoundTripper, keysURL, certsURL string) http.RoundTripper {
	if next == nil {
		next = http.DefaultTransport
	}
	return &imsTransport{next: next, m: m.ims, keysURL: stripQuery(keysURL), certsURL: certsURL}
}

type imsTransport struct {
	next              http.RoundTripper
	m                 *imsMetrics
	keysURL, certsURL string
}

func (t *imsTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	ep := t.endpoint(req)
	start := time.Now()
	res, err := t.next.RoundTrip(req)
	t.m.durations[ep].Observe(time.Since(start).Seconds())
	code := codeError
	if err == nil {
		code = classIndex(res.StatusCode)
	}
	t.m.calls[ep][code].Inc()
	if ep == epKeys {
		if code == 1 { // 2xx
			t.m.keyFetch[0].Inc()
		} else {
			t.m.keyFetch[1].Inc()
		}
	}
	return res, err
}

// endpoint names the IMS endpoint req calls; never the path itself, which
// is not a bounded value.
func (t *imsTransport) endpoint(req *http.Request) int {
	u := *req.URL
	u.RawQuery, u.Fragment = "", ""
	s := u.String()
	switch {
	case s == t.keysURL:
		return epKeys
	case t.certsURL != "" && strings.HasPrefix(s, t.certsURL):
		return epCerts
	}
	for _, p := range imsPaths {
		if strings.HasPrefix(req.URL.Path, p.prefix) {
			return p.ep
		}
	}
	return epOther
}

func stripQuery(s string) string {
	s, _, _ = strings.Cut(s, "?")
	return s
}
