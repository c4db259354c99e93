// Package cache is the one in-memory cache of Gatehouse's hot paths: a
// bounded map, split into shards that each have their own lock, whose
// entries may expire.
//
// It is built for many concurrent readers of entries written once in a
// while (validated tokens, users, certificates): a lookup takes one
// shard's read lock, makes no allocation and starts no goroutine. There is
// no background sweeper either: an expired entry is dropped when a lookup
// meets it, when its shard is full and makes room, and by DeleteFunc.
//
// The bound is a hard one: a Set into a full shard first drops its expired
// entries and then, if the shard is still full, an arbitrary eighth of it
// (Go's map order is random, so no client can choose whose entries go).
// Dropping an eighth at a time keeps the cost of making room, which scans
// the shard, at a few entries per Set.
package cache

import (
	"hash/maphash"
	"math/bits"
	"runtime"
	"sync"
	"time"
)

// Options configures a Cache.
type Options[K comparable, V any] struct {
	// MaxEntries bounds the number of entries; it must be positive.
	MaxEntries int
	// TTL is how long an entry stored with Set lives. 0: until it is
	// deleted or evicted.
	TTL time.Duration
	// Now returns the current time. Default time.Now.
	Now func() time.Time
	// Hash hashes a key to pick its shard. Default: hash/maphash with a
	// seed of the cache's own. A key that is itself a uniform hash (a
	// SHA-256) can be used as it is.
	Hash func(K) uint64
	// OnEvict, if set, is called with each entry dropped to make room
	// (not for expired ones, nor for Delete, DeleteFunc or Clear). It
	// runs with the shard locked: it must be quick and must not use the
	// cache.
	OnEvict func(K, V)
}

// Cache is a bounded, sharded map with per-entry expiry. It is safe for
// concurrent use. The zero value is not usable; see New.
type Cache[K comparable, V any] struct {
	shards  []shard[K, V]
	mask    uint64
	ttl     time.Duration
	now     func() time.Time
	hash    func(K) uint64
	onEvict func(K, V)
}

type shard[K comparable, V any] struct {
	mu  sync.RWMutex
	m   map[K]item[V]
	max int
	_   [24]byte // with the fields above, 64 bytes: two shards' locks share no cache line
}

type item[V any] struct {
	v   V
	exp int64 // UnixNano after which the entry is gone; 0: never
}

func (it *item[V]) expired(now int64) bool { return it.exp != 0 && now >= it.exp }

// minShardEntries keeps small caches in few shards, so that the bound of
// each shard, a share of MaxEntries, is not so small that a few unlucky
// keys evict each other.
const minShardEntries = 256

// New returns an empty Cache. It panics if MaxEntries is not positive: a
// cache without a bound is a programming error here.
func New[K comparable, V any](o Options[K, V]) *Cache[K, V] {
	if o.MaxEntries <= 0 {
		panic("cache: MaxEntries must be positive")
	}
	n := 1 << bits.Len(uint(8*runtime.GOMAXPROCS(0)-1)) // a power of two >= 8 per CPU
	n = min(n, 256)
	for n > 1 && o.MaxEntries/n < minShardEntries {
		n /= 2
	}
	c := &Cache[K, V]{
		shards:  make([]shard[K, V], n),
		mask:    uint64(n - 1),
		ttl:     o.TTL,
		now:     o.Now,
		hash:    o.Hash,
		onEvict: o.OnEvict,
	}
	if c.now == nil {
		c.now = time.Now
	}
	if c.hash == nil {
		seed := maphash.MakeSeed()
		c.hash = func(k K) uint64 { return maphash.Comparable(seed, k) }
	}
	for i := range c.shards {
		// The remainder goes to the first shards: the bounds add up to
		// MaxEntries exactly.
		c.shards[i].max = o.MaxEntries / n
		if i < o.MaxEntries%n {
			c.shards[i].max++
		}
		c.shards[i].m = make(map[K]item[V])
	}
	return c
}

func (c *Cache[K, V]) shard(k K) *shard[K, V] {
	if c.mask == 0 {
		return &c.shards[0]
	}
	return &c.shards[c.hash(k)&c.mask]
}

func (c *Cache[K, V]) nowNano() int64 { return c.now().UnixNano() }

// Get returns the entry for k, if there is one that has not expired.
func (c *Cache[K, V]) Get(k K) (V, bool) {
	s := c.shard(k)
	s.mu.RLock()
	it, ok := s.m[k]
	s.mu.RUnlock()
	if !ok {
		var zero V
		return zero, false
	}
	if it.exp != 0 {
		if now := c.nowNano(); now >= it.exp {
			s.mu.Lock()
			if it, ok := s.m[k]; ok && it.expired(now) {
				delete(s.m, k)
			}
			s.mu.Unlock()
			var zero V
			return zero, false
		}
	}
	return it.v, true
}

