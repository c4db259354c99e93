package ims

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/big"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/gatehouse-proxy/gatehouse/session/cache"
)

// KeySetConfig configures a KeySet. At least one of JWKSURL and CertsURL
// must be set.
type KeySetConfig struct {
	// JWKSURL is the JWKS endpoint, e.g. https://ims-na1.adobelogin.com/ims/keys.
	// Empty: keys come from certificates only.
	JWKSURL string
	// CertsURL is the base URL of the signing certificates, e.g.
	// https://static.adobelogin.com/keys/prod/. A token's x5u (a bare file
	// name) is appended to it; a missing trailing slash is added. Empty:
	// keys come from the JWKS only.
	CertsURL string
	// HTTPClient fetches keys and certificates. Nil: a client with a 10 s
	// timeout. Redirects are never followed, whatever the client says.
	HTTPClient *http.Client
	// MinRefreshInterval bounds fetches caused by tokens: the JWKS is
	// fetched at most once per interval however many unknown key ids
	// arrive, and each certificate name at most once per interval, with
	// at most certFetchBudget (8) names not yet held per interval. Zero:
	// 10 s.
	MinRefreshInterval time.Duration
	// RefreshInterval is the period of Run's background refresh. Zero: 1 h.
	RefreshInterval time.Duration
	// Logger receives fetch failures (warn) and skipped keys (debug). Nil:
	// no logging.
	Logger *zap.Logger
}

const (
	defaultMinRefreshInterval = 10 * time.Second
	defaultRefreshInterval    = time.Hour
	defaultHTTPTimeout        = 10 * time.Second
	// fetchTimeout bounds one shared fetch even when the HTTP client has no
	// timeout, so that a hung key host cannot hold the single flight.
	fetchTimeout = 30 * time.Second

	maxJWKSBody = 1 << 20
	maxCertBody = 64 << 10

	minRSABits = 2048
	maxRSABits = 8192 // bigger keys only make verification slow

	// certFetchBudget caps fetches of certificate names not yet seen per
	// MinRefreshInterval, so that tokens naming random x5u files cannot
	// turn the proxy into a load generator against the certificate host.
	// IMS publishes two or three certificates and changes them rarely, so
	// eight a window leaves room for a rotation; a name over budget is an
	// unknown key (401), not an outage. Junk names cannot keep a real
	// certificate's tokens out: they are also tried against the keys held,
	// and after the window's JWKS refresh against IMS's current keys (see
	// verify). Only without a JWKS (a library setting; the binary always
	// has one) does a certificate never fetched compete with junk names
	// for the budget, and it may wait for a window the flood leaves room in.
	certFetchBudget = 8
	// maxCerts bounds the certificate names remembered. Failures are
	// forgotten each window and at most certFetchBudget new names are
	// fetched per window, so only certificates that parsed accumulate:
	// IMS publishes two or three at a time. Past the bound, arbitrary
	// entries go and are fetched again if named again.
	maxCerts = 1024
	// maxFallbackKeys caps the keys an x5u-named token is tried against when
	// its certificate cannot be had: each try is a signature check, and IMS
	// holds two or three keys at a time.
	maxFallbackKeys = 4
	maxCertName     = 128
)

// KeySet holds the RSA public keys IMS signs tokens with, from a JWKS (by
// kid) and from certificates (by x5u file name). It is safe for concurrent
// use; lookups of keys already held take no lock and make no allocation.
type KeySet struct {
	jwksURL    string
	certsURL   string // ends with '/'
	hc         *http.Client
	minRefresh time.Duration
	refresh    time.Duration
	log        *zap.Logger
	now        func() time.Time // tests replace it

	fetches atomic.Int64
	// jwks is the key set of the last successful JWKS fetch, by kid; nil
	// before the first one. Replaced whole, never modified.
	jwks atomic.Pointer[map[string]*rsa.PublicKey]
	// held is every key held, JWKS keys by kid then certificates by name,
	// for tokens whose certificate cannot be had; rebuilt under mu.
	held atomic.Pointer[[]*rsa.PublicKey]

	mu          sync.RWMutex
	jwksFlight  *flight                          // the JWKS fetch under way, or nil
	jwksAttempt time.Time                        // start of the last JWKS fetch
	jwksErr     error                            // outcome of the last finished JWKS fetch
	certs       *cache.Cache[string, *certEntry] // entries' fields guarded by mu
	certWindow  time.Time                        // start of the current certificate budget window
	certFetched int                              // fetches of new names in that window
}

