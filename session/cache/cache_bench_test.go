package cache

import (
	"sync/atomic"
	"testing"
	"time"
)

// benchEntries is the size of the benchmarks' caches: the bearer cache's
// bound.
const benchEntries = 100_000

func benchCache(b *testing.B) (*Cache[[32]byte, *int], [][32]byte) {
	b.Helper()
	// Filled to 7/8 of its bound: each shard has a share of the bound,
	// and filled to the brim, the fuller shards would evict.
	keys := shaKeys(benchEntries * 7 / 8)
	c := New(Options[[32]byte, *int]{MaxEntries: benchEntries, TTL: time.Hour, Hash: shaHash})
	v := 1
	for _, k := range keys {
		c.Set(k, &v)
	}
	return c, keys
}

// BenchmarkGet is a warm lookup (a hit) on one goroutine.
func BenchmarkGet(b *testing.B) {
	c, keys := benchCache(b)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, ok := c.Get(keys[i%len(keys)]); !ok {
			b.Fatal("miss")
		}
		i++
	}
}

// BenchmarkGetParallel is warm lookups from every CPU, each goroutine on
// its own keys, as requests of many users are.
func BenchmarkGetParallel(b *testing.B) {
	c, keys := benchCache(b)
	var next atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := int(next.Add(7919))
		for pb.Next() {
			if _, ok := c.Get(keys[i%len(keys)]); !ok {
				b.Error("miss")
				return
			}
			i++
		}
	})
}

// BenchmarkGetParallelOneKey is every CPU looking up one key: a single
// user's burst.
func BenchmarkGetParallelOneKey(b *testing.B) {
	c, keys := benchCache(b)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			c.Get(keys[0])
		}
	})
}

// BenchmarkSetFull is a Set of a new key into a full cache: it pays for
// making room.
func BenchmarkSetFull(b *testing.B) {
	c, _ := benchCache(b)
	keys := shaKeys(4 * benchEntries)[benchEntries:]
	v := 1
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		c.Set(keys[i%len(keys)], &v)
		i++
	}
}
