package cache

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// clock is a settable time source.
type clock struct{ ns atomic.Int64 }

func newClock() *clock {
	c := &clock{}
	c.ns.Store(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	return c
}
func (c *clock) Now() time.Time      { return time.Unix(0, c.ns.Load()) }
func (c *clock) Add(d time.Duration) { c.ns.Add(int64(d)) }
func newTest(max int, ttl time.Duration) (*Cache[string, int], *clock) {
	clk := newClock()
	return New(Options[string, int]{MaxEntries: max, TTL: ttl, Now: clk.Now}), clk
}

func TestGetSetDelete(t *testing.T) {
	type step struct {
		op   string // set, setttl, get, del, wait
		k    string
		v    int
		ttl  time.Duration
		want int
		ok   bool
	}
	tests := []struct {
		name  string
		ttl   time.Duration
		steps []step
	}{
		{"miss", 0, []step{{op: "get", k: "a"}}},
		{"hit", 0, []step{{op: "set", k: "a", v: 1}, {op: "get", k: "a", want: 1, ok: true}}},
		{"replace", 0, []step{{op: "set", k: "a", v: 1}, {op: "set", k: "a", v: 2}, {op: "get", k: "a", want: 2, ok: true}}},
		{"delete", 0, []step{{op: "set", k: "a", v: 1}, {op: "del", k: "a", want: 1, ok: true}, {op: "get", k: "a"}, {op: "del", k: "a"}}},
		{"no ttl never expires", 0, []step{{op: "set", k: "a", v: 1}, {op: "wait", ttl: 1000 * time.Hour}, {op: "get", k: "a", want: 1, ok: true}}},
		{"ttl: alive just before", time.Minute, []step{{op: "set", k: "a", v: 1}, {op: "wait", ttl: time.Minute - 1}, {op: "get", k: "a", want: 1, ok: true}}},
		{"ttl: gone at expiry", time.Minute, []step{{op: "set", k: "a", v: 1}, {op: "wait", ttl: time.Minute}, {op: "get", k: "a"}}},
		{"own ttl beats default", time.Minute, []step{{op: "setttl", k: "a", v: 1, ttl: time.Hour}, {op: "wait", ttl: 59 * time.Minute}, {op: "get", k: "a", want: 1, ok: true}}},
		{"own ttl shorter", time.Hour, []step{{op: "setttl", k: "a", v: 1, ttl: time.Second}, {op: "wait", ttl: time.Second}, {op: "get", k: "a"}}},
		{"ttl 0 with default: forever", time.Second, []step{{op: "setttl", k: "a", v: 1}, {op: "wait", ttl: time.Hour}, {op: "get", k: "a", want: 1, ok: true}}},
		{"set renews", time.Minute, []step{{op: "set", k: "a", v: 1}, {op: "wait", ttl: 50 * time.Second}, {op: "set", k: "a", v: 2}, {op: "wait", ttl: 50 * time.Second}, {op: "get", k: "a", want: 2, ok: true}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, clk := newTest(100, tt.ttl)
			for i, s := range tt.steps {
				var got int
				var ok bool
				switch s.op {
				case "set":
					c.Set(s.k, s.v)
					continue
				case "setttl":
					c.SetWithTTL(s.k, s.v, s.ttl)
					continue
				case "wait":
					clk.Add(s.ttl)
					continue
				case "get":
					got, ok = c.Get(s.k)
				case "del":
					got, ok = c.Delete(s.k)
				}
				if got != s.want || ok != s.ok {
					t.Errorf("step %d %s(%q) = %d, %v; want %d, %v", i, s.op, s.k, got, ok, s.want, s.ok)
				}
			}
		})
	}
}

// TestExpiredDropped: an expired entry leaves memory when a lookup meets
// it, when its shard makes room, and in DeleteFunc; no goroutine needed.
func TestExpiredDropped(t *testing.T) {
	t.Run("on read", func(t *testing.T) {
		c, clk := newTest(10, time.Second)
		c.Set("a", 1)
		clk.Add(time.Second)
		c.Get("a")
		if n := c.Len(); n != 0 {
			t.Errorf("Len = %d after reading an expired entry, want 0", n)
		}
	})
	t.Run("on making room", func(t *testing.T) {
		c, clk := newTest(10, 0)
		for i := range 5 {
			c.SetWithTTL(fmt.Sprint("old", i), i, time.Second)
		}
		for i := range 5 {
			c.Set(fmt.Sprint("live", i), i)
		}
		clk.Add(time.Second)
		c.Set("new", 1)
		if n := c.Len(); n != 6 {
			t.Errorf("Len = %d, want 6: the expired go first", n)
		}
		for i := range 5 {
			if _, ok := c.Get(fmt.Sprint("live", i)); !ok {
				t.Errorf("live%d evicted while expired entries were there", i)
			}
		}
	})
	// oldAndLive is a cache holding an expired entry "old" and a live
	// one "live".
	oldAndLive := func() *Cache[string, int] {
		c, clk := newTest(10, 0)
		c.SetWithTTL("old", 1, time.Second)
		c.Set("live", 2)
		clk.Add(time.Second)
		return c
	}
	t.Run("in DeleteFunc", func(t *testing.T) {
		c := oldAndLive()
		if n := c.DeleteFunc(func(string, int) bool { return false }); n != 0 {
			t.Errorf("DeleteFunc = %d, want 0", n)
		}
		if n := c.Len(); n != 1 {
			t.Errorf("Len = %d, want 1", n)
		}
	})
	t.Run("not ranged", func(t *testing.T) {
		c := oldAndLive()
		var seen []string
		c.Range(func(k string, _ int) bool { seen = append(seen, k); return true })
		if len(seen) != 1 || seen[0] != "live" {
			t.Errorf("Range saw %v, want [live]", seen)
		}
	})
}

func TestBound(t *testing.T) {
	for _, max := range []int{1, 3, 255, 256, 1000, 100_000} {
		t.Run(fmt.Sprint(max), func(t *testing.T) {
			var evicted atomic.Int64
			c := New(Options[int, int]{MaxEntries: max, OnEvict: func(int, int) { evicted.Add(1) }})
			if c.Max() != max {
				t.Fatalf("Max = %d, want %d", c.Max(), max)
			}
			n := 3*max + 10
			for i := range n {
				c.Set(i, i)
				if c.Len() > max && (i%997 == 0 || max < 1000) {
					t.Fatalf("after %d sets, Len = %d > %d", i+1, c.Len(), max)
				}
			}
			if l := c.Len(); l > max || l < max*3/4 {
				t.Errorf("Len = %d, want between %d and %d", l, max*3/4, max)
			}
			if got := int64(n - c.Len()); evicted.Load() != got {
				t.Errorf("OnEvict called %d times, want %d", evicted.Load(), got)
			}
			// Replacing an entry in a full cache evicts nothing.
			before := evicted.Load()
			var some int
			c.Range(func(k, _ int) bool { some = k; return false })
			c.Set(some, -1)
			if evicted.Load() != before {
				t.Error("replacing an entry evicted another")
			}
		})
	}
}

func TestUpdate(t *testing.T) {
	c, clk := newTest(10, time.Minute)
	inc := func(old int, ok bool) (int, bool) { return old + 1, true }
	c.Update("a", func(old int, ok bool) (int, bool) {
		if ok {
			t.Error("Update saw an entry that is not there")
		}
		return 1, true
	})
	c.Update("a", inc)
	if v, _ := c.Get("a"); v != 2 {
		t.Errorf("after two updates: %d, want 2", v)
	}
	c.Update("a", func(int, bool) (int, bool) { return 9, false })
	if v, _ := c.Get("a"); v != 2 {
		t.Errorf("store=false changed the entry to %d", v)
	}
	clk.Add(time.Minute)
	c.Update("a", func(old int, ok bool) (int, bool) {
		if ok {
			t.Error("Update saw an expired entry")
		}
		return 0, false
	})
	if c.Len() != 0 {
		t.Error("the expired entry Update met is still there")
	}
}

func TestDeleteIfFuncClear(t *testing.T) {
	c, _ := newTest(1000, 0)
	for i := range 100 {
		c.Set(fmt.Sprint(i), i)
	}
	if _, ok := c.DeleteIf("5", func(v int) bool { return v != 5 }); ok {
		t.Error("DeleteIf removed an entry its func refused")
	}
	if v, ok := c.DeleteIf("5", func(v int) bool { return v == 5 }); !ok || v != 5 {
		t.Errorf("DeleteIf = %d, %v; want 5, true", v, ok)
	}
	if n := c.DeleteFunc(func(_ string, v int) bool { return v%2 == 0 }); n != 50 {
		t.Errorf("DeleteFunc removed %d, want 50", n)
	}
	if n := c.Len(); n != 49 {
		t.Errorf("Len = %d, want 49", n)
	}
	c.Clear()
	if n := c.Len(); n != 0 {
		t.Errorf("Len after Clear = %d", n)
	}
}

// TestConcurrent is for -race: every operation at once, and the bound
// holds throughout.
func TestConcurrent(t *testing.T) {
	clk := newClock()
	const max = 2000
	c := New(Options[int, *int]{MaxEntries: max, TTL: time.Second, Now: clk.Now})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 5000 {
				k := (g*7919 + i) % 5000
				switch i % 7 {
				case 0, 1, 2:
					if p, ok := c.Get(k); ok && *p != k {
						t.Errorf("Get(%d) = %d", k, *p)
					}
				case 3:
					v := k
					c.Set(k, &v)
				case 4:
					c.Update(k, func(old *int, ok bool) (*int, bool) { v := k; return &v, !ok })
				case 5:
					c.Delete(k)
				case 6:
					clk.Add(time.Millisecond)
					if i%500 == 6 {
						c.DeleteFunc(func(k int, _ *int) bool { return k%100 == 0 })
						c.Range(func(int, *int) bool { return true })
					}
				}
				if i%50 != 0 {
					continue
				}
				if n := c.Len(); n > max {
					t.Errorf("Len = %d > %d", n, max)
				}
			}
		}()
	}
	wg.Wait()
}

// sha keys are what the session and bearer caches use.
func shaKeys(n int) [][32]byte {
	ks := make([][32]byte, n)
	for i := range ks {
		var b [8]byte
		binary.LittleEndian.PutUint64(b[:], uint64(i))
		ks[i] = sha256.Sum256(b[:])
	}
	return ks
}

func shaHash(k [32]byte) uint64 { return binary.LittleEndian.Uint64(k[:8]) }

func TestGetAllocates(t *testing.T) {
	keys := shaKeys(100)
	c := New(Options[[32]byte, *int]{MaxEntries: 1000, TTL: time.Hour, Hash: shaHash})
	s := New(Options[string, *int]{MaxEntries: 1000, TTL: time.Hour})
	v := 1
	for _, k := range keys {
		c.Set(k, &v)
		s.Set(string(k[:]), &v)
	}
	sk := string(keys[7][:])
	if n := testing.AllocsPerRun(100, func() { c.Get(keys[7]) }); n != 0 {
		t.Errorf("Get with a [32]byte key: %v allocations, want 0", n)
	}
	if n := testing.AllocsPerRun(100, func() { s.Get(sk) }); n != 0 {
		t.Errorf("Get with a string key: %v allocations, want 0", n)
	}
}
