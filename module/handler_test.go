package module

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"golang.org/x/net/html"
)

// fakeAuth is a Better Auth stand-in for edge cases and faults: tokens map
// to users, every call is counted per endpoint.
type fakeAuth struct {
	*httptest.Server
	mu        sync.Mutex
	calls     map[string]int
	lastReq   map[string]*http.Request
	users     map[string]string // token -> user id
	mode      atomic.Value      // "", "500", "429", "badjson", "slow", "object"
	delay     time.Duration
	setCookie string
}

func newFakeAuth(t *testing.T) *fakeAuth {
	f := &fakeAuth{calls: map[string]int{}, lastReq: map[string]*http.Request{}, users: map[string]string{"tok1": "u1", "tok2": "u2", "tok3": "u1"}}
	f.mode.Store("")
	f.Server = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeAuth) serve(w http.ResponseWriter, r *http.Request) {
	ep := strings.TrimPrefix(r.URL.Path, "/api/auth")
	f.mu.Lock()
	f.calls[ep]++
	f.lastReq[ep] = r.Clone(context.Background())
	delay, setCookie := f.delay, f.setCookie
	f.mu.Unlock()
	if delay > 0 {
		time.Sleep(delay)
	}
	switch f.mode.Load().(string) {
	case "500":
		w.WriteHeader(500)
		return
	case "429":
		w.WriteHeader(429)
		return
	case "badjson":
		w.Write([]byte(`{"session":`))
		return
	case "slow":
		time.Sleep(2 * time.Second)
	}
	if setCookie != "" {
		w.Header().Add("Set-Cookie", setCookie)
	}
	uid, token := "", ""
	if c, err := r.Cookie("better-auth.session_token"); err == nil {
		uid, token = f.users[c.Value], c.Value
	}
	if ep != "/get-session" && uid == "" {
		w.WriteHeader(401)
		w.Write([]byte(`{"code":"UNAUTHORIZED"}`))
		return
	}
	switch ep {
	case "/get-session":
		if uid == "" {
			w.Write([]byte("null"))
			return
		}
		fmt.Fprintf(w, `{"session":{"id":"s-%[1]s","token":%[2]q,"userId":"%[1]s","activeOrganizationId":"org-%[1]s","expiresAt":"2030-01-01T00:00:00.000Z"},"user":{"id":"%[1]s","name":"User <%[1]s>","email":"%[1]s@example.com","big":12345678901234567890}}`, uid, token)
	case "/list-sessions":
		fmt.Fprintf(w, `[{"id":"s-%s"}]`, uid)
	case "/organization/list-members":
		fmt.Fprintf(w, `{"members":[{"userId":%q,"q":%q}],"total":1}`, uid, r.URL.RawQuery)
	case "/organization/get-full-organization":
		fmt.Fprintf(w, `{"id":"org-by-slug-%s","slug":%q}`, r.URL.Query().Get("organizationSlug"), r.URL.Query().Get("organizationSlug"))
	case "/organization/list-user-invitations":
		w.WriteHeader(403)
		w.Write([]byte(`{"code":"EMAIL_VERIFICATION_REQUIRED_FOR_INVITATION"}`))
	case "/organization/has-permission":
		body, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, `{"success":true,"body":%s,"origin":%q}`, body, r.Header.Get("Origin"))
	default:
		fmt.Fprintf(w, `[{"user":%q,"ep":%q}]`, uid, ep)
	}
}

func (f *fakeAuth) count(ep string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[ep]
}

func (f *fakeAuth) last(ep string) *http.Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.lastReq[ep]
}

func newHandler(t *testing.T, backend string, mod func(*Handler)) *Handler {
	t.Helper()
	h := &Handler{
		Backend:   backend,
		Guard:     []string{"/settings/*", "/dashboard*"},
		Guest:     []string{"/auth/sign-in", "/auth/sign-up"},
		CacheSize: 8 << 20, // its own cache, apart from other tests
	}
	h.CacheSize += int64(len(t.Name())) // a distinct pool key per test
	if mod != nil {
		mod(h)
	}
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	t.Cleanup(cancel)
	if err := h.Provision(ctx); err != nil {
		t.Fatal(err)
	}
	if err := h.Validate(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Cleanup() })
	return h
}

