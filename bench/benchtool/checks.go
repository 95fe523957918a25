package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/seed5911dcdf/caddy-better-auth/internal/batest"
)

const stateID = `id="__BETTER_AUTH_STATE__"`

func newClient(conns int) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns = conns + 8
	tr.MaxIdleConnsPerHost = conns + 8
	tr.DisableCompression = true
	return &http.Client{
		Transport:     tr,
		Timeout:       30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

func pageRequest(ctx context.Context, url, cookie string) *http.Request {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	req.Header.Set("Accept", "text/html,application/xhtml+xml")
	if cookie != "" {
		req.Header.Set("Cookie", cookie)
	}
	return req
}

// stateQueries counts the queries of the injected state in body: -1 when
// there is no state element.
func stateQueries(body []byte) int {
	i := bytes.Index(body, []byte(stateID))
	if i < 0 {
		return -1
	}
	end := bytes.Index(body[i:], []byte("</script>"))
	if end < 0 {
		return -1
	}
	return bytes.Count(body[i:i+end], []byte(`"queryKey":`))
}

// setup signs a user up on the real Better Auth, creates an API key and a
// second device session, and writes the browser's cookie header to
// DIR/cookie (and the user's email and password, for a fresh sign-in).
func setup(args []string) error {
	fs := flag.NewFlagSet("setup", flag.ExitOnError)
	ba := fs.String("ba", "", "Better Auth origin")
	out := fs.String("out", "", "folder for cookie, email, password")
	fs.Parse(args)
	c := batest.NewClient(*ba, *ba)
	suffix := strconv.FormatInt(time.Now().UnixNano(), 36)
	// A second account first: the jar then holds two device sessions.
	if _, err := c.SignUp("bench-other-"+suffix+"@example.com", "bench password 123", "Other"); err != nil {
		return err
	}
	email, password := "bench-"+suffix+"@example.com", "bench password 456"
	if _, err := c.SignUp(email, password, "Bench User"); err != nil {
		return err
	}
	if st, body, _, err := c.PostJSON("/api/auth/api-key/create", map[string]string{"name": "bench key"}); err != nil || st != 200 {
		return fmt.Errorf("api-key/create: %d %s %v", st, body, err)
	}
	if s, err := c.GetSession(); err != nil || s == nil {
		return fmt.Errorf("get-session after sign-up: %v %v", s, err)
	}
	for name, v := range map[string]string{"cookie": cookieHeader(c), "email": email, "password": password} {
		if err := os.WriteFile(filepath.Join(*out, name), []byte(v), 0o600); err != nil {
			return err
		}
	}
	return nil
}

func cookieHeader(c *batest.Client) string {
	var parts []string
	for _, ck := range c.Cookies() {
		parts = append(parts, ck.Name+"="+ck.Value)
	}
	return strings.Join(parts, "; ")
}

// check fetches a page once and checks its status and injected state.
func check(args []string) error {
	fs := flag.NewFlagSet("check", flag.ExitOnError)
	url := fs.String("url", "", "page URL")
	cookie := fs.String("cookie", "", "Cookie header")
	status := fs.Int("status", 200, "expected status")
	queries := fs.Int("queries", -1, "expected number of injected queries (-1: no state element)")
	fs.Parse(args)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	resp, err := newClient(1).Do(pageRequest(ctx, *url, *cookie))
	if err != nil {
		return err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return err
	}
	q := stateQueries(body)
	msg := fmt.Sprintf("%s: status %d, %d bytes, queries %d", *url, resp.StatusCode, len(body), q)
	if loc := resp.Header.Get("Location"); loc != "" {
		msg += ", Location " + loc
	}
	fmt.Println("  check " + msg)
	if resp.StatusCode != *status || (resp.StatusCode == 200 && q != *queries) {
		return fmt.Errorf("want status %d and %d queries: %s", *status, *queries, msg)
	}
	return nil
}

func getCounts(url string) (map[string]int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	m := map[string]int{}
	return m, json.NewDecoder(resp.Body).Decode(&m)
}

func delta(before, after map[string]int) map[string]int {
	d := map[string]int{}
	for k, v := range after {
		if v-before[k] != 0 {
			d[k] = v - before[k]
		}
	}
	return d
}

func verdict(ok bool) string {
	if ok {
		return "PASS"
	}
	return "FAIL"
}

// cold signs in afresh (a credential nothing has seen), opens n
// connections, then sends n concurrent page requests with it and reads
// how many calls reached Better Auth, per endpoint.
func cold(args []string) error {
	fs := flag.NewFlagSet("cold", flag.ExitOnError)
	ba := fs.String("ba", "", "Better Auth origin (sign-in)")
	email := fs.String("email", "", "user email")
	password := fs.String("password", "", "user password")
	url := fs.String("url", "", "sidecar page with the five families")
	counts := fs.String("counts", "", "counting proxy's counts URL")
	n := fs.Int("n", 64, "concurrent requests")
	queries := fs.Int("queries", 6, "queries each page must carry")
	fs.Parse(args)

	c := batest.NewClient(*ba, *ba)
	if _, err := c.SignIn(*email, *password); err != nil {
		return err
	}
	cookie := cookieHeader(c)
	client := newClient(*n)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	// Open n keep-alive connections (signed-out requests: no backend call).
	var wg sync.WaitGroup
	for range *n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if resp, err := client.Do(pageRequest(ctx, *url, "")); err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}()
	}
	wg.Wait()

	before, err := getCounts(*counts)
	if err != nil {
		return err
	}
	start := make(chan struct{})
	var bad atomic.Int32
	var firstErr atomic.Value
	for range *n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			resp, err := client.Do(pageRequest(ctx, *url, cookie))
			if err != nil {
				bad.Add(1)
				firstErr.CompareAndSwap(nil, err.Error())
				return
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if q := stateQueries(body); resp.StatusCode != 200 || q != *queries {
				bad.Add(1)
				firstErr.CompareAndSwap(nil, fmt.Sprintf("status %d, %d queries", resp.StatusCode, q))
			}
		}()
	}
	t0 := time.Now()
	close(start)
	wg.Wait()
	took := time.Since(t0)
	after, err := getCounts(*counts)
	if err != nil {
		return err
	}
	d := delta(before, after)
	keys := make([]string, 0, len(d))
	for k := range d {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	ok := bad.Load() == 0 && len(d) == *queries
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s=%d", strings.TrimPrefix(k, "/api/auth"), d[k]))
		if d[k] != 1 {
			ok = false
		}
	}
	fmt.Printf("cold cache: %d concurrent requests, fresh credential, burst %v: backend calls %s; bad responses %d%s\n",
		*n, took.Round(time.Millisecond), strings.Join(parts, " "), bad.Load(), firstNote(&firstErr))
	fmt.Printf("RESULT cold %s: %d endpoints called, each exactly once: %v (target: exactly one call per family)\n", verdict(ok), len(d), ok)
	return nil
}

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}

