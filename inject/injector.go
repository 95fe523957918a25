package inject

import (
	"bytes"
	"io"
	"sync"

	"golang.org/x/net/html"
)

// MaxPrefix bounds the search: the insertion point must be found within the
// first MaxPrefix bytes of the body.
const MaxPrefix = 64 << 10

// feedBatch is how many held bytes wait before the tokenizer is woken up
// (Flush, Close and MaxPrefix wake it at once). Fed a few bytes at a time,
// the tokenizer would copy its token-so-far on every refill: quadratic in the
// length of a long comment or attribute written a byte at a time.
const feedBatch = 2 << 10

// syncLimit bounds the first attempt, made without the coroutine.
const syncLimit = 4 << 10

// An Injector copies an HTML body to dst and writes a block at the insertion
// point: right after the first <head ...> start tag or, when another start tag
// than <html> comes first, just before that tag. If neither is complete within
// the first MaxPrefix bytes, or before the body ends, the body passes
// unchanged.
//
// Up to the insertion point the body is held (at most MaxPrefix bytes) and
// read by an html.Tokenizer. Most pages decide within their first bytes,
// which are tried at once; otherwise the tokenizer runs beside the writes as
// a coroutine that stops when its input is used up and goes on with the next,
// in batches of feedBatch bytes, so the body is tokenized once (its first
// syncLimit bytes at most twice) and the decision does not depend on how the
// body is split into writes. Only the lengths of the tokens are used: the
// bytes written out are the ones given. From the insertion point on, every
// Write goes straight to dst.
//
// Close must be called, also on error paths: until then the tokenizer waits
// for more input.
type Injector struct {
	dst   io.Writer
	block Blocker

	// Before the decision: the body bytes [base, n) are held, those before
	// out are written out, those before fed were given to the tokenizer, and
	// base = min(out, safe) <= fed, so held keeps what is still to be written,
	// fed, or looked at by Flush (the token in progress).
	scan *feeder // the tokenizer, when the first bytes did not decide
	held []byte
	base int
	out  int
	fed  int
	n    int // at most MaxPrefix
	safe int // end of the last complete token: what lies before it precedes the insertion point

	decided  bool
	found    bool
	at       int // insertion offset in the body, when found
	injected bool
	closed   bool
	err      error
	separate bool // dst joins the pieces itself: finish need not
}

// NewInjector returns an Injector that writes to dst and, at the insertion
// point, writes block(): block is called at most once, and may block while the
// data it returns is fetched.
func NewInjector(dst io.Writer, block func() []byte) *Injector {
	in := &Injector{dst: dst}
	if block != nil {
		in.block = BlockFunc(block)
	}
	return in
}

// Injected reports whether a non-empty block was written at the insertion point.
func (in *Injector) Injected() bool { return in.injected }

// Write writes p, holding it while the insertion point is still unknown.
func (in *Injector) Write(p []byte) (int, error) {
	switch {
	case in.err != nil:
		return 0, in.err
	case in.closed:
		return 0, io.ErrClosedPipe
	case in.decided:
		n, err := in.dst.Write(p)
		in.err = err
		return n, err
	case len(p) == 0:
		return 0, nil
	}
	chunk := p[:min(len(p), MaxPrefix-in.n)]
	full := in.n+len(chunk) == MaxPrefix
	if in.n-in.fed+len(chunk) < feedBatch && !full {
		in.held = append(in.held, chunk...)
		in.n += len(chunk)
		return len(p), nil
	}
	taken := len(chunk) // of p, once the tokenizer has seen it
	switch {
	case in.feed(in.held[in.fed-in.base:]):
		chunk, taken = nil, 0 // decided on held bytes: all of p comes after them
	case in.feed(chunk):
	default:
		in.held = append(in.held, chunk...)
		in.n += len(chunk)
		if !full {
			return len(p), nil
		}
		in.scan.close() // MaxPrefix bytes and no insertion point
		chunk = nil     // now in held
	}
	if err := in.finish(chunk); err != nil {
		return 0, err
	}
	if rest := p[taken:]; len(rest) > 0 {
		n, err := in.dst.Write(rest)
		in.err = err
		return taken + n, err
	}
	return len(p), nil
}

// feed gives b, the body bytes following those fed so far, to the tokenizer,
// and reports whether it has decided.
func (in *Injector) feed(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	if in.fed == 0 {
		// Most pages decide within their first few hundred bytes: try that
		// on the caller's stack, and start the coroutine only if they do not
		// (it then reads those bytes again, once).
		first := b[:min(len(b), syncLimit)]
		at, sure := quickInsertionPoint(first)
		if !sure {
			at = insertionPoint(html.NewTokenizer(bytes.NewReader(first)), nil)
		}
		if at >= 0 {
			in.fed, in.found, in.at = len(b), true, at
			return true
		}
		in.scan = newFeeder(in.tokenize)
	}
	in.fed += len(b)
	_, done := in.scan.push(b)
	return done
}

