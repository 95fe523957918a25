package module

import (
	"net/http"
	"net/url"
	"strings"
	"unicode"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// isNavigation tells a page load, which is sent to sign-in, from an API or
// XHR call, which gets a 401 it can handle.
func isNavigation(r *http.Request) bool {
	if m := r.Header.Get("Sec-Fetch-Mode"); m != "" {
		return m == "navigate"
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return false
	}
	if r.Header.Get("X-Requested-With") != "" {
		return false
	}
	for _, a := range r.Header.Values("Accept") {
		if strings.Contains(a, "text/html") || strings.Contains(a, "application/xhtml+xml") {
			return true
		}
	}
	return false
}

// signInLocation is the sign-in page with the original path and query.
// The target is built from the cleaned path only (never Host or
// X-Forwarded-* headers) and is always a same-origin relative path.
func (h *Handler) signInLocation(r *http.Request) string {
	target := originalTarget(r)
	sep := "?"
	if strings.Contains(h.SignIn, "?") {
		sep = "&"
	}
	return h.SignIn + sep + url.QueryEscape(h.RedirectParam) + "=" + url.QueryEscape(target)
}

// originalTarget is the request's path as Caddy's path matcher cleans it
// (dots resolved, slashes merged), re-escaped, plus the raw query.
func originalTarget(r *http.Request) string {
	p := caddyhttp.CleanPath(r.URL.Path, true)
	if !strings.HasPrefix(p, "/") {
		p = "/" + p
	}
	target := (&url.URL{Path: p}).EscapedPath()
	if !isLocalPath(target) {
		target = "/"
	}
	if r.URL.RawQuery != "" {
		target += "?" + escapeQuery(r.URL.RawQuery)
	}
	return target
}

// escapeQuery percent-encodes what a raw query must not carry into a URL:
// control characters, spaces, backslashes, '#' and non-ASCII bytes.
func escapeQuery(q string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(q); i++ {
		c := q[i]
		if c <= ' ' || c >= 0x7f || c == '\\' || c == '#' {
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&15])
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// guestLocation is where a signed-in visitor of a guest page (sign-in,
// sign-up) goes: its own redirect parameter when that is safe and not
// itself a guest page (no loop), else /.
func (h *Handler) guestLocation(r *http.Request) string {
	to := safeRedirectTo(r.URL.Query().Get(h.RedirectParam), requestOrigin(r))
	if to != "/" {
		u, err := url.Parse(to)
		if err != nil {
			return "/"
		}
		probe := &http.Request{URL: u}
		probe = probe.WithContext(r.Context())
		if h.guest.Match(probe) {
			return "/"
		}
	}
	return to
}

// safeRedirectTo follows @better-auth-ui/core's getSafeRedirectTo: a
// root-relative path or a same-origin http(s) URL becomes a same-origin
// path with its query and fragment; anything else becomes /. It adds one
// rule: a result that a browser would read as scheme-relative is refused.
func safeRedirectTo(to, origin string) string {
	for _, c := range to {
		if c == '\\' || c <= 31 || c == 127 {
			return "/"
		}
	}
	to = strings.TrimFunc(to, func(c rune) bool { return unicode.IsSpace(c) || c == '\uFEFF' })
	lower := strings.ToLower(to)
	if to == "" || strings.HasPrefix(to, "//") ||
		(!strings.HasPrefix(to, "/") && !strings.HasPrefix(lower, "http://") && !strings.HasPrefix(lower, "https://")) {
		return "/"
	}
	base, err := url.Parse(origin + "/")
	if err != nil {
		return "/"
	}
	ref, err := url.Parse(to)
	if err != nil {
		return "/"
	}
	u := base.ResolveReference(ref)
	if u.Scheme != base.Scheme || !strings.EqualFold(u.Host, base.Host) || u.User != nil {
		return "/"
	}
	out := u.EscapedPath()
	if out == "" {
		out = "/"
	}
	if u.RawQuery != "" {
		out += "?" + u.RawQuery
	}
	if u.Fragment != "" {
		out += "#" + u.EscapedFragment()
	}
	if !isLocalPath(out) {
		return "/"
	}
	return out
}

// isLocalPath: starts with exactly one slash, no backslash or control
// character a browser could turn into another origin.
func isLocalPath(p string) bool {
	if !strings.HasPrefix(p, "/") || strings.HasPrefix(p, "//") || strings.HasPrefix(p, "/\\") {
		return false
	}
	for _, c := range p {
		if c == '\\' || c <= 31 || c == 127 {
			return false
		}
	}
	return true
}

func noStore(w http.ResponseWriter) {
	w.Header().Set("Cache-Control", "no-store")
}

func redirect(w http.ResponseWriter, location string) error {
	noStore(w)
	w.Header().Set("Location", location)
	w.WriteHeader(http.StatusFound)
	return nil
}

func unauthorized(w http.ResponseWriter) error {
	noStore(w)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusUnauthorized)
	_, err := w.Write([]byte(`{"code":"UNAUTHORIZED","message":"Sign in to access this resource."}` + "\n"))
	return err
}

const unavailablePage = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Temporarily unavailable</title></head>
<body><h1>Temporarily unavailable</h1><p>We could not check your sign-in just now. Please try again in a moment.</p></body></html>
`

// unavailable fails closed: a guarded page is never served while the
// session cannot be checked.
func (h *Handler) unavailable(w http.ResponseWriter, r *http.Request) error {
	noStore(w)
	w.Header().Set("Retry-After", "5")
	if isNavigation(r) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(http.StatusServiceUnavailable)
		_, err := w.Write([]byte(unavailablePage))
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusServiceUnavailable)
	_, err := w.Write([]byte(`{"code":"AUTH_UNAVAILABLE","message":"The session could not be checked. Try again."}` + "\n"))
	return err
}
