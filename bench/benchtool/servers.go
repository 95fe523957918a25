package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/seed5911dcdf/caddy-better-auth/internal/benchpage"
)

// PageSize is the size of the static upstream page.
const PageSize = 20 << 10

// BigSize is the size of the streamed big page.
const BigSize = 10 << 20

// page is a typical server-rendered page of PageSize bytes.
var page = benchpage.Page(PageSize)

// bigHead starts the big page; bigRow fills it, 32 KiB at a time.
var (
	bigHead = []byte("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>Big</title>\n</head>\n<body>\n")
	bigRow  = func() []byte {
		row := "<div class=\"row\"><a href=\"/items/42\">Item forty-two</a> <span class=\"muted\">updated 3 minutes ago</span></div>\n"
		b := make([]byte, 0, 32<<10)
		for len(b)+len(row) <= 32<<10 {
			b = append(b, row...)
		}
		return b
	}()
)

// counter counts requests per path.
type counter struct {
	mu sync.Mutex
	m  map[string]int
}

func (c *counter) add(path string) {
	c.mu.Lock()
	c.m[path]++
	c.mu.Unlock()
}

func (c *counter) serveCounts(w http.ResponseWriter, _ *http.Request) {
	c.mu.Lock()
	b, _ := json.Marshal(c.m)
	c.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.Write(b)
}

// serve runs the loopback servers until SIGTERM/SIGINT or -max elapses.
func serve(args []string) error {
	fs := flag.NewFlagSet("serve", flag.ExitOnError)
	upAddr := fs.String("upstream", "", "address of the static upstream")
	cpAddr := fs.String("countproxy", "", "address of the counting proxy in front of -ba")
	ba := fs.String("ba", "", "Better Auth origin behind the counting proxy")
	stubAddr := fs.String("stub", "", "address of the Better Auth stub")
	stubDelay := fs.Duration("stub-delay", 50*time.Millisecond, "delay of the stub's query endpoints under /slowauth")
	maxLife := fs.Duration("max", 15*time.Minute, "exit after this long whatever happens")
	fs.Parse(args)

	errc := make(chan error, 3)
	listen := func(addr string, h http.Handler) {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			errc <- err
			return
		}
		go func() { errc <- (&http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}).Serve(l) }()
	}
	if *upAddr != "" {
		listen(*upAddr, http.HandlerFunc(upstream))
	}
	if *cpAddr != "" {
		u, err := url.Parse(*ba)
		if err != nil || u.Host == "" {
			return fmt.Errorf("-ba %q: not an origin", *ba)
		}
		listen(*cpAddr, countingProxy(u))
	}
	if *stubAddr != "" {
		listen(*stubAddr, newStub(*stubDelay))
	}
	fmt.Println("benchtool servers ready")
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	select {
	case <-sig:
		return nil
	case <-time.After(*maxLife):
		return errors.New("exceeded -max, exiting")
	case err := <-errc:
		return err
	}
}

// upstream serves the static page at any path; /slow/* after 50 ms;
// /big/* a 10 MiB page, streamed.
func upstream(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	switch {
	case strings.HasPrefix(r.URL.Path, "/big/"):
		h.Set("Content-Length", strconv.Itoa(BigSize))
		w.Write(bigHead)
		left := BigSize - len(bigHead)
		for left > 0 {
			n := min(left, len(bigRow))
			if _, err := w.Write(bigRow[:n]); err != nil {
				return
			}
			left -= n
		}
		return
	case strings.HasPrefix(r.URL.Path, "/slow/"):
		time.Sleep(50 * time.Millisecond)
	}
	h.Set("Content-Length", strconv.Itoa(len(page)))
	h.Set("ETag", `"bench-page-v1"`)
	h.Set("Last-Modified", "Mon, 01 Dec 2025 00:00:00 GMT")
	w.Write(page)
}

// countingProxy passes everything to the real Better Auth and counts the
// calls per path; GET /__bench/counts reads the counts.
func countingProxy(ba *url.URL) http.Handler {
	c := &counter{m: map[string]int{}}
	rp := httputil.NewSingleHostReverseProxy(ba)
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 256
	rp.Transport = tr
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/__bench/counts" {
			c.serveCounts(w, r)
			return
		}
		c.add(r.URL.Path)
		rp.ServeHTTP(w, r)
	})
}

// stub is a Better Auth stand-in: any session_token cookie is a signed-in
// user of its own ("tok.sig" is user u_tok); the answers have the shape
// and about the size of the real ones. Under /slowauth the query endpoints
// (not get-session) answer after the delay.
type stub struct {
	counter
	delay time.Duration
}

func newStub(delay time.Duration) *stub {
	return &stub{counter: counter{m: map[string]int{}}, delay: delay}
}

func (s *stub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/__bench/counts" {
		s.serveCounts(w, r)
		return
	}
	s.add(r.URL.Path)
	ep, slow := strings.CutPrefix(r.URL.Path, "/slowauth")
	if !slow {
		ep = strings.TrimPrefix(ep, "/api/auth")
	}
	token := ""
	if c, err := r.Cookie("better-auth.session_token"); err == nil {
		token, _, _ = strings.Cut(c.Value, ".")
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	if ep == "/get-session" {
		if token == "" {
			w.Write([]byte("null"))
			return
		}
		fmt.Fprintf(w, `{"session":{"expiresAt":"2030-01-01T00:00:00.000Z","token":%[1]q,"createdAt":"2025-12-01T10:00:00.000Z","updatedAt":"2025-12-01T10:00:00.000Z","ipAddress":"127.0.0.1","userAgent":"benchtool","userId":"u_%[1]s","activeOrganizationId":null,"id":"s_%[1]s"},"user":{"name":"Bench User","email":"u_%[1]s@example.com","emailVerified":false,"image":null,"createdAt":"2025-12-01T10:00:00.000Z","updatedAt":"2025-12-01T10:00:00.000Z","id":"u_%[1]s"}}`, token)
		return
	}
	if token == "" {
		w.WriteHeader(http.StatusUnauthorized)
		w.Write([]byte(`{"message":"Unauthorized","code":"UNAUTHORIZED"}`))
		return
	}
	if slow {
		time.Sleep(s.delay)
	}
	switch ep {
	case "/list-accounts":
		fmt.Fprintf(w, `[{"id":"a_%[1]s","providerId":"credential","createdAt":"2025-12-01T10:00:00.000Z","updatedAt":"2025-12-01T10:00:00.000Z","accountId":"u_%[1]s","userId":"u_%[1]s","scopes":[]}]`, token)
	case "/list-sessions":
		fmt.Fprintf(w, `[{"expiresAt":"2030-01-01T00:00:00.000Z","token":%[1]q,"createdAt":"2025-12-01T10:00:00.000Z","updatedAt":"2025-12-01T10:00:00.000Z","ipAddress":"127.0.0.1","userAgent":"benchtool","userId":"u_%[1]s","id":"s_%[1]s"}]`, token)
	case "/multi-session/list-device-sessions":
		fmt.Fprintf(w, `[{"session":{"token":%[1]q,"userId":"u_%[1]s","id":"s_%[1]s"},"user":{"name":"Bench User","email":"u_%[1]s@example.com","id":"u_%[1]s"}}]`, token)
	case "/passkey/list-user-passkeys":
		w.Write([]byte(`[]`))
	case "/api-key/list":
		fmt.Fprintf(w, `[{"id":"k_%[1]s","name":"bench","start":"abc","prefix":null,"userId":"u_%[1]s","enabled":true,"createdAt":"2025-12-01T10:00:00.000Z"}]`, token)
	default:
		w.Write([]byte(`[]`))
	}
}
