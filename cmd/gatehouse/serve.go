package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/gatehouse-proxy/gatehouse/auth/assertion"
	"github.com/gatehouse-proxy/gatehouse/auth/bearer"
	"github.com/gatehouse-proxy/gatehouse/auth/ims"
	"github.com/gatehouse-proxy/gatehouse/auth/provision"
	"github.com/gatehouse-proxy/gatehouse/auth/signin"
	"github.com/gatehouse-proxy/gatehouse/auth/techacct"
	"github.com/gatehouse-proxy/gatehouse/cmd/internal/logwriter"
	"github.com/gatehouse-proxy/gatehouse/cmd/internal/metrics"
	"github.com/gatehouse-proxy/gatehouse/proxy"
	"github.com/gatehouse-proxy/gatehouse/proxy/apicheck"
	"github.com/gatehouse-proxy/gatehouse/proxy/egress"
	"github.com/gatehouse-proxy/gatehouse/proxy/jsonlog"
	"github.com/gatehouse-proxy/gatehouse/proxy/plumb"
	"github.com/gatehouse-proxy/gatehouse/session"
	"github.com/gatehouse-proxy/gatehouse/session/postgres"
	"github.com/gatehouse-proxy/gatehouse/session/sqlite"
)

func serveCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if err := parseNoArgs("serve", args, stdout, stderr, func(w io.Writer) {
		fmt.Fprintln(w, "Usage: gatehouse serve\n\nRuns the proxy. Every setting is an environment variable:")
		fmt.Fprintln(w)
		printSettings(w)
	}); err != nil {
		return err
	}
	cfg, err := loadConfig(environ())
	if err != nil {
		return fmt.Errorf("configuration:\n%w", err)
	}
	lg, err := newLogs(cfg.LogLevel, cfg.LogFormat, stderr)
	if err != nil {
		return err
	}
	log := lg.log
	defer func() { _ = log.Sync() }()
	for _, k := range unknownSettings(environ()) {
		log.Warn("not a setting of Gatehouse's: ignored (a typo?)", zap.String("variable", k))
	}
	if t := startGCPolicy(cfg, environ(), log); t != nil {
		defer t.Stop()
	}
	a, err := newApp(ctx, cfg, lg)
	if err != nil {
		log.Error("start-up failed", zap.Error(err))
		return err
	}
	defer a.close()
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("GATEHOUSE_LISTEN: %w", err)
	}
	return a.serve(ctx, ln)
}

// parseNoArgs parses the flags of a command that takes none but -h, whose
// settings are environment variables; usage writes its help.
func parseNoArgs(name string, args []string, stdout, stderr io.Writer, usage func(io.Writer)) error {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { usage(stdout) }
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "gatehouse %s: unexpected argument %q (settings are environment variables; see -h)\n", name, fs.Arg(0))
		return errUsage
	}
	return nil
}

// logs is where Gatehouse logs: a zap logger for everything, and, when
// the log is JSON at level info or below, the access log written directly
// to the same output (plumb.AccessLogJSON: the same lines, at a third of
// the cost).
type logs struct {
	log    *zap.Logger
	access *plumb.AccessLogJSON // nil: the access log goes through log
}

// proxyLoggerName names the proxy's logger, access log included.
const proxyLoggerName = "proxy"

func newLogs(level, format string, w io.Writer) (logs, error) {
	lvl, err := zapcore.ParseLevel(level)
	if err != nil {
		return logs{}, fmt.Errorf("GATEHOUSE_LOG_LEVEL: %w", err)
	}
	// Buffered, not a write(2) per line: that cost about 3 µs of CPU per
	// proxied request, some 5% of the cookie path. See package logwriter.
	out := logwriter.New(w)
	if format == "console" {
		ec := zap.NewDevelopmentEncoderConfig()
		ec.EncodeTime = zapcore.TimeEncoderOfLayout("15:04:05.000")
		return logs{log: zap.New(zapcore.NewCore(zapcore.NewConsoleEncoder(ec), out, lvl))}, nil
	}
	// AccessLogJSON writes what this encoder would.
	ec := zap.NewProductionEncoderConfig()
	ec.EncodeTime = jsonlog.ISO8601TimeEncoder
	l := logs{log: zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(ec), out, lvl))}
	if lvl.Enabled(zapcore.InfoLevel) {
		l.access = &plumb.AccessLogJSON{W: out, Name: proxyLoggerName}
	}
	return l, nil
}

