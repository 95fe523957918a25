// Package e2e runs the sidecar as users run it: Caddy in-process loading a
// Caddyfile, in front of real upstreams and, where it matters, a real
// Better Auth server and a real browser.
package e2e

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/seed5911dcdf/caddy-better-auth/internal/sidecar"
)

var update = flag.Bool("update", false, "rewrite golden files")

// Every Caddyfile in testdata/caddyfile (and every example's) adapts to its
// committed JSON golden file.
func TestAdaptGolden(t *testing.T) {
	files, _ := filepath.Glob("../testdata/caddyfile/*.caddyfile")
	examples, _ := filepath.Glob("../examples/*/Caddyfile")
	files = append(files, examples...)
	if len(files) < 2 {
		t.Fatalf("only %d Caddyfiles found", len(files))
	}
	for _, f := range files {
		t.Run(f, func(t *testing.T) {
			src, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			got, err := sidecar.Adapt(string(src))
			if err != nil {
				t.Fatal(err)
			}
			var pretty bytes.Buffer
			if err := json.Indent(&pretty, got, "", "\t"); err != nil {
				t.Fatal(err)
			}
			pretty.WriteByte('\n')
			golden := strings.TrimSuffix(f, filepath.Ext(f)) + ".json"
			if filepath.Base(f) == "Caddyfile" {
				golden = f + ".json"
			}
			if *update {
				if err := os.WriteFile(golden, pretty.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./e2e -run TestAdaptGolden -update)", err)
			}
			if !bytes.Equal(pretty.Bytes(), want) {
				t.Fatalf("adapt output differs from %s:\n%s", golden, pretty.String())
			}
		})
	}
}

func TestCaddyfileErrorsNameTheLine(t *testing.T) {
	for _, tc := range []struct{ name, src, want string }{
		{"missing backend", "example.com {\n\tbetter_auth {\n\t\tguard /x\n\t}\n}\n", "Caddyfile:2 - better_auth: backend is required"},
		{"unknown subdirective", "example.com {\n\tbetter_auth {\n\t\tbackend http://a\n\t\tbogus 1\n\t}\n}\n", "Caddyfile:4"},
		{"bad duration", "example.com {\n\tbetter_auth {\n\t\tbackend http://a\n\t\tstale_time fast\n\t}\n}\n", "Caddyfile:4"},
		{"bad size", "example.com {\n\tbetter_auth {\n\t\tbackend http://a\n\n\t\tcache_size lots\n\t}\n}\n", "Caddyfile:5"},
		{"unknown family", "example.com {\n\tbetter_auth {\n\t\tbackend http://a\n\t\tprefetch /x {\n\t\t\tlist_everything\n\t\t}\n\t}\n}\n", "Caddyfile:5"},
		{"bad params", "example.com {\n\tbetter_auth {\n\t\tbackend http://a\n\t\tprefetch /x {\n\t\t\tlist_sessions `{nope`\n\t\t}\n\t}\n}\n", "Caddyfile:5"},
		{"bad backend", "example.com {\n\tbetter_auth {\n\t\tbackend ftp://a\n\t}\n}\n", "Caddyfile:2"},
		{"unsafe sign_in", "example.com {\n\tbetter_auth {\n\t\tbackend http://a\n\t\tsign_in //evil.com\n\t}\n}\n", "Caddyfile:2"},
		{"twice", "example.com {\n\tbetter_auth {\n\t\tbackend http://a\n\t\ttimeout 1s\n\t\ttimeout 2s\n\t}\n}\n", "Caddyfile:5"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := sidecar.Adapt(tc.src)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

// Every Caddyfile example in the README is one of testdata/caddyfile (so
// it has an adapt golden file); the syntax summary is the one exception.
func TestReadmeExamplesHaveGoldens(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	var known []string
	files, _ := filepath.Glob("../testdata/caddyfile/*.caddyfile")
	for _, f := range files {
		b, _ := os.ReadFile(f)
		known = append(known, string(b))
	}
	parts := strings.Split(string(readme), "```caddyfile\n")
	examples := 0
	for _, p := range parts[1:] {
		block, _, _ := strings.Cut(p, "```")
		if strings.HasPrefix(block, "better_auth [<backend>]") {
			continue // the syntax summary
		}
		examples++
		found := false
		for _, k := range known {
			if k == block {
				found = true
			}
		}
		if !found {
			t.Errorf("README example has no golden in testdata/caddyfile:\n%s", block)
		}
	}
	if examples == 0 {
		t.Fatal("no README examples found")
	}
}
