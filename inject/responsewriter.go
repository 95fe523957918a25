package inject

import (
	"errors"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// RequestEligible reports whether a response to r may be injected into: a GET
// that is not a WebSocket or h2c upgrade.
func RequestEligible(r *http.Request) bool { return RequestSkipReason(r) == "" }

// RequestSkipReason is RequestEligible with the reason: "" when eligible,
// else "head_request", "method" or "upgrade" (short words, fit for a metric
// label).
func RequestSkipReason(r *http.Request) string {
	switch {
	case r.Method == http.MethodHead:
		return "head_request"
	case r.Method != http.MethodGet:
		return "method"
	case len(r.Header["Upgrade"]) > 0 || hasToken(r.Header["Connection"], "upgrade"):
		return "upgrade"
	}
	return ""
}

// PrepareRequest readies r for a response that will be injected into: it asks
// for an unencoded body (encoded ones are decoded anyway, at a cost) and drops
// the conditional and range headers, since the client's validators and byte
// ranges describe the page without the injected state, never the page it
// will get.
func PrepareRequest(r *http.Request) {
	r.Header.Set("Accept-Encoding", "identity")
	for _, h := range []string{"If-None-Match", "If-Modified-Since", "If-Match", "If-Unmodified-Since", "If-Range", "Range"} {
		delete(r.Header, h)
	}
}

// A ResponseWriter injects block() into an HTML response on its way out,
// through an Injector. Like Caddy's encode handler it decides when the header
// would go out, on the first Write, Flush or Close (WriteHeader only keeps the
// status; 1xx statuses pass straight through). It injects only into a 200
// whose Content-Type is text/html or application/xhtml+xml, without
// Cache-Control: no-transform, and whose Content-Encoding is none, identity,
// gzip, br or zstd; encoded bodies are decoded as they stream and sent on
// unencoded. Every other response, header and bytes, passes through exactly.
//
// The header of a response taken for injection goes out with its first byte,
// so when no insertion point turns up it goes out as it came (less
// Content-Encoding, Content-Length, ETag and Accept-Ranges for a decoded
// body). With the block, or when a Flush sends the header before the
// insertion point is known, Content-Length, ETag, Last-Modified and
// Accept-Ranges are deleted, Cache-Control becomes "private, no-store" (the
// page now holds one user's session) and Vary gains Cookie.
//
// An injected page whose upstream declared its length (GatherLimit) is held
// until it is complete and written in one piece; a Flush sends what is held
// and turns that off.
//
// When the body is decoded, block is called from the decoder's coroutine, on
// another goroutine, while the handler's Write waits for it.
//
// Close must be called after the next handler returns, and Abort (deferred)
// if it may panic: until then a tokenizer or a decoder may be waiting for
// input.
type ResponseWriter struct {
	http.ResponseWriter
	block Blocker

	status  int // from WriteHeader; 0 means an implicit 200
	decided bool
	reason  string // why not injected, decided at the header

	inj        *Injector // non-nil when the response is taken for injection
	injector   Injector  // inj's storage: one allocation less
	dec        *feeder   // decoder of an encoded body, when there is one
	coding     string
	pushed     bool // the decoder has had input
	decErr     error
	committed  bool // the header was sent
	stateBytes int
	// An injected page whose upstream declared its length is gathered and
	// sent in one write: want is that length plus the block's (0: stream),
	// gathered what is held so far.
	want     int
	gathered *[]byte
	closed   bool
	err      error
}

// NewResponseWriter wraps w; block returns the element to inject (nil or empty
// for none) and is called at most once, at the insertion point.
func NewResponseWriter(w http.ResponseWriter, block func() []byte) *ResponseWriter {
	rw := &ResponseWriter{ResponseWriter: w}
	if block != nil {
		rw.block = BlockFunc(block)
	}
	return rw
}

// A Blocker returns the element to inject (nil or empty for none); Block is
// called at most once, at the insertion point.
type Blocker interface{ Block() []byte }

// BlockFunc is a function as a Blocker.
type BlockFunc func() []byte

// Block calls f.
func (f BlockFunc) Block() []byte { return f() }

// Init makes rw, in storage of the caller's (a struct that also holds what
// b needs: one allocation per page instead of three), a ResponseWriter
// wrapping w, as NewResponseWriter does.
func (rw *ResponseWriter) Init(w http.ResponseWriter, b Blocker) {
	*rw = ResponseWriter{ResponseWriter: w, block: b}
}

// Unwrap returns the wrapped ResponseWriter, for http.NewResponseController.
func (rw *ResponseWriter) Unwrap() http.ResponseWriter { return rw.ResponseWriter }

// WriteHeader keeps the status for the decision, except for 1xx informational
// responses, which go straight out.
func (rw *ResponseWriter) WriteHeader(status int) {
	switch {
	case 100 <= status && status <= 199:
		rw.ResponseWriter.WriteHeader(status)
	case rw.decided && rw.inj == nil:
		rw.ResponseWriter.WriteHeader(status) // superfluous: let net/http say so
	case rw.status == 0 && !rw.decided:
		rw.status = status
	}
}

// Write writes p, through the injector when the response was taken for it.
func (rw *ResponseWriter) Write(p []byte) (int, error) {
	if rw.err != nil {
		return 0, rw.err
	}
	if !rw.decided {
		if len(p) == 0 {
			return 0, nil
		}
		rw.decide()
	}
	var n int
	var err error
	switch {
	case rw.inj == nil:
		n, err = rw.ResponseWriter.Write(p)
	case len(p) == 0:
	case rw.dec != nil:
		rw.pushed = true
		if unread, done := rw.dec.push(p); done && (rw.decErr != nil || unread > 0) {
			err = rw.decodeEnded()
		} else {
			n = len(p)
		}
	default:
		n, err = rw.inj.Write(p)
	}
	rw.err = err
	return n, err
}

// decodeEnded returns the error for a decoder that returned while input was
// still coming.
func (rw *ResponseWriter) decodeEnded() error {
	if rw.decErr != nil {
		return rw.decErr
	}
	return errors.New("inject: data after the end of the " + rw.coding + " body")
}

// Flush flushes the injector, then the wrapped writer.
func (rw *ResponseWriter) Flush() { _ = rw.FlushError() }

// FlushError is Flush with the error, which http.NewResponseController
// prefers. Before any body byte of an injected response has gone out there is
// nothing to flush, and the header is left open.
func (rw *ResponseWriter) FlushError() error {
	if rw.err != nil {
		return rw.err
	}
	if !rw.decided {
		rw.decide()
	}
	if rw.inj != nil {
		if err := rw.inj.Flush(); err != nil {
			rw.err = err
			return err
		}
		rw.want = 0 // a flushing upstream streams: no more gathering
		if err := rw.sendGathered(); err != nil {
			rw.err = err
			return err
		}
		if !rw.committed {
			return nil
		}
	}
	err := http.NewResponseController(rw.ResponseWriter).Flush()
	if errors.Is(err, http.ErrNotSupported) {
		return nil
	}
	return err
}

// Close ends the response: it drains the decoder and the injector and makes
// sure the header was sent. It does not close the wrapped writer.
func (rw *ResponseWriter) Close() error {
	if rw.closed {
		return rw.err
	}
	rw.closed = true
	if !rw.decided {
		rw.decide()
	}
	if rw.inj == nil {
		return rw.err
	}
	if rw.dec != nil {
		switch {
		case rw.err != nil || !rw.pushed:
			rw.dec.abandon() // an empty body is not a broken one
		default:
			rw.dec.close()
			rw.err = rw.decErr
		}
	}
	if rw.err != nil && !rw.committed {
		// Nothing went out: leave the wrapped writer clean for an error
		// response.
		rw.inj.abort()
		rw.dropGathered()
		return rw.err
	}
	if err := rw.inj.Close(); err != nil && rw.err == nil {
		rw.err = err
	}
	if rw.err == nil {
		rw.err = rw.sendGathered()
	}
	rw.dropGathered()
	if !rw.committed && rw.err == nil {
		rw.commit()
	}
	return rw.err
}

// Abort ends the response without writing anything more, for a next handler
// that panicked (reverse_proxy does when the upstream's body breaks off): a
// gathered page is dropped, not completed, and the decoder and the tokenizer
// are released. Close and Abort may both be called; the first one counts.
func (rw *ResponseWriter) Abort() {
	if rw.closed {
		return
	}
	rw.closed = true
	if rw.inj != nil {
		rw.inj.abort() // first: the decoder, stopped, may still write what it held
	}
	if rw.dec != nil {
		rw.dec.abandon()
	}
	rw.dropGathered()
}

// Result tells what happened, for logs and metrics; reason is a short word
// when nothing was injected: "status", "content_type", "no_transform",
// "encoding", "no_insertion_point", "no_data" (block returned nothing),
// "decode_error", "write_error", or "open" before Close.
func (rw *ResponseWriter) Result() (injected bool, reason string, stateBytes int) {
	switch {
	case rw.inj != nil && rw.inj.Injected():
		return true, "", rw.stateBytes
	case rw.reason != "":
		return false, rw.reason, 0
	case !rw.closed:
		return false, "open", 0
	case rw.inj.found:
		return false, "no_data", 0
	case rw.inj.err != nil: // the client's side, also when met while decoding
		return false, "write_error", 0
	case rw.decErr != nil:
		return false, "decode_error", 0
	case rw.err != nil:
		return false, "write_error", 0
	}
	return false, "no_insertion_point", 0
}

// decide looks at the status and header and either passes the response
// through or takes it for injection.
func (rw *ResponseWriter) decide() {
	rw.decided = true
	if rw.reason = rw.ineligible(rw.Header()); rw.reason != "" {
		if rw.status != 0 {
			rw.ResponseWriter.WriteHeader(rw.status)
		}
		rw.committed = true
		return
	}
	rw.injector = Injector{dst: bodyWriter{rw}, block: (*rwBlock)(rw)}
	rw.inj = &rw.injector
	switch rw.coding {
	case "gzip", "br", "zstd":
		rw.dec = newFeeder(rw.decode)
	default:
		rw.want = declaredLength(rw.Header())
	}
}

// GatherLimit bounds the pages sent in one write: an injected page whose
// upstream declared a Content-Length is held until it is complete, if that
// length plus the block's is at most GatherLimit, and then written at once.
// Chunked, it would leave in more socket writes than the upstream's page
// through a plain reverse_proxy (net/http writes each large write on its own,
// and the chunked ending on its own). A longer page, one without a declared
// length, or one whose upstream flushes streams as it comes.
const GatherLimit = 128 << 10

// declaredLength returns the Content-Length of h if it is a single value of
// 1 to GatherLimit bytes, else 0.
func declaredLength(h http.Header) int {
	v := h["Content-Length"]
	if len(v) != 1 || len(v[0]) == 0 || len(v[0]) > 6 {
		return 0
	}
	n := 0
	for _, c := range []byte(v[0]) {
		if c < '0' || c > '9' {
			return 0
		}
		n = n*10 + int(c-'0')
	}
	if n > GatherLimit {
		return 0
	}
	return n
}

var gatherPool = sync.Pool{New: func() any { b := make([]byte, 0, 32<<10); return &b }}

// startGather decides, when the block is known and before any byte of the
// page has gone out, whether the page is gathered.
func (rw *ResponseWriter) startGather(block int) {
	if rw.want == 0 || block == 0 || rw.committed || rw.want+block > GatherLimit {
		rw.want = 0
		return
	}
	rw.want += block
	rw.gathered = gatherPool.Get().(*[]byte)
	*rw.gathered = slices.Grow((*rw.gathered)[:0], rw.want)
	rw.inj.separate = true // the pieces are joined here
}

// gather holds p of a page that goes out in one write, and reports false if
// the page is not gathered (or no longer: what was held has gone out then).
func (rw *ResponseWriter) gather(p []byte) (bool, error) {
	if len(*rw.gathered)+len(p) > rw.want {
		// More than declared: send what is held, and stream the rest.
		return false, rw.sendGathered()
	}
	*rw.gathered = append(*rw.gathered, p...)
	if len(*rw.gathered) == rw.want {
		return true, rw.sendGathered()
	}
	return true, nil
}

// sendGathered writes out what gather holds, if anything.
func (rw *ResponseWriter) sendGathered() error {
	if rw.gathered == nil {
		return nil
	}
	b := *rw.gathered
	rw.want = 0
	rw.commit()
	_, err := rw.ResponseWriter.Write(b)
	rw.dropGathered()
	return err
}

func (rw *ResponseWriter) dropGathered() {
	if rw.gathered == nil {
		return
	}
	if cap(*rw.gathered) <= 2*GatherLimit {
		*rw.gathered = (*rw.gathered)[:0]
		gatherPool.Put(rw.gathered)
	}
	rw.gathered = nil
}

// ineligible returns why the response must pass through, or "".
func (rw *ResponseWriter) ineligible(h http.Header) string {
	if rw.status != 0 && rw.status != http.StatusOK {
		return "status"
	}
	coding, ok := contentCoding(h["Content-Encoding"])
	// A missing Content-Type is not sniffed: net/http sniffs what it buffers,
	// not the first write, and upstreams (and Caddy's file server) set one.
	ct := ""
	if v := h["Content-Type"]; len(v) > 0 {
		ct = v[0]
	}
	mediaType, _, _ := strings.Cut(ct, ";")
	mediaType = strings.ToLower(strings.TrimSpace(mediaType))
	switch {
	case mediaType != "text/html" && mediaType != "application/xhtml+xml":
		return "content_type"
	case hasToken(h["Cache-Control"], "no-transform"):
		return "no_transform"
	case !ok:
		return "encoding"
	}
	rw.coding = coding
	return ""
}

// contentCoding returns the one coding that Content-Encoding names ("" for
// none or identity), and false when it is one we do not decode (or several).
func contentCoding(values []string) (string, bool) {
	coding := ""
	for _, v := range values {
		for item := range strings.SplitSeq(v, ",") {
			item = strings.ToLower(strings.TrimSpace(item))
			switch item {
			case "", "identity":
				continue
			case "x-gzip":
				item = "gzip"
			}
			if coding != "" {
				return "", false
			}
			coding = item
		}
	}
	switch coding {
	case "", "gzip", "br", "zstd":
		return coding, true
	}
	return "", false
}

// rwBlock is a ResponseWriter as its injector's Blocker: callBlock, without
// a closure.
type rwBlock ResponseWriter

func (b *rwBlock) Block() []byte { return (*ResponseWriter)(b).callBlock() }

func (rw *ResponseWriter) callBlock() []byte {
	if rw.block == nil {
		return nil
	}
	b := rw.block.Block()
	rw.stateBytes = len(b)
	rw.startGather(len(b))
	return b
}

// decode runs in the decoder's coroutine, from the encoded body into the
// injector. Only synchronous decoders will do: zstd with concurrency 1.
func (rw *ResponseWriter) decode(r io.Reader) {
	var body io.Reader
	switch rw.coding {
	case "gzip":
		zr, err := gzip.NewReader(r)
		if err != nil {
			rw.decErr = err
			return
		}
		body = zr
	case "br":
		body = brotli.NewReader(r)
	case "zstd":
		zr, err := zstd.NewReader(r,
			zstd.WithDecoderConcurrency(1),
			zstd.WithDecoderLowmem(true),
			zstd.WithDecoderMaxWindow(8<<20)) // RFC 9659: HTTP zstd windows are at most 8 MiB
		if err != nil {
			rw.decErr = err
			return
		}
		defer zr.Close()
		body = zr
	}
	if _, err := io.Copy(rw.inj, body); err != nil {
		rw.decErr = err
	}
}

// bodyWriter is the injector's destination: it sends the header before the
// first byte.
type bodyWriter struct{ rw *ResponseWriter }

func (b bodyWriter) Write(p []byte) (int, error) {
	if b.rw.gathered != nil {
		if held, err := b.rw.gather(p); held || err != nil {
			if err != nil {
				return 0, err
			}
			return len(p), nil
		}
	}
	b.rw.commit()
	return b.rw.ResponseWriter.Write(p)
}

// commit sends the header of a response taken for injection, fixed up for
// what the body will be.
func (rw *ResponseWriter) commit() {
	if rw.committed {
		return
	}
	rw.committed = true
	h := rw.Header()
	if rw.dec != nil {
		// The body goes out decoded: a different representation.
		delete(h, "Content-Encoding")
		delete(h, "Content-Length")
		delete(h, "Etag")
		delete(h, "Accept-Ranges")
	}
	if rw.inj.Injected() || !rw.inj.decided {
		for _, k := range []string{"Content-Length", "Etag", "Last-Modified", "Accept-Ranges"} {
			delete(h, k)
		}
		if len(h["Vary"]) == 0 {
			// Both values in one allocation; each slice is capped, so
			// an append to one does not run into the other.
			v := []string{"private, no-store", "Cookie"}
			h["Cache-Control"], h["Vary"] = v[0:1:1], v[1:2:2]
		} else {
			h["Cache-Control"] = []string{"private, no-store"}
			addVary(h, "Cookie")
		}
	}
	rw.ResponseWriter.WriteHeader(http.StatusOK)
}

// addVary adds token to Vary, as one merged value, unless it or * is there.
func addVary(h http.Header, token string) {
	if len(h["Vary"]) == 0 {
		h["Vary"] = []string{token}
		return
	}
	var items []string
	for _, v := range h["Vary"] {
		for item := range strings.SplitSeq(v, ",") {
			item = strings.TrimSpace(item)
			switch {
			case item == "":
			case item == "*" || strings.EqualFold(item, token):
				return
			default:
				items = append(items, item)
			}
		}
	}
	h["Vary"] = []string{strings.Join(append(items, token), ", ")}
}

// hasToken reports whether a comma-separated header names token (ignoring
// case and any =value).
func hasToken(values []string, token string) bool {
	for _, v := range values {
		for item := range strings.SplitSeq(v, ",") {
			item, _, _ = strings.Cut(item, "=")
			if strings.EqualFold(strings.TrimSpace(item), token) {
				return true
			}
		}
	}
	return false
}
