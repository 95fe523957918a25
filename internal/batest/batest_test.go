package batest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// shared is one server for the tests that need no special options.
var shared *Server

func TestMain(m *testing.M) {
	s, err := New(Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, "batest:", err)
		os.Exit(1)
	}
	shared = s
	code := m.Run()
	s.Close()
	os.Exit(code)
}

var userSeq atomic.Int64

func newEmail(t testing.TB) string {
	return fmt.Sprintf("user%d-%d@example.com", userSeq.Add(1), time.Now().UnixNano())
}

const password = "correct-horse-battery"

const sessionCookie = "better-auth.session_token"

func str(m map[string]any, keys ...string) string {
	var v any = m
	for _, k := range keys {
		mm, ok := v.(map[string]any)
		if !ok {
			return ""
		}
		v = mm[k]
	}
	s, _ := v.(string)
	return s
}

func decode(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("decoding %q: %v", b, err)
	}
	return m
}

// clearedCookies returns the names of the cookies that hdr's Set-Cookie lines
// delete (Max-Age=0).
func clearedCookies(hdr http.Header) map[string]bool {
	out := map[string]bool{}
	for _, c := range (&http.Response{Header: hdr}).Cookies() {
		if c.MaxAge < 0 && c.Value == "" {
			out[c.Name] = true
		}
	}
	return out
}

func TestServerURLs(t *testing.T) {
	if !strings.HasPrefix(shared.URL, "http://127.0.0.1:") {
		t.Errorf("URL = %q", shared.URL)
	}
	if shared.AuthURL != shared.URL+"/api/auth" {
		t.Errorf("AuthURL = %q", shared.AuthURL)
	}
	if shared.BaseURL != shared.URL || shared.Origin != shared.URL {
		t.Errorf("BaseURL = %q, Origin = %q, want both %q", shared.BaseURL, shared.Origin, shared.URL)
	}
	if _, err := os.Stat(shared.DatabaseFile); err != nil {
		t.Errorf("database file: %v", err)
	}
}

func TestSignUpGetSessionSignOut(t *testing.T) {
	c := NewClient(shared.URL, shared.Origin)
	email := newEmail(t)

	res, err := c.SignUp(email, password, "Alice")
	if err != nil {
		t.Fatal(err)
	}
	userID := str(res, "user", "id")
	token := str(res, "token")
	if userID == "" || token == "" || str(res, "user", "email") != email || str(res, "user", "name") != "Alice" {
		t.Fatalf("sign-up answer: %v", res)
	}
	if v, _ := res["user"].(map[string]any)["emailVerified"].(bool); v {
		t.Errorf("new user is verified without AutoVerifyEmail: %v", res)
	}
	cookie := c.Cookie(sessionCookie)
	if !strings.HasPrefix(cookie, token+".") {
		t.Fatalf("session cookie %q does not start with token %q", cookie, token)
	}
	if c.Cookie(sessionCookie+"_multi-"+strings.ToLower(token)) == "" {
		t.Errorf("no multi-session cookie; cookies: %v", c.Cookies())
	}

	status, body, hdr, err := c.GetJSON("/api/auth/get-session")
	if err != nil {
		t.Fatal(err)
	}
	if status != 200 {
		t.Fatalf("get-session: %d %s", status, body)
	}
	if cc := hdr.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("get-session Cache-Control = %q", cc)
	}
	if sc := hdr.Values("Set-Cookie"); len(sc) != 0 {
		t.Errorf("fresh session got Set-Cookie: %q", sc)
	}
	sess := decode(t, body)
	if str(sess, "session", "userId") != userID || str(sess, "session", "token") != token || str(sess, "user", "email") != email {
		t.Fatalf("get-session answer: %s", body)
	}
	for _, k := range []string{"id", "expiresAt", "createdAt", "updatedAt"} {
		if str(sess, "session", k) == "" {
			t.Errorf("session has no %s: %s", k, body)
		}
	}
	if _, ok := sess["session"].(map[string]any)["activeOrganizationId"]; !ok {
		t.Errorf("session has no activeOrganizationId (organization plugin): %s", body)
	}

	// The same answer through the decoding helper.
	if s2, err := c.GetSession(); err != nil || str(s2, "user", "id") != userID {
		t.Fatalf("GetSession: %v, %v", s2, err)
	}

	// Sign out through PostJSON, to look at the headers.
	status, body, hdr, err = c.PostJSON("/api/auth/sign-out", nil)
	if err != nil {
		t.Fatal(err)
	}
	if status != 200 || strings.TrimSpace(string(body)) != `{"success":true}` {
		t.Fatalf("sign-out: %d %s", status, body)
	}
	cleared := clearedCookies(hdr)
	for _, name := range []string{sessionCookie, "better-auth.session_data", "better-auth.dont_remember", sessionCookie + "_multi-" + strings.ToLower(token)} {
		if !cleared[name] {
			t.Errorf("sign-out did not clear %s; Set-Cookie: %q", name, hdr.Values("Set-Cookie"))
		}
	}
	if len(c.Cookies()) != 0 {
		t.Errorf("jar still has cookies after sign-out: %v", c.Cookies())
	}
	s3, err := c.GetSession()
	if err != nil || s3 != nil {
		t.Fatalf("get-session after sign-out: %v, %v", s3, err)
	}
}

