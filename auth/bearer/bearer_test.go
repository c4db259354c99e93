package bearer_test

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/gatehouse-proxy/gatehouse/auth"
	"github.com/gatehouse-proxy/gatehouse/auth/bearer"
	"github.com/gatehouse-proxy/gatehouse/auth/ims"
	"github.com/gatehouse-proxy/gatehouse/auth/ims/imstest"
)

const (
	testClient = "cc-europa-desktop_1_0"
	testUser   = "7F8F1A2B3C4D5E6F7A8B9C0D@AdobeID"
)

// The emulators are shared by every test of the package: generating their
// RSA keys is the slowest part of a run under the race detector. Tests
// that switch an emulator's outage or rate limiting restore it, and tests
// count IMS calls as differences, never as absolute numbers. No test here
// runs in parallel.
var (
	// idp is the IMS the Authenticators trust.
	idp *imstest.Server
	// forger has a key of its own under idp's kid: its tokens carry a
	// known kid and a signature idp's key does not verify.
	forger *imstest.Server
	// stranger signs with a kid idp does not publish.
	stranger *imstest.Server
)

func TestMain(m *testing.M) {
	idp = imstest.NewServer(imstest.Options{})
	forger = imstest.NewServer(imstest.Options{}) // the same default kid as idp
	stranger = imstest.NewServer(imstest.Options{KeyID: "ims_na1-stranger-key-1"})
	for _, s := range []*imstest.Server{idp, forger, stranger} {
		s.AddUser(imstest.User{ID: testUser, Email: "ada@example.com", FirstName: "Ada", LastName: "Lovelace"})
	}
	code := m.Run()
	idp.Close()
	forger.Close()
	stranger.Close()
	os.Exit(code)
}

// clock is a settable clock. It starts at the current time, so that the
// emulators (which run on real time) and the code under test agree on
// which tokens are live; tests move it forward instead of sleeping.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Now().Truncate(time.Millisecond)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// fixture is one Authenticator wired to idp through the real ims.KeySet,
// ims.Verifier and ims.Client.
type fixture struct {
	a     *bearer.Authenticator
	clock *clock
	// verifies counts local verifications that got as far as the
	// Verifier's clock, which every successful one does exactly once.
	verifies *atomic.Int64
}

func newFixture(t *testing.T, mode bearer.Mode, opt func(*bearer.Config)) *fixture {
	t.Helper()
	return buildFixture(t, mode, opt, true)
}

