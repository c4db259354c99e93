// Package metrics is Gatehouse's Prometheus instrumentation: one registry
// of gatehouse_* families (plus Go's and the process's), served on its own
// listener by `gatehouse serve`, never on the proxied port.
//
// The packages that do the work know nothing of Prometheus. What they
// count, they count in plain atomic counters that the families here read
// when scraped (session.Manager.Stats, bearer.Authenticator.CacheStats,
// techacct.Source.Fetches); the rest is observed from outside: the access
// log's record of each request (ObserveRequest, ObserveEgress), the HTTP
// transport to IMS (IMSTransport) and a decorator around the store
// (Store).
//
// Label values come from fixed lists: never a user id, a path or a token.
// Every labelled child the request path touches is resolved once, in New,
// so that observing a request costs no map lookup and no allocation.
package metrics

import (
	"net/http"
	"runtime"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/gatehouse-proxy/gatehouse/auth"
	"github.com/gatehouse-proxy/gatehouse/proxy"
	"github.com/gatehouse-proxy/gatehouse/proxy/plumb"
)

// namespace prefixes every family of Gatehouse's own.
const namespace = "gatehouse"

// Outcomes of a request on the proxy listener: who gave the answer.
const (
	// OutcomeUpstream: forwarded, and the upstream answered.
	OutcomeUpstream = "upstream"
	// OutcomeUpstreamError: forwarded, but the upstream gave no answer
	// (unreachable, timed out, the client's body broke or the client left);
	// Gatehouse answered, with reason UPSTREAM_* or BAD_REQUEST_BODY.
	OutcomeUpstreamError = "upstream_error"
	// OutcomeForwardAuth: forward-auth answered 200 with the identity.
	OutcomeForwardAuth = "forward_auth"
	// OutcomeGatehouse: Gatehouse answered itself: refusals (see the
	// reason), sign-in redirects, logout, not found, internal errors.
	OutcomeGatehouse = "gatehouse"
	// OutcomeProbe: a health or readiness probe, apart so that a kubelet
	// probing every few seconds does not swell the requests people make.
	OutcomeProbe = "probe"
)

var outcomes = [...]string{OutcomeUpstream, OutcomeUpstreamError, OutcomeForwardAuth, OutcomeGatehouse, OutcomeProbe}

const (
	outUpstream = iota
	outUpstreamError
	outForwardAuth
	outGatehouse
	outProbe
	numOutcomes
)

// Reason label values besides the X-Reason values themselves.
const (
	ReasonNone  = "none"  // no X-Reason
	ReasonOther = "other" // an X-Reason not in the known list
)

// knownReasons are the X-Reason values Gatehouse sends; any other value
// is counted as ReasonOther, so that the label stays bounded whatever a
// handler writes.
var knownReasons = [...]string{
	auth.ReasonExpiredToken, auth.ReasonInvalidToken, auth.ReasonNoCredential,
	auth.ReasonUnavailable, auth.ReasonServiceError, auth.ReasonForbidden,
	auth.ReasonAmbiguousCookie, auth.ReasonUserDisabled, auth.ReasonStoreUnavailable,
	proxy.ReasonUpstreamUnavailable, proxy.ReasonUpstreamTimeout, proxy.ReasonBadRequestBody,
	proxy.ReasonMethodNotAllowed, proxy.ReasonBadForwardedRequest,
}

const (
	reasonNone  = len(knownReasons)
	reasonOther = reasonNone + 1
	numReasons  = reasonOther + 1
)

// reasonIndex is the label index of an X-Reason value: a scan of a short
// list of constants, cheaper than hashing it for a map.
func reasonIndex(v string) int {
	if v == "" {
		return reasonNone
	}
	for i, k := range knownReasons {
		if v == k {
			return i
		}
	}
	return reasonOther
}

func reasonLabel(i int) string {
	switch i {
	case reasonNone:
		return ReasonNone
	case reasonOther:
		return ReasonOther
	}
	return knownReasons[i]
}

// Status classes, for the code labels of calls whose status Gatehouse
// does not choose.
var statusClasses = [...]string{"1xx", "2xx", "3xx", "4xx", "5xx"}

// classIndex is the index in statusClasses of an HTTP status; anything
// out of range counts as 5xx.
func classIndex(status int) int {
	if status < 100 || status > 599 {
		return 4
	}
	return status/100 - 1
}

// Buckets, in seconds. Gatehouse's own time is counted in microseconds
// on a warm path and in tens of milliseconds when it asks IMS or the store;
// calls over the network (the upstream, IMS) reach seconds.
var (
	ownBuckets     = []float64{.00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}
	networkBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}
	storeBuckets   = []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5}
)

// BuildInfo is what gatehouse_build_info says.
type BuildInfo struct {
	Version string // Gatehouse's version
}

