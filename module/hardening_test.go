package module

import (
	"bytes"
	"context"
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
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

func TestStaleIfError(t *testing.T) {
	f := newFakeAuth(t)
	st := caddy.Duration(100 * time.Millisecond)
	h := newHandler(t, f.URL, func(h *Handler) {
		h.StaleTime = &st
		h.StaleIfError = caddy.Duration(time.Second)
	})
	if rec := serve(h, pageReq("/settings/a", "tok1")); rec.Code != 200 {
		t.Fatal(rec.Code)
	}
	time.Sleep(150 * time.Millisecond) // stale, within stale_if_error
	f.mode.Store("500")
	if rec := serve(h, pageReq("/settings/a", "tok1")); rec.Code != 200 || !strings.Contains(rec.Body.String(), `"id":"u1"`) {
		t.Fatalf("stale_if_error did not serve the last good session: %d", rec.Code)
	}
	time.Sleep(1100 * time.Millisecond) // past it
	if rec := serve(h, pageReq("/settings/a", "tok1")); rec.Code != 503 {
		t.Fatalf("past stale_if_error: %d, want 503", rec.Code)
	}
	// Off by default.
	f2 := newFakeAuth(t)
	h2 := newHandler(t, f2.URL, func(h *Handler) { h.StaleTime = &st })
	serve(h2, pageReq("/settings/a", "tok1"))
	time.Sleep(150 * time.Millisecond)
	f2.mode.Store("500")
	if rec := serve(h2, pageReq("/settings/a", "tok1")); rec.Code != 503 {
		t.Fatalf("without stale_if_error: %d, want 503", rec.Code)
	}
}

func TestSlowAndOversizedAnswers(t *testing.T) {
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(200)
		io.WriteString(w, `{"session":`)
		w.(http.Flusher).Flush()
		time.Sleep(2 * time.Second) // the body never finishes in time
		io.WriteString(w, `{}}`)
	}))
	defer slow.Close()
	h := newHandler(t, slow.URL, func(h *Handler) { h.Timeout = caddy.Duration(300 * time.Millisecond) })
	if rec := serve(h, pageReq("/settings/a", "tok1")); rec.Code != 503 {
		t.Fatalf("slow body: %d", rec.Code)
	}
	big := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `{"session":{"id":"s","token":"t"},"user":{"id":"u","name":%q}}`, strings.Repeat("x", 5000))
	}))
	defer big.Close()
	h = newHandler(t, big.URL, func(h *Handler) { h.MaxAnswerSize = 4096 })
	if rec := serve(h, pageReq("/settings/a", "tok1")); rec.Code != 503 {
		t.Fatalf("oversized answer: %d", rec.Code)
	}
	h = newHandler(t, big.URL, nil) // default 1 MiB
	if rec := serve(h, pageReq("/settings/a", "tok1")); rec.Code != 200 {
		t.Fatalf("answer within the default limit: %d", rec.Code)
	}
}