// flight is one fetch that concurrent callers share. It is not a
// singleflight.Group: whether a fetch is under way is part of what mu
// decides with the rate limits (a JWKS fetch at most every
// MinRefreshInterval, certFetchBudget new certificates per window), and a
// Group tells that only by joining or starting a call. DoChan would also
// start a goroutine for every caller answered from the remembered outcome
// of the last fetch, which is what a flood of unknown kids meets.
type flight struct {
	done chan struct{} // closed when key and err are set
	key  *rsa.PublicKey
	err  error
}

func newFlight() *flight { return &flight{done: make(chan struct{})} }

func (f *flight) wait(ctx context.Context) (*rsa.PublicKey, error) {
	select {
	case <-f.done:
		return f.key, f.err
	case <-ctx.Done():
		return nil, fmt.Errorf("ims keys: waiting for a key fetch: %w: %w", ErrKeysUnavailable, ctx.Err())
	}
}

// certEntry is what is known about one certificate file name.
type certEntry struct {
	key     *rsa.PublicKey // kept once obtained
	err     error          // negative result, remembered for MinRefreshInterval
	attempt time.Time      // start of the last fetch
	fl      *flight        // fetch under way, or nil
}

// NewKeySet checks cfg and returns a KeySet holding no keys yet: call Load
// (at start-up) and Run (in the background), or let lookups fetch on demand.
func NewKeySet(cfg KeySetConfig) (*KeySet, error) {
	if cfg.JWKSURL == "" && cfg.CertsURL == "" {
		return nil, errors.New("ims keys: set JWKSURL, CertsURL or both")
	}
	k := &KeySet{
		hc:         noRedirects(cfg.HTTPClient),
		minRefresh: cfg.MinRefreshInterval,
		refresh:    cfg.RefreshInterval,
		log:        cfg.Logger,
		now:        time.Now,
		certs:      cache.New(cache.Options[string, *certEntry]{MaxEntries: maxCerts}),
	}
	if cfg.JWKSURL != "" {
		u, err := parseHTTPURL(cfg.JWKSURL)
		if err != nil {
			return nil, fmt.Errorf("ims keys: JWKSURL: %w", err)
		}
		k.jwksURL = u.String()
	}
	if cfg.CertsURL != "" {
		u, err := parseHTTPURL(cfg.CertsURL)
		if err != nil {
			return nil, fmt.Errorf("ims keys: CertsURL: %w", err)
		}
		if u.RawQuery != "" || u.Fragment != "" {
			return nil, fmt.Errorf("ims keys: CertsURL %q: must not have a query or fragment", cfg.CertsURL)
		}
		k.certsURL = u.String()
		if !strings.HasSuffix(k.certsURL, "/") {
			k.certsURL += "/"
		}
	}
	switch {
	case k.minRefresh < 0:
		return nil, fmt.Errorf("ims keys: MinRefreshInterval %s: must not be negative", k.minRefresh)
	case k.minRefresh == 0:
		k.minRefresh = defaultMinRefreshInterval
	}
	switch {
	case k.refresh < 0:
		return nil, fmt.Errorf("ims keys: RefreshInterval %s: must not be negative", k.refresh)
	case k.refresh == 0:
		k.refresh = defaultRefreshInterval
	}
	if k.refresh < k.minRefresh {
		return nil, fmt.Errorf("ims keys: RefreshInterval %s: must not be shorter than MinRefreshInterval %s", k.refresh, k.minRefresh)
	}
	if k.log == nil {
		k.log = zap.NewNop()
	}
	return k, nil
}

