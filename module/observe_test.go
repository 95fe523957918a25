package module

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// authUpstream stands for the reverse_proxy to Better Auth behind the
// handler: it answers every auth call 200, with a user and a Set-Cookie
// when asked, and records the order of events.
func authUpstream(status int, body, setCookie string, events *[]string, mu *sync.Mutex) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		*events = append(*events, "upstream "+string(b))
		mu.Unlock()
		if setCookie != "" {
			w.Header().Add("Set-Cookie", setCookie)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		io.WriteString(w, body)
	}
}

// Each row of the table, against three cached visitors: the caller (tok1,
// user u1), the caller's user on another device (tok3), another user
// (tok2). After the mutation, who has to ask Better Auth again?
func TestInvalidationTable(t *testing.T) {
	type want struct{ caller, device, other bool }
	cases := map[string]struct {
		body string
		want want
	}{
		"/sign-out":                    {"", want{true, true, false}}, // the other devices list one session less
		"/update-user":                 {`{"name":"New"}`, want{true, true, false}},
		"/revoke-session":              {`{"token":"tok3"}`, want{true, true, false}},
		"/revoke-other-sessions":       {"", want{true, true, false}},
		"/organization/create":         {`{"name":"o","slug":"o"}`, want{true, true, false}},
		"/organization/has-permission": {`{}`, want{false, false, false}},
		"/sign-in/email":               {"", want{true, true, false}}, // the answer names u1
		"/api-key/create":              {"", want{true, true, false}},
		"/some-plugin/mutate":          {"", want{true, true, false}}, // unknown POST: the user
	}
	for endpoint, tc := range cases {
		t.Run(endpoint, func(t *testing.T) {
			f := newFakeAuth(t)
			h := newHandler(t, f.URL, func(h *Handler) {
				h.Prefetch = []Prefetch{{Paths: []string{"*"}, Queries: []QuerySpec{{Family: "list_organizations"}}}}
			})
			for _, tok := range []string{"tok1", "tok3", "tok2"} {
				serve(h, pageReq("/settings/x", tok))
			}
			before := map[string]int{}
			for _, ep := range []string{"/get-session", "/organization/list"} {
				before[ep] = f.count(ep)
			}
			var mu sync.Mutex
			var events []string
			req := httptest.NewRequest("POST", "http://site.test/api/auth"+endpoint, strings.NewReader(tc.body))
			req.Header.Set("Cookie", "better-auth.session_token=tok1")
			rec := serveWith(h, req, authUpstream(200, `{"user":{"id":"u1"}}`, "", &events, &mu))
			if rec.Code != 200 || !strings.Contains(rec.Body.String(), `"u1"`) {
				t.Fatalf("auth answer changed: %d %q", rec.Code, rec.Body)
			}
			if len(events) != 1 || events[0] != "upstream "+tc.body {
				t.Fatalf("the auth request did not reach Better Auth intact: %q", events)
			}
			refetched := func(tok string) bool {
				n := f.count("/get-session")
				serve(h, pageReq("/settings/x", tok))
				return f.count("/get-session") > n
			}
			got := want{refetched("tok1"), refetched("tok3"), refetched("tok2")}
			if got != tc.want {
				t.Fatalf("refetched caller/device/other = %+v, want %+v", got, tc.want)
			}
		})
	}
}

// Organization changes drop the organization queries of every member,
// other users included; a failed mutation drops nothing.
func TestInvalidationOrganizationAndFailures(t *testing.T) {
	f := newFakeAuth(t)
	h := newHandler(t, f.URL, func(h *Handler) {
		h.Prefetch = []Prefetch{{Paths: []string{"*"}, Queries: []QuerySpec{{Family: "list_organizations"}, {Family: "list_sessions"}}}}
	})
	serve(h, pageReq("/p", "tok1"))
	serve(h, pageReq("/p", "tok2"))
	var mu sync.Mutex
	var events []string
	post := func(ep string, status int) {
		req := httptest.NewRequest("POST", "http://site.test/api/auth"+ep, strings.NewReader(`{}`))
		req.Header.Set("Cookie", "better-auth.session_token=tok1")
		serveWith(h, req, authUpstream(status, `{}`, "", &events, &mu))
	}
	post("/organization/remove-member", 403)
	serve(h, pageReq("/p", "tok2"))
	if f.count("/organization/list") != 2 || f.count("/get-session") != 2 {
		t.Fatal("a failed mutation invalidated entries")
	}
	post("/organization/remove-member", 200)
	serve(h, pageReq("/p", "tok2"))
	if f.count("/organization/list") != 3 {
		t.Fatal("another member's organization query survived an organization change")
	}
	if f.count("/list-sessions") != 2 || f.count("/get-session") != 2 {
		t.Fatal("an organization change dropped another user's non-organization entries")
	}
}

