package e2e

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/seed5911dcdf/caddy-better-auth/internal/sidecar"
)

// readmeCaddyfile is the README's example with its ports moved to the
// test's servers.
func readmeCaddyfile(t *testing.T, port int, backend, upstream string) string {
	src, err := os.ReadFile("../testdata/caddyfile/readme-example.caddyfile")
	if err != nil {
		t.Fatal(err)
	}
	s := string(src)
	s = strings.Replace(s, "example.com {", fmt.Sprintf("http://example.com:%d {", port), 1)
	s = strings.Replace(s, "http://127.0.0.1:3000", backend, 1)
	s = strings.Replace(s, "127.0.0.1:5173", strings.TrimPrefix(upstream, "http://"), 1)
	return sidecar.Globals(port) + s
}

// TestReadmeCaddyfile loads the README's Caddyfile, then its adapted JSON,
// and checks the whole path of a request through both.
func TestReadmeCaddyfile(t *testing.T) {
	var sessionCalls atomic.Int32
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/auth/get-session" {
			http.NotFound(w, r)
			return
		}
		sessionCalls.Add(1)
		if c, _ := r.Cookie("better-auth.session_token"); c != nil && c.Value == "good" {
			io.WriteString(w, `{"session":{"id":"s1","token":"good","userId":"u1"},"user":{"id":"u1","name":"Ada","email":"ada@example.com"}}`)
			return
		}
		io.WriteString(w, "null")
	}))
	defer backend.Close()
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprintf(w, "<!doctype html><html><head><title>%s</title></head><body>page %s</body></html>", r.URL.Path, r.URL.Path)
	}))
	defer upstream.Close()

	port := sidecar.FreePort(t)
	src := readmeCaddyfile(t, port, backend.URL, upstream.URL)
	cfgJSON, err := sidecar.Adapt(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, form := range []string{"caddyfile", "json"} {
		t.Run(form, func(t *testing.T) {
			if form == "caddyfile" {
				sidecar.Load(t, src)
			} else {
				sidecar.LoadJSON(t, cfgJSON)
			}
			base := fmt.Sprintf("http://127.0.0.1:%d", port)
			client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
			get := func(path, cookie string, hdr ...string) (*http.Response, string) {
				req, _ := http.NewRequest("GET", base+path, nil)
				req.Host = fmt.Sprintf("example.com:%d", port)
				req.Header.Set("Accept", "text/html")
				if cookie != "" {
					req.Header.Set("Cookie", cookie)
				}
				for i := 0; i+1 < len(hdr); i += 2 {
					req.Header.Set(hdr[i], hdr[i+1])
				}
				resp, err := client.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				return resp, string(b)
			}
			resp, _ := get("/settings/profile?tab=1", "")
			if resp.StatusCode != 302 || resp.Header.Get("Location") != "/auth/sign-in?redirectTo=%2Fsettings%2Fprofile%3Ftab%3D1" {
				t.Fatalf("signed out: %d %q", resp.StatusCode, resp.Header.Get("Location"))
			}
			resp, _ = get("/dashboard/x", "", "Sec-Fetch-Mode", "cors")
			if resp.StatusCode != 401 {
				t.Fatalf("API call signed out: %d", resp.StatusCode)
			}
			resp, body := get("/settings/profile", "better-auth.session_token=good")
			if resp.StatusCode != 200 || !strings.Contains(body, "page /settings/profile") ||
				!strings.Contains(body, `<script type="application/json" id="__BETTER_AUTH_STATE__">`) || !strings.Contains(body, `"name":"Ada"`) {
				t.Fatalf("signed in: %d %s", resp.StatusCode, body)
			}
			if resp.Header.Get("Cache-Control") != "private, no-store" {
				t.Fatalf("Cache-Control %q", resp.Header.Get("Cache-Control"))
			}
			resp, _ = get("/auth/sign-in?redirectTo=%2Fdashboard%2Fhome", "better-auth.session_token=good")
			if resp.StatusCode != 302 || resp.Header.Get("Location") != "/dashboard/home" {
				t.Fatalf("guest: %d %q", resp.StatusCode, resp.Header.Get("Location"))
			}
			resp, body = get("/about", "")
			if resp.StatusCode != 200 || !strings.Contains(body, `"queries":[{"queryKey":["auth","getSession"]`) || !strings.Contains(body, `"data":null`) {
				t.Fatalf("unguarded signed out: %d %s", resp.StatusCode, body)
			}
		})
	}
	if n := sessionCalls.Load(); n < 1 || n > 4 {
		t.Fatalf("%d get-session calls", n)
	}
}

// TestUpstreamLength: through Caddy, an injected page whose upstream
// declared its length arrives whole (chunked, without Content-Length), and
// one whose upstream breaks off before its declared length never looks
// complete to the client. (The second holds end to end: reverse_proxy
// panics and net/http never ends the chunked body; that the sidecar sends
// nothing of a gathered page then is TestResponseWriterAbort's.)
func TestUpstreamLength(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"session":{"id":"s1","token":"good","userId":"u1"},"user":{"id":"u1","name":"Ada","email":"ada@example.com"}}`)
	}))
	defer backend.Close()
	body := "<!doctype html><html><head><title>t</title></head><body>" + strings.Repeat("<p>line</p>\n", 2500) + "</body></html>"
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.Header().Set("Content-Length", fmt.Sprint(len(body)))
		if r.URL.Path == "/whole" {
			io.WriteString(w, body)
			return
		}
		io.WriteString(w, body[:len(body)/2])
		w.(http.Flusher).Flush()
		conn, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		conn.Close()
	}))
	defer upstream.Close()

	port := sidecar.FreePort(t)
	sidecar.Load(t, sidecar.Globals(port)+fmt.Sprintf(`
http://127.0.0.1:%d {
	better_auth {
		backend %s
		guard /*
	}
	reverse_proxy %s
}
`, port, backend.URL, strings.TrimPrefix(upstream.URL, "http://")))
	get := func(path string) (*http.Response, string, error) {
		req, _ := http.NewRequest("GET", fmt.Sprintf("http://127.0.0.1:%d%s", port, path), nil)
		req.Header.Set("Cookie", "better-auth.session_token=good")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return nil, "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return resp, string(b), err
	}
	resp, got, err := get("/whole")
	if err != nil {
		t.Fatal(err)
	}
	head, rest, _ := strings.Cut(body, "<title>")
	if resp.StatusCode != 200 || !strings.HasPrefix(got, head) || !strings.HasSuffix(got, "<title>"+rest) ||
		!strings.Contains(got, `"name":"Ada"`) {
		t.Fatalf("whole page: %d %.300q", resp.StatusCode, got)
	}
	if resp.ContentLength != -1 || len(resp.TransferEncoding) != 1 || resp.Header.Get("Content-Length") != "" {
		t.Fatalf("whole page: length %d, Transfer-Encoding %v", resp.ContentLength, resp.TransferEncoding)
	}
	for range 3 {
		resp, got, err = get("/broken")
		if err == nil {
			t.Fatalf("a page broken off upstream reached the client as complete: %d, %d bytes", resp.StatusCode, len(got))
		}
	}
}
