package cache

// go test -run='^$' -bench=. -benchmem ./cache/
//
// A cache hit is what every signed-in page pays once for the session and once
// per prefetched family: these measure it alone, serial and from GOMAXPROCS
// goroutines at once (Caddy serves each connection on its own goroutine).

import (
	"context"
	"crypto/sha256"
	"strconv"
	"testing"
	"time"
)

// benchEntry has the tags a session entry carries: credential, two tokens
// (session_token and its multi-session cookie), user, session token.
func benchEntry() *Entry {
	return &Entry{
		Value:     struct{}{},
		Cost:      600,
		FetchedAt: time.Now(),
		Tags:      []string{"c\x00" + benchKey(0), "t\x00tokentokentoken1", "t\x00tokentokentoken2", "u\x00user1", "t\x00tokentokentoken1"},
	}
}

// benchKey is a credential key as the handler builds it: a SHA-256 digest.
func benchKey(i int) string {
	d := sha256.Sum256([]byte("better-auth.session_token=" + strconv.Itoa(i)))
	return string(d[:])
}

func newBenchCache(b *testing.B, keys int) (*Cache, []string) {
	c, err := New(64<<20, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(c.Close)
	ks := make([]string, keys)
	for i := range ks {
		ks[i] = benchKey(i)
		if _, _, err := c.Fetch(context.Background(), ks[i], time.Hour, time.Hour, time.Second,
			func(context.Context) (*Entry, error) { return benchEntry(), nil }); err != nil {
			b.Fatal(err)
		}
	}
	c.Wait()
	for _, k := range ks {
		if _, ok := c.Get(k); !ok {
			b.Fatal("entry not stored")
		}
	}
	return c, ks
}

func failFetch(context.Context) (*Entry, error) { panic("a hit must not fetch") }

func BenchmarkGetHit(b *testing.B) {
	c, ks := newBenchCache(b, 1)
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := c.Get(ks[0]); !ok {
			b.Fatal("miss")
		}
	}
}

func BenchmarkFetchHit(b *testing.B) {
	c, ks := newBenchCache(b, 1)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, hit, err := c.Fetch(ctx, ks[0], time.Hour, time.Hour, time.Second, failFetch); err != nil || !hit {
			b.Fatal("miss", err)
		}
	}
}

// BenchmarkFetchHitParallel: one hot key (one user's many requests, or
// the many hits of one page) and 1024 keys (many users).
func BenchmarkFetchHitParallel(b *testing.B) {
	for _, n := range []int{1, 1024} {
		b.Run(strconv.Itoa(n)+"keys", func(b *testing.B) {
			c, ks := newBenchCache(b, n)
			ctx := context.Background()
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				i := 0
				for pb.Next() {
					if _, hit, err := c.Fetch(ctx, ks[i%n], time.Hour, time.Hour, time.Second, failFetch); err != nil || !hit {
						b.Error("miss", err)
						return
					}
					i++
				}
			})
		})
	}
}
