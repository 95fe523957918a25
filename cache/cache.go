// Package cache is the sidecar's stale-time cache of Better Auth answers.
//
// Entries are kept in ristretto, keyed by a digest of the credential (plus
// the query family and its params), costed in bytes within a fixed budget.
// Concurrent misses for one key make one backend call (singleflight), which
// is not cancelled when the client that started it goes away.
//
// Invalidation works by tags instead of an index of keys: every entry
// carries the tags it depends on (its credential, its user id, its session,
// its organizations) and the sequence number at which its fetch started.
// Invalidating a tag stamps the tag's slot with a new sequence number; an
// entry whose tags carry a stamp newer than its own start is dead. This
// needs no bookkeeping when ristretto evicts, is bounded in memory, and
// covers a lookup that was in flight during the invalidation: its answer is
// born dead and is never written back.
package cache

import (
	"context"
	"errors"
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/dgraph-io/ristretto/v2"
	"golang.org/x/sync/singleflight"
)

// Entry is one cached answer. Value is opaque to the cache.
type Entry struct {
	Value     any
	Cost      int64     // bytes the entry holds
	FetchedAt time.Time // when the backend answered
	Tags      []string  // what invalidates it

	start  uint64
	until  time.Time // when stored: the end of its keep time
	slots  [6]uint16 // of the first Tags, when stored: a hit looks them up without hashing
	nslots uint8
}

// Age is how old the answer is at now.
func (e *Entry) Age(now time.Time) time.Duration { return now.Sub(e.FetchedAt) }

// Stats are counters for metrics and tests.
type Stats struct {
	Hits, Misses, Fetches, Evictions, Invalidations atomic.Uint64
}

// slots is the number of invalidation stamps. Two tags sharing a slot only
// cost a spurious miss, never a stale hit.
const slots = 1 << 16

// entryOverhead approximates the bytes an entry costs beyond its value
// (Cost) and its key and tags (charged by their length): the Entry, the
// value's own struct, the Tags slice and ristretto's bookkeeping (store
// item, map slots, expiry bucket, policy counters). Calibrated with
// module's BenchmarkSessionEntryMemory (heap/cache_size about 1), so that
// cache_size bounds the heap the entries hold.
const entryOverhead = 512

// charge is what an entry costs against the cache's budget.
func charge(key string, e *Entry) int64 {
	n := e.Cost + int64(len(key)) + entryOverhead
	for _, t := range e.Tags {
		n += int64(len(t)) + 16 // the bytes and the string header
	}
	return n
}

// Cache is safe for concurrent use.
type Cache struct {
	rc    *ristretto.Cache[string, *Entry]
	sf    singleflight.Group
	seed  maphash.Seed
	seq   atomic.Uint64
	floor atomic.Uint64 // entries started before it are dead (InvalidateAll)
	stamp [slots]atomic.Uint64
	once  sync.Once
	Stats Stats
}

// New returns a cache holding at most maxBytes of entries; onEvict, when
// set, is called for every entry evicted to make room.
func New(maxBytes int64, onEvict func()) (*Cache, error) {
	if maxBytes <= 0 {
		return nil, errors.New("cache size must be positive")
	}
	counters := min(max(maxBytes/100, 10_000), 50_000_000)
	c := &Cache{seed: maphash.MakeSeed()}
	rc, err := ristretto.NewCache(&ristretto.Config[string, *Entry]{
		NumCounters:        counters,
		MaxCost:            maxBytes,
		BufferItems:        64,
		IgnoreInternalCost: true,
		OnEvict: func(*ristretto.Item[*Entry]) {
			c.Stats.Evictions.Add(1)
			if onEvict != nil {
				onEvict()
			}
		},
	})
	if err != nil {
		return nil, err
	}
	c.rc = rc
	return c, nil
}

func (c *Cache) slot(tag string) *atomic.Uint64 { return &c.stamp[c.slotIndex(tag)] }

func (c *Cache) slotIndex(tag string) uint16 {
	return uint16(maphash.String(c.seed, tag) & (slots - 1))
}

func (c *Cache) alive(e *Entry) bool {
	if e.start < c.floor.Load() {
		return false
	}
	for _, i := range e.slots[:e.nslots] {
		if c.stamp[i].Load() > e.start {
			return false
		}
	}
	for _, t := range e.Tags[e.nslots:] {
		if c.slot(t).Load() > e.start {
			return false
		}
	}
	return true
}

// Get returns the live entry under key, however old (within the keep time
// it was stored for); callers judge its age against their stale time (a
// longer-kept entry may serve stale_if_error).
func (c *Cache) Get(key string) (*Entry, bool) { return c.getAt(key, time.Now()) }

