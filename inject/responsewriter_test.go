package inject

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/textproto"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

const page = "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<title>t</title>\n</head>\n<body><p>hello</p></body>\n</html>\n"

var injectedPage = strings.Replace(page, "<head>", "<head>"+testBlock, 1)

func testBlockFunc() []byte { return []byte(testBlock) }

// middleware wraps next as the Caddy handler does.
func middleware(next http.HandlerFunc, block func() []byte) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !RequestEligible(r) {
			next(w, r)
			return
		}
		PrepareRequest(r)
		rw := NewResponseWriter(w, block)
		defer rw.Close()
		next(rw, r)
	}
}

func TestRequestEligible(t *testing.T) {
	for _, tc := range []struct {
		method string
		header http.Header
		want   string
	}{
		{"GET", nil, ""},
		{"GET", http.Header{"Connection": {"keep-alive"}}, ""},
		{"HEAD", nil, "head_request"},
		{"POST", nil, "method"},
		{"OPTIONS", nil, "method"},
		{"CONNECT", nil, "method"},
		{"GET", http.Header{"Connection": {"Upgrade"}, "Upgrade": {"websocket"}, "Sec-Websocket-Key": {"x"}}, "upgrade"},
		{"GET", http.Header{"Connection": {"keep-alive, Upgrade"}}, "upgrade"},
		{"GET", http.Header{"Upgrade": {"h2c"}, "Connection": {"Upgrade, HTTP2-Settings"}, "Http2-Settings": {"AAMAAABkAAQAAP__"}}, "upgrade"},
		{"GET", http.Header{"Upgrade": {"websocket"}}, "upgrade"},
	} {
		r := httptest.NewRequest(tc.method, "/", nil)
		for k, v := range tc.header {
			r.Header[k] = v
		}
		if got := RequestSkipReason(r); got != tc.want || RequestEligible(r) != (tc.want == "") {
			t.Errorf("%s %v: %q, want %q", tc.method, tc.header, got, tc.want)
		}
	}
}

func TestPrepareRequest(t *testing.T) {
	r := httptest.NewRequest("GET", "/", nil)
	for _, h := range []string{"If-None-Match", "If-Modified-Since", "If-Match", "If-Unmodified-Since", "If-Range", "Range"} {
		r.Header.Set(h, "x")
	}
	r.Header.Set("Accept-Encoding", "gzip, br, zstd")
	r.Header.Set("Cookie", "a=b")
	PrepareRequest(r)
	want := http.Header{"Accept-Encoding": {"identity"}, "Cookie": {"a=b"}}
	if !reflect.DeepEqual(r.Header, want) {
		t.Errorf("header %v, want %v", r.Header, want)
	}
}

// serve runs handler through a ResponseWriter over a recorder.
func serve(t *testing.T, block func() []byte, handler func(w http.ResponseWriter)) (*httptest.ResponseRecorder, *ResponseWriter, error) {
	t.Helper()
	rec := httptest.NewRecorder()
	rw := NewResponseWriter(rec, block)
	handler(rw)
	err := rw.Close()
	if err2 := rw.Close(); err2 != err {
		t.Errorf("second Close: %v, first %v", err2, err)
	}
	return rec, rw, err
}

// writeIn writes body in small pieces, as a proxy would.
func writeIn(w io.Writer, body []byte, size int) {
	for len(body) > 0 {
		n := min(size, len(body))
		w.Write(body[:n])
		body = body[n:]
	}
}

