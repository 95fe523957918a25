package invalidation

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// redisServer is a real redis-server on a loopback port, for tests. The
// tests need it and fail without it: install it with
// `apt-get install -y redis-server` (or point REDIS_SERVER at the binary).
type redisServer struct {
	t        *testing.T
	bin      string
	port     int
	password string
	dir      string
	tls      bool // serve TLS only, with a self-signed certificate for 127.0.0.1
	cmd      *exec.Cmd
	exited   chan struct{}
}

func redisBinary(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("REDIS_SERVER"); p != "" {
		return p
	}
	p, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("redis-server is required by these tests (apt-get install -y redis-server, or set REDIS_SERVER): %v", err)
	}
	return p
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startRedis starts a redis-server with no persistence; it is stopped when
// the test ends.
func startRedis(t *testing.T, password string) *redisServer {
	t.Helper()
	return startRedisTLS(t, password, false)
}

func startRedisTLS(t *testing.T, password string, useTLS bool) *redisServer {
	t.Helper()
	s := &redisServer{t: t, bin: redisBinary(t), port: freePort(t), password: password, dir: t.TempDir(), tls: useTLS}
	if useTLS {
		writeSelfSigned(t, s.dir)
	}
	s.start()
	t.Cleanup(s.stop)
	return s
}

func (s *redisServer) addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

func (s *redisServer) url() string {
	if s.tls {
		return "rediss://" + s.addr() + "/0"
	}
	return "redis://" + s.addr() + "/0"
}

func (s *redisServer) start() {
	s.t.Helper()
	args := []string{
		"--port", strconv.Itoa(s.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", s.dir,
		"--loglevel", "warning", "--daemonize", "no",
	}
	if s.tls {
		args[1] = "0"
		args = append(args, "--tls-port", strconv.Itoa(s.port),
			"--tls-cert-file", filepath.Join(s.dir, "cert.pem"),
			"--tls-key-file", filepath.Join(s.dir, "key.pem"),
			"--tls-auth-clients", "no")
	}
	if s.password != "" {
		args = append(args, "--requirepass", s.password)
	}
	var lastErr error
	for try := 0; try < 50; try++ { // the port may linger a moment after a stop
		cmd := exec.Command(s.bin, args...)
		out, err := os.OpenFile(filepath.Join(s.dir, "redis.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			s.t.Fatal(err)
		}
		cmd.Stdout, cmd.Stderr = out, out
		if err := cmd.Start(); err != nil {
			s.t.Fatalf("start redis-server: %v", err)
		}
		exited := make(chan struct{})
		go func() { _ = cmd.Wait(); out.Close(); close(exited) }()
		if err := waitReady(s.addr(), s.tls, exited, 10*time.Second); err != nil {
			lastErr = err
			_ = cmd.Process.Kill()
			<-exited
			time.Sleep(100 * time.Millisecond)
			continue
		}
		s.cmd, s.exited = cmd, exited
		return
	}
	log, _ := os.ReadFile(filepath.Join(s.dir, "redis.log"))
	s.t.Fatalf("redis-server on %s did not come up: %v\n%s", s.addr(), lastErr, log)
}

// waitReady waits until the server answers a PING (any reply will do:
// NOAUTH shows it is up too).
func waitReady(addr string, useTLS bool, exited <-chan struct{}, within time.Duration) error {
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return fmt.Errorf("redis-server exited")
		default:
		}
		var c net.Conn
		var err error
		if useTLS {
			d := &tls.Dialer{NetDialer: &net.Dialer{Timeout: time.Second}, Config: &tls.Config{InsecureSkipVerify: true}}
			c, err = d.Dial("tcp", addr)
		} else {
			c, err = net.DialTimeout("tcp", addr, time.Second)
		}
		if err == nil {
			_ = c.SetDeadline(time.Now().Add(time.Second))
			_, err = c.Write([]byte("PING\r\n"))
			buf := make([]byte, 64)
			var n int
			if err == nil {
				n, err = c.Read(buf)
			}
			c.Close()
			if err == nil && n > 0 {
				return nil
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return context.DeadlineExceeded
}

func (s *redisServer) stop() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(10 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.exited
	}
	s.cmd = nil
}

func (s *redisServer) restart() {
	s.t.Helper()
	s.stop()
	s.start()
}

// writeSelfSigned writes cert.pem and key.pem for 127.0.0.1 into dir.
func writeSelfSigned(t *testing.T, dir string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "invalidation test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "cert.pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "key.pem"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// proxy forwards loopback TCP to a Redis; freeze makes every connection
// open at that moment silently swallow what it carries both ways, like a
// peer that vanished without a FIN, while new connections work.
type proxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	conns  []*proxied
}

type proxied struct {
	frozen atomic.Bool
	a, b   net.Conn
}

func startProxy(t *testing.T, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: target}
	t.Cleanup(p.close)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			pc := &proxied{a: c, b: u}
			p.mu.Lock()
			p.conns = append(p.conns, pc)
			p.mu.Unlock()
			go pc.pipe(c, u)
			go pc.pipe(u, c)
		}
	}()
	return p
}

func (pc *proxied) pipe(from, to net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := from.Read(buf)
		if n > 0 && !pc.frozen.Load() {
			if _, werr := to.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			to.Close()
			from.Close()
			return
		}
	}
}

func (p *proxy) addr() string { return p.ln.Addr().String() }

func (p *proxy) freeze() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.frozen.Store(true)
	}
	return len(p.conns)
}

func (p *proxy) close() {
	p.ln.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.a.Close()
		c.b.Close()
	}
}