// Set stores v under k for the cache's TTL.
func (c *Cache[K, V]) Set(k K, v V) { c.SetWithTTL(k, v, c.ttl) }

// SetWithTTL stores v under k for ttl; ttl <= 0 means until it is deleted
// or evicted.
func (c *Cache[K, V]) SetWithTTL(k K, v V, ttl time.Duration) {
	s := c.shard(k)
	now := c.nowNano()
	s.mu.Lock()
	c.setLocked(s, k, v, ttl, now)
	s.mu.Unlock()
}

// setLocked stores v under k, making room first; s.mu is held.
func (c *Cache[K, V]) setLocked(s *shard[K, V], k K, v V, ttl time.Duration, now int64) {
	if _, ok := s.m[k]; !ok && len(s.m) >= s.max {
		c.makeRoom(s, now)
	}
	var exp int64
	if ttl > 0 {
		exp = now + int64(ttl)
	}
	s.m[k] = item[V]{v: v, exp: exp}
}

// makeRoom drops s's expired entries and then, if s is still full, an
// arbitrary eighth of it; s.mu is held.
func (c *Cache[K, V]) makeRoom(s *shard[K, V], now int64) {
	for k, it := range s.m {
		if it.expired(now) {
			delete(s.m, k)
		}
	}
	if len(s.m) < s.max {
		return
	}
	keep := s.max - max(s.max/8, 1)
	for k, it := range s.m {
		if len(s.m) <= keep {
			break
		}
		delete(s.m, k)
		if c.onEvict != nil {
			c.onEvict(k, it.v)
		}
	}
}

// Update calls fn with the entry for k (ok false if there is none or it
// has expired) while k's shard is locked, so that no other change to k
// comes between what fn sees and what it decides. If fn returns store
// true, v replaces the entry for the cache's TTL. fn must not use the
// cache.
func (c *Cache[K, V]) Update(k K, fn func(old V, ok bool) (v V, store bool)) {
	s := c.shard(k)
	now := c.nowNano()
	s.mu.Lock()
	defer s.mu.Unlock()
	it, ok := s.m[k]
	if ok && it.expired(now) {
		delete(s.m, k)
		it, ok = item[V]{}, false
	}
	if v, store := fn(it.v, ok); store {
		c.setLocked(s, k, v, c.ttl, now)
	}
}

// Delete removes the entry for k and returns it, if there was one (expired
// or not).
func (c *Cache[K, V]) Delete(k K) (V, bool) {
	return c.DeleteIf(k, nil)
}

// DeleteIf removes the entry for k if fn, called with it while k's shard
// is locked, returns true (a nil fn: always), and returns the entry
// removed. fn must not use the cache.
func (c *Cache[K, V]) DeleteIf(k K, fn func(V) bool) (V, bool) {
	s := c.shard(k)
	s.mu.Lock()
	defer s.mu.Unlock()
	it, ok := s.m[k]
	if !ok || (fn != nil && !fn(it.v)) {
		var zero V
		return zero, false
	}
	delete(s.m, k)
	return it.v, true
}

// DeleteFunc removes every entry for which fn returns true, and every
// expired entry it passes, and returns how many entries fn removed. Each
// shard is locked in turn while fn is called for its entries: fn must be
// quick and must not use the cache.
func (c *Cache[K, V]) DeleteFunc(fn func(K, V) bool) int {
	n := 0
	now := c.nowNano()
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		for k, it := range s.m {
			switch {
			case it.expired(now):
				delete(s.m, k)
			case fn(k, it.v):
				delete(s.m, k)
				n++
			}
		}
		s.mu.Unlock()
	}
	return n
}

// Range calls fn with each entry that has not expired, until fn returns
// false. Each shard is read-locked in turn while fn is called for its
// entries: fn must not use the cache. Entries set or deleted meanwhile
// may or may not be seen.
func (c *Cache[K, V]) Range(fn func(K, V) bool) {
	now := c.nowNano()
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.RLock()
		for k, it := range s.m {
			if !it.expired(now) && !fn(k, it.v) {
				s.mu.RUnlock()
				return
			}
		}
		s.mu.RUnlock()
	}
}

// Clear removes every entry.
func (c *Cache[K, V]) Clear() {
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		s.m = make(map[K]item[V]) // a new map: clear would keep the memory
		s.mu.Unlock()
	}
}

// Len returns the number of entries, counting expired ones not yet
// dropped.
func (c *Cache[K, V]) Len() int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.RLock()
		n += len(s.m)
		s.mu.RUnlock()
	}
	return n
}

// Max returns the bound given to New.
func (c *Cache[K, V]) Max() int {
	n := 0
	for i := range c.shards {
		n += c.shards[i].max
	}
	return n
}