func pct(d []time.Duration, p float64) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(len(s)-1, int(float64(len(s))*p))]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000) }

// overlap times page loads, one at a time, alternating between a plain
// proxy of the slow upstream and the sidecar (whose queries are slow too).
func overlap(args []string) error {
	fs := flag.NewFlagSet("overlap", flag.ExitOnError)
	plain := fs.String("plain", "", "plain proxy of the slow page")
	sidecar := fs.String("sidecar", "", "sidecar in front of the slow page, slow queries")
	cookie := fs.String("cookie", "", "Cookie header")
	n := fs.Int("n", 20, "requests each")
	queries := fs.Int("queries", 6, "queries each sidecar page must carry")
	fs.Parse(args)
	client := newClient(2)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	get := func(url, cookie string) (time.Duration, int, error) {
		t0 := time.Now()
		resp, err := client.Do(pageRequest(ctx, url, cookie))
		if err != nil {
			return 0, 0, err
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return 0, 0, fmt.Errorf("%s: status %d", url, resp.StatusCode)
		}
		return time.Since(t0), stateQueries(body), err
	}
	var tp, ts []time.Duration
	for i := -2; i < *n; i++ { // two warm-up rounds
		a, _, err := get(*plain, *cookie)
		if err != nil {
			return err
		}
		b, q, err := get(*sidecar, *cookie)
		if err != nil {
			return err
		}
		if q != *queries {
			return fmt.Errorf("sidecar page carried %d queries, want %d (queries cut by the deadline?)", q, *queries)
		}
		if i >= 0 {
			tp, ts = append(tp, a), append(ts, b)
		}
	}
	added := median(ts) - median(tp)
	ok := added < 25*time.Millisecond
	fmt.Printf("overlap: upstream sleeps 50 ms, 5 query endpoints sleep 50 ms, stale_time 0 (every query cold), %d requests each:\n", *n)
	fmt.Printf("  plain reverse_proxy: p50 %s  p90 %s  max %s\n", ms(median(tp)), ms(pct(tp, 0.9)), ms(slices.Max(tp)))
	fmt.Printf("  better_auth + 5 families: p50 %s  p90 %s  max %s  (all %d queries injected)\n", ms(median(ts)), ms(pct(ts, 0.9)), ms(slices.Max(ts)), *queries)
	fmt.Printf("RESULT overlap %s: page with sidecar p50 %s = plain + %s (target: about 50 ms in all, not 100; pass if added < 25 ms)\n", verdict(ok), ms(median(ts)), ms(added))
	return nil
}

