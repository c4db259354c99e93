// Package aem is a small in-memory stand-in for an AEM Author instance: the
// upstream in Gatehouse's demo and end-to-end tests.
//
// Like an AEM behind Gatehouse, it trusts X-Forwarded-User (answering 401
// without it) and records what reached it, so that tests can check what
// Gatehouse forwarded and what it removed. It serves:
//
//	GET  /, /content/<page>.html                         an HTML page naming the user
//	GET  /libs/granite/security/currentuser.json
//	GET  /content/dam.json, /content/dam/<folder>.json   folder listings
//	GET  /content/dam/<asset>.json                       asset metadata
//	GET  /content/dam/<asset>                            asset bytes
//	PUT  /content/dam/<asset>                            upload (streamed)
//	POST /content/dam/<asset>?:operation=checkout|checkin
//	GET  /bin/querybuilder.json?fulltext=<q>&path=<p>
//
// Every JSON answer includes "user", "email" and "groups" as the backend
// decoded them (package idheader); Seen keeps the headers as received.
//
// With RequireAssertion it is an upstream that does not trust plain
// headers: it verifies Gatehouse's signed assertion against the JWKS too.
package aem

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"html/template"
	"io"
	"mime"
	"net/http"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/gatehouse-proxy/gatehouse/auth/assertion"
	"github.com/gatehouse-proxy/gatehouse/proxy/idheader"
)

const (
	damRoot = "/content/dam"
	// maxKept is the largest upload whose bytes are kept; larger ones keep
	// only their size and hash, so that streaming tests can send hundreds
	// of megabytes without the backend holding them.
	maxKept = 1 << 20
	// maxSeen is how many requests Seen remembers.
	maxSeen = 256
	// cookieName is AEM's own login-token cookie, which Gatehouse uses too.
	cookieName = "login-token"
)

// Seen is what the backend recorded about one request.
type Seen struct {
	Method string
	Path   string
	// The identity headers, as received ("" when absent).
	User, Email, Groups string
	RequestID           string // X-Request-Id
	Assertion           string // X-Gatehouse-Assertion
	// Whether the client's credentials reached the backend.
	Authorization    bool
	LoginTokenCookie bool
}

// Backend is the fake AEM. It is safe for concurrent use.
type Backend struct {
	log      *zap.Logger
	requests atomic.Int64
	verifier atomic.Pointer[assertion.Verifier] // see RequireAssertion

	mu      sync.Mutex
	assets  map[string]*asset // by full path, e.g. /content/dam/a/b.jpg
	folders map[string]bool   // every folder, including damRoot
	seen    []Seen            // ring of the last maxSeen requests
	next    int               // where the next Seen goes once the ring is full
}

type asset struct {
	data         []byte
	kept         bool // false when the upload was larger than maxKept: data is nil
	size         int64
	sha256       string
	mimeType     string
	checkedOutBy string
	modifiedBy   string
	modified     time.Time
}

// New returns a backend seeded with a few folders and small assets under
// /content/dam/we-retail and /content/dam/wknd. A nil logger logs nothing.
func New(logger *zap.Logger) *Backend {
	if logger == nil {
		logger = zap.NewNop()
	}
	b := &Backend{
		log:     logger,
		assets:  make(map[string]*asset),
		folders: map[string]bool{damRoot: true},
	}
	for p, data := range seed {
		b.put(p, newAsset([]byte(data), "admin"))
	}
	return b
}

// seed holds the initial assets: small, recognisable contents.
var seed = map[string]string{
	damRoot + "/we-retail/en/activities/hiking.jpg":           "\xff\xd8\xff\xe0\x00\x10JFIF hiking \xff\xd9",
	damRoot + "/we-retail/en/activities/climbing.jpg":         "\xff\xd8\xff\xe0\x00\x10JFIF climbing \xff\xd9",
	damRoot + "/we-retail/en/activities/running/marathon.png": "\x89PNG\r\n\x1a\n marathon",
	damRoot + "/we-retail/en/documents/brochure.pdf":          "%PDF-1.4 brochure %%EOF",
	damRoot + "/wknd/en/adventures/surfing.jpg":               "\xff\xd8\xff\xe0\x00\x10JFIF surfing \xff\xd9",
	damRoot + "/wknd/en/readme.txt":                           "WKND assets for the Gatehouse demo.\n",
}

