package proxy

import (
	"io"
	"net/http"
	"net/http/httptest"
	"path"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/gatehouse-proxy/gatehouse/proxy/jsonlog"
)

// The per-request helpers were rewritten not to allocate; these tests pin
// them to the straightforward definitions they replace.

func TestIsIdentityHeaderMatchesDefinition(t *testing.T) {
	for _, name := range []string{
		"X-Forwarded-User", "X-Forwarded-Email", "X-Forwarded-Groups", "x-forwarded-user",
		"X_Forwarded_User", "x_FORWARDED-groups", "X-Forwarded_Email", "X-Forwarded-Users",
		"X-Forwarded-Use", "X-Forwarded-For", "X-Forwarded-Host", "Cookie", "", "X-Forwarded-Group",
		"X-Forwarded-Groupss", "X-Forwarded-User\x00", "Y-Forwarded-User", "X-Forwarded--User",
	} {
		if got, want := isIdentityHeader(name), readsAsIdentity(name); got != want {
			t.Errorf("isIdentityHeader(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestCleanRootedMatchesDefinition(t *testing.T) {
	for _, q := range []string{
		"", "/", "//", "/a", "a", "/a/../b", "a/../../b", "/gatehouse/", "//gatehouse//healthz",
		"/a/./b/", "./x", "../gatehouse", "/content/dam/we-retail.json", "/a//b///c/..",
	} {
		if got, want := cleanRooted(q), path.Clean("/"+q); got != want {
			t.Errorf("cleanRooted(%q) = %q, want %q", q, got, want)
		}
	}
}

func TestBufferPool(t *testing.T) {
	p := NewBufferPool()
	b := p.Get()
	if len(b) != copyBufferSize {
		t.Fatalf("Get: %d bytes, want %d", len(b), copyBufferSize)
	}
	p.Put(b[:10])
	if b := p.Get(); len(b) != copyBufferSize {
		t.Fatalf("Get after Put of a resliced buffer: %d bytes, want %d", len(b), copyBufferSize)
	}
	p.Put(make([]byte, 100)) // not ours: dropped
	if b := p.Get(); len(b) != copyBufferSize {
		t.Fatalf("Get after Put of a small buffer: %d bytes, want %d", len(b), copyBufferSize)
	}
}

func BenchmarkStripAndReserved(b *testing.B) {
	rp := &reservedPaths{prefix: "/gatehouse/", folded: "/gatehouse/", match: NewPathMatcher("/gatehouse/")}
	names := []string{"Host", "User-Agent", "Accept", "Cookie", "X-Request-Id", "Accept-Encoding"}
	b.ReportAllocs()
	for b.Loop() {
		for _, n := range names {
			if isIdentityHeader(n) {
				b.Fatal(n)
			}
		}
		if rp.isReserved("/content/dam/we-retail/en/activities/hiking.jpg") {
			b.Fatal("reserved")
		}
	}
}

// BenchmarkAccessLog is the access-log step alone around a handler that
// answers at once, writing to io.Discard: through zap's JSON encoder with
// gatehouse serve's configuration, and directly (AccessLogJSON), which
// serve uses for JSON logs. What the line costs besides its write(2).
func BenchmarkAccessLog(b *testing.B) {
	ec := zap.NewProductionEncoderConfig()
	ec.EncodeTime = jsonlog.ISO8601TimeEncoder
	log := zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(ec), zapcore.AddSync(io.Discard), zapcore.InfoLevel)).Named("proxy")
	for _, bc := range []struct {
		name   string
		direct *AccessLogJSON
	}{
		{"zap", nil},
		{"direct", &AccessLogJSON{W: io.Discard, Name: "proxy"}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			h := accessLog(log, bc.direct)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				rec := recordFrom(r.Context())
				rec.requestID, rec.userID = "0123456789ABCDEFGHIJKLMNOP", "7F8F1A2B3C4D5E6F7A8B9C0D@AdobeID"
				w.WriteHeader(http.StatusOK)
			}))
			r := httptest.NewRequest("GET", "/content/dam/we-retail.json", nil)
			r.Header.Set("Cookie", "login-token="+strings.Repeat("x", 200))
			r.Header.Set("User-Agent", "bench")
			w := httptest.NewRecorder()
			b.ReportAllocs()
			for b.Loop() {
				h.ServeHTTP(w, r)
			}
		})
	}
}
