package aem

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// user is who a request claims to be, through Gatehouse's headers.
type user struct{ id, email, groups string }

var (
	alice  = user{"alice@AdobeID", "alice@example.com", "authors, dam-users"}
	bob    = user{"bob@AdobeID", "bob@example.com", ""}
	nobody user
)

func do(t *testing.T, b *Backend, u user, method, target string, body io.Reader, header ...string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, target, body)
	if u.id != "" {
		req.Header.Set("X-Forwarded-User", u.id)
	}
	if u.email != "" {
		req.Header.Set("X-Forwarded-Email", u.email)
	}
	if u.groups != "" {
		req.Header.Set("X-Forwarded-Groups", u.groups)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Add(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	b.ServeHTTP(rec, req)
	return rec
}

func decode(t *testing.T, rec *httptest.ResponseRecorder) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &m); err != nil {
		t.Fatalf("body %q is not JSON: %v", rec.Body, err)
	}
	return m
}

func TestRequiresForwardedUser(t *testing.T) {
	b := New(nil)
	targets := []string{
		"/libs/granite/security/currentuser.json",
		"/content/dam.json",
		"/content/dam/we-retail/en/activities/hiking.jpg",
		"/bin/querybuilder.json?fulltext=hiking",
	}
	for _, target := range targets {
		t.Run(target, func(t *testing.T) {
			rec := do(t, b, nobody, http.MethodGet, target, nil, "Authorization", "Bearer x")
			if rec.Code != http.StatusUnauthorized {
				t.Fatalf("status %d, want 401", rec.Code)
			}
			if m := decode(t, rec); m["error"] != "unauthorized" || m["user"] != "" {
				t.Errorf("body %v", m)
			}
		})
	}
	if got := b.Requests(); got != int64(len(targets)) {
		t.Errorf("Requests() = %d, want %d", got, len(targets))
	}
	seen := b.Seen()
	if len(seen) != len(targets) || seen[0].Path != "/libs/granite/security/currentuser.json" || !seen[0].Authorization || seen[0].User != "" {
		t.Errorf("Seen() = %+v", seen)
	}
}

func TestCurrentUser(t *testing.T) {
	tests := []struct {
		name      string
		u         user
		header    []string
		wantAuthz bool
		wantToken bool
		wantGroup []any
	}{
		{"identity only", alice, nil, false, false, []any{"authors", "dam-users"}},
		{"no groups", bob, nil, false, false, []any{}},
		{"credentials leaked through", alice, []string{"Authorization", "Bearer t", "Cookie", "a=1; login-token=abc"}, true, true, []any{"authors", "dam-users"}},
		{"other cookies only", alice, []string{"Cookie", "a=1"}, false, false, []any{"authors", "dam-users"}},
		// Gatehouse percent-encodes names (package idheader): one group
		// with a comma, one with a leading space.
		{"encoded groups", user{"carol@AdobeID", "carol@example.com", "x%2Cadministrators,%20authors"}, nil, false, false,
			[]any{"x,administrators", " authors"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := New(nil)
			rec := do(t, b, tt.u, http.MethodGet, "/libs/granite/security/currentuser.json", nil, tt.header...)
			if rec.Code != http.StatusOK {
				t.Fatalf("status %d", rec.Code)
			}
			m := decode(t, rec)
			want := map[string]any{
				"authorizableId": tt.u.id, "user": tt.u.id, "email": tt.u.email,
				"authorization": tt.wantAuthz, "loginTokenCookie": tt.wantToken,
			}
			for k, v := range want {
				if m[k] != v {
					t.Errorf("%s = %v, want %v", k, m[k], v)
				}
			}
			if fmt.Sprint(m["groups"]) != fmt.Sprint(tt.wantGroup) {
				t.Errorf("groups = %v, want %v", m["groups"], tt.wantGroup)
			}
			s := b.Seen()[0]
			if s.User != tt.u.id || s.Email != tt.u.email || s.Groups != tt.u.groups || s.Authorization != tt.wantAuthz || s.LoginTokenCookie != tt.wantToken {
				t.Errorf("Seen = %+v", s)
			}
		})
	}
}