func TestResponseWriterInjects(t *testing.T) {
	for _, tc := range []struct {
		name   string
		status int // 0: no WriteHeader call
		header http.Header
		want   http.Header
	}{
		{
			name:   "all the headers",
			status: 200,
			header: http.Header{
				"Content-Type": {"text/html; charset=utf-8"}, "Content-Length": {"95"}, "Etag": {`"abc"`},
				"Last-Modified": {"Mon, 01 Jan 2024 00:00:00 GMT"}, "Accept-Ranges": {"bytes"},
				"Cache-Control": {"public, max-age=600"}, "Vary": {"Accept-Encoding"}, "X-Other": {"kept"},
			},
			want: http.Header{
				"Content-Type": {"text/html; charset=utf-8"}, "Cache-Control": {"private, no-store"},
				"Vary": {"Accept-Encoding, Cookie"}, "X-Other": {"kept"},
			},
		},
		{
			name:   "implicit 200",
			header: http.Header{"Content-Type": {"text/html"}},
			want:   http.Header{"Content-Type": {"text/html"}, "Cache-Control": {"private, no-store"}, "Vary": {"Cookie"}},
		},
		{
			name:   "xhtml, Vary lists",
			status: 200,
			header: http.Header{"Content-Type": {"Application/XHTML+XML"}, "Vary": {"Origin, accept-encoding", "Accept"}},
			want:   http.Header{"Content-Type": {"Application/XHTML+XML"}, "Cache-Control": {"private, no-store"}, "Vary": {"Origin, accept-encoding, Accept, Cookie"}},
		},
		{
			name:   "Vary has Cookie",
			status: 200,
			header: http.Header{"Content-Type": {"text/html"}, "Vary": {"cookie, Accept-Encoding"}},
			want:   http.Header{"Content-Type": {"text/html"}, "Cache-Control": {"private, no-store"}, "Vary": {"cookie, Accept-Encoding"}},
		},
		{
			name:   "Vary *",
			status: 200,
			header: http.Header{"Content-Type": {"text/html"}, "Vary": {"*"}},
			want:   http.Header{"Content-Type": {"text/html"}, "Cache-Control": {"private, no-store"}, "Vary": {"*"}},
		},
		{
			name:   "identity coding",
			status: 200,
			header: http.Header{"Content-Type": {"text/html"}, "Content-Encoding": {"identity"}},
			want:   http.Header{"Content-Type": {"text/html"}, "Content-Encoding": {"identity"}, "Cache-Control": {"private, no-store"}, "Vary": {"Cookie"}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec, rw, err := serve(t, testBlockFunc, func(w http.ResponseWriter) {
				for k, v := range tc.header {
					w.Header()[k] = v
				}
				if tc.status != 0 {
					w.WriteHeader(tc.status)
				}
				writeIn(w, []byte(page), 7)
			})
			if err != nil {
				t.Fatal(err)
			}
			res := rec.Result()
			if res.StatusCode != 200 || rec.Body.String() != injectedPage {
				t.Errorf("%d %.200q", res.StatusCode, rec.Body.String())
			}
			if !reflect.DeepEqual(res.Header, tc.want) {
				t.Errorf("header\n got %v\nwant %v", res.Header, tc.want)
			}
			if injected, reason, n := rw.Result(); !injected || reason != "" || n != len(testBlock) {
				t.Errorf("Result() = %v, %q, %d", injected, reason, n)
			}
			// Cache-Control and Vary may share storage: a handler further
			// out that adds to one leaves the other as it was.
			h := rec.Header()
			h.Add("Cache-Control", "no-transform")
			h.Add("Vary", "Accept")
			if got := h["Cache-Control"]; !reflect.DeepEqual(got, []string{"private, no-store", "no-transform"}) {
				t.Errorf("Cache-Control after adding to both: %q", got)
			}
			if got := h["Vary"]; !reflect.DeepEqual(got, append(append([]string(nil), tc.want["Vary"]...), "Accept")) {
				t.Errorf("Vary after adding to both: %q", got)
			}
		})
	}
}

