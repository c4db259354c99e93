package gctune

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"testing"
	"time"
)

func TestPercentFor(t *testing.T) {
	const mib = 1 << 20
	tests := []struct {
		headroom, live uint64
		want           int
	}{
		{32 * mib, 16 * mib, 200},         // goal = 48 MiB
		{32 * mib, 8 * mib, 400},          // goal = 40 MiB
		{32 * mib, 4 * mib, 800},          // both terms: 4·9 = 4·800/100 = 36 MiB
		{32 * mib, 2 * mib, 850},          // minimum-heap term: 4·8.5 = 34 MiB
		{32 * mib, 0, 800},                // before the first collection: 32 MiB
		{32 * mib, 1024, 800},             // nearly empty
		{32 * mib, 32 * mib, 100},         // from here on, Go's default
		{32 * mib, 31 * mib, 103},         // just before it
		{32 * mib, 500 * mib, 100},        // never below the default
		{32 * mib, 1 << 40, 100},          // huge heap
		{64 * mib, 8 * mib, 800},          // scales with the headroom
		{0, 2 * mib, 100},                 // no headroom: the default
		{3 * mib, 2 * mib, 125},           // minimum-heap term: (2+3)/4
		{16 << 30, 1 * mib, maxGCPercent}, // huge headroom: bounded
	}
	for _, tt := range tests {
		if got := PercentFor(tt.headroom, tt.live); got != tt.want {
			t.Errorf("PercentFor(%d, %d) = %d, want %d", tt.headroom, tt.live, got, tt.want)
		}
	}
}

func gogc() int {
	s := []metrics.Sample{{Name: "/gc/gogc:percent"}}
	metrics.Read(s)
	return int(s[0].Value.Uint64())
}

// waitFor runs collections until cond holds, for up to five seconds.
func waitFor(t *testing.T, what string, cond func(int) bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond(gogc()) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: GOGC is %d after collections", what, gogc())
		}
		runtime.GC()
		time.Sleep(time.Millisecond) // the finalizer goroutine runs the tuning
	}
}

// TestTunerFollowsTheLiveHeap: GOGC goes up for this test binary's small
// heap, down when 48 MiB more become live, up again when they are
// garbage; after Stop it is back at 100 and stays there.
func TestTunerFollowsTheLiveHeap(t *testing.T) {
	before := debug.SetGCPercent(100)
	t.Cleanup(func() { debug.SetGCPercent(before) })

	tu := Start(64 << 20)
	if got := gogc(); got < 1000 {
		t.Fatalf("GOGC after Start = %d, want at least 1000 for a heap of a few MiB", got)
	}
	ballast := make([]byte, 48<<20)
	waitFor(t, "48 MiB live", func(p int) bool { return p < 200 }) // 64/(48+a few) ≈ 1.3
	runtime.KeepAlive(ballast)
	ballast = nil
	waitFor(t, "48 MiB garbage again", func(p int) bool { return p >= 1000 })

	tu.Stop()
	if got := gogc(); got != 100 {
		t.Fatalf("GOGC after Stop = %d, want 100", got)
	}
	for range 5 {
		runtime.GC()
		time.Sleep(time.Millisecond)
	}
	if got := gogc(); got != 100 {
		t.Errorf("GOGC after Stop and collections = %d, want 100", got)
	}
}
