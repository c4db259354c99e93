package proxy

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/gatehouse-proxy/gatehouse/auth"
	"github.com/gatehouse-proxy/gatehouse/proxy/idheader"
)

// FuzzIdentityHeaders sends requests with arbitrary client headers,
// spoofed identity headers among them, through Gatehouse to a real
// upstream on loopback, for a user with arbitrary id, e-mail and group
// names. The upstream must see the identity headers once each, decoding
// to exactly the user's identity (without empty group names), and no
// other header that reads as one of them: nothing the client sent as an
// identity header survives.
func FuzzIdentityHeaders(f *testing.F) {
	h := newHarness(f, nil, nil)
	for _, s := range []struct{ n1, v1, n2, v2, user, email, g1, gs string }{
		{"X-Forwarded-User", "admin", "X_Forwarded_Groups", "administrators", "7F8F@AdobeID", "ada@example.com", "authors", "dam-users"},
		{"x-forwarded-groups", "administrators", "X-Forwarded_Email", "admin@evil.example", "u", "", "x,administrators", " administrators\x1fadministrators "},
		{"X-FORWARDED-USER", "", "Accept", "*/*", "u\r\nX-Evil: 1", " a@b ", "%", "a%2Cb\x1f\x1f\t"},
		{"Cookie", "login-token=goodcookie; theme=dark", "X-Forwarded-For", "10.0.0.1", "é", "\x00", "編集者", "\x7f\x1f\xff"},
	} {
		f.Add(s.n1, s.v1, s.n2, s.v2, s.user, s.email, s.g1, s.gs)
	}
	canonical := []string{HeaderUser, HeaderEmail, HeaderGroups}
	f.Fuzz(func(t *testing.T, n1, v1, n2, v2, user, email, g1, gs string) {
		if user == "" {
			user = "u" // an identity always has a user id: requireIdentity sees to it
		}
		groups := append([]string{g1}, strings.Split(gs, "\x1f")...)
		h.auth.identityOver = &auth.Identity{UserID: user, Email: email, Groups: groups}
		h.upstream.mu.Lock()
		h.upstream.seen = nil
		h.upstream.mu.Unlock()

		req := httptest.NewRequest(http.MethodGet, "/content/dam.json", nil)
		req.Header.Set("Authorization", "Bearer good")
		for _, kv := range [][2]string{{n1, v1}, {n2, v2}} {
			name := kv[0]
			if !readsAsIdentity(name) {
				name = "Fuzz-" + name // random names must not change how the request is framed
			}
			// What a server would accept: anything else never reaches Gatehouse.
			if validToken(name) && validHeaderValue(kv[1]) {
				req.Header[name] = append(req.Header[name], kv[1])
			}
		}
		w := httptest.NewRecorder()
		h.handler.ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			t.Fatalf("status %d: %s", w.Code, w.Body)
		}
		seen := h.upstream.last(t).Header
		for name := range seen {
			if readsAsIdentity(name) && !slices.Contains(canonical, name) {
				t.Fatalf("client header %q reached the upstream", name)
			}
		}
		one := func(name string, want bool) string {
			t.Helper()
			vs := seen[name]
			if want != (len(vs) == 1) || len(vs) > 1 {
				t.Fatalf("upstream got %s %q, want %v", name, vs, map[bool]string{true: "one value", false: "none"}[want])
			}
			if !want {
				return ""
			}
			return vs[0]
		}
		if got, err := idheader.Decode(one(HeaderUser, true)); err != nil || got != user {
			t.Fatalf("user decodes to %q (%v), want %q", got, err, user)
		}
		if got, err := idheader.Decode(one(HeaderEmail, email != "")); err != nil || got != email {
			t.Fatalf("e-mail decodes to %q (%v), want %q", got, err, email)
		}
		var want []string
		for _, g := range groups {
			if g != "" {
				want = append(want, g)
			}
		}
		got, err := idheader.DecodeGroups(one(HeaderGroups, len(want) > 0))
		if err != nil || !slices.Equal(got, want) {
			t.Fatalf("groups decode to %q (%v), want %q", got, err, want)
		}
	})
}

// readsAsIdentity reports whether an upstream could read name as one of
// the identity headers: the same name regardless of case, with "_" for
// "-" (as CGI and some Java and Python servers do).
func readsAsIdentity(name string) bool {
	switch strings.ToLower(strings.ReplaceAll(name, "_", "-")) {
	case "x-forwarded-user", "x-forwarded-email", "x-forwarded-groups", "x-gatehouse-assertion":
		return true
	}
	return false
}