func TestGetSessionWithoutCookie(t *testing.T) {
	c := NewClient(shared.URL, shared.Origin)
	status, body, hdr, err := c.GetJSON("/api/auth/get-session")
	if err != nil {
		t.Fatal(err)
	}
	if status != 200 || strings.TrimSpace(string(body)) != "null" {
		t.Fatalf("get-session without cookie: %d %s", status, body)
	}
	if len(hdr.Values("Set-Cookie")) != 0 {
		t.Errorf("Set-Cookie without cookie: %q", hdr.Values("Set-Cookie"))
	}

	// A forged cookie is no session either.
	c.Jar().SetCookies(c.base, []*http.Cookie{{Name: sessionCookie, Value: "abcdefghijklmnopqrstuvwxyz012345.AAAA"}})
	if s, err := c.GetSession(); err != nil || s != nil {
		t.Fatalf("get-session with forged cookie: %v, %v", s, err)
	}
}

func TestSignInAndCopyCookies(t *testing.T) {
	email := newEmail(t)
	if _, err := NewClient(shared.URL, shared.Origin).SignUp(email, password, "Bob"); err != nil {
		t.Fatal(err)
	}

	c := NewClient(shared.URL, shared.Origin)
	_, err := c.SignIn(email, "wrong-password")
	se, ok := err.(*StatusError)
	if !ok || se.Status != 401 {
		t.Fatalf("sign-in with a wrong password: %v", err)
	}
	if len(c.Cookies()) != 0 {
		t.Errorf("failed sign-in set cookies: %v", c.Cookies())
	}

	res, err := c.SignIn(email, password)
	if err != nil {
		t.Fatal(err)
	}
	if str(res, "user", "email") != email || str(res, "token") == "" {
		t.Fatalf("sign-in answer: %v", res)
	}

	// A second client with copied cookies is the same user.
	other := NewClient(shared.URL, shared.Origin)
	c.CopyCookiesTo(other)
	s, err := other.GetSession()
	if err != nil || str(s, "user", "email") != email || str(s, "session", "token") != str(res, "token") {
		t.Fatalf("get-session with copied cookies: %v, %v", s, err)
	}

	// Without an Origin, a POST that carries the cookie is refused.
	noOrigin := NewClient(shared.URL, "")
	c.CopyCookiesTo(noOrigin)
	status, body, _, err := noOrigin.PostJSON("/api/auth/sign-out", nil)
	if err != nil {
		t.Fatal(err)
	}
	if status != 403 || str(decode(t, body), "code") != "MISSING_OR_NULL_ORIGIN" {
		t.Fatalf("sign-out without Origin: %d %s", status, body)
	}
	// ... and with a foreign one too.
	evil := NewClient(shared.URL, "http://evil.example")
	c.CopyCookiesTo(evil)
	status, body, _, _ = evil.PostJSON("/api/auth/sign-out", nil)
	if status != 403 || str(decode(t, body), "code") != "INVALID_ORIGIN" {
		t.Fatalf("sign-out with a foreign Origin: %d %s", status, body)
	}
	// The session survived both.
	if s, err := c.GetSession(); err != nil || s == nil {
		t.Fatalf("session gone after refused sign-outs: %v, %v", s, err)
	}
}

func TestRevokedSessionClearsCookies(t *testing.T) {
	email := newEmail(t)
	a := NewClient(shared.URL, shared.Origin)
	resA, err := a.SignUp(email, password, "Carol")
	if err != nil {
		t.Fatal(err)
	}
	b := NewClient(shared.URL, shared.Origin)
	if _, err := b.SignIn(email, password); err != nil {
		t.Fatal(err)
	}
	status, body, _, err := b.PostJSON("/api/auth/revoke-session", map[string]string{"token": str(resA, "token")})
	if err != nil || status != 200 {
		t.Fatalf("revoke-session: %d %s %v", status, body, err)
	}

	status, body, hdr, err := a.GetJSON("/api/auth/get-session")
	if err != nil {
		t.Fatal(err)
	}
	if status != 200 || strings.TrimSpace(string(body)) != "null" {
		t.Fatalf("get-session with a revoked session: %d %s", status, body)
	}
	cleared := clearedCookies(hdr)
	for _, name := range []string{sessionCookie, "better-auth.session_data", "better-auth.dont_remember"} {
		if !cleared[name] {
			t.Errorf("revoked session: %s not cleared; Set-Cookie: %q", name, hdr.Values("Set-Cookie"))
		}
	}
	if s, err := b.GetSession(); err != nil || s == nil {
		t.Fatalf("the other session is gone too: %v, %v", s, err)
	}
}

