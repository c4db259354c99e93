package assertion_test

import (
	"testing"
	"time"

	"github.com/gatehouse-proxy/gatehouse/auth/assertion"
)

// BenchmarkAssertion: "cached" is what almost every request pays, "sign"
// what one request per user and half lifetime pays.
func BenchmarkAssertion(b *testing.B) {
	k, err := assertion.GenerateKey(time.Now())
	if err != nil {
		b.Fatal(err)
	}
	is, err := assertion.New(assertion.Config{Issuer: iss, Audience: aud}, []assertion.Key{k})
	if err != nil {
		b.Fatal(err)
	}
	b.Run("cached", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if is.Assertion(ada) == "" {
				b.Fatal("no assertion")
			}
		}
	})
	b.Run("sign", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := is.Sign(ada); err != nil {
				b.Fatal(err)
			}
		}
	})
}