func TestResponseWriterPassesThrough(t *testing.T) {
	htmlHeader := func(kv ...string) http.Header {
		h := http.Header{"Content-Type": {"text/html; charset=utf-8"}, "Content-Length": {"95"}, "Etag": {`"abc"`}, "Cache-Control": {"max-age=60"}}
		for i := 0; i+1 < len(kv); i += 2 {
			h[kv[i]] = []string{kv[i+1]}
		}
		return h
	}
	for _, tc := range []struct {
		name   string
		status int
		header http.Header
		body   string
		block  func() []byte
		reason string
	}{
		{"404", 404, htmlHeader(), page, nil, "status"},
		{"500", 500, htmlHeader(), page, nil, "status"},
		{"304", 304, http.Header{"Etag": {`"abc"`}, "Cache-Control": {"max-age=60"}}, "", nil, "status"},
		{"206", 206, htmlHeader("Content-Range", "bytes 0-9/95", "Content-Length", "10"), page[:10], nil, "status"},
		{"201", 201, htmlHeader(), page, nil, "status"},
		{"json", 200, http.Header{"Content-Type": {"application/json"}}, `{"a":"<head>"}`, nil, "content_type"},
		{"text/plain", 200, http.Header{"Content-Type": {"text/plain"}}, page, nil, "content_type"},
		{"text/html-like", 200, http.Header{"Content-Type": {"text/htmlx"}}, page, nil, "content_type"},
		{"event stream", 200, http.Header{"Content-Type": {"text/event-stream"}}, "data: <head>\n\n", nil, "content_type"},
		{"no Content-Type", 200, http.Header{}, page, nil, "content_type"},
		{"empty Content-Type", 200, http.Header{"Content-Type": nil}, page, nil, "content_type"},
		{"no-transform", 200, htmlHeader("Cache-Control", "public, No-Transform"), page, nil, "no_transform"},
		{"unknown coding", 200, htmlHeader("Content-Encoding", "compress"), "\x1f\x9d<head>", nil, "encoding"},
		{"deflate", 200, htmlHeader("Content-Encoding", "deflate"), "x\x9c<head>", nil, "encoding"},
		{"two codings", 200, htmlHeader("Content-Encoding", "gzip, br"), "\x1f\x8b<head>", nil, "encoding"},
		{"no insertion point", 200, htmlHeader("Content-Length", "19"), "text only, no tags\n", nil, "no_insertion_point"},
		{"empty body", 200, htmlHeader("Content-Length", "0"), "", nil, "no_insertion_point"},
		{"head too late", 200, htmlHeader("Content-Length", "65558"), "<!--" + strings.Repeat("x", MaxPrefix) + "--><head>", nil, "no_insertion_point"},
		{"no data", 200, htmlHeader(), page, func() []byte { return nil }, "no_data"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := tc.header.Clone()
			block := tc.block
			if block == nil {
				block = func() []byte { t.Error("block called"); return nil }
			}
			rec, rw, err := serve(t, block, func(w http.ResponseWriter) {
				for k, v := range tc.header {
					w.Header()[k] = v
				}
				w.WriteHeader(tc.status)
				writeIn(w, []byte(tc.body), 5)
			})
			if err != nil {
				t.Fatal(err)
			}
			res := rec.Result()
			if res.StatusCode != tc.status || rec.Body.String() != tc.body {
				t.Errorf("%d %.200q", res.StatusCode, rec.Body.String())
			}
			if !reflect.DeepEqual(res.Header, want) {
				t.Errorf("header\n got %v\nwant %v", res.Header, want)
			}
			if injected, reason, n := rw.Result(); injected || reason != tc.reason || n != 0 {
				t.Errorf("Result() = %v, %q, %d; want reason %q", injected, reason, n, tc.reason)
			}
		})
	}
}