// Flush writes out the held bytes known to lie before the insertion point
// (see knownBefore) or, if the bytes held decide it, everything with the
// block: so a page that flushes right after its <head> streams on. It does
// not decide anything early.
func (in *Injector) Flush() error {
	if in.err != nil || in.decided || in.closed {
		return in.err
	}
	// Only a '>' ends the tag that decides, so without one the tokenizer is
	// left to wait for a bigger batch.
	if pending := in.held[in.fed-in.base:]; bytes.IndexByte(pending, '>') >= 0 && in.feed(pending) {
		return in.finish(nil)
	}
	end := in.safe + knownBefore(in.held[in.safe-in.base:])
	if end <= in.out {
		return nil
	}
	if _, err := in.dst.Write(in.held[in.out-in.base : end-in.base]); err != nil {
		in.err = err
		return err
	}
	in.out = end
	if base := min(in.out, in.safe); base > in.base {
		in.held = append(in.held[:0], in.held[base-in.base:]...)
		in.base = base
	}
	return nil
}

// knownBefore returns how much of b, the body from the end of the last
// complete token on (where the tokenizer is in the data state: the tags that
// switch it to raw text end the search), surely lies before the insertion
// point, judged from the bytes alone: b may run past what the tokenizer has
// finished with, which can be a token it has read to the end, as it looks
// ahead. Text runs up to a '<' and a letter, a start tag, which stops the
// count. A "<!", "</" or "<?" begins a comment, doctype, end tag or bogus
// comment: each ends with a '>', the first one or a later one, so the count
// goes on to the first '>' (to the end of b if there is none) and stops.
func knownBefore(b []byte) int {
	for i := 0; ; i++ {
		j := bytes.IndexByte(b[i:], '<')
		if j < 0 {
			return len(b)
		}
		i += j
		if i+1 == len(b) {
			return i
		}
		switch c := b[i+1]; {
		case 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z':
			return i
		case c == '!' || c == '/' || c == '?':
			if k := bytes.IndexByte(b[i+2:], '>'); k >= 0 {
				return i + 2 + k + 1
			}
			return len(b)
		}
	}
}

// Close ends the body: it writes out whatever is still held, unchanged if no
// insertion happened. It does not close dst.
func (in *Injector) Close() error {
	if in.closed {
		return in.err
	}
	if in.err != nil {
		in.abort()
		return in.err
	}
	in.closed = true
	if in.decided {
		return nil
	}
	if !in.feed(in.held[in.fed-in.base:]) && in.scan != nil {
		in.scan.close()
	}
	return in.finish(nil)
}

// abort drops what is held and stops the tokenizer, writing nothing.
func (in *Injector) abort() {
	in.closed = true
	if in.scan != nil {
		in.scan.abandon()
		in.scan = nil
	}
	in.held = nil
}

// tokenize runs in the feeder's coroutine. It returns when it has decided,
// or when its input ends (no insertion point).
func (in *Injector) tokenize(r io.Reader) {
	in.at = insertionPoint(html.NewTokenizer(r), &in.safe)
	in.found = in.at >= 0
}

// insertionPoint reads tokens up to the insertion point and returns its
// offset, or -1 if the input ends first. A tag is only returned once its '>'
// was read, so an offset found in part of the body holds for all of it. With
// safe, it keeps there the end of the last complete token.
func insertionPoint(z *html.Tokenizer, safe *int) int {
	off := 0
	for {
		tt := z.Next()
		if tt == html.ErrorToken {
			return -1
		}
		size := len(z.Raw()) // before TagName, which lower-cases the buffer in place
		if tt == html.StartTagToken || tt == html.SelfClosingTagToken {
			name, _ := z.TagName()
			switch string(name) {
			case "html":
			case "head":
				return off + size
			default:
				return off
			}
		}
		off += size
		if safe != nil && z.Err() == nil {
			*safe = off
		}
	}
}

// finish writes out the held bytes and chunk (the body bytes [out, n+len(chunk))),
// with the block at the insertion point if one was found, and goes over to
// passing writes straight through.
func (in *Injector) finish(chunk []byte) error {
	in.decided = true
	in.scan = nil
	var block []byte
	if in.found && in.block != nil {
		block = in.block.Block()
	}
	in.injected = len(block) > 0
	held := in.held[in.out-in.base:] // the body [out, n)
	in.held = nil
	end := in.n + len(chunk)
	// held is the body [out, n), chunk is [n, end), and at lies in one of them.
	var parts [4][]byte
	switch {
	case !in.found:
		parts = [4][]byte{held, chunk}
	case in.at <= in.n:
		k := in.at - in.out
		parts = [4][]byte{held[:k], block, held[k:], chunk}
	default:
		k := in.at - in.n
		parts = [4][]byte{held, chunk[:k], block, chunk[k:]}
	}
	in.n = end
	if in.injected && !in.separate {
		// One write, not four: the writers below (net/http's buffers) may
		// turn each into a write to the socket of its own.
		total := 0
		for _, b := range parts {
			total += len(b)
		}
		if total <= joinLimit {
			buf := joinPool.Get().(*[]byte)
			joined := (*buf)[:0]
			for _, b := range parts {
				joined = append(joined, b...)
			}
			_, err := in.dst.Write(joined)
			*buf = joined[:0]
			joinPool.Put(buf)
			in.err = err
			return err
		}
	}
	for _, b := range parts {
		if len(b) == 0 {
			continue
		}
		if _, err := in.dst.Write(b); err != nil {
			in.err = err
			return err
		}
	}
	return nil
}