func newAsset(data []byte, user string) *asset {
	sum := sha256.Sum256(data)
	return &asset{data: data, kept: true, size: int64(len(data)), sha256: hex.EncodeToString(sum[:]), modifiedBy: user, modified: time.Now()}
}

// put stores a under p and creates the folders above it. b.mu must be held
// (or b not yet shared).
func (b *Backend) put(p string, a *asset) {
	a.mimeType = mimeType(p)
	b.assets[p] = a
	for dir := path.Dir(p); dir != damRoot && strings.HasPrefix(dir, damRoot+"/"); dir = path.Dir(dir) {
		b.folders[dir] = true
	}
}

// Seen returns the last requests the backend received (at most 256),
// oldest first.
func (b *Backend) Seen() []Seen {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.seen) < maxSeen {
		return slices.Clone(b.seen)
	}
	return append(slices.Clone(b.seen[b.next:]), b.seen[:b.next]...)
}

// RequireAssertion makes the backend verify X-Gatehouse-Assertion with v
// on every request, as an upstream that must not trust plain headers
// does: a request without a valid assertion, or whose assertion names
// another user, email or groups than the identity headers, is refused
// with 401. Nil turns the check off.
func (b *Backend) RequireAssertion(v *assertion.Verifier) { b.verifier.Store(v) }

// checkAssertion is RequireAssertion's check of r, whose identity
// headers decoded to u.
func (b *Backend) checkAssertion(r *http.Request, u who) error {
	v := b.verifier.Load()
	if v == nil {
		return nil
	}
	c, err := v.Verify(r.Context(), r.Header.Get(assertion.Header))
	if err != nil {
		return err
	}
	if c.Subject != u.user || c.Email != u.email || !slices.Equal(c.Groups, u.groups) {
		return errors.New("the assertion and the identity headers disagree")
	}
	return nil
}

// Requests returns how many requests the backend received, including the
// ones it refused.
func (b *Backend) Requests() int64 { return b.requests.Load() }

func (b *Backend) record(r *http.Request) {
	_, cookieErr := r.Cookie(cookieName)
	s := Seen{
		Method:           r.Method,
		Path:             r.URL.Path,
		User:             r.Header.Get("X-Forwarded-User"),
		Email:            r.Header.Get("X-Forwarded-Email"),
		Groups:           r.Header.Get("X-Forwarded-Groups"),
		RequestID:        r.Header.Get("X-Request-Id"),
		Assertion:        r.Header.Get(assertion.Header),
		Authorization:    r.Header.Get("Authorization") != "",
		LoginTokenCookie: cookieErr == nil,
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.seen) < maxSeen {
		b.seen = append(b.seen, s)
		return
	}
	b.seen[b.next] = s
	b.next = (b.next + 1) % maxSeen
}

// who is the user as the backend learned it from Gatehouse.
type who struct {
	user, email string
	groups      []string
}

// whoFrom decodes the identity headers the way an upstream of Gatehouse
// should (package idheader); an error means they were not Gatehouse's.
func whoFrom(r *http.Request) (who, error) {
	w := who{groups: []string{}}
	var errs [3]error
	w.user, errs[0] = idheader.Decode(r.Header.Get("X-Forwarded-User"))
	w.email, errs[1] = idheader.Decode(r.Header.Get("X-Forwarded-Email"))
	groups, err := idheader.DecodeGroups(r.Header.Get("X-Forwarded-Groups"))
	errs[2] = err
	w.groups = append(w.groups, groups...)
	return w, errors.Join(errs[:]...)
}