func compress(t testing.TB, coding string, body []byte) []byte {
	var buf bytes.Buffer
	var w io.WriteCloser
	switch coding {
	case "gzip", "x-gzip":
		w = gzip.NewWriter(&buf)
	case "br":
		w = brotli.NewWriter(&buf)
	case "zstd":
		var err error
		if w, err = zstd.NewWriter(&buf); err != nil {
			t.Fatal(err)
		}
	}
	w.Write(body)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestResponseWriterDecodes(t *testing.T) {
	big := page + strings.Repeat("<p>more and more text</p>\n", 20000) // 500 KB
	for _, coding := range []string{"gzip", "x-gzip", "br", "zstd"} {
		for _, body := range []string{page, big, "text only, no insertion point"} {
			for _, size := range []int{1, 1000, 1 << 20} {
				encoded := compress(t, coding, []byte(body))
				rec, rw, err := serve(t, testBlockFunc, func(w http.ResponseWriter) {
					h := w.Header()
					h.Set("Content-Type", "text/html")
					h.Set("Content-Encoding", coding)
					h.Set("Content-Length", "123")
					h.Set("Etag", `"e"`)
					h.Set("Cache-Control", "max-age=5")
					w.WriteHeader(200)
					writeIn(w, encoded, size)
				})
				if err != nil {
					t.Fatalf("%s: %v", coding, err)
				}
				want := strings.Replace(body, "<head>", "<head>"+testBlock, 1)
				if rec.Body.String() != want {
					t.Errorf("%s/%d/%d: body %.100q", coding, len(body), size, rec.Body.String())
				}
				h := rec.Result().Header
				if h.Get("Content-Encoding") != "" || h.Get("Content-Length") != "" || h.Get("Etag") != "" {
					t.Errorf("%s: header %v", coding, h)
				}
				injected, reason, _ := rw.Result()
				if wantInjected := want != body; injected != wantInjected || h.Get("Cache-Control") != map[bool]string{true: "private, no-store", false: "max-age=5"}[injected] {
					t.Errorf("%s: injected %v (%q), Cache-Control %q", coding, injected, reason, h.Get("Cache-Control"))
				}
			}
		}
	}
}

func TestResponseWriterDecodeErrors(t *testing.T) {
	gz := compress(t, "gzip", []byte(page))
	br := compress(t, "br", []byte(page))
	zs := compress(t, "zstd", []byte(page))
	big := []byte(injectedPage + strings.Repeat("<p>some more text</p>\n", 10000))
	bigGz, bigBr, bigZs := compress(t, "gzip", big), compress(t, "br", big), compress(t, "zstd", big)
	for _, tc := range []struct {
		name, coding string
		body         []byte
	}{
		{"gzip garbage", "gzip", []byte("this is not gzip at all <head>")},
		{"gzip bad checksum", "gzip", append(bytes.Clone(gz[:len(gz)-8]), 0, 0, 0, 0, 0, 0, 0, 0)},
		{"gzip truncated", "gzip", gz[:len(gz)-20]},
		{"gzip trailing garbage", "gzip", append(bytes.Clone(gz), "garbage"...)},
		{"big gzip truncated", "gzip", bigGz[:len(bigGz)/2]},
		{"br garbage", "br", []byte("\xff\xff\xff\xff not brotli")},
		{"br truncated", "br", br[:len(br)/2]},
		{"br trailing garbage", "br", append(bytes.Clone(br), "garbage"...)},
		{"big br truncated", "br", bigBr[:len(bigBr)/2]},
		{"zstd garbage", "zstd", []byte("not zstd, not at all")},
		{"zstd truncated", "zstd", zs[:len(zs)-3]},
		{"big zstd truncated", "zstd", bigZs[:len(bigZs)/2]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var writeErr error
			rec, rw, err := serve(t, testBlockFunc, func(w http.ResponseWriter) {
				w.Header().Set("Content-Type", "text/html")
				w.Header().Set("Content-Encoding", tc.coding)
				for b := tc.body; len(b) > 0 && writeErr == nil; b = b[min(len(b), 16):] {
					_, writeErr = w.Write(b[:min(len(b), 16)])
				}
				if writeErr != nil {
					if _, again := w.Write([]byte("more")); !errors.Is(again, writeErr) {
						t.Errorf("Write after %v: %v", writeErr, again)
					}
				}
			})
			if err == nil && writeErr == nil {
				t.Fatal("no error")
			}
			// The body ends where the error was found: nothing, or a prefix
			// of the injected page.
			got := rec.Body.String()
			if want := strings.Replace(string(big), "<head>", "<head>"+testBlock, 1); !strings.HasPrefix(want, got) {
				t.Errorf("body %.200q", got)
			}
			if got == "" && rec.Result().Header.Get("Cache-Control") != "" {
				t.Error("the header went out with nothing to show for it")
			}
			_, reason, _ := rw.Result()
			t.Logf("write error %v, Close error %v, body %d bytes, reason %q", writeErr, err, len(got), reason)
		})
	}
}