// rss reads the resident set size of pid from /proc, in bytes.
func rss(pid int) (int64, error) {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10, err
		}
	}
	return 0, errors.New("no VmRSS")
}

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

// sampler keeps the peak RSS of pid, sampled every 20 ms.
type sampler struct {
	pid  int
	peak atomic.Int64
	stop chan struct{}
	done chan struct{}
}

func startSampler(pid int) *sampler {
	s := &sampler{pid: pid, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			if v, err := rss(pid); err == nil && v > s.peak.Load() {
				s.peak.Store(v)
			}
			select {
			case <-s.stop:
				return
			case <-t.C:
			}
		}
	}()
	return s
}

func (s *sampler) end() int64 {
	close(s.stop)
	<-s.done
	return s.peak.Load()
}

// mem10 streams 10 MiB pages through a plain proxy, then through the
// sidecar, conc at a time for dur each, sampling the caddy process's RSS.
func mem10(args []string) error {
	fs := flag.NewFlagSet("mem10", flag.ExitOnError)
	pid := fs.Int("pid", 0, "caddy pid")
	plain := fs.String("plain", "", "plain proxy of the big page")
	sidecar := fs.String("sidecar", "", "sidecar in front of the big page")
	cookie := fs.String("cookie", "", "Cookie header")
	conc := fs.Int("conc", 4, "concurrent streams")
	dur := fs.Duration("dur", 6*time.Second, "duration of each phase")
	fs.Parse(args)
	client := newClient(*conc)
	const want = 10 << 20

	// fetch reads one page, returning its size and whether the state sits
	// in its first 64 KiB.
	fetch := func(ctx context.Context, url string) (int64, bool, error) {
		resp, err := client.Do(pageRequest(ctx, url, *cookie))
		if err != nil {
			return 0, false, err
		}
		defer resp.Body.Close()
		head := make([]byte, 64<<10)
		n, err := io.ReadFull(resp.Body, head)
		if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
			return 0, false, err
		}
		rest, err := io.Copy(io.Discard, resp.Body)
		return int64(n) + rest, stateQueries(head[:n]) >= 1, err
	}
	phase := func(url string, injected bool, d time.Duration) (pages int64, mbps float64, peak int64, err error) {
		ctx, cancel := context.WithTimeout(context.Background(), d+30*time.Second)
		defer cancel()
		s := startSampler(*pid)
		var bytesRead, n atomic.Int64
		var firstErr atomic.Value
		deadline := time.Now().Add(d)
		t0 := time.Now()
		var wg sync.WaitGroup
		for range *conc {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for time.Now().Before(deadline) {
					size, inj, err := fetch(ctx, url)
					if err == nil && (inj != injected || (!injected && size != want) || (injected && size <= want)) {
						err = fmt.Errorf("%s: %d bytes, injected %v", url, size, inj)
					}
					if err != nil {
						firstErr.CompareAndSwap(nil, err)
						return
					}
					bytesRead.Add(size)
					n.Add(1)
				}
			}()
		}
		wg.Wait()
		el := time.Since(t0)
		peak = s.end()
		if e, _ := firstErr.Load().(error); e != nil {
			return 0, 0, 0, e
		}
		return n.Load(), float64(bytesRead.Load()) / (1 << 20) / el.Seconds(), peak, nil
	}

	// Warm-up: both paths at full load for a while, so that buffer pools
	// and the GC's heap goal have grown to their working size.
	warm := *dur / 3
	for _, u := range []struct {
		url string
		inj bool
	}{{*plain, false}, {*sidecar, true}} {
		if _, _, _, err := phase(u.url, u.inj, warm); err != nil {
			return err
		}
	}
	time.Sleep(500 * time.Millisecond)
	base, err := rss(*pid)
	if err != nil {
		return err
	}
	pp, pmb, ppeak, err := phase(*plain, false, *dur)
	if err != nil {
		return err
	}
	sp, smb, speak, err := phase(*sidecar, true, *dur)
	if err != nil {
		return err
	}
	end, _ := rss(*pid)
	growth := speak - base
	ok := growth < 10<<20
	fmt.Printf("10 MiB pages, %d concurrent streams, %v each (after %v of each as warm-up); caddy RSS after warm-up %s\n", *conc, *dur, warm, mib(base))
	fmt.Printf("  plain reverse_proxy: %d pages, %.0f MiB/s, peak RSS %s (%+.1f MiB)\n", pp, pmb, mib(ppeak), float64(ppeak-base)/(1<<20))
	fmt.Printf("  better_auth (injected): %d pages, %.0f MiB/s, peak RSS %s (%+.1f MiB); RSS at the end %s\n", sp, smb, mib(speak), float64(growth)/(1<<20), mib(end))
	fmt.Printf("RESULT mem10 %s: RSS peak %+.1f MiB over warm-up while streaming %d x 10 MiB at a time (target: flat; pass if < 10 MiB, one page; buffering would add >= %d MiB); throughput %.2f of plain\n",
		verdict(ok), float64(growth)/(1<<20), *conc, *conc*10, smb/pmb)
	return nil
}

