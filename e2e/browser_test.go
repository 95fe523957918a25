package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image/png"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/seed5911dcdf/caddy-better-auth/internal/batest"
	"github.com/seed5911dcdf/caddy-better-auth/internal/demostack"
)

// TestBrowserDemo drives headless Chromium through the demo stack
// (examples/demo behind the sidecar, with a real Better Auth) and checks
// what a user sees: pages render with their auth data on the first React
// render, and the page asks Better Auth for nothing it was given.
//
// "First render" is window.__renders[0], which the demo's data pages push
// on every render (which queries had data). "No request" is read from the
// browser's own network events (Network.requestWillBeSent, recorded in
// order for each tab), cross-checked with window.__authRequests, which the
// demo's auth client fills.
//
// One stack and one browser serve every subtest; each subtest has its own
// tab in its own browser context (own cookies).
func TestBrowserDemo(t *testing.T) {
	chrome := demostack.Chromium(t)
	start := time.Now()
	browser, browserUp := startBrowser(t, chrome) // starts while the stack does
	st := demostack.Start(t)
	t.Logf("demo stack up in %s at %s", time.Since(start).Round(time.Millisecond), st.URL)
	browserUp()
	t.Logf("stack and browser up in %s", time.Since(start).Round(time.Millisecond))

	t.Run("SignedInSettings", func(t *testing.T) {
		c, _ := st.SignUp(t, "ada@example.com", "Ada Lovelace")
		tb := newBrowserTab(t, browser, st)
		tb.setCookies(c)
		doc := tb.open("/settings/account")
		if loc := tb.location(); loc != st.URL+"/settings/account" {
			t.Fatalf("signed in, /settings/account ended at %s", loc)
		}
		tb.checkSettingsFirstPaint(doc, "ada@example.com", "Ada Lovelace", 1)

		// The check above would see a request: one the page sends now is
		// recorded.
		n := tb.log.len()
		if status := browserEval[int](tb, `fetch("/api/auth/ok").then((r) => r.status)`, chromedp.EvalAwaitPromise); status != 200 {
			t.Fatalf("GET /api/auth/ok from the page: %d", status)
		}
		if got := tb.authRequests(n); len(got) != 1 || got[0] != "GET /api/auth/ok" {
			t.Fatalf("the request log did not see the page's fetch: %v", got)
		}

		tb.screenshot(st, "browser-settings-account.png")
	})

	t.Run("SignedOutSignIn", func(t *testing.T) {
		st.SignUp(t, "grace@example.com", "Grace Hopper") // the browser gets no cookie
		tb := newBrowserTab(t, browser, st)
		tb.open("/settings/account")
		if loc, want := tb.location(), st.URL+"/auth/sign-in?redirectTo=%2Fsettings%2Faccount"; loc != want {
			t.Fatalf("signed out, /settings/account ended at %s, want %s", loc, want)
		}
		form := `[data-testid="sign-in-form"]`
		tb.waitJS(fmt.Sprintf(`!!document.querySelector(%q)`, form+` input[name="email"]`), "the sign-in form")
		mark := tb.log.len()
		tb.do(
			chromedp.SendKeys(chromedp.CSS(form+` input[name="email"]`), "grace@example.com"),
			chromedp.SendKeys(chromedp.CSS(form+` input[name="password"]`), demostack.Password),
			chromedp.Click(chromedp.CSS(form+` button[type="submit"]`)),
		)
		tb.waitJS(`location.pathname === "/settings/account" && !!document.querySelector('[data-testid="user-email"]')`,
			"the account page after signing in")
		if loc := tb.location(); loc != st.URL+"/settings/account" {
			t.Fatalf("after signing in the browser is at %s, want %s/settings/account", loc, st.URL)
		}
		if got := tb.authRequests(mark); len(got) == 0 || got[0] != "POST /api/auth/sign-in/email" {
			t.Fatalf("signing in sent %v, want POST /api/auth/sign-in/email first", got)
		}
		doc := tb.log.lastDocument("/settings/account")
		if doc < mark {
			t.Fatalf("no page load of /settings/account after signing in: %v", tb.log.all())
		}
		// Two sessions: the sign-up's (Go client) and the browser's.
		tb.checkSettingsFirstPaint(doc, "grace@example.com", "Grace Hopper", 2)
	})

	t.Run("HostileNames", func(t *testing.T) {
		for i, name := range []string{
			`</script><script>window.__pwned=1</script>`,
			`<img src=x onerror=window.__pwned=1>`,
		} {
			email := fmt.Sprintf("mallory%d@example.com", i)
			c, _ := st.SignUp(t, email, name)
			tb := newBrowserTab(t, browser, st)
			tb.setCookies(c)
			doc := tb.open("/settings/account")
			tb.checkSettingsFirstPaint(doc, email, name, 1) // waits for the network to go quiet

			if pwned := browserEval[string](tb, `typeof window.__pwned`); pwned != "undefined" {
				t.Errorf("name %q: the page ran it (typeof window.__pwned = %s)", name, pwned)
			}
			if got := browserEval[string](tb, jsTextOf(`[data-testid="device-sessions-list"] li`)); !strings.Contains(got, name) {
				t.Errorf("name %q: device sessions show %q", name, got)
			}
			// The payload is nowhere but in the JSON state block and in text.
			scripts := browserEval[[]string](tb, `[...document.scripts].filter((s) => s.textContent.includes("__pwned")).map((s) => s.type + "#" + s.id)`)
			if len(scripts) != 1 || scripts[0] != "application/json#__BETTER_AUTH_STATE__" {
				t.Errorf("name %q: scripts holding the payload: %v", name, scripts)
			}
			if n := browserEval[int](tb, `document.querySelectorAll("img, [onerror]").length`); n != 0 {
				t.Errorf("name %q: %d img/[onerror] elements in the page", name, n)
			}
			// The demo has no images: an <img src=x> in the page would be one.
			for _, r := range tb.log.all() {
				if u, err := url.Parse(r.URL); err == nil && (r.Type == network.ResourceTypeImage || path.Base(u.Path) == "x") {
					t.Errorf("name %q: the page requested %s (%s)", name, r.URL, r.Type)
				}
			}
		}
	})

	t.Run("Organization", func(t *testing.T) {
		const orgName, slug = `Acme & <Co> "Ünïcode"`, "acme-browser"
		c, user := st.SignUp(t, "owner@example.com", "Olive Owner")
		status, body, _, err := c.PostJSON("/api/auth/organization/create", map[string]string{"name": orgName, "slug": slug})
		if err != nil || status != 200 {
			t.Fatalf("create organization through the sidecar: %d %s %v", status, body, err)
		}
		var org struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal(body, &org); err != nil || org.ID == "" {
			t.Fatalf("create organization: %s (%v)", body, err)
		}
		sess, err := c.GetSession()
		if err != nil {
			t.Fatal(err)
		}
		session, _ := sess["session"].(map[string]any)
		if active, _ := session["activeOrganizationId"].(string); active != org.ID {
			t.Fatalf("the new organization %s is not active: get-session %v", org.ID, sess)
		}

		tb := newBrowserTab(t, browser, st)
		tb.setCookies(c)
		doc := tb.open("/orgs/" + slug)
		tb.waitJS(`!!document.querySelector('[data-testid="org-name"]') && !!document.querySelector('[data-testid="members-list"][data-state="ready"]')`,
			"the organization and its members")
		first := browserFirstRender(tb)
		want := map[string]any{"page": "org", "session": true, "activeOrganization": true, "members": true}
		if !sameRender(first, want) {
			t.Errorf("first render of /orgs/%s: %v, want %v", slug, first, want)
		}
		if got := browserEval[string](tb, jsTextOf(`[data-testid="org-name"]`)); got != orgName {
			t.Errorf("org name shows %q, want %q", got, orgName)
		}
		if got := browserEval[string](tb, jsTextOf(`[data-testid="org-slug"]`)); got != slug {
			t.Errorf("org slug shows %q, want %q", got, slug)
		}
		members := browserEval[[]string](tb, `[...document.querySelectorAll('[data-testid="member"]')].map((m) => m.textContent)`)
		if email, _ := user["email"].(string); len(members) != 1 || email == "" || !strings.Contains(members[0], email) || !strings.Contains(members[0], "owner") {
			t.Errorf("members show %q, want the owner %s", members, user["email"])
		}
		tb.checkNoAuthRequests(doc)
	})
}

