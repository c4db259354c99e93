// Package input holds the checks every session.Store implementation makes
// on what it is asked to write, so that the backends refuse exactly the
// same input (the limits session.ErrInvalid documents).
package input

import (
	"fmt"
	"sort"

	"github.com/gatehouse-proxy/gatehouse/session"
)

// Limits on input, so that a misbehaving caller cannot grow rows without
// bound. Longer values are rejected, never truncated.
const (
	MaxIDLen    = 255  // bytes of a user id, login-token id or setting key
	MaxGroupLen = 255  // bytes of a group name or membership source
	MaxGroups   = 1000 // distinct, non-empty IMS groups in one sync
)

// CheckID validates a user id, login-token id or setting key.
func CheckID(what, id string) error {
	if id == "" {
		return fmt.Errorf("%w: empty %s", session.ErrInvalid, what)
	}
	if len(id) > MaxIDLen {
		return fmt.Errorf("%w: %s is %d bytes long, more than %d", session.ErrInvalid, what, len(id), MaxIDLen)
	}
	return nil
}

// CheckName validates a group name or membership source.
func CheckName(what, name string) error {
	if name == "" {
		return fmt.Errorf("%w: empty %s", session.ErrInvalid, what)
	}
	if len(name) > MaxGroupLen {
		return fmt.Errorf("%w: %s %q is %d bytes long, more than %d", session.ErrInvalid, what, Clip(name), len(name), MaxGroupLen)
	}
	return nil
}

// NormalizeGroups drops empty names, merges duplicates and sorts, and
// rejects names longer than MaxGroupLen or more than MaxGroups names.
func NormalizeGroups(groups []string) ([]string, error) {
	seen := make(map[string]struct{}, min(len(groups), MaxGroups+1))
	out := make([]string, 0, min(len(groups), MaxGroups+1))
	for _, g := range groups {
		if g == "" {
			continue
		}
		if _, ok := seen[g]; ok {
			continue
		}
		if err := CheckName("group", g); err != nil {
			return nil, err
		}
		if len(out) == MaxGroups {
			return nil, fmt.Errorf("%w: more than %d groups", session.ErrInvalid, MaxGroups)
		}
		seen[g] = struct{}{}
		out = append(out, g)
	}
	sort.Strings(out)
	return out, nil
}

// Diff compares two sorted, duplicate-free lists and returns what is only
// in want (added) and only in have (removed), both sorted.
func Diff(have, want []string) (added, removed []string) {
	i, j := 0, 0
	for i < len(have) || j < len(want) {
		switch {
		case j == len(want) || (i < len(have) && have[i] < want[j]):
			removed = append(removed, have[i])
			i++
		case i == len(have) || want[j] < have[i]:
			added = append(added, want[j])
			j++
		default:
			i++
			j++
		}
	}
	return added, removed
}

// Clip shortens s for an error message.
func Clip(s string) string {
	const n = 40
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
