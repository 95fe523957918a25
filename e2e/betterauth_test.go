package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/html"

	"github.com/seed5911dcdf/caddy-better-auth/betterauth"
	"github.com/seed5911dcdf/caddy-better-auth/inject"
	"github.com/seed5911dcdf/caddy-better-auth/internal/batest"
	"github.com/seed5911dcdf/caddy-better-auth/internal/sidecar"
)

// stack is a real Better Auth server behind the sidecar, with a small HTML
// upstream for every other path, as a user runs it.
type stack struct {
	t        *testing.T
	ba       *batest.Server
	url      string // the sidecar's origin
	upstream *httptest.Server
}

type stackOptions struct {
	ba        batest.Options
	staleTime string
	extra     string // more better_auth subdirectives
}

func allFamiliesPrefetch() string {
	var b strings.Builder
	b.WriteString("prefetch /settings/* {\n")
	for _, name := range betterauth.FamilyNames() {
		b.WriteString("\t\t\t" + name)
		if name == "has_permission" {
			b.WriteString(" `{\"permissions\":{\"member\":[\"create\"]}}`")
		}
		b.WriteString("\n")
	}
	b.WriteString("\t\t}\n")
	return b.String()
}

func newStack(t *testing.T, o stackOptions) *stack {
	t.Helper()
	port := sidecar.FreePort(t)
	s := &stack{t: t, url: fmt.Sprintf("http://127.0.0.1:%d", port)}
	o.ba.BaseURL = s.url
	s.ba = batest.Start(t, o.ba)
	s.upstream = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, "<!doctype html><html><head><meta charset=utf-8><title>app</title></head><body><div id=root>%s</div></body></html>", html.EscapeString(r.URL.Path))
	}))
	t.Cleanup(s.upstream.Close)
	if o.staleTime == "" {
		o.staleTime = "5s"
	}
	cfg := sidecar.Globals(port) + fmt.Sprintf(`%s {
	better_auth {
		backend %s
		stale_time %s
		guard /settings/* /orgs/*
		guest /auth/sign-in /auth/sign-up
		%s
		%s
	}
	handle /api/auth/* {
		reverse_proxy %s
	}
	handle {
		reverse_proxy %s
	}
}
`, s.url, s.ba.URL, o.staleTime, allFamiliesPrefetch(), o.extra, strings.TrimPrefix(s.ba.URL, "http://"), strings.TrimPrefix(s.upstream.URL, "http://"))
	sidecar.Load(t, cfg)
	return s
}

// browser is a cookie jar on the sidecar's origin.
func (s *stack) browser() *batest.Client { return batest.NewClient(s.url, s.url) }

// direct is a client straight to Better Auth carrying b's cookies.
func (s *stack) direct(b *batest.Client) *batest.Client {
	d := batest.NewClient(s.ba.URL, s.url)
	u, _ := url.Parse(s.ba.URL)
	d.Jar().SetCookies(u, b.Cookies())
	return d
}