// startBrowser starts one headless Chromium for the test and stops it when
// the test ends; up waits until it runs (and fails the test if it does
// not). The allocator gives it a fresh --user-data-dir (and removes it).
func startBrowser(t *testing.T, exe string) (browser context.Context, up func()) {
	t.Helper()
	out := &browserOutput{}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.WindowSize(1280, 1024),
		chromedp.CombinedOutput(out),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
		if t.Failed() {
			t.Logf("chromium output:\n%s", out.String())
		}
	})
	started := make(chan error, 1)
	go func() { started <- chromedp.Do(ctx) }()
	deadline := time.After(90 * time.Second)
	return ctx, func() {
		t.Helper()
		select {
		case err := <-started:
			if err != nil {
				t.Fatalf("starting %s: %v\n%s", exe, err, out.String())
			}
		case <-deadline:
			t.Fatalf("%s did not start in 90s:\n%s", exe, out.String())
		}
	}
}

// browserTab is one page in its own browser context, with its network requests.
type browserTab struct {
	t   *testing.T
	ctx context.Context // bounded: every action of the tab ends in time
	st  *demostack.Stack
	log *browserLog
}

func newBrowserTab(t *testing.T, browser context.Context, st *demostack.Stack) *browserTab {
	t.Helper()
	log := &browserLog{}
	ctx, cancel := chromedp.NewContext(browser, chromedp.WithNewBrowserContext(), chromedp.WithListener(log.listen))
	t.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil { // opens the tab; it lives as long as ctx
		t.Fatalf("opening a browserTab: %v", err)
	}
	bounded, cancelBounded := context.WithTimeout(ctx, 90*time.Second)
	t.Cleanup(cancelBounded)
	tb := &browserTab{t: t, ctx: bounded, st: st, log: log}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("requests of the browserTab:\n%s", strings.Join(log.all().strings(), "\n"))
			if ex := log.exceptionList(); len(ex) > 0 {
				t.Logf("exceptions in the page:\n%s", strings.Join(ex, "\n"))
			}
		}
	})
	return tb
}

