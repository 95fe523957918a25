// Package batest runs a real Better Auth server (testdata/betterauth, Node.js)
// for tests, and offers a small HTTP client that keeps cookies.
//
// Node.js and npm must be on PATH: without them Start fails the test and New
// returns an error; nothing is skipped. The first use in a fresh checkout runs
// `npm ci` in testdata/betterauth (about a minute and a half, most of it
// compiling better-sqlite3); several test binaries that start at the same
// time wait for one another through a file lock.
//
// Typical use:
//
//	srv := batest.Start(t, batest.Options{})
//	c := batest.NewClient(srv.URL, srv.Origin)
//	user, err := c.SignUp("a@example.com", "password123", "Alice")
package batest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
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
)

// AuthPath is the base path of Better Auth's endpoints on the test server.
const AuthPath = "/api/auth"

// ReadyTimeout is how long New waits for the server's ready line.
const ReadyTimeout = 60 * time.Second

// npmCITimeout bounds one `npm ci` run.
const npmCITimeout = 10 * time.Minute

// Options configures a test server. The zero value gives Better Auth's
// defaults (sessions of 7 days, refreshed after 1 day), unverified emails,
// and a base URL equal to the server's own address.
type Options struct {
	// SessionUpdateAge is how old a session must be before get-session
	// refreshes it (and sends a new Set-Cookie). Rounded up to whole
	// seconds. Zero keeps the server default (1 day).
	SessionUpdateAge time.Duration
	// SessionExpiresIn is the session lifetime. Rounded up to whole
	// seconds. Zero keeps the server default (7 days).
	SessionExpiresIn time.Duration
	// AutoVerifyEmail makes new users start with emailVerified=true.
	AutoVerifyEmail bool
	// TrustedOrigins are the origins Better Auth accepts in the Origin header
	// of POSTs. Empty: the origin of BaseURL only.
	TrustedOrigins []string
	// BaseURL is the URL Better Auth believes it is served from (for example
	// a proxy in front of it). Empty: http://127.0.0.1:PORT, the server's
	// own address.
	BaseURL string
	// Env holds extra environment variables for the server process; they
	// win over everything batest sets (e.g. {"RATE_LIMIT": "on"}).
	Env map[string]string
}

// Server is a running Better Auth test server.
type Server struct {
	// URL is the origin the server listens on, e.g. http://127.0.0.1:41234.
	URL string
	// AuthURL is URL + "/api/auth".
	AuthURL string
	// BaseURL is the base URL Better Auth was configured with (Options.BaseURL
	// or URL).
	BaseURL string
	// Origin is the origin of BaseURL: a trusted value for the Origin header.
	Origin string
	// DatabaseFile is the server's SQLite file (fresh for each server).
	DatabaseFile string
	// Dir is the testdata/betterauth folder the server runs from.
	Dir string

	proc      *Process
	tmpDir    string
	closeOnce sync.Once
}

// Start starts a server for the test and stops it when the test ends. It
// fails the test when the server cannot be started.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	s, err := New(opts)
	if err != nil {
		t.Fatalf("batest: %v", err)
	}
	t.Cleanup(s.Close)
	return s
}

// New starts a server; the caller must Close it. Meant for TestMain, where
// there is no testing.TB.
func New(opts Options) (*Server, error) {
	nodePath, err := exec.LookPath("node")
	if err != nil {
		return nil, errors.New("node (Node.js 20 or newer) is not on PATH: it is needed to run the Better Auth test server in testdata/betterauth")
	}
	if _, err := exec.LookPath("npm"); err != nil {
		return nil, errors.New("npm is not on PATH: it is needed to install the Better Auth test server in testdata/betterauth")
	}
	dir, err := ServerDir()
	if err != nil {
		return nil, err
	}
	if err := EnsureInstalled(dir); err != nil {
		return nil, err
	}

	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		s, err := start(nodePath, dir, opts)
		if err == nil {
			return s, nil
		}
		lastErr = err
		var pe *portInUseError
		if !errors.As(err, &pe) {
			break
		}
	}
	return nil, lastErr
}

type portInUseError struct{ err error }

func (e *portInUseError) Error() string { return e.err.Error() }
func (e *portInUseError) Unwrap() error { return e.err }

func start(nodePath, dir string, opts Options) (*Server, error) {
	port, err := freePort()
	if err != nil {
		return nil, fmt.Errorf("picking a free port: %w", err)
	}
	tmpDir, err := os.MkdirTemp("", "batest-")
	if err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			os.RemoveAll(tmpDir)
		}
	}()

	listenURL := "http://127.0.0.1:" + strconv.Itoa(port)
	baseURL := strings.TrimRight(opts.BaseURL, "/")
	if baseURL == "" {
		baseURL = listenURL
	}
	bu, err := url.Parse(baseURL)
	if err != nil || bu.Scheme == "" || bu.Host == "" {
		return nil, fmt.Errorf("Options.BaseURL %q is not an absolute URL", opts.BaseURL)
	}
	origin := bu.Scheme + "://" + bu.Host
	dbFile := filepath.Join(tmpDir, "auth.sqlite")

	vars := map[string]string{
		"PORT":              strconv.Itoa(port),
		"HOST":              "127.0.0.1",
		"BETTER_AUTH_URL":   baseURL,
		"DATABASE_FILE":     dbFile,
		"RATE_LIMIT":        "off",
		"AUTO_VERIFY_EMAIL": strconv.FormatBool(opts.AutoVerifyEmail),
	}
	if len(opts.TrustedOrigins) > 0 {
		vars["TRUSTED_ORIGINS"] = strings.Join(opts.TrustedOrigins, ",")
	}
	if opts.SessionExpiresIn > 0 {
		vars["SESSION_EXPIRES_IN"] = seconds(opts.SessionExpiresIn)
	}
	if opts.SessionUpdateAge > 0 {
		vars["SESSION_UPDATE_AGE"] = seconds(opts.SessionUpdateAge)
	}
	for k, v := range opts.Env {
		vars[k] = v
	}

	cmd := exec.Command(nodePath, "server.mjs")
	cmd.Dir = dir
	cmd.Env = serverEnv(vars)
	proc, u, err := StartProcess(cmd, "better-auth ready ", ReadyTimeout)
	if err != nil {
		err = fmt.Errorf("Better Auth test server: %w", err)
		if strings.Contains(err.Error(), "EADDRINUSE") {
			return nil, &portInUseError{err}
		}
		return nil, err
	}
	if opts.BaseURL == "" && u != listenURL {
		proc.Stop()
		return nil, fmt.Errorf("server announced %s, expected %s", u, listenURL)
	}
	ok = true
	return &Server{
		URL:          u,
		AuthURL:      u + AuthPath,
		BaseURL:      baseURL,
		Origin:       origin,
		DatabaseFile: dbFile,
		Dir:          dir,
		proc:         proc,
		tmpDir:       tmpDir,
	}, nil
}

