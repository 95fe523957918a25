package e2e

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/seed5911dcdf/caddy-better-auth/internal/sidecar"
)

// Config reloads (as `caddy reload` does them) under load drop no request
// and keep the cache: the session is looked up once for all of it.
func TestReloadUnderLoadKeepsCache(t *testing.T) {
	var sessionCalls atomic.Int32
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sessionCalls.Add(1)
		io.WriteString(w, `{"session":{"id":"s","token":"t"},"user":{"id":"reload-user"}}`)
	}))
	defer backend.Close()
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		io.WriteString(w, "<html><head></head><body>ok</body></html>")
	}))
	defer upstream.Close()
	port := sidecar.FreePort(t)
	config := func(generation int) []byte {
		cfg, err := sidecar.Adapt(sidecar.Globals(port) + fmt.Sprintf(`http://127.0.0.1:%d {
	header X-Generation %d
	better_auth {
		backend %s
		stale_time 60s
		guard /settings/* /gen%d/*
	}
	reverse_proxy %s
}
`, port, generation, backend.URL, generation, strings.TrimPrefix(upstream.URL, "http://")))
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	sidecar.LoadJSON(t, config(0))

	stop := make(chan struct{})
	var ok, failed, resets atomic.Int32
	var wg sync.WaitGroup
	client := &http.Client{Timeout: 10 * time.Second}
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				req, _ := http.NewRequest("GET", fmt.Sprintf("http://127.0.0.1:%d/settings/x", port), nil)
				req.Header.Set("Cookie", "better-auth.session_token=t")
				req.Header.Set("Accept", "text/html")
				resp, err := client.Do(req)
				if err != nil && (errors.Is(err, syscall.ECONNRESET) || errors.Is(err, io.EOF)) {
					// At the instant of a reload Caddy binds a new
					// SO_REUSEPORT socket and closes the old one; Linux
					// resets connections still queued on the old one
					// before any byte is read. Browsers retry such an
					// idempotent GET once; so does this client. It is
					// counted: it never reached the handler.
					resets.Add(1)
					resp, err = client.Do(req)
				}
				if err != nil {
					failed.Add(1)
					t.Logf("request failed: %v", err)
					continue
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 || !strings.Contains(string(body), "reload-user") {
					failed.Add(1)
					t.Logf("status %d: %.200s", resp.StatusCode, body)
					continue
				}
				ok.Add(1)
			}
		}()
	}
	for gen := 1; gen <= 5; gen++ {
		time.Sleep(150 * time.Millisecond)
		sidecar.LoadJSON(t, config(gen))
	}
	time.Sleep(150 * time.Millisecond)
	close(stop)
	wg.Wait()
	if failed.Load() != 0 || ok.Load() < 50 {
		t.Fatalf("%d requests failed, %d succeeded across 5 reloads", failed.Load(), ok.Load())
	}
	t.Logf("%d requests over 5 reloads, %d connection resets at the socket handoff retried", ok.Load(), resets.Load())
	if n := sessionCalls.Load(); n != 1 {
		t.Fatalf("%d get-session calls: the cache did not survive the reloads", n)
	}
}
