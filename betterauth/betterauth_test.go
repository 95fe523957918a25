package betterauth

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestReadCredential(t *testing.T) {
	for _, tc := range []struct {
		name    string
		cookies []string
		want    string
	}{
		{"none", nil, ""},
		{"other cookies only", []string{"theme=dark; sid=abc"}, ""},
		{"filters to the prefix", []string{"theme=dark; better-auth.session_token=t1.sig; x=1"}, "better-auth.session_token=t1.sig"},
		{"secure form", []string{"__Secure-better-auth.session_token=t2"}, "__Secure-better-auth.session_token=t2"},
		{"order and duplicates kept", []string{"better-auth.session_token=a; better-auth.session_data=d; better-auth.session_token=b"},
			"better-auth.session_token=a; better-auth.session_data=d; better-auth.session_token=b"},
		{"several header lines", []string{"better-auth.session_token=a", "x=1; better-auth.dont_remember=true"},
			"better-auth.session_token=a; better-auth.dont_remember=true"},
		{"prefix alone is not a cookie of it", []string{"better-auth=x; better-authx.session_token=y"}, ""},
		{"malformed pairs dropped", []string{";;=v; novalue; better-auth.session_token=ok;"}, "better-auth.session_token=ok"},
		{"multi session cookies", []string{"better-auth.session_token_multi-abc=v"}, "better-auth.session_token_multi-abc=v"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{}
			for _, c := range tc.cookies {
				h.Add("Cookie", c)
			}
			got := ReadCredential(h, "better-auth", false)
			if got.Cookie != tc.want {
				t.Fatalf("got %q, want %q", got.Cookie, tc.want)
			}
			if got.Empty() != (tc.want == "") {
				t.Fatalf("Empty() = %v", got.Empty())
			}
		})
	}
}

func TestCredentialKeys(t *testing.T) {
	a := Credential{Cookie: "better-auth.session_token=a"}
	b := Credential{Cookie: "better-auth.session_token=b"}
	if a.Key() == b.Key() || len(a.Key()) != 32 {
		t.Fatal("distinct credentials must have distinct 32-byte keys")
	}
	if strings.Contains(a.Key(), "session_token") {
		t.Fatal("the key holds the token")
	}
	big := http.Header{"Cookie": {"better-auth.session_data=" + strings.Repeat("x", MaxCredential)}}
	if !ReadCredential(big, "better-auth", false).Empty() {
		t.Fatal("an oversized credential must be treated as none")
	}
	bearer := http.Header{"Authorization": {"Bearer tok"}}
	if !ReadCredential(bearer, "better-auth", false).Empty() {
		t.Fatal("bearer read while not enabled")
	}
	if c := ReadCredential(bearer, "better-auth", true); c.Authorization != "Bearer tok" {
		t.Fatalf("bearer not read: %+v", c)
	}
}

func TestParseSession(t *testing.T) {
	s, err := ParseSession([]byte(" null "))
	if s != nil || err != nil {
		t.Fatalf("null: %v %v", s, err)
	}
	s, err = ParseSession([]byte(`{"session":{"id":"s1","token":"tk","activeOrganizationId":"o1"},"user":{"id":"u1","email":"a@b","name":"A"}}`))
	if err != nil || s.UserID != "u1" || s.SessionID != "s1" || s.Token != "tk" || s.Email != "a@b" || s.Name != "A" || s.ActiveOrganizationID != "o1" {
		t.Fatalf("got %+v %v", s, err)
	}
	for _, bad := range []string{`{}`, `{"user":{"id":"u"}}`, `[]`, `"x"`, `{"session":{},"user":{}}`, `{`} {
		if _, err := ParseSession([]byte(bad)); !errors.Is(err, ErrBackend) {
			t.Errorf("%s: want ErrBackend, got %v", bad, err)
		}
	}
}

func TestFamilyKeysAndCalls(t *testing.T) {
	if got := string(SessionFamily.KeyJSON("u", nil)); got != `["auth","getSession"]` {
		t.Fatal(got)
	}
	f := Families["list_device_sessions"]
	if got := string(f.KeyJSON("u\"1", nil)); got != `["auth","user","u\"1","multiSession","list",null]` {
		t.Fatal(got)
	}
	if got := string(f.KeyJSON("u", []byte(`{"a":1}`))); got != `["auth","user","u","multiSession","list",{"a":1}]` {
		t.Fatal(got)
	}
	c, err := Families["active_organization"].Call([]byte(`{"organizationSlug":"café","n":2,"x":null,"o":{"k":"v"}}`))
	if err != nil || c.Method != "GET" || c.Endpoint != "/organization/get-full-organization" {
		t.Fatal(c, err)
	}
	if got := c.Query.Encode(); got != "n=2&o=%7B%22k%22%3A%22v%22%7D&organizationSlug=caf%C3%A9" {
		t.Fatal(got)
	}
	c, _ = Families["has_permission"].Call([]byte(`{"permissions":{"member":["create"]}}`))
	if c.Method != "POST" || string(c.Body) != `{"permissions":{"member":["create"]}}` || c.Query != nil {
		t.Fatal(c)
	}
	for name, f := range Families {
		if f.Name != name || f.Method == "" || !strings.HasPrefix(f.Endpoint, "/") {
			t.Errorf("bad family %q", name)
		}
	}
	if len(Families) != 14 {
		t.Fatalf("%d families registered, want 14", len(Families))
	}
}