// Close stops the server (its whole process group) and removes its database.
// It is safe to call more than once.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		s.proc.Stop()
		os.RemoveAll(s.tmpDir)
	})
}

// Output returns what the server wrote to stderr (and anything unexpected on
// stdout) so far; handy in failure messages.
func (s *Server) Output() string { return s.proc.Output() }

// ServerDir returns the testdata/betterauth folder of this module: it walks
// up from the working directory to the folder holding go.mod.
func ServerDir() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := wd; ; {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			dir := filepath.Join(d, "testdata", "betterauth")
			if _, err := os.Stat(filepath.Join(dir, "server.mjs")); err != nil {
				return "", fmt.Errorf("module root %s has no testdata/betterauth/server.mjs", d)
			}
			return dir, nil
		}
		parent := filepath.Dir(d)
		if parent == d {
			return "", fmt.Errorf("no go.mod above %s", wd)
		}
		d = parent
	}
}

// installMu serialises installs inside one process; the file lock does it
// across processes.
var installMu sync.Mutex

// EnsureInstalled runs `npm ci` in dir when node_modules is missing, older
// than package-lock.json, or lacks the compiled better-sqlite3. It holds an
// exclusive flock on dir/.batest.lock meanwhile.
func EnsureInstalled(dir string) error {
	installMu.Lock()
	defer installMu.Unlock()
	if Installed(dir, serverMarker) {
		return nil
	}
	lock, err := os.OpenFile(filepath.Join(dir, ".batest.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return fmt.Errorf("opening install lock: %w", err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return fmt.Errorf("locking %s: %w", lock.Name(), err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)
	if Installed(dir, serverMarker) { // another process did it while we waited
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), npmCITimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "npm", "ci", "--no-audit", "--no-fund")
	cmd.Dir = dir
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	start := time.Now()
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("npm ci in %s failed after %s (%v):\n%s", dir, time.Since(start).Round(time.Second), err, Tail(out.String()))
	}
	if !Installed(dir, serverMarker) {
		return fmt.Errorf("npm ci in %s succeeded but the install looks incomplete (were install scripts skipped? better-sqlite3 must be compiled):\n%s", dir, Tail(out.String()))
	}
	return nil
}

// Installed reports whether dir's node_modules is complete (npm writes
// node_modules/.package-lock.json last), not older than the lock file, and
// holds marker (a path under dir proving install scripts ran, or "").
func Installed(dir, marker string) bool {
	lock, err := os.Stat(filepath.Join(dir, "package-lock.json"))
	if err != nil {
		return false
	}
	hidden, err := os.Stat(filepath.Join(dir, "node_modules", ".package-lock.json"))
	if err != nil || hidden.ModTime().Before(lock.ModTime()) {
		return false
	}
	if marker == "" {
		return true
	}
	_, err = os.Stat(filepath.Join(dir, marker))
	return err == nil
}

// serverMarker is better-sqlite3's compiled addon: without it the install
// skipped its build scripts.
const serverMarker = "node_modules/better-sqlite3/build/Release/better_sqlite3.node"

// serverKeys are the variables server.mjs reads; inherited values are dropped
// so that the caller's shell cannot change the test server's configuration.
var serverKeys = []string{
	"PORT", "HOST", "BETTER_AUTH_URL", "TRUSTED_ORIGINS", "BETTER_AUTH_SECRET",
	"DATABASE_FILE", "SESSION_EXPIRES_IN", "SESSION_UPDATE_AGE", "RATE_LIMIT",
	"AUTO_VERIFY_EMAIL",
}

func serverEnv(vars map[string]string) []string {
	drop := map[string]bool{}
	for _, k := range serverKeys {
		drop[k] = true
	}
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if !drop[k] {
			env = append(env, kv)
		}
	}
	for k, v := range vars {
		env = append(env, k+"="+v)
	}
	return env
}

func seconds(d time.Duration) string {
	return strconv.FormatInt(int64(math.Ceil(d.Seconds())), 10)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Tail is the end of a long process output, for error messages.
func Tail(s string) string {
	const max = 8 << 10
	if len(s) > max {
		return "...\n" + s[len(s)-max:]
	}
	return s
}

// SyncBuffer collects a child process's output: a bytes.Buffer safe for
// concurrent use, capped at 1 MiB.
type SyncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.buf.Len() < 1<<20 {
		b.buf.Write(p)
	}
	return len(p), nil
}

func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

var _ io.Writer = (*SyncBuffer)(nil)
