// Package sidecar runs Caddy in-process for tests: a Caddyfile is adapted
// with the real adapter and loaded with caddy.Load, on free loopback ports,
// with the admin API off.
package sidecar

import (
	"encoding/json"
	"fmt"
	"net"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	_ "github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/seed5911dcdf/caddy-better-auth"
)

// FreePort returns a loopback port that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Globals are the global options every test config starts with.
func Globals(httpPort int) string {
	return fmt.Sprintf("{\n\tadmin off\n\tpersist_config off\n\tauto_https off\n\thttp_port %d\n\tgrace_period 1s\n}\n", httpPort)
}

// Adapt turns a Caddyfile into JSON with Caddy's own adapter.
func Adapt(caddyfile string) ([]byte, error) {
	adapter := caddyconfig.GetAdapter("caddyfile")
	cfg, warnings, err := adapter.Adapt([]byte(caddyfile), map[string]any{"filename": "Caddyfile"})
	if err != nil {
		return nil, err
	}
	for _, w := range warnings {
		if !strings.Contains(w.Message, "not formatted") {
			return nil, fmt.Errorf("adapt warning: %s", w.String())
		}
	}
	return cfg, nil
}

// Load adapts and runs a Caddyfile until the test ends.
func Load(t testing.TB, caddyfile string) {
	t.Helper()
	cfg, err := Adapt(caddyfile)
	if err != nil {
		t.Fatalf("adapt: %v", err)
	}
	LoadJSON(t, cfg)
}

// LoadJSON runs a JSON config until the test ends; a later call replaces
// the running config the way `caddy reload` does.
func LoadJSON(t testing.TB, cfg []byte) {
	t.Helper()
	if !json.Valid(cfg) {
		t.Fatal("config is not JSON")
	}
	if err := caddy.Load(cfg, true); err != nil {
		t.Fatalf("load: %v", err)
	}
	t.Cleanup(func() { _ = caddy.Stop() })
}
