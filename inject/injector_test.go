package inject

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"
)

const testBlock = "<!--STATE-->"

// chunker returns the size of the next write.
type chunker struct {
	name string
	next func() int
}

func chunkers(seed uint64) []chunker {
	r := rand.New(rand.NewPCG(seed, 1))
	big := rand.New(rand.NewPCG(seed, 2))
	return []chunker{
		{"one-shot", func() int { return 1 << 30 }},
		{"byte-at-a-time", func() int { return 1 }},
		{"random-small", func() int { return 1 + r.IntN(16) }},
		{"random", func() int { return 1 + big.IntN(8<<10) }},
	}
}

// runInjector feeds src to an Injector in writes sized by next, with a
// Flush after each one when flush is set, and checks the invariants that hold
// for any input.
func runInjector(t testing.TB, src []byte, next func() int, flush bool) (out []byte, injected bool) {
	t.Helper()
	var dst bytes.Buffer
	calls := 0
	in := NewInjector(&dst, func() []byte { calls++; return []byte(testBlock) })
	for rest := src; len(rest) > 0; {
		n := min(next(), len(rest))
		if m, err := in.Write(rest[:n]); err != nil || m != n {
			t.Fatalf("Write = %d, %v; want %d", m, err, n)
		}
		rest = rest[n:]
		if len(in.held) > MaxPrefix {
			t.Fatalf("holding %d bytes", len(in.held))
		}
		if flush {
			if err := in.Flush(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := in.Close(); err != nil {
		t.Fatal(err)
	}
	if calls > 1 {
		t.Fatalf("block called %d times", calls)
	}
	if in.Injected() != (calls == 1) {
		t.Fatalf("Injected() = %v after %d calls", in.Injected(), calls)
	}
	return dst.Bytes(), in.Injected()
}

type htmlCase struct {
	name string
	src  []byte
	want []byte
}

// fixtures reads testdata/html: each NAME.html with the expected NAME.want,
// which has testBlock at the insertion point or equals the input.
func fixtures(t testing.TB) []htmlCase {
	dir := filepath.Join("..", "testdata", "html")
	inputs, err := filepath.Glob(filepath.Join(dir, "*.html"))
	if err != nil || len(inputs) < 30 {
		t.Fatalf("fixtures in %s: %d, %v", dir, len(inputs), err)
	}
	var cases []htmlCase
	for _, path := range inputs {
		src, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		want, err := os.ReadFile(strings.TrimSuffix(path, ".html") + ".want")
		if err != nil {
			t.Fatal(err)
		}
		cases = append(cases, htmlCase{strings.TrimSuffix(filepath.Base(path), ".html"), src, want})
	}
	return cases
}

// generatedCases are the big ones, made here rather than committed.
func generatedCases() []htmlCase {
	at := func(src string, i int) htmlCase {
		c := htmlCase{src: []byte(src), want: []byte(src)}
		if i >= 0 {
			c.want = []byte(src[:i] + testBlock + src[i:])
		}
		return c
	}
	var cases []htmlCase
	// One line: a 60 KB comment full of '>' before the head, then 240 KB more.
	long := "<!doctype html><!--" + strings.Repeat("a>b ", 15000) + "--><html lang=en><head>"
	c := at(long+strings.Repeat(`<div class="x">x</div>`, 11000), len(long))
	c.name = "huge-single-line"
	cases = append(cases, c)
	// The head just past MaxPrefix: unchanged.
	beyond := "<!doctype html><!--" + strings.Repeat("x", MaxPrefix) + "--><head><title>late</title>"
	c = at(beyond, -1)
	c.name = "head-beyond-64KiB"
	cases = append(cases, c)
	// <head> ending exactly at MaxPrefix, and one byte later.
	pad := MaxPrefix - len("<!---->") - len("<head>")
	edge := "<!--" + strings.Repeat("-", pad) + "--><head>"
	c = at(edge+"<title>edge</title>", MaxPrefix)
	c.name = "head-ends-at-MaxPrefix"
	cases = append(cases, c)
	edge = "<!--" + strings.Repeat("-", pad+1) + "--><head>"
	c = at(edge+"<title>edge</title>", -1)
	c.name = "head-ends-after-MaxPrefix"
	cases = append(cases, c)
	// A start tag just past MaxPrefix, after 64 KiB of text: unchanged.
	text := strings.Repeat("text ", MaxPrefix/5) + "<p>"
	c = at(text, -1)
	c.name = "tag-after-64KiB-of-text"
	cases = append(cases, c)
	text = strings.Repeat("text ", 13000) + "<head>"
	c = at(text, len(text))
	c.name = "head-after-65KB-of-text"
	cases = append(cases, c)
	// Attributes holding '>' across the whole prefix.
	attrs := `<html data-a="` + strings.Repeat(">", 30000) + `" data-b='` + strings.Repeat("<head>", 4000) + `'><body>`
	c = at(attrs, len(attrs)-len("<body>"))
	c.name = "long-attributes"
	cases = append(cases, c)
	return cases
}

func TestInjectorFixtures(t *testing.T) {
	cases := append(fixtures(t), generatedCases()...)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, ch := range chunkers(uint64(len(tc.src))) {
				for _, flush := range []bool{false, true} {
					got, injected := runInjector(t, tc.src, ch.next, flush)
					if !bytes.Equal(got, tc.want) {
						t.Errorf("%s (flush %v):\n got %d bytes, block at %d\nwant %d bytes, block at %d", ch.name, flush, len(got), bytes.Index(got, []byte(testBlock)), len(tc.want), bytes.Index(tc.want, []byte(testBlock)))
					}
					if wantInjected := !bytes.Equal(tc.src, tc.want); injected != wantInjected {
						t.Errorf("%s: Injected() = %v", ch.name, injected)
					}
				}
			}
			if got, want := insertionOffset(tc.src), bytes.Index(tc.want, []byte(testBlock)); got != want && !bytes.Equal(tc.src, tc.want) {
				t.Errorf("reference offset %d, fixture says %d", got, want)
			}
		})
	}
}

