// Package gctune keeps the garbage collector's heap goal a fixed headroom
// above the live heap, for a process whose live heap is small next to
// what it allocates per second: a proxy.
package gctune

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync/atomic"
)

// The garbage collector's heap goal is, by default, twice the live heap
// and at least 4 MiB. Gatehouse's live heap is a few MiB until its caches
// fill, while every proxied request allocates about 15 KiB in net/http
// alone: at 20,000 requests a second the collector then ran 77 times a
// second, and the benchmark measured its marking, assists and write
// barriers as a sixth of the cookie path's CPU.
//
// Tuner keeps the heap goal at least headroom bytes above the live heap:
// after every collection it sets GOGC (see PercentFor) so that the goal
// is max(live + headroom, 2·live): a small heap is collected every headroom bytes of allocation while a
// large one (100,000 cached login tokens and more) keeps Go's default of
// twice the live heap. The cost is at most headroom bytes of extra
// resident memory.
type Tuner struct {
	headroom uint64
	stopped  atomic.Bool
	percent  int // last GOGC set; after Start, only the finalizer goroutine touches it
	live     []metrics.Sample
}

// maxGCPercent bounds GOGC for a nearly empty heap.
const maxGCPercent = 10_000

// Start starts tuning for headroom bytes and returns the tuner. Only one
// should run in a process.
func Start(headroom uint64) *Tuner {
	t := &Tuner{headroom: headroom, percent: 100, live: []metrics.Sample{{Name: "/gc/heap/live:bytes"}}}
	t.tune()
	t.arm()
	return t
}

// gcSentinel is garbage as soon as it is made; its finalizer runs after
// the collection that found it, and arms the next one.
type gcSentinel struct{ t *Tuner }

func (t *Tuner) arm() {
	runtime.SetFinalizer(&gcSentinel{t}, func(s *gcSentinel) {
		if s.t.stopped.Load() {
			return
		}
		s.t.tune()
		s.t.arm()
	})
}

func (t *Tuner) tune() {
	metrics.Read(t.live)
	live := uint64(1)
	if t.live[0].Value.Kind() == metrics.KindUint64 {
		live = max(live, t.live[0].Value.Uint64())
	}
	p := PercentFor(t.headroom, live)
	// Within 5 % of the current setting: not worth a change.
	if d := p - t.percent; (d*20 > t.percent || -d*20 > t.percent) && !t.stopped.Load() {
		debug.SetGCPercent(p)
		t.percent = p
	}
}

// PercentFor is the GOGC that puts the heap goal headroom bytes above a
// live heap of live bytes, and no lower than Go's default. The runtime's
// goal is max(live·(1+GOGC/100), 4 MiB·GOGC/100): its minimum heap
// grows with GOGC too, so for a live heap under about 4 MiB (and before
// the first collection, when live reads 0) the second term is what sets
// the goal, and GOGC is chosen so that it comes to live + headroom.
func PercentFor(headroom, live uint64) int {
	const minHeap = 4 << 20 // the runtime's heap minimum at GOGC=100
	p := uint64(maxGCPercent)
	if live > 0 {
		p = min(p, headroom*100/live)
	}
	p = min(p, (live+headroom)*100/minHeap)
	return int(max(p, 100))
}

// Stop ends the tuning and gives GOGC back its default.
func (t *Tuner) Stop() {
	if t.stopped.Swap(true) {
		return
	}
	debug.SetGCPercent(100)
}
