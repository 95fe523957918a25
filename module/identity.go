package module

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/seed5911dcdf/caddy-better-auth/betterauth"
)

// IdentityHeaders names the request headers that carry the signed-in
// visitor's identity to the upstream. Empty names are not set.
type IdentityHeaders struct {
	UserID    string `json:"user_id,omitempty"`
	Email     string `json:"email,omitempty"`
	Name      string `json:"name,omitempty"`
	SessionID string `json:"session_id,omitempty"`
}

func (ih *IdentityHeaders) names() []string {
	return []string{ih.UserID, ih.Email, ih.Name, ih.SessionID}
}

func (ih *IdentityHeaders) validate() error {
	if ih == nil {
		return nil
	}
	any := false
	for _, n := range ih.names() {
		if n == "" {
			continue
		}
		any = true
		if strings.ContainsAny(n, " \t\r\n:;,\"") {
			return fmt.Errorf("better_auth: identity header %q is not a header name", n)
		}
	}
	if !any {
		return fmt.Errorf("better_auth: identity_headers names no header")
	}
	return nil
}

// headerIdent folds the ways a client can spell one header: case, and _
// for - (which some servers and CGI-style frameworks treat alike).
func headerIdent(name string) string {
	return strings.ReplaceAll(strings.ToLower(name), "_", "-")
}

// strip deletes every client-sent copy of the identity headers.
func (ih *IdentityHeaders) strip(h http.Header) {
	if ih == nil {
		return
	}
	for key := range h {
		id := headerIdent(key)
		for _, n := range ih.names() {
			if n != "" && id == headerIdent(n) {
				delete(h, key)
			}
		}
	}
}

// set writes the identity of a signed-in visitor.
func (ih *IdentityHeaders) set(h http.Header, s *betterauth.Session) {
	if ih == nil {
		return
	}
	for _, p := range [][2]string{{ih.UserID, s.UserID}, {ih.Email, s.Email}, {ih.Name, s.Name}, {ih.SessionID, s.SessionID}} {
		if p[0] != "" && p[1] != "" {
			h.Set(p[0], headerValue(p[1]))
		}
	}
}

// headerValue keeps a value a header can carry: control characters (a
// user name may hold a newline) become spaces.
func headerValue(v string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, v)
}
