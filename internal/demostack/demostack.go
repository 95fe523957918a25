// Package demostack runs the demo of examples/demo inside a test, as
// `make demo` (examples/demo/run.sh) runs it, but on free loopback ports:
//
//   - `npm ci` in examples/demo when node_modules is missing or older than
//     the lock file, and `npm run build` once per test process;
//   - the demo frontend (`node examples/demo/server.mjs`, HOST/PORT from the
//     environment);
//   - a real Better Auth server (internal/batest) whose base URL and trusted
//     origin are the sidecar's URL;
//   - Caddy in-process (internal/sidecar) loading examples/demo/Caddyfile with
//     its addresses moved to the servers above.
//
// Node.js and npm must be on PATH, and Chromium must be installed for the
// browser tests (see Chromium): without them the test fails; nothing is
// skipped.
//
// Caddy runs in-process, so one test binary runs one stack at a time, as
// with every other sidecar test.
package demostack

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/seed5911dcdf/caddy-better-auth/internal/batest"
	"github.com/seed5911dcdf/caddy-better-auth/internal/sidecar"
)

// Password is the password of every user that Stack.SignUp makes.
const Password = "correct horse battery staple"

// The addresses examples/demo/Caddyfile uses for Better Auth and for the
// frontend (see examples/demo/run.sh); Start moves both.
const (
	demoBackend  = "127.0.0.1:3000"
	demoFrontend = "127.0.0.1:5173"
)

const (
	npmCITimeout     = 10 * time.Minute
	buildTimeout     = 3 * time.Minute
	frontendReadyMax = 30 * time.Second
)

// Stack is a running demo: the sidecar in front of the demo frontend and a
// Better Auth server.
type Stack struct {
	// URL is the sidecar's origin, e.g. http://127.0.0.1:41234: the URL a
	// browser opens, and Better Auth's base URL and trusted origin.
	URL string
	// BA is the Better Auth server (the Caddyfile's backend and the upstream
	// of /api/auth/*).
	BA *batest.Server
	// FrontendURL is the demo frontend's own origin (server.mjs).
	FrontendURL string
	// Caddyfile is the configuration the sidecar runs: the demo's
	// Caddyfile with its addresses moved.
	Caddyfile string
	// Root is the module root; DemoDir is examples/demo below it.
	Root    string
	DemoDir string
}

// Start builds and starts the demo for the test and stops it when the test
// ends. It fails the test when anything is missing or does not start.
func Start(t testing.TB) *Stack {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatal("demostack: node (Node.js 20 or newer) is not on PATH: it is needed to build and serve the demo in examples/demo and to run Better Auth")
	}
	if _, err := exec.LookPath("npm"); err != nil {
		t.Fatal("demostack: npm is not on PATH: it is needed to install and build the demo in examples/demo")
	}
	root, err := RepoRoot()
	if err != nil {
		t.Fatalf("demostack: %v", err)
	}
	s := &Stack{Root: root, DemoDir: filepath.Join(root, "examples", "demo")}
	port := sidecar.FreePort(t)
	s.URL = fmt.Sprintf("http://127.0.0.1:%d", port)

	// Better Auth starts (its migrations run) while the demo builds.
	type started struct {
		srv *batest.Server
		err error
	}
	baCh := make(chan started, 1)
	go func() {
		srv, err := batest.New(batest.Options{BaseURL: s.URL, TrustedOrigins: []string{s.URL}})
		baCh <- started{srv, err}
	}()
	var baTaken bool
	t.Cleanup(func() {
		if !baTaken { // Start failed before it took the server: stop it anyway
			if r := <-baCh; r.srv != nil {
				r.srv.Close()
			}
		}
	})

	if err := prepare(s.DemoDir); err != nil {
		t.Fatalf("demostack: %v", err)
	}
	fe, feURL, err := startFrontend(node, s.DemoDir)
	if err != nil {
		t.Fatalf("demostack: %v", err)
	}
	t.Cleanup(fe.Stop)
	s.FrontendURL = feURL

	r := <-baCh
	baTaken = true
	if r.err != nil {
		t.Fatalf("demostack: batest: %v", r.err)
	}
	t.Cleanup(r.srv.Close)
	s.BA = r.srv

	src, err := os.ReadFile(filepath.Join(s.DemoDir, "Caddyfile"))
	if err != nil {
		t.Fatalf("demostack: %v", err)
	}
	body, err := rewriteCaddyfile(string(src), s.URL, s.BA.URL, s.FrontendURL)
	if err != nil {
		t.Fatalf("demostack: examples/demo/Caddyfile: %v", err)
	}
	s.Caddyfile = sidecar.Globals(port) + body

	// Registered after the servers, so it runs before they stop.
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("demostack: the sidecar's Caddyfile:\n%s", s.Caddyfile)
			t.Logf("demostack: frontend output:\n%s", batest.Tail(fe.Output()))
			t.Logf("demostack: Better Auth output:\n%s", batest.Tail(s.BA.Output()))
		}
	})
	sidecar.Load(t, s.Caddyfile)
	if err := s.check(); err != nil {
		t.Fatalf("demostack: the sidecar at %s does not serve the demo: %v", s.URL, err)
	}
	return s
}

