package module

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/seed5911dcdf/caddy-better-auth/betterauth"
)

// scope says which cache entries a successful auth call makes stale.
type scope uint8

const (
	// the caller's credential: its session and every query cached under it
	scopeCredential scope = 1 << iota
	// every entry of the caller's user, on every device
	scopeUser
	// every entry of the sessions whose tokens the caller's cookies hold
	// (sign-out with multi-session ends them all)
	scopeCookieTokens
	// the entries of the session named by the body's token field
	scopeBodyToken
	// every organization query of every user (members, invitations,
	// permissions of the organization's members)
	scopeOrganization
	// every entry of the user the answer names (sign-in, sign-up: the new
	// session shows in the lists of the user's other devices)
	scopeAnswerUser
)

// tableRow is one row of the endpoint-to-invalidation table.
type tableRow struct {
	method, endpoint string // endpoint under base_path; a trailing * matches a prefix
	scope            scope
	bodyField        string // with scopeBodyToken
}

// Invalidations is the endpoint-to-invalidation table (also in the README).
// After a 2xx answer to a matching request, and before that answer reaches
// the client, the entries in scope are dropped. On top of each row:
//   - every successful mutation drops the caller's own credential;
//   - every session token in the answer's Set-Cookie headers is dropped
//     (sign-in as another account, multi-session set-active), so no entry a
//     new credential could hit survives.
//
// A POST under base_path that no row names counts as a mutation of the
// caller's user (scopeUser): unknown plugin endpoints fail safe.
var Invalidations = []tableRow{
	{method: "POST", endpoint: "/get-session", scope: 0}, // a read
	{method: "POST", endpoint: "/sign-out", scope: scopeCookieTokens | scopeUser},
	{method: "POST", endpoint: "/sign-in/*", scope: scopeAnswerUser},
	{method: "POST", endpoint: "/sign-up/*", scope: scopeAnswerUser},
	{method: "GET", endpoint: "/callback/*", scope: scopeAnswerUser},
	{method: "GET", endpoint: "/verify-email", scope: scopeUser},
	{method: "POST", endpoint: "/update-user", scope: scopeUser},
	{method: "POST", endpoint: "/change-email", scope: scopeUser},
	{method: "POST", endpoint: "/change-password", scope: scopeUser},
	{method: "POST", endpoint: "/set-password", scope: scopeUser},
	{method: "POST", endpoint: "/delete-user", scope: scopeUser | scopeCookieTokens},
	{method: "GET", endpoint: "/delete-user/callback", scope: scopeUser | scopeCookieTokens},
	{method: "POST", endpoint: "/link-social", scope: scopeUser},
	{method: "POST", endpoint: "/unlink-account", scope: scopeUser},
	{method: "POST", endpoint: "/revoke-session", scope: scopeUser | scopeBodyToken, bodyField: "token"},
	{method: "POST", endpoint: "/revoke-sessions", scope: scopeUser},
	{method: "POST", endpoint: "/revoke-other-sessions", scope: scopeUser},
	{method: "POST", endpoint: "/multi-session/set-active", scope: scopeUser | scopeBodyToken, bodyField: "sessionToken"},
	{method: "POST", endpoint: "/multi-session/revoke", scope: scopeUser | scopeBodyToken, bodyField: "sessionToken"},
	{method: "POST", endpoint: "/passkey/verify-registration", scope: scopeUser},
	{method: "POST", endpoint: "/passkey/delete-passkey", scope: scopeUser},
	{method: "POST", endpoint: "/passkey/update-passkey", scope: scopeUser},
	{method: "POST", endpoint: "/api-key/create", scope: scopeUser},
	{method: "POST", endpoint: "/api-key/update", scope: scopeUser},
	{method: "POST", endpoint: "/api-key/delete", scope: scopeUser},
	{method: "POST", endpoint: "/organization/has-permission", scope: 0}, // a read
	{method: "POST", endpoint: "/organization/check-slug", scope: 0},     // a read
	{method: "POST", endpoint: "/organization/*", scope: scopeUser | scopeOrganization},
}

// defaultMutation applies to a POST no row names.
const defaultMutation = scopeUser

// lookupInvalidation finds the row for a request; ok is false for a
// request that changes nothing (GETs, reads).
func lookupInvalidation(method, endpoint string) (tableRow, bool) {
	for _, inv := range Invalidations {
		if inv.method != method {
			continue
		}
		if e, prefix := strings.CutSuffix(inv.endpoint, "*"); prefix && strings.HasPrefix(endpoint, e) || inv.endpoint == endpoint {
			return inv, inv.scope != 0
		}
	}
	if method == http.MethodPost || method == http.MethodPut || method == http.MethodPatch || method == http.MethodDelete {
		return tableRow{method: method, endpoint: endpoint, scope: defaultMutation}, true
	}
	return tableRow{}, false
}

// maxObservedBody bounds what is read of a mutation's request body and
// buffered of its answer; Better Auth's are far smaller.
const maxObservedBody = 1 << 20

