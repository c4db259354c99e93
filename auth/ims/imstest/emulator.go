// Package imstest is an in-process emulator of Adobe's identity service
// (IMS), in the manner of net/http/httptest. It mints RS256 access tokens in
// the service's own shape (no iss, aud or exp; created_at and expires_in as
// decimal strings of milliseconds), publishes its keys both as a JWKS
// (/ims/keys) and as PEM certificates named by the tokens' x5u header
// (/keys/prod/<x5u>), and answers the validation, profile, organizations,
// userinfo, revocation and discovery endpoints at the real paths, in the
// shapes the service uses; SetVariantAnswers switches to the variant shapes
// the service has been seen to use as well, and SetAnswer to any answer at
// all, for testing a client's reading of them.
//
// Technical accounts (AddTechAccount, RegisterCertificate) obtain tokens
// by the JWT exchange (/ims/exchange/jwt, verified against the registered
// certificates) and by client credentials (/ims/token/v3). A small test
// API under /testapi/, which the real service does not have, stands for an
// API behind the gateway: it insists on Authorization, x-api-key and
// x-gw-ims-org-id.
//
// Tests start one with NewServer; `gatehouse ims-emulator` serves an
// Emulator (an http.Handler) on its own. Users, their organizations and
// groups, tokens, key rotation, outages and rate limiting are controlled
// through Go methods or, for a standalone emulator, through the
// emulator-only development endpoints under /ims/dev/, which the real
// service does not have.
package imstest

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/gatehouse-proxy/gatehouse/auth/ims"
)

// Endpoint names, as counted by Calls.
const (
	EndpointKeys          = "keys"           // GET /ims/keys
	EndpointCerts         = "certs"          // GET /keys/prod/{x5u}, /keys/nonprod/{x5u}
	EndpointValidate      = "validate_token" // POST or GET /ims/validate_token/v1
	EndpointProfile       = "profile"        // GET /ims/profile/v1
	EndpointOrganizations = "organizations"  // GET /ims/organizations/v5 and /v6
	EndpointUserInfo      = "userinfo"       // GET or POST /ims/userinfo/v2
	EndpointRevoke        = "revoke"         // POST /ims/revoke
	EndpointDiscovery     = "discovery"      // GET /ims/.well-known/openid-configuration
	EndpointDev           = "dev"            // /ims/dev/… (emulator only)
	EndpointExchange      = "exchange_jwt"   // POST /ims/exchange/jwt
	EndpointToken         = "token"          // POST /ims/token/v3
	EndpointTestAPI       = "testapi"        // any method on /testapi/… (emulator only: an API behind the gateway)
)

// endpointUnknown counts requests for paths the emulator does not serve.
const endpointUnknown = ""

// Defaults for Options and TokenRequest.
const (
	DefaultCluster     = "ims-na1"
	DefaultKeyID       = "ims_na1-key-at-1"
	DefaultScope       = "AdobeID,openid,read_organizations"
	DefaultLifetime    = 24 * time.Hour
	DefaultAccountType = "type1"
)

// ErrUnknownUser is returned (wrapped) by MintToken and SetGroups for a
// user id that was never added.
var ErrUnknownUser = errors.New("unknown user")

// Options configures an Emulator. The zero value is usable.
type Options struct {
	// Cluster is the "as" claim of minted tokens. Empty means "ims-na1".
	Cluster string
	// KeyID is the kid of the first signing key; its certificate is
	// published as KeyID + ".cer". Rotated keys count up a trailing
	// "-<n>" ("ims_na1-key-at-2", …). Empty means "ims_na1-key-at-1".
	KeyID string
	// Now is the emulator's clock (token creation, expiry checks,
	// certificate validity). Nil means time.Now.
	Now func() time.Time
	// Logger receives one debug line per request (never a token). Nil
	// means no logging.
	Logger *zap.Logger
}