const page = "<!doctype html><html><head><title>t</title></head><body>hello</body></html>"

// serve runs one request through h in front of an upstream answering page.
func serve(h *Handler, r *http.Request) *httptest.ResponseRecorder {
	return serveWith(h, r, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("ETag", `"v1"`)
		io.WriteString(w, page)
	})
}

func serveWith(h *Handler, r *http.Request, up http.HandlerFunc) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	if err := serveWithWriter(h, rec, r, up); err != nil {
		rec.Code = 599
	}
	return rec
}

func serveWithWriter(h *Handler, w http.ResponseWriter, r *http.Request, up http.HandlerFunc) error {
	ctx := context.WithValue(r.Context(), caddyhttp.VarsCtxKey, map[string]any{caddyhttp.ClientIPVarKey: "203.0.113.7"})
	r = r.WithContext(ctx)
	caddyhttp.NewTestReplacer(r) // the request placeholders, as Caddy's server sets them
	return h.ServeHTTP(w, r, caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		up(w, r)
		return nil
	}))
}

func pageReq(path, token string) *http.Request {
	r := httptest.NewRequest("GET", "http://site.test"+path, nil)
	r.Header.Set("Accept", "text/html,application/xhtml+xml")
	if token != "" {
		r.Header.Set("Cookie", "theme=dark; better-auth.session_token="+token)
	}
	return r
}

