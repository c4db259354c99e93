package ims

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// The decoders of IMS's answers. Each reads only the members Gatehouse
// uses, with the loose types of loose.go, and then checks that what a
// decision needs is there. Their errors wrap ErrBadAnswer and name the
// member at fault; they never quote a token.

// decodeJSON decodes body, whose first byte must open a value of kind
// want ('{' or '['), into v. Only invalid JSON syntax fails it. As
// encoding/json did before, a member given twice counts as its last value,
// and invalid UTF-8 reads as U+FFFD: the service is trusted to mean what it
// says, and a quirk in a member nobody reads must not fail a sign-in. (The
// token claims in a validate_token answer are stricter: DecodeClaims
// refuses both.)
func decodeJSON(body []byte, want jsontext.Kind, v any) error {
	t := bytes.TrimLeft(body, " \t\r\n")
	if len(t) == 0 || jsontext.Kind(t[0]) != want {
		what := "object"
		if want == '[' {
			what = "array"
		}
		return fmt.Errorf("%w: the answer is not a JSON %s", ErrBadAnswer, what)
	}
	if err := jsonv2.Unmarshal(body, v, answerOptions); err != nil {
		return fmt.Errorf("%w: the answer is not well-formed JSON: %w", ErrBadAnswer, answerError(err))
	}
	return nil
}

var answerOptions = jsonv2.JoinOptions(jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(true))

// answerError drops the quoted value from a decode error (it may be part
// of a token), keeping where it happened.
func answerError(err error) error {
	var se *jsonv2.SemanticError
	if errors.As(err, &se) {
		return fmt.Errorf("at %s: cannot read JSON %s", se.JSONPointer, se.JSONKind)
	}
	return err
}

// text is a string member as Gatehouse keeps it: trimmed, with the string
// "null" read as absent.
func text(t looseText) string {
	s := strings.TrimSpace(string(t))
	if s == "null" {
		return ""
	}
	return s
}

type wireValidation struct {
	Valid     looseBool      `json:"valid"`
	Token     jsontext.Value `json:"token"`
	ExpiresAt looseInt       `json:"expires_at"`
	Reason    looseText      `json:"reason"`
	Error     looseText      `json:"error"`
}

// decodeValidation reads a 200 answer of validate_token. valid must be a
// boolean (or "true"/"false"), and a valid answer must carry the token's
// claims, read with DecodeClaims.
func decodeValidation(body []byte) (*ValidationResult, error) {
	var w wireValidation
	if err := decodeJSON(body, '{', &w); err != nil {
		return nil, err
	}
	if !w.Valid.set {
		return nil, fmt.Errorf("%w: valid is missing or not a boolean", ErrBadAnswer)
	}
	if !w.Valid.v {
		r := &ValidationResult{Reason: clip(text(w.Reason))}
		if r.Reason == "" {
			r.Reason = clip(text(w.Error))
		}
		return r, nil
	}
	if w.Token.Kind() != '{' {
		return nil, fmt.Errorf("%w: valid is true but token (the claims) is missing or not an object", ErrBadAnswer)
	}
	c, err := DecodeClaims(w.Token)
	if err != nil {
		return nil, fmt.Errorf("%w: token: %w", ErrBadAnswer, err)
	}
	r := &ValidationResult{Valid: true, Token: c}
	if w.ExpiresAt.set && w.ExpiresAt.v > 0 {
		r.ExpiresAt = w.ExpiresAt.v
	}
	return r, nil
}

type wireProfile struct {
	UserID      looseID   `json:"userId"`
	Email       looseText `json:"email"`
	Name        looseText `json:"name"`
	DisplayName looseText `json:"displayName"`
	FirstName   looseText `json:"first_name"`
	LastName    looseText `json:"last_name"`
}

// decodeProfile reads a 200 answer of the profile endpoint: an object with
// userId and an e-mail address.
func decodeProfile(body []byte) (*Profile, error) {
	var w wireProfile
	if err := decodeJSON(body, '{', &w); err != nil {
		return nil, err
	}
	p := &Profile{
		UserID: string(w.UserID), Email: text(w.Email),
		Name: text(w.Name), DisplayName: text(w.DisplayName), FirstName: text(w.FirstName), LastName: text(w.LastName),
	}
	switch {
	case p.UserID == "":
		return nil, fmt.Errorf("%w: userId is missing or not a string", ErrBadAnswer)
	case p.Email == "":
		return nil, fmt.Errorf("%w: email is missing or not a string", ErrBadAnswer)
	case !strings.Contains(p.Email, "@"):
		return nil, fmt.Errorf("%w: email is not an e-mail address", ErrBadAnswer)
	}
	return p, nil
}

// wireOrg is one entry of the organizations answer; an entry that is not
// an object leaves notObject set.
type wireOrg struct {
	notObject bool
	org       struct {
		OrgName looseText  `json:"orgName"`
		OrgRef  wireOrgRef `json:"orgRef"`
		Groups  wireGroups `json:"groups"`
	}
}