func (tb *browserTab) do(actions ...chromedp.Action[chromedp.Void]) {
	tb.t.Helper()
	if err := chromedp.Do(tb.ctx, actions...); err != nil {
		tb.t.Fatalf("browser: %v", err)
	}
}

// setCookies gives the tab's browser context the cookies c holds for the
// sidecar.
func (tb *browserTab) setCookies(c *batest.Client) {
	tb.t.Helper()
	cookies := c.Cookies()
	if len(cookies) == 0 {
		tb.t.Fatal("no cookies to give the browser")
	}
	for _, ck := range cookies {
		_, err := chromedp.Call(tb.ctx, network.SetCookie, network.SetCookieParams{
			Name:     ck.Name,
			Value:    ck.Value,
			URL:      tb.st.URL + "/",
			Path:     "/",
			HTTPOnly: new(true),
			SameSite: network.CookieSameSiteLax,
		})
		if err != nil {
			tb.t.Fatalf("setting cookie %s: %v", ck.Name, err)
		}
	}
}

// open loads p and returns the index, in the request log, of its page
// load (the last document request for the path the browser ends at).
func (tb *browserTab) open(p string) int {
	tb.t.Helper()
	tb.do(chromedp.Navigate(tb.st.URL + p))
	u, err := url.Parse(tb.location())
	if err != nil {
		tb.t.Fatal(err)
	}
	i := tb.log.lastDocument(u.Path)
	if i < 0 {
		tb.t.Fatalf("the request log has no page load of %s: %v", u.Path, tb.log.all())
	}
	return i
}

func (tb *browserTab) location() string {
	tb.t.Helper()
	loc, err := chromedp.Run(tb.ctx, chromedp.Location())
	if err != nil {
		tb.t.Fatalf("location: %v", err)
	}
	return loc
}

// browserEval evaluates expr in the tab's page and decodes its value.
func browserEval[T any](tb *browserTab, expr string, opts ...chromedp.EvaluateOption) T {
	tb.t.Helper()
	v, err := chromedp.Run(tb.ctx, chromedp.Evaluate[T](expr, opts...))
	if err != nil {
		tb.t.Fatalf("evaluating %s: %v", expr, err)
	}
	return v
}

