package inject

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"
)

// Run with:
//
//	go test -run='^$' -bench=. -benchmem ./inject/
//
// BenchmarkInject1MiB against BenchmarkCopy1MiB is the injector's cost on a
// page: both move the same 1 MiB page through a 32 KiB buffer (io.CopyBuffer)
// into the same sink; the injector's throughput should be at least 0.8 of the
// plain copy's. Two sinks: "discard" takes the bytes as a socket does, without
// a copy in user space, and shows the injector's own cost; "buffer" copies
// them into a bytes.Buffer, where everything after the inserted block lands
// at a shifted offset, and memmove between differently aligned addresses is
// slower (BenchmarkCopy1MiB/buffer-shifted, a plain copy after the block's
// bytes, shows that part alone).

const chunkSize = 32 << 10

// page1MiB is a typical server-rendered page: a few hundred bytes before the
// <head>, then 1 MiB in all.
var page1MiB = func() []byte {
	var b strings.Builder
	b.WriteString("<!DOCTYPE html>\n<!-- rendered by the app -->\n<html lang=\"en\" data-theme=\"dark\">\n<head>\n")
	b.WriteString("<meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n")
	b.WriteString("<title>Dashboard</title>\n<link rel=\"stylesheet\" href=\"/assets/app.css\">\n</head>\n<body>\n")
	for b.Len() < 1<<20 {
		b.WriteString(`<div class="row"><a href="/items/42">Item forty-two</a> <span class="muted">updated 3 minutes ago</span></div>` + "\n")
	}
	return []byte(b.String()[:1<<20])
}()

// noHead1MiB makes the injector tokenize its whole 64 KiB prefix in vain.
var noHead1MiB = bytes.Repeat([]byte("plain text, no tags at all. "), (1<<20)/28)

type readerOnly struct{ io.Reader } // hides bytes.Reader's WriteTo
type writerOnly struct{ io.Writer } // hides bytes.Buffer's ReadFrom

var benchBlock = []byte(`<script type="application/json" id="__BETTER_AUTH_STATE__">{"mutations":[],"queries":[]}</script>`)

// sink is where the benchmarked bytes go: Reset before each page.
type sink interface {
	io.Writer
	Reset()
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
func (discard) Reset()                      {}

func sinks() []struct {
	name string
	dst  sink
} {
	return []struct {
		name string
		dst  sink
	}{
		{"discard", discard{}},
		{"buffer", bytes.NewBuffer(make([]byte, 0, 2<<20))},
	}
}

func benchmarkInject(b *testing.B, src []byte) {
	for _, s := range sinks() {
		b.Run(s.name, func(b *testing.B) {
			buf := make([]byte, chunkSize)
			b.SetBytes(int64(len(src)))
			b.ReportAllocs()
			for b.Loop() {
				s.dst.Reset()
				in := NewInjector(s.dst, func() []byte { return benchBlock })
				if _, err := io.CopyBuffer(in, readerOnly{bytes.NewReader(src)}, buf); err != nil {
					b.Fatal(err)
				}
				if err := in.Close(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkInject1MiB(b *testing.B) { benchmarkInject(b, page1MiB) }

// BenchmarkInjectNoHead1MiB is the worst case: no insertion point, the whole
// 64 KiB prefix tokenized as one text token.
func BenchmarkInjectNoHead1MiB(b *testing.B) { benchmarkInject(b, noHead1MiB) }

func BenchmarkCopy1MiB(b *testing.B) {
	for _, s := range append(sinks(), struct {
		name string
		dst  sink
	}{"buffer-shifted", bytes.NewBuffer(make([]byte, 0, 2<<20))}) {
		b.Run(s.name, func(b *testing.B) {
			buf := make([]byte, chunkSize)
			b.SetBytes(int64(len(page1MiB)))
			b.ReportAllocs()
			for b.Loop() {
				s.dst.Reset()
				if s.name == "buffer-shifted" {
					s.dst.Write(benchBlock)
				}
				if _, err := io.CopyBuffer(writerOnly{s.dst}, readerOnly{bytes.NewReader(page1MiB)}, buf); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// discardResponse is a ResponseWriter that keeps nothing.
type discardResponse struct{ h http.Header }

func (d *discardResponse) Header() http.Header         { return d.h }
func (d *discardResponse) WriteHeader(int)             {}
func (d *discardResponse) Write(p []byte) (int, error) { return len(p), nil }

// BenchmarkResponseWriter1MiB is the whole wrapper on an identity page.
func BenchmarkResponseWriter1MiB(b *testing.B) {
	buf := make([]byte, chunkSize)
	b.SetBytes(int64(len(page1MiB)))
	b.ReportAllocs()
	for b.Loop() {
		w := &discardResponse{h: http.Header{"Content-Type": {"text/html; charset=utf-8"}}}
		rw := NewResponseWriter(w, func() []byte { return benchBlock })
		io.CopyBuffer(rw, readerOnly{bytes.NewReader(page1MiB)}, buf)
		if err := rw.Close(); err != nil {
			b.Fatal(err)
		}
	}
}

const sessionJSON = `{"session":{"expiresAt":"2026-01-08T10:00:00.000Z","token":"Qm9vdHN0cmFwVG9rZW5FeGFtcGxl","createdAt":"2026-01-01T10:00:00.000Z","updatedAt":"2026-01-01T10:00:00.000Z","ipAddress":"203.0.113.7","userAgent":"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36","userId":"Zk9k3q1Tq0bH6VQp3pYcM","impersonatedBy":null,"activeOrganizationId":"org_5jR2","id":"ses_8s7d6f5g4h3j2k1l"},"user":{"name":"Ada Lovelace <ada@example.com>","email":"ada@example.com","emailVerified":true,"image":"https://example.com/avatars/ada.png?s=128&v=2","createdAt":"2025-06-01T08:30:00.000Z","updatedAt":"2025-12-24T18:00:00.000Z","role":"admin","banned":false,"banReason":null,"banExpires":null,"twoFactorEnabled":true,"username":"ada","displayUsername":"Ada","locale":"en-GB","credits":1234.5,"id":"Zk9k3q1Tq0bH6VQp3pYcM"}}`

func BenchmarkEncodeJSON(b *testing.B) {
	b.SetBytes(int64(len(sessionJSON)))
	b.ReportAllocs()
	raw := []byte(sessionJSON)
	for b.Loop() {
		if _, err := EncodeJSON(raw); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkHashKey(b *testing.B) {
	key := []byte(`["auth","organization","listMembers",{"query":{"organizationId":"org_5jR2","limit":50,"offset":0,"sortBy":"createdAt","sortDirection":"desc"}}]`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := HashKey(key); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppendState(b *testing.B) {
	data, err := EncodeJSON([]byte(sessionJSON))
	if err != nil {
		b.Fatal(err)
	}
	qs := []Query{
		{Hash: `["auth","getSession"]`, Data: data, UpdatedAt: 1764797583865},
		{Hash: `["auth","user","Zk9k3q1Tq0bH6VQp3pYcM","listAccounts",null]`, Data: []byte(`[{"providerId":"credential","accountId":"a1"}]`), UpdatedAt: 1764797583865},
	}
	dst := AppendScript(nil, "__BETTER_AUTH_STATE__", qs, 1764797583999)
	b.SetBytes(int64(len(dst)))
	b.ReportAllocs()
	for b.Loop() {
		dst = AppendScript(dst[:0], "__BETTER_AUTH_STATE__", qs, 1764797583999)
	}
}