func TestResponseWriterEmptyEncodedBody(t *testing.T) {
	rec, rw, err := serve(t, testBlockFunc, func(w http.ResponseWriter) {
		w.Header().Set("Content-Type", "text/html")
		w.Header().Set("Content-Encoding", "gzip")
		w.WriteHeader(200)
	})
	if err != nil || rec.Body.Len() != 0 || rec.Code != 200 {
		t.Fatalf("%v %d %q", err, rec.Code, rec.Body.String())
	}
	if _, reason, _ := rw.Result(); reason != "no_insertion_point" {
		t.Errorf("reason %q", reason)
	}
}

// failingWriter is a ResponseWriter whose connection is gone.
type failingWriter struct {
	header http.Header
	status int
	writes int
}

var errGone = errors.New("connection gone")

func (f *failingWriter) Header() http.Header { return f.header }
func (f *failingWriter) WriteHeader(s int)   { f.status = s }
func (f *failingWriter) Write(p []byte) (int, error) {
	f.writes++
	return 0, errGone
}

func TestResponseWriterWriteError(t *testing.T) {
	for _, ct := range []string{"text/html", "text/plain"} {
		fw := &failingWriter{header: http.Header{"Content-Type": {ct}}}
		rw := NewResponseWriter(fw, testBlockFunc)
		// A page too short to go out at once: Flush makes it.
		if _, err := rw.Write([]byte(page)); err != nil && !errors.Is(err, errGone) {
			t.Errorf("%s: Write: %v", ct, err)
		}
		if err := rw.FlushError(); !errors.Is(err, errGone) {
			t.Errorf("%s: Flush: %v", ct, err)
		}
		if _, err := rw.Write([]byte("more")); !errors.Is(err, errGone) {
			t.Errorf("%s: Write after the error: %v", ct, err)
		}
		if err := rw.Close(); !errors.Is(err, errGone) {
			t.Errorf("%s: Close: %v", ct, err)
		}
		if fw.writes != 1 {
			t.Errorf("%s: %d writes reached the connection", ct, fw.writes)
		}
	}
}

// callRecorder records the calls a ResponseWriter gets.
type callRecorder struct {
	*httptest.ResponseRecorder
	calls []string
}

func (c *callRecorder) WriteHeader(s int) {
	c.calls = append(c.calls, "WriteHeader "+http.StatusText(s))
	if s >= 200 {
		c.ResponseRecorder.WriteHeader(s)
	}
}

func (c *callRecorder) Write(p []byte) (int, error) {
	c.calls = append(c.calls, "Write")
	return c.ResponseRecorder.Write(p)
}

func TestResponseWriterInformational(t *testing.T) {
	c := &callRecorder{ResponseRecorder: httptest.NewRecorder()}
	rw := NewResponseWriter(c, testBlockFunc)
	rw.Header().Set("Link", "</style.css>; rel=preload")
	rw.WriteHeader(103)
	if !reflect.DeepEqual(c.calls, []string{"WriteHeader Early Hints"}) {
		t.Fatalf("103 not passed through: %v", c.calls)
	}
	rw.Header().Set("Content-Type", "text/html")
	rw.WriteHeader(200)
	rw.WriteHeader(404) // superfluous, ignored
	rw.Write([]byte(page))
	rw.Close()
	if c.Code != 200 || c.Body.String() != injectedPage {
		t.Errorf("%d %q (%v)", c.Code, c.Body.String(), c.calls)
	}
}