func TestOrganization(t *testing.T) {
	c := NewClient(shared.URL, shared.Origin)
	if _, err := c.SignUp(newEmail(t), password, "Dana"); err != nil {
		t.Fatal(err)
	}
	status, body, _, _ := c.GetJSON("/api/auth/organization/get-full-organization")
	if status != 200 || strings.TrimSpace(string(body)) != "null" {
		t.Fatalf("get-full-organization with no active organization: %d %s", status, body)
	}
	slug := fmt.Sprintf("org-%d", userSeq.Add(1))
	status, body, _, _ = c.PostJSON("/api/auth/organization/create", map[string]string{"name": "Org", "slug": slug})
	if status != 200 || str(decode(t, body), "slug") != slug {
		t.Fatalf("organization/create: %d %s", status, body)
	}
	orgID := str(decode(t, body), "id")
	// Creating an organization makes it the active one.
	if s, _ := c.GetSession(); str(s, "session", "activeOrganizationId") != orgID {
		t.Errorf("activeOrganizationId = %q, want %q", str(s, "session", "activeOrganizationId"), orgID)
	}
	status, body, _, _ = c.PostJSON("/api/auth/organization/has-permission", map[string]any{"permissions": map[string][]string{"member": {"create"}}})
	if status != 200 || strings.TrimSpace(string(body)) != `{"error":null,"success":true}` {
		t.Fatalf("has-permission: %d %s", status, body)
	}
	status, body, _, _ = c.GetJSON("/api/auth/organization/list-user-invitations")
	if status != 403 || str(decode(t, body), "code") != "EMAIL_VERIFICATION_REQUIRED_FOR_INVITATION" {
		t.Fatalf("list-user-invitations, unverified: %d %s", status, body)
	}
}

// TestStartOptions uses Start with non-default options: sessions refreshed
// after one second, verified emails, an extra trusted origin.
func TestStartOptions(t *testing.T) {
	s := Start(t, Options{
		SessionUpdateAge: time.Second,
		SessionExpiresIn: time.Hour,
		AutoVerifyEmail:  true,
		TrustedOrigins:   []string{"http://app.example"},
	})
	c := NewClient(s.URL, "http://app.example")
	res, err := c.SignUp(newEmail(t), password, "Erin")
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := res["user"].(map[string]any)["emailVerified"].(bool); !v {
		t.Errorf("AutoVerifyEmail: user not verified: %v", res)
	}
	cookie := c.Cookie(sessionCookie)

	status, body, _, _ := c.GetJSON("/api/auth/organization/list-user-invitations")
	if status != 200 || strings.TrimSpace(string(body)) != "[]" {
		t.Errorf("list-user-invitations, verified: %d %s", status, body)
	}

	time.Sleep(2100 * time.Millisecond)
	status, body, hdr, err := c.GetJSON("/api/auth/get-session")
	if err != nil || status != 200 {
		t.Fatalf("get-session: %d %s %v", status, body, err)
	}
	var refreshed *http.Cookie
	for _, ck := range (&http.Response{Header: hdr}).Cookies() {
		if ck.Name == sessionCookie {
			refreshed = ck
		}
	}
	if refreshed == nil {
		t.Fatalf("no Set-Cookie refresh after SessionUpdateAge; headers: %v", hdr)
	}
	if refreshed.MaxAge != 3600 || refreshed.Value != cookie {
		t.Errorf("refresh cookie: Max-Age %d, value %q; want 3600 and the old value %q", refreshed.MaxAge, refreshed.Value, cookie)
	}
	sess := decode(t, body)
	exp, err := time.Parse(time.RFC3339Nano, str(sess, "session", "expiresAt"))
	if err != nil || time.Until(exp) < 59*time.Minute {
		t.Errorf("expiresAt %q not pushed an hour ahead (%v)", str(sess, "session", "expiresAt"), err)
	}

	s.Close() // Close twice (t.Cleanup calls it again) must be fine.
	if _, err := os.Stat(s.DatabaseFile); !os.IsNotExist(err) {
		t.Errorf("database file left after Close: %v", err)
	}
	if _, err := c.Get("/api/auth/ok"); err == nil {
		t.Errorf("server still answers after Close")
	}
}

func TestBaseURLOption(t *testing.T) {
	// Better Auth behind a proxy at another address: the Origin it trusts is
	// the proxy's.
	s := Start(t, Options{BaseURL: "http://localhost:1"})
	if s.Origin != "http://localhost:1" || s.URL == s.BaseURL {
		t.Fatalf("URL %q, BaseURL %q, Origin %q", s.URL, s.BaseURL, s.Origin)
	}
	c := NewClient(s.URL, s.Origin)
	if _, err := c.SignUp(newEmail(t), password, "Finn"); err != nil {
		t.Fatal(err)
	}
	wrong := NewClient(s.URL, s.URL)
	c.CopyCookiesTo(wrong)
	status, body, _, _ := wrong.PostJSON("/api/auth/sign-out", nil)
	if status != 403 {
		t.Fatalf("sign-out with the server's own origin, not the base URL's: %d %s", status, body)
	}
}

func TestMissingNode(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	_, err := New(Options{})
	if err == nil || !strings.Contains(err.Error(), "node") {
		t.Fatalf("New without node on PATH: %v", err)
	}
}
