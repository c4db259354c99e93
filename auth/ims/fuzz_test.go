package ims

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

// The decoders of IMS's answers and of token claims meet whatever the
// network brings. Each fuzz target checks that its decoder never panics,
// that it either refuses with its package sentinel or returns something
// that satisfies the documented check, and that what it returns reads back
// the same once written in the standard shape.

// addAnswerSeeds adds the answers of the variant table and a few hostile
// ones.
func addAnswerSeeds(f *testing.F, seeds ...string) {
	for _, s := range append(seeds, ``, `null`, `{}`, `[]`, `"x"`, `0`, `{"a":`, "\xff", `{"a":1,"a":2}`,
		`[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[`) {
		f.Add([]byte(s))
	}
}

func FuzzDecodeValidation(f *testing.F) {
	addAnswerSeeds(f,
		`{"valid":true,"token":`+answerClaims+`,"expires_at":1700086400000}`,
		`{"expires_at":"1700086400000","valid":"true","token":`+answerClaims+`}`,
		`{"valid":false,"reason":"bad_signature"}`, `{"valid":"false","error":"invalid_token"}`,
		`{"valid":true,"token":{"type":1}}`, `{"valid":true,"token":null}`)
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := decodeValidation(body)
		if refused(t, err, ErrBadAnswer) {
			return
		}
		if r.Valid != (r.Token != nil) {
			t.Fatalf("valid %v with claims %+v", r.Valid, r.Token)
		}
		if !r.Valid {
			return
		}
		again, err := decodeValidation(mustJSON(t, map[string]any{"valid": true, "token": r.Token, "expires_at": r.ExpiresAt}))
		if err != nil || !reflect.DeepEqual(again, r) {
			t.Fatalf("round trip: %+v, %v; want %+v", again, err, r)
		}
	})
}

func FuzzDecodeProfile(f *testing.F) {
	addAnswerSeeds(f, profileAnswer,
		`{"userId":"A@AdobeID","email":"a@example.com","name":17,"countryCode":42,"projectedProductContext":null}`,
		`{"userId":12345,"email":" a@b ","first_name":"null","last_name":["x"]}`,
		`{"userId":"null","email":"a@b"}`, `{"userId":"A@AdobeID","email":"nobody"}`)
	f.Fuzz(func(t *testing.T, body []byte) {
		p, err := decodeProfile(body)
		if refused(t, err, ErrBadAnswer) {
			return
		}
		if p.UserID == "" || !strings.Contains(p.Email, "@") {
			t.Fatalf("accepted a profile without userId or e-mail address: %+v", p)
		}
		again, err := decodeProfile(mustJSON(t, map[string]string{
			"userId": p.UserID, "email": p.Email, "name": p.Name, "displayName": p.DisplayName,
			"first_name": p.FirstName, "last_name": p.LastName,
		}))
		if err != nil || *again != *p {
			t.Fatalf("round trip: %+v, %v; want %+v", again, err, p)
		}
	})
}

func FuzzDecodeOrganizations(f *testing.F) {
	addAnswerSeeds(f, orgsAnswer,
		`[null,{"orgRef":"x"},{"orgRef":{"ident":"C3"},"groups":[]},{"orgRef":{"ident":7,"authSrc":"AdobeOrg"},"groups":{}}]`,
		`[{"orgRef":{"ident":"E5","authSrc":"AdobeOrg"},"groups":[{"groupName":"ok","ident":"1"},{"groupName":""},7,null]}]`)
	f.Fuzz(func(t *testing.T, body []byte) {
		orgs, err := decodeOrganizations(body)
		if refused(t, err, ErrBadAnswer) {
			return
		}
		type group struct {
			GroupName string `json:"groupName"`
			Ident     string `json:"ident"`
			Role      string `json:"role"`
		}
		type org struct {
			OrgRef OrgRef  `json:"orgRef"`
			Groups []group `json:"groups"`
		}
		var standard []org
		for i := range orgs {
			o := &orgs[i]
			if err := o.Problem(); err != nil {
				if !errors.Is(err, ErrBadAnswer) {
					t.Fatalf("problem %v does not wrap ErrBadAnswer", err)
				}
				continue
			}
			if o.OrgRef.Ident == "" || o.OrgRef.AuthSrc == "" {
				t.Fatalf("organization %+v has no problem but no ident or authSrc", o)
			}
			so := org{OrgRef: o.OrgRef, Groups: []group{}}
			for _, g := range o.Groups {
				if g.GroupName == "" {
					t.Fatalf("organization %+v has a group without a name", o)
				}
				so.Groups = append(so.Groups, group{g.GroupName, string(g.Ident), g.Role})
			}
			standard = append(standard, so)
		}
		if standard == nil {
			return
		}
		again, err := decodeOrganizations(mustJSON(t, standard))
		if err != nil || len(again) != len(standard) {
			t.Fatalf("round trip: %d organizations, %v; want %d", len(again), err, len(standard))
		}
		for i := range again {
			if again[i].Problem() != nil || again[i].OrgRef != standard[i].OrgRef || len(again[i].Groups) != len(standard[i].Groups) {
				t.Fatalf("round trip: %+v, want %+v", again[i], standard[i])
			}
		}
	})
}

func FuzzDecodeTokenAnswer(f *testing.F) {
	addAnswerSeeds(f,
		`{"token_type":"bearer","access_token":"`+opaqueToken+`","expires_in":86399}`,
		`{"expires_in":"3600","refresh_token":null,"scope":7,"access_token":"x","id_token":"null"}`,
		`{"access_token":42,"expires_in":3600}`, `{"access_token":"x","expires_in":1.5}`, `{"access_token":"x","expires_in":"-1"}`)
	f.Fuzz(func(t *testing.T, body []byte) {
		a, err := decodeTokenAnswer(body)
		if refused(t, err, ErrBadAnswer) {
			return
		}
		if strings.TrimSpace(string(a.AccessToken)) == "" {
			t.Fatal("accepted an answer without access_token")
		}
		if a.ExpiresIn.set && a.ExpiresIn.raw == "" {
			t.Fatalf("expires_in set from nothing: %+v", a.ExpiresIn)
		}
	})
}

func FuzzDecodeClaims(f *testing.F) {
	for _, s := range []string{
		answerClaims,
		string(mustJSON(f, imsClaims(verifyNow))),
		`{"type":"access_token","ctp":"zero","aa_id":42,"fg":null,"exp":1900000000,"nbf":1700000000}`,
		`{"type":1}`, `{"created_at":true}`, `{"exp":"1"}`, `{"user_id":"a","user_id":"b"}`, `{"Type":"access_token"}`,
		`null`, `[]`, ``, "{\"id\":\"\xff\"}", `{"created_at":"1e3"}`, `{"expires_in":-5,"created_at":null}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		c, err := DecodeClaims(payload)
		if refused(t, err, ErrMalformed) {
			return
		}
		again, err := DecodeClaims(mustJSON(t, c))
		if err != nil || !reflect.DeepEqual(again, c) {
			t.Fatalf("round trip: %+v, %v; want %+v", again, err, c)
		}
	})
}

// refused reports whether the decoder refused its input, failing the test
// when the refusal does not wrap the decoder's sentinel.
func refused(t *testing.T, err, sentinel error) bool {
	t.Helper()
	if err != nil && !errors.Is(err, sentinel) {
		t.Fatalf("error %v does not wrap %v", err, sentinel)
	}
	return err != nil
}
