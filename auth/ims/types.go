// Package ims talks to Adobe's identity service (IMS): it verifies access
// tokens locally against the published keys, and calls the validation,
// profile and organizations endpoints. The formats are those of the real
// service; see shared/ims.md.
package ims

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
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

// MarshalJSON writes the value as a decimal string, as IMS does.
func (m Millis) MarshalJSON() ([]byte, error) {
	return json.Marshal(strconv.FormatInt(int64(m), 10))
}

// Time reads m as milliseconds since the Unix epoch.
func (m Millis) Time() time.Time { return time.UnixMilli(int64(m)) }

// Duration reads m as a duration.
func (m Millis) Duration() time.Duration { return time.Duration(m) * time.Millisecond }

// Claims is the payload of an IMS token. IMS tokens carry no iss, aud or
// exp: expiry is CreatedAt + ExpiresIn. Exp and NotBefore are honoured when
// present (seconds since the epoch), for tokens minted by other issuers.
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
	// Seen in real tokens; carried for logs and the emulator, not checked.
	AAID string `json:"aa_id,omitempty"`
	ASID string `json:"as_id,omitempty"`
	CTP  *int   `json:"ctp,omitempty"`
	PAC  string `json:"pac,omitempty"`
	RTID string `json:"rtid,omitempty"`
	MOI  string `json:"moi,omitempty"`
	RTEA string `json:"rtea,omitempty"`
	SID  string `json:"sid,omitempty"`
}

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

// ValidationResult is the answer of /ims/validate_token/v1.
type ValidationResult struct {
	Valid     bool    `json:"valid"`
	Token     *Claims `json:"token,omitempty"`
	ExpiresAt int64   `json:"expires_at,omitempty"` // epoch milliseconds
	Reason    string  `json:"reason,omitempty"`
}

// FlexBool reads a boolean that IMS sometimes writes as a string ("true").
type FlexBool bool

// UnmarshalJSON accepts true, "true", "TRUE", false, "false", "" and null.
func (f *FlexBool) UnmarshalJSON(b []byte) error {
	s := strings.Trim(strings.TrimSpace(string(b)), `"`)
	switch strings.ToLower(s) {
	case "true", "1":
		*f = true
	case "false", "0", "", "null":
		*f = false
	default:
		return fmt.Errorf("boolean: unexpected %s", b)
	}
	return nil
}

// Profile is the answer of /ims/profile/v1.
type Profile struct {
	UserID                  string           `json:"userId"`
	AuthID                  string           `json:"authId,omitempty"`
	Email                   string           `json:"email"`
	EmailVerified           FlexBool         `json:"emailVerified"`
	Name                    string           `json:"name,omitempty"`
	DisplayName             string           `json:"displayName,omitempty"`
	FirstName               string           `json:"first_name,omitempty"`
	LastName                string           `json:"last_name,omitempty"`
	AccountType             string           `json:"account_type,omitempty"`
	CountryCode             string           `json:"countryCode,omitempty"`
	PreferredLanguages      []string         `json:"preferred_languages,omitempty"`
	ProjectedProductContext []ProductContext `json:"projectedProductContext,omitempty"`
}

// FullName is the best display name the profile offers.
func (p *Profile) FullName() string {
	switch {
	case p.DisplayName != "":
		return p.DisplayName
	case p.Name != "":
		return p.Name
	default:
		return strings.TrimSpace(p.FirstName + " " + p.LastName)
	}
}

// ProductContext is one entry of projectedProductContext.
type ProductContext struct {
	ProdCtx struct {
		ServiceCode  string `json:"serviceCode"`
		OwningEntity string `json:"owningEntity"`
		GroupID      string `json:"groupid,omitempty"`
		Label        string `json:"label,omitempty"`
	} `json:"prodCtx"`
}

// Organization is one entry of the /ims/organizations/v5 answer.
type Organization struct {
	OrgName     string  `json:"orgName"`
	OrgRef      OrgRef  `json:"orgRef"`
	OrgType     string  `json:"orgType,omitempty"`
	CountryCode string  `json:"countryCode,omitempty"`
	Groups      []Group `json:"groups"`
}

// ID is the organization id, "<ident>@<authSrc>" (for example
// "1234ABCD@AdobeOrg").
func (o *Organization) ID() string { return o.OrgRef.Ident + "@" + o.OrgRef.AuthSrc }

// OrgRef names an organization.
type OrgRef struct {
	Ident   string `json:"ident"`
	AuthSrc string `json:"authSrc"`
}

// Group is a user's membership of one organization group.
type Group struct {
	GroupName        string      `json:"groupName"`
	GroupDisplayName string      `json:"groupDisplayName,omitempty"`
	Ident            json.Number `json:"ident"`
	Role             string      `json:"role,omitempty"` // e.g. TEAM_MEMBER, GRP_ADMIN
	GroupType        string      `json:"groupType,omitempty"`
}