// NewClient returns a cookie-keeping client for the sidecar that sends the
// sidecar's origin on POSTs.
func (s *Stack) NewClient() *batest.Client { return batest.NewClient(s.URL, s.URL) }

// SignUp makes a user (password: Password) through the sidecar, as the
// demo's sign-up form does, and returns a client holding the user's session
// cookies, with the user object of Better Auth's answer.
func (s *Stack) SignUp(t testing.TB, email, name string) (*batest.Client, map[string]any) {
	t.Helper()
	c := s.NewClient()
	res, err := c.SignUp(email, Password, name)
	if err != nil {
		t.Fatalf("demostack: sign-up of %s through the sidecar: %v", email, err)
	}
	user, ok := res["user"].(map[string]any)
	if !ok {
		t.Fatalf("demostack: sign-up of %s: no user in %v", email, res)
	}
	if c.Cookie("better-auth.session_token") == "" {
		t.Fatalf("demostack: sign-up of %s: no session cookie reached the client through the sidecar", email)
	}
	return c, user
}

// check asks the sidecar for a page and for Better Auth's health endpoint.
func (s *Stack) check() error {
	hc := &http.Client{Timeout: 10 * time.Second}
	get := func(path string) (int, string, error) {
		req, err := http.NewRequest(http.MethodGet, s.URL+path, nil)
		if err != nil {
			return 0, "", err
		}
		req.Header.Set("Accept", "text/html")
		resp, err := hc.Do(req)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), err
	}
	status, body, err := get("/")
	if err != nil {
		return err
	}
	if status != http.StatusOK || !strings.Contains(body, "/app.js") {
		return fmt.Errorf("GET /: status %d, want 200 with the demo's index.html:\n%s", status, batest.Tail(body))
	}
	status, body, err = get(batest.AuthPath + "/ok")
	if err != nil {
		return err
	}
	if status != http.StatusOK {
		return fmt.Errorf("GET %s/ok: status %d, want 200 from Better Auth: %s", batest.AuthPath, status, batest.Tail(body))
	}
	return nil
}

// Chromium returns the Chromium (or Chrome) executable for browser tests:
// $CHROME_BIN, else /usr/bin/chromium, else the first of chromium,
// chromium-browser, google-chrome-stable and google-chrome on PATH. It
// fails the test when there is none.
func Chromium(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("CHROME_BIN"); p != "" {
		if _, err := exec.LookPath(p); err != nil {
			t.Fatalf("demostack: CHROME_BIN=%s is not an executable: %v", p, err)
		}
		return p
	}
	candidates := []string{"/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome-stable", "google-chrome"}
	for _, c := range candidates {
		if p, err := exec.LookPath(c); err == nil {
			return p
		}
	}
	t.Fatalf("demostack: no Chromium found (tried $CHROME_BIN, %s): the browser tests need one; on Debian: apt-get install chromium", strings.Join(candidates, ", "))
	return ""
}

// RepoRoot returns the folder holding go.mod, walking up from the working
// directory.
func RepoRoot() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := wd; ; {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			if _, err := os.Stat(filepath.Join(d, "examples", "demo", "server.mjs")); err != nil {
				return "", fmt.Errorf("module root %s has no examples/demo/server.mjs", d)
			}
			return d, nil
		}
		parent := filepath.Dir(d)
		if parent == d {
			return "", fmt.Errorf("no go.mod above %s", wd)
		}
		d = parent
	}
}