// buildFixture is newFixture; load says whether the key set is loaded
// before the Authenticator is made.
func buildFixture(t *testing.T, mode bearer.Mode, opt func(*bearer.Config), load bool) *fixture {
	t.Helper()
	f := &fixture{clock: newClock(), verifies: new(atomic.Int64)}
	cfg := bearer.Config{
		Mode:      mode,
		ClientIDs: []string{testClient, "cc-europa-desktop_0_1"},
		Cluster:   imstest.DefaultCluster,
		Now:       f.clock.Now,
	}
	if opt != nil {
		opt(&cfg)
	}
	if mode != bearer.ModeRemote {
		keys, err := ims.NewKeySet(ims.KeySetConfig{
			JWKSURL:  idp.URL + "/ims/keys",
			CertsURL: idp.URL + idp.CertsPath(),
		})
		if err != nil {
			t.Fatal(err)
		}
		if load {
			if err := keys.Load(t.Context()); err != nil {
				t.Fatal(err)
			}
		}
		cfg.Verifier, err = ims.NewVerifier(ims.VerifierConfig{
			Keys:      keys,
			Cluster:   cfg.Cluster,
			ClientIDs: cfg.ClientIDs,
			Now: func() time.Time {
				f.verifies.Add(1)
				return f.clock.Now()
			},
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if mode != bearer.ModeLocal && cfg.Client == nil { // opt may bring its own
		c, err := ims.NewClient(idp.URL, nil)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Client = c
	}
	a, err := bearer.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	f.a = a
	return f
}

// mint returns a token from s for testUser and testClient, changed by opt.
func mint(t *testing.T, s *imstest.Server, opt func(*imstest.TokenRequest)) (string, *ims.Claims) {
	t.Helper()
	req := imstest.TokenRequest{UserID: testUser, ClientID: testClient}
	if opt != nil {
		opt(&req)
	}
	token, claims, err := s.MintToken(req)
	if err != nil {
		t.Fatal(err)
	}
	return token, claims
}

// craft builds a compact JWT from a header and idp-shaped claims, signed by
// method with key (no signature for "none").
func craft(t *testing.T, header map[string]any, claims *ims.Claims, method jwt.SigningMethod, key any) string {
	t.Helper()
	enc := base64.RawURLEncoding
	h, err := json.Marshal(header)
	if err != nil {
		t.Fatal(err)
	}
	p, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	signing := enc.EncodeToString(h) + "." + enc.EncodeToString(p)
	if method == nil {
		return signing + "."
	}
	sig, err := method.Sign(signing, key)
	if err != nil {
		t.Fatal(err)
	}
	return signing + "." + enc.EncodeToString(sig)
}

// idpCertPEM is the PEM certificate idp publishes for its signing key: the
// "secret" of the HS256 key-confusion attack.
func idpCertPEM(t *testing.T) []byte {
	t.Helper()
	resp, err := http.Get(idp.URL + idp.CertsPath() + imstest.DefaultKeyID + ".cer")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK || !strings.Contains(string(b), "BEGIN CERTIFICATE") {
		t.Fatalf("certificate: status %d, err %v", resp.StatusCode, err)
	}
	return b
}

func validateCalls() int64 { return idp.Calls(imstest.EndpointValidate) }

func keyFetches() int64 {
	return idp.Calls(imstest.EndpointKeys) + idp.Calls(imstest.EndpointCerts)
}

// wantAuthError checks that err is an *auth.Error with the given status,
// code and reason, and, when is is not nil, that it wraps is.
func wantAuthError(t *testing.T, err error, status int, code, reason string, is error) {
	t.Helper()
	if err == nil {
		t.Fatalf("err = nil, want status %d %s %s", status, code, reason)
	}
	var ae *auth.Error
	if !errors.As(err, &ae) {
		t.Fatalf("err = %T %v, want an *auth.Error", err, err)
	}
	ae = auth.AsError(err)
	if ae.Status != status || ae.Code != code || ae.Reason != reason {
		t.Errorf("error = %d %q %q (%v), want %d %q %q", ae.Status, ae.Code, ae.Reason, err, status, code, reason)
	}
	if ae.Description == "" {
		t.Errorf("error %v has no description", err)
	}
	if is != nil && !errors.Is(err, is) {
		t.Errorf("error %v does not wrap %v", err, is)
	}
}

func TestExtract(t *testing.T) {
	valid, _ := mint(t, idp, nil)
	tests := []struct {
		name    string
		headers []string // Authorization header values
		token   string   // wanted token when no error
		status  int      // 0: no *auth.Error expected
		code    string
		noCreds bool // want auth.ErrNoCredentials
	}{
		{name: "no header", noCreds: true},
		{name: "bearer token", headers: []string{"Bearer " + valid}, token: valid},
		{name: "lower-case scheme", headers: []string{"bearer " + valid}, token: valid},
		{name: "upper-case scheme", headers: []string{"BEARER abc.def.ghi"}, token: "abc.def.ghi"},
		{name: "surrounding blanks", headers: []string{"  Bearer   abc-._~+/def==  "}, token: "abc-._~+/def=="},
		{name: "padding only at the end", headers: []string{"Bearer abc=def"}, status: http.StatusBadRequest, code: auth.CodeInvalidRequest},
		{name: "scheme without token", headers: []string{"Bearer"}, status: http.StatusBadRequest, code: auth.CodeInvalidRequest},
		{name: "scheme and blanks", headers: []string{"Bearer    "}, status: http.StatusBadRequest, code: auth.CodeInvalidRequest},
		{name: "basic", headers: []string{"Basic xyz"}, status: http.StatusUnauthorized, code: auth.CodeInvalidRequest},
		{name: "scheme only of another kind", headers: []string{"Negotiate"}, status: http.StatusUnauthorized, code: auth.CodeInvalidRequest},
		{name: "token with a space", headers: []string{"Bearer abc def"}, status: http.StatusBadRequest, code: auth.CodeInvalidRequest},
		{name: "token with a quote", headers: []string{`Bearer abc"def`}, status: http.StatusBadRequest, code: auth.CodeInvalidRequest},
		{name: "token with a comma", headers: []string{"Bearer abc,def"}, status: http.StatusBadRequest, code: auth.CodeInvalidRequest},
		{name: "token of padding only", headers: []string{"Bearer ==="}, status: http.StatusBadRequest, code: auth.CodeInvalidRequest},
		{name: "token with non-ASCII", headers: []string{"Bearer abcé"}, status: http.StatusBadRequest, code: auth.CodeInvalidRequest},
		{name: "token of 8 KiB", headers: []string{"Bearer " + strings.Repeat("a", bearer.MaxTokenSize)}, token: strings.Repeat("a", bearer.MaxTokenSize)},
		{name: "token over 8 KiB", headers: []string{"Bearer " + strings.Repeat("a", bearer.MaxTokenSize+1)}, status: http.StatusUnauthorized, code: auth.CodeInvalidToken},
		{name: "two headers", headers: []string{"Bearer " + valid, "Bearer " + valid}, status: http.StatusBadRequest, code: auth.CodeInvalidRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			for _, h := range tt.headers {
				r.Header.Add("Authorization", h)
			}
			token, err := bearer.Extract(r)
			switch {
			case tt.noCreds:
				if !errors.Is(err, auth.ErrNoCredentials) {
					t.Fatalf("err = %v, want auth.ErrNoCredentials", err)
				}
				var ae *auth.Error
				if errors.As(err, &ae) {
					t.Errorf("err is an *auth.Error (%v); the next authenticator would not run", err)
				}
			case tt.status != 0:
				if token != "" {
					t.Errorf("token = %.20q…, want none", token)
				}
				if errors.Is(err, auth.ErrNoCredentials) {
					t.Errorf("err wraps auth.ErrNoCredentials; a bad header must be refused, not skipped")
				}
				ae := auth.AsError(err)
				if err == nil || ae.Status != tt.status || ae.Code != tt.code {
					t.Fatalf("err = %v (status %d, code %q), want %d %q", err, ae.Status, ae.Code, tt.status, tt.code)
				}
				if strings.Contains(ae.Description, "abc") || strings.Contains(ae.Description, valid) {
					t.Errorf("description %q repeats the token", ae.Description)
				}
			default:
				if err != nil {
					t.Fatalf("err = %v, want none", err)
				}
				if token != tt.token {
					t.Errorf("token = %.40q, want %.40q", token, tt.token)
				}
			}
		})
	}
}

func TestParseMode(t *testing.T) {
	for in, want := range map[string]bearer.Mode{
		"local": bearer.ModeLocal, "Remote": bearer.ModeRemote, " BOTH ": bearer.ModeBoth,
	} {
		if got, err := bearer.ParseMode(in); err != nil || got != want {
			t.Errorf("ParseMode(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "none", "locally"} {
		if _, err := bearer.ParseMode(in); err == nil {
			t.Errorf("ParseMode(%q) succeeded", in)
		}
	}
}

func TestNewChecksConfig(t *testing.T) {
	keys, err := ims.NewKeySet(ims.KeySetConfig{JWKSURL: idp.URL + "/ims/keys"})
	if err != nil {
		t.Fatal(err)
	}
	v, err := ims.NewVerifier(ims.VerifierConfig{Keys: keys, Cluster: imstest.DefaultCluster})
	if err != nil {
		t.Fatal(err)
	}
	c, err := ims.NewClient(idp.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		cfg  bearer.Config
		ok   bool
	}{
		{"local with verifier", bearer.Config{Mode: bearer.ModeLocal, Verifier: v}, true},
		{"local without verifier", bearer.Config{Mode: bearer.ModeLocal, Client: c}, false},
		{"remote with client", bearer.Config{Mode: bearer.ModeRemote, Client: c}, true},
		{"remote without client", bearer.Config{Mode: bearer.ModeRemote, Verifier: v}, false},
		{"both with both", bearer.Config{Mode: bearer.ModeBoth, Verifier: v, Client: c}, true},
		{"both without client", bearer.Config{Mode: bearer.ModeBoth, Verifier: v}, false},
		{"both without verifier", bearer.Config{Mode: bearer.ModeBoth, Client: c}, false},
		{"no mode", bearer.Config{Verifier: v, Client: c}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := bearer.New(tt.cfg)
			if (err == nil) != tt.ok {
				t.Errorf("New: err = %v, want ok %v", err, tt.ok)
			}
		})
	}
}

var modes = []bearer.Mode{bearer.ModeLocal, bearer.ModeRemote, bearer.ModeBoth}

// outcome is what Authenticate should do with a token in one mode.
type outcome struct {
	status int // 0: success
	code   string
	reason string
	is     error // when not nil, the error must wrap it
	// calls is the number of validate_token calls it should cost.
	calls int64
}

var accepted = outcome{}

func refused(reason string, is error, calls int64) outcome {
	return outcome{status: http.StatusUnauthorized, code: auth.CodeInvalidToken, reason: reason, is: is, calls: calls}
}

// inAllModes is o in every mode, except that local mode never calls IMS.
func inAllModes(o outcome) map[bearer.Mode]outcome {
	local := o
	local.calls = 0
	return map[bearer.Mode]outcome{bearer.ModeLocal: local, bearer.ModeRemote: o, bearer.ModeBoth: o}
}

func TestAuthenticate(t *testing.T) {
	now := time.Now()
	var (
		expired = refused(auth.ReasonExpiredToken, ims.ErrExpired, 0)
		// A forgery: local verification rejects it without asking IMS;
		// in remote mode IMS answers bad_signature.
		forged = func(is error) map[bearer.Mode]outcome {
			return map[bearer.Mode]outcome{
				bearer.ModeLocal:  refused(auth.ReasonInvalidToken, is, 0),
				bearer.ModeRemote: refused(auth.ReasonInvalidToken, nil, 1),
				bearer.ModeBoth:   refused(auth.ReasonInvalidToken, is, 0),
			}
		}
	)
	tests := []struct {
		name  string
		token func(t *testing.T) string
		want  map[bearer.Mode]outcome
	}{{
		name:  "valid",
		token: func(t *testing.T) string { tok, _ := mint(t, idp, nil); return tok },
		want: map[bearer.Mode]outcome{
			bearer.ModeLocal: accepted, bearer.ModeRemote: {calls: 1}, bearer.ModeBoth: {calls: 1},
		},
	}, {
		name: "another allowed client",
		token: func(t *testing.T) string {
			tok, _ := mint(t, idp, func(r *imstest.TokenRequest) { r.ClientID = "cc-europa-desktop_0_1" })
			return tok
		},
		want: map[bearer.Mode]outcome{
			bearer.ModeLocal: accepted, bearer.ModeRemote: {calls: 1}, bearer.ModeBoth: {calls: 1},
		},
	}, {
		name: "expired",
		token: func(t *testing.T) string {
			tok, _ := mint(t, idp, func(r *imstest.TokenRequest) { r.CreatedAt = now.Add(-25 * time.Hour); r.Lifetime = 24 * time.Hour })
			return tok
		},
		want: inAllModes(expired),
	}, {
		name: "expired within the clock skew is accepted",
		token: func(t *testing.T) string {
			tok, _ := mint(t, idp, func(r *imstest.TokenRequest) {
				r.CreatedAt = now.Add(-time.Hour)
				r.Lifetime = time.Hour - 30*time.Second
			})
			return tok
		},
		// IMS itself allows no skew: in remote modes its "expired" wins.
		want: map[bearer.Mode]outcome{
			bearer.ModeLocal:  accepted,
			bearer.ModeRemote: refused(auth.ReasonExpiredToken, nil, 1),
			bearer.ModeBoth:   refused(auth.ReasonExpiredToken, nil, 1),
		},
	}, {
		name: "not yet valid",
		token: func(t *testing.T) string {
			tok, _ := mint(t, idp, func(r *imstest.TokenRequest) { r.CreatedAt = now.Add(time.Hour) })
			return tok
		},
		want: inAllModes(refused(auth.ReasonInvalidToken, ims.ErrNotYetValid, 0)),
	}, {
		name: "refresh token",
		token: func(t *testing.T) string {
			tok, _ := mint(t, idp, func(r *imstest.TokenRequest) { r.Type = ims.TypeRefreshToken })
			return tok
		},
		want: inAllModes(refused(auth.ReasonInvalidToken, ims.ErrWrongType, 0)),
	}, {
		name: "another cluster",
		token: func(t *testing.T) string {
			tok, _ := mint(t, idp, func(r *imstest.TokenRequest) { r.Cluster = "ims-eu1" })
			return tok
		},
		want: inAllModes(refused(auth.ReasonInvalidToken, ims.ErrWrongCluster, 0)),
	}, {
		name: "client id not allowed",
		token: func(t *testing.T) string {
			tok, _ := mint(t, idp, func(r *imstest.TokenRequest) { r.ClientID = "some-other-client" })
			return tok
		},
		want: inAllModes(refused(auth.ReasonInvalidToken, ims.ErrClientNotAllowed, 0)),
	}, {
		name:  "bad signature under a known kid",
		token: func(t *testing.T) string { tok, _ := mint(t, forger, nil); return tok },
		want:  forged(ims.ErrBadSignature),
	}, {
		name:  "unknown kid",
		token: func(t *testing.T) string { tok, _ := mint(t, stranger, nil); return tok },
		want:  forged(ims.ErrUnknownKey),
	}, {
		name: "alg none",
		token: func(t *testing.T) string {
			_, c := mint(t, idp, nil)
			return craft(t, map[string]any{"alg": "none", "kid": imstest.DefaultKeyID, "x5u": imstest.DefaultKeyID + ".cer"}, c, nil, nil)
		},
		want: forged(ims.ErrAlgorithm),
	}, {
		name: "HS256 keyed with the public certificate",
		token: func(t *testing.T) string {
			_, c := mint(t, idp, nil)
			return craft(t, map[string]any{"alg": "HS256", "kid": imstest.DefaultKeyID, "x5u": imstest.DefaultKeyID + ".cer"},
				c, jwt.SigningMethodHS256, idpCertPEM(t))
		},
		want: forged(ims.ErrAlgorithm),
	}, {
		name: "claims changed after signing",
		token: func(t *testing.T) string {
			tok, c := mint(t, idp, nil)
			c.UserID = "00000000000000000000AAAA@AdobeID"
			forgedTok := craft(t, map[string]any{"alg": "RS256", "kid": imstest.DefaultKeyID}, c, nil, nil)
			parts, orig := strings.Split(forgedTok, "."), strings.Split(tok, ".")
			return orig[0] + "." + parts[1] + "." + orig[2]
		},
		want: forged(ims.ErrBadSignature),
	}, {
		name:  "not a JWT",
		token: func(*testing.T) string { return "not-a-jwt" },
		want:  inAllModes(refused(auth.ReasonInvalidToken, nil, 0)),
	}, {
		name:  "three parts of garbage",
		token: func(*testing.T) string { return "abc.def.ghi" },
		want:  inAllModes(refused(auth.ReasonInvalidToken, nil, 0)),
	}, {
		name: "revoked",
		token: func(t *testing.T) string {
			tok, _ := mint(t, idp, nil)
			idp.Revoke(tok)
			return tok
		},
		// Local validation cannot know of revocation: a revoked token
		// stays good until it expires. Use remote or both to refuse it.
		want: map[bearer.Mode]outcome{
			bearer.ModeLocal:  accepted,
			bearer.ModeRemote: refused(auth.ReasonInvalidToken, nil, 1),
			bearer.ModeBoth:   refused(auth.ReasonInvalidToken, nil, 1),
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, mode := range modes {
				t.Run(string(mode), func(t *testing.T) {
					want, ok := tt.want[mode]
					if !ok {
						t.Fatalf("no outcome for mode %s", mode)
					}
					f := newFixture(t, mode, nil)
					token := tt.token(t)
					before := validateCalls()
					res, err := f.a.Authenticate(t.Context(), token)
					if got := validateCalls() - before; got != want.calls {
						t.Errorf("validate_token calls = %d, want %d", got, want.calls)
					}
					if want.status != 0 {
						if res != nil {
							t.Errorf("result = %+v, want none", res)
						}
						wantAuthError(t, err, want.status, want.code, want.reason, want.is)
						return
					}
					if err != nil {
						t.Fatalf("Authenticate: %v", err)
					}
					if res.Token != token || res.Hash != bearer.Hash(sha256.Sum256([]byte(token))) {
						t.Errorf("result token or hash do not match the token")
					}
					if res.Claims == nil || res.Claims.UserID != testUser || res.Claims.Type != ims.TypeAccessToken ||
						res.Claims.Cluster != imstest.DefaultCluster || res.Claims.ExpiresAt().IsZero() {
						t.Errorf("claims = %+v", res.Claims)
					}
				})
			}
		})
	}
}

func TestDisabledWithoutClientIDs(t *testing.T) {
	for _, mode := range modes {
		t.Run(string(mode), func(t *testing.T) {
			f := newFixture(t, mode, func(c *bearer.Config) { c.ClientIDs = nil })
			if f.a.Enabled() {
				t.Error("Enabled() = true with no client ids")
			}
			token, _ := mint(t, idp, nil)
			before := validateCalls()
			_, err := f.a.Authenticate(t.Context(), token)
			wantAuthError(t, err, http.StatusUnauthorized, auth.CodeInvalidToken, auth.ReasonInvalidToken, nil)
			if d := auth.AsError(err).Description; !strings.Contains(d, "disabled") {
				t.Errorf("description %q does not say bearer sign-in is disabled", d)
			}
			if n := validateCalls() - before; n != 0 {
				t.Errorf("validate_token calls = %d, want 0", n)
			}
			if n := f.verifies.Load(); n != 0 {
				t.Errorf("%d local verifications, want 0", n)
			}
		})
	}
}

func TestCacheHit(t *testing.T) {
	for _, mode := range modes {
		t.Run(string(mode), func(t *testing.T) {
			f := newFixture(t, mode, nil)
			token, _ := mint(t, idp, nil)
			first, err := f.a.Authenticate(t.Context(), token)
			if err != nil {
				t.Fatal(err)
			}
			calls, fetches, verifies := validateCalls(), keyFetches(), f.verifies.Load()
			f.clock.Advance(time.Minute)
			for range 5 {
				res, err := f.a.Authenticate(t.Context(), token)
				if err != nil {
					t.Fatal(err)
				}
				if res.Claims.UserID != first.Claims.UserID || res.Hash != first.Hash {
					t.Errorf("cached result %+v differs from the first %+v", res, first)
				}
			}
			if n := validateCalls() - calls; n != 0 {
				t.Errorf("validate_token calls for a cached token = %d, want 0", n)
			}
			if n := keyFetches() - fetches; n != 0 {
				t.Errorf("key fetches for a cached token = %d, want 0", n)
			}
			if n := f.verifies.Load() - verifies; n != 0 {
				t.Errorf("local verifications for a cached token = %d, want 0", n)
			}
			if n := f.a.CacheLen(); n != 1 {
				t.Errorf("CacheLen = %d, want 1", n)
			}
			if hits, misses := f.a.CacheStats(); hits != 5 || misses != 1 {
				t.Errorf("CacheStats = %d hits, %d misses; want 5 and 1", hits, misses)
			}
		})
	}
}

func TestRecheckInterval(t *testing.T) {
	const recheck = 2 * time.Minute
	for _, mode := range []bearer.Mode{bearer.ModeRemote, bearer.ModeBoth} {
		t.Run(string(mode), func(t *testing.T) {
			f := newFixture(t, mode, func(c *bearer.Config) { c.RecheckInterval = recheck })
			token, _ := mint(t, idp, nil)
			if _, err := f.a.Authenticate(t.Context(), token); err != nil {
				t.Fatal(err)
			}
			calls := validateCalls()
			f.clock.Advance(recheck - time.Second)
			if _, err := f.a.Authenticate(t.Context(), token); err != nil {
				t.Fatal(err)
			}
			if n := validateCalls() - calls; n != 0 {
				t.Fatalf("validate_token calls before the re-check is due = %d, want 0", n)
			}
			f.clock.Advance(2 * time.Second)
			if _, err := f.a.Authenticate(t.Context(), token); err != nil {
				t.Fatal(err)
			}
			if n := validateCalls() - calls; n != 1 {
				t.Fatalf("validate_token calls after the re-check interval = %d, want 1", n)
			}
			// The re-check starts a new interval.
			f.clock.Advance(recheck - time.Second)
			if _, err := f.a.Authenticate(t.Context(), token); err != nil {
				t.Fatal(err)
			}
			if n := validateCalls() - calls; n != 1 {
				t.Errorf("validate_token calls within the new interval = %d, want 1", n)
			}
		})
	}
}

// TestRevokedWhileCached documents how long a revoked token keeps working:
// in remote and both modes until the re-check is due, in local mode until
// it expires.
func TestRevokedWhileCached(t *testing.T) {
	const recheck = 5 * time.Minute
	for _, mode := range modes {
		t.Run(string(mode), func(t *testing.T) {
			f := newFixture(t, mode, func(c *bearer.Config) { c.RecheckInterval = recheck })
			token, _ := mint(t, idp, nil)
			if _, err := f.a.Authenticate(t.Context(), token); err != nil {
				t.Fatal(err)
			}
			idp.Revoke(token)
			f.clock.Advance(recheck - time.Second)
			if _, err := f.a.Authenticate(t.Context(), token); err != nil {
				t.Fatalf("revoked token refused before the re-check is due: %v", err)
			}
			f.clock.Advance(2 * time.Second)
			calls := validateCalls()
			_, err := f.a.Authenticate(t.Context(), token)
			if mode == bearer.ModeLocal {
				if err != nil {
					t.Fatalf("local mode refused a revoked token: %v (it cannot know of revocation)", err)
				}
				if n := validateCalls() - calls; n != 0 {
					t.Errorf("local mode made %d validate_token calls", n)
				}
				return
			}
			wantAuthError(t, err, http.StatusUnauthorized, auth.CodeInvalidToken, auth.ReasonInvalidToken, nil)
			if n := validateCalls() - calls; n != 1 {
				t.Errorf("validate_token calls at the re-check = %d, want 1", n)
			}
		})
	}
}

func TestCachedTokenExpires(t *testing.T) {
	for _, mode := range modes {
		t.Run(string(mode), func(t *testing.T) {
			f := newFixture(t, mode, func(c *bearer.Config) { c.RecheckInterval = time.Hour })
			// Created a little in the past so that it is already live on
			// the emulator's real clock.
			token, _ := mint(t, idp, func(r *imstest.TokenRequest) {
				r.CreatedAt = f.clock.Now().Add(-time.Second)
				r.Lifetime = 10 * time.Minute
			})
			if _, err := f.a.Authenticate(t.Context(), token); err != nil {
				t.Fatal(err)
			}
			f.clock.Advance(10*time.Minute + 2*time.Minute) // past expiry and the 1-minute skew
			calls := validateCalls()
			_, err := f.a.Authenticate(t.Context(), token)
			wantAuthError(t, err, http.StatusUnauthorized, auth.CodeInvalidToken, auth.ReasonExpiredToken, nil)
			if n := validateCalls() - calls; n != 0 {
				t.Errorf("validate_token calls for an expired token = %d, want 0", n)
			}
		})
	}
}

func TestNegativeCache(t *testing.T) {
	const ttl = 30 * time.Second
	for _, mode := range []bearer.Mode{bearer.ModeRemote, bearer.ModeBoth} {
		t.Run(string(mode), func(t *testing.T) {
			f := newFixture(t, mode, func(c *bearer.Config) { c.NegativeTTL = ttl })
			token, _ := mint(t, idp, nil)
			idp.Revoke(token)
			calls := validateCalls()
			for i := range 10 {
				_, err := f.a.Authenticate(t.Context(), token)
				wantAuthError(t, err, http.StatusUnauthorized, auth.CodeInvalidToken, auth.ReasonInvalidToken, nil)
				if i == 0 {
					f.clock.Advance(ttl - time.Second)
				}
			}
			if n := validateCalls() - calls; n != 1 {
				t.Errorf("validate_token calls for 10 tries of a revoked token = %d, want 1", n)
			}
			f.clock.Advance(2 * time.Second)
			_, err := f.a.Authenticate(t.Context(), token)
			wantAuthError(t, err, http.StatusUnauthorized, auth.CodeInvalidToken, auth.ReasonInvalidToken, nil)
			if n := validateCalls() - calls; n != 2 {
				t.Errorf("validate_token calls after NegativeTTL = %d, want 2", n)
			}
		})
	}
}

// TestLocalRejectionsNotCached: a locally refused token is cheap to refuse
// again and must not take a cache slot that a client could fill at will.
func TestLocalRejectionsNotCached(t *testing.T) {
	for _, mode := range modes {
		t.Run(string(mode), func(t *testing.T) {
			f := newFixture(t, mode, nil)
			for i := range 5 {
				tok, _ := mint(t, idp, func(r *imstest.TokenRequest) { r.ClientID = fmt.Sprintf("not-allowed-%d", i) })
				if _, err := f.a.Authenticate(t.Context(), tok); err == nil {
					t.Fatal("token of a client not allowed was accepted")
				}
			}
			if n := f.a.CacheLen(); n != 0 {
				t.Errorf("CacheLen = %d after local rejections, want 0", n)
			}
		})
	}
}

func TestSingleFlight(t *testing.T) {
	const n = 50
	for _, mode := range modes {
		t.Run(string(mode), func(t *testing.T) {
			f := newFixture(t, mode, nil)
			token, _ := mint(t, idp, nil)
			calls := validateCalls()
			var (
				start = make(chan struct{})
				wg    sync.WaitGroup
				errs  = make(chan error, n)
				users = make(chan string, n)
			)
			for range n {
				wg.Go(func() {
					<-start
					res, err := f.a.Authenticate(t.Context(), token)
					if err != nil {
						errs <- err
						return
					}
					users <- res.Claims.UserID
				})
			}
			close(start)
			wg.Wait()
			close(errs)
			close(users)
			for err := range errs {
				t.Errorf("Authenticate: %v", err)
			}
			for u := range users {
				if u != testUser {
					t.Errorf("user = %q, want %q", u, testUser)
				}
			}
			want := int64(1)
			if mode == bearer.ModeLocal {
				want = 0
			}
			if got := validateCalls() - calls; got != want {
				t.Errorf("validate_token calls for %d concurrent requests = %d, want %d", n, got, want)
			}
			if mode != bearer.ModeRemote {
				if got := f.verifies.Load(); got != 1 {
					t.Errorf("local verifications for %d concurrent requests = %d, want 1", n, got)
				}
			}
		})
	}
}

func TestIMSTrouble(t *testing.T) {
	tests := []struct {
		name  string
		set   func(on bool)
		cause error
	}{
		{"down", idp.SetDown, ims.ErrUnavailable},
		{"rate limited", idp.SetRateLimited, ims.ErrRateLimited},
	}
	for _, tt := range tests {
		for _, mode := range []bearer.Mode{bearer.ModeRemote, bearer.ModeBoth} {
			t.Run(tt.name+"/"+string(mode), func(t *testing.T) {
				f := newFixture(t, mode, nil)
				token, _ := mint(t, idp, nil)
				tt.set(true)
				t.Cleanup(func() { tt.set(false) })
				for range 2 {
					res, err := f.a.Authenticate(t.Context(), token)
					if res != nil {
						t.Errorf("result = %+v, want none", res)
					}
					wantAuthError(t, err, http.StatusServiceUnavailable, "", auth.ReasonUnavailable, tt.cause)
				}
				if n := f.a.CacheLen(); n != 0 {
					t.Errorf("CacheLen = %d: an outage was cached", n)
				}
				tt.set(false)
				calls := validateCalls()
				res, err := f.a.Authenticate(t.Context(), token)
				if err != nil {
					t.Fatalf("after IMS recovered: %v", err)
				}
				if res.Claims.UserID != testUser {
					t.Errorf("user = %q", res.Claims.UserID)
				}
				if n := validateCalls() - calls; n != 1 {
					t.Errorf("validate_token calls after recovery = %d, want 1", n)
				}
			})
		}
	}
	t.Run("down/local", func(t *testing.T) {
		// Local validation needs only the keys already held.
		f := newFixture(t, bearer.ModeLocal, nil)
		token, _ := mint(t, idp, nil)
		idp.SetDown(true)
		t.Cleanup(func() { idp.SetDown(false) })
		if _, err := f.a.Authenticate(t.Context(), token); err != nil {
			t.Errorf("local mode during an IMS outage: %v", err)
		}
	})
}

// TestKeysUnavailable: when the signing keys cannot be fetched, a token
// cannot be judged either way: 503, not 401, and nothing cached.
func TestKeysUnavailable(t *testing.T) {
	for _, mode := range []bearer.Mode{bearer.ModeLocal, bearer.ModeBoth} {
		t.Run(string(mode), func(t *testing.T) {
			token, _ := mint(t, idp, nil)
			idp.SetDown(true)
			t.Cleanup(func() { idp.SetDown(false) })
			f := buildFixture(t, mode, nil, false)
			calls := validateCalls()
			_, err := f.a.Authenticate(t.Context(), token)
			wantAuthError(t, err, http.StatusServiceUnavailable, "", auth.ReasonUnavailable, ims.ErrKeysUnavailable)
			if n := f.a.CacheLen(); n != 0 {
				t.Errorf("CacheLen = %d: a key outage was cached", n)
			}
			if n := validateCalls() - calls; n != 0 {
				t.Errorf("validate_token calls = %d, want 0 (nothing to ask before the signature is checked)", n)
			}
		})
	}
}

func TestCacheBound(t *testing.T) {
	const size, tokens = 10, 30
	for _, mode := range modes {
		t.Run(string(mode), func(t *testing.T) {
			f := newFixture(t, mode, func(c *bearer.Config) { c.CacheSize = size })
			for i := range tokens {
				tok, _ := mint(t, idp, nil)
				if _, err := f.a.Authenticate(t.Context(), tok); err != nil {
					t.Fatalf("token %d: %v", i, err)
				}
				if n := f.a.CacheLen(); n > size || n == 0 {
					t.Fatalf("after %d tokens CacheLen = %d, want 1 to %d", i+1, n, size)
				}
			}
		})
	}
}

func TestForget(t *testing.T) {
	for _, mode := range modes {
		t.Run(string(mode), func(t *testing.T) {
			f := newFixture(t, mode, nil)
			token, _ := mint(t, idp, nil)
			other, _ := mint(t, idp, nil)
			res, err := f.a.Authenticate(t.Context(), token)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.a.Authenticate(t.Context(), other); err != nil {
				t.Fatal(err)
			}
			f.a.Forget(res.Hash)
			if n := f.a.CacheLen(); n != 1 {
				t.Fatalf("CacheLen after Forget = %d, want 1", n)
			}
			calls, verifies := validateCalls(), f.verifies.Load()
			if _, err := f.a.Authenticate(t.Context(), other); err != nil {
				t.Fatal(err)
			}
			if validateCalls() != calls || f.verifies.Load() != verifies {
				t.Error("Forget dropped another token's entry")
			}
			if _, err := f.a.Authenticate(t.Context(), token); err != nil {
				t.Fatal(err)
			}
			wantCalls := int64(1)
			if mode == bearer.ModeLocal {
				wantCalls = 0
			}
			if n := validateCalls() - calls; n != wantCalls {
				t.Errorf("validate_token calls after Forget = %d, want %d", n, wantCalls)
			}
			if mode != bearer.ModeRemote && f.verifies.Load()-verifies != 1 {
				t.Errorf("local verifications after Forget = %d, want 1", f.verifies.Load()-verifies)
			}
			f.a.Forget(bearer.Hash{}) // unknown: no effect
			if n := f.a.CacheLen(); n != 2 {
				t.Errorf("CacheLen = %d, want 2", n)
			}
		})
	}
}

var shortSink string

func TestHashShort(t *testing.T) {
	h := bearer.Hash(sha256.Sum256([]byte("token")))
	if s := h.Short(); len(s) != 12 || !strings.HasPrefix(fmt.Sprintf("%x", h[:]), s) {
		t.Errorf("Short() = %q", s)
	}
	// Every sign-in's audit line carries it: one allocation, the string.
	if n := testing.AllocsPerRun(100, func() { shortSink = h.Short() }); n != 1 {
		t.Errorf("Short allocates %v times, want 1", n)
	}
}

// TestErrorsNeverCarryTheToken: descriptions reach the client and errors
// reach logs; neither may hold the token.
func TestErrorsNeverCarryTheToken(t *testing.T) {
	for _, mode := range modes {
		t.Run(string(mode), func(t *testing.T) {
			f := newFixture(t, mode, nil)
			token, _ := mint(t, idp, nil)
			idp.Revoke(token)
			revoked := token
			expired, _ := mint(t, idp, func(r *imstest.TokenRequest) { r.CreatedAt = time.Now().Add(-48 * time.Hour) })
			forgedTok, _ := mint(t, forger, nil)
			for _, tok := range []string{revoked, expired, forgedTok} {
				_, err := f.a.Authenticate(t.Context(), tok)
				if err == nil {
					continue // revoked, local mode
				}
				sig := tok[strings.LastIndexByte(tok, '.')+1:]
				if strings.Contains(err.Error(), sig) || strings.Contains(auth.AsError(err).Description, sig) {
					t.Errorf("error %q carries the token", err)
				}
			}
		})
	}
}
