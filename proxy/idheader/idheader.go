// Package idheader is the encoding of the identity headers Gatehouse sends
// to the upstream (X-Forwarded-User, X-Forwarded-Email and
// X-Forwarded-Groups), for Gatehouse itself, its tests and the upstreams
// that read them.
//
// The rule: every value, and every group name, is percent-encoded for
// '%', ',', a space at either end, and every byte that is not visible
// ASCII (control characters, tab, DEL and each byte of a non-ASCII UTF-8
// sequence), as "%XX" with upper-case hex digits. Everything else, spaces
// inside a name included, is sent as is. Group names are then joined with
// ",". An upstream decodes a list by splitting it on ",", trimming spaces
// and tabs around each element, dropping empty elements and
// percent-decoding each; a single value is percent-decoded.
//
// So an ordinary value ("1A2B@AdobeID", "Content Authors") is unchanged,
// a group called "x,administrators" arrives as one group
// ("x%2Cadministrators"), " administrators" cannot be trimmed into
// "administrators" on the way, and no value can break the header apart.
// An empty group name cannot be told from no group, so it is not sent.
package idheader

import (
	"errors"
	"fmt"
	"strings"
)

const hexDigits = "0123456789ABCDEF"

// escaped reports whether the byte at s[i] must be percent-encoded.
func escaped(s string, i int) bool {
	c := s[i]
	switch {
	case c == '%' || c == ',':
		return true
	case c == ' ':
		return i == 0 || i == len(s)-1
	}
	return c < 0x21 || c > 0x7e
}

// escapedLen returns the length of s encoded; len(s) when nothing needs
// encoding.
func escapedLen(s string) int {
	n := len(s)
	for i := 0; i < len(s); i++ {
		if escaped(s, i) {
			n += 2
		}
	}
	return n
}

func appendEscaped(b *strings.Builder, s string) {
	for i := 0; i < len(s); i++ {
		if c := s[i]; escaped(s, i) {
			b.WriteByte('%')
			b.WriteByte(hexDigits[c>>4])
			b.WriteByte(hexDigits[c&0xf])
		} else {
			b.WriteByte(c)
		}
	}
}

// Encode returns s encoded for an identity header. A value that needs no
// encoding is returned as is, without allocating.
func Encode(s string) string {
	n := escapedLen(s)
	if n == len(s) {
		return s
	}
	var b strings.Builder
	b.Grow(n)
	appendEscaped(&b, s)
	return b.String()
}

// EncodeGroups returns the X-Forwarded-Groups value for groups: each name
// encoded, in the order given, joined with ","; empty names are left out.
// It returns "" (send no header) when no name is left.
func EncodeGroups(groups []string) string {
	n, kept := 0, 0
	for _, g := range groups {
		if g != "" {
			n += escapedLen(g)
			kept++
		}
	}
	if kept == 0 {
		return ""
	}
	if kept == 1 {
		for _, g := range groups {
			if g != "" {
				return Encode(g)
			}
		}
	}
	var b strings.Builder
	b.Grow(n + kept - 1)
	for _, g := range groups {
		if g == "" {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		appendEscaped(&b, g)
	}
	return b.String()
}

// ErrMalformed is returned by Decode and DecodeGroups for a '%' that is
// not followed by two hex digits: not something Gatehouse sends.
var ErrMalformed = errors.New("idheader: malformed percent-encoding")

// Decode returns the value s encodes.
func Decode(s string) (string, error) {
	i := strings.IndexByte(s, '%')
	if i < 0 {
		return s, nil
	}
	b := make([]byte, 0, len(s))
	b = append(b, s[:i]...)
	for ; i < len(s); i++ {
		c := s[i]
		if c != '%' {
			b = append(b, c)
			continue
		}
		if i+2 >= len(s) || unhex(s[i+1]) < 0 || unhex(s[i+2]) < 0 {
			return "", fmt.Errorf("%w at byte %d", ErrMalformed, i)
		}
		b = append(b, byte(unhex(s[i+1])<<4|unhex(s[i+2])))
		i += 2
	}
	return string(b), nil
}

// DecodeGroups returns the group names an X-Forwarded-Groups value
// encodes, in order; none for "".
func DecodeGroups(s string) ([]string, error) {
	var out []string
	for e := range strings.SplitSeq(s, ",") {
		e = strings.Trim(e, " \t")
		if e == "" {
			continue
		}
		g, err := Decode(e)
		if err != nil {
			return nil, fmt.Errorf("group %d: %w", len(out)+1, err)
		}
		out = append(out, g)
	}
	return out, nil
}

func unhex(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'a' <= c && c <= 'f':
		return int(c - 'a' + 10)
	case 'A' <= c && c <= 'F':
		return int(c - 'A' + 10)
	}
	return -1
}