// Better Auth reads the cookies itself: the sidecar forwards exactly the
// Better Auth cookies as sent, and every distinct set is its own entry.
func TestCredentialVariants(t *testing.T) {
	f := newFakeAuth(t)
	h := newHandler(t, f.URL, func(h *Handler) { h.Bearer = true })
	for _, tc := range []struct {
		name  string
		lines []string
		auth  string
		fwd   string
	}{
		{"duplicate on one line", []string{"better-auth.session_token=tok1; better-auth.session_token=tok2"}, "", "better-auth.session_token=tok1; better-auth.session_token=tok2"},
		{"duplicate on two lines", []string{"better-auth.session_token=tok2", "better-auth.session_token=tok1"}, "", "better-auth.session_token=tok2; better-auth.session_token=tok1"},
		{"secure and plain", []string{"__Secure-better-auth.session_token=tok2; better-auth.session_token=tok1"}, "", "__Secure-better-auth.session_token=tok2; better-auth.session_token=tok1"},
		{"malformed around", []string{"=x; ;; better-auth.session_token=tok1; junk"}, "", "better-auth.session_token=tok1"},
		{"bearer", nil, "Bearer some-token", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := f.count("/get-session")
			r := pageReq("/", "")
			for _, l := range tc.lines {
				r.Header.Add("Cookie", l)
			}
			if tc.auth != "" {
				r.Header.Set("Authorization", tc.auth)
			}
			if rec := serve(h, r); rec.Code != 200 {
				t.Fatal(rec.Code)
			}
			if f.count("/get-session") != before+1 {
				t.Fatal("a distinct credential shared another's entry")
			}
			got := f.last("/get-session")
			if got.Header.Get("Cookie") != tc.fwd || got.Header.Get("Authorization") != tc.auth {
				t.Fatalf("forwarded Cookie %q Authorization %q", got.Header.Get("Cookie"), got.Header.Get("Authorization"))
			}
		})
	}
	// Without bearer, the header is not a credential.
	h2 := newHandler(t, f.URL, nil)
	r := pageReq("/", "")
	r.Header.Set("Authorization", "Bearer x")
	before := f.count("/get-session")
	serve(h2, r)
	if f.count("/get-session") != before {
		t.Fatal("bearer read while off")
	}
}

func TestIdentityHeaders(t *testing.T) {
	f := newFakeAuth(t)
	h := newHandler(t, f.URL, func(h *Handler) {
		h.IdentityHeaders = &IdentityHeaders{UserID: "X-Auth-User-Id", Email: "X-Auth-Email", SessionID: "X-Auth-Session"}
	})
	var seen http.Header
	up := func(w http.ResponseWriter, r *http.Request) { seen = r.Header.Clone() }
	spoof := func(r *http.Request) *http.Request {
		r.Header["X-Auth-User-Id"] = []string{"admin"}
		r.Header["x-auth-user-id"] = []string{"admin"}
		r.Header["X_Auth_User_Id"] = []string{"admin"}
		r.Header["X-AUTH-EMAIL"] = []string{"boss@example.com"}
		return r
	}
	serveWith(h, spoof(pageReq("/", "")), up)
	for k := range seen {
		if headerIdent(k) == "x-auth-user-id" || headerIdent(k) == "x-auth-email" {
			t.Fatalf("spoofed %s reached the upstream of a signed-out visitor", k)
		}
	}
	serveWith(h, spoof(pageReq("/", "tok1")), up)
	if seen.Get("X-Auth-User-Id") != "u1" || seen.Get("X-Auth-Email") != "u1@example.com" || seen.Get("X-Auth-Session") != "s-u1" {
		t.Fatalf("identity headers: %v", seen)
	}
	n := 0
	for k := range seen {
		if headerIdent(k) == "x-auth-user-id" {
			n += len(seen[k])
		}
	}
	if n != 1 {
		t.Fatalf("%d copies of the user id header", n)
	}
}

// Logs never hold cookies, tokens or session data, at any level.
func TestLogsHoldNoSecrets(t *testing.T) {
	f := newFakeAuth(t)
	var buf bytes.Buffer
	var mu sync.Mutex
	core := zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), zapcore.AddSync(&lockedWriter{w: &buf, mu: &mu}), zapcore.DebugLevel)
	h := newHandler(t, f.URL, func(h *Handler) { settingsPrefetch(h) })
	h.setLogger(zap.New(core))
	serve(h, pageReq("/settings/orgs/acme", "tok1"))
	serve(h, pageReq("/settings/orgs/acme", "tok2"))
	serve(h, pageReq("/auth/sign-in?redirectTo=/x", "tok1"))
	serve(h, pageReq("/settings/x", "bad-token-value"))
	req := httptest.NewRequest("POST", "http://site.test/api/auth/sign-out", nil)
	req.Header.Set("Cookie", "better-auth.session_token=tok1")
	var ev []string
	serveWith(h, req, authUpstream(200, `{}`, "better-auth.session_token=; Max-Age=0", &ev, &mu))
	f.mode.Store("500")
	serve(h, pageReq("/settings/x", "tok2"))
	f.mode.Store("badjson")
	serve(h, pageReq("/settings/y", "tok1"))
	mu.Lock()
	out := buf.String()
	mu.Unlock()
	if !strings.Contains(out, "better auth backend call failed") {
		t.Fatalf("the failures were not logged: %s", out)
	}
	for _, secret := range []string{"tok1", "tok2", "bad-token-value", "session_token", "u1@example.com", "User <u1>", "User \\u003cu1", "Cookie"} {
		if strings.Contains(out, secret) {
			t.Errorf("log holds %q:\n%s", secret, out)
		}
	}
}

