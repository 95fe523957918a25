package e2e

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/seed5911dcdf/caddy-better-auth/internal/batest"
)

// With a stale time of a minute, changes made through the sidecar are seen
// at once: the cache is invalidated from the auth traffic itself.
func TestRealBetterAuthInvalidation(t *testing.T) {
	s := newStack(t, stackOptions{staleTime: "60s"})

	t.Run("sign-out", func(t *testing.T) {
		b := s.browser()
		mustSignUp(t, b, "out@example.com", "Out")
		if resp, _ := s.page(b, "/settings/account"); resp.StatusCode != 200 {
			t.Fatalf("signed in: %d", resp.StatusCode)
		}
		old := replay(s, b)
		if err := b.SignOut(); err != nil {
			t.Fatal(err)
		}
		if resp, _ := s.page(b, "/settings/account"); resp.StatusCode != 302 {
			t.Fatalf("same jar after sign-out: %d", resp.StatusCode)
		}
		// The old cookie, replayed, hits no cached session either.
		if resp, _ := s.page(old, "/settings/account"); resp.StatusCode != 302 {
			t.Fatalf("replayed cookie after sign-out: %d", resp.StatusCode)
		}
	})

	t.Run("rename on A shows on B", func(t *testing.T) {
		a := s.browser()
		mustSignUp(t, a, "rename@example.com", "Before")
		b := s.browser()
		if _, err := b.SignIn("rename@example.com", "correct horse battery staple"); err != nil {
			t.Fatal(err)
		}
		if _, body := s.page(b, "/settings/account"); !strings.Contains(body, `"name":"Before"`) {
			t.Fatalf("B before: %s", body)
		}
		if st, body, _, _ := a.PostJSON("/api/auth/update-user", map[string]string{"name": "After"}); st != 200 {
			t.Fatalf("update-user: %d %s", st, body)
		}
		_, body := s.page(b, "/settings/account")
		if !strings.Contains(body, `"name":"After"`) || strings.Contains(body, `"name":"Before"`) {
			t.Fatalf("B after the rename on A: %s", body)
		}
	})

	t.Run("revoke B from A", func(t *testing.T) {
		a := s.browser()
		mustSignUp(t, a, "revoke@example.com", "Rev")
		b := s.browser()
		if _, err := b.SignIn("revoke@example.com", "correct horse battery staple"); err != nil {
			t.Fatal(err)
		}
		if resp, _ := s.page(b, "/settings/account"); resp.StatusCode != 200 {
			t.Fatal("B not signed in")
		}
		_, bs, _, _ := s.direct(b).GetJSON("/api/auth/get-session")
		var sess struct{ Session struct{ Token string } }
		json.Unmarshal(bs, &sess)
		if st, body, _, _ := a.PostJSON("/api/auth/revoke-session", map[string]string{"token": sess.Session.Token}); st != 200 {
			t.Fatalf("revoke-session: %d %s", st, body)
		}
		if resp, _ := s.page(b, "/settings/account"); resp.StatusCode != 302 {
			t.Fatalf("B after A revoked it: %d", resp.StatusCode)
		}
		// A's own session list no longer shows B's session.
		_, body := s.page(a, "/settings/account")
		if strings.Contains(body, sess.Session.Token) {
			t.Fatal("A's page still lists the revoked session")
		}
	})

	// Page loads race a sign-out; once the sign-out answer is back, the old
	// cookie is signed out, whatever lookups were in flight.
	t.Run("in-flight lookups racing sign-out", func(t *testing.T) {
		for round := range 5 {
			b := s.browser()
			mustSignUp(t, b, "race"+string(rune('a'+round))+"@example.com", "Race")
			old := replay(s, b)
			var wg sync.WaitGroup
			stop := make(chan struct{})
			for range 4 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					c := replay(s, old)
					for {
						select {
						case <-stop:
							return
						default:
						}
						resp, err := c.Do("GET", "/settings/account", nil, http.Header{"Accept": {"text/html"}})
						if err == nil {
							resp.Body.Close()
						}
					}
				}()
			}
			if err := b.SignOut(); err != nil {
				t.Fatal(err)
			}
			for range 3 {
				if resp, _ := s.page(replay(s, old), "/settings/account"); resp.StatusCode != 302 {
					t.Fatalf("round %d: the signed-out cookie was served a page (%d)", round, resp.StatusCode)
				}
			}
			close(stop)
			wg.Wait()
		}
	})
}

// replay is a new jar holding b's current cookies (that no Set-Cookie will
// clear): a browser that keeps an old cookie.
func replay(s *stack, b *batest.Client) *batest.Client {
	c := s.browser()
	u, _ := url.Parse(s.url)
	for _, ck := range b.Cookies() {
		c.Jar().SetCookies(u, []*http.Cookie{{Name: ck.Name, Value: ck.Value, Path: "/"}})
	}
	return c
}
