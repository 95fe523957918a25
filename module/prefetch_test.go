package module

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
)

func settingsPrefetch(h *Handler) {
	h.Prefetch = []Prefetch{
		{Paths: []string{"/settings/*"}, Queries: []QuerySpec{{Family: "list_sessions"}, {Family: "list_accounts"}, {Family: "list_api_keys"}}},
		{Paths: []string{"/settings/orgs/*", "/orgs/*"}, Queries: []QuerySpec{
			{Family: "active_organization", Params: json.RawMessage(`{"organizationSlug":"{http.request.uri.path.1}"}`)},
			{Family: "list_organization_members", Params: json.RawMessage(`{"organizationSlug":"{http.request.uri.path.1}"}`)},
			{Family: "list_user_invitations"},
			{Family: "has_permission", Params: json.RawMessage(`{"permissions":{"member":["create"]}}`)},
			{Family: "list_sessions"}, // also in the first block: resolved once
		}},
	}
}

func TestPrefetchInjectsEveryQuery(t *testing.T) {
	f := newFakeAuth(t)
	h := newHandler(t, f.URL, settingsPrefetch)
	rec := serve(h, pageReq("/settings/orgs/acme", "tok1"))
	got := queryData(t, rec.Body.String())
	want := map[string]string{
		sessionKey: `"id":"u1"`,
		`["auth","user","u1","listSessions",null]`:                                 `s-u1`,
		`["auth","user","u1","listAccounts",null]`:                                 `/list-accounts`,
		`["auth","user","u1","apiKey","list",null]`:                                `/api-key/list`,
		`["auth","user","u1","organization","active",{"organizationSlug":"orgs"}]`: `org-by-slug-orgs`,
		// members are scoped to the active organization's id, as the hook does
		`["auth","user","u1","organization","members","list",{"organizationId":"org-by-slug-orgs","organizationSlug":"orgs"}]`: `organizationId=org-by-slug-orgs`,
		// has_permission: the active organization of the route and the permissions
		`["auth","user","u1","organization","permissions","has",{"organizationId":"org-by-slug-orgs","permissions":{"member":["create"]}}]`: `"success":true`,
	}
	for k, frag := range want {
		d, ok := got[k]
		if !ok {
			t.Errorf("missing %s; have %v", k, keys(got))
			continue
		}
		b, _ := json.Marshal(d)
		if !strings.Contains(string(b), frag) {
			t.Errorf("%s: data %s lacks %q", k, b, frag)
		}
	}
	// list_user_invitations answered 403: left out, the page still served.
	if len(got) != len(want) || rec.Code != 200 || !strings.Contains(rec.Body.String(), "hello") {
		t.Fatalf("got %d queries (%v), status %d", len(got), keys(got), rec.Code)
	}
	if n := f.count("/list-sessions"); n != 1 {
		t.Fatalf("list_sessions in two matching blocks called %d times", n)
	}
	// has_permission is a POST carrying the visitor's origin.
	b, _ := json.Marshal(got[`["auth","user","u1","organization","permissions","has",{"organizationId":"org-by-slug-orgs","permissions":{"member":["create"]}}]`])
	if !strings.Contains(string(b), `"origin":"http://site.test"`) {
		t.Fatalf("has-permission request: %s", b)
	}
	// Cached per credential + family + params: a second page makes no call.
	serve(h, pageReq("/settings/orgs/acme", "tok1"))
	if n := f.count("/list-accounts"); n != 1 {
		t.Fatalf("list-accounts called %d times", n)
	}
	// Another slug is another query.
	rec = serve(h, pageReq("/orgs/other", "tok1"))
	if _, ok := queryData(t, rec.Body.String())[`["auth","user","u1","organization","active",{"organizationSlug":"other"}]`]; !ok {
		t.Fatal("placeholder not replaced per request")
	}
}

func keys(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestPrefetchSignedOutCallsNothing(t *testing.T) {
	f := newFakeAuth(t)
	h := newHandler(t, f.URL, func(h *Handler) { settingsPrefetch(h); h.Guard = nil })
	rec := serve(h, pageReq("/settings/orgs/acme", "unknown-token"))
	got := queryData(t, rec.Body.String())
	if len(got) != 1 || got[sessionKey] != nil {
		t.Fatalf("signed out: %v", got)
	}
	for _, ep := range []string{"/list-sessions", "/list-accounts", "/organization/get-full-organization"} {
		if f.count(ep) != 0 {
			t.Fatalf("%s called for a signed-out visitor", ep)
		}
	}
}

// The queries run in parallel and the upstream request does not wait for
// them: each query's answer is held back until all three queries are in
// flight at once and the upstream has been called. Run serially, or with
// the upstream behind the queries, they would miss the deadline and be
// left out.
func TestPrefetchParallelAndUpstreamNotHeldBack(t *testing.T) {
	var inFlight atomic.Int32
	allIn := make(chan struct{})
	upstreamCalled := make(chan struct{})
	var once, upOnce sync.Once
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/api/auth/get-session" {
			io.WriteString(w, `{"session":{"id":"s","token":"t"},"user":{"id":"u"}}`)
			return
		}
		if inFlight.Add(1) == 3 {
			once.Do(func() { close(allIn) })
		}
		select {
		case <-allIn:
		case <-time.After(5 * time.Second):
			w.WriteHeader(500)
			return
		}
		select {
		case <-upstreamCalled:
		case <-time.After(5 * time.Second):
			w.WriteHeader(500)
			return
		}
		fmt.Fprintf(w, `[%q]`, r.URL.Path)
	}))
	defer backend.Close()
	h := newHandler(t, backend.URL, func(h *Handler) {
		h.Timeout = caddy.Duration(10 * time.Second)
		h.Prefetch = []Prefetch{{Paths: []string{"*"}, Queries: []QuerySpec{{Family: "list_sessions"}, {Family: "list_accounts"}, {Family: "list_passkeys"}}}}
	})
	rec := serveWith(h, pageReq("/x", "tok"), func(w http.ResponseWriter, r *http.Request) {
		upOnce.Do(func() { close(upstreamCalled) })
		w.Header().Set("Content-Type", "text/html")
		io.WriteString(w, page)
	})
	if got := queryData(t, rec.Body.String()); len(got) != 4 {
		t.Fatalf("want session + 3 queries, got %v", keys(got))
	}
}

