// Package groupmap turns IMS organization groups into local group names by
// rules of the form "<groupName>:<role>=<localGroup>", with "*" wildcards
// (for example "*:GRP_ADMIN=administrators").
package groupmap

import (
	"fmt"
	"sort"
	"strings"

	"github.com/gatehouse-proxy/gatehouse/auth/ims"
)

// Limits on a mapping setting, so that a typo cannot make start-up or every
// sync pathological.
const (
	maxRules    = 256
	maxRuleSize = 512
)

// Rule maps IMS groups whose name and role match the patterns to Local.
type Rule struct {
	Group string // pattern for the IMS group name; "*" matches any run of characters
	Role  string // pattern for the membership role (e.g. TEAM_MEMBER, GRP_ADMIN)
	Local string // the local group name
}

func (r Rule) String() string { return r.Group + ":" + r.Role + "=" + r.Local }

// Mapping is an ordered list of rules. The zero Mapping maps every group to
// its own name.
type Mapping struct {
	rules []Rule
}

// Parse reads rules separated by commas, semicolons or newlines. In each
// rule the last "=" separates the local group, and the last ":" before it
// separates the role pattern; a rule without ":" matches any role. IMS group
// names contain spaces and dashes, but not "=", ":" or ",".
func Parse(s string) (*Mapping, error) {
	m := &Mapping{}
	fields := strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ';' || r == '\n' })
	for i, f := range fields {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if len(f) > maxRuleSize {
			return nil, fmt.Errorf("rule %d: longer than %d bytes", i+1, maxRuleSize)
		}
		eq := strings.LastIndexByte(f, '=')
		if eq < 0 {
			return nil, fmt.Errorf("rule %d %q: want <groupName>:<role>=<localGroup>", i+1, f)
		}
		lhs, local := strings.TrimSpace(f[:eq]), strings.TrimSpace(f[eq+1:])
		group, role := lhs, "*"
		if c := strings.LastIndexByte(lhs, ':'); c >= 0 {
			group, role = strings.TrimSpace(lhs[:c]), strings.TrimSpace(lhs[c+1:])
		}
		switch {
		case local == "":
			return nil, fmt.Errorf("rule %d %q: the local group after '=' is empty", i+1, f)
		case strings.Contains(local, "*"):
			return nil, fmt.Errorf("rule %d %q: the local group may not contain '*'", i+1, f)
		case group == "" || role == "":
			return nil, fmt.Errorf("rule %d %q: empty group or role pattern (use * to match any)", i+1, f)
		}
		m.rules = append(m.rules, Rule{Group: group, Role: role, Local: local})
	}
	if len(m.rules) > maxRules {
		return nil, fmt.Errorf("%d rules: at most %d are allowed", len(m.rules), maxRules)
	}
	return m, nil
}

// Rules returns a copy of the rules, in order.
func (m *Mapping) Rules() []Rule {
	if m == nil {
		return nil
	}
	return append([]Rule(nil), m.rules...)
}

// Map returns the local groups for a user's IMS groups, distinct and sorted.
// Every rule that matches a group contributes its local group; a group that
// no rule matches keeps its IMS name, so that mapping is an addition an
// operator opts into per group rather than a filter that silently drops
// memberships.
func (m *Mapping) Map(groups []ims.Group) []string {
	seen := make(map[string]struct{}, len(groups))
	add := func(g string) {
		if g != "" {
			seen[g] = struct{}{}
		}
	}
	for _, g := range groups {
		matched := false
		if m != nil {
			for _, r := range m.rules {
				if match(r.Group, g.GroupName) && match(r.Role, g.Role) {
					add(r.Local)
					matched = true
				}
			}
		}
		if !matched {
			add(g.GroupName)
		}
	}
	out := make([]string, 0, len(seen))
	for g := range seen {
		out = append(out, g)
	}
	sort.Strings(out)
	return out
}

// match reports whether s matches pattern, where "*" matches any run of
// characters (including none) and every other character matches itself.
// Unlike path.Match, '?', '[' and '\' are ordinary: they occur in group names.
func match(pattern, s string) bool {
	parts := strings.Split(pattern, "*")
	if len(parts) == 1 {
		return pattern == s
	}
	if !strings.HasPrefix(s, parts[0]) {
		return false
	}
	s = s[len(parts[0]):]
	last := parts[len(parts)-1]
	for _, p := range parts[1 : len(parts)-1] {
		i := strings.Index(s, p)
		if i < 0 {
			return false
		}
		s = s[i+len(p):]
	}
	return len(s) >= len(last) && strings.HasSuffix(s, last)
}
