package proxy

import (
	"net/url"
	"path"
	"strings"
)

// maxUnescapes is how many rounds of percent-decoding a path check undoes:
// the one net/http did, and two more for upstreams (or frameworks in front
// of them) that decode again.
const maxUnescapes = 3

// PathMatcher decides whether a request path falls under one of a set of
// prefixes under any reading that a server behind the proxy might give
// it: percent-decoded up to maxUnescapes times, "\" read as "/", ";params"
// cut from every segment, cleaned or not, compared case-insensitively. The
// reserved paths and the inbound API check both decide with it, so that no
// encoding trick gets a path past either. Match does not allocate for
// ordinary paths: it runs on every request.
type PathMatcher struct {
	prefixes []string // lower case, each ending in "/"
}

// NewPathMatcher returns a matcher for prefixes, each of which must start
// and end with "/" (for example "/gatehouse/", "/api/").
func NewPathMatcher(prefixes ...string) *PathMatcher {
	m := &PathMatcher{prefixes: make([]string, len(prefixes))}
	for i, p := range prefixes {
		m.prefixes[i] = strings.ToLower(p)
	}
	return m
}

// Match reports whether any reading of p falls under a prefix: the prefix
// itself with or without its trailing slash, or anything below it.
func (m *PathMatcher) Match(p string) bool {
	for range maxUnescapes - 1 {
		if m.under(p) {
			return true
		}
		u, err := url.PathUnescape(p)
		if err != nil || u == p {
			return false
		}
		p = u
	}
	return m.under(p)
}

func (m *PathMatcher) under(p string) bool {
	p = strings.ToLower(strings.ReplaceAll(p, `\`, "/"))
	for i, q := range [2]string{p, withoutParams(p)} {
		if i == 1 && q == p {
			break // no parameters: the same reading again
		}
		if m.hasPrefix(q) || m.hasPrefix(cleanRooted(q)) {
			return true
		}
	}
	return false
}

func (m *PathMatcher) hasPrefix(s string) bool {
	for _, pre := range m.prefixes {
		if s == pre[:len(pre)-1] || strings.HasPrefix(s, pre) {
			return true
		}
	}
	return false
}

// cleanRooted is path.Clean("/" + q). A q that starts with "/" gives the
// same as path.Clean(q), which does not allocate when q is clean already,
// as most request paths are.
func cleanRooted(q string) string {
	if strings.HasPrefix(q, "/") {
		return path.Clean(q)
	}
	return path.Clean("/" + q)
}

// withoutParams cuts ";parameters" from every segment of p, as servlet
// containers do before matching paths.
func withoutParams(p string) string {
	if !strings.Contains(p, ";") {
		return p
	}
	segs := strings.Split(p, "/")
	for i, s := range segs {
		segs[i], _, _ = strings.Cut(s, ";")
	}
	return strings.Join(segs, "/")
}
