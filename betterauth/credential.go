package betterauth

import (
	"crypto/sha256"
	"net/http"
	"net/url"
	"strings"
)

// MaxCredential bounds the Better Auth part of a request's cookies (and the
// bearer header). Anything larger is not a credential Better Auth issued
// (its cookies, chunked session data included, stay far below this), so the
// request is treated as signed out and nothing is sent to the backend.
const MaxCredential = 16 << 10

// Credential is what identifies a visitor to Better Auth: the request's
// Better Auth cookies, in the order the browser sent them (Better Auth reads
// the first of duplicated names, so order is kept and duplicates are kept),
// and a bearer Authorization header when one is accepted.
type Credential struct {
	Cookie        string
	Authorization string
}

// Empty reports a request without any Better Auth credential: signed out
// without asking the backend.
func (c Credential) Empty() bool { return c.Cookie == "" && c.Authorization == "" }

// Key is the cache key of the credential: a SHA-256 digest, so no token is
// ever held as a map key or written to a log.
func (c Credential) Key() string {
	var buf [512]byte
	b := append(buf[:0], "cookie\x00"...)
	b = append(b, c.Cookie...)
	b = append(b, "\x00authorization\x00"...)
	b = append(b, c.Authorization...)
	d := sha256.Sum256(b)
	return string(d[:])
}

// IsAuthCookie reports whether a cookie name is one of Better Auth's under
// prefix: "prefix.name" or "__Secure-prefix.name".
func IsAuthCookie(name, prefix string) bool {
	name = strings.TrimPrefix(name, "__Secure-")
	return len(name) > len(prefix)+1 && name[len(prefix)] == '.' && strings.HasPrefix(name, prefix)
}

// ReadCredential extracts the Better Auth credential from request headers.
// Every Cookie header line is read (HTTP/2 splits them), pairs are kept as
// sent; pairs that are not name=value with a non-empty name are dropped, as
// cookie parsers do. With bearer set, an "Authorization: Bearer ..." header
// is part of the credential (Better Auth's bearer plugin reads it).
func ReadCredential(h http.Header, prefix string, bearer bool) Credential {
	lines := h.Values("Cookie")
	if len(lines) == 1 && len(lines[0]) <= MaxCredential && onlyAuthCookies(lines[0], prefix) {
		// The usual header of a site whose cookies are all Better Auth's:
		// the credential is the line itself, no copy.
		return withBearer(Credential{Cookie: lines[0]}, h, bearer)
	}
	return withBearer(Credential{Cookie: authCookies(lines, prefix)}, h, bearer)
}

// authCookies joins the Better Auth pairs of the Cookie lines with "; ",
// or returns "" when they exceed MaxCredential.
func authCookies(lines []string, prefix string) string {
	var b strings.Builder
	for _, line := range lines {
		for line != "" {
			var pair string
			pair, line, _ = strings.Cut(line, ";")
			pair = strings.TrimSpace(pair)
			name, _, ok := strings.Cut(pair, "=")
			if !ok || name == "" || !IsAuthCookie(strings.TrimSpace(name), prefix) {
				continue
			}
			if b.Len() > 0 {
				b.WriteString("; ")
			}
			b.WriteString(pair)
			if b.Len() > MaxCredential {
				return ""
			}
		}
	}
	return b.String()
}

func withBearer(c Credential, h http.Header, bearer bool) Credential {
	if bearer {
		if a := h.Get("Authorization"); len(a) > 7 && strings.EqualFold(a[:7], "bearer ") && len(a) <= MaxCredential {
			c.Authorization = a
		}
	}
	return c
}

// plainPair reports whether pair is printable ASCII without spaces or ';'.
func plainPair(pair string) bool {
	for i := 0; i < len(pair); i++ {
		if c := pair[i]; c <= ' ' || c >= 0x7f || c == ';' {
			return false
		}
	}
	return true
}

// onlyAuthCookies reports whether line is already in the form authCookies
// builds: name=value pairs, each one of Better Auth's, joined by "; ", with
// nothing that strings.TrimSpace would take off.
func onlyAuthCookies(line, prefix string) bool {
	if line == "" {
		return false
	}
	for line != "" {
		pair, rest, more := strings.Cut(line, "; ")
		name, _, ok := strings.Cut(pair, "=")
		if !ok || name == "" || !plainPair(pair) || !IsAuthCookie(name, prefix) {
			return false
		}
		if more && rest == "" {
			return false
		}
		line = rest
	}
	return true
}

// SessionTokens lists the session tokens held by Better Auth session
// cookies in a cookie string ("name=value; ..."): session_token and the
// multi-session session_token_multi-* cookies, whose value is
// "<token>.<signature>", URL-encoded or not.
func SessionTokens(cookie, prefix string) []string {
	var out []string
	for cookie != "" {
		var pair string
		pair, cookie, _ = strings.Cut(cookie, ";")
		name, value, ok := strings.Cut(strings.TrimSpace(pair), "=")
		if !ok {
			continue
		}
		name = strings.TrimPrefix(name, "__Secure-")
		if name != prefix+".session_token" && !strings.HasPrefix(name, prefix+".session_token_multi-") {
			continue
		}
		if v, err := url.QueryUnescape(value); err == nil {
			value = v
		}
		if token, _, _ := strings.Cut(value, "."); token != "" {
			out = append(out, token)
		}
	}
	return out
}