// injected returns the dehydrated state of a page, failing unless there is
// exactly one state element.
func injected(t *testing.T, body string) map[string]any {
	t.Helper()
	doc, err := html.Parse(strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	var found []string
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode && n.Data == "script" {
			for _, a := range n.Attr {
				if a.Key == "id" && a.Val == DefaultStateID && n.FirstChild != nil {
					found = append(found, n.FirstChild.Data)
				}
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(doc)
	if len(found) != 1 {
		t.Fatalf("want exactly one state element, found %d in %q", len(found), body)
	}
	var state map[string]any
	if err := json.Unmarshal([]byte(found[0]), &state); err != nil {
		t.Fatalf("state is not JSON: %v", err)
	}
	return state
}

// queryData maps each injected queryHash to its data.
func queryData(t *testing.T, body string) map[string]any {
	t.Helper()
	out := map[string]any{}
	for _, q := range injected(t, body)["queries"].([]any) {
		q := q.(map[string]any)
		out[q["queryHash"].(string)] = q["state"].(map[string]any)["data"]
	}
	return out
}

const sessionKey = `["auth","getSession"]`

func TestSessionCachedAndInjected(t *testing.T) {
	f := newFakeAuth(t)
	h := newHandler(t, f.URL, nil)
	for i := range 3 {
		rec := serve(h, pageReq("/settings/account", "tok1"))
		if rec.Code != 200 {
			t.Fatalf("request %d: status %d", i, rec.Code)
		}
		data := queryData(t, rec.Body.String())[sessionKey].(map[string]any)
		if data["user"].(map[string]any)["id"] != "u1" {
			t.Fatalf("wrong session injected: %v", data)
		}
		if cc := rec.Header().Get("Cache-Control"); cc != "private, no-store" {
			t.Fatalf("Cache-Control %q", cc)
		}
		if rec.Header().Get("ETag") != "" || !strings.Contains(rec.Header().Get("Vary"), "Cookie") {
			t.Fatalf("headers of a per-user page: %v", rec.Header())
		}
	}
	if n := f.count("/get-session"); n != 1 {
		t.Fatalf("3 requests within stale time made %d get-session calls, want 1", n)
	}
	// Only the Better Auth cookies, the client IP and the agent reach Better Auth.
	r := f.last("/get-session")
	if r.Header.Get("Cookie") != "better-auth.session_token=tok1" || r.Header.Get("X-Forwarded-For") != "203.0.113.7" {
		t.Fatalf("backend got %v", r.Header)
	}
	// Big numbers keep their exact text.
	rec := serve(h, pageReq("/settings/account", "tok1"))
	if !strings.Contains(rec.Body.String(), `"big":12345678901234567890`) {
		t.Fatal("number text changed")
	}
	// HTML-safe: the user's name "User <u1>" is escaped inside the script.
	if strings.Contains(rec.Body.String(), "User <u1>") || !strings.Contains(rec.Body.String(), `User \u003cu1\u003e`) {
		t.Fatal("name not HTML-escaped in the state")
	}
}

func TestStaleTimeExpiry(t *testing.T) {
	f := newFakeAuth(t)
	st := caddy.Duration(200 * time.Millisecond)
	h := newHandler(t, f.URL, func(h *Handler) { h.StaleTime = &st })
	serve(h, pageReq("/settings/a", "tok1"))
	serve(h, pageReq("/settings/a", "tok1"))
	if n := f.count("/get-session"); n != 1 {
		t.Fatalf("within stale time: %d calls", n)
	}
	time.Sleep(300 * time.Millisecond)
	serve(h, pageReq("/settings/a", "tok1"))
	if n := f.count("/get-session"); n != 2 {
		t.Fatalf("after stale time: %d calls, want 2", n)
	}
	zero := caddy.Duration(0)
	h0 := newHandler(t, f.URL, func(h *Handler) { h.StaleTime = &zero })
	serve(h0, pageReq("/settings/a", "tok2"))
	serve(h0, pageReq("/settings/a", "tok2"))
	if n := f.count("/get-session"); n != 4 {
		t.Fatalf("stale_time 0 must not cache: %d calls, want 4", n)
	}
}

func TestConcurrentColdRequestsOneCall(t *testing.T) {
	f := newFakeAuth(t)
	f.delay = 100 * time.Millisecond
	h := newHandler(t, f.URL, nil)
	var wg sync.WaitGroup
	codes := make(chan int, 50)
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes <- serve(h, pageReq("/settings/account", "tok1")).Code
		}()
	}
	wg.Wait()
	close(codes)
	for c := range codes {
		if c != 200 {
			t.Fatalf("status %d", c)
		}
	}
	if n := f.count("/get-session"); n != 1 {
		t.Fatalf("50 concurrent cold requests made %d backend calls, want 1", n)
	}
}

func TestNoCredentialNoBackendCall(t *testing.T) {
	f := newFakeAuth(t)
	h := newHandler(t, f.URL, nil)
	rec := serve(h, pageReq("/", ""))
	if rec.Code != 200 {
		t.Fatal(rec.Code)
	}
	if d, ok := queryData(t, rec.Body.String())[sessionKey]; !ok || d != nil {
		t.Fatalf("signed-out page must carry session null, got %v", d)
	}
	r := pageReq("/", "")
	r.Header.Set("Cookie", "theme=dark; other.session_token=x")
	serve(h, r)
	if n := f.count("/get-session"); n != 0 {
		t.Fatalf("%d backend calls without a credential", n)
	}
}

func TestGuardRedirectsAnd401(t *testing.T) {
	f := newFakeAuth(t)
	h := newHandler(t, f.URL, nil)
	for _, tc := range []struct {
		name   string
		req    func() *http.Request
		status int
		loc    string
	}{
		{"navigation signed out", func() *http.Request { return pageReq("/settings/account?tab=1&x=%2F", "") }, 302,
			"/auth/sign-in?redirectTo=" + url.QueryEscape("/settings/account?tab=1&x=%2F")},
		{"bad token is signed out", func() *http.Request { return pageReq("/settings/account", "nope") }, 302,
			"/auth/sign-in?redirectTo=%2Fsettings%2Faccount"},
		{"sec-fetch navigate", func() *http.Request {
			r := httptest.NewRequest("GET", "http://site.test/dashboard", nil)
			r.Header.Set("Sec-Fetch-Mode", "navigate")
			return r
		}, 302, "/auth/sign-in?redirectTo=%2Fdashboard"},
		{"fetch gets 401", func() *http.Request {
			r := httptest.NewRequest("GET", "http://site.test/settings/data.json", nil)
			r.Header.Set("Sec-Fetch-Mode", "cors")
			r.Header.Set("Accept", "text/html")
			return r
		}, 401, ""},
		{"xhr gets 401", func() *http.Request {
			r := pageReq("/settings/x", "")
			r.Header.Set("X-Requested-With", "XMLHttpRequest")
			return r
		}, 401, ""},
		{"api post gets 401", func() *http.Request { return httptest.NewRequest("POST", "http://site.test/settings/save", nil) }, 401, ""},
		{"unguarded page served", func() *http.Request { return pageReq("/about", "") }, 200, ""},
		{"signed in passes", func() *http.Request { return pageReq("/settings/account", "tok1") }, 200, ""},
		{"case and slashes as the path matcher sees them", func() *http.Request { return pageReq("//SETTINGS//account", "") }, 302,
			"/auth/sign-in?redirectTo=%2FSETTINGS%2Faccount"},
		{"dot segments", func() *http.Request { return pageReq("/x/../settings/a", "") }, 302, "/auth/sign-in?redirectTo=%2Fsettings%2Fa"},
		{"auth api never guarded", func() *http.Request { return pageReq("/api/auth/get-session", "") }, 200, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := serve(h, tc.req())
			if rec.Code != tc.status {
				t.Fatalf("status %d, want %d (%s)", rec.Code, tc.status, rec.Body)
			}
			if tc.loc != "" && rec.Header().Get("Location") != tc.loc {
				t.Fatalf("Location %q, want %q", rec.Header().Get("Location"), tc.loc)
			}
			if tc.status == 401 {
				var v map[string]any
				if json.Unmarshal(rec.Body.Bytes(), &v) != nil || v["code"] != "UNAUTHORIZED" || rec.Header().Get("Content-Type") != "application/json" {
					t.Fatalf("401 body %q", rec.Body)
				}
			}
			if tc.status == 302 && rec.Header().Get("Cache-Control") != "no-store" {
				t.Fatal("redirect may be cached")
			}
		})
	}
}