func (s *stack) page(b *batest.Client, path string) (*http.Response, string) {
	s.t.Helper()
	resp, err := b.Do("GET", path, nil, http.Header{"Accept": {"text/html"}, "Sec-Fetch-Mode": {"navigate"}})
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

// stateOf returns each injected query's data by queryHash; it fails unless
// the page holds exactly one state element.
func stateOf(t *testing.T, body string) map[string]json.RawMessage {
	t.Helper()
	doc, err := html.Parse(strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	var blocks []string
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode && n.Data == "script" {
			for _, a := range n.Attr {
				if a.Key == "id" && a.Val == "__BETTER_AUTH_STATE__" && n.FirstChild != nil {
					blocks = append(blocks, n.FirstChild.Data)
				}
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(doc)
	if len(blocks) != 1 {
		t.Fatalf("want one state element, found %d in %s", len(blocks), body)
	}
	var st struct {
		Queries []struct {
			QueryHash string `json:"queryHash"`
			State     struct {
				Data json.RawMessage `json:"data"`
			} `json:"state"`
		} `json:"queries"`
	}
	if err := json.Unmarshal([]byte(blocks[0]), &st); err != nil {
		t.Fatal(err)
	}
	out := map[string]json.RawMessage{}
	for _, q := range st.Queries {
		out[q.QueryHash] = q.State.Data
	}
	return out
}

func sameJSON(t *testing.T, a, b []byte) bool {
	t.Helper()
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		t.Fatalf("not JSON: %s / %s", a, b)
	}
	return reflect.DeepEqual(x, y)
}

func mustSignUp(t *testing.T, c *batest.Client, email, name string) map[string]any {
	t.Helper()
	res, err := c.SignUp(email, "correct horse battery staple", name)
	if err != nil {
		t.Fatalf("sign-up %s: %v", email, err)
	}
	return res["user"].(map[string]any)
}

const sessionHash = `["auth","getSession"]`

func TestRealBetterAuthSignUpGuardAndInjection(t *testing.T) {
	s := newStack(t, stackOptions{})
	b := s.browser()

	// Signed out: redirected with redirectTo, an API call gets 401.
	resp, _ := s.page(b, "/settings/account?tab=security")
	if resp.StatusCode != 302 || resp.Header.Get("Location") != "/auth/sign-in?redirectTo=%2Fsettings%2Faccount%3Ftab%3Dsecurity" {
		t.Fatalf("signed out: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	status, _, _, _ := b.GetJSON("/settings/data")
	if status != 401 {
		t.Fatalf("API call signed out: %d", status)
	}

	// Sign-up through the sidecar sets the browser's cookie.
	user := mustSignUp(t, b, "ada@example.com", "Ada")
	if b.Cookie("better-auth.session_token") == "" {
		t.Fatal("no session cookie reached the browser through the sidecar")
	}

	// Signed in: the page carries exactly what get-session answers.
	resp, body := s.page(b, "/settings/account")
	if resp.StatusCode != 200 || !strings.Contains(body, "/settings/account") {
		t.Fatalf("signed in: %d %s", resp.StatusCode, body)
	}
	state := stateOf(t, body)
	_, direct, _, _ := s.direct(b).GetJSON("/api/auth/get-session")
	if !sameJSON(t, state[sessionHash], direct) {
		t.Fatalf("injected session %s\n!= get-session %s", state[sessionHash], direct)
	}
	if !strings.Contains(string(state[sessionHash]), user["id"].(string)) {
		t.Fatal("session of another user")
	}
	if resp.Header.Get("Cache-Control") != "private, no-store" {
		t.Fatalf("Cache-Control %q", resp.Header.Get("Cache-Control"))
	}

	// Sign out and in again through the sidecar.
	if err := b.SignOut(); err != nil {
		t.Fatal(err)
	}
	b2 := s.browser()
	if _, err := b2.SignIn("ada@example.com", "correct horse battery staple"); err != nil {
		t.Fatal(err)
	}
	if resp, _ := s.page(b2, "/settings/account"); resp.StatusCode != 200 {
		t.Fatalf("after sign-in: %d", resp.StatusCode)
	}
	// A signed-in visitor of sign-in is sent on to its redirectTo.
	resp, _ = s.page(b2, "/auth/sign-in?redirectTo=%2Fsettings%2Fsessions")
	if resp.StatusCode != 302 || resp.Header.Get("Location") != "/settings/sessions" {
		t.Fatalf("guest redirect: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
}

// Every family of the registry on one settings page: each injected value is
// what the endpoint answers that user directly; a family Better Auth refuses
// (list_user_invitations while the email is unverified) is left out.
func TestRealBetterAuthEveryFamily(t *testing.T) {
	s := newStack(t, stackOptions{})
	b := s.browser()
	mustSignUp(t, b, "second-device@example.com", "Second") // a second device session in the jar
	user := mustSignUp(t, b, "grace@example.com", "Grace")
	uid := user["id"].(string)
	if st, body, _, _ := b.PostJSON("/api/auth/organization/create", map[string]string{"name": "Acme Ünïcode", "slug": "acme"}); st != 200 {
		t.Fatalf("create organization: %d %s", st, body)
	}
	if st, body, _, _ := b.PostJSON("/api/auth/api-key/create", map[string]string{"name": "ci key"}); st != 200 {
		t.Fatalf("create api key: %d %s", st, body)
	}

	_, body := s.page(b, "/settings/everything")
	state := stateOf(t, body)
	d := s.direct(b)
	_, sess, _, _ := d.GetJSON("/api/auth/get-session")
	session, err := betterauth.ParseSession(sess)
	if err != nil || session == nil || session.ActiveOrganizationID == "" {
		t.Fatalf("session: %v %s", err, sess)
	}
	checked := 0
	for _, name := range betterauth.FamilyNames() {
		f := betterauth.Families[name]
		var params []byte
		if name == "has_permission" {
			params = []byte(`{"permissions":{"member":["create"]}}`)
		}
		params, ok, err := f.ScopeParams(params, session.ActiveOrganizationID)
		if err != nil || !ok {
			t.Fatalf("%s: %v", name, err)
		}
		hash := keyHash(t, f, uid, params)
		call, _ := f.Call(params)
		var status int
		var want []byte
		if call.Method == "POST" {
			status, want, _, _ = d.PostJSON("/api/auth"+call.Endpoint, json.RawMessage(call.Body))
		} else {
			p := "/api/auth" + call.Endpoint
			if len(call.Query) > 0 {
				p += "?" + call.Query.Encode()
			}
			status, want, _, _ = d.GetJSON(p)
		}
		got, injected := state[hash]
		if status != 200 {
			if injected {
				t.Errorf("%s: Better Auth answers %d, yet %s was injected", name, status, got)
			}
			if name == "list_user_invitations" && status != 403 {
				t.Errorf("list_user_invitations for an unverified user answered %d, want 403", status)
			}
			continue
		}
		if !injected {
			t.Errorf("%s: missing (key %s)", name, hash)
			continue
		}
		if name == "list_sessions" || name == "list_device_sessions" || name == "session" ||
			name == "active_organization" || name == "full_organization" {
			// Session timestamps move on every direct get; compare the ids.
			if !sameIDs(t, got, want) {
				t.Errorf("%s: injected %s\n direct %s", name, got, want)
			}
		} else if !sameJSON(t, got, want) {
			t.Errorf("%s: injected %s\n direct %s", name, got, want)
		}
		checked++
	}
	if checked < 12 {
		t.Fatalf("only %d families compared", checked)
	}
	if _, ok := state[keyHash(t, betterauth.Families["list_user_invitations"], uid, nil)]; ok {
		t.Fatal("a refused family was injected")
	}
	// The device sessions really are two.
	var devices []any
	json.Unmarshal(state[keyHash(t, betterauth.Families["list_device_sessions"], uid, nil)], &devices)
	if len(devices) != 2 {
		t.Fatalf("%d device sessions injected, want 2", len(devices))
	}
}

func keyHash(t *testing.T, f *betterauth.Family, uid string, params []byte) string {
	t.Helper()
	h, err := inject.HashKey(f.KeyJSON(uid, params))
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// sameIDs compares two answers by every "id" and "token" they hold.
func sameIDs(t *testing.T, a, b []byte) bool {
	t.Helper()
	collect := func(raw []byte) []string {
		var v any
		json.Unmarshal(raw, &v)
		var ids []string
		var walk func(any)
		walk = func(v any) {
			switch x := v.(type) {
			case map[string]any:
				for k, y := range x {
					if s, ok := y.(string); ok && (k == "id" || k == "token" || k == "userId" || k == "name") {
						ids = append(ids, k+"="+s)
					}
					walk(y)
				}
			case []any:
				for _, y := range x {
					walk(y)
				}
			}
		}
		walk(v)
		return ids
	}
	x, y := collect(a), collect(b)
	if len(x) == 0 {
		return false
	}
	sortStrings(x)
	sortStrings(y)
	return reflect.DeepEqual(x, y)
}

func sortStrings(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

// With a short updateAge, the Set-Cookie that get-session sends to refresh
// the session reaches the browser through the sidecar.
func TestRealBetterAuthSessionRefresh(t *testing.T) {
	s := newStack(t, stackOptions{ba: batest.Options{SessionUpdateAge: time.Second}, staleTime: "0"})
	b := s.browser()
	mustSignUp(t, b, "refresh@example.com", "Refresh")
	time.Sleep(2100 * time.Millisecond) // past updateAge
	resp, _ := s.page(b, "/settings/account")
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	var refreshed bool
	for _, c := range resp.Cookies() {
		if c.Name == "better-auth.session_token" && c.MaxAge > 0 {
			refreshed = true
		}
	}
	if !refreshed {
		t.Fatalf("no refreshing Set-Cookie on the page: %v", resp.Header.Values("Set-Cookie"))
	}
}

// A revoked session and an expired one are redirected, and the cookies that
// Better Auth clears are cleared in the browser.
func TestRealBetterAuthRevokedAndExpired(t *testing.T) {
	s := newStack(t, stackOptions{ba: batest.Options{SessionExpiresIn: 3 * time.Second}})
	a := s.browser()
	mustSignUp(t, a, "revoker@example.com", "Revoker")
	aCookies := a.Cookies()
	b := s.browser()
	if _, err := b.SignIn("revoker@example.com", "correct horse battery staple"); err != nil {
		t.Fatal(err)
	}
	// Device A revokes device B's session, straight at Better Auth.
	_, bs, _, _ := s.direct(b).GetJSON("/api/auth/get-session")
	var bSession struct{ Session struct{ Token string } }
	json.Unmarshal(bs, &bSession)
	if st, body, _, _ := s.direct(a).PostJSON("/api/auth/revoke-session", map[string]string{"token": bSession.Session.Token}); st != 200 {
		t.Fatalf("revoke: %d %s", st, body)
	}
	assertClearedAndRedirected(t, s, b)

	// Device A's session expires on the server while the browser still
	// sends its cookie (the jar would drop it with its Max-Age).
	stale := s.browser()
	u, _ := url.Parse(s.url)
	time.Sleep(3500 * time.Millisecond)
	for _, c := range aCookies {
		stale.Jar().SetCookies(u, []*http.Cookie{{Name: c.Name, Value: c.Value, Path: "/"}})
	}
	assertClearedAndRedirected(t, s, stale)
}

func assertClearedAndRedirected(t *testing.T, s *stack, b *batest.Client) {
	t.Helper()
	resp, _ := s.page(b, "/settings/account")
	if resp.StatusCode != 302 || !strings.HasPrefix(resp.Header.Get("Location"), "/auth/sign-in?redirectTo=") {
		t.Fatalf("status %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	cleared := false
	for _, c := range resp.Cookies() {
		if c.Name == "better-auth.session_token" && c.MaxAge < 0 {
			cleared = true
		}
	}
	if !cleared {
		t.Fatalf("session cookie not cleared: %v", resp.Header.Values("Set-Cookie"))
	}
	if b.Cookie("better-auth.session_token") != "" {
		t.Fatal("the browser still holds the session cookie")
	}
}

// Two users browsing at once each see only their own data.
func TestRealBetterAuthTwoUsersAtOnce(t *testing.T) {
	s := newStack(t, stackOptions{})
	users := map[string]*batest.Client{}
	for _, name := range []string{"alice", "bob"} {
		c := s.browser()
		u := mustSignUp(t, c, name+"@example.com", name)
		users[u["id"].(string)] = c
	}
	var wg sync.WaitGroup
	errs := make(chan string, 100)
	for uid, c := range users {
		for range 20 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				resp, err := c.Do("GET", "/settings/account", nil, http.Header{"Accept": {"text/html"}})
				if err != nil {
					errs <- err.Error()
					return
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					errs <- fmt.Sprintf("status %d", resp.StatusCode)
					return
				}
				for other := range users {
					if other != uid && strings.Contains(string(body), other) {
						errs <- "a page of " + uid + " holds data of " + other
					}
				}
				if !strings.Contains(string(body), uid) {
					errs <- "a page of " + uid + " lacks its own user"
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

// Odd cookie sets (duplicated names, __Secure- and plain names with
// different tokens, junk around them): the page carries what Better Auth
// itself answers for the same Cookie header, and each set is its own entry.
func TestRealBetterAuthCredentialVariants(t *testing.T) {
	s := newStack(t, stackOptions{})
	tokens := map[string]string{}
	for _, name := range []string{"first", "second"} {
		c := s.browser()
		mustSignUp(t, c, name+"@example.com", name)
		tokens[name] = c.Cookie("better-auth.session_token")
	}
	a, b := tokens["first"], tokens["second"]
	for _, cookie := range []string{
		"better-auth.session_token=" + a + "; better-auth.session_token=" + b,
		"better-auth.session_token=" + b + "; better-auth.session_token=" + a,
		"__Secure-better-auth.session_token=" + a + "; better-auth.session_token=" + b,
		"better-auth.session_token=" + b + "; __Secure-better-auth.session_token=" + a,
		"theme=dark; better-auth.session_token=" + a + "; =junk; better-auth.session_data=garbage",
		"better-auth.session_token=" + a + "x",
	} {
		req, _ := http.NewRequest("GET", s.url+"/settings/account", nil)
		req.Header.Set("Cookie", cookie)
		req.Header.Set("Accept", "text/html")
		client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		dreq, _ := http.NewRequest("GET", s.ba.URL+"/api/auth/get-session", nil)
		dreq.Header.Set("Cookie", cookie)
		dresp, err := http.DefaultClient.Do(dreq)
		if err != nil {
			t.Fatal(err)
		}
		direct, _ := io.ReadAll(dresp.Body)
		dresp.Body.Close()
		if string(direct) == "null" {
			if resp.StatusCode != 302 {
				t.Errorf("%q: Better Auth says signed out, the sidecar answered %d", cookie, resp.StatusCode)
			}
			continue
		}
		if resp.StatusCode != 200 {
			t.Errorf("%q: status %d, Better Auth knows %s", cookie, resp.StatusCode, direct)
			continue
		}
		if got := stateOf(t, string(body))[sessionHash]; !sameIDs(t, got, direct) {
			t.Errorf("%q: injected %s\nBetter Auth %s", cookie, got, direct)
		}
	}
}
