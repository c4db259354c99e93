// Package techacct obtains and renews the access token of an IMS technical
// account, the credentials an integration uses to call APIs behind Adobe's
// API gateway: by the JWT exchange (a JWT signed with the integration's
// private key, traded at /ims/exchange/jwt; deprecated but in use) or by
// OAuth server-to-server client credentials (/ims/token/v3). A Source
// caches the token, renews it before it expires (in the background with
// Run, one renewal at a time however many callers), backs off on failures,
// and turns IMS's refusals into messages that name the setting to fix.
//
// It also creates the key pair whose certificate an integrator uploads to
// the developer console (CreateKeyPair) and loads the private key
// (LoadPrivateKey). See shared/ims.md for the formats.
package techacct

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/gatehouse-proxy/gatehouse/auth/ims"
)

// Renewal timing.
const (
	// renewAtFraction: a token is renewed once this part of its lifetime
	// has passed (80%), which leaves the last fifth to retry failures in.
	renewAtFraction = 0.8
	// maxSafety is the most a token is cut short of its expiry: one that
	// expires sooner than min(maxSafety, lifetime/10) is not handed out.
	maxSafety = 10 * time.Second
	// First and longest wait after a failed fetch; it doubles in between.
	minBackoff = time.Second
	maxBackoff = time.Minute
	// maxRetryAfter bounds how long IMS's Retry-After can hold us off.
	maxRetryAfter = 5 * time.Minute
	// fetchTimeout bounds one fetch, whatever HTTPClient says.
	fetchTimeout = 30 * time.Second
)

// Source hands out the technical account's access token. It is safe for
// concurrent use. Create it with New; call Run in the background to renew
// ahead of expiry.
type Source struct {
	cfg    Config
	method string
	client *ims.Client
	log    *zap.Logger

	mu        sync.Mutex
	token     string
	expiresAt time.Time
	renewAt   time.Time // start renewing from here
	usableTil time.Time // hand the token out until here (expiresAt less a safety margin)
	fl        *flight   // the fetch under way, or nil
	failures  int       // consecutive failed fetches
	lastErr   error     // of the last fetch, when it failed
	retryAt   time.Time // no new fetch before this after a failure
	changed   chan struct{}

	// Counted for the metrics (Fetches).
	fetched, fetchFailed atomic.Uint64
}

// flight is one fetch that concurrent callers share. It is not a
// singleflight.Group: a fetch's start and end change the backoff and
// renewal state under mu in the same step (Run reads whether one is under
// way to decide its next wake-up), which a Group, whose calls are visible
// only by joining them, cannot do. There is one key and a fetch every
// several minutes, so nothing is to be gained in speed either.
type flight struct {
	done  chan struct{} // closed when token or err is set
	token string
	err   error
}

