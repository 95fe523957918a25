package betterauth

import (
	"net/http"
	"strings"
	"testing"
)

// For any Cookie header lines: no panic; the credential holds only Better
// Auth cookies, as sent, in order; equal inputs give equal keys and
// different credentials different keys.
func FuzzReadCredential(f *testing.F) {
	f.Add("better-auth.session_token=a.b; x=1", "__Secure-better-auth.session_data=zz", "Bearer t")
	f.Add(";;=;better-auth.=x;better-auth.session_token", "", "")
	f.Add("better-auth.session_token=a; better-auth.session_token=b", "better-auth.session_token_multi-a=a.s", "bearer")
	f.Fuzz(func(t *testing.T, line1, line2, auth string) {
		h := http.Header{}
		h.Add("Cookie", line1)
		h.Add("Cookie", line2)
		h.Set("Authorization", auth)
		c := ReadCredential(h, "better-auth", true)
		if len(c.Cookie) > MaxCredential+len(line1)+len(line2) {
			t.Fatal("credential grew beyond its input")
		}
		if c.Cookie != "" {
			for _, pair := range strings.Split(c.Cookie, "; ") {
				name, _, ok := strings.Cut(pair, "=")
				if !ok || !IsAuthCookie(name, "better-auth") {
					t.Fatalf("non-auth pair %q in %q", pair, c.Cookie)
				}
				if !strings.Contains(line1, pair) && !strings.Contains(line2, pair) {
					t.Fatalf("pair %q was not sent", pair)
				}
			}
		}
		if ReadCredential(h, "better-auth", true).Key() != c.Key() {
			t.Fatal("key not deterministic")
		}
		other := Credential{Cookie: c.Cookie + "x", Authorization: c.Authorization}
		if other.Key() == c.Key() {
			t.Fatal("different credentials share a key")
		}
		for _, tok := range SessionTokens(c.Cookie, "better-auth") {
			if tok == "" {
				t.Fatal("empty session token")
			}
		}
	})
}

// The single-line shortcut of ReadCredential gives what the general path
// gives, for the default and a custom cookie prefix, with and without a
// bearer token.
func FuzzReadCredentialShortcut(f *testing.F) {
	f.Add("better-auth.session_token=a.b", false, "")
	f.Add("better-auth.session_token=a.b; better-auth.session_data=c", false, "")
	f.Add("better-auth.session_token=a.b;better-auth.session_data=c", false, "")
	f.Add("better-auth.session_token=a.b; ; x=1", false, "")
	f.Add(" better-auth.session_token=a.b; ", false, "")
	f.Add("better-auth.session_token=a b; __Secure-better-auth.x=1", false, "")
	f.Add("app.session_token=z; __Secure-app.session_data=y", true, "Bearer k")
	f.Fuzz(func(t *testing.T, line string, custom bool, auth string) {
		prefix := "better-auth"
		if custom {
			prefix = "app"
		}
		h := http.Header{"Cookie": {line}, "Authorization": {auth}}
		got := ReadCredential(h, prefix, custom)
		want := withBearer(Credential{Cookie: authCookies([]string{line}, prefix)}, h, custom)
		if got != want {
			t.Fatalf("%q (prefix %s): shortcut %+v, general %+v", line, prefix, got, want)
		}
	})
}
