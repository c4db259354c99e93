package ims

import (
	"strconv"
	"strings"

	"github.com/go-json-experiment/json/jsontext"
)

// The types below read one member of an IMS answer whatever JSON type it
// arrives as: they never fail on a value of the wrong type, only on JSON
// that is not well formed. A value they cannot use leaves them at their
// zero value (or, for looseBool and looseInt, unset), and the check that
// follows the decode decides whether the member was needed. The service's
// answers vary between accounts and over time (ids as numbers or strings,
// the string "null", booleans as strings), and a member Gatehouse does not
// need must never fail a sign-in.

// readText reads the next value: the text of a string, or the literal of
// a number or boolean, when its kind is among kinds; any other value is
// skipped and reads as "".
func readText(dec *jsontext.Decoder, kinds string) (string, error) {
	if !strings.ContainsRune(kinds, rune(dec.PeekKind())) {
		return "", dec.SkipValue()
	}
	tok, err := dec.ReadToken()
	if err != nil {
		return "", err
	}
	return tok.String(), nil
}

// looseText reads a JSON string; any other value reads as "".
type looseText string

func (t *looseText) UnmarshalJSONFrom(dec *jsontext.Decoder) error {
	s, err := readText(dec, `"`)
	*t = looseText(s)
	return err
}

// looseID reads an identifier the service sends as a string in one answer
// and as a number in another. null, the string "null", and values of other
// types read as "".
type looseID string

func (id *looseID) UnmarshalJSONFrom(dec *jsontext.Decoder) error {
	s, err := readText(dec, `"0`)
	if s = strings.TrimSpace(s); s == "null" {
		s = ""
	}
	*id = looseID(s)
	return err
}

// looseBool reads true and false, also when written as strings ("true",
// "FALSE"). Anything else leaves it unset.
type looseBool struct {
	set, v bool
}

func (b *looseBool) UnmarshalJSONFrom(dec *jsontext.Decoder) error {
	s, err := readText(dec, `tf"`)
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "true":
		*b = looseBool{set: true, v: true}
	case "false":
		*b = looseBool{set: true}
	default:
		*b = looseBool{}
	}
	return err
}

// looseInt reads a whole number written as a JSON number or as a decimal
// string. Anything else (null, "null", a fraction, another type) leaves it
// unset; raw keeps the text read, clipped, for an error message.
type looseInt struct {
	set bool
	v   int64
	raw string
}

func (n *looseInt) UnmarshalJSONFrom(dec *jsontext.Decoder) error {
	s, err := readText(dec, `"0`)
	s = strings.TrimSpace(s)
	*n = looseInt{raw: clip(s)}
	if v, perr := strconv.ParseInt(s, 10, 64); perr == nil {
		n.v, n.set = v, true
	}
	return err
}