// ServeHTTP implements http.Handler.
func (b *Backend) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b.requests.Add(1)
	b.record(r)
	u, err := whoFrom(r)
	b.log.Debug("aem request", zap.String("method", r.Method), zap.String("path", r.URL.Path), zap.String("user", u.user))
	if err != nil {
		reply(w, http.StatusBadRequest, who{groups: []string{}}, obj{"error": "bad identity headers", "message": err.Error()})
		return
	}
	if u.user == "" {
		reply(w, http.StatusUnauthorized, u, obj{"error": "unauthorized", "message": "no X-Forwarded-User: this backend only serves requests through Gatehouse"})
		return
	}
	if err := b.checkAssertion(r, u); err != nil {
		reply(w, http.StatusUnauthorized, u, obj{"error": "bad assertion", "message": err.Error()})
		return
	}
	p := path.Clean("/" + r.URL.Path)
	switch {
	case p == "/libs/granite/security/currentuser.json":
		if allow(w, r, u, http.MethodGet) {
			reply(w, http.StatusOK, u, obj{
				"authorizableId":   u.user,
				"authorization":    r.Header.Get("Authorization") != "",
				"loginTokenCookie": hasCookie(r),
			})
		}
	case p == "/" || (strings.HasPrefix(p, "/content/") && strings.HasSuffix(p, ".html") && !strings.HasPrefix(p, damRoot+"/")):
		if allow(w, r, u, http.MethodGet) {
			page(w, r, u)
		}
	case p == "/bin/querybuilder.json":
		if allow(w, r, u, http.MethodGet) {
			b.query(w, r, u)
		}
	case p == damRoot || p == damRoot+".json" || strings.HasPrefix(p, damRoot+"/"):
		b.dam(w, r, u, p)
	default:
		reply(w, http.StatusNotFound, u, obj{"error": "not found", "path": p})
	}
}

