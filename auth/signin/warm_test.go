package signin

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse-proxy/gatehouse/auth"
	"github.com/gatehouse-proxy/gatehouse/auth/bearer"
	"github.com/gatehouse-proxy/gatehouse/auth/groupmap"
	"github.com/gatehouse-proxy/gatehouse/auth/ims"
	"github.com/gatehouse-proxy/gatehouse/auth/ims/imstest"
	"github.com/gatehouse-proxy/gatehouse/auth/provision"
	"github.com/gatehouse-proxy/gatehouse/session"
	"github.com/gatehouse-proxy/gatehouse/session/sqlite"
)

// countingStore is the real SQLite store with a count of every call made
// to it, whatever the method.
type countingStore struct {
	session.Store
	n atomic.Int64
}

func (s *countingStore) calls() int64 { return s.n.Load() }

func (s *countingStore) GetUser(ctx context.Context, id string) (*session.User, error) {
	s.n.Add(1)
	return s.Store.GetUser(ctx, id)
}

func (s *countingStore) SyncUser(ctx context.Context, p session.Profile, groups []string, now time.Time) (*session.SyncResult, error) {
	s.n.Add(1)
	return s.Store.SyncUser(ctx, p, groups, now)
}

func (s *countingStore) CreateLoginToken(ctx context.Context, t *session.LoginToken) error {
	s.n.Add(1)
	return s.Store.CreateLoginToken(ctx, t)
}

func (s *countingStore) GetLoginTokenWithUser(ctx context.Context, id string) (*session.LoginToken, *session.User, error) {
	s.n.Add(1)
	return s.Store.GetLoginTokenWithUser(ctx, id)
}

func (s *countingStore) ExtendLoginToken(ctx context.Context, id string, exp time.Time) error {
	s.n.Add(1)
	return s.Store.ExtendLoginToken(ctx, id, exp)
}

func (s *countingStore) DeleteLoginToken(ctx context.Context, id string) error {
	s.n.Add(1)
	return s.Store.DeleteLoginToken(ctx, id)
}

func (s *countingStore) DeleteExpiredLoginTokens(ctx context.Context, now time.Time) (int64, error) {
	s.n.Add(1)
	return s.Store.DeleteExpiredLoginTokens(ctx, now)
}

func (s *countingStore) GetOrCreateSetting(ctx context.Context, key string, value []byte) ([]byte, error) {
	s.n.Add(1)
	return s.Store.GetOrCreateSetting(ctx, key, value)
}

func (s *countingStore) Ping(ctx context.Context) error {
	s.n.Add(1)
	return s.Store.Ping(ctx)
}

// warmFixture is the sign-in step wired as `gatehouse serve` wires it:
// the IMS emulator over loopback, the real verifier, client and
// provisioner, and the SQLite store behind a call counter. It works with
// tests and benchmarks alike.
type warmFixture struct {
	emu    *imstest.Server
	store  *countingStore
	bearer *bearer.Authenticator
	si     *Handler
	h      http.Handler
}

func newWarmFixture(tb testing.TB, mode bearer.Mode) *warmFixture {
	tb.Helper()
	ctx := context.Background()
	f := &warmFixture{}
	f.emu = imstest.NewServer(imstest.Options{})
	tb.Cleanup(f.emu.Close)
	f.emu.AddUser(imstest.User{ID: alice, Email: "alice@example.com", FirstName: "Alice", LastName: "A",
		Orgs: []imstest.Org{{ID: orgID, Name: "Org", Groups: []ims.Group{
			{GroupName: "Authors", Role: "TEAM_MEMBER"}, {GroupName: "Admins", Role: "GRP_ADMIN"}}}}})
	db, err := sqlite.Open(ctx, filepath.Join(tb.TempDir(), "g.db"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = db.Close() })
	f.store = &countingStore{Store: db}

	keys, err := ims.NewKeySet(ims.KeySetConfig{JWKSURL: f.emu.URL + "/ims/keys"})
	if err != nil {
		tb.Fatal(err)
	}
	if err := keys.Load(ctx); err != nil {
		tb.Fatal(err)
	}
	verifier, err := ims.NewVerifier(ims.VerifierConfig{Keys: keys, Cluster: "ims-na1", ClientIDs: []string{clientID}})
	if err != nil {
		tb.Fatal(err)
	}
	client, err := ims.NewClient(f.emu.URL, nil)
	if err != nil {
		tb.Fatal(err)
	}
	f.bearer, err = bearer.New(bearer.Config{Mode: mode, Verifier: verifier, Client: client,
		ClientIDs: []string{clientID}, Cluster: "ims-na1"})
	if err != nil {
		tb.Fatal(err)
	}
	mapping, err := groupmap.Parse("*:GRP_ADMIN=administrators")
	if err != nil {
		tb.Fatal(err)
	}
	sessKeys, _, err := session.LoadCookieKeys(ctx, f.store, "")
	if err != nil {
		tb.Fatal(err)
	}
	mgr, err := session.NewManager(f.store, sessKeys, session.ManagerConfig{TTL: 12 * time.Hour, CookieSecure: true})
	if err != nil {
		tb.Fatal(err)
	}
	prov, err := provision.New(provision.Config{IMS: client, Store: f.store, Org: orgID, Mapping: mapping,
		SyncInterval: time.Hour, OnSync: mgr.ForgetUser})
	if err != nil {
		tb.Fatal(err)
	}
	f.si, err = New(Config{Bearer: f.bearer, Provisioner: prov, Sessions: mgr})
	if err != nil {
		tb.Fatal(err)
	}
	f.h = f.si.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, ok := auth.FromContext(r.Context())
		if !ok || id.UserID != alice {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		w.Header().Set("X-Method", string(id.Method))
		w.WriteHeader(http.StatusNoContent)
	}))
	return f
}

