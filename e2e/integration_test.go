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