// A query still unresolved at the deadline (timeout) is left out; the page
// is served with what there is.
func TestPrefetchDeadline(t *testing.T) {
	release := make(chan struct{})
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/api/auth/get-session":
			io.WriteString(w, `{"session":{"id":"s","token":"t"},"user":{"id":"u"}}`)
		case "/api/auth/list-sessions":
			io.WriteString(w, `[]`)
		default:
			<-release
		}
	}))
	defer backend.Close()
	defer close(release) // before Close, which waits for the held handler
	h := newHandler(t, backend.URL, func(h *Handler) {
		h.Timeout = caddy.Duration(300 * time.Millisecond)
		h.Prefetch = []Prefetch{{Paths: []string{"*"}, Queries: []QuerySpec{{Family: "list_sessions"}, {Family: "list_passkeys"}}}}
	})
	rec := serve(h, pageReq("/x", "tok"))
	got := queryData(t, rec.Body.String())
	if _, ok := got[`["auth","user","u","listSessions",null]`]; !ok || len(got) != 2 || rec.Code != 200 {
		t.Fatalf("want session + list_sessions only, got %v (%d)", keys(got), rec.Code)
	}
}

// Two better_auth handlers in one chain inject once (the mark is a replacer
// value, taken off afterwards).
func TestTwoHandlersInjectOnce(t *testing.T) {
	f := newFakeAuth(t)
	outer := newHandler(t, f.URL, nil)
	inner := newHandler(t, f.URL, func(h *Handler) { h.CacheSize += 1 })
	upstream := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		io.WriteString(w, page)
	}
	t.Run("caddy", func(t *testing.T) {
		var repl *caddy.Replacer
		rec := serveWith(outer, pageReq("/settings/a", "tok1"), func(w http.ResponseWriter, r *http.Request) {
			repl = r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
			inner.ServeHTTP(w, r, caddyHandlerFunc(upstream))
		})
		if n := strings.Count(rec.Body.String(), `id="__BETTER_AUTH_STATE__"`); n != 1 {
			t.Fatalf("%d state blocks", n)
		}
		injected(t, rec.Body.String())
		if _, ok := repl.Get(injectingVar); ok {
			t.Fatal("the mark outlived the handler")
		}
	})
}

type caddyHandlerFunc func(http.ResponseWriter, *http.Request)

func (f caddyHandlerFunc) ServeHTTP(w http.ResponseWriter, r *http.Request) error {
	f(w, r)
	return nil
}

// A cold cache, 64 concurrent page loads for one credential: exactly one
// backend call for the session and for each family.
func TestColdConcurrentOneCallPerFamily(t *testing.T) {
	f := newFakeAuth(t)
	f.delay = 100 * time.Millisecond
	families := []string{"list_accounts", "list_sessions", "list_device_sessions", "list_passkeys", "list_api_keys"}
	h := newHandler(t, f.URL, func(h *Handler) {
		var qs []QuerySpec
		for _, name := range families {
			qs = append(qs, QuerySpec{Family: name})
		}
		h.Prefetch = []Prefetch{{Paths: []string{"*"}, Queries: qs}}
	})
	var wg sync.WaitGroup
	var bad atomic.Int32
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rec := serve(h, pageReq("/settings/x", "tok1"))
			if rec.Code != 200 || strings.Count(rec.Body.String(), `"queryHash"`) != 6 {
				bad.Add(1)
			}
		}()
	}
	wg.Wait()
	if bad.Load() != 0 {
		t.Fatalf("%d pages without all six queries", bad.Load())
	}
	for _, ep := range []string{"/get-session", "/list-accounts", "/list-sessions", "/multi-session/list-device-sessions", "/passkey/list-user-passkeys", "/api-key/list"} {
		if n := f.count(ep); n != 1 {
			t.Errorf("%s: %d backend calls for 64 concurrent cold requests, want 1", ep, n)
		}
	}
}