// insertionOffset finds the insertion point the plain way, tokenizing the
// first MaxPrefix bytes at once: the reference for the streaming Injector.
func insertionOffset(src []byte) int {
	z := html.NewTokenizer(bytes.NewReader(src[:min(len(src), MaxPrefix)]))
	off := 0
	for {
		tt := z.Next()
		if tt == html.ErrorToken {
			return -1
		}
		size := len(z.Raw())
		if tt == html.StartTagToken || tt == html.SelfClosingTagToken {
			switch name, _ := z.TagName(); string(name) {
			case "html":
			case "head":
				return off + size
			default:
				return off
			}
		}
		off += size
	}
}

// recorder records each write it gets, and where its bytes were.
type recorder struct {
	writes [][]byte
	first  []*byte
	err    error
}

func (r *recorder) Write(p []byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	r.writes = append(r.writes, bytes.Clone(p))
	r.first = append(r.first, &p[0])
	return len(p), nil
}

func (r *recorder) String() string { return string(bytes.Join(r.writes, nil)) }

func TestInjectorStreams(t *testing.T) {
	var dst recorder
	in := NewInjector(&dst, func() []byte { return []byte(testBlock) })
	step := func(write string, want string) {
		t.Helper()
		if write != "" {
			if _, err := in.Write([]byte(write)); err != nil {
				t.Fatal(err)
			}
		}
		if err := in.Flush(); err != nil {
			t.Fatal(err)
		}
		if got := dst.String(); got != want {
			t.Fatalf("after %q and Flush: %q, want %q", write, got, want)
		}
	}
	step("<!doctype html>\n", "<!doctype html>\n")
	step("<!-- a comment", "<!doctype html>\n<!-- a comment")      // it ends at a '>' or never
	step(" <head> <div", "<!doctype html>\n<!-- a comment <head>") // no further than the first '>'
	step("> <i> -", "<!doctype html>\n<!-- a comment <head>")
	step("->\nsome text", "<!doctype html>\n<!-- a comment <head> <div> <i> -->\nsome text")
	step(" more <", "<!doctype html>\n<!-- a comment <head> <div> <i> -->\nsome text more ")
	step("html lang=en>", "<!doctype html>\n<!-- a comment <head> <div> <i> -->\nsome text more <html lang=en>")
	step("\n<he", "<!doctype html>\n<!-- a comment <head> <div> <i> -->\nsome text more <html lang=en>\n")
	step("ad>", "<!doctype html>\n<!-- a comment <head> <div> <i> -->\nsome text more <html lang=en>\n<head>"+testBlock)
	// From here on each write is passed on as it is, not copied.
	p := []byte("<title>t</title>")
	n := len(dst.writes)
	if _, err := in.Write(p); err != nil {
		t.Fatal(err)
	}
	if len(dst.writes) != n+1 || dst.first[n] != &p[0] {
		t.Error("a write after the insertion point was not passed straight on")
	}
	if err := in.Close(); err != nil || !in.Injected() {
		t.Fatalf("Close: %v, injected %v", err, in.Injected())
	}
}

func TestInjectorNoBlockWithoutInsertionPoint(t *testing.T) {
	for _, src := range []string{"", "text", "<!-- <head>", "<head", "</head>"} {
		var dst bytes.Buffer
		in := NewInjector(&dst, func() []byte { t.Errorf("%q: block called", src); return nil })
		in.Write([]byte(src))
		if err := in.Close(); err != nil || dst.String() != src || in.Injected() {
			t.Errorf("%q: %q, %v, injected %v", src, dst.String(), err, in.Injected())
		}
	}
}

func TestInjectorEmptyBlock(t *testing.T) {
	for _, block := range []func() []byte{nil, func() []byte { return nil }} {
		var dst bytes.Buffer
		in := NewInjector(&dst, block)
		in.Write([]byte("<head><title>x</title>"))
		if err := in.Close(); err != nil || dst.String() != "<head><title>x</title>" || in.Injected() {
			t.Errorf("%q, %v, injected %v", dst.String(), err, in.Injected())
		}
	}
}

