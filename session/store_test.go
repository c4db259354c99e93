package session

import (
	"slices"
	"testing"
)

func TestUserGroups(t *testing.T) {
	for _, tt := range []struct {
		name string
		ms   []Membership
		want []string
	}{
		{"none", nil, []string{}},
		{"sorted, one source", []Membership{{"a", SourceIMS}, {"b", SourceIMS}}, []string{"a", "b"}},
		{"sorted, a group from two sources", []Membership{{"a", SourceIMS}, {"a", SourceLocal}, {"b", SourceLocal}}, []string{"a", "b"}},
		{"unsorted", []Membership{{"c", SourceIMS}, {"a", SourceIMS}, {"c", SourceLocal}, {"b", SourceIMS}}, []string{"a", "b", "c"}},
		{"unsorted late", []Membership{{"a", SourceIMS}, {"b", SourceIMS}, {"a", SourceLocal}}, []string{"a", "b"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			u := &User{Memberships: tt.ms}
			if got := u.Groups(); !slices.Equal(got, tt.want) {
				t.Errorf("Groups() = %q, want %q", got, tt.want)
			}
		})
	}
}
