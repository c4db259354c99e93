package signin

import (
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"
)

// cookieValue must pick the same cookie as (*http.Request).Cookie, and
// count the cookies of the name as (*http.Request).CookiesNamed finds them.
func TestCookieValueMatchesNetHTTP(t *testing.T) {
	const name = "login-token"
	lines := [][]string{
		nil,
		{""},
		{"login-token=abc"},
		{"  login-token = abc ; x=1"},
		{"a=1; login-token=abc; login-token=def"},
		{"a=1", "login-token=second-line"},
		{`login-token="quoted"`},
		{`login-token="`},
		{`login-token="half`},
		{"login-token=bad\\value; login-token=good"},
		{"login-token=has space"},
		{"login-token"},
		{"login-token="},
		{"Login-Token=case; login-token=exact"},
		{"login-token=a=b=c"},
		{";;; login-token=x;;"},
		{"login-token=\x7f; login-token=ok"},
		{"login-token=é"},
		{"\tlogin-token=tab\t"},
		{strings.Repeat("a=1; ", 150) + "login-token=many"},
		{strings.Repeat("a=1; ", 3100) + "login-token=too-many"},
	}
	r := rand.New(rand.NewPCG(3, 4))
	alphabet := []string{"login-token", "=", ";", " ", "\"", "a", "\\", "\t", "x=1", "\x01"}
	for range 5000 {
		var b strings.Builder
		for range r.IntN(12) {
			b.WriteString(alphabet[r.IntN(len(alphabet))])
		}
		lines = append(lines, []string{b.String()})
	}
	for _, l := range lines {
		req := &http.Request{Header: http.Header{}}
		if l != nil {
			req.Header["Cookie"] = l
		}
		want, err := req.Cookie(name)
		got, n := cookieValue(req, name)
		if (n > 0) != (err == nil) || (n > 0 && got != want.Value) || n != len(req.CookiesNamed(name)) {
			t.Fatalf("Cookie header %q: cookieValue = %q, %d; net/http = %v, %v, %d cookies", l, got, n, want, err, len(req.CookiesNamed(name)))
		}
	}
}

func BenchmarkCookieValue(b *testing.B) {
	req := &http.Request{Header: http.Header{"Cookie": {"theme=dark; login-token=" + strings.Repeat("x", 200) + "; _ga=GA1.2.3"}}}
	b.Run("net/http", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := req.Cookie("login-token"); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("cookieValue", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, n := cookieValue(req, "login-token"); n != 1 {
				b.Fatal("missing")
			}
		}
	})
}