// parseHTTPURL accepts an absolute http or https URL with a host.
func parseHTTPURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, errors.New("not a valid URL")
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%q: want an absolute http or https URL", s)
	}
	if u.User != nil {
		return nil, fmt.Errorf("%q: must not carry credentials", u.Redacted())
	}
	return u, nil
}

// noRedirects returns a copy of hc (or a default client) that never follows
// redirects: a key host or IMS answering with one is misconfigured, and
// following it would send requests, and for IMS a token, elsewhere.
func noRedirects(hc *http.Client) *http.Client {
	var c http.Client
	if hc != nil {
		c = *hc
	} else {
		c.Timeout = defaultHTTPTimeout
	}
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &c
}

// Fetches is the number of HTTP fetches made so far (JWKS and certificates).
func (k *KeySet) Fetches() int64 { return k.fetches.Load() }

// Ready reports whether tokens can be verified without waiting for the key
// host: with a JWKS configured, once a key is held (from the JWKS or from a
// certificate). In certificate-only mode it is true from the start, because
// certificates are fetched on first use and a readiness probe that waited
// for one would never let the first token in.
func (k *KeySet) Ready() bool {
	if m := k.jwks.Load(); m != nil && len(*m) > 0 {
		return true
	}
	if k.jwksURL == "" {
		return true
	}
	k.mu.RLock()
	defer k.mu.RUnlock()
	ready := false
	k.certs.Range(func(_ string, e *certEntry) bool {
		ready = e.key != nil
		return !ready
	})
	return ready
}

// Load fetches the JWKS now, or joins a fetch already under way. On failure
// the keys already held are kept and the error (wrapping
// ErrKeysUnavailable) is returned. Without a JWKS URL it does nothing.
func (k *KeySet) Load(ctx context.Context) error {
	if k.jwksURL == "" {
		return nil
	}
	k.mu.Lock()
	fl := k.jwksFlight
	if fl == nil {
		fl = k.startJWKSFetch(ctx)
	}
	k.mu.Unlock()
	_, err := fl.wait(ctx)
	return err
}

// Run refreshes the JWKS every RefreshInterval until ctx is done. While no
// key set has been loaded, or after a failed refresh, it retries sooner:
// after MinRefreshInterval, doubling up to RefreshInterval. Failures are
// logged and the keys held are kept. Without a JWKS URL it only waits for
// ctx.
func (k *KeySet) Run(ctx context.Context) {
	if k.jwksURL == "" {
		<-ctx.Done()
		return
	}
	next := k.refresh
	if k.jwks.Load() == nil {
		next = 0
	}
	retry := k.minRefresh
	t := time.NewTimer(next)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := k.Load(ctx); err != nil {
			if ctx.Err() != nil {
				return
			}
			// The fetch itself logged the failure.
			t.Reset(retry)
			retry = min(2*retry, k.refresh)
			continue
		}
		retry = k.minRefresh
		t.Reset(k.refresh)
	}
}

// Key returns the public key for a token whose header names kid and x5u
// (either may be empty). It looks in the JWKS by kid first, then at the
// certificate named by x5u, fetching as the rate limits allow. An x5u that
// is not a bare file name makes the token malformed (ErrMalformed); it is
// never fetched, nor treated as a URL. The error wraps ErrKeysUnavailable
// only when the key host could not be asked or did not answer and nothing
// held can stand in: no key set at all for a kid, the certificate host
// failing for an x5u. Otherwise it wraps ErrUnknownKey: the host does not
// publish the key, or it was not asked because the interval's fetch budget
// is spent, which is what a flood of made-up names meets.
func (k *KeySet) Key(ctx context.Context, kid, x5u string) (*rsa.PublicKey, error) {
	if x5u != "" && !validCertName(x5u) {
		return nil, fmt.Errorf("ims keys: x5u is not a bare certificate file name: %w", ErrMalformed)
	}
	if kid != "" {
		if m := k.jwks.Load(); m != nil {
			if key := (*m)[kid]; key != nil {
				return key, nil
			}
		}
	}
	useCerts := x5u != "" && k.certsURL != ""
	if useCerts {
		k.mu.RLock()
		e, _ := k.certs.Get(x5u)
		var key *rsa.PublicKey
		if e != nil {
			key = e.key
		}
		k.mu.RUnlock()
		if key != nil {
			return key, nil
		}
	}

	var jwksErr, certErr error
	if kid != "" && k.jwksURL != "" {
		key, err := k.jwksMiss(ctx, kid)
		if key != nil {
			return key, nil
		}
		jwksErr = err
	}
	if useCerts {
		key, err := k.cert(ctx, x5u)
		if key != nil {
			return key, nil
		}
		certErr = err
	}
	switch {
	case errors.Is(jwksErr, ErrKeysUnavailable):
		return nil, jwksErr
	case errors.Is(certErr, ErrKeysUnavailable):
		return nil, certErr
	case jwksErr != nil:
		return nil, jwksErr
	case certErr != nil:
		return nil, certErr
	}
	return nil, fmt.Errorf("ims keys: the token names no key this key set can look up (kid %q, x5u %q): %w", clip(kid), x5u, ErrUnknownKey)
}

