// Package benchpage holds what the benchmarks serve: a server-rendered
// page, and Better Auth answers of the real ones' shape and size. The Go
// benchmarks (module, e2e) and bench/benchtool's upstream use the same ones.
package benchpage

import (
	"fmt"
	"io"
	"net/http"
	"strings"
)

// Page is a typical server-rendered page of exactly size bytes (at least
// a few hundred): a head with a stylesheet and a module script, then rows.
func Page(size int) []byte {
	var b strings.Builder
	b.WriteString("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n")
	b.WriteString("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n")
	b.WriteString("<title>Settings</title>\n<link rel=\"stylesheet\" href=\"/assets/app.css\">\n")
	b.WriteString("<script type=\"module\" src=\"/assets/app.js\"></script>\n</head>\n<body>\n<div id=\"root\">\n")
	for i := 0; b.Len() < size; i++ {
		fmt.Fprintf(&b, "<div class=\"row\"><a href=\"/items/%d\">Item %d</a> <span class=\"muted\">updated 3 minutes ago</span></div>\n", i, i)
	}
	s := b.String()
	const tail = "</div>\n</body>\n</html>\n"
	return []byte(s[:size-len(tail)] + tail)
}

// Families are the five settings families the load benchmarks prefetch,
// as the Caddyfile names them.
var Families = []string{"list_accounts", "list_sessions", "list_device_sessions", "list_passkeys", "list_api_keys"}

// Backend answers get-session and the list endpoints under /api/auth the
// way Better Auth does, for any session_token: the token before its '.'
// names the user, so distinct cookies are distinct users.
func Backend() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch strings.TrimPrefix(r.URL.Path, "/api/auth") {
		case "/get-session":
			token := "tok1"
			if c, err := r.Cookie("better-auth.session_token"); err == nil {
				token, _, _ = strings.Cut(c.Value, ".")
			}
			fmt.Fprintf(w, `{"session":{"expiresAt":"2030-01-01T00:00:00.000Z","token":%[1]q,"createdAt":"2025-12-01T10:00:00.000Z","updatedAt":"2025-12-01T10:00:00.000Z","ipAddress":"127.0.0.1","userAgent":"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36","userId":"Zk9k3q1Tq0bH6V%[1]s","activeOrganizationId":null,"id":"ses_8s7d6f5g4h%[1]s"},"user":{"name":"Ada Lovelace","email":"ada@example.com","emailVerified":true,"image":null,"createdAt":"2025-12-01T10:00:00.000Z","updatedAt":"2025-12-01T10:00:00.000Z","id":"Zk9k3q1Tq0bH6V%[1]s"}}`, token)
		case "/list-accounts":
			io.WriteString(w, `[{"id":"acc_1","providerId":"credential","createdAt":"2025-12-01T10:00:00.000Z","updatedAt":"2025-12-01T10:00:00.000Z","accountId":"Zk9k3q1Tq0bH6VQp3pYcM","userId":"Zk9k3q1Tq0bH6VQp3pYcM","scopes":[]}]`)
		case "/list-sessions":
			io.WriteString(w, `[{"expiresAt":"2030-01-01T00:00:00.000Z","token":"tok1","createdAt":"2025-12-01T10:00:00.000Z","updatedAt":"2025-12-01T10:00:00.000Z","ipAddress":"127.0.0.1","userAgent":"Mozilla/5.0","userId":"Zk9k3q1Tq0bH6VQp3pYcM","id":"ses_8s7d6f5g4h3j2k1l"}]`)
		case "/multi-session/list-device-sessions":
			io.WriteString(w, `[{"session":{"token":"tok1","userId":"Zk9k3q1Tq0bH6VQp3pYcM","id":"ses_8s7d6f5g4h3j2k1l"},"user":{"name":"Ada Lovelace","email":"ada@example.com","id":"Zk9k3q1Tq0bH6VQp3pYcM"}}]`)
		case "/api-key/list":
			io.WriteString(w, `[{"id":"key_1","name":"ci key","start":"abc","prefix":null,"userId":"Zk9k3q1Tq0bH6VQp3pYcM","enabled":true,"createdAt":"2025-12-01T10:00:00.000Z"}]`)
		default:
			io.WriteString(w, `[]`)
		}
	})
}