// pageTemplate is the backend's one HTML page, for browsers: who is
// signed in, as the backend decoded the identity headers.
var pageTemplate = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>AEM demo backend</title></head><body>
<h1>Signed in as <span id="user">{{.User}}</span></h1>
<p>Email: <span id="email">{{.Email}}</span></p>
<p>Groups: <span id="groups">{{.Groups}}</span></p>
<p>Page: <code id="path">{{.Path}}</code></p>
<p><a id="sign-out" href="/gatehouse/sign-out">Sign out</a></p>
</body></html>
`))

// page serves the HTML page for / and /content/….html.
func page(w http.ResponseWriter, r *http.Request, u who) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_ = pageTemplate.Execute(w, map[string]string{"User": u.user, "Email": u.email,
		"Groups": strings.Join(u.groups, ","), "Path": r.URL.RequestURI()})
}

func hasCookie(r *http.Request) bool {
	_, err := r.Cookie(cookieName)
	return err == nil
}

func (b *Backend) dam(w http.ResponseWriter, r *http.Request, u who, p string) {
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		b.get(w, u, p)
	case http.MethodPut:
		b.upload(w, r, u, p)
	case http.MethodPost:
		b.operation(w, r, u, p)
	default:
		w.Header().Set("Allow", "GET, HEAD, PUT, POST")
		reply(w, http.StatusMethodNotAllowed, u, obj{"error": "method not allowed"})
	}
}

// get serves an asset's bytes, or a folder listing or asset metadata for
// paths ending in ".json". An asset whose own name ends in ".json" wins.
// Stored assets are never modified (an upload replaces them), so their
// bytes can be written after the lock is released.
func (b *Backend) get(w http.ResponseWriter, u who, p string) {
	b.mu.Lock()
	a := b.assets[p]
	var status int
	var answer obj
	if a != nil {
		a = &asset{data: a.data, kept: a.kept, size: a.size, sha256: a.sha256, mimeType: a.mimeType}
	} else {
		base, isJSON := strings.CutSuffix(p, ".json")
		switch {
		case isJSON && b.folders[base]:
			status, answer = http.StatusOK, b.listing(base)
		case isJSON && b.assets[base] != nil:
			status, answer = http.StatusOK, assetJSON(base, b.assets[base])
		default:
			status, answer = http.StatusNotFound, obj{"error": "not found", "path": p}
		}
	}
	b.mu.Unlock()

	switch {
	case a == nil:
		reply(w, status, u, answer)
	case !a.kept:
		reply(w, http.StatusGone, u, obj{"error": "content of uploads over 1 MiB is not kept", "path": p, "size": a.size, "sha256": a.sha256})
	default:
		w.Header().Set("Content-Type", a.mimeType)
		w.Header().Set("Content-Length", strconv.FormatInt(a.size, 10))
		w.Header().Set("ETag", `"`+a.sha256+`"`)
		_, _ = w.Write(a.data)
	}
}

// listing describes the folder dir's direct children. b.mu must be held.
func (b *Backend) listing(dir string) obj {
	folders, assets := []obj{}, []obj{}
	for f := range b.folders {
		if f != dir && path.Dir(f) == dir {
			folders = append(folders, obj{"name": path.Base(f), "path": f})
		}
	}
	for p, a := range b.assets {
		if path.Dir(p) == dir {
			assets = append(assets, obj{"name": path.Base(p), "path": p, "size": a.size, "mimeType": a.mimeType, "checkedOutBy": a.checkedOutBy})
		}
	}
	byPath := func(x, y obj) int { return strings.Compare(x["path"].(string), y["path"].(string)) }
	slices.SortFunc(folders, byPath)
	slices.SortFunc(assets, byPath)
	return obj{"path": dir, "jcr:primaryType": "sling:Folder", "folders": folders, "assets": assets}
}

func assetJSON(p string, a *asset) obj {
	return obj{
		"path": p, "name": path.Base(p), "jcr:primaryType": "dam:Asset",
		"size": a.size, "sha256": a.sha256, "mimeType": a.mimeType,
		"checkedOutBy": a.checkedOutBy, "lastModifiedBy": a.modifiedBy,
		"contentKept": a.kept,
	}
}

// upload stores the request body as the asset at p. The body is read in
// chunks and hashed as it arrives; its bytes are kept only up to maxKept.
func (b *Backend) upload(w http.ResponseWriter, r *http.Request, u who, p string) {
	if !strings.HasPrefix(p, damRoot+"/") || strings.HasSuffix(r.URL.Path, "/") {
		reply(w, http.StatusBadRequest, u, obj{"error": "an asset path is /content/dam/<folders>/<name>", "path": p})
		return
	}
	// Refuse early, before reading a possibly large body…
	if status, msg := b.canWrite(u, p); status != 0 {
		reply(w, status, u, obj{"error": msg, "path": p})
		return
	}
	sum := sha256.New()
	kept := new(bytes.Buffer)
	var size int64
	buf := make([]byte, 32<<10)
	for {
		n, err := r.Body.Read(buf)
		if n > 0 {
			sum.Write(buf[:n])
			size += int64(n)
			if kept != nil && size <= maxKept {
				kept.Write(buf[:n])
			} else {
				kept = nil
			}
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			reply(w, http.StatusBadRequest, u, obj{"error": "reading upload: " + err.Error(), "path": p})
			return
		}
	}
	a := &asset{size: size, sha256: hex.EncodeToString(sum.Sum(nil)), modifiedBy: u.user, modified: time.Now()}
	if kept != nil {
		a.data, a.kept = kept.Bytes(), true
	}

	b.mu.Lock()
	// …and check again: someone may have checked the asset out meanwhile.
	status, msg := b.canWriteLocked(u, p)
	if status == 0 {
		if old := b.assets[p]; old != nil {
			a.checkedOutBy = old.checkedOutBy
		}
		b.put(p, a)
	}
	b.mu.Unlock()
	if status != 0 {
		reply(w, status, u, obj{"error": msg, "path": p})
		return
	}
	b.log.Info("aem upload", zap.String("path", p), zap.Int64("size", size), zap.String("user", u.user))
	reply(w, http.StatusCreated, u, obj{"path": p, "size": size, "sha256": a.sha256})
}

func (b *Backend) canWrite(u who, p string) (int, string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.canWriteLocked(u, p)
}

// canWriteLocked returns a non-zero status if u may not write the asset at
// p. b.mu must be held.
func (b *Backend) canWriteLocked(u who, p string) (int, string) {
	if b.folders[p] {
		return http.StatusConflict, "a folder exists at this path"
	}
	for dir := path.Dir(p); dir != damRoot; dir = path.Dir(dir) {
		if b.assets[dir] != nil {
			return http.StatusConflict, "an asset exists at " + dir
		}
	}
	if a := b.assets[p]; a != nil && a.checkedOutBy != "" && a.checkedOutBy != u.user {
		return http.StatusConflict, "checked out by " + a.checkedOutBy
	}
	return 0, ""
}

// operation handles the Sling POST operations checkout and checkin, given
// as ":operation" in the query or a form body.
func (b *Backend) operation(w http.ResponseWriter, r *http.Request, u who, p string) {
	op := r.FormValue(":operation")
	if op != "checkout" && op != "checkin" {
		reply(w, http.StatusBadRequest, u, obj{"error": "unsupported :operation " + strconv.Quote(op)})
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	a := b.assets[p]
	if a == nil {
		reply(w, http.StatusNotFound, u, obj{"error": "no asset", "path": p})
		return
	}
	switch {
	case op == "checkout" && (a.checkedOutBy == "" || a.checkedOutBy == u.user):
		a.checkedOutBy = u.user
		reply(w, http.StatusOK, u, obj{"path": p, "checkedOutBy": u.user})
	case op == "checkout":
		reply(w, http.StatusConflict, u, obj{"error": "checked out by another user", "path": p, "checkedOutBy": a.checkedOutBy})
	case a.checkedOutBy == u.user:
		a.checkedOutBy = ""
		reply(w, http.StatusOK, u, obj{"path": p, "checkedOutBy": ""})
	default:
		reply(w, http.StatusConflict, u, obj{"error": "not checked out by you", "path": p, "checkedOutBy": a.checkedOutBy})
	}
}

// query answers a querybuilder full-text search over asset names.
func (b *Backend) query(w http.ResponseWriter, r *http.Request, u who) {
	q := strings.ToLower(r.URL.Query().Get("fulltext"))
	root := damRoot
	if p := r.URL.Query().Get("path"); p != "" {
		root = path.Clean("/" + p)
	}
	hits := []obj{}
	b.mu.Lock()
	for p := range b.assets {
		name := path.Base(p)
		if (strings.HasPrefix(p, root+"/") || root == "/") && strings.Contains(strings.ToLower(name), q) {
			hits = append(hits, obj{"path": p, "name": name})
		}
	}
	b.mu.Unlock()
	slices.SortFunc(hits, func(x, y obj) int { return strings.Compare(x["path"].(string), y["path"].(string)) })
	reply(w, http.StatusOK, u, obj{"success": true, "results": len(hits), "total": len(hits), "more": false, "offset": 0, "hits": hits})
}

type obj = map[string]any

// reply writes v as JSON, with the identity the backend saw.
func reply(w http.ResponseWriter, status int, u who, v obj) {
	v["user"], v["email"], v["groups"] = u.user, u.email, u.groups
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func allow(w http.ResponseWriter, r *http.Request, u who, method string) bool {
	if r.Method == method || (method == http.MethodGet && r.Method == http.MethodHead) {
		return true
	}
	w.Header().Set("Allow", method)
	reply(w, http.StatusMethodNotAllowed, u, obj{"error": "method not allowed"})
	return false
}

// mimeType guesses from the extension, with a fixed table for the usual
// DAM types so that answers do not depend on the system's mime files.
func mimeType(p string) string {
	ext := strings.ToLower(path.Ext(p))
	switch ext {
	case ".jpg", ".jpeg":
		return "image/jpeg"
	case ".png":
		return "image/png"
	case ".gif":
		return "image/gif"
	case ".svg":
		return "image/svg+xml"
	case ".pdf":
		return "application/pdf"
	case ".txt":
		return "text/plain; charset=utf-8"
	case ".json":
		return "application/json"
	case ".mp4":
		return "video/mp4"
	}
	if t := mime.TypeByExtension(ext); t != "" {
		return t
	}
	return "application/octet-stream"
}
