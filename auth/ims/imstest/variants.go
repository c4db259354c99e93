package imstest

import (
	"net/http"
	"strconv"
)

// The real service's answers vary: ids arrive as numbers in one answer and
// as strings in another, booleans as strings, "null" as a string, members
// are absent for some account types, and new members appear without
// notice. SetVariantAnswers makes the emulator answer in such shapes, so
// that a client can be tested against them; SetAnswer makes an endpoint
// answer with any body at all, so that a client can be tested against
// answers it must refuse.

// SetVariantAnswers makes validate_token, profile, organizations and the
// two token endpoints answer with the same content in variant shapes while
// on: in validate_token, valid and expires_at as strings and extra
// members; in the profile, emailVerified "true", countryCode a number,
// name a number, preferred_languages a string, first_name absent,
// last_name null, utcOffset "null", a projectedProductContext whose
// groupid is a number and whose entries include {} and null; in the
// organizations, group idents as strings, numeric org idents as numbers,
// groupDisplayName null, orgType absent, countryCode a number, extra
// members, and an extra organization without groups; in the token
// endpoints, expires_in as a string, token_type "Bearer" and extra members.
// Members are written in another order than the standard answers'.
func (e *Emulator) SetVariantAnswers(on bool) { e.variant.Store(on) }

// SetAnswer makes the endpoint (an Endpoint… constant) answer every request
// that passes the outage, method and rate-limit checks with status 200 and
// body, whatever the request. A nil body restores the normal answers.
func (e *Emulator) SetAnswer(endpoint string, body []byte) {
	if body == nil {
		e.answers.Delete(endpoint)
		return
	}
	e.answers.Store(endpoint, append([]byte(nil), body...))
}

// writeSetAnswer writes the answer SetAnswer set for the endpoint, if any.
func (e *Emulator) writeSetAnswer(w http.ResponseWriter, endpoint string) bool {
	v, ok := e.answers.Load(endpoint)
	if !ok {
		return false
	}
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(v.([]byte))
	return true
}

// numberOrString is n as a JSON number when it is a whole number, else as
// the string.
func numberOrString(n string) any {
	if v, err := strconv.ParseInt(n, 10, 64); err == nil {
		return v
	}
	return n
}

func variantProfile(p *profile) map[string]any {
	ctxs := []any{map[string]any{}, nil}
	for _, pc := range p.ProjectedProductContext {
		ctxs = append(ctxs, map[string]any{"prodCtx": map[string]any{
			"serviceCode": pc.ProdCtx.ServiceCode, "owningEntity": pc.ProdCtx.OwningEntity,
			"groupid": numberOrString(pc.ProdCtx.GroupID), "label": pc.ProdCtx.Label,
			"deal_id": nil, "modDts": 1700000000000,
		}})
	}
	return map[string]any{
		"userId": p.UserID, "authId": p.AuthID, "email": p.Email, "emailVerified": "true",
		"name": 17, "displayName": p.DisplayName, "last_name": nil,
		"account_type": p.AccountType, "countryCode": 42, "preferred_languages": "en",
		"utcOffset": "null", "mrktPerm": "EMAIL:true", "phoneNumber": nil,
		"tags": []any{}, "projectedProductContext": ctxs,
	}
}

func variantOrganizations(u *User) []any {
	orgs := make([]any, 0, len(u.Orgs)+1)
	for _, o := range u.Orgs {
		ident, src := splitOrgID(o.ID)
		groups := make([]any, 0, len(o.Groups))
		for _, g := range o.Groups {
			groups = append(groups, map[string]any{
				"ident": g.Ident.String(), "groupName": g.GroupName, "groupDisplayName": nil,
				"role": g.Role, "groupType": g.GroupType, "userGroupId": 7,
			})
		}
		orgs = append(orgs, map[string]any{
			"groups": groups, "orgRef": map[string]any{"authSrc": src, "ident": numberOrString(ident), "extra": true},
			"orgName": o.Name, "countryCode": 42, "enterpriseOrgRef": nil,
		})
	}
	return append(orgs, map[string]any{
		"orgName": "Unrelated Org", "orgRef": map[string]any{"ident": 31337, "authSrc": "AdobeOrg"}, "groups": nil,
	})
}

func variantToken(token string, expiresIn int64) map[string]any {
	return map[string]any{
		"token_type": "Bearer", "expires_in": strconv.FormatInt(expiresIn, 10), "access_token": token,
		"refresh_token": nil, "scope": 7, "id_token": "null",
	}
}
