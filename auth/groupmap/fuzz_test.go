package groupmap

import (
	"slices"
	"strings"
	"testing"

	"github.com/gatehouse-proxy/gatehouse/auth/ims"
)

// FuzzGroupMapping parses arbitrary GATEHOUSE_GROUP_MAPPING settings and
// maps arbitrary IMS groups with them. Parse never panics; a mapping it
// accepts is within its limits, each rule prints back to itself, and
// rule-made names hold none of the rule syntax. Map's answer is sorted,
// distinct, without empty names, and is exactly the locals of the
// matching rules plus the names of unmatched groups, where "matching" is
// checked by a matcher written independently.
func FuzzGroupMapping(f *testing.F) {
	for _, s := range []struct{ rules, g1, r1, g2, r2 string }{
		{"*:GRP_ADMIN=administrators", "AEM-Admins", "GRP_ADMIN", "AEM-Authors", "TEAM_MEMBER"},
		{"*:GRP_ADMIN=administrators,AEM-Authors:*=dam-users", "AEM-Authors", "TEAM_MEMBER", "x,administrators", "TEAM_MEMBER"},
		{" A:R=x ;B*:*=y\nC:TEAM_MEMBER = z ,", "Bee", "R", "C", "TEAM_MEMBER"},
		{"a=b:c=d", "a=b", "c", " administrators", ""},
		{"*a*b*:*=ab", "xaybz", "R", "ba", "R"},
		{"A:R=x*", "A", "R", "", ""},
		{"**=all", "", "", "%", "\x00"},
	} {
		f.Add(s.rules, s.g1, s.r1, s.g2, s.r2)
	}
	f.Fuzz(func(t *testing.T, rules, g1, r1, g2, r2 string) {
		m, err := Parse(rules)
		if err != nil {
			return
		}
		rs := m.Rules()
		if len(rs) > maxRules {
			t.Fatalf("%d rules accepted", len(rs))
		}
		lines := make([]string, len(rs))
		for i, r := range rs {
			if r.Group == "" || r.Role == "" || r.Local == "" || strings.ContainsAny(r.Local, "*=,;\n") ||
				strings.ContainsAny(r.Group+r.Role, ",;\n") || strings.TrimSpace(r.Local) != r.Local {
				t.Fatalf("rule %d of %q accepted: %+v", i, rules, r)
			}
			lines[i] = r.String()
		}
		back, err := Parse(strings.Join(lines, "\n"))
		if err != nil || !slices.Equal(back.Rules(), rs) {
			t.Fatalf("rules %q print as %q, which parse to %+v, %v", rules, lines, back.Rules(), err)
		}

		groups := []ims.Group{{GroupName: g1, Role: r1}, {GroupName: g2, Role: r2}}
		got := m.Map(groups)
		if !slices.IsSorted(got) || len(slices.Compact(slices.Clone(got))) != len(got) || slices.Contains(got, "") {
			t.Fatalf("Map = %q: want sorted, distinct, non-empty names", got)
		}
		want := map[string]bool{}
		for _, g := range groups {
			matched := false
			for _, r := range rs {
				if refMatch(r.Group, g.GroupName) && refMatch(r.Role, g.Role) {
					want[r.Local], matched = true, true
				}
			}
			if !matched && g.GroupName != "" {
				want[g.GroupName] = true
			}
		}
		if len(got) != len(want) {
			t.Fatalf("Map(%+v) with %q = %q, want the names %v", groups, rules, got, want)
		}
		for _, g := range got {
			if !want[g] {
				t.Fatalf("Map(%+v) with %q = %q, want the names %v", groups, rules, got, want)
			}
		}
	})
}

// refMatch is match done the textbook way, by dynamic programming over
// bytes: "*" is any run of bytes, every other byte is itself.
func refMatch(pattern, s string) bool {
	// ok[j]: pattern[:i] matches s[:j], for the current i.
	ok := make([]bool, len(s)+1)
	ok[0] = true
	for i := 0; i < len(pattern); i++ {
		next := make([]bool, len(s)+1)
		if pattern[i] == '*' {
			next[0] = ok[0]
			for j := 1; j <= len(s); j++ {
				next[j] = ok[j] || next[j-1]
			}
		} else {
			for j := 1; j <= len(s); j++ {
				next[j] = ok[j-1] && s[j-1] == pattern[i]
			}
		}
		ok = next
	}
	return ok[len(s)]
}
