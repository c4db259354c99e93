package browser

import (
	"net/url"
	"strings"
)

// maxRedirectLen bounds rd; a longer one falls back to "/".
const maxRedirectLen = 4096

// maxRedirectUnescapes is how many rounds of percent-decoding SafeRedirect
// looks through, as the reserved-path check does.
const maxRedirectUnescapes = 3

// SafeRedirect returns rd when it names a local path on this origin, and
// "/" otherwise, so that the sign-in can never be used to send someone
// to another site (an open redirect). Accepted: a path starting with a
// single "/", with an optional query. Refused, in rd or in any reading of
// it with up to three rounds of percent-decoding undone:
//   - anything with a scheme or a host: "https://evil", "//evil",
//     "/\evil" (browsers read "\" as "/"), "/%2F%2Fevil", "%2F%2Fevil";
//   - control characters and backslashes anywhere (browsers drop tabs and
//     newlines from URLs, so "/\t/evil" would become "//evil");
//   - a path not starting with "/" ("evil.example", "javascript:…");
//   - Gatehouse's own endpoints (reserved, when not nil, matches them), so
//     that a sign-in cannot be made to end in a sign-out.
func SafeRedirect(rd string, reserved interface{ Match(string) bool }) string {
	if rd == "" || len(rd) > maxRedirectLen {
		return "/"
	}
	p := rd
	for i := 0; ; i++ {
		if !localPath(p) {
			return "/"
		}
		if i == maxRedirectUnescapes {
			break
		}
		u, err := url.PathUnescape(p)
		if err != nil {
			// Not decodable: a browser would keep it as it is, but an
			// upstream's reading is anyone's guess.
			return "/"
		}
		if u == p {
			break
		}
		p = u
	}
	u, err := url.Parse(rd)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" {
		return "/"
	}
	if reserved != nil && reserved.Match(u.Path) {
		return "/"
	}
	return rd
}

// localPath applies the rules of SafeRedirect to one reading of rd.
func localPath(p string) bool {
	if !strings.HasPrefix(p, "/") || strings.HasPrefix(p, "//") {
		return false
	}
	for i := 0; i < len(p); i++ {
		if c := p[i]; c < 0x20 || c == 0x7f || c == '\\' {
			return false
		}
	}
	return true
}
