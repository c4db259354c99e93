package browser

import (
	"net/http/httptest"
	"testing"
)

// BenchmarkIsBrowser is the cost the browser sign-in adds to every
// proxied request of a browser before authentication.
func BenchmarkIsBrowser(b *testing.B) {
	for _, bc := range []struct{ name, accept string }{
		{"navigation", "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,image/apng,*/*;q=0.8,application/signed-exchange;v=b3;q=0.7"},
		{"image", "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8"},
		{"none", ""},
	} {
		b.Run(bc.name, func(b *testing.B) {
			r := httptest.NewRequest("GET", "/content/dam/a.jpg", nil)
			if bc.accept != "" {
				r.Header.Set("Accept", bc.accept)
			}
			b.ReportAllocs()
			for b.Loop() {
				IsBrowser(r)
			}
		})
	}
}