func TestSignInNeverGuarded(t *testing.T) {
	f := newFakeAuth(t)
	h := newHandler(t, f.URL, func(h *Handler) { h.Guard = []string{"*"}; h.Guest = nil })
	if rec := serve(h, pageReq("/auth/sign-in", "")); rec.Code != 200 {
		t.Fatalf("sign-in page guarded: %d", rec.Code)
	}
	if rec := serve(h, pageReq("/AUTH//sign-in", "")); rec.Code != 200 {
		t.Fatalf("sign-in page variant guarded: %d", rec.Code)
	}
	if rec := serve(h, pageReq("/other", "")); rec.Code != 302 {
		t.Fatalf("guard * did not guard: %d", rec.Code)
	}
}

func TestRedirectTargetsStayLocal(t *testing.T) {
	f := newFakeAuth(t)
	h := newHandler(t, f.URL, func(h *Handler) { h.Guard = []string{"*"} })
	for _, raw := range []string{
		"//evil.com", "///evil.com", "/\\evil.com", "/%5Cevil.com", "/%2F%2Fevil.com", "/..//evil.com",
		"/x/..%2f..%2fevil.com", "/%09/evil.com", "/.//evil.com", "/;//evil.com", "/a#//evil.com", "/http:%2F%2Fevil.com",
	} {
		r := httptest.NewRequest("GET", "http://site.test/", nil)
		r.URL, _ = url.Parse(raw)
		if r.URL == nil {
			r.URL = &url.URL{Path: raw}
		}
		r.Header.Set("Accept", "text/html")
		rec := serve(h, r)
		if rec.Code != 302 {
			t.Errorf("%q: status %d", raw, rec.Code)
			continue
		}
		loc := rec.Header().Get("Location")
		u, err := url.Parse(loc)
		if err != nil || u.Host != "" || u.Scheme != "" || !strings.HasPrefix(loc, "/auth/sign-in?") {
			t.Errorf("%q: Location %q is not local", raw, loc)
		}
		to := u.Query().Get("redirectTo")
		if !isLocalPath(to) {
			t.Errorf("%q: redirectTo %q is not a local path", raw, to)
		}
	}
}

