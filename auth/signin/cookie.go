package signin

import (
	"net/http"
	"net/textproto"
	"strings"
)

// maxFastCookies is how many cookies cookieValue reads itself; a request
// with more goes through net/http, which enforces its own limit on them.
const maxFastCookies = 100

// cookieValue returns the value of the first valid cookie called name and
// how many valid cookies of that name the request carries, reading them as
// (*http.Request).Cookies does. Only n == 1 names a credential: with more,
// the request is ambiguous (another site under the same domain can plant
// a second cookie of the name), and the caller must not pick one.
//
// It allocates nothing for a request of up to maxFastCookies cookies: it
// runs on every request, and Request.Cookie builds every cookie of the
// header to return one. Anything larger is left to net/http.
func cookieValue(r *http.Request, name string) (value string, n int) {
	lines := r.Header["Cookie"]
	count := 0
	for _, line := range lines {
		count += strings.Count(line, ";") + 1
	}
	if count > maxFastCookies {
		cs := r.CookiesNamed(name)
		if len(cs) == 0 {
			return "", 0
		}
		return cs[0].Value, len(cs)
	}
	for _, line := range lines {
		line = textproto.TrimString(line)
		var part string
		for len(line) > 0 {
			part, line, _ = strings.Cut(line, ";")
			part = textproto.TrimString(part)
			k, v, _ := strings.Cut(part, "=")
			if textproto.TrimString(k) != name {
				continue
			}
			if v, ok := parseCookieValue(v); ok {
				if n == 0 {
					value = v
				}
				n++
			}
		}
	}
	return value, n
}

// parseCookieValue is net/http's reading of a cookie value: surrounding
// double quotes stripped, and only bytes a cookie value may hold.
func parseCookieValue(raw string) (string, bool) {
	if len(raw) > 1 && raw[0] == '"' && raw[len(raw)-1] == '"' {
		raw = raw[1 : len(raw)-1]
	}
	for i := 0; i < len(raw); i++ {
		if b := raw[i]; b < 0x20 || b >= 0x7f || b == '"' || b == ';' || b == '\\' {
			return "", false
		}
	}
	return raw, true
}