// rewriteCaddyfile moves the demo's Caddyfile to the test's addresses: the
// global options block goes (the caller prepends sidecar.Globals), the site
// address becomes siteURL, and the Better Auth and frontend addresses
// become those of backendURL and frontendURL. Anything that does not look
// as expected is an error, so that a changed Caddyfile breaks the test
// instead of quietly testing something else.
func rewriteCaddyfile(src, siteURL, backendURL, frontendURL string) (string, error) {
	lines := strings.Split(src, "\n")
	i := 0
	for i < len(lines) && strings.TrimSpace(code(lines[i])) == "" {
		i++
	}
	if i < len(lines) && strings.TrimSpace(code(lines[i])) == "{" {
		depth, j := 0, i
		for ; j < len(lines); j++ {
			c := code(lines[j])
			depth += strings.Count(c, "{") - strings.Count(c, "}")
			if depth == 0 {
				break
			}
		}
		if j == len(lines) {
			return "", errors.New("the global options block is not closed")
		}
		lines = append(lines[:i:i], lines[j+1:]...)
	}

	// The site block: the first line of code after the global options.
	for i < len(lines) && strings.TrimSpace(code(lines[i])) == "" {
		i++
	}
	if i == len(lines) {
		return "", errors.New("no site block")
	}
	site := strings.TrimSpace(code(lines[i]))
	addr, ok := strings.CutSuffix(site, "{")
	addr = strings.TrimSpace(addr)
	if !ok || addr == "" || strings.ContainsAny(addr, ", \t") {
		return "", fmt.Errorf("want one site address and a { on line %d, found %q", i+1, site)
	}
	lines[i] = siteURL + " {"
	out := strings.Join(lines, "\n")

	for _, r := range []struct{ from, to, what string }{
		{demoBackend, hostPort(backendURL), "Better Auth"},
		{demoFrontend, hostPort(frontendURL), "the frontend"},
	} {
		inCode := 0
		for _, l := range strings.Split(out, "\n") {
			inCode += strings.Count(code(l), r.from)
		}
		if inCode == 0 {
			return "", fmt.Errorf("%s is no longer at %s", r.what, r.from)
		}
		out = strings.ReplaceAll(out, r.from, r.to)
	}
	return out, nil
}

// code returns a Caddyfile line without its comment (a # that starts a
// token).
func code(line string) string {
	for i := 0; i < len(line); i++ {
		if line[i] == '#' && (i == 0 || line[i-1] == ' ' || line[i-1] == '\t') {
			return line[:i]
		}
	}
	return line
}

func hostPort(u string) string {
	p, err := url.Parse(u)
	if err != nil || p.Host == "" {
		return strings.TrimPrefix(u, "http://")
	}
	return p.Host
}

// prepared holds the demo folders installed and built by this process.
var (
	prepareMu sync.Mutex
	prepared  = map[string]bool{}
)

// prepare runs `npm ci` in dir when needed and `npm run build` once per
// process. An exclusive flock (in the temporary folder, keyed by dir) keeps
// test processes that start together from installing or building at the
// same time.
func prepare(dir string) error {
	prepareMu.Lock()
	defer prepareMu.Unlock()
	if prepared[dir] {
		return nil
	}
	sum := sha256.Sum256([]byte(dir))
	lockPath := filepath.Join(os.TempDir(), "caddy-better-auth-demo-"+hex.EncodeToString(sum[:6])+".lock")
	lock, err := os.OpenFile(lockPath, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return fmt.Errorf("opening the demo's build lock: %w", err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return fmt.Errorf("locking %s: %w", lockPath, err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)

	if !batest.Installed(dir, "node_modules/esbuild/package.json") {
		if err := run(dir, npmCITimeout, "npm", "ci", "--no-audit", "--no-fund"); err != nil {
			return err
		}
		if !batest.Installed(dir, "node_modules/esbuild/package.json") {
			return fmt.Errorf("npm ci in %s succeeded but node_modules looks incomplete", dir)
		}
	}
	if err := run(dir, buildTimeout, "npm", "run", "--silent", "build"); err != nil {
		return err
	}
	for _, f := range []string{"index.html", "app.js", "app.css"} {
		if _, err := os.Stat(filepath.Join(dir, "dist", f)); err != nil {
			return fmt.Errorf("npm run build in %s made no dist/%s", dir, f)
		}
	}
	prepared[dir] = true
	return nil
}

func run(dir string, timeout time.Duration, name string, args ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	start := time.Now()
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s %s in %s failed after %s (%v):\n%s", name, strings.Join(args, " "), dir, time.Since(start).Round(time.Second), err, batest.Tail(out.String()))
	}
	return nil
}

// startFrontend starts the demo frontend (`node server.mjs`) on a port the
// kernel picks (PORT=0), waits for its "frontend ready URL" line, and
// returns the process and the URL.
func startFrontend(node, dir string) (*batest.Process, string, error) {
	cmd := exec.Command(node, "server.mjs")
	cmd.Dir = dir
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); k != "HOST" && k != "PORT" {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, "HOST=127.0.0.1", "PORT=0")
	proc, u, err := batest.StartProcess(cmd, "frontend ready ", frontendReadyMax)
	if err != nil {
		return nil, "", fmt.Errorf("the demo frontend: %w", err)
	}
	p, err := url.Parse(u)
	if err != nil || p.Scheme != "http" || p.Hostname() != "127.0.0.1" {
		proc.Stop()
		return nil, "", fmt.Errorf("frontend announced %q, want http://127.0.0.1:PORT", u)
	}
	if port, err := strconv.Atoi(p.Port()); err != nil || port <= 0 {
		proc.Stop()
		return nil, "", fmt.Errorf("frontend announced %q, with no port", u)
	}
	return proc, u, nil
}
