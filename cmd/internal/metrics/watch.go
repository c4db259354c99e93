package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gatehouse-proxy/gatehouse/session"
)

// The components whose own counters the metrics read at scrape time.
// Interfaces, so that tests can stand in for them.
type (
	// Sessions is a *session.Manager.
	Sessions interface{ Stats() session.Stats }
	// BearerCache is a *bearer.Authenticator.
	BearerCache interface{ CacheStats() (hits, misses uint64) }
	// TechAccount is a *techacct.Source.
	TechAccount interface {
		ExpiresAt() time.Time
		Fetches() (ok, failed uint64)
	}
)

const (
	cacheHelp  = "Lookups in Gatehouse's in-memory caches, by cache (cookie: login tokens by cookie; bearer: validated bearer tokens) and result."
	tokensHelp = "Login tokens by event: issued at sign-in, refreshed (extended to a full lifetime), revoked (logout), purged (expired, deleted by the cleanup)."
)

// WatchSessions adds the families the login-token manager counts: login
// tokens issued, refreshed, revoked and purged, and the cookie cache.
func (m *Metrics) WatchSessions(s Sessions) {
	f := factory{m.reg}
	for event, get := range map[string]func(session.Stats) uint64{
		"issued":    func(st session.Stats) uint64 { return st.Issued },
		"refreshed": func(st session.Stats) uint64 { return st.Refreshed },
		"revoked":   func(st session.Stats) uint64 { return st.Revoked },
		"purged":    func(st session.Stats) uint64 { return st.Purged },
	} {
		f.counterFunc("login_tokens_total", tokensHelp, prometheus.Labels{"event": event},
			func() uint64 { return get(s.Stats()) })
	}
	f.counterFunc("cache_lookups_total", cacheHelp, prometheus.Labels{"cache": "cookie", "result": "hit"},
		func() uint64 { return s.Stats().CacheHits })
	f.counterFunc("cache_lookups_total", cacheHelp, prometheus.Labels{"cache": "cookie", "result": "miss"},
		func() uint64 { return s.Stats().CacheMisses })
}

// WatchBearer adds the bearer-token cache to gatehouse_cache_lookups_total.
func (m *Metrics) WatchBearer(b BearerCache) {
	f := factory{m.reg}
	f.counterFunc("cache_lookups_total", cacheHelp, prometheus.Labels{"cache": "bearer", "result": "hit"},
		func() uint64 { h, _ := b.CacheStats(); return h })
	f.counterFunc("cache_lookups_total", cacheHelp, prometheus.Labels{"cache": "bearer", "result": "miss"},
		func() uint64 { _, mi := b.CacheStats(); return mi })
}

// WatchTechAccount adds the technical account's families: its token's
// expiry and the attempts to obtain one.
func (m *Metrics) WatchTechAccount(t TechAccount) {
	f := factory{m.reg}
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: namespace, Name: "techacct_token_expiry_timestamp_seconds",
		Help: "Unix time at which the technical account's current access token expires; 0 before the first one.",
	}, func() float64 {
		at := t.ExpiresAt()
		if at.IsZero() {
			return 0
		}
		return float64(at.UnixNano()) / 1e9
	}))
	const help = "Attempts to obtain the technical account's access token from IMS (the first one, and each renewal), by result."
	f.counterFunc("techacct_token_renewals_total", help, prometheus.Labels{"result": "ok"},
		func() uint64 { ok, _ := t.Fetches(); return ok })
	f.counterFunc("techacct_token_renewals_total", help, prometheus.Labels{"result": "error"},
		func() uint64 { _, failed := t.Fetches(); return failed })
}