// User is an IMS user the emulator knows. The JSON names are those of the
// development endpoint POST /ims/dev/users.
type User struct {
	ID          string `json:"id"` // e.g. "7F8F1234ABCD@AdobeID"
	Email       string `json:"email"`
	FirstName   string `json:"firstName"`
	LastName    string `json:"lastName"`
	DisplayName string `json:"displayName"` // empty means FirstName + " " + LastName
	CountryCode string `json:"countryCode"`
	AccountType string `json:"accountType"` // empty means "type1"
	Orgs        []Org  `json:"orgs"`
}

// Org is a user's membership of one organization.
type Org struct {
	ID     string      `json:"id"`   // "<ident>@AdobeOrg", e.g. "1234ABCD@AdobeOrg"
	Name   string      `json:"name"` // empty means the ident
	Groups []ims.Group `json:"groups"`
}

// TokenRequest describes a token for MintToken. UserID and ClientID are
// required; the rest have defaults.
type TokenRequest struct {
	UserID   string
	ClientID string
	// Scope is comma separated. Empty means "AdobeID,openid,read_organizations".
	Scope string
	// Lifetime becomes expires_in. Zero means 24 hours; negative is an error.
	Lifetime time.Duration
	// CreatedAt becomes created_at. Zero means Options.Now().
	CreatedAt time.Time
	// Type is the "type" claim. Empty means "access_token".
	Type string
	// Cluster is the "as" claim. Empty means Options.Cluster.
	Cluster string
}

// Emulator is an emulated IMS. It implements http.Handler and is safe for
// concurrent use. Create it with New.
type Emulator struct {
	cluster string
	now     func() time.Time
	log     *zap.Logger
	handler *http.ServeMux

	keyBase string // kid without its trailing "-<n>"
	keyNum  int    // n of the current kid (0 when the first had none); guarded by rotateMu

	rotateMu sync.Mutex // serializes RotateKey, so keys stay in kid order

	mu     sync.RWMutex
	keys   []*signingKey           // in publication order; the last one signs
	users  map[string]*User        // by user id; stored copies
	tokens map[string]*minted      // every token minted, by token id
	techs  map[string]*techAccount // technical accounts, by client id

	down        atomic.Bool
	rateLimited atomic.Bool
	variant     atomic.Bool
	answers     sync.Map                 // endpoint name -> []byte, set by SetAnswer
	calls       map[string]*atomic.Int64 // fixed key set; the map itself is read-only

	browser browserState // the authorization code flow (browser.go)
}

