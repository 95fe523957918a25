package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/seed5911dcdf/caddy-better-auth/internal/sidecar"
)

// localLocation: what a browser would resolve Location to stays on the
// site: one leading slash, no backslash, no control or space characters,
// no scheme or host.
func localLocation(loc string) error {
	if loc == "" {
		return nil
	}
	if !strings.HasPrefix(loc, "/") || strings.HasPrefix(loc, "//") {
		return fmt.Errorf("not a single-slash path")
	}
	for _, c := range loc {
		if c == '\\' || c <= ' ' || c == 0x7f {
			return fmt.Errorf("holds %q", c)
		}
	}
	u, err := url.Parse(loc)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil {
		return fmt.Errorf("parses as %v (%v)", u, err)
	}
	base, _ := url.Parse("http://site.test/")
	if r := base.ResolveReference(u); r.Host != "site.test" {
		return fmt.Errorf("resolves to host %q", r.Host)
	}
	return nil
}

func TestHostileRedirectCorpus(t *testing.T) {
	raw, err := os.ReadFile("../testdata/hostile/redirects.txt")
	if err != nil {
		t.Fatal(err)
	}
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if c, _ := r.Cookie("better-auth.session_token"); c != nil && c.Value == "good" {
			io.WriteString(w, `{"session":{"id":"s","token":"good"},"user":{"id":"u"}}`)
			return
		}
		io.WriteString(w, "null")
	}))
	defer backend.Close()
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		io.WriteString(w, "<html><head></head><body>ok</body></html>")
	}))
	defer upstream.Close()
	port := sidecar.FreePort(t)
	sidecar.Load(t, sidecar.Globals(port)+fmt.Sprintf(`http://site.test:%d {
	better_auth {
		backend %s
		guard *
		guest /auth/sign-in /auth/sign-up
	}
	reverse_proxy %s
}
`, port, backend.URL, strings.TrimPrefix(upstream.URL, "http://")))

	addr := fmt.Sprintf("127.0.0.1:%d", port)
	rawGet := func(target, cookie string) (int, string) {
		conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(10 * time.Second))
		req := "GET " + target + " HTTP/1.1\r\nHost: site.test\r\nAccept: text/html\r\nSec-Fetch-Mode: navigate\r\nConnection: close\r\n"
		if cookie != "" {
			req += "Cookie: better-auth.session_token=" + cookie + "\r\n"
		}
		fmt.Fprint(conn, req+"\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatalf("%q: %v", target, err)
		}
		resp.Body.Close()
		return resp.StatusCode, resp.Header.Get("Location")
	}

	n := 0
	for _, line := range strings.Split(string(raw), "\n") {
		kind, value, ok := strings.Cut(line, " ")
		if !ok || strings.HasPrefix(line, "#") {
			continue
		}
		n++
		var status int
		var loc, target string
		switch kind {
		case "path":
			target = value
			status, loc = rawGet(target, "")
		case "to":
			target = "/auth/sign-in?redirectTo=" + url.QueryEscape(value)
			status, loc = rawGet(target, "good")
		default:
			t.Fatalf("bad corpus line %q", line)
		}
		if err := localLocation(loc); err != nil {
			t.Errorf("%s %q: status %d, Location %q: %v", kind, value, status, loc, err)
			continue
		}
		if kind == "path" && status == http.StatusFound {
			u, _ := url.Parse(loc)
			to := u.Query().Get("redirectTo")
			if !strings.HasPrefix(loc, "/auth/sign-in?redirectTo=") || localLocation(to) != nil {
				t.Errorf("path %q: redirectTo %q is not a local path", value, to)
			}
		}
		if kind == "to" && status != http.StatusFound {
			t.Errorf("to %q: signed-in guest got %d, want a redirect", value, status)
		}
		if kind == "path" && status == 200 {
			t.Errorf("path %q: a guarded page was served to a signed-out visitor", value)
		}
	}
	if n < 60 {
		t.Fatalf("corpus has %d entries, want at least 60", n)
	}
}
