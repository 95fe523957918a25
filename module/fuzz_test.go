package module

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// For any request path, query and redirectTo value, every Location the
// guard builds is a local path, and so is the redirectTo it carries.
func FuzzRedirect(f *testing.F) {
	for _, s := range []string{"//evil.com", "/\\evil.com", "/%2F%2Fevil", "/a/../..//b", "https://evil.com", "/\t/x", "/ok?x=1#y", ""} {
		f.Add(s, "a=1", s)
	}
	h := &Handler{SignIn: DefaultSignIn, RedirectParam: DefaultRedirectParam}
	f.Fuzz(func(t *testing.T, path, rawQuery, to string) {
		r := httptest.NewRequest("GET", "http://site.test/", nil)
		r.URL = &url.URL{Path: path, RawQuery: rawQuery}
		loc := h.signInLocation(r)
		if !isLocalPath(loc) || strings.ContainsAny(loc, " \r\n") {
			t.Fatalf("sign-in Location %q", loc)
		}
		u, err := url.Parse(loc)
		if err != nil || u.Host != "" {
			t.Fatalf("Location %q parses to %v %v", loc, u, err)
		}
		if target := u.Query().Get(DefaultRedirectParam); !isLocalPath(target) {
			t.Fatalf("redirectTo %q from path %q", target, path)
		}
		got := safeRedirectTo(to, "http://site.test")
		if !isLocalPath(got) {
			t.Fatalf("safeRedirectTo(%q) = %q", to, got)
		}
		if g, err := url.Parse(got); err != nil || g.Host != "" || g.Scheme != "" {
			t.Fatalf("safeRedirectTo(%q) = %q leaves the site", to, got)
		}
		var _ http.Handler
	})
}