type lockedWriter struct {
	w  io.Writer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// 200 users, 16 concurrent clients, for a bounded number of requests: every
// page holds its own user's state and nothing else; no request fails.
func TestIsolationUnderLoad(t *testing.T) {
	const users, clients, perClient = 200, 16, 150
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := r.Cookie("better-auth.session_token")
		if err != nil {
			io.WriteString(w, "null")
			return
		}
		uid := strings.TrimPrefix(c.Value, "tok-")
		switch r.URL.Path {
		case "/api/auth/get-session":
			fmt.Fprintf(w, `{"session":{"id":"s-%[1]s","token":%[2]q},"user":{"id":"user-%[1]s","email":"%[1]s@example.com"}}`, uid, c.Value)
		default:
			fmt.Fprintf(w, `[{"owner":"user-%s"}]`, uid)
		}
	}))
	defer backend.Close()
	st := caddy.Duration(50 * time.Millisecond) // entries expire and refill under load
	h := newHandler(t, backend.URL, func(h *Handler) {
		h.StaleTime = &st
		h.Prefetch = []Prefetch{{Paths: []string{"*"}, Queries: []QuerySpec{{Family: "list_sessions"}, {Family: "list_accounts"}}}}
	})
	var failures atomic.Int32
	var total atomic.Int32
	var wg sync.WaitGroup
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perClient {
				u := (c*perClient + i*7) % users
				rec := serve(h, pageReq("/settings/x", fmt.Sprintf("tok-%d", u)))
				total.Add(1)
				if rec.Code != 200 {
					failures.Add(1)
					continue
				}
				want := fmt.Sprintf("user-%d", u)
				body := rec.Body.String()
				var st struct {
					Queries []struct {
						State struct {
							Data json.RawMessage `json:"data"`
						} `json:"state"`
					} `json:"queries"`
				}
				start := strings.Index(body, `">`) + 2
				end := strings.Index(body, "</script>")
				if start < 2 || end < start || json.Unmarshal([]byte(body[start:end]), &st) != nil || len(st.Queries) != 3 {
					failures.Add(1)
					continue
				}
				for _, q := range st.Queries {
					ids := strings.Count(string(q.State.Data), "user-")
					if ids != strings.Count(string(q.State.Data), want+`"`) || ids == 0 {
						failures.Add(1)
						t.Errorf("page of %s holds %s", want, q.State.Data)
					}
				}
			}
		}()
	}
	wg.Wait()
	if n := failures.Load(); n != 0 || total.Load() != clients*perClient {
		t.Fatalf("%d of %d requests failed", n, total.Load())
	}
}

func TestRequestOriginBehindTLSTermination(t *testing.T) {
	r := httptest.NewRequest("GET", "http://site.test/x", nil)
	r.Header.Set("X-Forwarded-Proto", "https")
	with := func(trusted bool) string {
		ctx := context.WithValue(r.Context(), caddyhttp.VarsCtxKey, map[string]any{caddyhttp.TrustedProxyVarKey: trusted})
		return requestOrigin(r.WithContext(ctx))
	}
	if got := with(false); got != "http://site.test" {
		t.Fatalf("untrusted X-Forwarded-Proto honoured: %s", got)
	}
	if got := with(true); got != "https://site.test" {
		t.Fatalf("trusted proxy's X-Forwarded-Proto ignored: %s", got)
	}
}