// A Set-Cookie naming a session token (sign-in as another account,
// set-active) drops every entry holding that token, including a cached
// signed-out answer for it.
func TestInvalidationBySetCookie(t *testing.T) {
	f := newFakeAuth(t)
	h := newHandler(t, f.URL, nil)
	serve(h, pageReq("/settings/x", "tokX")) // unknown token: cached as signed out
	f.mu.Lock()
	f.users["tokX"] = "u9" // Better Auth now knows it
	f.mu.Unlock()
	var mu sync.Mutex
	var events []string
	req := httptest.NewRequest("POST", "http://site.test/api/auth/multi-session/set-active", strings.NewReader(`{"sessionToken":"tokX"}`))
	req.Header.Set("Cookie", "better-auth.session_token=tok1")
	rec := serveWith(h, req, authUpstream(200, `{}`, "better-auth.session_token=tokX.sig; Path=/; HttpOnly", &events, &mu))
	if rec.Header().Get("Set-Cookie") == "" {
		t.Fatal("Set-Cookie of the auth answer lost")
	}
	if rec := serve(h, pageReq("/settings/x", "tokX")); rec.Code != 200 {
		t.Fatalf("the new credential hit a stale signed-out entry: %d", rec.Code)
	}
}

// The answer reaches the client only after the invalidation: a page load
// racing the sign-out answer can never see the old session once the
// client has the answer.
func TestInvalidationBeforeAnswer(t *testing.T) {
	f := newFakeAuth(t)
	h := newHandler(t, f.URL, nil)
	serve(h, pageReq("/settings/x", "tok1"))
	f.mu.Lock()
	delete(f.users, "tok1") // signed out at Better Auth
	f.mu.Unlock()
	req := httptest.NewRequest("POST", "http://site.test/api/auth/sign-out", nil)
	req.Header.Set("Cookie", "better-auth.session_token=tok1")
	w := &orderRecorder{ResponseRecorder: httptest.NewRecorder(), onHeader: func() {
		// The moment the answer starts to leave, the old cookie is no
		// longer signed in.
		if rec := serve(h, pageReq("/settings/x", "tok1")); rec.Code != 302 {
			t.Errorf("page load as the answer left: %d", rec.Code)
		}
	}}
	r := req
	var mu sync.Mutex
	var events []string
	serveWithWriter(h, w, r, authUpstream(200, `{"success":true}`, "", &events, &mu))
	if !w.called {
		t.Fatal("no answer")
	}
}

type orderRecorder struct {
	*httptest.ResponseRecorder
	onHeader func()
	called   bool
}

func (o *orderRecorder) WriteHeader(code int) {
	if !o.called {
		o.called = true
		o.onHeader()
	}
	o.ResponseRecorder.WriteHeader(code)
}

// The README documents every row of the table.
func TestInvalidationTableInReadme(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, inv := range Invalidations {
		if !strings.Contains(string(readme), "`"+inv.method+" "+inv.endpoint+"`") {
			t.Errorf("README lacks the row for %s %s", inv.method, inv.endpoint)
		}
	}
}

var _ = time.Second

// Every row of the table, through the handler: the caller, the caller's
// user on another device (tok3) and another user (tok2, whose organization
// query is cached too) are refetched exactly as the row's scope says.
func TestInvalidationEveryRow(t *testing.T) {
	for _, row := range Invalidations {
		endpoint := strings.ReplaceAll(row.endpoint, "*", "email")
		t.Run(row.method+" "+endpoint, func(t *testing.T) {
			f := newFakeAuth(t)
			h := newHandler(t, f.URL, func(h *Handler) {
				h.Prefetch = []Prefetch{{Paths: []string{"*"}, Queries: []QuerySpec{{Family: "list_organizations"}}}}
			})
			warm(h, f, "tok1", "tok3", "tok2")
			var mu sync.Mutex
			var events []string
			req := httptest.NewRequest(row.method, "http://site.test/api/auth"+endpoint, strings.NewReader(`{"token":"tok3","sessionToken":"tok3"}`))
			req.Header.Set("Cookie", "better-auth.session_token=tok1")
			if rec := serveWith(h, req, authUpstream(200, `{"user":{"id":"u1"}}`, "", &events, &mu)); rec.Code != 200 {
				t.Fatal(rec.Code)
			}
			refetched := func(tok, ep string) bool {
				n := f.count(ep)
				serve(h, pageReq("/settings/x", tok))
				return f.count(ep) > n
			}
			device := row.scope&(scopeUser|scopeAnswerUser|scopeBodyToken) != 0
			if got := refetched("tok1", "/get-session"); got != (row.scope != 0) {
				t.Errorf("caller refetched = %v", got)
			}
			if got := refetched("tok3", "/get-session"); got != device {
				t.Errorf("other device refetched = %v, want %v", got, device)
			}
			sessions, orgs := f.count("/get-session"), f.count("/organization/list")
			serve(h, pageReq("/settings/x", "tok2"))
			if f.count("/get-session") != sessions {
				t.Error("another user's session was dropped")
			}
			if got := f.count("/organization/list") > orgs; got != (row.scope&scopeOrganization != 0) {
				t.Errorf("another user's organization query refetched = %v", got)
			}
		})
	}
}

// warm loads the tokens' pages until a pass makes no backend call: a
// ristretto write can be dropped under load, and the tests below must start
// from entries that really are cached.
func warm(h *Handler, f *fakeAuth, tokens ...string) {
	for range 10 {
		before := f.count("/get-session") + f.count("/organization/list")
		for _, tok := range tokens {
			serve(h, pageReq("/settings/x", tok))
		}
		if f.count("/get-session")+f.count("/organization/list") == before {
			return
		}
	}
}
