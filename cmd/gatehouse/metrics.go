package main

import (
	"net"
	"net/http"
	"time"

	"go.uber.org/zap"

	"github.com/gatehouse-proxy/gatehouse/cmd/internal/metrics"
	"github.com/gatehouse-proxy/gatehouse/proxy/plumb"
)

// The wiring of the Prometheus metrics (GATEHOUSE_METRICS_LISTEN). Every
// helper here is a no-op when the metrics are off (a.metrics nil), so that
// serve.go only calls them.

// observer is the type of the listeners' per-request observers.
type observer = func(r *http.Request, rec *plumb.Record, status int, d time.Duration)

// newMetrics returns the metrics when GATEHOUSE_METRICS_LISTEN is set,
// else nil.
func newMetrics(cfg *config) *metrics.Metrics {
	if cfg.MetricsListen == "" {
		return nil
	}
	return metrics.New(metrics.BuildInfo{Version: versionString()})
}

// imsTransport is the transport of the HTTP clients that call IMS:
// instrumented with the metrics on, nil (net/http's default) otherwise.
func (a *app) imsTransport() http.RoundTripper {
	if a.metrics == nil {
		return nil
	}
	return a.metrics.IMSTransport(nil, a.cfg.IMSKeysURL, a.cfg.IMSCertsURL)
}

// requestObserver is the proxy listener's observer; nil with the metrics
// off (not a method value of a nil *Metrics, which would not be nil).
func (a *app) requestObserver() observer {
	if a.metrics == nil {
		return nil
	}
	return a.metrics.ObserveRequest
}

// egressObserver is the egress listener's observer; nil with the metrics
// off.
func (a *app) egressObserver() observer {
	if a.metrics == nil {
		return nil
	}
	return a.metrics.ObserveEgress
}

// metricsServer returns the server of the metrics listener: /metrics and
// nothing else, with the same client timeouts as the other listeners.
func (a *app) metricsServer() *http.Server {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", a.metrics.Handler())
	return &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: a.cfg.ReadHeaderTimeout,
		IdleTimeout:       a.cfg.IdleTimeout,
		MaxHeaderBytes:    a.cfg.MaxHeaderBytes,
		ErrorLog:          zap.NewStdLog(a.log.Named("metrics.http")),
	}
}

// listenMetrics opens the metrics listener; nil with the metrics off. A
// listener that cannot bind stops start-up: metrics must not be dropped
// silently.
func (a *app) listenMetrics() (net.Listener, error) {
	if a.metrics == nil {
		return nil, nil
	}
	return net.Listen("tcp", a.cfg.MetricsListen)
}
