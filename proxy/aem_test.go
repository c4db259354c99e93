package proxy_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/gatehouse-proxy/gatehouse/auth"
	"github.com/gatehouse-proxy/gatehouse/proxy"
	"github.com/gatehouse-proxy/gatehouse/test/aem"
)

// TestInFrontOfAEM uses only the exported API, with the fake AEM as the
// upstream: what the backend learns is our identity, not the client's
// credentials.
func TestInFrontOfAEM(t *testing.T) {
	backend := aem.New(nil)
	upstream := httptest.NewServer(backend)
	defer upstream.Close()
	u, _ := url.Parse(upstream.URL)

	id := &auth.Identity{UserID: "ada@AdobeID", Email: "ada@example.com", Groups: []string{"authors"}}
	h, err := proxy.New(proxy.Config{
		Upstream: u,
		Authenticate: func(next http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Header.Get("Authorization") != "Bearer ims-token" {
					auth.WriteError(w, auth.Unauthorized(auth.ReasonNoCredential, "sign in", nil))
					return
				}
				next.ServeHTTP(w, r.WithContext(auth.WithIdentity(r.Context(), id)))
			})
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	gatehouse := httptest.NewServer(h)
	defer gatehouse.Close()

	req, _ := http.NewRequest(http.MethodGet, gatehouse.URL+"/libs/granite/security/currentuser.json", nil)
	req.Header.Set("Authorization", "Bearer ims-token")
	req.Header.Set("Cookie", "login-token=abc; theme=dark")
	req.Header.Set("X-Forwarded-User", "admin")
	res, err := gatehouse.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var got struct {
		AuthorizableID   string
		Email            string
		Groups           []string
		Authorization    bool
		LoginTokenCookie bool
	}
	if err := json.NewDecoder(res.Body).Decode(&got); err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("status %d, %v", res.StatusCode, err)
	}
	if got.AuthorizableID != id.UserID || got.Email != id.Email || len(got.Groups) != 1 || got.Authorization || got.LoginTokenCookie {
		t.Errorf("backend saw %+v", got)
	}
	seen := backend.Seen()
	if len(seen) != 1 || seen[0].RequestID != res.Header.Get(proxy.HeaderRequestID) {
		t.Errorf("Seen() = %+v", seen)
	}

	// Unauthenticated and reserved requests never reach the backend.
	for _, target := range []string{"/content/dam.json", "/gatehouse/healthz", "/gatehouse/../gatehouse/readyz"} {
		res, err := gatehouse.Client().Get(gatehouse.URL + target)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
	}
	if n := backend.Requests(); n != 1 {
		t.Errorf("backend got %d requests, want 1", n)
	}
}
