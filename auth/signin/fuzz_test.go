package signin

import (
	"net/http"
	"testing"
)

// FuzzCookieValue checks cookieValue, which reads every request's Cookie
// header, against net/http on arbitrary headers (one or two lines, and an
// arbitrary cookie name when it is a valid one): it finds the same first
// value and counts the same cookies of the name, so the ambiguity rule
// (more than one) is decided on exactly the cookies net/http would read.
func FuzzCookieValue(f *testing.F) {
	for _, seed := range []struct{ line1, line2, name string }{
		{"login-token=abc", "", "login-token"},
		{"login-token=abc; login-token=def", "", "login-token"},
		{"a=1", "login-token=second-line", "login-token"},
		{"login-token=bad\\value; login-token=good", "", "login-token"},
		{`login-token="quoted"; login-token="`, "login-token=x", "login-token"},
		{"Login-Token=case; login-token=exact", "", "login-token"},
		{"__Host-login-token=a; __host-login-token=b", "", "__Host-login-token"},
		{";;; login-token = x ;; \tlogin-token=\x7f", "", "login-token"},
		{"login-token=é; login-token=", "", "login-token"},
	} {
		f.Add(seed.line1, seed.line2, seed.name)
	}
	f.Fuzz(func(t *testing.T, line1, line2, name string) {
		if (&http.Cookie{Name: name, Value: "x"}).Valid() != nil {
			name = "login-token" // names come from the configuration, which checks them
		}
		r := &http.Request{Header: http.Header{"Cookie": {line1}}}
		if line2 != "" {
			r.Header["Cookie"] = append(r.Header["Cookie"], line2)
		}
		value, n := cookieValue(r, name)
		want := r.CookiesNamed(name)
		if n != len(want) {
			t.Fatalf("Cookie %q, name %q: cookieValue counts %d, net/http finds %d", r.Header["Cookie"], name, n, len(want))
		}
		if n > 0 && value != want[0].Value {
			t.Fatalf("Cookie %q, name %q: cookieValue = %q, net/http's first = %q", r.Header["Cookie"], name, value, want[0].Value)
		}
		if n == 0 && value != "" {
			t.Fatalf("Cookie %q: no cookie counted, but value %q", r.Header["Cookie"], value)
		}
	})
}