// observe passes a Better Auth API request through untouched, and for a
// mutation drops the cache entries it makes stale before the answer
// reaches the client. The answer is buffered (it is small JSON) so that
// the invalidation can use what it says.
func (h *Handler) observe(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	endpoint := strings.TrimPrefix(r.URL.Path, h.BasePath)
	inv, ok := lookupInvalidation(r.Method, endpoint)
	if !ok {
		return next.ServeHTTP(w, r)
	}
	cred := betterauth.ReadCredential(r.Header, h.CookiePrefix, h.Bearer)
	var tags []string
	if !cred.Empty() {
		key := cred.Key()
		tags = append(tags, credTag(key))
		// Who the caller is, before the call changes it.
		if inv.scope&scopeUser != 0 {
			if res, err := h.resolveSession(r, cred, time.Now()); err == nil {
				if s := res.session(); s != nil {
					tags = append(tags, userTag(s.UserID))
				}
			}
		}
		if inv.scope&scopeCookieTokens != 0 {
			for _, t := range betterauth.SessionTokens(cred.Cookie, h.CookiePrefix) {
				tags = append(tags, tokenTag(t))
			}
		}
	}
	if inv.scope&scopeOrganization != 0 {
		tags = append(tags, orgAllTag)
	}
	if inv.scope&scopeBodyToken != 0 && r.Body != nil {
		body, err := io.ReadAll(io.LimitReader(r.Body, maxObservedBody))
		if err != nil {
			return caddyhttp.Error(http.StatusBadRequest, err)
		}
		r.Body = io.NopCloser(io.MultiReader(bytes.NewReader(body), r.Body))
		var v map[string]any
		if json.Unmarshal(body, &v) == nil {
			if t, ok := v[inv.bodyField].(string); ok && t != "" {
				tags = append(tags, tokenTag(t))
			}
		}
	}

	// Runs once, before the first byte of the answer reaches the client.
	commit := func(status int, header http.Header, body []byte) {
		if status < 200 || status > 299 {
			return
		}
		for _, sc := range header.Values("Set-Cookie") {
			if c, err := http.ParseSetCookie(sc); err == nil {
				for _, t := range betterauth.SessionTokens(c.Name+"="+c.Value, h.CookiePrefix) {
					tags = append(tags, tokenTag(t))
				}
			}
		}
		if inv.scope&scopeAnswerUser != 0 {
			var v struct {
				User struct {
					ID string `json:"id"`
				} `json:"user"`
			}
			if json.Unmarshal(body, &v) == nil && v.User.ID != "" {
				tags = append(tags, userTag(v.User.ID))
			}
		}
		h.invalidate(tags)
		if c := h.logger.Check(zapcore.DebugLevel, "auth mutation invalidated cache entries"); c != nil {
			c.Write(zap.String("endpoint", endpoint), zap.Int("tags", len(tags)))
		}
	}
	buf := &bufferedResponse{ResponseWriter: w, header: http.Header{}, commit: commit}
	err := next.ServeHTTP(buf, r)
	if werr := buf.release(); err == nil {
		err = werr
	}
	return err
}

// bufferedResponse holds an auth answer until the invalidation is done;
// an answer larger than maxObservedBody is committed at that point and
// streams on.
type bufferedResponse struct {
	http.ResponseWriter
	header    http.Header
	status    int
	body      bytes.Buffer
	commit    func(status int, header http.Header, body []byte)
	committed bool
}

func (b *bufferedResponse) Header() http.Header {
	if b.committed {
		return b.ResponseWriter.Header()
	}
	return b.header
}

func (b *bufferedResponse) WriteHeader(status int) {
	if b.committed {
		return
	}
	if status < 200 { // informational: straight through
		copyHeader(b.ResponseWriter.Header(), b.header)
		b.ResponseWriter.WriteHeader(status)
		return
	}
	if b.status == 0 {
		b.status = status
	}
}

func (b *bufferedResponse) Write(p []byte) (int, error) {
	if b.committed {
		return b.ResponseWriter.Write(p)
	}
	if b.status == 0 {
		b.WriteHeader(http.StatusOK)
	}
	if b.body.Len()+len(p) > maxObservedBody {
		if err := b.release(); err != nil {
			return 0, err
		}
		return b.ResponseWriter.Write(p)
	}
	return b.body.Write(p)
}

// Flush waits for the commit: the answer must not leave before the
// invalidation.
func (b *bufferedResponse) Flush() {
	if b.committed {
		http.NewResponseController(b.ResponseWriter).Flush()
	}
}

func (b *bufferedResponse) Unwrap() http.ResponseWriter { return b.ResponseWriter }

// release runs the commit, then sends what is held.
func (b *bufferedResponse) release() error {
	if b.committed {
		return nil
	}
	b.committed = true
	if b.status == 0 {
		b.status = http.StatusOK
	}
	b.commit(b.status, b.header, b.body.Bytes())
	copyHeader(b.ResponseWriter.Header(), b.header)
	b.ResponseWriter.WriteHeader(b.status)
	_, err := b.ResponseWriter.Write(b.body.Bytes())
	b.body = bytes.Buffer{}
	return err
}

func copyHeader(dst, src http.Header) {
	for k, vs := range src {
		dst[k] = vs
	}
}
