package test

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// TestNoHandMadeCryptography holds the binary to the rule that its
// cryptography comes from the standard library or a well-kept library:
// signatures are checked by crypto/rsa, and no package of ours or a
// low-level arithmetic library re-implements RSA on the request path.
func TestNoHandMadeCryptography(t *testing.T) {
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "list", "-deps", "./cmd/gatehouse")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	deps := strings.Fields(string(out))
	forbidden := []string{
		"filippo.io/bigmod", // modular arithmetic for a verifier of our own
		"github.com/gatehouse-proxy/gatehouse/auth/ims/rs256",
	}
	for _, d := range deps {
		for _, f := range forbidden {
			if d == f || strings.HasPrefix(d, f+"/") {
				t.Errorf("gatehouse depends on %s: signature checks must be crypto/rsa's", d)
			}
		}
	}
	for _, want := range []string{"crypto/rsa", "github.com/golang-jwt/jwt/v5", "github.com/gorilla/securecookie"} {
		if !slices.Contains(deps, want) {
			t.Errorf("gatehouse no longer depends on %s", want)
		}
	}
}
