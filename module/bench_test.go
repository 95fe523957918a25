package module

// The handler's hot path, measured in-process (no sockets):
//
//	go test -run='^$' -bench=. -benchmem ./module/
//
// BenchmarkServeHTTP runs one page request through ServeHTTP the way Caddy
// does (a replacer and vars in the context, the upstream writing a ~20 KiB
// page in one write), with the session and the route's queries already in
// the cache. "plain" is the same harness without the handler: the difference
// is what better_auth costs a page. BenchmarkServeHTTP10MiB and
// BenchmarkInject10MiB/BenchmarkCopy10MiB do the same for a 10 MiB page.

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/seed5911dcdf/caddy-better-auth/betterauth"
	"github.com/seed5911dcdf/caddy-better-auth/inject"
	"github.com/seed5911dcdf/caddy-better-auth/internal/benchpage"
)

// benchPage is a typical server-rendered page of 20 KiB.
var benchPage = benchpage.Page(20 << 10)

// benchFamilies are the five settings families of the load benchmark.
var benchFamilies = benchpage.Families

// newBenchBackend answers get-session and the list endpoints with answers
// of the real ones' shape and size, for any session_token.
func newBenchBackend(tb testing.TB) *httptest.Server {
	srv := httptest.NewServer(benchpage.Backend())
	tb.Cleanup(srv.Close)
	return srv
}

// newBenchHandler is a provisioned handler guarding every path, with the
// families prefetched on every path and a stale time that outlasts the run.
func newBenchHandler(tb testing.TB, backend string, families []string) *Handler {
	tb.Helper()
	stale := caddy.Duration(time.Hour)
	h := &Handler{
		Backend:   backend,
		Guard:     []string{"/*"},
		StaleTime: &stale,
		CacheSize: 8<<20 + int64(len(tb.Name())), // a pool key of its own
	}
	if len(families) > 0 {
		p := Prefetch{Paths: []string{"/*"}}
		for _, f := range families {
			p.Queries = append(p.Queries, QuerySpec{Family: f})
		}
		h.Prefetch = []Prefetch{p}
	}
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	tb.Cleanup(cancel)
	if err := h.Provision(ctx); err != nil {
		tb.Fatal(err)
	}
	// Caddy's default log level is INFO: the handler's debug lines are
	// checked and skipped, never written (a test context logs at DEBUG).
	h.setLogger(zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), zapcore.AddSync(io.Discard), zapcore.InfoLevel)))
	tb.Cleanup(func() { h.Cleanup() })
	return h
}

// benchWriter is a ResponseWriter that keeps nothing but its header map.
type benchWriter struct {
	h      http.Header
	status int
	n      int64
}

func (w *benchWriter) Header() http.Header         { return w.h }
func (w *benchWriter) WriteHeader(code int)        { w.status = code }
func (w *benchWriter) Write(p []byte) (int, error) { w.n += int64(len(p)); return len(p), nil }
func (w *benchWriter) reset()                      { clear(w.h); w.status, w.n = 0, 0 }

// pageUpstream writes page in one write, as reverse_proxy does a small
// body it has read whole; a big one goes in 32 KiB writes.
func pageUpstream(page []byte) caddyhttp.Handler {
	length := strconv.Itoa(len(page))
	return caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		h := w.Header()
		h["Content-Type"] = []string{"text/html; charset=utf-8"}
		h["Content-Length"] = []string{length}
		h["Etag"] = []string{`"v1"`}
		for p := page; len(p) > 0; {
			n := min(len(p), 32<<10)
			if _, err := w.Write(p[:n]); err != nil {
				return err
			}
			p = p[n:]
		}
		return nil
	})
}

// benchRequest is what Caddy hands a handler: a fresh request with the
// browser's headers, vars holding the client IP, and a replacer.
func benchRequest(base *http.Request) *http.Request {
	r := base.Clone(context.Background())
	ctx := context.WithValue(r.Context(), caddyhttp.VarsCtxKey, map[string]any{caddyhttp.ClientIPVarKey: "203.0.113.7"})
	r = r.WithContext(context.WithValue(ctx, caddy.ReplacerCtxKey, caddy.NewReplacer()))
	return r
}