// jwksMiss handles a kid not in the key set held: it refreshes the JWKS
// as refreshJWKS allows and looks again.
func (k *KeySet) jwksMiss(ctx context.Context, kid string) (*rsa.PublicKey, error) {
	if _, err := k.refreshJWKS(ctx); err != nil {
		return nil, k.kidMissError(kid, err)
	}
	if m := k.jwks.Load(); m != nil {
		if key := (*m)[kid]; key != nil {
			return key, nil
		}
	}
	return nil, k.kidMissError(kid, nil)
}

// refreshJWKS refreshes the JWKS unless one was fetched less than
// MinRefreshInterval ago, sharing a fetch under way. It reports whether a
// fetch was waited for, and the error of the last fetch.
func (k *KeySet) refreshJWKS(ctx context.Context) (fetched bool, err error) {
	k.mu.Lock()
	fl := k.jwksFlight
	if fl == nil {
		if !k.jwksAttempt.IsZero() && k.now().Sub(k.jwksAttempt) < k.minRefresh {
			err := k.jwksErr
			k.mu.Unlock()
			return false, err
		}
		fl = k.startJWKSFetch(ctx)
	}
	k.mu.Unlock()
	_, err = fl.wait(ctx)
	return true, err
}

// kidMissError is the error for a kid that is not in the key set, after
// the last refresh ended with fetchErr (nil: it succeeded). Only with no
// key set at all is it "try later" (ErrKeysUnavailable). Once one is held,
// a kid it lacks is an unknown key even if the refresh failed: otherwise
// tokens naming random kids would turn a key-host hiccup into 503s that
// say the proxy is down, while tokens naming the keys held work.
func (k *KeySet) kidMissError(kid string, fetchErr error) error {
	switch {
	case fetchErr == nil:
		return fmt.Errorf("ims keys: kid %q: %w", clip(kid), ErrUnknownKey)
	case k.jwks.Load() == nil:
		return fmt.Errorf("ims keys: kid %q: %w", clip(kid), fetchErr)
	}
	// The fetch error is printed, not wrapped: one sentinel per error.
	return fmt.Errorf("ims keys: kid %q: not in the key set held, which could not be refreshed (%v): %w", clip(kid), fetchErr, ErrUnknownKey)
}

// startJWKSFetch starts a shared JWKS fetch. k.mu must be held.
func (k *KeySet) startJWKSFetch(ctx context.Context) *flight {
	fl := newFlight()
	k.jwksFlight = fl
	k.jwksAttempt = k.now()
	// The fetch is shared: no single caller's cancellation may end it.
	fctx := context.WithoutCancel(ctx)
	go func() {
		ctx, cancel := context.WithTimeout(fctx, fetchTimeout)
		defer cancel()
		keys, err := k.fetchJWKS(ctx)
		held := 0
		k.mu.Lock()
		if err == nil {
			k.jwks.Store(&keys)
			k.rebuildHeld()
		} else if m := k.jwks.Load(); m != nil {
			held = len(*m)
		}
		k.jwksErr = err
		k.jwksFlight = nil
		fl.err = err
		k.mu.Unlock()
		close(fl.done)
		if err != nil {
			k.log.Warn("ims keys: JWKS fetch failed; keeping the keys held",
				zap.String("url", k.jwksURL), zap.Int("keys_held", held), zap.Error(err))
		} else {
			k.log.Debug("ims keys: JWKS loaded", zap.String("url", k.jwksURL), zap.Int("keys", len(keys)))
		}
	}()
	return fl
}