// app is a wired Gatehouse: every component, built from one config.
type app struct {
	cfg       *config
	log       *zap.Logger
	accessLog *plumb.AccessLogJSON
	store     session.Store
	keys      *ims.KeySet
	sessions  *session.Manager
	handler   http.Handler
	// keysStored: the cookie keys are the store's, which `gatehouse keys`
	// changes, not GATEHOUSE_COOKIE_KEYS.
	keysStored bool
	// changed hands the store's change notifications to every cache; nil
	// when the store sends none (SQLite: one machine).
	changed func(session.Change)

	// assertion signs the identity for the upstream; nil when
	// GATEHOUSE_ASSERTION_AUDIENCE is not set.
	assertion *assertion.Issuer

	// The egress listener's, when GATEHOUSE_EGRESS_LISTEN is set.
	tokens *techacct.Source
	egress http.Handler

	// metrics: nil unless GATEHOUSE_METRICS_LISTEN is set (see metrics.go).
	metrics *metrics.Metrics
}

func newApp(ctx context.Context, cfg *config, lg logs) (*app, error) {
	store, err := openStore(ctx, cfg)
	if err != nil {
		return nil, err
	}
	m := newMetrics(cfg)
	if m != nil {
		store = m.Store(store)
	}
	a := &app{cfg: cfg, log: lg.log, accessLog: lg.access, store: store, metrics: m}
	if err := a.wire(ctx); err != nil {
		_ = store.Close()
		return nil, err
	}
	return a, nil
}

// openStore opens the store GATEHOUSE_STORE names; cfg has passed
// checkStore. serve and the commands that work on the store use it alike.
// The PostgreSQL store's errors carry its URL with the password blanked.
func openStore(ctx context.Context, cfg *config) (session.Store, error) {
	if cfg.postgresURL != "" {
		s, err := postgres.Open(ctx, cfg.postgresURL)
		if err != nil {
			return nil, fmt.Errorf("GATEHOUSE_STORE: %w", err)
		}
		return s, nil
	}
	s, err := sqlite.Open(ctx, cfg.sqlitePath)
	if err != nil {
		return nil, fmt.Errorf("GATEHOUSE_STORE: %w", err)
	}
	return s, nil
}