// TestResponseWriterServer checks, over a real connection, that flushes reach
// the client (SSE passed through, and HTML before and after the insertion
// point), that 1xx responses pass, and that HEAD is left alone.
func TestResponseWriterServer(t *testing.T) {
	step := make(chan struct{})
	mux := http.NewServeMux()
	mux.HandleFunc("/sse", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(200)
		for i := range 3 {
			io.WriteString(w, "data: <head>\n\n")
			if err := http.NewResponseController(w).Flush(); err != nil {
				t.Error(err)
			}
			if i < 2 {
				<-step // the client has read the event
			}
		}
	})
	mux.HandleFunc("/page", func(w http.ResponseWriter, r *http.Request) {
		if err := http.NewResponseController(w).SetWriteDeadline(time.Now().Add(time.Minute)); err != nil {
			t.Errorf("SetWriteDeadline through Unwrap: %v", err)
		}
		w.Header().Set("Content-Type", "text/html")
		w.Header().Set("Link", "</a.css>; rel=preload")
		w.WriteHeader(103)
		w.Header().Set("Content-Length", "1000")
		io.WriteString(w, "<!doctype html>\n<!-- streamed -->\n<ht")
		w.(http.Flusher).Flush()
		<-step
		io.WriteString(w, "ml><head><title>t</title>")
		w.(http.Flusher).Flush()
		<-step
		io.WriteString(w, "</head><body>done</body></html>")
	})
	mux.HandleFunc("/gzip", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.Header().Set("Content-Encoding", "gzip")
		zw := gzip.NewWriter(w)
		io.WriteString(zw, "<!doctype html><html><head><title>t</title>")
		zw.Flush()
		w.(http.Flusher).Flush()
		<-step
		io.WriteString(zw, "</head><body>late</body></html>")
		zw.Close()
	})
	mux.HandleFunc("/plain", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.Header().Set("Content-Length", "95")
		w.Header().Set("Etag", `"x"`)
		if r.Method != http.MethodHead {
			io.WriteString(w, page)
		}
	})
	srv := httptest.NewServer(middleware(mux.ServeHTTP, testBlockFunc))
	defer srv.Close()
	client := srv.Client()
	client.Timeout = 10 * time.Second

	readUntil := func(br *bufio.Reader, want string) {
		t.Helper()
		got := make([]byte, len(want))
		if _, err := io.ReadFull(br, got); err != nil || string(got) != want {
			t.Fatalf("read %q, %v; want %q", got, err, want)
		}
	}

	t.Run("sse", func(t *testing.T) {
		res, err := client.Get(srv.URL + "/sse")
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		br := bufio.NewReader(res.Body)
		for i := range 3 {
			readUntil(br, "data: <head>\n\n")
			if i < 2 {
				step <- struct{}{}
			}
		}
		if res.Header.Get("Cache-Control") != "" || res.Header.Get("Vary") != "" {
			t.Errorf("SSE header touched: %v", res.Header)
		}
	})

	t.Run("page", func(t *testing.T) {
		var early []string
		trace := &httptrace.ClientTrace{Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
			early = append(early, http.StatusText(code)+" "+http.Header(h).Get("Link"))
			return nil
		}}
		req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(t.Context(), trace), "GET", srv.URL+"/page", nil)
		res, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		if !reflect.DeepEqual(early, []string{"Early Hints </a.css>; rel=preload"}) {
			t.Errorf("1xx: %v", early)
		}
		if res.Header.Get("Cache-Control") != "private, no-store" || res.ContentLength != -1 {
			t.Errorf("header %v, length %d", res.Header, res.ContentLength)
		}
		br := bufio.NewReader(res.Body)
		readUntil(br, "<!doctype html>\n<!-- streamed -->\n") // flushed before the insertion point
		step <- struct{}{}
		readUntil(br, "<html><head>"+testBlock+"<title>t</title>")
		step <- struct{}{}
		rest, _ := io.ReadAll(br)
		if string(rest) != "</head><body>done</body></html>" {
			t.Errorf("rest %q", rest)
		}
	})

	t.Run("gzip", func(t *testing.T) {
		req, _ := http.NewRequest("GET", srv.URL+"/gzip", nil)
		req.Header.Set("Accept-Encoding", "gzip") // PrepareRequest asks upstream for identity; this one ignores it
		res, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		if res.Header.Get("Content-Encoding") != "" {
			t.Errorf("header %v", res.Header)
		}
		br := bufio.NewReader(res.Body)
		readUntil(br, "<!doctype html><html><head>"+testBlock+"<title>t</title>") // decoded and flushed
		step <- struct{}{}
		rest, _ := io.ReadAll(br)
		if string(rest) != "</head><body>late</body></html>" {
			t.Errorf("rest %q", rest)
		}
	})

	t.Run("head", func(t *testing.T) {
		for _, method := range []string{"HEAD", "GET"} {
			req, _ := http.NewRequest(method, srv.URL+"/plain", nil)
			res, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			switch method {
			case "HEAD":
				if res.Header.Get("Etag") != `"x"` || res.ContentLength != 95 || res.Header.Get("Cache-Control") != "" || len(body) != 0 {
					t.Errorf("HEAD touched: %v %d", res.Header, res.ContentLength)
				}
			case "GET":
				// net/http sets the length of a small body it buffered whole.
				if res.Header.Get("Etag") != "" || res.ContentLength != int64(len(injectedPage)) || string(body) != injectedPage || res.Header.Get("Cache-Control") != "private, no-store" {
					t.Errorf("GET not injected: %v %q", res.Header, body)
				}
			}
		}
	})
}