func TestGuestRedirects(t *testing.T) {
	f := newFakeAuth(t)
	h := newHandler(t, f.URL, nil)
	for _, tc := range []struct{ to, want string }{
		{"/settings/account?tab=2#x", "/settings/account?tab=2#x"},
		{"", "/"},
		{"//evil.com", "/"},
		{"/\\evil.com", "/"},
		{"https://evil.com/x", "/"},
		{"http://site.test/ok", "/ok"},
		{"javascript:alert(1)", "/"},
		{"/\t/evil.com", "/"},
		{"/.//evil.com", "/"},
		{"/auth/sign-in", "/"}, // a guest page again would loop
		{" /trimmed", "/trimmed"},
		{"http://user:pw@site.test/", "/"},
	} {
		rec := serve(h, pageReq("/auth/sign-in?redirectTo="+url.QueryEscape(tc.to), "tok1"))
		if rec.Code != 302 || rec.Header().Get("Location") != tc.want {
			t.Errorf("redirectTo %q: %d %q, want %q", tc.to, rec.Code, rec.Header().Get("Location"), tc.want)
		}
	}
	if rec := serve(h, pageReq("/auth/sign-in", "")); rec.Code != 200 {
		t.Fatalf("signed-out visitor of sign-in: %d", rec.Code)
	}
}

func TestBackendFailures(t *testing.T) {
	for _, mode := range []string{"500", "429", "badjson", "slow", "refused"} {
		t.Run(mode, func(t *testing.T) {
			f := newFakeAuth(t)
			backend := f.URL
			if mode == "refused" {
				f.Close()
			} else {
				f.mode.Store(mode)
			}
			h := newHandler(t, backend, func(h *Handler) { h.Timeout = caddy.Duration(500 * time.Millisecond) })
			rec := serve(h, pageReq("/settings/account", "tok1"))
			if rec.Code != 503 || strings.Contains(rec.Body.String(), "hello") || !strings.Contains(rec.Header().Get("Content-Type"), "text/html") {
				t.Fatalf("guarded navigation: %d %q", rec.Code, rec.Body)
			}
			api := pageReq("/settings/x", "tok1")
			api.Header.Set("Sec-Fetch-Mode", "cors")
			if rec := serve(h, api); rec.Code != 503 || rec.Header().Get("Content-Type") != "application/json" {
				t.Fatalf("guarded API: %d %q", rec.Code, rec.Header())
			}
			rec = serve(h, pageReq("/about", "tok1"))
			if rec.Code != 200 || rec.Body.String() != page {
				t.Fatalf("unguarded page must be served unchanged: %d %q", rec.Code, rec.Body)
			}
			if mode == "refused" {
				return
			}
			// Nothing of a failure is cached: once the backend is back, the
			// next request is served.
			n := f.count("/get-session")
			f.mode.Store("")
			if rec := serve(h, pageReq("/settings/account", "tok1")); rec.Code != 200 {
				t.Fatalf("after recovery: %d", rec.Code)
			}
			if f.count("/get-session") != n+1 {
				t.Fatal("a failure was cached")
			}
		})
	}
}

func TestSetCookieForwarded(t *testing.T) {
	f := newFakeAuth(t)
	f.setCookie = "better-auth.session_token=refreshed; Path=/; HttpOnly"
	h := newHandler(t, f.URL, nil)
	rec := serve(h, pageReq("/settings/account", "tok1"))
	if got := rec.Header().Values("Set-Cookie"); len(got) != 1 || got[0] != f.setCookie {
		t.Fatalf("Set-Cookie on the page: %v", got)
	}
	// On a redirect too (a cleared cookie of a revoked session).
	rec = serve(h, pageReq("/settings/account", "revoked"))
	if rec.Code != 302 || len(rec.Header().Values("Set-Cookie")) != 1 {
		t.Fatalf("Set-Cookie on the redirect: %d %v", rec.Code, rec.Header())
	}
	// A cache hit does not repeat it.
	rec = serve(h, pageReq("/settings/account", "tok1"))
	if len(rec.Header().Values("Set-Cookie")) != 0 {
		t.Fatal("Set-Cookie repeated on a cache hit")
	}
}