func browserRequest() *http.Request {
	r := httptest.NewRequest("GET", "http://site.test/settings/account", nil)
	r.Header.Set("Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8")
	r.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36")
	r.Header.Set("Cookie", "theme=dark; better-auth.session_token=tok1.c2lnbmF0dXJlc2lnbmF0dXJl; better-auth.session_token_multi-tok1=tok1.c2lnbmF0dXJlc2lnbmF0dXJl")
	return r
}

// runPage benchmarks pages through h (nil: the upstream alone), checking the
// first answer carries want queries (-1: no state element).
func runPage(b *testing.B, h *Handler, page []byte, want int) {
	up := pageUpstream(page)
	base := browserRequest()
	w := &benchWriter{h: http.Header{}}
	serveOne := func() {
		w.reset()
		r := benchRequest(base)
		var err error
		if h == nil {
			err = up.ServeHTTP(w, r)
		} else {
			err = h.ServeHTTP(w, r, up)
		}
		if err != nil || (w.status != 0 && w.status != 200) {
			b.Fatalf("status %d, err %v", w.status, err)
		}
	}
	// Warm the cache, and check what the page gets.
	rec := httptest.NewRecorder()
	r := benchRequest(base)
	if h == nil {
		up.ServeHTTP(rec, r)
	} else if err := h.ServeHTTP(rec, r, up); err != nil {
		b.Fatal(err)
	}
	if h != nil {
		h.cache.Wait()
	}
	body := rec.Body.Bytes()
	got := -1
	if i := bytes.Index(body, []byte(`id="`+DefaultStateID+`"`)); i >= 0 {
		got = bytes.Count(body[i:min(len(body), i+64<<10)], []byte(`"queryKey":`))
	}
	if rec.Code != 200 || got != want {
		b.Fatalf("first page: status %d, %d queries injected, want %d", rec.Code, got, want)
	}
	serveOne() // the first hit
	b.SetBytes(int64(len(page)))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		serveOne()
	}
}

// BenchmarkServeHTTP is a cache-hit page request: guard, session lookup,
// injection into a 20 KiB page; with 0 and 5 families.
func BenchmarkServeHTTP(b *testing.B) {
	backend := newBenchBackend(b)
	b.Run("plain", func(b *testing.B) { runPage(b, nil, benchPage, -1) })
	b.Run("session", func(b *testing.B) { runPage(b, newBenchHandler(b, backend.URL, nil), benchPage, 1) })
	b.Run("five_families", func(b *testing.B) {
		runPage(b, newBenchHandler(b, backend.URL, benchFamilies), benchPage, 6)
	})
}