func (a *app) wire(ctx context.Context) error {
	cfg, log := a.cfg, a.log
	keys, generated, err := session.LoadCookieKeys(ctx, a.store, cfg.CookieKeys)
	if err != nil {
		return fmt.Errorf("GATEHOUSE_COOKIE_KEYS: %w", err)
	}
	if generated {
		log.Info("no GATEHOUSE_COOKIE_KEYS set: using cookie keys generated once and kept in the store")
	}
	a.keysStored = generated
	if err := a.wireAssertion(ctx); err != nil {
		return err
	}
	a.sessions, err = session.NewManager(a.store, keys, session.ManagerConfig{
		TTL:          cfg.LoginTokenTTL,
		CookieName:   cfg.CookieName,
		CookieSecure: cfg.CookieSecure,
		SameSite:     cfg.sameSite,
		CacheTTL:     cacheTTL(cfg.SessionCacheTTL),
		Logger:       log.Named("session"),
	})
	if err != nil {
		return fmt.Errorf("login tokens: %w", err)
	}
	imsHTTP := &http.Client{
		Transport:     a.imsTransport(),
		Timeout:       cfg.IMSTimeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	a.keys, err = ims.NewKeySet(ims.KeySetConfig{
		JWKSURL:            cfg.IMSKeysURL,
		CertsURL:           cfg.IMSCertsURL,
		HTTPClient:         imsHTTP,
		MinRefreshInterval: cfg.IMSKeysMinRefresh,
		Logger:             log.Named("ims.keys"),
	})
	if err != nil {
		return fmt.Errorf("GATEHOUSE_IMS_KEYS_URL: %w", err)
	}
	verifier, err := ims.NewVerifier(ims.VerifierConfig{
		Keys: a.keys, Cluster: cfg.IMSCluster, ClientIDs: cfg.IMSClientIDs, ClockSkew: cfg.IMSClockSkew,
	})
	if err != nil {
		return fmt.Errorf("token verifier: %w", err)
	}
	client, err := ims.NewClient(cfg.IMSURL, imsHTTP)
	if err != nil {
		return fmt.Errorf("GATEHOUSE_IMS_URL: %w", err)
	}
	bearerAuth, err := bearer.New(bearer.Config{
		Mode: cfg.validation, Verifier: verifier, Client: client,
		ClientIDs: cfg.IMSClientIDs, Cluster: cfg.IMSCluster, ClockSkew: cfg.IMSClockSkew,
		RecheckInterval: cfg.IMSRecheckInterval, StaleIfError: cfg.IMSStaleIfError, Logger: log.Named("bearer"),
	})
	if err != nil {
		return err
	}
	if a.metrics != nil {
		a.metrics.WatchSessions(a.sessions)
		a.metrics.WatchBearer(bearerAuth)
	}
	if !bearerAuth.Enabled() {
		log.Warn("GATEHOUSE_IMS_CLIENT_IDS is empty: bearer sign-in is off; only existing login tokens are accepted")
	}
	prov, err := provision.New(provision.Config{
		IMS: client, Store: a.store, Org: cfg.IMSOrg, Mapping: cfg.mapping,
		SyncInterval: cfg.SyncInterval, StaleIfError: cfg.IMSStaleIfError,
		// One bound for what this replica trusts from memory: a change made
		// in the store by another replica or `gatehouse users` (a resync, a
		// disabled user) is seen within it.
		CacheTTL: cacheTTL(cfg.SessionCacheTTL),
		OnSync:   a.sessions.ForgetUser, Logger: log.Named("provision"),
	})
	if err != nil {
		return err
	}
	si, err := signin.New(signin.Config{
		Bearer: bearerAuth, Provisioner: prov, Sessions: a.sessions, Logger: log.Named("auth"),
	})
	if err != nil {
		return err
	}
	if _, ok := a.store.(session.Notifier); ok {
		a.changed = func(c session.Change) {
			a.sessions.Changed(c)
			prov.Changed(c)
			si.Changed(c)
			if a.assertion != nil {
				a.assertion.Changed(c)
			}
		}
	}
	authenticate := si.Middleware
	if len(cfg.APIPaths) > 0 {
		apiCheck, err := apicheck.New(apicheck.Config{Paths: cfg.APIPaths, Org: cfg.IMSOrg, Logger: log.Named("apicheck")})
		if err != nil {
			return fmt.Errorf("GATEHOUSE_API_PATHS: %w", err)
		}
		authenticate = func(h http.Handler) http.Handler { return si.Middleware(apiCheck(h)) }
		if !bearerAuth.Enabled() {
			log.Warn("GATEHOUSE_API_PATHS is set but bearer sign-in is off (GATEHOUSE_IMS_CLIENT_IDS is empty): every request on an API path is refused")
		}
	}
	browserSignIn, err := wireBrowser(cfg, a.sessions.KeyPairs, a.keys, client, imsHTTP, si, log.Named("browser"))
	if err != nil {
		return err
	}
	upstreamTransport := proxy.Transport{
		DialTimeout:           cfg.UpstreamDialTimeout,
		ResponseHeaderTimeout: cfg.UpstreamResponseHeaderTimeout,
		IdleConnTimeout:       cfg.UpstreamIdleConnTimeout,
		MaxIdleConns:          cfg.UpstreamMaxIdleConns,
		MaxIdleConnsPerHost:   cfg.UpstreamMaxIdleConnsPerHost,
		DisableDirect:         !cfg.UpstreamDirect,
	}
	if err := a.wireEgress(upstreamTransport); err != nil {
		return err
	}
	pc := proxy.Config{
		Upstream:          cfg.upstream,
		Prefix:            cfg.Prefix,
		Authenticate:      authenticate,
		Logout:            si.Logout(),
		Ready:             a.ready,
		PassAuthorization: cfg.PassAuthorization,
		PassCookie:        cfg.PassCookie,
		CookieName:        a.sessions.CookieName(),
		Transport:         upstreamTransport,
		// A client not yet signed in gets as long for its body as for its
		// headers: Gatehouse does not read that body, net/http drains it.
		UnauthenticatedBodyTimeout: cfg.ReadHeaderTimeout,
		Logger:                     log.Named(proxyLoggerName),
		AccessLog:                  a.accessLog,
		Observe:                    a.requestObserver(),
		Assertion:                  a.assertFunc(),
		JWKS:                       a.jwks(),
	}
	if browserSignIn != nil {
		pc.Endpoints, pc.BrowserSignIn, pc.Logout = browserSignIn.Endpoints(), browserSignIn, browserSignIn.Logout(pc.Logout)
	}
	a.handler, err = proxy.New(pc)
	return err
}

// wireEgress builds the technical account's token source and the egress
// handler when GATEHOUSE_EGRESS_LISTEN is set. The egress uses the same
// connection-pool settings as the upstream.
func (a *app) wireEgress(t proxy.Transport) error {
	cfg := a.cfg
	if cfg.tech == nil {
		return nil
	}
	if cfg.EgressListen == "" {
		a.log.Warn("GATEHOUSE_TECH_* is set but GATEHOUSE_EGRESS_LISTEN is not: serve does not use the technical account (gatehouse token and check-health do)")
		return nil
	}
	tc := *cfg.tech
	tc.HTTPClient = &http.Client{
		Transport:     a.imsTransport(),
		Timeout:       cfg.IMSTimeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	tc.Logger = a.log.Named("techacct")
	src, err := techacct.New(tc)
	if err != nil {
		return fmt.Errorf("technical account: %w", err)
	}
	h, err := egress.New(egress.Config{Upstream: cfg.egressUp, Tokens: src, Transport: t, Logger: a.log.Named("egress"),
		Observe: a.egressObserver()})
	if err != nil {
		return fmt.Errorf("GATEHOUSE_EGRESS_UPSTREAM: %w", err)
	}
	a.tokens, a.egress = src, h
	if a.metrics != nil {
		a.metrics.WatchTechAccount(src)
	}
	return nil
}

// cacheTTL turns the setting (0 disables) into the manager's convention
// (0 means default, negative disables).
func cacheTTL(d time.Duration) time.Duration {
	if d == 0 {
		return -1
	}
	return d
}

// ready is the readiness check: the store answers and IMS's keys are loaded.
// readyz is unauthenticated, so its answer names the failing part only; the
// detail goes to the log.
//
// The technical account's token is not part of it: readiness gates the
// users' traffic, which does not need it, and a broken technical account
// must not take sign-in down with it. The egress listener answers 503
// with the reason while it has no token, the log says why, and
// `gatehouse check-health` checks the account on its own.
func (a *app) ready(ctx context.Context) error {
	if err := a.store.Ping(ctx); err != nil {
		a.log.Warn("readiness: store unreachable", zap.Error(err))
		return errors.New("store unreachable")
	}
	if !a.keys.Ready() {
		return errors.New("IMS signing keys not loaded yet")
	}
	return nil
}

// serve runs the proxy on ln until ctx is done, then shuts down gracefully.
func (a *app) serve(ctx context.Context, ln net.Listener) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if err := a.keys.Load(ctx); err != nil {
		// Not fatal: a sidecar may start before the network is up. Readiness
		// reports it, and the key set retries on its own.
		a.log.Warn("IMS signing keys not loaded at start-up; retrying in the background", zap.Error(err))
	}
	var egressLn net.Listener
	if a.egress != nil {
		var err error
		if egressLn, err = net.Listen("tcp", a.cfg.EgressListen); err != nil {
			ln.Close()
			return fmt.Errorf("GATEHOUSE_EGRESS_LISTEN: %w", err)
		}
	}
	metricsLn, err := a.listenMetrics()
	if err != nil {
		ln.Close()
		if egressLn != nil {
			egressLn.Close()
		}
		return fmt.Errorf("GATEHOUSE_METRICS_LISTEN: %w", err)
	}
	go a.keys.Run(ctx)
	go a.sessions.RunCleanup(ctx, a.cfg.CleanupInterval)
	if a.keysStored {
		go a.sessions.RunKeyReload(ctx, a.cfg.KeysReload)
	}
	if a.assertion != nil {
		go a.assertion.RunReload(ctx, a.cfg.KeysReload)
	}
	if a.changed != nil {
		// Revocations, user changes and key rotations made through other
		// replicas reach the caches at once; while the feed is down,
		// they fall back to their TTLs.
		go a.store.(session.Notifier).WatchChanges(ctx, a.changed)
	}

	srv := &http.Server{
		Handler:           a.handler,
		ReadHeaderTimeout: a.cfg.ReadHeaderTimeout,
		IdleTimeout:       a.cfg.IdleTimeout,
		MaxHeaderBytes:    a.cfg.MaxHeaderBytes,
		ErrorLog:          zap.NewStdLog(a.log.Named("http")),
	}
	servers := []*http.Server{srv}
	errc := make(chan error, 3)
	if egressLn != nil {
		go a.tokens.Run(ctx) // the first token now, then renewals ahead of expiry
		esrv := &http.Server{
			Handler:           a.egress,
			ReadHeaderTimeout: a.cfg.ReadHeaderTimeout,
			IdleTimeout:       a.cfg.IdleTimeout,
			MaxHeaderBytes:    a.cfg.MaxHeaderBytes,
			ErrorLog:          zap.NewStdLog(a.log.Named("egress.http")),
		}
		servers = append(servers, esrv)
		go func() { errc <- esrv.Serve(egressLn) }()
		a.log.Info("egress listening", zap.String("addr", egressLn.Addr().String()),
			zap.String("upstream", a.cfg.egressUp.Redacted()), zap.String("client_id", a.tokens.ClientID()),
			zap.String("org", a.tokens.OrgID()), zap.String("method", a.cfg.tech.Method()))
		if !loopback(egressLn.Addr()) {
			a.log.Warn("the egress listener is not on a loopback address: whoever reaches it calls the API as the technical account; bind GATEHOUSE_EGRESS_LISTEN to 127.0.0.1",
				zap.String("addr", egressLn.Addr().String()))
		}
	}
	if metricsLn != nil {
		msrv := a.metricsServer()
		servers = append(servers, msrv)
		go func() { errc <- msrv.Serve(metricsLn) }()
		a.log.Info("metrics listening", zap.String("addr", metricsLn.Addr().String()))
	}
	go func() { errc <- srv.Serve(ln) }()
	a.log.Info("gatehouse listening", zap.String("addr", ln.Addr().String()),
		zap.String("upstream", a.cfg.upstream.Redacted()), zap.String("version", versionString()),
		zap.String("validation", string(a.cfg.validation)), zap.Int("client_ids", len(a.cfg.IMSClientIDs)))
	_ = a.log.Sync() // start-up lines go out now, not at the next flush: supervisors wait for them
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	a.log.Info("shutting down", zap.Duration("timeout", a.cfg.ShutdownTimeout))
	sctx, scancel := context.WithTimeout(context.Background(), a.cfg.ShutdownTimeout)
	defer scancel()
	// Both servers at once: each stops accepting and lets its requests
	// finish within the one timeout.
	shutErrs := make(chan error, len(servers))
	for _, s := range servers {
		go func() { shutErrs <- s.Shutdown(sctx) }()
	}
	var errs []error
	for range servers {
		if err := <-shutErrs; err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}

// loopback reports whether addr is a loopback address.
func loopback(addr net.Addr) bool {
	ta, ok := addr.(*net.TCPAddr)
	return ok && ta.IP.IsLoopback()
}

func (a *app) close() {
	if err := a.store.Close(); err != nil {
		a.log.Error("close store", zap.Error(err))
	}
}
