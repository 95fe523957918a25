package e2e

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/seed5911dcdf/caddy-better-auth/internal/batest"
	"github.com/seed5911dcdf/caddy-better-auth/internal/sidecar"
)

// redisServer runs Debian's redis-server on a loopback port; it fails the
// test when redis-server is missing.
type redisServer struct {
	t    *testing.T
	port int
	cmd  *exec.Cmd
}

func startRedis(t *testing.T, port int) *redisServer {
	t.Helper()
	path, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("redis-server is required (apt-get install redis-server): %v", err)
	}
	r := &redisServer{t: t, port: port}
	r.cmd = exec.Command(path, "--port", fmt.Sprint(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no")
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("redis-server did not start: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Cleanup(r.stop)
	return r
}

func (r *redisServer) stop() {
	if r.cmd != nil && r.cmd.Process != nil {
		r.cmd.Process.Kill()
		r.cmd.Wait()
		r.cmd = nil
	}
}

// Two sidecar replicas, each with its own cache, share invalidations
// through a real Redis, in front of one real Better Auth: a sign-out seen by
// A clears B's cached session well inside the stale time; with Redis
// stopped both keep serving, and once it is back they share again.
func TestReplicasShareInvalidationsThroughRedis(t *testing.T) {
	redisPort := sidecar.FreePort(t)
	redis := startRedis(t, redisPort)
	portA, portB := sidecar.FreePort(t), sidecar.FreePort(t)
	urlA, urlB := fmt.Sprintf("http://127.0.0.1:%d", portA), fmt.Sprintf("http://127.0.0.1:%d", portB)
	ba := batest.Start(t, batest.Options{BaseURL: urlA, TrustedOrigins: []string{urlA, urlB}})
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprint(w, "<html><head></head><body>app</body></html>")
	}))
	defer upstream.Close()
	site := func(addr string, cacheSize string) string {
		return fmt.Sprintf(`%s {
	better_auth {
		backend %s
		stale_time 60s
		cache_size %s
		guard /settings/*
		invalidation redis://127.0.0.1:%d/0
	}
	handle /api/auth/* {
		reverse_proxy %s
	}
	handle {
		reverse_proxy %s
	}
}
`, addr, ba.URL, cacheSize, redisPort, strings.TrimPrefix(ba.URL, "http://"), strings.TrimPrefix(upstream.URL, "http://"))
	}
	// Globals give one http_port; both sites name their own.
	sidecar.Load(t, sidecar.Globals(portA)+site(urlA, "8MiB")+site(urlB, "9MiB"))

	// A user signed in at A; the same cookie on B (replica B behind the
	// same load balancer), its session cached there for a minute.
	signedIn := func(email string) (a, b *batest.Client) {
		a = batest.NewClient(urlA, urlA)
		if _, err := a.SignUp(email, "correct horse battery staple", "Replica"); err != nil {
			t.Fatal(err)
		}
		b = batest.NewClient(urlB, urlB)
		u, _ := url.Parse(urlB)
		for _, c := range a.Cookies() {
			b.Jar().SetCookies(u, []*http.Cookie{{Name: c.Name, Value: c.Value, Path: "/"}})
		}
		if st := pageStatus(t, b); st != 200 {
			t.Fatalf("B before sign-out: %d", st)
		}
		return a, b
	}
	redirectedWithin := func(b *batest.Client, d time.Duration) bool {
		deadline := time.Now().Add(d)
		for time.Now().Before(deadline) {
			if pageStatus(t, b) == 302 {
				return true
			}
			time.Sleep(20 * time.Millisecond)
		}
		return false
	}

	a, b := signedIn("replica1@example.com")
	if err := a.SignOut(); err != nil {
		t.Fatal(err)
	}
	if !redirectedWithin(b, 3*time.Second) {
		t.Fatal("B still served the signed-out session 3 s after A saw the sign-out (stale time 60 s)")
	}

	// Redis stops: both replicas keep serving.
	redis.stop()
	a, b = signedIn("replica2@example.com")
	if st := pageStatus(t, a); st != 200 {
		t.Fatalf("A with Redis down: %d", st)
	}
	if err := a.SignOut(); err != nil {
		t.Fatalf("sign-out through A with Redis down: %v", err)
	}

	// Redis is back on the same port: sharing resumes.
	startRedis(t, redisPort)
	deadline := time.Now().Add(30 * time.Second)
	for round := 3; ; round++ {
		a, b := signedIn(fmt.Sprintf("replica%d@example.com", round))
		if err := a.SignOut(); err != nil {
			t.Fatal(err)
		}
		if redirectedWithin(b, 2*time.Second) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the replicas did not share invalidations again after Redis came back")
		}
	}
}

func pageStatus(t *testing.T, c *batest.Client) int {
	t.Helper()
	resp, err := c.Do("GET", "/settings/account", nil, http.Header{"Accept": {"text/html"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}