// Identity headers Gatehouse could not have sent are refused, not guessed at.
func TestMalformedIdentityHeaders(t *testing.T) {
	for _, u := range []user{
		{"alice%ZZ@AdobeID", "alice@example.com", "authors"},
		{"alice@AdobeID", "alice@example.com%", "authors"},
		{"alice@AdobeID", "alice@example.com", "authors,%2"},
	} {
		if rec := do(t, New(nil), u, http.MethodGet, "/libs/granite/security/currentuser.json", nil); rec.Code != http.StatusBadRequest {
			t.Errorf("%+v: status %d, want 400", u, rec.Code)
		}
	}
}

func names(list any) []string {
	var out []string
	items, _ := list.([]any)
	for _, it := range items {
		out = append(out, it.(map[string]any)["name"].(string))
	}
	return out
}

func TestGet(t *testing.T) {
	tests := []struct {
		target      string
		wantStatus  int
		wantType    string
		wantBody    string   // exact, for assets
		wantFolders []string // for listings
		wantAssets  []string
	}{
		{target: "/content/dam.json", wantStatus: 200, wantFolders: []string{"we-retail", "wknd"}, wantAssets: nil},
		{target: "/content/dam/we-retail/en/activities.json", wantStatus: 200, wantFolders: []string{"running"}, wantAssets: []string{"climbing.jpg", "hiking.jpg"}},
		{target: "/content/dam/wknd/en.json", wantStatus: 200, wantFolders: []string{"adventures"}, wantAssets: []string{"readme.txt"}},
		{target: "/content/dam/we-retail/en/activities/hiking.jpg", wantStatus: 200, wantType: "image/jpeg", wantBody: seed["/content/dam/we-retail/en/activities/hiking.jpg"]},
		{target: "/content/dam/we-retail/en/documents/brochure.pdf", wantStatus: 200, wantType: "application/pdf", wantBody: seed["/content/dam/we-retail/en/documents/brochure.pdf"]},
		{target: "/content/dam/wknd/en/readme.txt", wantStatus: 200, wantType: "text/plain; charset=utf-8", wantBody: seed["/content/dam/wknd/en/readme.txt"]},
		{target: "/content/dam/we-retail/en/activities/hiking.jpg.json", wantStatus: 200},
		{target: "/content/dam/nope.json", wantStatus: 404},
		{target: "/content/dam/we-retail/en/activities/nope.jpg", wantStatus: 404},
		{target: "/content/dam/we-retail/en/activities", wantStatus: 404},
		{target: "/etc/passwd", wantStatus: 404},
		{target: "/content/dam/../../etc/passwd", wantStatus: 404},
	}
	b := New(nil)
	for _, tt := range tests {
		t.Run(tt.target, func(t *testing.T) {
			rec := do(t, b, alice, http.MethodGet, tt.target, nil)
			if rec.Code != tt.wantStatus {
				t.Fatalf("status %d, want %d (%s)", rec.Code, tt.wantStatus, rec.Body)
			}
			if tt.wantBody != "" {
				if rec.Body.String() != tt.wantBody || rec.Header().Get("Content-Type") != tt.wantType {
					t.Errorf("got %q (%s)", rec.Body, rec.Header().Get("Content-Type"))
				}
				return
			}
			m := decode(t, rec)
			if m["user"] != alice.id || m["email"] != alice.email || m["groups"] == nil {
				t.Errorf("identity fields missing: %v", m)
			}
			if tt.wantStatus == 200 && strings.HasSuffix(tt.target, ".jpg.json") {
				if m["jcr:primaryType"] != "dam:Asset" || m["mimeType"] != "image/jpeg" {
					t.Errorf("metadata %v", m)
				}
				return
			}
			if tt.wantStatus == 200 {
				if fmt.Sprint(names(m["folders"])) != fmt.Sprint(tt.wantFolders) || fmt.Sprint(names(m["assets"])) != fmt.Sprint(tt.wantAssets) {
					t.Errorf("folders %v assets %v", names(m["folders"]), names(m["assets"]))
				}
			}
		})
	}
}

// genReader yields n bytes of a repeating pattern without holding them.
type genReader struct{ n, off int64 }

func (r *genReader) Read(p []byte) (int, error) {
	if r.off >= r.n {
		return 0, io.EOF
	}
	if rest := r.n - r.off; int64(len(p)) > rest {
		p = p[:rest]
	}
	for i := range p {
		p[i] = byte((r.off + int64(i)) * 31 % 251)
	}
	r.off += int64(len(p))
	return len(p), nil
}

func hashOf(r io.Reader) string {
	h := sha256.New()
	_, _ = io.Copy(h, r)
	return hex.EncodeToString(h.Sum(nil))
}