// joinLimit bounds what finish joins into one write (the held prefix, a
// 32 KiB chunk of a proxied body and the block fit).
const joinLimit = 128 << 10

var joinPool = sync.Pool{New: func() any { b := make([]byte, 0, 64<<10); return &b }}

// quickInsertionPoint finds the insertion point of the usual page prologue
// without a tokenizer (which costs a 4 KiB buffer and a map per page):
// whitespace, comments, a doctype and an <html> start tag, then <head> or
// another start tag, tags of the plain form scanTag reads. It reports sure
// only when the tokenizer would find the same offset in b (checked by
// FuzzQuickInsertionPoint); anything else it leaves to the tokenizer.
func quickInsertionPoint(b []byte) (at int, sure bool) {
	i := 0
	for {
		for i < len(b) && isSpace(b[i]) {
			i++
		}
		if i+1 >= len(b) || b[i] != '<' {
			return 0, false
		}
		rest := b[i+1:]
		switch c := rest[0]; {
		case c == '!' && len(rest) >= 3 && rest[1] == '-' && rest[2] == '-':
			// <!--: ends at the first "-->", unless it starts with > or ->
			// (<!--> and <!--->) or holds a "--!" (--!> ends it too).
			body := rest[3:]
			end := bytes.Index(body, []byte("-->"))
			if end < 0 || body[0] == '>' || (body[0] == '-' && len(body) > 1 && body[1] == '>') ||
				bytes.Contains(body[:end+2], []byte("--!")) {
				return 0, false
			}
			i += 1 + 3 + end + 3
		case c == '!':
			// A doctype or a bogus comment: up to the first '>'.
			end := bytes.IndexByte(rest, '>')
			if end < 0 {
				return 0, false
			}
			i += 1 + end + 1
		case 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z':
			n, end := scanTag(rest)
			if end < 0 {
				return 0, false
			}
			switch name := rest[:n]; {
			case len(name) == 4 && name[0]|0x20 == 'h' && name[1]|0x20 == 't' && name[2]|0x20 == 'm' && name[3]|0x20 == 'l':
				i += 1 + end + 1
			case len(name) == 4 && name[0]|0x20 == 'h' && name[1]|0x20 == 'e' && name[2]|0x20 == 'a' && name[3]|0x20 == 'd':
				return i + 1 + end + 1, true
			default:
				return i, true
			}
		default:
			return 0, false
		}
	}
}

// scanTag reads a start tag from its name on (b follows the '<'): it
// returns the length of the name and the offset of the '>' that ends the
// tag, or -1 when the tag is not complete in b or not of the plain form
// quickInsertionPoint is sure about: a name of letters and digits, then
// attributes name[=value], names of [A-Za-z0-9_:.-], values quoted or of
// those characters and '/', then '>' or "/>".
func scanTag(b []byte) (name, end int) {
	i := 0
	for i < len(b) && isTagChar(b[i]) {
		i++
	}
	name = i
	for {
		j := i
		for i < len(b) && isSpace(b[i]) {
			i++
		}
		if i == len(b) {
			return name, -1
		}
		switch {
		case b[i] == '>':
			return name, i
		case b[i] == '/' && i+1 < len(b) && b[i+1] == '>':
			return name, i + 1
		case i == j || !isAttrChar(b[i]): // attributes are apart from the name and one another
			return name, -1
		}
		for i < len(b) && isAttrChar(b[i]) {
			i++
		}
		k := i
		for k < len(b) && isSpace(b[k]) {
			k++
		}
		if k == len(b) || b[k] != '=' {
			continue // no value
		}
		for k++; k < len(b) && isSpace(b[k]); k++ {
		}
		if k == len(b) {
			return name, -1
		}
		switch q := b[k]; {
		case q == '"' || q == '\'':
			e := bytes.IndexByte(b[k+1:], q)
			if e < 0 {
				return name, -1
			}
			i = k + 1 + e + 1
		case isAttrChar(q) || q == '/':
			for i = k; i < len(b) && (isAttrChar(b[i]) || b[i] == '/'); i++ {
			}
		default:
			return name, -1
		}
	}
}

func isTagChar(c byte) bool { return 'a' <= c|0x20 && c|0x20 <= 'z' || '0' <= c && c <= '9' }

func isAttrChar(c byte) bool {
	return isTagChar(c) || c == '-' || c == '_' || c == ':' || c == '.'
}

func isSpace(c byte) bool { return c == ' ' || c == '\n' || c == '\t' || c == '\r' || c == '\f' }
