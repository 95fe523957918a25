package caddyfile

import (
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

func parse(src string) error {
	_, err := Parse(caddyfile.NewTestDispenser(src))
	return err
}

func TestParse(t *testing.T) {
	h, err := Parse(caddyfile.NewTestDispenser(`better_auth {
		backend http://127.0.0.1:3000
		stale_time 0
		stale_if_error 30s
		cache_size 1MiB
		max_answer_size 64KiB
		bearer
		guard /a/* /b
		guard /c
		identity_headers {
			user_id X-User-Id
			email X-User-Email
		}
		prefetch /settings/* {
			list_sessions
			has_permission ` + "`" + `{"permissions":{"member":["create"]}}` + "`" + `
		}
	}`))
	if err != nil {
		t.Fatal(err)
	}
	if h.StaleTime == nil || *h.StaleTime != 0 || h.CacheSize != 1<<20 || h.MaxAnswerSize != 64<<10 || !h.Bearer ||
		len(h.Guard) != 3 || h.IdentityHeaders.UserID != "X-User-Id" || len(h.Prefetch) != 1 || len(h.Prefetch[0].Queries) != 2 {
		t.Fatalf("parsed %+v", h)
	}
	if h2, err := Parse(caddyfile.NewTestDispenser("better_auth http://b:1")); err != nil || h2.Backend != "http://b:1" {
		t.Fatal("backend as the directive's argument", err)
	}
}

func TestParseErrors(t *testing.T) {
	for _, src := range []string{
		"better_auth",
		"better_auth {\n guard /x\n}",
		"better_auth http://a http://b",
		"better_auth {\n backend http://a\n stale_time -1s\n}",
		"better_auth {\n backend http://a\n timeout 0\n}",
		"better_auth {\n backend http://a\n cache_size 0\n}",
		"better_auth {\n backend http://a\n identity_headers {\n role X\n }\n}",
		"better_auth {\n backend http://a\n identity_headers {\n }\n}",
		"better_auth {\n backend http://a\n bearer yes\n}",
		"better_auth {\n backend http://a\n prefetch {\n list_sessions\n }\n}",
		"better_auth {\n backend http://a\n prefetch /x {\n list_sessions `[1]`\n }\n}",
		"better_auth {\n backend http://a\n state_id \"a b\"\n}",
		"better_auth {\n backend http://a\n redirect_param \"a&b\"\n}",
		"better_auth {\n backend http://a\n cookie_prefix \"a;b\"\n}",
	} {
		if err := parse(src); err == nil || !strings.Contains(err.Error(), "Testfile:") {
			t.Errorf("%q: error %v, want one naming the line", src, err)
		}
	}
}

// For any input: no panic, and whatever parses also validates.
func FuzzCaddyfile(f *testing.F) {
	f.Add("better_auth {\n backend http://a\n guard /x\n prefetch /y {\n list_sessions `{\"a\":1}`\n }\n}")
	f.Add("better_auth http://a {\n identity_headers {\n user_id X\n }\n stale_time 1s\n}")
	f.Add("better_auth {\n backend http://a\n cache_size 1GB\n sign_in /login?x=1\n}")
	f.Fuzz(func(t *testing.T, src string) {
		h, err := Parse(caddyfile.NewTestDispenser(src))
		if err != nil {
			return
		}
		if err := h.Validate(); err != nil {
			t.Fatalf("parsed but invalid: %v", err)
		}
	})
}