// Metrics holds the registry and the pre-resolved children of every
// family that is observed per request or per call. Create it with New.
type Metrics struct {
	reg *prometheus.Registry

	requests [numOutcomes][numReasons]prometheus.Counter
	own      [numOutcomes]prometheus.Observer
	upstream prometheus.Observer
	egress   [len(statusClasses)]prometheus.Counter

	ims     *imsMetrics
	store   *storeMetrics
	signins signinCounters
}

// New returns the metrics with every family registered that does not need
// a component; the Watch methods add those that do.
func New(b BuildInfo) *Metrics {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	m := &Metrics{reg: reg}
	f := factory{reg}

	f.gaugeVec("build_info", "Always 1: the version of Gatehouse and of the Go it was built with.",
		"version", "goversion").WithLabelValues(b.Version, runtime.Version()).Set(1)

	reqs := f.counterVec("requests_total",
		"Requests on the proxy listener, by who answered (outcome) and the X-Reason of Gatehouse's answer (none without one, other for an unknown one).",
		"outcome", "reason")
	own := f.histogramVec("request_duration_seconds",
		"Gatehouse's own time on a request of the proxy listener: until the request was handed to the upstream when it was forwarded, else until the answer was written. The upstream's time is gatehouse_upstream_request_duration_seconds.",
		ownBuckets, "outcome")
	for o := range numOutcomes {
		for r := range numReasons {
			m.requests[o][r] = reqs.WithLabelValues(outcomes[o], reasonLabel(r))
		}
		m.own[o] = own.WithLabelValues(outcomes[o])
	}
	m.upstream = f.histogram("upstream_request_duration_seconds",
		"Time of the upstream's round trip, up to its response headers, of requests the upstream answered.",
		networkBuckets)

	eg := f.counterVec("egress_requests_total",
		"Requests through the egress listener, by status class of the answer the backend got (499: counted as 4xx, the backend left).",
		"code")
	for i, c := range statusClasses {
		m.egress[i] = eg.WithLabelValues(c)
	}

	m.ims = newIMSMetrics(f)
	m.store = newStoreMetrics(f)
	m.signins = newSigninCounters(f)
	return m
}

// Registry is the registry every family is in.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the metrics in Prometheus's text (or negotiated) format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		// A failing collector leaves its family out; the rest is served.
		ErrorHandling:       promhttp.ContinueOnError,
		MaxRequestsInFlight: 4,
		Timeout:             10 * time.Second,
	})
}

// ObserveRequest is the proxy listener's observer (proxy.Config.Observe):
// one request, after its access-log line.
func (m *Metrics) ObserveRequest(_ *http.Request, rec *plumb.Record, _ int, d time.Duration) {
	out, reason := outGatehouse, reasonNone
	switch {
	case rec.Probe:
		out = outProbe
	case rec.IdentityAnswered:
		out = outForwardAuth
	case rec.UpstreamAnswered:
		// The upstream's headers are its own: an X-Reason there is none
		// of Gatehouse's business.
		out = outUpstream
		m.upstream.Observe(rec.Upstream.Seconds())
	case rec.Authenticated:
		out, reason = outUpstreamError, reasonIndex(rec.Reason())
	default:
		reason = reasonIndex(rec.Reason())
	}
	m.requests[out][reason].Inc()
	if rec.Own > 0 {
		d = rec.Own
	}
	m.own[out].Observe(d.Seconds())
}

// ObserveEgress is the egress listener's observer (egress.Config.Observe).
func (m *Metrics) ObserveEgress(_ *http.Request, _ *plumb.Record, status int, _ time.Duration) {
	m.egress[classIndex(status)].Inc()
}

// factory registers families with the gatehouse_ prefix.
type factory struct{ reg prometheus.Registerer }

func (f factory) counterVec(name, help string, labels ...string) *prometheus.CounterVec {
	v := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: name, Help: help}, labels)
	f.reg.MustRegister(v)
	return v
}

func (f factory) counter(name, help string) prometheus.Counter {
	c := prometheus.NewCounter(prometheus.CounterOpts{Namespace: namespace, Name: name, Help: help})
	f.reg.MustRegister(c)
	return c
}

func (f factory) gaugeVec(name, help string, labels ...string) *prometheus.GaugeVec {
	v := prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: namespace, Name: name, Help: help}, labels)
	f.reg.MustRegister(v)
	return v
}

func (f factory) histogramVec(name, help string, buckets []float64, labels ...string) *prometheus.HistogramVec {
	v := prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: namespace, Name: name, Help: help, Buckets: buckets}, labels)
	f.reg.MustRegister(v)
	return v
}

func (f factory) histogram(name, help string, buckets []float64) prometheus.Histogram {
	h := prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: namespace, Name: name, Help: help, Buckets: buckets})
	f.reg.MustRegister(h)
	return h
}

// counterFunc registers a counter read from fn at scrape time, with the
// given constant labels (several with one name make one family).
func (f factory) counterFunc(name, help string, labels prometheus.Labels, fn func() uint64) {
	f.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Namespace: namespace, Name: name, Help: help, ConstLabels: labels,
	}, func() float64 { return float64(fn()) }))
}
