package ims

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// Token types found in the "type" claim.
const (
	TypeAccessToken  = "access_token"
	TypeRefreshToken = "refresh_token"
)

// Millis is a count of milliseconds as IMS writes it: a decimal string
// ("1700000000000"), though a JSON number is accepted too.
type Millis int64

// UnmarshalJSON accepts "123", 123 and null.
func (m *Millis) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if bytes.Equal(b, []byte("null")) {
		*m = 0
		return nil
	}
	s := string(b)
	if len(b) >= 2 && b[0] == '"' {
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
	}
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil {
		return fmt.Errorf("milliseconds %q: not a whole number", s)
	}
	*m = Millis(n)
	return nil
}

// UnmarshalJSONFrom is UnmarshalJSON for go-json-experiment/json, which
// every claims decode goes through: it reads the token in place, where
// UnmarshalJSON would hand a string to encoding/json to unquote (about 3 %
// of a first-seen bearer token's verification).
func (m *Millis) UnmarshalJSONFrom(dec *jsontext.Decoder) error {
	tok, err := dec.ReadToken()
	if err != nil {
		return err
	}
	var s string
	switch tok.Kind() {
	case 'n':
		*m = 0
		return nil
	case '"':
		s = strings.TrimSpace(tok.String())
	case '0':
		s = tok.String()
	default:
		return fmt.Errorf("milliseconds: want a whole number or a decimal string, got %s", tok.Kind())
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return fmt.Errorf("milliseconds %q: not a whole number", clip(s))
	}
	*m = Millis(n)
	return nil
}

// MarshalJSON writes the value as a decimal string, as IMS does.
func (m Millis) MarshalJSON() ([]byte, error) {
	return json.Marshal(strconv.FormatInt(int64(m), 10))
}

// Time reads m as milliseconds since the Unix epoch.
func (m Millis) Time() time.Time { return time.UnixMilli(int64(m)) }

// Duration reads m as a duration.
func (m Millis) Duration() time.Duration { return time.Duration(m) * time.Millisecond }

// Essential returns a copy of c with the claims that matter once a token
// has been validated (type, cluster, client, user, validity) and without
// the others (ids of the session, the refresh token, scopes…), so that a
// cache of validations does not keep every claim's string alive.
func (c *Claims) Essential() *Claims {
	return &Claims{
		Type: c.Type, ClientID: c.ClientID, UserID: c.UserID, Cluster: c.Cluster,
		CreatedAt: c.CreatedAt, ExpiresIn: c.ExpiresIn, Exp: c.Exp, NotBefore: c.NotBefore,
	}
}

// ExpiresAt is when the token stops being valid: the earlier of
// created_at+expires_in and exp, whichever are present. The zero time means
// the token states no expiry (which Verify rejects).
func (c *Claims) ExpiresAt() time.Time {
	var t time.Time
	if c.CreatedAt > 0 && c.ExpiresIn > 0 {
		t = time.UnixMilli(int64(c.CreatedAt) + int64(c.ExpiresIn))
	}
	if c.Exp != nil {
		e := time.Unix(*c.Exp, 0)
		if t.IsZero() || e.Before(t) {
			t = e
		}
	}
	return t
}

// ValidFrom is the earliest time the token is valid: the later of
// created_at and nbf, whichever are present.
func (c *Claims) ValidFrom() time.Time {
	var t time.Time
	if c.CreatedAt > 0 {
		t = c.CreatedAt.Time()
	}
	if c.NotBefore != nil {
		n := time.Unix(*c.NotBefore, 0)
		if n.After(t) {
			t = n
		}
	}
	return t
}

// Scopes splits the comma-separated scope claim.
func (c *Claims) Scopes() []string {
	var out []string
	for _, s := range strings.Split(c.Scope, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// Claims is the payload of an IMS token, as far as Gatehouse reads it. IMS
// tokens carry no iss, aud or exp: expiry is CreatedAt + ExpiresIn. Exp and
// NotBefore are honoured when present (seconds since the epoch), for tokens
// minted by other issuers. Real tokens carry further claims (aa_id, ctp,
// sid…) that nothing here reads; DecodeClaims skips them. The JSON names
// are IMS's, for writing claims; read them with DecodeClaims.
type Claims struct {
	ID        string `json:"id"`
	Type      string `json:"type"`
	ClientID  string `json:"client_id"`
	UserID    string `json:"user_id"`
	Cluster   string `json:"as"`
	Scope     string `json:"scope"`
	CreatedAt Millis `json:"created_at"`
	ExpiresIn Millis `json:"expires_in"`
	Exp       *int64 `json:"exp,omitempty"`
	NotBefore *int64 `json:"nbf,omitempty"`
}

// wireClaims is how DecodeClaims reads a payload: the claims that decide
// whether a token is accepted have exact types, and a value of another
// type makes the token malformed; id and scope decide nothing and are read
// leniently (the outer members shadow the embedded ones); other members
// are skipped whatever their type.
type wireClaims struct {
	Claims
	ID    looseText `json:"id"`
	Scope looseText `json:"scope"`
}

// DecodeClaims reads the JSON payload of an IMS token. It is the one
// reading of claims, whichever way the token was validated: by Verifier,
// by a bearer authenticator that reads the client id before asking IMS, and
// in the token object of a validate_token answer. Its errors wrap
// ErrMalformed: a payload that is not a JSON object, a member name that
// appears twice (two readers could pick different ones), or a deciding
// claim (type, as, client_id, user_id, created_at, expires_in, exp, nbf)
// of the wrong type. The errors name the member, never a claim's value.
//
// It uses go-json-experiment/json, which refuses duplicate names and
// invalid UTF-8, matches names case-sensitively, and is three times faster
// than encoding/json on an IMS token.
func DecodeClaims(payload []byte) (*Claims, error) {
	// A JSON null would decode into zero values without an error.
	if t := bytes.TrimLeft(payload, " \t\r\n"); len(t) == 0 || t[0] != '{' {
		return nil, fmt.Errorf("claims: not a JSON object: %w", ErrMalformed)
	}
	w := new(wireClaims) // one allocation: the claims returned are w's
	if err := jsonv2.Unmarshal(payload, w); err != nil {
		return nil, fmt.Errorf("claims: %w: %w", ErrMalformed, claimsError(err))
	}
	w.Claims.ID, w.Claims.Scope = string(w.ID), string(w.Scope)
	return &w.Claims, nil
}

// claimsError keeps a decode error's description, which names the member
// and the types involved, and drops anything quoting the payload.
func claimsError(err error) error {
	var se *jsonv2.SemanticError
	if errors.As(err, &se) {
		return fmt.Errorf("member %s: cannot read JSON %s as %v", se.JSONPointer, se.JSONKind, se.GoType)
	}
	return err
}