// TestResponseWriterGathers checks which injected pages leave in one write:
// those whose declared length is reached, and only those.
func TestResponseWriterGathers(t *testing.T) {
	mid := "<!doctype html><html><head><title>t</title></head><body>" + strings.Repeat("x", 8<<10) + "</body></html>"
	long := "<!doctype html><html><head><title>t</title></head><body>" + strings.Repeat("x", GatherLimit) + "</body></html>"
	n := strconv.Itoa
	for _, tc := range []struct {
		name     string
		length   []string // Content-Length declared
		body     string
		gathered bool // one Write reaches the wrapped writer, else many
	}{
		{"declared length", []string{n(len(mid))}, mid, true},
		{"small page", []string{n(len(page))}, page, true},
		{"declared too long", []string{n(len(mid) + 4)}, mid, true}, // sent at Close
		{"declared too short", []string{n(len(mid) - 4)}, mid, false},
		{"no declared length", nil, mid, false},
		{"over GatherLimit", []string{n(len(long))}, long, false},
		{"two values", []string{n(len(mid)), n(len(mid))}, mid, false},
		{"not a number", []string{"+" + n(len(mid))}, mid, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := &callRecorder{ResponseRecorder: httptest.NewRecorder()}
			rw := NewResponseWriter(rec, testBlockFunc)
			rw.Header().Set("Content-Type", "text/html")
			rw.Header()["Content-Length"] = tc.length
			writeIn(rw, []byte(tc.body), 7)
			if err := rw.Close(); err != nil {
				t.Fatal(err)
			}
			want := strings.Replace(tc.body, "<head>", "<head>"+testBlock, 1)
			if rec.Body.String() != want {
				t.Errorf("body %.200q", rec.Body.String())
			}
			writes := 0
			for _, c := range rec.calls {
				if c == "Write" {
					writes++
				}
			}
			if (writes == 1) != tc.gathered || rec.calls[0] != "WriteHeader OK" {
				t.Errorf("%d writes (%v...), gathered %v", writes, rec.calls[:min(len(rec.calls), 3)], tc.gathered)
			}
			if v := rec.Result().Header["Content-Length"]; v != nil {
				t.Errorf("Content-Length %q on an injected page", v)
			}
		})
	}
}

