package cache

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func newCache(t *testing.T) *Cache {
	t.Helper()
	c, err := New(1<<20, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func value(v string, tags ...string) func(context.Context) (*Entry, error) {
	return func(context.Context) (*Entry, error) {
		return &Entry{Value: v, Cost: int64(len(v)), FetchedAt: time.Now(), Tags: tags}, nil
	}
}

func TestHitMissExpiry(t *testing.T) {
	c := newCache(t)
	ctx := context.Background()
	calls := 0
	fetch := func(ctx context.Context) (*Entry, error) {
		calls++
		return value("v", "t")(ctx)
	}
	e, hit, err := c.Fetch(ctx, "k", time.Hour, time.Hour, time.Second, fetch)
	if err != nil || hit || e.Value != "v" || calls != 1 {
		t.Fatalf("first fetch: %v %v %v calls=%d", e, hit, err, calls)
	}
	_, hit, _ = c.Fetch(ctx, "k", time.Hour, time.Hour, time.Second, fetch)
	if !hit || calls != 1 {
		t.Fatalf("second fetch should hit: hit=%v calls=%d", hit, calls)
	}
	// An answer older than the stale time is fetched again.
	_, hit, _ = c.Fetch(ctx, "k", time.Nanosecond, time.Hour, time.Second, fetch)
	if hit || calls != 2 {
		t.Fatalf("stale entry should refetch: hit=%v calls=%d", hit, calls)
	}
	// fresh == 0 never reads the cache, keep == 0 never stores.
	_, hit, _ = c.Fetch(ctx, "k2", 0, 0, time.Second, fetch)
	_, hit2, _ := c.Fetch(ctx, "k2", time.Hour, 0, time.Second, fetch)
	if hit || hit2 || calls != 4 {
		t.Fatalf("stale_time 0 must not cache: calls=%d", calls)
	}
}

func TestTTLExpires(t *testing.T) {
	c := newCache(t)
	_, _, err := c.Fetch(context.Background(), "k", time.Hour, 1500*time.Millisecond, time.Second, value("v"))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := c.Get("k"); !ok {
		t.Fatal("entry missing right after fetch")
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, ok := c.Get("k"); !ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("entry outlived its keep time")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestSingleflight(t *testing.T) {
	c := newCache(t)
	var calls atomic.Int32
	release := make(chan struct{})
	fetch := func(ctx context.Context) (*Entry, error) {
		calls.Add(1)
		<-release
		return value("v")(ctx)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 50)
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e, _, err := c.Fetch(context.Background(), "k", time.Hour, time.Hour, 5*time.Second, fetch)
			if err == nil && e.Value != "v" {
				err = errors.New("wrong value")
			}
			errs <- err
		}()
	}
	time.Sleep(100 * time.Millisecond)
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := calls.Load(); n != 1 {
		t.Fatalf("50 concurrent misses made %d backend calls, want 1", n)
	}
}

func TestCallerCancelDoesNotFailOthers(t *testing.T) {
	c := newCache(t)
	release := make(chan struct{})
	fetch := func(ctx context.Context) (*Entry, error) {
		select {
		case <-release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		return value("v")(ctx)
	}
	ctx1, cancel := context.WithCancel(context.Background())
	first := make(chan error, 1)
	go func() {
		_, _, err := c.Fetch(ctx1, "k", time.Hour, time.Hour, 5*time.Second, fetch)
		first <- err
	}()
	time.Sleep(50 * time.Millisecond)
	second := make(chan error, 1)
	go func() {
		_, _, err := c.Fetch(context.Background(), "k", time.Hour, time.Hour, 5*time.Second, fetch)
		second <- err
	}()
	time.Sleep(50 * time.Millisecond)
	cancel()
	if err := <-first; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled caller: %v", err)
	}
	close(release)
	if err := <-second; err != nil {
		t.Fatalf("the other caller failed with the first one: %v", err)
	}
}

func TestErrorsNotCached(t *testing.T) {
	c := newCache(t)
	boom := errors.New("boom")
	calls := 0
	fail := func(context.Context) (*Entry, error) { calls++; return nil, boom }
	for range 3 {
		if _, _, err := c.Fetch(context.Background(), "k", time.Hour, time.Hour, time.Second, fail); !errors.Is(err, boom) {
			t.Fatalf("want boom, got %v", err)
		}
	}
	if calls != 3 {
		t.Fatalf("errors were cached: %d calls", calls)
	}
	if _, ok := c.Get("k"); ok {
		t.Fatal("an error left an entry")
	}
}

func TestInvalidateByTag(t *testing.T) {
	c := newCache(t)
	ctx := context.Background()
	c.Fetch(ctx, "a", time.Hour, time.Hour, time.Second, value("a", "user:1", "cred:a"))
	c.Fetch(ctx, "b", time.Hour, time.Hour, time.Second, value("b", "user:1", "cred:b"))
	c.Fetch(ctx, "c", time.Hour, time.Hour, time.Second, value("c", "user:2", "cred:c"))
	c.Invalidate("user:1")
	if _, ok := c.Get("a"); ok {
		t.Fatal("a survived its user's invalidation")
	}
	if _, ok := c.Get("b"); ok {
		t.Fatal("b survived its user's invalidation")
	}
	if _, ok := c.Get("c"); !ok {
		t.Fatal("c of another user was invalidated")
	}
	// A new answer after the invalidation is live again.
	c.Fetch(ctx, "a", time.Hour, time.Hour, time.Second, value("a2", "user:1"))
	if e, ok := c.Get("a"); !ok || e.Value != "a2" {
		t.Fatal("entry fetched after the invalidation is not served")
	}
}

// A lookup in flight while its entry is invalidated must not write the old
// answer back, and a caller arriving after the invalidation must not get it.
func TestInFlightInvalidation(t *testing.T) {
	c := newCache(t)
	started, release := make(chan struct{}), make(chan struct{})
	var calls atomic.Int32
	fetch := func(ctx context.Context) (*Entry, error) {
		if calls.Add(1) == 1 {
			close(started)
			<-release
			return value("old", "cred:x")(ctx)
		}
		return value("new", "cred:x")(ctx)
	}
	first := make(chan *Entry, 1)
	go func() {
		e, _, _ := c.Fetch(context.Background(), "k", time.Hour, time.Hour, 5*time.Second, fetch)
		first <- e
	}()
	<-started
	c.Invalidate("cred:x") // e.g. sign-out completes while the lookup runs
	late := make(chan *Entry, 1)
	go func() {
		e, _, _ := c.Fetch(context.Background(), "k", time.Hour, time.Hour, 5*time.Second, fetch)
		late <- e
	}()
	time.Sleep(50 * time.Millisecond)
	close(release)
	if e := <-first; e.Value != "old" {
		t.Fatalf("the caller that started the lookup got %v", e.Value)
	}
	if e := <-late; e.Value != "new" {
		t.Fatalf("a caller arriving after the invalidation got %v, want a fresh answer", e.Value)
	}
	c.Wait()
	if e, ok := c.Get("k"); ok && e.Value == "old" {
		t.Fatal("the in-flight answer was written back after the invalidation")
	}
}

func TestCloseTwice(t *testing.T) {
	c, err := New(1<<20, nil)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	if err := c.Destruct(); err != nil {
		t.Fatal(err)
	}
	if _, err := New(0, nil); err == nil {
		t.Fatal("zero size accepted")
	}
}

func TestInvalidateAll(t *testing.T) {
	c := newCache(t)
	ctx := context.Background()
	c.Fetch(ctx, "a", time.Hour, time.Hour, time.Second, value("a", "x"))
	c.Fetch(ctx, "b", time.Hour, time.Hour, time.Second, value("b"))
	c.InvalidateAll()
	if _, ok := c.Get("a"); ok {
		t.Fatal("a survived InvalidateAll")
	}
	if _, ok := c.Get("b"); ok {
		t.Fatal("b survived InvalidateAll")
	}
	c.Fetch(ctx, "a", time.Hour, time.Hour, time.Second, value("a2"))
	if e, ok := c.Get("a"); !ok || e.Value != "a2" {
		t.Fatal("an entry fetched after InvalidateAll is not served")
	}
}

// Fresh and FreshBytes find what Get finds, and no dead entry.
func TestFreshAndFreshBytes(t *testing.T) {
	c := newCache(t)
	ctx := context.Background()
	c.Fetch(ctx, "k\x00a", time.Hour, time.Hour, time.Second, value("a", "user:1"))
	now := time.Now()
	if e, ok := c.Fresh("k\x00a", time.Hour, now); !ok || e.Value != "a" {
		t.Fatalf("Fresh: %v %v", e, ok)
	}
	if _, ok := c.Fresh("k\x00a", time.Nanosecond, time.Now()); ok {
		t.Fatal("Fresh served an entry older than the stale time")
	}
	if _, ok := c.Fresh("k\x00a", 0, now); ok {
		t.Fatal("Fresh with stale time 0 served")
	}
	key := []byte("k\x00a")
	if e, ok := c.FreshBytes(key, time.Hour, time.Now()); !ok || e.Value != "a" {
		t.Fatalf("FreshBytes: %v %v", e, ok)
	}
	key[2] = 'b' // the key is not kept
	if _, ok := c.FreshBytes(key, time.Hour, time.Now()); ok {
		t.Fatal("FreshBytes found a key never stored")
	}
	if _, ok := c.Get("k\x00a"); !ok {
		t.Fatal("the entry went with the caller's buffer")
	}
	// Past its keep time, at the caller's clock, an entry is gone.
	c.Fetch(ctx, "k\x00b", time.Hour, time.Hour, time.Second, value("b"))
	if _, ok := c.FreshBytes([]byte("k\x00b"), 3*time.Hour, time.Now().Add(2*time.Hour)); ok {
		t.Fatal("FreshBytes served an entry past its keep time")
	}
	if _, ok := c.Get("k\x00b"); ok {
		t.Fatal("an entry past its keep time stayed")
	}
	hits := c.Stats.Hits.Load()
	c.Invalidate("user:1")
	if _, ok := c.FreshBytes([]byte("k\x00a"), time.Hour, time.Now()); ok {
		t.Fatal("FreshBytes served an invalidated entry")
	}
	if _, ok := c.Fresh("k\x00a", time.Hour, now); ok || c.Stats.Hits.Load() != hits {
		t.Fatal("Fresh served (or counted) an invalidated entry")
	}
}
