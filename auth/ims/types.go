// Package ims talks to Adobe's identity service (IMS): it verifies access
// tokens locally against the published keys, and calls the validation,
// profile, organizations and token endpoints.
//
// It reads the service's answers leniently and accepts them strictly. Only
// the members Gatehouse uses are decoded, whatever type they arrive as (ids
// as numbers or strings, the string "null", booleans as strings), so that a
// member nobody reads can never fail a sign-in. Then a separate check
// refuses an answer that lacks what a decision needs, with an error
// wrapping ErrBadAnswer that names the member.
package ims

import (
	"encoding/json"
	"strings"
)

// ValidationResult is the answer of /ims/validate_token/v1. When Valid,
// Token holds the claims IMS vouched for; otherwise Reason says why IMS
// refused the token.
type ValidationResult struct {
	Valid     bool    `json:"valid"`
	Token     *Claims `json:"token,omitempty"`
	ExpiresAt int64   `json:"expires_at,omitempty"` // epoch milliseconds; 0 when IMS did not say
	Reason    string  `json:"reason,omitempty"`
}

// Profile is what Gatehouse reads of /ims/profile/v1's answer. UserID and
// Email are always set: Client.Profile refuses an answer without them.
type Profile struct {
	UserID      string
	Email       string
	Name        string
	DisplayName string
	FirstName   string
	LastName    string
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

// Organization is what Gatehouse reads of one entry of the
// /ims/organizations/v5 answer.
type Organization struct {
	OrgName string  `json:"orgName"`
	OrgRef  OrgRef  `json:"orgRef"`
	Groups  []Group `json:"groups"`

	// problem says what made this entry unusable (no orgRef ident, a group
	// without a name…), or is nil. The answer is not refused for it: only
	// the entries of the organization whose groups are synced matter, and
	// the Client does not know which one that is. See Problem.
	problem error
}

// ID is the organization id, "<ident>@<authSrc>" (for example
// "1234ABCD@AdobeOrg").
func (o *Organization) ID() string { return o.OrgRef.Ident + "@" + o.OrgRef.AuthSrc }

// Problem returns nil when the entry is complete: an orgRef with ident and
// authSrc, groups that were an array (or absent), and a groupName on every
// group. Otherwise it returns an error wrapping ErrBadAnswer that names the
// member at fault. A caller that relies on the entry must refuse it then.
func (o *Organization) Problem() error { return o.problem }

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
