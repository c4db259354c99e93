package proxy

import (
	"path"
	"testing"
)

// The per-request helpers were rewritten not to allocate; these tests pin
// them to the straightforward definitions they replace.

func TestIsIdentityHeaderMatchesDefinition(t *testing.T) {
	for _, name := range []string{
		"X-Forwarded-User", "X-Forwarded-Email", "X-Forwarded-Groups", "x-forwarded-user",
		"X_Forwarded_User", "x_FORWARDED-groups", "X-Forwarded_Email", "X-Forwarded-Users",
		"X-Forwarded-Use", "X-Forwarded-For", "X-Forwarded-Host", "Cookie", "", "X-Forwarded-Group",
		"X-Forwarded-Groupss", "X-Forwarded-User\x00", "Y-Forwarded-User", "X-Forwarded--User",
		"X-Gatehouse-Assertion", "x_gatehouse_ASSERTION", "X-Gatehouse-Assertions", "X-Gatehouse-Assertio",
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

// Put runs for every proxied request's copy buffer: it must not allocate
// (a *[]byte per Put did).
func TestBufferPoolPutAllocatesNothing(t *testing.T) {
	p := NewBufferPool()
	buf := p.Get()
	if n := testing.AllocsPerRun(100, func() { p.Put(buf) }); n != 0 {
		t.Errorf("Put: %v allocations, want 0", n)
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
