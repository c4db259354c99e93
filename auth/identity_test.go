package auth

import (
	"context"
	"net/http/httptest"
	"testing"
)

// SetIdentity fills an empty slot in place (no copy of the request); with
// no slot, or one already filled, it falls back to a copy whose context
// carries the identity, and FromContext prefers that copy's.
func TestSetIdentity(t *testing.T) {
	first, second := &Identity{UserID: "first"}, &Identity{UserID: "second"}
	for _, tc := range []struct {
		name     string
		slot     bool
		set      []*Identity
		wantCopy []bool // per SetIdentity: a new request returned
		want     string
	}{
		{"no slot", false, []*Identity{first}, []bool{true}, "first"},
		{"empty slot", true, []*Identity{first}, []bool{false}, "first"},
		{"slot filled, then again", true, []*Identity{first, second}, []bool{false, true}, "second"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			var s Slot
			if tc.slot {
				r = r.WithContext(WithSlot(r.Context(), &s))
			}
			if _, ok := FromContext(r.Context()); ok {
				t.Fatal("identity before SetIdentity")
			}
			for i, id := range tc.set {
				next := SetIdentity(r, id)
				if copied := next != r; copied != tc.wantCopy[i] {
					t.Errorf("SetIdentity #%d: copied %v, want %v", i, copied, tc.wantCopy[i])
				}
				r = next
			}
			id, ok := FromContext(r.Context())
			if !ok || id.UserID != tc.want {
				t.Errorf("FromContext = %v, %v; want %q", id, ok, tc.want)
			}
		})
	}
	if _, ok := FromContext(WithSlot(context.Background(), &Slot{})); ok {
		t.Error("an empty slot counts as an identity")
	}
}
