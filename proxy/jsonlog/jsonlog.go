// Package jsonlog writes the pieces of JSON log lines the way zap's
// production JSON encoder writes them, without its generic machinery, for
// the lines written on every request. Lines built with it and lines zap
// writes are the same bytes; the tests hold them to it.
package jsonlog

import (
	"strconv"
	"time"
	"unicode/utf8"

	"go.uber.org/zap/zapcore"
)

// ISO8601Layout is the time format of Gatehouse's JSON logs: zap's
// ISO8601 layout.
const ISO8601Layout = "2006-01-02T15:04:05.000Z0700"

// ISO8601TimeEncoder writes t as zap's ISO8601TimeEncoder does, without
// time.Time.AppendFormat's layout interpretation (340 ns of the access
// line; this takes 100 ns).
func ISO8601TimeEncoder(t time.Time, enc zapcore.PrimitiveArrayEncoder) {
	var b [len(ISO8601Layout)]byte
	enc.AppendByteString(AppendISO8601(b[:0], t))
}

// AppendISO8601 appends t in ISO8601Layout.
func AppendISO8601(b []byte, t time.Time) []byte {
	year, month, day := t.Date()
	hour, minute, sec := t.Clock()
	if year < 0 || year > 9999 {
		return t.AppendFormat(b, ISO8601Layout) // not four digits: leave it to the library
	}
	b = appendDigits(b, year, 4)
	b = append(b, '-')
	b = appendDigits(b, int(month), 2)
	b = append(b, '-')
	b = appendDigits(b, day, 2)
	b = append(b, 'T')
	b = appendDigits(b, hour, 2)
	b = append(b, ':')
	b = appendDigits(b, minute, 2)
	b = append(b, ':')
	b = appendDigits(b, sec, 2)
	b = append(b, '.')
	b = appendDigits(b, t.Nanosecond()/int(time.Millisecond), 3)
	_, offset := t.Zone()
	if offset == 0 {
		return append(b, 'Z')
	}
	sign := byte('+')
	if offset < 0 {
		sign, offset = '-', -offset
	}
	// Z0700 has no seconds: an offset of seconds is cut, as in the layout.
	b = append(b, sign)
	b = appendDigits(b, offset/3600, 2)
	return appendDigits(b, offset/60%60, 2)
}

// appendDigits appends v, 0 <= v < 10^width, with leading zeros.
func appendDigits(b []byte, v, width int) []byte {
	var d [4]byte
	for i := width - 1; i >= 0; i-- {
		d[i] = byte('0' + v%10)
		v /= 10
	}
	return append(b, d[:width]...)
}

// AppendString appends s as a JSON string, escaped as zap escapes it:
// quote and backslash, control characters (\n, \r and \t short, the others
// as \u00XX), and invalid UTF-8 replaced by \ufffd.
func AppendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			i++
			continue
		}
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRuneInString(s[i:])
			if r != utf8.RuneError || size != 1 {
				i += size
				continue
			}
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i++
			start = i
			continue
		}
		b = append(b, s[start:i]...)
		switch c {
		case '"', '\\':
			b = append(b, '\\', c)
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		case '\t':
			b = append(b, '\\', 't')
		default:
			const hex = "0123456789abcdef"
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		}
		i++
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// AppendSeconds appends d in seconds, as zap's SecondsDurationEncoder does.
func AppendSeconds(b []byte, d time.Duration) []byte {
	return strconv.AppendFloat(b, float64(d)/float64(time.Second), 'f', -1, 64)
}