// BenchmarkServeHTTPParallel is the same from GOMAXPROCS goroutines at once,
// as Caddy serves connections: contention in the cache shows here.
func BenchmarkServeHTTPParallel(b *testing.B) {
	backend := newBenchBackend(b)
	for _, c := range []struct {
		name     string
		families []string
		want     int
	}{{"session", nil, 1}, {"five_families", benchFamilies, 6}} {
		b.Run(c.name, func(b *testing.B) {
			h := newBenchHandler(b, backend.URL, c.families)
			up := pageUpstream(benchPage)
			base := browserRequest()
			rec := httptest.NewRecorder()
			if err := h.ServeHTTP(rec, benchRequest(base), up); err != nil || rec.Code != 200 {
				b.Fatal(rec.Code, err)
			}
			h.cache.Wait()
			b.SetBytes(int64(len(benchPage)))
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				w := &benchWriter{h: http.Header{}}
				for pb.Next() {
					w.reset()
					if err := h.ServeHTTP(w, benchRequest(base), up); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// page10MiB is page-like HTML of 10 MiB.
var page10MiB = func() []byte {
	var b bytes.Buffer
	b.Write(benchPage[:bytes.Index(benchPage, []byte("<div class"))])
	row := []byte(`<div class="row"><a href="/items/42">Item forty-two</a> <span class="muted">updated 3 minutes ago</span></div>` + "\n")
	for b.Len() < 10<<20 {
		b.Write(row)
	}
	return b.Bytes()[:10<<20]
}()

// BenchmarkServeHTTP10MiB is the whole handler on a 10 MiB page, written
// in 32 KiB writes: its MB/s against "plain" is the injection's overhead.
func BenchmarkServeHTTP10MiB(b *testing.B) {
	backend := newBenchBackend(b)
	b.Run("plain", func(b *testing.B) { runPage(b, nil, page10MiB, -1) })
	b.Run("session", func(b *testing.B) { runPage(b, newBenchHandler(b, backend.URL, nil), page10MiB, 1) })
}

type benchDiscard struct{}

func (benchDiscard) Write(p []byte) (int, error) { return len(p), nil }

type readerOnly struct{ io.Reader } // hides bytes.Reader's WriteTo
type writerOnly struct{ io.Writer } // hides ReadFrom

var benchBlock = []byte(`<script type="application/json" id="__BETTER_AUTH_STATE__">{"mutations":[],"queries":[]}</script>`)

// BenchmarkInject10MiB against BenchmarkCopy10MiB: the injector's own cost
// on a 10 MiB page, both through io.CopyBuffer with 32 KiB into a sink that
// copies nothing (inject's own benchmarks do 1 MiB).
func BenchmarkInject10MiB(b *testing.B) {
	buf := make([]byte, 32<<10)
	b.SetBytes(int64(len(page10MiB)))
	b.ReportAllocs()
	for b.Loop() {
		in := inject.NewInjector(benchDiscard{}, func() []byte { return benchBlock })
		if _, err := io.CopyBuffer(in, readerOnly{bytes.NewReader(page10MiB)}, buf); err != nil {
			b.Fatal(err)
		}
		if err := in.Close(); err != nil || !in.Injected() {
			b.Fatal(err, in.Injected())
		}
	}
}

func BenchmarkCopy10MiB(b *testing.B) {
	buf := make([]byte, 32<<10)
	b.SetBytes(int64(len(page10MiB)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := io.CopyBuffer(writerOnly{benchDiscard{}}, readerOnly{bytes.NewReader(page10MiB)}, buf); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSessionEntryMemory fills a cache of cache_size 2 MiB with far
// more distinct signed-in visitors than fit (one real get-session call
// each, through resolveSession) and reports the Go heap the entries hold:
// per entry, and against cache_size ("heap/cache_size", which should be at
// most 1: cache_size is meant to bound it). The loop then times a hit.
func BenchmarkSessionEntryMemory(b *testing.B) {
	const n, size = 8000, 2 << 20
	backend := newBenchBackend(b)
	h := newBenchHandler(b, backend.URL, nil)
	h.Cleanup()
	h.CacheSize = size + int64(len(b.Name()))
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	b.Cleanup(cancel)
	if err := h.Provision(ctx); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { h.Cleanup() })
	cookies := make([]string, n)
	for i := range cookies {
		cookies[i] = fmt.Sprintf("better-auth.session_token=t%07d.c2lnbmF0dXJlc2lnbmF0dXJl", i)
	}
	request := func(cookie string) *http.Request {
		r := browserRequest()
		r.Header.Set("Cookie", cookie)
		return benchRequest(r)
	}
	resolve := func(cookie string) {
		r := request(cookie)
		res, err := h.resolveSession(r, betterauth.ReadCredential(r.Header, h.CookiePrefix, false), time.Now())
		if err != nil || res.session() == nil {
			b.Fatal("no session", err)
		}
	}
	resolve(cookies[0]) // the client, its pool, the first entry
	h.cache.Wait()
	var m0, m1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m0)
	for _, c := range cookies[1:] {
		resolve(c)
	}
	h.cache.Wait()
	runtime.GC()
	runtime.ReadMemStats(&m1)
	var hits []string
	for _, c := range cookies {
		if _, ok := h.cache.Get(betterauth.ReadCredential(request(c).Header, h.CookiePrefix, false).Key()); ok {
			hits = append(hits, c)
		}
	}
	if kept := len(hits); kept == 0 || kept == n {
		b.Fatalf("%d of %d entries kept: the cache should be full", kept, n)
	}
	heap := float64(int64(m1.HeapAlloc) - int64(m0.HeapAlloc))
	i := 0
	for b.Loop() { // b.Loop starts the timer afresh
		resolve(hits[i%len(hits)])
		i++
	}
	b.ReportMetric(float64(len(hits)), "entries")
	b.ReportMetric(heap/float64(len(hits)), "heap-B/entry")
	b.ReportMetric(heap/size, "heap/cache_size")
}
