package groupmap

import (
	"reflect"
	"strings"
	"testing"

	"github.com/gatehouse-proxy/gatehouse/auth/ims"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    []Rule
		wantErr string
	}{
		{name: "empty", in: "", want: nil},
		{name: "one rule", in: "*:GRP_ADMIN=administrators", want: []Rule{{"*", "GRP_ADMIN", "administrators"}}},
		{name: "no role means any role", in: "DAM Users=dam-users", want: []Rule{{"DAM Users", "*", "dam-users"}}},
		{name: "separators and spaces", in: " A:R=x ;B*:*=y\nC:TEAM_MEMBER = z ,", want: []Rule{{"A", "R", "x"}, {"B*", "*", "y"}, {"C", "TEAM_MEMBER", "z"}}},
		{name: "missing equals", in: "A:R", wantErr: "want <groupName>:<role>=<localGroup>"},
		{name: "empty local", in: "A:R=", wantErr: "local group after '=' is empty"},
		{name: "wildcard local", in: "A:R=x*", wantErr: "may not contain '*'"},
		{name: "empty role", in: "A:=x", wantErr: "empty group or role pattern"},
		{name: "too long", in: strings.Repeat("a", 600) + "=x", wantErr: "longer than"},
		{name: "too many", in: strings.Repeat("a=b,", 300), wantErr: "at most 256"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := Parse(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Parse(%q) error = %v, want it to contain %q", tt.in, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.in, err)
			}
			if got := m.Rules(); !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("rules = %#v, want %#v", got, tt.want)
			}
		})
	}
}

func TestMap(t *testing.T) {
	groups := []ims.Group{
		{GroupName: "AEM-Authors", Role: "TEAM_MEMBER"},
		{GroupName: "AEM-Admins", Role: "GRP_ADMIN"},
		{GroupName: "Marketing [EU]?", Role: "TEAM_MEMBER"},
	}
	tests := []struct {
		name  string
		rules string
		want  []string
	}{
		{name: "no rules keeps names", rules: "", want: []string{"AEM-Admins", "AEM-Authors", "Marketing [EU]?"}},
		{name: "role wildcard on any group", rules: "*:GRP_ADMIN=administrators", want: []string{"AEM-Authors", "Marketing [EU]?", "administrators"}},
		{name: "prefix wildcard", rules: "AEM-*:*=dam-users", want: []string{"Marketing [EU]?", "dam-users"}},
		{name: "several rules for one group", rules: "AEM-Admins:*=a,AEM-Admins:GRP_ADMIN=b", want: []string{"AEM-Authors", "Marketing [EU]?", "a", "b"}},
		{name: "special characters are literal", rules: "Marketing [EU]?:*=marketing", want: []string{"AEM-Admins", "AEM-Authors", "marketing"}},
		{name: "role must match", rules: "AEM-Authors:GRP_ADMIN=x", want: []string{"AEM-Admins", "AEM-Authors", "Marketing [EU]?"}},
		{name: "infix wildcard", rules: "A*-Auth*s:*=authors", want: []string{"AEM-Admins", "Marketing [EU]?", "authors"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := Parse(tt.rules)
			if err != nil {
				t.Fatal(err)
			}
			if got := m.Map(groups); !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("Map = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestMatch(t *testing.T) {
	tests := []struct {
		pattern, s string
		want       bool
	}{
		{"*", "", true},
		{"*", "anything", true},
		{"abc", "abc", true},
		{"abc", "abcd", false},
		{"a*", "abc", true},
		{"*c", "abc", true},
		{"*c", "abcd", false},
		{"a*c", "ac", true},
		{"a*b*c", "aXbYc", true},
		{"a*b*c", "acb", false},
		{"ab*ba", "aba", false}, // prefix and suffix must not overlap
		{"a?c", "abc", false},
	}
	for _, tt := range tests {
		if got := match(tt.pattern, tt.s); got != tt.want {
			t.Errorf("match(%q, %q) = %v, want %v", tt.pattern, tt.s, got, tt.want)
		}
	}
}