func TestUpload(t *testing.T) {
	tests := []struct {
		name     string
		path     string
		size     int64
		wantKept bool
	}{
		{"empty", "/content/dam/uploads/empty.txt", 0, true},
		{"small", "/content/dam/uploads/small.png", 1000, true},
		{"exactly 1 MiB", "/content/dam/uploads/edge.bin", maxKept, true},
		{"over 1 MiB", "/content/dam/uploads/big.bin", maxKept + 1, false},
		{"large", "/content/dam/uploads/deep/large.mp4", 20 << 20, false},
		{"replace seeded", "/content/dam/wknd/en/readme.txt", 10, true},
	}
	// A real server, so that the upload arrives as a stream.
	b := New(nil)
	srv := httptest.NewServer(b)
	defer srv.Close()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPut, srv.URL+tt.path, io.NopCloser(&genReader{n: tt.size}))
			req.Header.Set("X-Forwarded-User", alice.id)
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			var out struct {
				Path, SHA256, User string
				Size               int64
			}
			if err := json.NewDecoder(res.Body).Decode(&out); err != nil || res.StatusCode != http.StatusCreated {
				t.Fatalf("status %d, %v", res.StatusCode, err)
			}
			want := hashOf(&genReader{n: tt.size})
			if out.Path != tt.path || out.Size != tt.size || out.SHA256 != want || out.User != alice.id {
				t.Errorf("got %+v, want size %d sha256 %s", out, tt.size, want)
			}
			rec := do(t, b, bob, http.MethodGet, tt.path, nil)
			switch {
			case tt.wantKept && (rec.Code != 200 || hashOf(rec.Body) != want):
				t.Errorf("download: status %d", rec.Code)
			case !tt.wantKept && (rec.Code != http.StatusGone || decode(t, rec)["sha256"] != want):
				t.Errorf("download of a large asset: status %d %s", rec.Code, rec.Body)
			}
		})
	}
	// The new folders are listed.
	m := decode(t, do(t, b, alice, http.MethodGet, "/content/dam/uploads.json", nil))
	if fmt.Sprint(names(m["folders"])) != "[deep]" || fmt.Sprint(names(m["assets"])) != "[big.bin edge.bin empty.txt small.png]" {
		t.Errorf("listing %v %v", names(m["folders"]), names(m["assets"]))
	}

	bad := []struct {
		path string
		want int
	}{
		{"/content/dam/", http.StatusBadRequest},
		{"/content/dam.json", http.StatusBadRequest},
		{"/content/dam/we-retail", http.StatusConflict},                    // a folder
		{"/content/dam/wknd/en/readme.txt/child.txt", http.StatusConflict}, // under an asset
		{"/libs/granite/security/currentuser.json", http.StatusMethodNotAllowed},
	}
	for _, tt := range bad {
		t.Run("refused "+tt.path, func(t *testing.T) {
			if rec := do(t, b, alice, http.MethodPut, tt.path, strings.NewReader("x")); rec.Code != tt.want {
				t.Errorf("status %d, want %d", rec.Code, tt.want)
			}
		})
	}
}