// TestResponseWriterGatherFlush: a flush sends what was gathered and turns
// gathering off, so a streaming upstream streams.
func TestResponseWriterGatherFlush(t *testing.T) {
	rec := &callRecorder{ResponseRecorder: httptest.NewRecorder()}
	rw := NewResponseWriter(rec, testBlockFunc)
	rw.Header().Set("Content-Type", "text/html")
	rw.Header().Set("Content-Length", strconv.Itoa(len(page)))
	head, rest := page[:strings.Index(page, "<title>")], page[strings.Index(page, "<title>"):]
	io.WriteString(rw, head)
	io.WriteString(rw, rest[:5])
	if len(rec.calls) != 0 {
		t.Fatalf("gathering: %v", rec.calls)
	}
	rw.Flush()
	if want := strings.Replace(head, "<head>", "<head>"+testBlock, 1) + rest[:5]; rec.Body.String() != want || !rec.Flushed {
		t.Fatalf("after Flush: %q (flushed %v)", rec.Body.String(), rec.Flushed)
	}
	io.WriteString(rw, rest[5:9])
	if !strings.HasSuffix(rec.Body.String(), rest[5:9]) {
		t.Fatalf("after the flush, writes stream: %q", rec.Body.String())
	}
	io.WriteString(rw, rest[9:])
	if err := rw.Close(); err != nil || rec.Body.String() != injectedPage {
		t.Fatalf("%v %q", err, rec.Body.String())
	}
}

// TestResponseWriterAbort: a page that is still gathered when the next
// handler panics is dropped whole, not sent as if complete; Close after
// Abort does nothing.
func TestResponseWriterAbort(t *testing.T) {
	mid := "<!doctype html><html><head><title>t</title></head><body>" + strings.Repeat("x", 8<<10) + "</body></html>"
	for _, gathered := range []bool{true, false} {
		rec := &callRecorder{ResponseRecorder: httptest.NewRecorder()}
		rw := NewResponseWriter(rec, testBlockFunc)
		rw.Header().Set("Content-Type", "text/html")
		if gathered {
			rw.Header().Set("Content-Length", strconv.Itoa(len(mid)))
		}
		half := len(mid) / 2
		io.WriteString(rw, mid[:half])
		rw.Abort()
		switch {
		case gathered && len(rec.calls) != 0:
			t.Errorf("gathered: %v reached the client", rec.calls)
		case !gathered && rec.Body.String() != strings.Replace(mid[:half], "<head>", "<head>"+testBlock, 1):
			t.Errorf("streamed: %.100q", rec.Body.String())
		}
		n := len(rec.calls)
		if err := rw.Close(); err != nil || len(rec.calls) != n {
			t.Errorf("Close after Abort: %v, %v", err, rec.calls[n:])
		}
	}
}

// Abort on a decoded body: the decoder, stopped, hands back what it still
// held; none of it reaches the client, and the block is not asked for.
func TestResponseWriterAbortDecoding(t *testing.T) {
	var page strings.Builder
	page.WriteString("<!doctype html><html><head><title>t</title></head><body>")
	x := uint32(1)
	for range 800 { // text that compresses poorly, so the decoder holds a lot
		page.WriteString("<p>line ")
		for range 6 {
			x = x*1664525 + 1013904223
			page.WriteByte(byte('a' + x>>27))
		}
		page.WriteString("</p>\n")
	}
	page.WriteString("</body></html>")
	var z bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&z, gzip.BestCompression)
	io.WriteString(zw, page.String())
	zw.Close()
	rec := &callRecorder{ResponseRecorder: httptest.NewRecorder()}
	called := false
	rw := NewResponseWriter(rec, func() []byte { called = true; return []byte(testBlock) })
	rw.Header().Set("Content-Type", "text/html")
	rw.Header().Set("Content-Encoding", "gzip")
	rw.Write(z.Bytes()[:z.Len()/2])
	before := len(rec.calls)
	rw.Abort()
	if len(rec.calls) != before || called {
		t.Fatalf("Abort wrote: %v after %d calls, block called %v", rec.calls, before, called)
	}
}