// jwk is one entry of a JWKS.
type jwk struct {
	Kty string   `json:"kty"`
	Kid string   `json:"kid"`
	Use string   `json:"use"`
	Alg string   `json:"alg"`
	N   string   `json:"n"`
	E   string   `json:"e"`
	X5c []string `json:"x5c"`
}

// fetchJWKS fetches and parses the JWKS. Its errors wrap ErrKeysUnavailable.
func (k *KeySet) fetchJWKS(ctx context.Context) (map[string]*rsa.PublicKey, error) {
	body, _, err := k.get(ctx, k.jwksURL, maxJWKSBody)
	if err != nil {
		return nil, fmt.Errorf("ims keys: JWKS: %w: %w", ErrKeysUnavailable, err)
	}
	keys, err := parseJWKS(body, func(j *jwk, err error) {
		k.log.Debug("ims keys: JWKS entry skipped", zap.String("kid", clip(j.Kid)), zap.String("kty", clip(j.Kty)), zap.Error(err))
	})
	if err != nil {
		return nil, fmt.Errorf("ims keys: JWKS: %w: %w", ErrKeysUnavailable, err)
	}
	return keys, nil
}

// parseJWKS returns the RSA signing keys of a JWKS document by kid. An
// entry that is not one (another key type or use, a key too small, a
// duplicate kid) is passed to skipped and left out; a document that is not
// a JWKS, or holds no usable key, is an error.
func parseJWKS(body []byte, skipped func(*jwk, error)) (map[string]*rsa.PublicKey, error) {
	// Entries are decoded one by one, so that one of an unexpected shape
	// (a numeric kid, say) is skipped rather than failing every key.
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, fmt.Errorf("decode: %w", err)
	}
	keys := make(map[string]*rsa.PublicKey, len(doc.Keys))
	for _, raw := range doc.Keys {
		j := new(jwk)
		key, err := parseJWK(j, raw)
		if err == nil && keys[j.Kid] != nil {
			err = errors.New("duplicate kid; the first is kept")
		}
		if err != nil {
			skipped(j, err)
			continue
		}
		keys[j.Kid] = key
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("no usable RSA signing key among %d entries", len(doc.Keys))
	}
	return keys, nil
}

// parseJWK decodes raw, a JWKS entry, into j and returns its RSA signing
// key, from n and e, or from the first certificate of x5c when they are
// absent.
func parseJWK(j *jwk, raw []byte) (*rsa.PublicKey, error) {
	if err := json.Unmarshal(raw, j); err != nil {
		return nil, fmt.Errorf("decode: %w", err)
	}
	switch {
	case j.Kid == "":
		return nil, errors.New("no kid")
	case j.Kty != "RSA":
		return nil, errors.New("not an RSA key")
	case j.Use != "" && j.Use != "sig":
		return nil, fmt.Errorf("use %q: not a signing key", clip(j.Use))
	case j.Alg != "" && j.Alg != "RS256":
		return nil, fmt.Errorf("alg %q: not RS256", clip(j.Alg))
	}
	if j.N == "" && j.E == "" && len(j.X5c) > 0 {
		der, err := base64.StdEncoding.DecodeString(j.X5c[0])
		if err != nil {
			return nil, fmt.Errorf("x5c: %w", err)
		}
		return parseCertificate(der)
	}
	n, err := decodeB64URL(j.N)
	if err != nil {
		return nil, fmt.Errorf("n: %w", err)
	}
	e, err := decodeB64URL(j.E)
	if err != nil {
		return nil, fmt.Errorf("e: %w", err)
	}
	if len(e) == 0 || len(e) > 4 {
		return nil, fmt.Errorf("e: %d bytes", len(e))
	}
	var ei int
	for _, b := range e {
		ei = ei<<8 | int(b)
	}
	return checkKey(&rsa.PublicKey{N: new(big.Int).SetBytes(n), E: ei})
}