func (o *wireOrg) UnmarshalJSONFrom(dec *jsontext.Decoder) error {
	*o = wireOrg{} // a member given twice counts as the last one
	if dec.PeekKind() != '{' {
		o.notObject = true
		return dec.SkipValue()
	}
	return jsonv2.UnmarshalDecode(dec, &o.org)
}

type wireOrgRef struct {
	Ident   looseID   `json:"ident"`
	AuthSrc looseText `json:"authSrc"`
}

func (r *wireOrgRef) UnmarshalJSONFrom(dec *jsontext.Decoder) error {
	*r = wireOrgRef{}
	if dec.PeekKind() != '{' {
		return dec.SkipValue()
	}
	var v struct {
		Ident   looseID   `json:"ident"`
		AuthSrc looseText `json:"authSrc"`
	}
	if err := jsonv2.UnmarshalDecode(dec, &v); err != nil {
		return err
	}
	*r = wireOrgRef(v)
	return nil
}

// wireGroups is an organization's groups: an array, or absent or null for
// none; anything else leaves notArray set.
type wireGroups struct {
	notArray bool
	list     []wireGroup
}

func (g *wireGroups) UnmarshalJSONFrom(dec *jsontext.Decoder) error {
	*g = wireGroups{}
	switch dec.PeekKind() {
	case '[':
		return jsonv2.UnmarshalDecode(dec, &g.list)
	case 'n':
	default:
		g.notArray = true
	}
	return dec.SkipValue()
}

type wireGroup struct {
	notObject bool
	g         struct {
		GroupName        looseText `json:"groupName"`
		GroupDisplayName looseText `json:"groupDisplayName"`
		Ident            looseID   `json:"ident"`
		Role             looseText `json:"role"`
		GroupType        looseText `json:"groupType"`
	}
}

func (g *wireGroup) UnmarshalJSONFrom(dec *jsontext.Decoder) error {
	*g = wireGroup{}
	if dec.PeekKind() != '{' {
		g.notObject = true
		return dec.SkipValue()
	}
	return jsonv2.UnmarshalDecode(dec, &g.g)
}

// decodeOrganizations reads a 200 answer of the organizations endpoint: a
// JSON array. An entry that is incomplete is kept with its Problem set.
func decodeOrganizations(body []byte) ([]Organization, error) {
	var wire []wireOrg
	if err := decodeJSON(body, '[', &wire); err != nil {
		return nil, err
	}
	orgs := make([]Organization, len(wire))
	for i := range wire {
		orgs[i] = wire[i].organization(i)
	}
	return orgs, nil
}

// organization turns the i-th entry into an Organization, noting the first
// problem found.
func (w *wireOrg) organization(i int) Organization {
	var o Organization
	problem := func(format string, args ...any) {
		if o.problem == nil {
			o.problem = fmt.Errorf("%w: organizations[%d]%s", ErrBadAnswer, i, fmt.Sprintf(format, args...))
		}
	}
	if w.notObject {
		problem(" is not an object")
		return o
	}
	o.OrgName = text(w.org.OrgName)
	o.OrgRef = OrgRef{Ident: string(w.org.OrgRef.Ident), AuthSrc: text(w.org.OrgRef.AuthSrc)}
	switch {
	case o.OrgRef.Ident == "":
		problem(".orgRef.ident is missing or not a string or number")
	case o.OrgRef.AuthSrc == "":
		problem(".orgRef.authSrc is missing or not a string")
	}
	if w.org.Groups.notArray {
		problem(".groups is not an array")
	}
	o.Groups = make([]Group, 0, len(w.org.Groups.list))
	for j := range w.org.Groups.list {
		wg := &w.org.Groups.list[j]
		// The name is kept exactly as sent: " administrators" is another
		// group than "administrators", and trimming it here would hand its
		// members the second one's rights.
		name := string(wg.g.GroupName)
		if wg.notObject || strings.TrimSpace(name) == "" {
			problem(".groups[%d].groupName is missing or not a string", j)
			continue
		}
		o.Groups = append(o.Groups, Group{
			GroupName:        name,
			GroupDisplayName: text(wg.g.GroupDisplayName),
			Ident:            json.Number(wg.g.Ident),
			Role:             text(wg.g.Role),
			GroupType:        text(wg.g.GroupType),
		})
	}
	return o
}

type wireToken struct {
	AccessToken looseText `json:"access_token"`
	TokenType   looseText `json:"token_type"`
	ExpiresIn   looseInt  `json:"expires_in"`
}

// decodeTokenAnswer reads a 200 answer of a token endpoint: an object with
// an access_token.
func decodeTokenAnswer(body []byte) (*wireToken, error) {
	var w wireToken
	if err := decodeJSON(body, '{', &w); err != nil {
		return nil, err
	}
	if strings.TrimSpace(string(w.AccessToken)) == "" {
		return nil, fmt.Errorf("%w: access_token is missing or not a string", ErrBadAnswer)
	}
	return &w, nil
}
