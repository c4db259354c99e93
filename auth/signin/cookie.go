package signin

import (
	"net/http"
	"net/textproto"
	"strings"
)

// maxFastCookies is how many cookies cookieValue reads itself; a request
// with more goes through net/http, which enforces its own limit on them.
const maxFastCookies = 100

// cookieValue returns the value of the first cookie called name, as
// (*http.Request).Cookie does, without allocating: it runs on every
// request, and Request.Cookie builds every cookie of the header to return
// one. Anything unusual is left to Request.Cookie.
func cookieValue(r *http.Request, name string) (string, bool) {
	lines := r.Header["Cookie"]
	n := 0
	for _, line := range lines {
		n += strings.Count(line, ";") + 1
	}
	if n > maxFastCookies {
		c, err := r.Cookie(name)
		if err != nil {
			return "", false
		}
		return c.Value, true
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
				return v, true
			}
		}
	}
	return "", false
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