// waitJS polls expr (a boolean) until it holds, across page loads, for up
// to 30 seconds.
func (tb *browserTab) waitJS(expr, what string) {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, 30*time.Second)
	defer cancel()
	var lastErr error
	for {
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](expr))
		if err == nil && ok {
			return
		}
		if err != nil {
			lastErr = err // e.g. the page is between two documents
		}
		select {
		case <-ctx.Done():
			body, _ := chromedp.Run(tb.ctx, chromedp.Evaluate[string](`location.href + "\n" + (document.body ? document.body.innerText : "")`))
			tb.t.Fatalf("waiting for %s: %s is still false (last error: %v); the page:\n%s", what, expr, lastErr, body)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// waitQuiet waits until the tab has sent no request for a second, so that
// a hook that would refetch on mount (in an effect right after the first
// render) has done it.
func (tb *browserTab) waitQuiet() {
	tb.t.Helper()
	const quiet = time.Second
	deadline := time.Now().Add(15 * time.Second)
	n, since := tb.log.len(), time.Now()
	for time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
		if m := tb.log.len(); m != n {
			n, since = m, time.Now()
		} else if time.Since(since) >= quiet {
			return
		}
	}
	tb.t.Fatalf("the page kept sending requests for 15s: %v", tb.log.all())
}

// authRequests returns "METHOD /path" for each request to Better Auth from
// the request log's entry i on.
func (tb *browserTab) authRequests(i int) []string {
	var out []string
	for _, r := range tb.log.from(i) {
		if u, err := url.Parse(r.URL); err == nil && strings.HasPrefix(u.Path, batest.AuthPath+"/") {
			out = append(out, r.Method+" "+u.Path)
		}
	}
	return out
}

// checkNoAuthRequests waits for the network to go quiet, then checks that
// nothing asked Better Auth for anything since the page load doc (the
// browser's log), and that the app's auth client sent nothing on this page.
func (tb *browserTab) checkNoAuthRequests(doc int) {
	tb.t.Helper()
	tb.waitQuiet()
	if got := tb.authRequests(doc); len(got) != 0 {
		tb.t.Errorf("the page asked Better Auth for data it was given: %v", got)
	}
	if got := browserEval[[]string](tb, `window.__authRequests`); len(got) != 0 {
		tb.t.Errorf("the auth client sent %v", got)
	}
	// The observation is real: the page load and its script are in the log.
	if !tb.log.has(doc, "/app.js") {
		tb.t.Errorf("the request log has no /app.js after the page load: %v", tb.log.from(doc))
	}
	if ex := tb.log.exceptionList(); len(ex) != 0 {
		tb.t.Errorf("uncaught exceptions in the page: %v", ex)
	}
}

// checkSettingsFirstPaint checks the account page loaded at log entry doc:
// its first render had every query's data, it shows the user, and it asks
// Better Auth for nothing. sessions is how many sessions the user has.
func (tb *browserTab) checkSettingsFirstPaint(doc int, email, name string, sessions int) {
	tb.t.Helper()
	tb.waitJS(`!!document.querySelector('[data-testid="user-email"]')`, "the account page")
	first := browserFirstRender(tb)
	want := map[string]any{
		"page": "settings", "session": true, "sessions": true, "accounts": true,
		"deviceSessions": true, "passkeys": true, "apiKeys": true, "datesParsed": true,
	}
	if !sameRender(first, want) {
		tb.t.Errorf("first render: %v, want %v", first, want)
	}
	if got := browserEval[string](tb, jsTextOf(`[data-testid="user-email"]`)); got != email {
		tb.t.Errorf("email shows %q, want %q", got, email)
	}
	if got := browserEval[string](tb, jsTextOf(`[data-testid="user-name"]`)); got != name {
		tb.t.Errorf("name shows %q, want %q", got, name)
	}
	for list, count := range map[string]string{
		"sessions-list": fmt.Sprint(sessions), "accounts-list": "1", "device-sessions-list": "1",
		"passkeys-list": "0", "api-keys-list": "0",
	} {
		got := browserEval[string](tb, fmt.Sprintf(`(() => { const e = document.querySelector('[data-testid=%q]'); return e ? e.dataset.state + " " + e.dataset.count : "missing" })()`, list))
		if got != "ready "+count {
			tb.t.Errorf("%s: %q, want %q", list, got, "ready "+count)
		}
	}
	tb.checkNoAuthRequests(doc)
}

// browserFirstRender returns window.__renders[0].
func browserFirstRender(tb *browserTab) map[string]any {
	tb.t.Helper()
	renders := browserEval[[]map[string]any](tb, `window.__renders || []`)
	if len(renders) == 0 {
		tb.t.Fatal("window.__renders is empty: the page never rendered a data page")
	}
	return renders[0]
}

