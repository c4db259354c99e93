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

	"github.com/gatehouse-proxy/gatehouse/auth/bearer"
	"github.com/gatehouse-proxy/gatehouse/auth/ims"
	"github.com/gatehouse-proxy/gatehouse/auth/provision"
	"github.com/gatehouse-proxy/gatehouse/auth/signin"
	"github.com/gatehouse-proxy/gatehouse/proxy"
	"github.com/gatehouse-proxy/gatehouse/session"
	"github.com/gatehouse-proxy/gatehouse/session/sqlite"
)

func serveCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stdout, "Usage: gatehouse serve\n\nRuns the proxy. Every setting is an environment variable:")
		fmt.Fprintln(stdout)
		printSettings(stdout)
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "gatehouse serve: unexpected argument %q (settings are environment variables; see -h)\n", fs.Arg(0))
		return errUsage
	}
	cfg, err := loadConfig(environ())
	if err != nil {
		return fmt.Errorf("configuration:\n%w", err)
	}
	log, err := newLogger(cfg.LogLevel, cfg.LogFormat, stderr)
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()
	a, err := newApp(ctx, cfg, log)
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

func newLogger(level, format string, w io.Writer) (*zap.Logger, error) {
	lvl, err := zapcore.ParseLevel(level)
	if err != nil {
		return nil, fmt.Errorf("GATEHOUSE_LOG_LEVEL: %w", err)
	}
	var enc zapcore.Encoder
	if format == "console" {
		ec := zap.NewDevelopmentEncoderConfig()
		ec.EncodeTime = zapcore.TimeEncoderOfLayout("15:04:05.000")
		enc = zapcore.NewConsoleEncoder(ec)
	} else {
		ec := zap.NewProductionEncoderConfig()
		ec.EncodeTime = zapcore.ISO8601TimeEncoder
		enc = zapcore.NewJSONEncoder(ec)
	}
	return zap.New(zapcore.NewCore(enc, zapcore.Lock(zapcore.AddSync(w)), lvl)), nil
}

// app is a wired Gatehouse: every component, built from one config.
type app struct {
	cfg      *config
	log      *zap.Logger
	store    session.Store
	keys     *ims.KeySet
	sessions *session.Manager
	handler  http.Handler
}

func newApp(ctx context.Context, cfg *config, log *zap.Logger) (*app, error) {
	store, err := sqlite.Open(ctx, cfg.sqlitePath)
	if err != nil {
		return nil, fmt.Errorf("GATEHOUSE_STORE: %w", err)
	}
	a := &app{cfg: cfg, log: log, store: store}
	if err := a.wire(ctx); err != nil {
		_ = store.Close()
		return nil, err
	}
	return a, nil
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
	a.sessions, err = session.NewManager(a.store, keys, session.ManagerConfig{
		TTL:          cfg.LoginTokenTTL,
		CookieSecure: cfg.CookieSecure,
		SameSite:     cfg.sameSite,
		CacheTTL:     cacheTTL(cfg.SessionCacheTTL),
		Logger:       log.Named("session"),
	})
	if err != nil {
		return fmt.Errorf("login tokens: %w", err)
	}
	imsHTTP := &http.Client{
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
		RecheckInterval: cfg.IMSRecheckInterval,
	})
	if err != nil {
		return err
	}
	if !bearerAuth.Enabled() {
		log.Warn("GATEHOUSE_IMS_CLIENT_IDS is empty: bearer sign-in is off; only existing login tokens are accepted")
	}
	prov, err := provision.New(provision.Config{
		IMS: client, Store: a.store, Org: cfg.IMSOrg, Mapping: cfg.mapping,
		SyncInterval: cfg.SyncInterval, OnSync: a.sessions.ForgetUser, Logger: log.Named("provision"),
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
	a.handler, err = proxy.New(proxy.Config{
		Upstream:          cfg.upstream,
		Prefix:            cfg.Prefix,
		Authenticate:      si.Middleware,
		Logout:            si.Logout(),
		Ready:             a.ready,
		PassAuthorization: cfg.PassAuthorization,
		PassCookie:        cfg.PassCookie,
		CookieName:        a.sessions.CookieName(),
		Transport: proxy.Transport{
			DialTimeout:           cfg.UpstreamDialTimeout,
			ResponseHeaderTimeout: cfg.UpstreamResponseHeaderTimeout,
			IdleConnTimeout:       cfg.UpstreamIdleConnTimeout,
			MaxIdleConns:          cfg.UpstreamMaxIdleConns,
			MaxIdleConnsPerHost:   cfg.UpstreamMaxIdleConnsPerHost,
		},
		Logger: log.Named("proxy"),
	})
	return err
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
	go a.keys.Run(ctx)
	go a.sessions.RunCleanup(ctx, a.cfg.CleanupInterval)

	srv := &http.Server{
		Handler:           a.handler,
		ReadHeaderTimeout: a.cfg.ReadHeaderTimeout,
		IdleTimeout:       a.cfg.IdleTimeout,
		MaxHeaderBytes:    a.cfg.MaxHeaderBytes,
		ErrorLog:          zap.NewStdLog(a.log.Named("http")),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	a.log.Info("gatehouse listening", zap.String("addr", ln.Addr().String()),
		zap.String("upstream", a.cfg.upstream.Redacted()), zap.String("version", versionString()),
		zap.String("validation", string(a.cfg.validation)), zap.Int("client_ids", len(a.cfg.IMSClientIDs)))
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	a.log.Info("shutting down", zap.Duration("timeout", a.cfg.ShutdownTimeout))
	sctx, scancel := context.WithTimeout(context.Background(), a.cfg.ShutdownTimeout)
	defer scancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}

func (a *app) close() {
	if err := a.store.Close(); err != nil {
		a.log.Error("close store", zap.Error(err))
	}
}