func TestPlaceholders(t *testing.T) {
	f := newFakeAuth(t)
	h := newHandler(t, f.URL, nil)
	var got []string
	serveWith(h, pageReq("/settings/x", "tok1"), func(w http.ResponseWriter, r *http.Request) {
		repl := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
		got = []string{
			repl.ReplaceAll("{http.auth.user.id}", "-"), repl.ReplaceAll("{http.auth.user.email}", "-"),
			repl.ReplaceAll("{http.auth.user.name}", "-"), repl.ReplaceAll("{http.auth.session.id}", "-"),
		}
	})
	want := []string{"u1", "u1@example.com", "User <u1>", "s-u1"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("placeholders %v, want %v", got, want)
	}
}

// The identity overwrites what an earlier handler set (vars, basic_auth),
// and the innermost better_auth is the one the upstream sees.
func TestPlaceholdersOverwrite(t *testing.T) {
	f1, f2 := newFakeAuth(t), newFakeAuth(t)
	f2.users["tok1"] = "u2"
	outer := newHandler(t, f1.URL, nil)
	inner := newHandler(t, f2.URL, func(h *Handler) { h.CacheSize++ })
	seen := func(chain ...*Handler) string {
		r := pageReq("/settings/x", "tok1")
		r = r.WithContext(context.WithValue(r.Context(), caddyhttp.VarsCtxKey, map[string]any{}))
		caddyhttp.NewTestReplacer(r).Set("http.auth.user.id", "anonymous")
		var got string
		var next caddyhttp.Handler = caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
			got, _ = r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer).GetString("http.auth.user.id")
			w.Header().Set("Content-Type", "text/html")
			_, err := io.WriteString(w, page)
			return err
		})
		for i := len(chain) - 1; i >= 0; i-- {
			h, n := chain[i], next
			next = caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error { return h.ServeHTTP(w, r, n) })
		}
		if err := next.ServeHTTP(httptest.NewRecorder(), r); err != nil {
			t.Fatal(err)
		}
		return got
	}
	if got := seen(outer); got != "u1" {
		t.Errorf("{http.auth.user.id} = %q after an earlier Set, want u1", got)
	}
	if got := seen(outer, inner); got != "u2" {
		t.Errorf("{http.auth.user.id} = %q, want the inner handler's u2", got)
	}
}

// The queries' timeout starts after the session: a session call that took
// long, cold or failed and served by stale_if_error, does not use it up
// (nor make an answer that went stale meanwhile look fresh).
func TestQueriesDeadlineAfterSessionCall(t *testing.T) {
	for _, stale := range []bool{false, true} {
		name := map[bool]string{false: "cold", true: "stale_if_error"}[stale]
		t.Run(name, func(t *testing.T) {
			var failing atomic.Bool
			backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/api/auth/get-session" {
					time.Sleep(350 * time.Millisecond)
					if failing.Load() {
						http.Error(w, "down", http.StatusBadGateway)
						return
					}
					io.WriteString(w, `{"session":{"id":"s","token":"t"},"user":{"id":"u"}}`)
					return
				}
				time.Sleep(250 * time.Millisecond)
				io.WriteString(w, `[]`)
			}))
			defer backend.Close()
			h := newHandler(t, backend.URL, func(h *Handler) {
				h.Timeout = caddy.Duration(500 * time.Millisecond) // > each call, < both in a row
				h.Prefetch = []Prefetch{{Paths: []string{"*"}, Queries: []QuerySpec{{Family: "list_sessions"}}}}
				if stale {
					st := caddy.Duration(100 * time.Millisecond)
					h.StaleTime, h.StaleIfError = &st, caddy.Duration(time.Minute)
				}
			})
			if stale {
				serve(h, pageReq("/x", "tok")) // the session and the query, cached
				time.Sleep(150 * time.Millisecond)
				failing.Store(true)
			}
			got := queryData(t, serve(h, pageReq("/x", "tok")).Body.String())
			if _, ok := got[`["auth","getSession"]`]; !ok {
				t.Fatalf("no session: %v", keys(got))
			}
			if _, ok := got[`["auth","user","u","listSessions",null]`]; !ok {
				t.Fatalf("list_sessions left out after a %s session: %v", name, keys(got))
			}
		})
	}
}
