package apicheck_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gatehouse-proxy/gatehouse/auth"
	"github.com/gatehouse-proxy/gatehouse/proxy/apicheck"
)

const (
	clientID = "cc-europa-desktop_10_0"
	org      = "1234ABCD@AdobeOrg"
	otherOrg = "FFFF0000@AdobeOrg"
)

// bearerID is a user signed in by a bearer token, member of two orgs.
func bearerID() *auth.Identity {
	return &auth.Identity{UserID: "U1@AdobeID", Method: auth.MethodBearer, ClientID: clientID, Orgs: []string{org, otherOrg}}
}

// serve runs one request through the check, with id in the context as the
// authentication step would put it, and reports whether next was called.
func serve(t *testing.T, cfg apicheck.Config, id *auth.Identity, target string, header map[string][]string) (*httptest.ResponseRecorder, bool) {
	t.Helper()
	mw, err := apicheck.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	called := false
	h := mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		called = true
		w.WriteHeader(http.StatusNoContent)
	}))
	r := httptest.NewRequest(http.MethodGet, "http://gatehouse"+target, nil)
	for k, v := range header {
		r.Header[http.CanonicalHeaderKey(k)] = v
	}
	if id != nil {
		r = r.WithContext(auth.WithIdentity(r.Context(), id))
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w, called
}

func good() map[string][]string {
	return map[string][]string{"x-api-key": {clientID}, "x-gw-ims-org-id": {org}}
}

func with(h map[string][]string, k string, v ...string) map[string][]string {
	out := map[string][]string{}
	for k2, v2 := range h {
		out[k2] = v2
	}
	if v == nil {
		delete(out, k)
	} else {
		out[k] = v
	}
	return out
}

func TestCheck(t *testing.T) {
	paths := []string{"/api/", "/bin/api"}
	cookieID := bearerID()
	cookieID.Method, cookieID.ClientID = auth.MethodCookie, ""
	sameUserCookie := bearerID()
	sameUserCookie.Method = auth.MethodCookie // a cookie served, a bearer came with it
	noOrgs := bearerID()
	noOrgs.Orgs = nil

	tests := []struct {
		name    string
		cfgOrg  string
		id      *auth.Identity
		path    string
		header  map[string][]string
		status  int
		mention string // in error_description
	}{
		{"right headers", "", bearerID(), "/api/assets", good(), 204, ""},
		{"right headers, configured org", org, bearerID(), "/api/assets", good(), 204, ""},
		{"another org of the user's, none configured", "", bearerID(), "/api/x", with(good(), "x-gw-ims-org-id", otherOrg), 204, ""},
		{"cookie with a same-user bearer", "", sameUserCookie, "/api/x", good(), 204, ""},
		{"path outside the prefixes", "", cookieID, "/content/dam/x", nil, 204, ""},
		{"segment prefix does not cover a longer name", "", cookieID, "/bin/apis", nil, 204, ""},
		{"prefix without its slash", "", cookieID, "/api", nil, 401, "bearer token"},
		{"segment prefix", "", cookieID, "/bin/api/x", nil, 401, "bearer token"},
		{"cookie only", "", cookieID, "/api/x", good(), 401, "API paths need a bearer token"},
		{"x-api-key missing", "", bearerID(), "/api/x", with(good(), "x-api-key"), 403, "x-api-key header is missing: send your client id"},
		{"x-api-key wrong", "", bearerID(), "/api/x", with(good(), "x-api-key", "someone-else"), 403, "x-api-key header does not match the token's client id"},
		{"x-api-key twice", "", bearerID(), "/api/x", with(good(), "x-api-key", clientID, clientID), 403, "x-api-key header is sent more than once"},
		{"org missing", "", bearerID(), "/api/x", with(good(), "x-gw-ims-org-id"), 403, "x-gw-ims-org-id header is missing"},
		{"org not the user's", "", bearerID(), "/api/x", with(good(), "x-gw-ims-org-id", "0000@AdobeOrg"), 403, "x-gw-ims-org-id header names 0000@AdobeOrg, an organization you do not belong to"},
		{"org of the user's, but not the configured one", org, bearerID(), "/api/x", with(good(), "x-gw-ims-org-id", otherOrg), 403, "x-gw-ims-org-id header names an organization this service does not serve"},
		{"configured org, user not in it", org, noOrgs, "/api/x", good(), 403, "an organization you do not belong to"},
		{"upper case path", "", cookieID, "/API/x", nil, 401, ""},
		{"encoded path", "", cookieID, "/%61pi/x", nil, 401, ""},
		{"double encoded path", "", cookieID, "/%2561pi/x", nil, 401, ""},
		{"dot segments", "", cookieID, "/content/../api/x", nil, 401, ""},
		{"servlet parameters", "", cookieID, "/api;x=y/z", nil, 401, ""},
		{"backslash", "", cookieID, "/content/..%5Capi/x", nil, 401, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, called := serve(t, apicheck.Config{Paths: paths, Org: tt.cfgOrg}, tt.id, tt.path, tt.header)
			if w.Code != tt.status {
				t.Fatalf("status %d, want %d: %s", w.Code, tt.status, w.Body)
			}
			if called != (tt.status == 204) {
				t.Errorf("next called: %v", called)
			}
			if tt.status == 204 {
				return
			}
			var body struct {
				Description string `json:"error_description"`
				Reason      string `json:"reason"`
			}
			if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
				t.Fatalf("body %q: %v", w.Body, err)
			}
			if !strings.Contains(body.Description, tt.mention) {
				t.Errorf("description %q, want it to say %q", body.Description, tt.mention)
			}
			wantReason := auth.ReasonForbidden
			if tt.status == 401 {
				wantReason = auth.ReasonNoCredential
				if www := w.Header().Get("WWW-Authenticate"); !strings.HasPrefix(www, "Bearer") {
					t.Errorf("WWW-Authenticate %q, want a Bearer challenge", www)
				}
			}
			if body.Reason != wantReason || w.Header().Get("X-Reason") != wantReason {
				t.Errorf("reason %q / X-Reason %q, want %q", body.Reason, w.Header().Get("X-Reason"), wantReason)
			}
		})
	}
}

func TestOff(t *testing.T) {
	for _, paths := range [][]string{nil, {"", " "}} {
		w, called := serve(t, apicheck.Config{Paths: paths}, nil, "/api/x", nil)
		if !called || w.Code != 204 {
			t.Errorf("paths %q: status %d, next called %v: want the check off", paths, w.Code, called)
		}
	}
}

func TestNoIdentityIsAnInternalError(t *testing.T) {
	w, called := serve(t, apicheck.Config{Paths: []string{"/api/"}}, nil, "/api/x", good())
	if called || w.Code != http.StatusInternalServerError {
		t.Errorf("status %d, next called %v: want 500 without calling next", w.Code, called)
	}
}

func TestBadPrefixes(t *testing.T) {
	for _, p := range []string{"api/", "/api/?x", "/a/../b", "/a%2f"} {
		if _, err := apicheck.New(apicheck.Config{Paths: []string{p}}); err == nil || !strings.Contains(err.Error(), p) {
			t.Errorf("prefix %q: error %v, want one naming it", p, err)
		}
	}
}