func decodeB64URL(s string) ([]byte, error) {
	return base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
}

// checkKey accepts keys of 2048 to 8192 bits with an odd modulus and a
// sane exponent: the key-size policy is ours, whatever crypto/rsa would
// tolerate, and a key refused here is skipped when the key set loads
// rather than failing every token signed with it.
func checkKey(key *rsa.PublicKey) (*rsa.PublicKey, error) {
	if bits := key.N.BitLen(); bits < minRSABits || bits > maxRSABits {
		return nil, fmt.Errorf("RSA modulus of %d bits: want %d to %d", bits, minRSABits, maxRSABits)
	}
	if key.N.Bit(0) == 0 {
		return nil, errors.New("RSA modulus is even")
	}
	if key.E < 3 || key.E > 1<<31-1 || key.E%2 == 0 {
		return nil, fmt.Errorf("RSA exponent %d: want an odd number from 3 to 2^31-1", key.E)
	}
	return key, nil
}

// parseCertificate takes the RSA public key of a certificate, PEM or DER.
// Validity dates are not checked: IMS keeps signing with its certificates
// past them, and what matters is that the key host publishes them.
func parseCertificate(b []byte) (*rsa.PublicKey, error) {
	der := b
	if block, _ := pem.Decode(b); block != nil {
		if block.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("PEM block %q: want CERTIFICATE", clip(block.Type))
		}
		der = block.Bytes
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("certificate: %w", err)
	}
	key, ok := cert.PublicKey.(*rsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("certificate key is %T, not RSA", cert.PublicKey)
	}
	return checkKey(key)
}

