package e2e

// BenchmarkThroughCaddy measures a warm page request end to end through an
// in-process Caddy on loopback: eight keep-alive clients (as bench/run.sh's
// wrk), Caddy, reverse_proxy and an upstream serving a 20 KiB page with a
// Content-Length, for plain reverse_proxy and for better_auth with the
// session and with five families. Clients and upstream run in the same
// process: ns/op is wall time per request with all of them busy, cpu-ns/op
// the process's CPU per request, and allocs/op counts the whole stack, so
// the difference between the variants includes what the in-process
// BenchmarkServeHTTP leaves out (sockets, chunking, reverse_proxy):
//
//	go test -run '^$' -bench ThroughCaddy -benchtime 5000x ./e2e
//
// On a shared machine the time figures drift by more than the difference
// between the variants; the allocations do not. bench/run.sh compares the
// variants' throughput in alternating rounds instead.

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/seed5911dcdf/caddy-better-auth/internal/benchpage"
	"github.com/seed5911dcdf/caddy-better-auth/internal/sidecar"
)

func BenchmarkThroughCaddy(b *testing.B) {
	backend := httptest.NewServer(benchpage.Backend())
	defer backend.Close()
	benchPage := benchpage.Page(20 << 10)
	length := fmt.Sprint(len(benchPage))
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Content-Length", length)
		w.Write(benchPage)
	}))
	defer upstream.Close()
	up := strings.TrimPrefix(upstream.URL, "http://")

	port := sidecar.FreePort(b)
	ports := [3]int{sidecar.FreePort(b), sidecar.FreePort(b), sidecar.FreePort(b)}
	sidecar.Load(b, sidecar.Globals(port)+fmt.Sprintf(`
http://127.0.0.1:%[1]d {
	reverse_proxy %[4]s
}
http://127.0.0.1:%[2]d {
	better_auth {
		backend %[5]s
		stale_time 1h
		guard /*
	}
	reverse_proxy %[4]s
}
http://127.0.0.1:%[3]d {
	better_auth {
		backend %[5]s
		stale_time 1h
		guard /*
		prefetch /* {
			list_accounts
			list_sessions
			list_device_sessions
			list_passkeys
			list_api_keys
		}
	}
	reverse_proxy %[4]s
}
`, ports[0], ports[1], ports[2], up, backend.URL))

	for i, v := range []struct {
		name    string
		queries int
	}{{"plain", 0}, {"session", 1}, {"five", 6}} {
		b.Run(v.name, func(b *testing.B) {
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true}}
			defer client.CloseIdleConnections()
			url := fmt.Sprintf("http://127.0.0.1:%d/settings/account", ports[i])
			get := func(buf []byte) ([]byte, error) {
				req, _ := http.NewRequest("GET", url, nil)
				req.Header.Set("Accept", "text/html,application/xhtml+xml")
				req.Header.Set("Cookie", "theme=dark; better-auth.session_token=tok1.c2lnbmF0dXJlc2lnbmF0dXJl")
				resp, err := client.Do(req)
				if err != nil {
					return nil, err
				}
				defer resp.Body.Close()
				n, _ := io.ReadFull(resp.Body, buf)
				if rest, _ := io.Copy(io.Discard, resp.Body); rest > 0 || resp.StatusCode != 200 {
					return nil, fmt.Errorf("status %d, %d bytes over %d", resp.StatusCode, rest, len(buf))
				}
				return buf[:n], nil
			}
			buf := make([]byte, 64<<10)
			for range 3 { // warm the cache
				get(buf)
			}
			page, err := get(buf)
			if err != nil {
				b.Fatal(err)
			}
			if got := bytes.Count(page, []byte(`"queryKey":`)); got != v.queries {
				b.Fatalf("%d queries injected, want %d", got, v.queries)
			}
			b.SetBytes(int64(len(benchPage)))
			b.ReportAllocs()
			b.SetParallelism(4) // 8 clients on 2 cores, as bench/run.sh's wrk
			b.ResetTimer()
			cpu0 := processCPU()
			b.RunParallel(func(pb *testing.PB) {
				buf := make([]byte, 64<<10)
				for pb.Next() {
					if _, err := get(buf); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(processCPU()-cpu0)/float64(b.N), "cpu-ns/op")
		})
	}
}

// processCPU is the CPU time, user and system, the process has used so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		panic(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
