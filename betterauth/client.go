// Package betterauth talks to a Better Auth backend over its HTTP API: the
// session lookup, the read-only query families that @better-auth-ui/react
// prefetches, and the parsing of the visitor's Better Auth credential.
package betterauth

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// ErrBackend wraps every failure to get a usable answer from Better Auth:
// transport errors, timeouts, unexpected statuses, oversized or invalid
// bodies. Such an answer is never cached and never read as "signed out".
var ErrBackend = errors.New("better auth backend error")

// StatusError is an answer with a status other than 200. Better Auth answers
// 401/403 for a query the user may not run (e.g. an unverified email).
type StatusError struct {
	Code int
}

func (e *StatusError) Error() string { return fmt.Sprintf("better auth answered status %d", e.Code) }

// DefaultMaxBody bounds a backend answer; larger answers are errors.
const DefaultMaxBody = 1 << 20

// Client calls one Better Auth deployment.
type Client struct {
	// Backend is the origin of the Better Auth server, e.g. http://127.0.0.1:3000.
	Backend *url.URL
	// BasePath is where Better Auth is mounted, e.g. /api/auth.
	BasePath string
	// HTTP must not follow redirects; NewClient builds such a client.
	HTTP *http.Client
	// MaxBody bounds a response body (DefaultMaxBody when zero).
	MaxBody int64
}

// NewClient returns a client whose transport refuses redirects: a redirect
// from the auth backend is an error, never followed with the user's cookies.
func NewClient(backend *url.URL, basePath string, timeout time.Duration) *Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 256
	tr.ResponseHeaderTimeout = timeout
	return &Client{
		Backend:  backend,
		BasePath: strings.TrimRight(basePath, "/"),
		HTTP: &http.Client{
			Transport: tr,
			Timeout:   timeout,
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		},
	}
}

// Call is one request to Better Auth on a visitor's behalf.
type Call struct {
	Method   string
	Endpoint string     // under the base path, e.g. /get-session
	Query    url.Values // query string (GET)
	Body     []byte     // JSON body (POST)
	// Cookie is the visitor's Better Auth cookies only (Credential.Cookie).
	Cookie string
	// Authorization is forwarded when set (a bearer credential).
	Authorization string
	// ClientIP is sent as X-Forwarded-For, so Better Auth rate-limits and
	// records sessions per visitor and not per sidecar.
	ClientIP  string
	UserAgent string
	// Origin is required by Better Auth on a POST that carries cookies.
	Origin string
}

// Credential is the visitor's credential the call carries.
func (c Call) Credential() Credential {
	return Credential{Cookie: c.Cookie, Authorization: c.Authorization}
}

// Answer is a 200 answer from Better Auth.
type Answer struct {
	Body       []byte
	SetCookies []string
	FetchedAt  time.Time
}

// Do performs the call. A non-200 status is returned as an error wrapping
// both ErrBackend and *StatusError, with the Set-Cookie headers still in the
// Answer (Better Auth clears cookies on a 401 for a revoked session).
func (c *Client) Do(ctx context.Context, call Call) (Answer, error) {
	u := *c.Backend
	u.Path = strings.TrimRight(u.Path, "/") + c.BasePath + call.Endpoint
	u.RawQuery = call.Query.Encode()
	var body io.Reader
	if call.Body != nil {
		body = bytes.NewReader(call.Body)
	}
	req, err := http.NewRequestWithContext(ctx, call.Method, u.String(), body)
	if err != nil {
		return Answer{}, fmt.Errorf("%w: %v", ErrBackend, err)
	}
	req.Header.Set("Accept", "application/json")
	if call.Body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if call.Cookie != "" {
		req.Header.Set("Cookie", call.Cookie)
	}
	if call.Authorization != "" {
		req.Header.Set("Authorization", call.Authorization)
	}
	if call.ClientIP != "" {
		req.Header.Set("X-Forwarded-For", call.ClientIP)
	}
	if call.UserAgent != "" {
		req.Header.Set("User-Agent", call.UserAgent)
	} else {
		// Go's default agent would be recorded on the session instead.
		req.Header["User-Agent"] = nil
	}
	if call.Origin != "" && call.Method != http.MethodGet {
		req.Header.Set("Origin", call.Origin)
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return Answer{}, fmt.Errorf("%w: %v", ErrBackend, err)
	}
	defer resp.Body.Close()
	ans := Answer{SetCookies: resp.Header.Values("Set-Cookie"), FetchedAt: time.Now()}
	max := c.MaxBody
	if max <= 0 {
		max = DefaultMaxBody
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, max+1))
	if err != nil {
		return ans, fmt.Errorf("%w: reading body: %v", ErrBackend, err)
	}
	if resp.StatusCode != http.StatusOK {
		return ans, fmt.Errorf("%w: %s %s: %w", ErrBackend, call.Method, call.Endpoint, &StatusError{Code: resp.StatusCode})
	}
	if int64(len(data)) > max {
		return ans, fmt.Errorf("%w: %s answer larger than %d bytes", ErrBackend, call.Endpoint, max)
	}
	if !json.Valid(data) {
		return ans, fmt.Errorf("%w: %s answered invalid JSON", ErrBackend, call.Endpoint)
	}
	ans.Body = data
	return ans, nil
}