func TestScopeParams(t *testing.T) {
	m := Families["list_organization_members"]
	out, ok, err := m.ScopeParams(nil, "org1")
	if err != nil || !ok || string(out) != `{"organizationId":"org1"}` {
		t.Fatal(string(out), ok, err)
	}
	out, ok, _ = m.ScopeParams([]byte(`{"organizationSlug":"acme"}`), "org1")
	if !ok || string(out) != `{"organizationId":"org1","organizationSlug":"acme"}` {
		t.Fatal(string(out))
	}
	out, _, _ = m.ScopeParams([]byte(`{"organizationId":"mine"}`), "org1")
	if string(out) != `{"organizationId":"mine"}` {
		t.Fatal(string(out))
	}
	if _, ok, _ := m.ScopeParams(nil, ""); ok {
		t.Fatal("no organization: the client does not run the query")
	}
	hp := Families["has_permission"]
	out, ok, _ = hp.ScopeParams([]byte(`{"permissions":{"member":["create"]},"extra":1}`), "o")
	if !ok || string(out) != `{"organizationId":"o","permissions":{"member":["create"]}}` {
		t.Fatal(string(out))
	}
	la := Families["list_accounts"]
	if out, ok, _ := la.ScopeParams([]byte(`{"x":1}`), ""); !ok || string(out) != `{"x":1}` {
		t.Fatal("unscoped family changed")
	}
}

func TestClientDo(t *testing.T) {
	var mu sync.Mutex
	var last *http.Request
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/api/auth/get-session" {
			mu.Lock()
			last = r.Clone(context.Background())
			mu.Unlock()
		}
		switch r.URL.Path {
		case "/api/auth/get-session":
			w.Header().Add("Set-Cookie", "better-auth.session_token=new; Path=/")
			w.Write([]byte(`{"session":{"id":"s"},"user":{"id":"u"}}`))
		case "/api/auth/redirect":
			http.Redirect(w, r, "/elsewhere", http.StatusFound)
		case "/api/auth/big":
			w.Write([]byte(`"` + strings.Repeat("x", 2000) + `"`))
		case "/api/auth/bad":
			w.Write([]byte(`{nope`))
		case "/api/auth/slow":
			time.Sleep(2 * time.Second)
		case "/api/auth/forbidden":
			w.Header().Add("Set-Cookie", "better-auth.session_token=; Max-Age=0")
			w.WriteHeader(403)
		}
	}))
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	c := NewClient(u, "/api/auth", 500*time.Millisecond)
	c.MaxBody = 1000
	ans, err := c.Do(context.Background(), Call{Method: "GET", Endpoint: "/get-session", Cookie: "better-auth.session_token=t", ClientIP: "203.0.113.9", UserAgent: "UA/1", Origin: "http://site"})
	if err != nil || len(ans.SetCookies) != 1 || ans.FetchedAt.IsZero() {
		t.Fatal(ans, err)
	}
	got := func() *http.Request { mu.Lock(); defer mu.Unlock(); return last }
	if got().Header.Get("Cookie") != "better-auth.session_token=t" || got().Header.Get("X-Forwarded-For") != "203.0.113.9" ||
		got().Header.Get("User-Agent") != "UA/1" || got().Header.Get("Origin") != "" {
		t.Fatalf("headers sent: %v", got().Header)
	}
	if _, err := c.Do(context.Background(), Call{Method: "POST", Endpoint: "/get-session", Body: []byte(`{}`), Origin: "http://site"}); err != nil || got().Header.Get("Origin") != "http://site" {
		t.Fatal("POST must carry the origin", err)
	}
	for _, ep := range []string{"/redirect", "/big", "/bad", "/slow"} {
		if _, err := c.Do(context.Background(), Call{Method: "GET", Endpoint: ep}); !errors.Is(err, ErrBackend) {
			t.Errorf("%s: want ErrBackend, got %v", ep, err)
		}
	}
	ans, err = c.Do(context.Background(), Call{Method: "GET", Endpoint: "/forbidden"})
	var se *StatusError
	if !errors.As(err, &se) || se.Code != 403 || len(ans.SetCookies) != 1 {
		t.Fatalf("403: %v %v", err, ans.SetCookies)
	}
}