func TestCheckoutCheckin(t *testing.T) {
	const asset = "/content/dam/we-retail/en/activities/hiking.jpg"
	b := New(nil)
	steps := []struct {
		name       string
		u          user
		method     string
		target     string
		body       string
		wantStatus int
		wantBy     any // checkedOutBy in the answer; nil: not checked
	}{
		{"alice checks out", alice, "POST", asset + "?:operation=checkout", "", 200, alice.id},
		{"alice again is fine", alice, "POST", asset + "?:operation=checkout", "", 200, alice.id},
		{"bob cannot check out", bob, "POST", asset + "?:operation=checkout", "", 409, alice.id},
		{"bob cannot upload", bob, "PUT", asset, "new", 409, nil},
		{"alice can upload", alice, "PUT", asset, "new", 201, nil},
		{"still checked out after upload", bob, "GET", asset + ".json", "", 200, alice.id},
		{"bob cannot check in", bob, "POST", asset + "?:operation=checkin", "", 409, alice.id},
		{"alice checks in", alice, "POST", asset + "?:operation=checkin", "", 200, ""},
		{"checkin when not checked out", alice, "POST", asset + "?:operation=checkin", "", 409, ""},
		{"bob checks out, form body", bob, "POST", asset, ":operation=checkout", 200, bob.id},
		{"unknown asset", alice, "POST", "/content/dam/nope.jpg?:operation=checkout", "", 404, nil},
		{"unknown operation", alice, "POST", asset + "?:operation=delete", "", 400, nil},
		{"no operation", alice, "POST", asset, "", 400, nil},
	}
	for _, s := range steps {
		var header []string
		if s.method == "POST" && s.body != "" {
			header = []string{"Content-Type", "application/x-www-form-urlencoded"}
		}
		rec := do(t, b, s.u, s.method, s.target, strings.NewReader(s.body), header...)
		if rec.Code != s.wantStatus {
			t.Fatalf("%s: status %d, want %d (%s)", s.name, rec.Code, s.wantStatus, rec.Body)
		}
		m := decode(t, rec)
		if s.wantBy != nil && m["checkedOutBy"] != s.wantBy {
			t.Errorf("%s: checkedOutBy %v, want %v", s.name, m["checkedOutBy"], s.wantBy)
		}
		if m["user"] != s.u.id {
			t.Errorf("%s: user %v", s.name, m["user"])
		}
	}
	if got := do(t, b, alice, "GET", asset, nil).Body.String(); got != "new" {
		t.Errorf("content %q after alice's upload", got)
	}
}

func TestQueryBuilder(t *testing.T) {
	tests := []struct {
		query string
		want  []string
	}{
		{"fulltext=hiking", []string{"/content/dam/we-retail/en/activities/hiking.jpg"}},
		{"fulltext=ING", []string{"/content/dam/we-retail/en/activities/climbing.jpg", "/content/dam/we-retail/en/activities/hiking.jpg", "/content/dam/wknd/en/adventures/surfing.jpg"}},
		{"fulltext=ing&path=/content/dam/wknd", []string{"/content/dam/wknd/en/adventures/surfing.jpg"}},
		{"fulltext=.jpg&path=/content/dam/we-retail/en/activities", []string{"/content/dam/we-retail/en/activities/climbing.jpg", "/content/dam/we-retail/en/activities/hiking.jpg"}},
		{"fulltext=zzz", nil},
		{"fulltext=hiking&path=/content/dam/we", nil}, // a path is a folder, not a string prefix
	}
	b := New(nil)
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			rec := do(t, b, alice, http.MethodGet, "/bin/querybuilder.json?"+tt.query, nil)
			m := decode(t, rec)
			var got []string
			for _, h := range m["hits"].([]any) {
				got = append(got, h.(map[string]any)["path"].(string))
			}
			if m["success"] != true || m["results"] != float64(len(tt.want)) || fmt.Sprint(got) != fmt.Sprint(tt.want) || m["user"] != alice.id {
				t.Errorf("got %v", m)
			}
		})
	}
}

func TestSeenKeepsTheLastRequests(t *testing.T) {
	b := New(nil)
	for i := range maxSeen + 10 {
		do(t, b, alice, http.MethodGet, fmt.Sprintf("/content/dam/%d.json", i), nil)
	}
	seen := b.Seen()
	if len(seen) != maxSeen || seen[0].Path != "/content/dam/10.json" || seen[maxSeen-1].Path != fmt.Sprintf("/content/dam/%d.json", maxSeen+9) {
		t.Errorf("got %d entries, first %q, last %q", len(seen), seen[0].Path, seen[len(seen)-1].Path)
	}
	if b.Requests() != maxSeen+10 {
		t.Errorf("Requests() = %d", b.Requests())
	}
}

func TestConcurrentUse(t *testing.T) {
	b := New(nil)
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			p := fmt.Sprintf("/content/dam/c/%d.bin", i%4)
			u := user{id: fmt.Sprintf("u%d", i)}
			for range 20 {
				do(t, b, u, http.MethodPut, p, strings.NewReader("data"))
				do(t, b, u, http.MethodPost, p+"?:operation=checkout", nil)
				do(t, b, u, http.MethodGet, "/content/dam/c.json", nil)
				do(t, b, u, http.MethodGet, "/bin/querybuilder.json?fulltext=bin", nil)
				do(t, b, u, http.MethodPost, p+"?:operation=checkin", nil)
				_ = b.Seen()
			}
		})
	}
	wg.Wait()
	if b.Requests() != 16*20*5 {
		t.Errorf("Requests() = %d", b.Requests())
	}
}