// New makes an Emulator with a fresh 2048-bit RSA signing key and a
// self-signed certificate for it.
func New(opts Options) (*Emulator, error) {
	if opts.Cluster == "" {
		opts.Cluster = DefaultCluster
	}
	if opts.KeyID == "" {
		opts.KeyID = DefaultKeyID
	}
	if strings.ContainsAny(opts.KeyID, "/\\?#% ") {
		return nil, fmt.Errorf("imstest: key id %q: must be usable as a file name", opts.KeyID)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	e := &Emulator{
		cluster: opts.Cluster,
		now:     opts.Now,
		log:     opts.Logger,
		users:   make(map[string]*User),
		tokens:  make(map[string]*minted),
		techs:   make(map[string]*techAccount),
		calls:   make(map[string]*atomic.Int64),
	}
	e.keyBase, e.keyNum = splitKeyID(opts.KeyID)
	for _, name := range []string{
		EndpointKeys, EndpointCerts, EndpointValidate, EndpointProfile,
		EndpointOrganizations, EndpointUserInfo, EndpointRevoke,
		EndpointDiscovery, EndpointDev, EndpointExchange, EndpointToken,
		EndpointTestAPI, EndpointAuthorize, EndpointLogout, endpointUnknown,
	} {
		e.calls[name] = new(atomic.Int64)
	}
	k, err := newSigningKey(opts.KeyID, e.now())
	if err != nil {
		return nil, fmt.Errorf("imstest: create signing key: %w", err)
	}
	e.keys = []*signingKey{k}
	e.browser.clients = make(map[string]BrowserClient)
	e.browser.codes = make(map[string]*authCode)
	e.browser.sessions = make(map[string]string)
	e.handler = e.routes()
	return e, nil
}

// splitKeyID splits "ims_na1-key-at-1" into "ims_na1-key-at" and 1; a kid
// without a numeric suffix gives itself and 0.
func splitKeyID(kid string) (string, int) {
	if i := strings.LastIndexByte(kid, '-'); i > 0 {
		if n, err := strconv.Atoi(kid[i+1:]); err == nil && n >= 0 {
			return kid[:i], n
		}
	}
	return kid, 0
}

// CertsPath is the base path of the PEM certificates: a verifier fetches
// URL + CertsPath() + <x5u>. The same files are served under /keys/nonprod/.
func (e *Emulator) CertsPath() string { return "/keys/prod/" }

// AddUser adds u, or replaces the user with the same ID. The emulator keeps
// a copy. Empty AccountType becomes "type1"; groups get defaults (see
// SetGroups), and a group whose Ident is missing or not a number gets a
// stable generated one. A user without an ID is ignored.
func (e *Emulator) AddUser(u User) {
	if u.ID == "" {
		e.log.Warn("imstest: AddUser without an id ignored")
		return
	}
	c := copyUser(u)
	for i := range c.Orgs {
		for j := range c.Orgs[i].Groups {
			g := &c.Orgs[i].Groups[j]
			if !validIdent(g.Ident) {
				g.Ident = ""
			}
		}
		normalizeOrg(&c.Orgs[i])
	}
	e.mu.Lock()
	e.users[c.ID] = c
	e.mu.Unlock()
}

// SetGroups replaces the user's groups in one organization, adding the
// membership if the user had none there. Groups get defaults: an empty
// Ident a stable generated number, GroupDisplayName the GroupName, Role
// "TEAM_MEMBER", GroupType "USER_GROUP". It fails with ErrUnknownUser for
// an unknown user, and for an empty org id or a non-numeric Ident.
func (e *Emulator) SetGroups(userID, orgID string, groups []ims.Group) error {
	if orgID == "" {
		return errors.New("imstest: set groups: empty org id")
	}
	for _, g := range groups {
		if g.Ident != "" && !validIdent(g.Ident) {
			return fmt.Errorf("imstest: set groups: group %q: ident %q is not a number", g.GroupName, g.Ident)
		}
	}
	org := Org{ID: orgID, Groups: append([]ims.Group(nil), groups...)}
	e.mu.Lock()
	defer e.mu.Unlock()
	u, ok := e.users[userID]
	if !ok {
		return fmt.Errorf("imstest: set groups for %q: %w", userID, ErrUnknownUser)
	}
	for i := range u.Orgs {
		if u.Orgs[i].ID == orgID {
			org.Name = u.Orgs[i].Name
			normalizeOrg(&org)
			u.Orgs[i] = org
			return nil
		}
	}
	normalizeOrg(&org)
	u.Orgs = append(u.Orgs, org)
	return nil
}

// user returns a copy of the stored user, safe to read without the lock.
func (e *Emulator) user(id string) (*User, bool) {
	e.mu.RLock()
	defer e.mu.RUnlock()
	u, ok := e.users[id]
	if !ok {
		return nil, false
	}
	return copyUser(*u), true
}

func copyUser(u User) *User {
	c := u
	c.Orgs = make([]Org, len(u.Orgs))
	for i, o := range u.Orgs {
		c.Orgs[i] = o
		c.Orgs[i].Groups = append([]ims.Group{}, o.Groups...)
	}
	if c.AccountType == "" {
		c.AccountType = DefaultAccountType
	}
	return &c
}

func normalizeOrg(o *Org) {
	ident, _ := splitOrgID(o.ID)
	if o.Name == "" {
		o.Name = ident
	}
	if o.Groups == nil {
		o.Groups = []ims.Group{}
	}
	for i := range o.Groups {
		g := &o.Groups[i]
		if g.Ident == "" {
			g.Ident = generatedIdent(o.ID, g.GroupName)
		}
		if g.GroupDisplayName == "" {
			g.GroupDisplayName = g.GroupName
		}
		if g.Role == "" {
			g.Role = "TEAM_MEMBER"
		}
		if g.GroupType == "" {
			g.GroupType = "USER_GROUP"
		}
	}
}

// splitOrgID splits "1234ABCD@AdobeOrg" into its ident and auth source; an
// id without "@" is an ident of source AdobeOrg.
func splitOrgID(id string) (ident, authSrc string) {
	if i := strings.LastIndexByte(id, '@'); i >= 0 {
		return id[:i], id[i+1:]
	}
	return id, "AdobeOrg"
}

// generatedIdent is a stable nine-digit group ident, like IMS's.
func generatedIdent(orgID, groupName string) json.Number {
	h := fnv.New32a()
	h.Write([]byte(orgID + "\x00" + groupName))
	return json.Number(strconv.FormatUint(100000000+uint64(h.Sum32())%900000000, 10))
}

func validIdent(n json.Number) bool {
	if n == "" {
		return false
	}
	_, err := strconv.ParseInt(string(n), 10, 64)
	return err == nil
}

// Revoke marks a token revoked: validation answers "revoked" and the
// profile, organizations and userinfo endpoints 401. A token that does not
// carry this emulator's signature is ignored.
func (e *Emulator) Revoke(token string) {
	c, err := e.parse(token)
	if err != nil {
		return
	}
	e.revoke(c.ID)
}

// minted is what the emulator remembers of a token it signed.
type minted struct {
	claims  *ims.Claims
	revoked bool
}

func (e *Emulator) revoke(id string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	m, ok := e.tokens[id]
	if !ok {
		// Signed by this emulator's key but not minted by it: remember
		// the revocation all the same.
		m = &minted{}
		e.tokens[id] = m
	}
	m.revoked = true
}

func (e *Emulator) isRevoked(id string) bool {
	e.mu.RLock()
	defer e.mu.RUnlock()
	m, ok := e.tokens[id]
	return ok && m.revoked
}

// RotateKey makes a new signing key current and returns its kid. Earlier
// keys stay published, so tokens they signed remain valid.
func (e *Emulator) RotateKey() (string, error) {
	e.rotateMu.Lock()
	defer e.rotateMu.Unlock()
	// keyNum is guarded by rotateMu. Key generation is slow: it runs
	// without mu, so tokens go on being minted and checked meanwhile.
	kid := e.keyBase + "-" + strconv.Itoa(e.keyNum+1)
	k, err := newSigningKey(kid, e.now())
	if err != nil {
		return "", fmt.Errorf("imstest: rotate key: %w", err)
	}
	e.keyNum++
	e.mu.Lock()
	e.keys = append(e.keys, k)
	e.mu.Unlock()
	return kid, nil
}

// SetDown simulates an outage: while down, every IMS endpoint, the keys,
// certificates and token endpoints included, answers 503. The /ims/dev/
// endpoints and the test API (which stands for another service) keep
// working.
func (e *Emulator) SetDown(down bool) { e.down.Store(down) }

// SetRateLimited makes validate_token, profile, organizations and the two
// token endpoints (exchange_jwt, token) answer 429 with Retry-After while
// on.
func (e *Emulator) SetRateLimited(on bool) { e.rateLimited.Store(on) }

// Calls is the number of requests for an endpoint (an Endpoint… constant)
// since New or ResetCalls, whatever their outcome. Requests for unknown
// paths count under "".
func (e *Emulator) Calls(endpoint string) int64 {
	if c, ok := e.calls[endpoint]; ok {
		return c.Load()
	}
	return 0
}

// ResetCalls sets every count to zero.
func (e *Emulator) ResetCalls() {
	for _, c := range e.calls {
		c.Store(0)
	}
}

func (e *Emulator) count(endpoint string) {
	e.calls[endpoint].Add(1)
}

// randomUUID is a version 4 UUID from crypto/rand.
func randomUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand panics instead)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%x", b)
}