// imsCalls counts every request the emulator answered, key fetches included.
func (f *warmFixture) imsCalls() int64 {
	var n int64
	for _, e := range []string{imstest.EndpointKeys, imstest.EndpointCerts, imstest.EndpointValidate,
		imstest.EndpointProfile, imstest.EndpointOrganizations, imstest.EndpointUserInfo,
		imstest.EndpointRevoke, imstest.EndpointDiscovery} {
		n += f.emu.Calls(e)
	}
	return n
}

func (f *warmFixture) token(tb testing.TB) string {
	tb.Helper()
	tok, _, err := f.emu.MintToken(imstest.TokenRequest{UserID: alice, ClientID: clientID})
	if err != nil {
		tb.Fatal(err)
	}
	return tok
}

// serve sends one request through the sign-in step.
func (f *warmFixture) serve(bearerToken, cookie string) *httptest.ResponseRecorder {
	r := httptest.NewRequest("GET", "/content/dam/a.jpg", nil)
	if bearerToken != "" {
		r.Header.Set("Authorization", "Bearer "+bearerToken)
	}
	if cookie != "" {
		r.Header.Set("Cookie", session.DefaultCookieName+"="+cookie)
	}
	w := httptest.NewRecorder()
	f.h.ServeHTTP(w, r)
	return w
}

// signIn signs alice in with a new bearer token and returns it and the
// login token.
func (f *warmFixture) signIn(tb testing.TB) (tok, cookie string) {
	tb.Helper()
	tok = f.token(tb)
	w := f.serve(tok, "")
	c := loginCookie(w)
	if w.Code != http.StatusNoContent || c == nil {
		tb.Fatalf("sign-in: status %d, cookie %v: %s", w.Code, c, w.Body)
	}
	return tok, c.Value
}

// TestWarmRequestsCostNoRoundTrip is the budget's last item: once a login
// token has been checked, requests carrying it make no call to the store
// and none to IMS, sequential or concurrent; nor does a bearer token that
// was already validated and given a login token.
func TestWarmRequestsCostNoRoundTrip(t *testing.T) {
	for _, mode := range []bearer.Mode{bearer.ModeLocal, bearer.ModeBoth} {
		t.Run(string(mode), func(t *testing.T) {
			f := newWarmFixture(t, mode)
			tok, cookie := f.signIn(t)
			// The first cookie request reads the token and its user once.
			if w := f.serve("", cookie); w.Code != http.StatusNoContent {
				t.Fatalf("first cookie request: status %d: %s", w.Code, w.Body)
			}

			check := func(name, bearerToken, cookie, method string) {
				t.Helper()
				store, ims := f.store.calls(), f.imsCalls()
				const goroutines, each = 8, 50
				var wg sync.WaitGroup
				var bad atomic.Int64
				for range goroutines {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for range each {
							w := f.serve(bearerToken, cookie)
							if w.Code != http.StatusNoContent || w.Header().Get("X-Method") != method {
								bad.Add(1)
							}
						}
					}()
				}
				wg.Wait()
				if n := bad.Load(); n > 0 {
					t.Errorf("%s: %d of %d requests not authenticated by %s", name, n, goroutines*each, method)
				}
				if n := f.store.calls() - store; n != 0 {
					t.Errorf("%s: %d store calls in %d requests, want 0", name, n, goroutines*each)
				}
				if n := f.imsCalls() - ims; n != 0 {
					t.Errorf("%s: %d IMS calls in %d requests, want 0", name, n, goroutines*each)
				}
			}
			check("warm cookie", "", cookie, string(auth.MethodCookie))
			check("same bearer again", tok, "", string(auth.MethodBearer))
			check("cookie and the same user's bearer", tok, cookie, string(auth.MethodCookie))
		})
	}
}

// TestSentCookieLine checks the remembered Set-Cookie line is always the
// cookie's own String().
func TestSentCookieLine(t *testing.T) {
	s := &sentCookie{}
	exp := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	for _, c := range []*http.Cookie{
		{Name: "login-token", Value: "abc", Path: "/", Expires: exp, MaxAge: 3600, HttpOnly: true, Secure: true, SameSite: http.SameSiteLaxMode},
		{Name: "login-token", Value: "abc", Path: "/", Expires: exp, MaxAge: 3600, HttpOnly: true, Secure: true, SameSite: http.SameSiteLaxMode},
		{Name: "login-token", Value: "abc", Path: "/", Expires: exp, MaxAge: 3599, HttpOnly: true, Secure: true, SameSite: http.SameSiteLaxMode},
		{Name: "login-token", Value: "abc", Path: "/", Expires: exp.Add(time.Hour), MaxAge: 3599, HttpOnly: true, Secure: true, SameSite: http.SameSiteLaxMode},
	} {
		if got, want := s.line(c), c.String(); got != want {
			t.Errorf("line = %q, want %q", got, want)
		}
	}
}