func TestInjectorWriteError(t *testing.T) {
	boom := errors.New("boom")
	dst := &recorder{err: boom}
	in := NewInjector(dst, func() []byte { return []byte(testBlock) })
	if _, err := in.Write([]byte("<!doctype html>")); err != nil {
		t.Fatalf("held write: %v", err)
	}
	if err := in.Flush(); !errors.Is(err, boom) {
		t.Fatalf("Flush: %v", err)
	}
	if _, err := in.Write([]byte("<head>")); !errors.Is(err, boom) {
		t.Fatalf("Write after the error: %v", err)
	}
	if err := in.Close(); !errors.Is(err, boom) {
		t.Fatalf("Close: %v", err)
	}
	if _, err := in.Write([]byte("x")); err == nil {
		t.Fatal("Write after Close")
	}
}

// TestInjectorByteAtATimeIsLinear guards against re-tokenizing from the
// start of a token on each write: a 64 KB comment full of '>' (each one a
// possible end) written a byte at a time. Quadratic work would be ~2e9 byte
// steps: many seconds, against tens of milliseconds.
func TestInjectorByteAtATimeIsLinear(t *testing.T) {
	src := []byte("<!--" + strings.Repeat(">", MaxPrefix-100) + "--><head>")
	start := time.Now()
	in := NewInjector(io.Discard, func() []byte { return []byte(testBlock) })
	for i := range src {
		in.Write(src[i : i+1])
	}
	in.Close()
	if !in.Injected() {
		t.Fatal("not injected")
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("%v for %d one-byte writes", d, len(src))
	} else {
		t.Logf("%v for %d one-byte writes", d, len(src))
	}
}

// FuzzInjector: for any HTML and any split into writes (with Flushes), the
// streamed output is the one-shot output, holds at most one block (exactly one
// when the one-shot found a place), and without the block is the input.
func FuzzInjector(f *testing.F) {
	for _, tc := range fixtures(f) {
		f.Add(tc.src, []byte{1, 2, 3, 0x85, 7, 0x81})
	}
	f.Add([]byte("<html><HEAD>"), []byte{})
	f.Add([]byte("<!-- <head> --><head>"), []byte{0x80})
	f.Fuzz(func(t *testing.T, src, splits []byte) {
		block := []byte("\x00BLOCK\x00")
		if bytes.Contains(src, block) {
			return
		}
		run := func(next func() (int, bool)) ([]byte, bool) {
			var dst bytes.Buffer
			in := NewInjector(&dst, func() []byte { return block })
			for rest := src; len(rest) > 0; {
				n, flush := next()
				n = min(n, len(rest))
				if _, err := in.Write(rest[:n]); err != nil {
					t.Fatal(err)
				}
				rest = rest[n:]
				if flush {
					if err := in.Flush(); err != nil {
						t.Fatal(err)
					}
				}
			}
			if err := in.Close(); err != nil {
				t.Fatal(err)
			}
			return dst.Bytes(), in.Injected()
		}
		want, wantInjected := run(func() (int, bool) { return len(src), false })
		i := 0
		got, gotInjected := run(func() (int, bool) {
			if len(splits) == 0 {
				return 1, true
			}
			b := splits[i%len(splits)]
			i++
			return int(b&0x7f) + 1, b&0x80 != 0
		})
		if !bytes.Equal(got, want) || gotInjected != wantInjected {
			t.Fatalf("streamed %q (%v), one-shot %q (%v)", got, gotInjected, want, wantInjected)
		}
		count := bytes.Count(got, block)
		if wantInjected && count != 1 || !wantInjected && count != 0 {
			t.Fatalf("%d blocks, injected %v", count, wantInjected)
		}
		if at := bytes.Index(got, block); at != insertionOffset(src) && wantInjected {
			t.Fatalf("block at %d, reference %d", at, insertionOffset(src))
		}
		if !bytes.Equal(bytes.Replace(got, block, nil, 1), src) {
			t.Fatal("removing the block does not give back the input")
		}
	})
}

func TestKnownBefore(t *testing.T) {
	for _, tc := range []struct {
		b    string
		want int
	}{
		{"", 0},
		{"text", 4},
		{"text <", 5},
		{"text <p", 5},
		{"a < b <3 <", 9},
		{"a<!-- x", 7},
		{"a<!-- x > y --> <p>", 9}, // the comment may end at any '>' from the first on
		{"<!><A>", 3},              // "<!>" ends at its '>' though the tokenizer reads on
		{"</a b='>'>", 8},
		{"</>", 3},
		{"<?xml?><head>", 7},
		{"<!", 2},
		{"<head>", 0},
	} {
		if got := knownBefore([]byte(tc.b)); got != tc.want {
			t.Errorf("knownBefore(%q) = %d, want %d", tc.b, got, tc.want)
		}
	}
}
