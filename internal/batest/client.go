package batest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"time"
)

// Client is a cookie-keeping HTTP client for tests. It does not follow
// redirects, and it sets Origin on every POST (when Origin is not empty).
//
// Paths given to its methods are relative to BaseURL, so the same client can
// talk to Better Auth directly (BaseURL = Server.URL) or to a proxy in front
// of it (BaseURL = the proxy's URL). The sign-up/in/out helpers call
// BaseURL + AuthPath + "/sign-...".
//
// Note that a cookie jar keys cookies by host, not by port: cookies that
// 127.0.0.1:A set are sent to 127.0.0.1:B too. Use separate clients for
// separate servers on one host.
type Client struct {
	// BaseURL is prepended to every path (no trailing slash).
	BaseURL string
	// Origin is sent as the Origin header of POSTs; empty sends none.
	Origin string
	// AuthPath is where Better Auth lives below BaseURL; "/api/auth" by
	// default.
	AuthPath string
	// HTTP is the underlying client; its Jar is the client's cookie jar.
	HTTP *http.Client

	jar  *cookiejar.Jar
	base *url.URL
}

// NewClient returns a client for baseURL (e.g. "http://127.0.0.1:41234")
// sending origin on POSTs.
func NewClient(baseURL, origin string) *Client {
	baseURL = strings.TrimRight(baseURL, "/")
	u, err := url.Parse(baseURL)
	if err != nil {
		panic(fmt.Sprintf("batest.NewClient: bad base URL %q: %v", baseURL, err))
	}
	jar, _ := cookiejar.New(nil) // never fails without options
	return &Client{
		BaseURL:  baseURL,
		Origin:   origin,
		AuthPath: AuthPath,
		HTTP: &http.Client{
			Jar:     jar,
			Timeout: 30 * time.Second,
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		},
		jar:  jar,
		base: u,
	}
}

// Jar returns the client's cookie jar, e.g. to copy cookies to another
// client: other.Jar().SetCookies(u, c.Cookies()).
func (c *Client) Jar() *cookiejar.Jar { return c.jar }

// Cookies returns the cookies the jar would send to BaseURL.
func (c *Client) Cookies() []*http.Cookie { return c.jar.Cookies(c.base) }

// Cookie returns the value of the named cookie for BaseURL, or "".
func (c *Client) Cookie(name string) string {
	for _, ck := range c.Cookies() {
		if ck.Name == name {
			return ck.Value
		}
	}
	return ""
}

// CopyCookiesTo puts this client's cookies for its BaseURL into other's jar,
// for other's BaseURL.
func (c *Client) CopyCookiesTo(other *Client) {
	other.jar.SetCookies(other.base, c.Cookies())
}

func (c *Client) url(path string) string {
	if path != "" && !strings.HasPrefix(path, "/") && !strings.HasPrefix(path, "?") {
		path = "/" + path
	}
	return c.BaseURL + path
}

// Do sends a request to BaseURL+path with the given body and headers (both
// may be nil); it sets Origin on POST/PUT/PATCH/DELETE when the header is not
// given. The caller closes the response body.
func (c *Client) Do(method, path string, body io.Reader, hdr http.Header) (*http.Response, error) {
	req, err := http.NewRequest(method, c.url(path), body)
	if err != nil {
		return nil, err
	}
	for k, vs := range hdr {
		req.Header[k] = append([]string(nil), vs...)
	}
	switch method {
	case http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
		if c.Origin != "" && req.Header.Get("Origin") == "" {
			req.Header.Set("Origin", c.Origin)
		}
	}
	return c.HTTP.Do(req)
}

// Get sends a GET to BaseURL+path. The caller closes the response body.
func (c *Client) Get(path string) (*http.Response, error) {
	return c.Do(http.MethodGet, path, nil, nil)
}

// GetJSON sends a GET (Accept: application/json) and returns status, body and
// headers; err is only for transport errors.
func (c *Client) GetJSON(path string) (status int, body []byte, hdr http.Header, err error) {
	resp, err := c.Do(http.MethodGet, path, nil, http.Header{"Accept": {"application/json"}})
	return readAll(resp, err)
}

// PostJSON sends a POST with body encoded as JSON (a []byte or
// json.RawMessage is sent as is; nil sends no body and no Content-Type) and
// returns status, body and headers; err is only for transport and encoding
// errors.
func (c *Client) PostJSON(path string, body any) (status int, respBody []byte, hdr http.Header, err error) {
	h := http.Header{"Accept": {"application/json"}}
	var r io.Reader
	if body != nil {
		var b []byte
		switch v := body.(type) {
		case []byte:
			b = v
		case json.RawMessage:
			b = v
		default:
			if b, err = json.Marshal(body); err != nil {
				return 0, nil, nil, err
			}
		}
		r = bytes.NewReader(b)
		h.Set("Content-Type", "application/json")
	}
	resp, err := c.Do(http.MethodPost, path, r, h)
	return readAll(resp, err)
}

func readAll(resp *http.Response, err error) (int, []byte, http.Header, error) {
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, resp.Header, err
}

// StatusError is returned by the sign-up/in/out helpers for a non-200 answer.
type StatusError struct {
	Path   string
	Status int
	Body   []byte
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("%s: status %d: %s", e.Path, e.Status, bytes.TrimSpace(e.Body))
}

func (c *Client) authCall(endpoint string, body any) (map[string]any, error) {
	path := c.AuthPath + endpoint
	status, b, _, err := c.PostJSON(path, body)
	if err != nil {
		return nil, err
	}
	if status != http.StatusOK {
		return nil, &StatusError{Path: path, Status: status, Body: b}
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%s: decoding %q: %w", path, b, err)
	}
	return m, nil
}

// SignUp creates a user with email and password (POST /sign-up/email); the
// server signs it in, so the jar then holds its session cookies. It returns
// the decoded answer: {"token": ..., "user": {...}}.
func (c *Client) SignUp(email, password, name string) (map[string]any, error) {
	return c.authCall("/sign-up/email", map[string]string{"email": email, "password": password, "name": name})
}

// SignIn signs in with email and password (POST /sign-in/email) and returns
// the decoded answer: {"redirect": false, "token": ..., "user": {...}}.
func (c *Client) SignIn(email, password string) (map[string]any, error) {
	return c.authCall("/sign-in/email", map[string]string{"email": email, "password": password})
}

// SignOut signs out (POST /sign-out); the answer clears the auth cookies.
func (c *Client) SignOut() error {
	_, err := c.authCall("/sign-out", nil)
	return err
}

// GetSession calls GET /get-session and returns the decoded answer, nil when
// Better Auth answers null (no valid session).
func (c *Client) GetSession() (map[string]any, error) {
	path := c.AuthPath + "/get-session"
	status, b, _, err := c.GetJSON(path)
	if err != nil {
		return nil, err
	}
	if status != http.StatusOK {
		return nil, &StatusError{Path: path, Status: status, Body: b}
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%s: decoding %q: %w", path, b, err)
	}
	return m, nil
}