func sameRender(a, b map[string]any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return bytes.Equal(x, y)
}

// jsTextOf is a JavaScript expression for the textContent of all elements
// matching sel, joined by newlines; it throws when none matches.
func jsTextOf(sel string) string {
	return fmt.Sprintf(`(() => { const all = [...document.querySelectorAll(%q)]; if (!all.length) throw new Error("no element " + %q); return all.map((e) => e.textContent).join("\n") })()`, sel, sel)
}

// screenshot saves a PNG of the whole page under $ARTIFACTS_DIR (else
// artifacts/ at the repository root) and checks that it decodes.
func (tb *browserTab) screenshot(st *demostack.Stack, name string) {
	tb.t.Helper()
	buf, err := chromedp.Run(tb.ctx, chromedp.FullScreenshot(100)) // 100: PNG
	if err != nil {
		tb.t.Fatalf("screenshot: %v", err)
	}
	if len(buf) == 0 {
		tb.t.Fatal("screenshot: empty")
	}
	img, err := png.Decode(bytes.NewReader(buf))
	if err != nil {
		tb.t.Fatalf("screenshot is not a PNG: %v", err)
	}
	if b := img.Bounds(); b.Dx() < 100 || b.Dy() < 100 {
		tb.t.Fatalf("screenshot is %dx%d", b.Dx(), b.Dy())
	}
	dir := os.Getenv("ARTIFACTS_DIR")
	if dir == "" {
		dir = filepath.Join(st.Root, "artifacts")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		tb.t.Fatal(err)
	}
	file := filepath.Join(dir, name)
	if err := os.WriteFile(file, buf, 0o644); err != nil {
		tb.t.Fatal(err)
	}
	tb.t.Logf("screenshot of %s: %s (%d bytes, %dx%d)", tb.location(), file, len(buf), img.Bounds().Dx(), img.Bounds().Dy())
}

// browserLog records, in the order Chrome sent them, a tab's requests and
// uncaught exceptions. listen runs in the tab's event loop.
type browserLog struct {
	mu         sync.Mutex
	requests   browserRequests
	exceptions []string
}

type browserRequest struct {
	Method, URL string
	Type        network.ResourceType
}

type browserRequests []browserRequest

func (l browserRequests) strings() []string {
	out := make([]string, len(l))
	for i, r := range l {
		out[i] = fmt.Sprintf("%d %s %s %s", i, r.Type, r.Method, r.URL)
	}
	return out
}

func (l *browserLog) listen(ev any) {
	switch ev := ev.(type) {
	case *network.EventRequestWillBeSent:
		if ev.Request == nil {
			return
		}
		l.mu.Lock()
		l.requests = append(l.requests, browserRequest{Method: ev.Request.Method, URL: ev.Request.URL, Type: ev.Type})
		l.mu.Unlock()
	case *runtime.EventExceptionThrown:
		d := ev.ExceptionDetails
		if d == nil {
			return
		}
		text := d.Text
		if d.Exception != nil && d.Exception.Description != "" {
			text += " " + d.Exception.Description
		}
		l.mu.Lock()
		l.exceptions = append(l.exceptions, text)
		l.mu.Unlock()
	}
}

func (l *browserLog) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.requests)
}

func (l *browserLog) all() browserRequests { return l.from(0) }

func (l *browserLog) from(i int) browserRequests {
	l.mu.Lock()
	defer l.mu.Unlock()
	if i < 0 || i > len(l.requests) {
		i = len(l.requests)
	}
	return append(browserRequests(nil), l.requests[i:]...)
}

// lastDocument returns the index of the last page load of p, or -1.
func (l *browserLog) lastDocument(p string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := len(l.requests) - 1; i >= 0; i-- {
		r := l.requests[i]
		if u, err := url.Parse(r.URL); err == nil && r.Type == network.ResourceTypeDocument && u.Path == p {
			return i
		}
	}
	return -1
}

// has reports whether a request for p was sent from entry i on.
func (l *browserLog) has(i int, p string) bool {
	for _, r := range l.from(i) {
		if u, err := url.Parse(r.URL); err == nil && u.Path == p {
			return true
		}
	}
	return false
}

func (l *browserLog) exceptionList() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.exceptions...)
}

// browserOutput collects the browser's output.
type browserOutput struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *browserOutput) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.buf.Len() < 1<<20 {
		b.buf.Write(p)
	}
	return len(p), nil
}

func (b *browserOutput) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
