package idheader

import (
	"errors"
	"slices"
	"testing"
)

// The encoding is a contract with upstreams: these are its exact bytes.
func TestEncode(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"1A2B3C@AdobeID", "1A2B3C@AdobeID"},
		{"Content Authors", "Content Authors"},
		{"x,administrators", "x%2Cadministrators"},
		{" administrators", "%20administrators"},
		{"administrators ", "administrators%20"},
		{" ", "%20"},
		{"a%2Cb", "a%252Cb"},
		{"%", "%25"},
		{"a\tb", "a%09b"},
		{"a\r\nb", "a%0D%0Ab"},
		{"\x00\x7f", "%00%7F"},
		{"é", "%C3%A9"},
		{`a;b="c"\d`, `a;b="c"\d`},
	}
	for _, tt := range tests {
		if got := Encode(tt.in); got != tt.want {
			t.Errorf("Encode(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if got, err := Decode(tt.want); err != nil || got != tt.in {
			t.Errorf("Decode(%q) = %q, %v; want %q", tt.want, got, err, tt.in)
		}
	}
}

func TestGroups(t *testing.T) {
	tests := []struct {
		in   []string
		want string
		back []string // what DecodeGroups returns; nil: in
	}{
		{nil, "", []string{}},
		{[]string{""}, "", []string{}},
		{[]string{"authors"}, "authors", nil},
		{[]string{"authors", "dam-users"}, "authors,dam-users", nil},
		{[]string{"x,administrators"}, "x%2Cadministrators", nil},
		{[]string{"", "a", "", "b"}, "a,b", []string{"a", "b"}},
		{[]string{" a", "b ", "%"}, "%20a,b%20,%25", nil},
	}
	for _, tt := range tests {
		got := EncodeGroups(tt.in)
		if got != tt.want {
			t.Errorf("EncodeGroups(%q) = %q, want %q", tt.in, got, tt.want)
		}
		back, err := DecodeGroups(got)
		want := tt.back
		if want == nil {
			want = tt.in
		}
		if err != nil || !slices.Equal(back, want) {
			t.Errorf("DecodeGroups(%q) = %q, %v; want %q", got, back, err, want)
		}
	}
}

// Decoding is lenient about what an intermediary may add (spaces after
// commas, empty elements) and strict about escapes.
func TestDecodeGroups(t *testing.T) {
	tests := []struct {
		in   string
		want []string
		err  bool
	}{
		{"a, b ,\tc", []string{"a", "b", "c"}, false},
		{",,a,,", []string{"a"}, false},
		{"a%2cb", []string{"a,b"}, false},
		{"a%2", nil, true},
		{"a,%", nil, true},
		{"%zz", nil, true},
	}
	for _, tt := range tests {
		got, err := DecodeGroups(tt.in)
		if (err != nil) != tt.err || (err != nil && !errors.Is(err, ErrMalformed)) || !slices.Equal(got, tt.want) {
			t.Errorf("DecodeGroups(%q) = %q, %v", tt.in, got, err)
		}
	}
}

// An ordinary value costs nothing to encode: it is on every request.
func TestEncodeDoesNotAllocate(t *testing.T) {
	if n := testing.AllocsPerRun(100, func() { _ = Encode("1A2B3C@AdobeID"); _ = EncodeGroups([]string{"authors"}) }); n != 0 {
		t.Errorf("%v allocations", n)
	}
}

// FuzzEncode: every value and every list of names survives encoding and
// decoding exactly (empty names aside), and an encoded value holds only
// what a header carries unchanged: visible ASCII and inner spaces, with
// no comma.
func FuzzEncode(f *testing.F) {
	for _, s := range []string{"", "authors", "x,administrators", " a ", "%", "%2C", "a\r\nb", "é\x00\x7f\xff", "\t"} {
		f.Add(s, "dam-users")
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		enc := Encode(a)
		if got, err := Decode(enc); err != nil || got != a {
			t.Fatalf("Decode(Encode(%q)) = %q, %v", a, got, err)
		}
		for i := 0; i < len(enc); i++ {
			c := enc[i]
			if c == ',' || c > 0x7e || c < 0x20 || c == ' ' && (i == 0 || i == len(enc)-1) {
				t.Fatalf("Encode(%q) = %q: byte %d cannot travel unchanged", a, enc, i)
			}
		}
		in := []string{a, b, a}
		var want []string
		for _, g := range in {
			if g != "" {
				want = append(want, g)
			}
		}
		got, err := DecodeGroups(EncodeGroups(in))
		if err != nil || !slices.Equal(got, want) {
			t.Fatalf("DecodeGroups(EncodeGroups(%q)) = %q, %v", in, got, err)
		}
	})
}