// users sends one page request for each of n distinct signed-in users
// (a cache miss each, one get-session each at the stub) and samples RSS.
func users(args []string) error {
	fs := flag.NewFlagSet("users", flag.ExitOnError)
	pid := fs.Int("pid", 0, "caddy pid")
	url := fs.String("url", "", "sidecar page")
	counts := fs.String("counts", "", "stub's counts URL")
	n := fs.Int("n", 100_000, "distinct users")
	conc := fs.Int("conc", 32, "concurrent requests")
	cacheSize := fs.Int64("cache-size", 4<<20, "the sidecar's cache_size, bytes")
	limit := fs.Duration("limit", 120*time.Second, "give up after this long")
	fs.Parse(args)
	client := newClient(*conc)
	ctx, cancel := context.WithTimeout(context.Background(), *limit)
	defer cancel()

	base, err := rss(*pid)
	if err != nil {
		return err
	}
	before, err := getCounts(*counts)
	if err != nil {
		return err
	}
	s := startSampler(*pid)
	var next atomic.Int64
	var failed atomic.Int64
	var firstErr atomic.Value
	type mark struct {
		users int
		rss   int64
	}
	var marks []mark
	var mu sync.Mutex
	step := *n / 10
	t0 := time.Now()
	var wg sync.WaitGroup
	for range *conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1))
				if i > *n || ctx.Err() != nil {
					return
				}
				cookie := fmt.Sprintf("better-auth.session_token=user%07d.c2lnbmF0dXJl", i)
				resp, err := client.Do(pageRequest(ctx, *url, cookie))
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 || stateQueries(body) != 1 {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, fmt.Sprintf("status %d, queries %d", resp.StatusCode, stateQueries(body)))
				}
				if i%step == 0 || i == 1000 {
					v, _ := rss(*pid)
					mu.Lock()
					marks = append(marks, mark{i, v})
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	el := time.Since(t0)
	peak := s.end()
	time.Sleep(500 * time.Millisecond)
	end, _ := rss(*pid)
	after, err := getCounts(*counts)
	if err != nil {
		return err
	}
	calls := delta(before, after)["/api/auth/get-session"]
	slices.SortFunc(marks, func(a, b mark) int { return a.users - b.users })
	var line []string
	var at1k, atHalf, atEnd int64
	for _, m := range marks {
		line = append(line, fmt.Sprintf("%dk:%s", m.users/1000, mib(m.rss)))
		if m.users == 1000 {
			at1k = m.rss
		}
		if m.users <= *n/2 {
			atHalf = m.rss
		}
		atEnd = m.rss
	}
	done := int(min(next.Load(), int64(*n)))
	fmt.Printf("%d distinct users (%d concurrent) in %v (%.0f req/s), cache_size %s, get-session calls %d, failures %d%s\n",
		done, *conc, el.Round(100*time.Millisecond), float64(done)/el.Seconds(), mib(*cacheSize), calls, failed.Load(), firstNote(&firstErr))
	fmt.Printf("  RSS: start %s, by users %s; peak %s; after %s\n", mib(base), strings.Join(line, " "), mib(peak), mib(end))
	// Go's collector lets the heap reach twice the live data (GOGC=100), so
	// cache_size bytes of entries may take up to 2 x cache_size; the fixed
	// overhead is what the process holds at 1k users (cache far from full)
	// plus 8 MiB of slack.
	bound := at1k + 2**cacheSize + 8<<20
	// Flat: the second half of the users (tens of MiB of entries if kept)
	// adds less than half the cache's size (the collector's sawtooth).
	flat := atEnd-atHalf < *cacheSize/2
	ok := ctx.Err() == nil && failed.Load() == 0 && done == *n && calls == *n && peak <= bound && flat
	fmt.Printf("RESULT users %s: peak RSS %s = RSS at 1k users + %.1f x cache_size (bound %s: RSS at 1k %s + 2 x cache_size %s + 8 MiB); %+.1f MiB from %dk to %dk users (flat: %v)\n",
		verdict(ok), mib(peak), float64(peak-at1k)/float64(*cacheSize), mib(bound), mib(at1k), mib(*cacheSize), float64(atEnd-atHalf)/(1<<20), *n/2000, *n/1000, flat)
	return nil
}

// firstNote is the first failure a check recorded, as "; first: ...", or ""
// when there was none.
func firstNote(v *atomic.Value) string {
	if s, ok := v.Load().(string); ok {
		return "; first: " + s
	}
	return ""
}