// validCertName accepts a bare file name: 1 to 128 of [A-Za-z0-9._-], and
// no "..". Slashes, colons, percent signs and the like never pass, so the
// name cannot make the fetch leave the certificate base URL.
func validCertName(s string) bool {
	if len(s) == 0 || len(s) > maxCertName || strings.Contains(s, "..") {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '.', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}

// cert returns the key of the certificate named, fetching it unless it
// was tried less than MinRefreshInterval ago (the result is remembered),
// and within the budget of new names per interval.
func (k *KeySet) cert(ctx context.Context, name string) (*rsa.PublicKey, error) {
	k.mu.Lock()
	now := k.now()
	e, _ := k.certs.Get(name)
	switch {
	case e != nil && e.key != nil:
		k.mu.Unlock()
		return e.key, nil
	case e != nil && e.fl != nil:
		fl := e.fl
		k.mu.Unlock()
		return fl.wait(ctx)
	case e != nil && now.Sub(e.attempt) < k.minRefresh:
		err := e.err
		k.mu.Unlock()
		return nil, err
	}
	if k.certWindow.IsZero() || now.Sub(k.certWindow) >= k.minRefresh {
		k.certWindow, k.certFetched = now, 0
		k.pruneCerts(now)
	}
	if k.certFetched >= certFetchBudget {
		k.mu.Unlock()
		// Most probably a junk name from a flood: IMS names few
		// certificates. A real one is still accepted through the keys
		// held (see verify), or fetched in a later window.
		return nil, fmt.Errorf("ims keys: x5u %q: not fetched, the certificate fetch budget of this interval is spent: %w", name, ErrUnknownKey)
	}
	k.certFetched++
	if e == nil {
		e = &certEntry{}
		k.certs.Set(name, e)
	}
	fl := newFlight()
	e.fl, e.attempt = fl, now
	k.mu.Unlock()

	fctx := context.WithoutCancel(ctx)
	go func() {
		ctx, cancel := context.WithTimeout(fctx, fetchTimeout)
		defer cancel()
		key, err := k.fetchCert(ctx, name)
		k.mu.Lock()
		e.key, e.err, e.fl = key, err, nil
		if key != nil {
			k.rebuildHeld()
		}
		fl.key, fl.err = key, err
		k.mu.Unlock()
		close(fl.done)
		if errors.Is(err, ErrKeysUnavailable) {
			k.log.Warn("ims keys: certificate fetch failed", zap.String("x5u", name), zap.Error(err))
		} else if err != nil {
			k.log.Debug("ims keys: certificate not usable", zap.String("x5u", name), zap.Error(err))
		}
	}()
	return fl.wait(ctx)
}

// rebuildHeld lists the keys held in a fixed order: JWKS keys by kid, then
// certificates by name. k.mu must be held.
func (k *KeySet) rebuildHeld() {
	var held []*rsa.PublicKey
	if m := k.jwks.Load(); m != nil {
		for _, kid := range slices.Sorted(maps.Keys(*m)) {
			held = append(held, (*m)[kid])
		}
	}
	type cert struct {
		name string
		key  *rsa.PublicKey
	}
	var certs []cert
	k.certs.Range(func(name string, e *certEntry) bool {
		if e.key != nil {
			certs = append(certs, cert{name, e.key})
		}
		return true
	})
	slices.SortFunc(certs, func(a, b cert) int { return strings.Compare(a.name, b.name) })
	for _, c := range certs {
		if !slices.ContainsFunc(held, func(h *rsa.PublicKey) bool { return h.Equal(c.key) }) {
			held = append(held, c.key)
		}
	}
	k.held.Store(&held)
}

// pruneCerts forgets negative results that have run out. k.mu must be held.
func (k *KeySet) pruneCerts(now time.Time) {
	k.certs.DeleteFunc(func(_ string, e *certEntry) bool {
		return e.key == nil && e.fl == nil && now.Sub(e.attempt) >= k.minRefresh
	})
}

// fetchCert fetches and parses one certificate. A certificate the host does
// not have (403, 404 or 410: static hosts answer 403 for missing objects) or
// that is not a usable RSA certificate gives ErrUnknownKey; any other
// failure ErrKeysUnavailable.
func (k *KeySet) fetchCert(ctx context.Context, name string) (*rsa.PublicKey, error) {
	body, status, err := k.get(ctx, k.certsURL+name, maxCertBody)
	if err != nil {
		switch status {
		case http.StatusForbidden, http.StatusNotFound, http.StatusGone:
			return nil, fmt.Errorf("ims keys: x5u %q: %w: %w", name, ErrUnknownKey, err)
		}
		if errors.Is(err, errBodyTooLarge) {
			return nil, fmt.Errorf("ims keys: x5u %q: %w: %w", name, ErrUnknownKey, err)
		}
		return nil, fmt.Errorf("ims keys: x5u %q: %w: %w", name, ErrKeysUnavailable, err)
	}
	key, err := parseCertificate(body)
	if err != nil {
		return nil, fmt.Errorf("ims keys: x5u %q: %w: %w", name, ErrUnknownKey, err)
	}
	return key, nil
}

var errBodyTooLarge = errors.New("response body too large")

// get fetches u and returns its body, which must come with status 200 and
// be at most limit bytes. On a status other than 200 it returns the status
// with the error.
func (k *KeySet) get(ctx context.Context, u string, limit int64) ([]byte, int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, 0, err
	}
	k.fetches.Add(1)
	resp, err := k.hc.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
		return nil, resp.StatusCode, fmt.Errorf("GET %s: status %d", u, resp.StatusCode)
	}
	body, err := readBody(resp.Body, limit)
	if err != nil {
		return nil, resp.StatusCode, fmt.Errorf("GET %s: %w", u, err)
	}
	return body, resp.StatusCode, nil
}

// readBody reads r to the end, refusing more than limit bytes.
func readBody(r io.Reader, limit int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, fmt.Errorf("read body: %w", err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%w: more than %d bytes", errBodyTooLarge, limit)
	}
	return b, nil
}