func (f *flight) wait(ctx context.Context) (string, error) {
	// A caller that has already given up gets its answer, not a token the
	// fetch may have brought in the meantime: select picks at random
	// among ready cases.
	if err := ctx.Err(); err != nil {
		return "", err
	}
	select {
	case <-f.done:
		return f.token, f.err
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// New checks cfg (see Config.Validate; the error is then a *ConfigError)
// and returns a Source holding no token yet: the first Token fetches one.
func New(cfg Config) (*Source, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.normalized()
	client, err := ims.NewClient(cfg.IMSURL, cfg.HTTPClient)
	if err != nil {
		return nil, &ConfigError{Invalid: []FieldError{{"IMSURL", err.Error()}}}
	}
	return &Source{
		cfg:     cfg,
		method:  cfg.Method(),
		client:  client,
		log:     cfg.Logger.With(zap.String("client_id", cfg.ClientID), zap.String("method", cfg.Method())),
		changed: make(chan struct{}, 1),
	}, nil
}

// ClientID is the integration's client id: the x-api-key of API calls.
func (s *Source) ClientID() string { return s.cfg.ClientID }

// OrgID is the integration's organization: the x-gw-ims-org-id of API
// calls.
func (s *Source) OrgID() string { return s.cfg.OrgID }

// Fetches returns how many tokens were obtained from IMS (the first one
// and every renewal) and how many attempts failed, for the metrics.
func (s *Source) Fetches() (ok, failed uint64) { return s.fetched.Load(), s.fetchFailed.Load() }

// ExpiresAt is the expiry of the current token; zero before the first one.
func (s *Source) ExpiresAt() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.expiresAt
}

// Token returns the access token. A cached token is returned at once; one
// in the last fifth of its lifetime is returned at once too while a
// renewal runs in the background. Without a usable token, Token waits for
// a fetch, which concurrent callers share (one fetch at a time). After a
// failed fetch, callers get that failure again until the backoff has
// passed, so a broken configuration or an IMS outage costs IMS one
// request per backoff step, not one per caller.
//
// Errors are *Error (errors.As), or ctx's error when ctx ends first; a
// fetch under way goes on for the other callers.
func (s *Source) Token(ctx context.Context) (string, error) {
	s.mu.Lock()
	now := s.cfg.Now()
	if s.token != "" && now.Before(s.renewAt) {
		t := s.token
		s.mu.Unlock()
		return t, nil
	}
	f, err := s.startLocked(ctx, now)
	if s.usable(now) {
		t := s.token
		s.mu.Unlock()
		return t, nil
	}
	s.mu.Unlock()
	if f == nil {
		return "", err
	}
	return f.wait(ctx)
}

// Renew is for a caller whose API call was answered 401 with the token
// stale: it returns a new token. When another caller has already replaced
// stale, it returns the current token without asking IMS; concurrent
// callers with the same stale token share one fetch. The stale token is
// never handed out again. Errors are those of Token.
func (s *Source) Renew(ctx context.Context, stale string) (string, error) {
	s.mu.Lock()
	now := s.cfg.Now()
	if s.token != "" && s.token != stale && s.usable(now) {
		t := s.token
		s.mu.Unlock()
		return t, nil
	}
	if s.token != "" && s.token == stale {
		s.token, s.expiresAt, s.renewAt, s.usableTil = "", time.Time{}, time.Time{}, time.Time{}
	}
	f, err := s.startLocked(ctx, now)
	s.mu.Unlock()
	if f == nil {
		return "", err
	}
	return f.wait(ctx)
}

// Run renews the token in the background until ctx ends: at once when
// there is none, then once 80% of each token's lifetime has passed. A
// failed renewal is retried after 1 s, doubling up to 1 minute (less up to
// a fifth, at random; longer when IMS says Retry-After), while the old
// token goes on being handed out as long as it is valid. Failures are
// logged (never a token or a secret). Renewals are shared with Token and
// Renew: there is never more than one fetch at a time. Call Run once.
func (s *Source) Run(ctx context.Context) {
	for {
		s.mu.Lock()
		now := s.cfg.Now()
		var f *flight
		var wait time.Duration
		switch {
		case s.fl != nil:
			f = s.fl
		case s.lastErr != nil && now.Before(s.retryAt):
			wait = s.retryAt.Sub(now)
		case s.token != "" && now.Before(s.renewAt):
			wait = s.renewAt.Sub(now)
		default:
			f, _ = s.startLocked(ctx, now)
		}
		s.mu.Unlock()
		if f == nil && wait <= 0 {
			wait = minBackoff // never spin
		}

		if f != nil {
			select {
			case <-f.done:
			case <-ctx.Done():
				return
			}
			continue
		}
		timer := time.NewTimer(wait)
		select {
		case <-timer.C:
		case <-s.changed:
			timer.Stop()
		case <-ctx.Done():
			timer.Stop()
			return
		}
	}
}

// usable reports whether the current token may be handed out at now.
func (s *Source) usable(now time.Time) bool {
	return s.token != "" && now.Before(s.usableTil)
}

// startLocked returns the fetch under way, or starts one; after a failure
// it returns (nil, the failure) until the backoff has passed. The fetch
// does not end with ctx (other callers may share it), but keeps its
// values. s.mu must be held.
func (s *Source) startLocked(ctx context.Context, now time.Time) (*flight, error) {
	if s.fl != nil {
		return s.fl, nil
	}
	if s.lastErr != nil && now.Before(s.retryAt) {
		return nil, s.lastErr
	}
	f := &flight{done: make(chan struct{})}
	s.fl = f
	go s.fetchInto(context.WithoutCancel(ctx), f)
	return f, nil
}

// fetchInto runs one fetch and records its outcome.
func (s *Source) fetchInto(ctx context.Context, f *flight) {
	ctx, cancel := context.WithTimeout(ctx, fetchTimeout)
	defer cancel()
	r, err := s.fetch(ctx)

	s.mu.Lock()
	now := s.cfg.Now()
	s.fl = nil
	var failures int
	var wait time.Duration
	var stillValid bool
	if err == nil {
		lifetime := r.ExpiresAt.Sub(now)
		s.token, s.expiresAt = r.AccessToken, r.ExpiresAt
		s.renewAt = now.Add(time.Duration(float64(lifetime) * renewAtFraction))
		s.usableTil = r.ExpiresAt.Add(-min(maxSafety, lifetime/10))
		s.failures, s.lastErr, s.retryAt = 0, nil, time.Time{}
		f.token = r.AccessToken
		s.fetched.Add(1)
	} else {
		s.fetchFailed.Add(1)
		s.failures++
		failures = s.failures
		wait = backoff(s.failures, err)
		s.lastErr, s.retryAt = err, now.Add(wait)
		stillValid = s.usable(now)
		f.err = err
	}
	expiresAt := s.expiresAt
	s.mu.Unlock()
	select {
	case s.changed <- struct{}{}:
	default:
	}
	close(f.done)

	if err == nil {
		s.log.Info("technical account token obtained", zap.Time("expires_at", r.ExpiresAt))
		return
	}
	var e *Error
	if !errors.As(err, &e) {
		e = &Error{Code: CodeUnavailable, Message: err.Error()}
	}
	fields := []zap.Field{
		zap.String("code", e.Code),
		zap.String("error", e.Message),
		zap.Int("attempt", failures),
		zap.Duration("retry_in", wait),
	}
	if stillValid {
		s.log.Warn("technical account token renewal failed; the current token is still valid",
			append(fields, zap.Time("token_expires_at", expiresAt))...)
		return
	}
	s.log.Error("technical account token could not be obtained", fields...)
}

// fetch obtains a new token from IMS. Its errors are *Error.
func (s *Source) fetch(ctx context.Context) (*ims.TokenResponse, error) {
	var r *ims.TokenResponse
	var err error
	switch s.method {
	case MethodJWT:
		assertion, serr := SignExchangeJWT(s.cfg, s.cfg.Now())
		if serr != nil {
			return nil, &Error{Code: CodeSigning, Err: serr,
				Message: "could not sign the exchange JWT with the key of " + EnvName("PrivateKey") + ": " + serr.Error()}
		}
		r, err = s.client.ExchangeJWT(ctx, s.cfg.ClientID, s.cfg.ClientSecret, assertion)
	default:
		r, err = s.client.ClientCredentials(ctx, s.cfg.ClientID, s.cfg.ClientSecret, s.cfg.Scopes)
	}
	if err != nil {
		return nil, s.explain(err)
	}
	if now := s.cfg.Now(); !r.ExpiresAt.After(now) {
		return nil, &Error{Code: CodeExpiredToken,
			Message: "IMS issued a token that expired at " + r.ExpiresAt.UTC().Format(time.RFC3339) +
				", before this machine's time " + now.UTC().Format(time.RFC3339) + ": check this machine's clock"}
	}
	return r, nil
}

// backoff is the wait after the n-th consecutive failure: 1 s doubling up
// to 1 minute, less up to a fifth at random, and at least IMS's
// Retry-After (up to 5 minutes).
func backoff(n int, err error) time.Duration {
	d := maxBackoff
	if n <= 6 {
		d = min(minBackoff<<(n-1), maxBackoff)
	}
	d -= time.Duration(rand.Int64N(int64(d)/5 + 1))
	var rl *ims.RateLimitError
	if errors.As(err, &rl) && rl.RetryAfter > d {
		d = min(rl.RetryAfter, maxRetryAfter)
	}
	return d
}