func (c *Cache) getAt(key string, now time.Time) (*Entry, bool) {
	e, ok := c.rc.Get(key)
	if !ok {
		return nil, false
	}
	if !now.Before(e.until) || !c.alive(e) {
		c.rc.Del(key)
		return nil, false
	}
	return e, true
}

// Fresh returns the live entry under key if it is younger than fresh at
// now, and counts the hit: what Fetch looks for first, for a caller that
// builds its fetch only on a miss.
func (c *Cache) Fresh(key string, fresh time.Duration, now time.Time) (*Entry, bool) {
	if fresh <= 0 {
		return nil, false
	}
	if e, ok := c.getAt(key, now); ok && e.Age(now) < fresh {
		c.Stats.Hits.Add(1)
		return e, true
	}
	return nil, false
}

// FreshBytes is Fresh for a key held in a byte slice, without making a
// string of it: the lookup hashes the key and keeps nothing of it.
func (c *Cache) FreshBytes(key []byte, fresh time.Duration, now time.Time) (*Entry, bool) {
	return c.Fresh(unsafe.String(unsafe.SliceData(key), len(key)), fresh, now)
}

// Invalidate kills every entry carrying any of the tags, including answers
// still in flight, before it returns.
func (c *Cache) Invalidate(tags ...string) {
	if len(tags) == 0 {
		return
	}
	s := c.seq.Add(1)
	for _, t := range tags {
		p := c.slot(t)
		for {
			old := p.Load()
			if old >= s || p.CompareAndSwap(old, s) {
				break
			}
		}
	}
	c.Stats.Invalidations.Add(uint64(len(tags)))
}

// InvalidateAll kills every entry, including answers still in flight: for
// when invalidations may have been missed (a replica cut off from Redis).
func (c *Cache) InvalidateAll() {
	c.floor.Store(c.seq.Add(1))
	c.Stats.Invalidations.Add(1)
}

// Fetch returns a live entry under key no older than fresh, or calls fetch
// once for all concurrent callers of the same key. The call runs detached
// from ctx (bounded by timeout), so one caller giving up fails no one else;
// each caller still stops waiting when its own ctx ends. The result is
// stored for keep (zero keeps nothing) unless its tags were invalidated
// while it was in flight. hit reports an answer from the cache.
func (c *Cache) Fetch(ctx context.Context, key string, fresh, keep, timeout time.Duration,
	fetch func(context.Context) (*Entry, error)) (e *Entry, hit bool, err error) {
	if e, ok := c.Fresh(key, fresh, time.Now()); ok {
		return e, true, nil
	}
	e, err = c.FetchMissed(ctx, key, keep, timeout, fetch)
	return e, false, err
}

// FetchMissed is Fetch for a caller whose own Fresh found nothing: the
// fetch (or the flight already under way) without looking again.
func (c *Cache) FetchMissed(ctx context.Context, key string, keep, timeout time.Duration,
	fetch func(context.Context) (*Entry, error)) (*Entry, error) {
	c.Stats.Misses.Add(1)
	arrival := c.seq.Load()
	flight := key
	for attempt := 0; ; attempt++ {
		ch := c.sf.DoChan(flight, func() (any, error) {
			c.Stats.Fetches.Add(1)
			start := c.seq.Load()
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
			defer cancel()
			e, err := fetch(fctx)
			if err != nil {
				return nil, err
			}
			e.start = start
			e.nslots = uint8(min(len(e.Tags), len(e.slots)))
			for i, t := range e.Tags[:e.nslots] {
				e.slots[i] = c.slotIndex(t)
			}
			if keep > 0 && c.alive(e) {
				// The keep time is checked on each lookup, against the
				// caller's clock reading, rather than by ristretto (which
				// reads the clock on every Get of an entry with a TTL); an
				// entry past it waits for eviction or its next lookup.
				e.until = time.Now().Add(keep)
				c.rc.Set(key, e, charge(key, e))
				c.rc.Wait()
			}
			return e, nil
		})
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case r := <-ch:
			if r.Err != nil {
				return nil, r.Err
			}
			e := r.Val.(*Entry)
			// A flight that started before this caller arrived and was
			// invalidated since may hold the answer from before a sign-out:
			// this caller asks again, on a flight of its own.
			if attempt == 0 && e.start < arrival && !c.alive(e) {
				flight = key + "\x00after"
				continue
			}
			return e, nil
		}
	}
}

// Wait blocks until buffered writes are applied (for tests).
func (c *Cache) Wait() { c.rc.Wait() }

// Close releases the cache; it is safe to call more than once.
func (c *Cache) Close() { c.once.Do(c.rc.Close) }

// Destruct lets a caddy.UsagePool close the cache when its last config goes.
func (c *Cache) Destruct() error {
	c.Close()
	return nil
}
