// Package module is the Caddy HTTP handler http.handlers.better_auth.
//
// ServeHTTP below is a page request's whole path, top to bottom: auth API
// traffic is observed, the credential is read, the session resolved through
// the cache, the guard decides, the route's queries start, and the upstream
// HTML is streamed through the injector.
package module

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/seed5911dcdf/caddy-better-auth/betterauth"
	"github.com/seed5911dcdf/caddy-better-auth/cache"
	"github.com/seed5911dcdf/caddy-better-auth/inject"
	"github.com/seed5911dcdf/caddy-better-auth/invalidation"
)

func init() {
	caddy.RegisterModule(Handler{})
}

// Defaults of the optional settings.
const (
	DefaultBasePath      = "/api/auth"
	DefaultStaleTime     = 5 * time.Second
	DefaultTimeout       = 3 * time.Second
	DefaultCacheSize     = 64 << 20
	DefaultCookiePrefix  = "better-auth"
	DefaultSignIn        = "/auth/sign-in"
	DefaultRedirectParam = "redirectTo"
	DefaultStateID       = "__BETTER_AUTH_STATE__"
)

// Handler resolves the visitor's Better Auth session, guards paths and
// injects auth data into upstream HTML as TanStack Query dehydrated state.
// Its Caddyfile syntax is documented in package caddyfile and the README.
type Handler struct {
	// Backend is the origin of the Better Auth server (required).
	Backend string `json:"backend,omitempty"`
	// BasePath is where Better Auth is mounted. Default /api/auth.
	BasePath string `json:"base_path,omitempty"`
	// StaleTime is how long an answer is served from the cache, like
	// TanStack Query's staleTime. Default 5s; 0 disables caching.
	StaleTime *caddy.Duration `json:"stale_time,omitempty"`
	// Timeout bounds every backend call. Default 3s.
	Timeout caddy.Duration `json:"timeout,omitempty"`
	// CacheSize is the cache's budget in bytes. Default 64 MiB.
	CacheSize int64 `json:"cache_size,omitempty"`
	// CookiePrefix of Better Auth's cookies (advanced.cookiePrefix).
	// Default better-auth; the __Secure- form is read too.
	CookiePrefix string `json:"cookie_prefix,omitempty"`
	// SignIn is the sign-in page signed-out visitors are sent to.
	SignIn string `json:"sign_in,omitempty"`
	// RedirectParam carries the original URL to the sign-in page.
	RedirectParam string `json:"redirect_param,omitempty"`
	// Guard lists path-matcher patterns that require a session.
	Guard []string `json:"guard,omitempty"`
	// Guest lists path-matcher patterns that signed-in visitors are sent
	// away from (sign-in, sign-up).
	Guest []string `json:"guest,omitempty"`
	// StateID is the id of the injected script element.
	StateID string `json:"state_id,omitempty"`
	// Prefetch lists the queries to resolve and inject per route.
	Prefetch []Prefetch `json:"prefetch,omitempty"`
	// StaleIfError serves the last good session for at most this long
	// past its stale time while the backend fails. Off by default: a
	// signed-out or revoked user could keep access that long (changes seen
	// through the sidecar still invalidate it).
	StaleIfError caddy.Duration `json:"stale_if_error,omitempty"`
	// MaxAnswerSize bounds a backend answer in bytes. Default 1 MiB.
	MaxAnswerSize int64 `json:"max_answer_size,omitempty"`
	// Bearer makes an "Authorization: Bearer" header part of the
	// credential and sends it to Better Auth (its bearer plugin).
	Bearer bool `json:"bearer,omitempty"`
	// DebugHeader, when set, names a response header in the style of RFC
	// 9211 Cache-Status telling where the session and each query came from
	// and what was injected (nothing secret). While it is on, the page's
	// headers wait for the route's queries.
	DebugHeader string `json:"debug_header,omitempty"`
	// Invalidation shares this replica's invalidations with the others
	// through Redis pub/sub, and applies theirs.
	Invalidation *Invalidation `json:"invalidation,omitempty"`
	// IdentityHeaders names request headers set for the upstream when the
	// visitor is signed in; client-sent copies of those names (any case,
	// - or _) are always deleted first.
	IdentityHeaders *IdentityHeaders `json:"identity_headers,omitempty"`

	guard, guest caddyhttp.MatchPath
	backend      *url.URL
	client       *betterauth.Client
	cache        *cache.Cache
	poolKey      string
	bus          *invalidation.Bus
	busKey       string
	staleTime    time.Duration
	keep         time.Duration // how long entries live: stale time + stale_if_error
	timeout      time.Duration
	prefetch     []prefetchRoute
	logger       *zap.Logger
	debugLog     bool // logger takes debug lines: checked once, not per request
}

// CaddyModule returns the Caddy module information.
func (Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.better_auth",
		New: func() caddy.Module { return new(Handler) },
	}
}

// caches keeps each backend's cache across config reloads.
var caches = caddy.NewUsagePool()

// Provision fills in defaults and sets up the client and the cache.
func (h *Handler) Provision(ctx caddy.Context) error {
	h.setLogger(ctx.Logger())
	if err := registerMetrics(ctx.GetMetricsRegistry()); err != nil {
		return fmt.Errorf("better_auth metrics: %v", err)
	}
	if h.BasePath == "" {
		h.BasePath = DefaultBasePath
	}
	h.BasePath = "/" + strings.Trim(h.BasePath, "/")
	h.staleTime = DefaultStaleTime
	if h.StaleTime != nil {
		h.staleTime = time.Duration(*h.StaleTime)
	}
	h.keep = h.staleTime
	if h.staleTime > 0 {
		h.keep += time.Duration(h.StaleIfError)
	}
	h.timeout = time.Duration(h.Timeout)
	if h.timeout <= 0 {
		h.timeout = DefaultTimeout
	}
	if h.CacheSize == 0 {
		h.CacheSize = DefaultCacheSize
	}
	if h.CookiePrefix == "" {
		h.CookiePrefix = DefaultCookiePrefix
	}
	if h.SignIn == "" {
		h.SignIn = DefaultSignIn
	}
	if h.RedirectParam == "" {
		h.RedirectParam = DefaultRedirectParam
	}
	if h.StateID == "" {
		h.StateID = DefaultStateID
	}
	if err := h.Validate(); err != nil {
		return err
	}
	h.guard = caddyhttp.MatchPath(append([]string(nil), h.Guard...))
	h.guest = caddyhttp.MatchPath(append([]string(nil), h.Guest...))
	for _, m := range []caddyhttp.MatchPath{h.guard, h.guest} {
		if err := m.Provision(ctx); err != nil {
			return err
		}
	}
	var err error
	if h.prefetch, err = compilePrefetch(h.Prefetch); err != nil {
		return err
	}
	h.backend, _ = url.Parse(h.Backend)
	h.client = betterauth.NewClient(h.backend, h.BasePath, h.timeout)
	h.client.MaxBody = h.MaxAnswerSize

	// One cache per backend and size, shared by every handler and config
	// generation that uses them; entries of different backends never mix.
	h.poolKey = fmt.Sprintf("better_auth cache|%s|%s|%s|%d", h.backend, h.BasePath, h.CookiePrefix, h.CacheSize)
	c, _, err := caches.LoadOrNew(h.poolKey, func() (caddy.Destructor, error) {
		return cache.New(h.CacheSize, metrics.cacheEvictions.Inc)
	})
	if err != nil {
		return fmt.Errorf("better_auth cache: %v", err)
	}
	h.cache = c.(*cache.Cache)
	return h.provisionBus()
}

// setLogger sets the handler's logger. Caddy fixes a logger's level with
// the config, and a new config provisions new handlers.
func (h *Handler) setLogger(l *zap.Logger) {
	h.logger = l
	h.debugLog = l.Core().Enabled(zapcore.DebugLevel)
}

// Validate checks the configuration without changing it; empty optional
// settings stand for their defaults.
func (h *Handler) Validate() error {
	if h.Backend == "" {
		return errors.New("better_auth: backend is required")
	}
	u, err := url.Parse(h.Backend)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("better_auth: backend %q must be an http(s) origin such as http://127.0.0.1:3000", h.Backend)
	}
	if h.StaleTime != nil && *h.StaleTime < 0 {
		return errors.New("better_auth: stale_time must not be negative")
	}
	if h.StaleIfError < 0 || h.MaxAnswerSize < 0 {
		return errors.New("better_auth: stale_if_error and max_answer_size must not be negative")
	}
	if err := h.IdentityHeaders.validate(); err != nil {
		return err
	}
	if h.CacheSize < 0 {
		return errors.New("better_auth: cache_size must be positive")
	}
	if h.SignIn != "" && !isLocalPath(h.SignIn) {
		return fmt.Errorf("better_auth: sign_in %q must be a path on this site, starting with a single /", h.SignIn)
	}
	if url.QueryEscape(h.RedirectParam) != h.RedirectParam {
		return fmt.Errorf("better_auth: redirect_param %q must be a plain query parameter name", h.RedirectParam)
	}
	if h.DebugHeader != "" && strings.ContainsAny(h.DebugHeader, " \t\r\n:;,\"") {
		return fmt.Errorf("better_auth: debug_header %q is not a header name", h.DebugHeader)
	}
	if h.StateID != "" && !inject.ValidID(h.StateID) {
		return fmt.Errorf("better_auth: state_id %q is not a safe element id", h.StateID)
	}
	if strings.ContainsAny(h.CookiePrefix, " ;=,\t") {
		return fmt.Errorf("better_auth: cookie_prefix %q is not a cookie name prefix", h.CookiePrefix)
	}
	if err := h.Invalidation.validate(); err != nil {
		return err
	}
	_, err = compilePrefetch(h.Prefetch)
	return err
}

// Cleanup releases this config's hold on the cache; the last one closes it.
func (h *Handler) Cleanup() error {
	var err error
	if h.busKey != "" {
		_, err = buses.Delete(h.busKey)
	}
	if h.poolKey != "" {
		if _, cerr := caches.Delete(h.poolKey); err == nil {
			err = cerr
		}
	}
	return err
}

// ServeHTTP is a request's whole path through the sidecar.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	// 1. Better Auth's own API passes through untouched, never guarded;
	// its mutations invalidate what they make stale.
	if h.underBasePath(r) {
		return h.observe(w, r, next)
	}

	// 2. Who is it? No credential: signed out, without a backend call.
	// Client-sent identity headers never reach the upstream.
	h.IdentityHeaders.strip(r.Header)
	cred := betterauth.ReadCredential(r.Header, h.CookiePrefix, h.Bearer)
	now := time.Now()
	res, err := h.resolveSession(r, cred, now)
	for _, c := range res.setCookies {
		w.Header().Add("Set-Cookie", c)
	}

	// 3. The guard decides.
	guarded := h.isGuarded(r)
	dbg := h.newDebug(res, cred)
	if err != nil {
		h.logBackendError(r.URL.Path, betterauth.SessionFamily, err)
		if dbg != nil {
			dbg.session = "fwd=miss; detail=error"
		}
		if guarded {
			h.decided(w, r, dbg, "unavailable")
			return h.unavailable(w, r)
		}
		// Unguarded pages keep working, without auth data.
		h.decided(w, r, dbg, "public")
		return next.ServeHTTP(w, r)
	}
	sess := res.session()
	repl, _ := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer) // nil outside Caddy
	if sess != nil {
		setPlaceholders(repl, res.entry.Value.(*answer))
		h.IdentityHeaders.set(r.Header, sess)
	}
	switch {
	case guarded && sess == nil:
		if isNavigation(r) {
			h.decided(w, r, dbg, "redirected")
			return redirect(w, h.signInLocation(r))
		}
		h.decided(w, r, dbg, "unauthorized")
		return unauthorized(w)
	case sess != nil && len(h.guest) > 0 && h.guest.Match(r):
		h.decided(w, r, dbg, "guest_redirect")
		return redirect(w, h.guestLocation(r))
	case guarded:
		h.decided(w, nil, dbg, "allowed")
	default:
		h.decided(w, nil, dbg, "public")
	}

	// 4. Inject into the page: the session, and the route's queries, which
	// resolve in parallel while the upstream request is already under way.
	if !inject.RequestEligible(r) || injecting(repl) {
		return next.ServeHTTP(w, r)
	}
	// The queries' clock starts after the session: a session call (cold,
	// or failed and served by stale_if_error) must not use up their
	// timeout, nor make a stale answer look fresh.
	if !cred.Empty() && (!res.hit || res.stale) {
		now = time.Now()
	}
	pg := &injection{h: h, res: res}
	if sess != nil {
		pg.queries = h.startQueries(r, repl, cred, res.key, sess, now)
	}
	pg.deadline = now.Add(h.timeout)
	inject.PrepareRequest(r)
	if repl != nil {
		repl.Set(injectingVar, true)
		defer repl.Delete(injectingVar)
	}
	if dbg != nil {
		w = dbg.writer(w, pg.queries, pg.deadline)
	}
	iw := &pg.iw
	iw.Init(w, pg)
	// A panicking next handler (reverse_proxy, when the upstream's body
	// breaks off) must not leave the injector's goroutines blocked, nor have
	// part of a gathered page sent: Abort drops it. After Close it does nothing.
	defer iw.Abort()
	err = next.ServeHTTP(iw, r)
	if cerr := iw.Close(); err == nil {
		err = cerr
	}
	if pg.state != nil && cap(*pg.state) <= 64<<10 {
		statePool.Put(pg.state) // Close wrote it out or dropped it: no one holds it now
	}
	pg.queries.release()
	injected, reason, n := iw.Result()
	if injected {
		metrics.injections.Inc()
		metrics.injectedBytes.Add(float64(n))
	} else {
		metrics.notInjected.WithLabelValues(reason).Inc()
	}
	if h.debugLog {
		if c := h.logger.Check(zapcore.DebugLevel, "page"); c != nil {
			c.Write(zap.String("path", r.URL.Path), zap.Bool("injected", injected), zap.String("reason", reason), zap.Int("state_bytes", n))
		}
	}
	return err
}

// injection is what injecting into one page needs, in one allocation: the
// writer and, for its block, the session, the queries and their deadline.
type injection struct {
	iw       inject.ResponseWriter
	h        *Handler
	res      sessionResult
	queries  *pending
	deadline time.Time
	state    *[]byte // the block, from statePool, back there after Close
}

// Block is called by the injector at the insertion point.
func (pg *injection) Block() []byte {
	pg.state = statePool.Get().(*[]byte)
	*pg.state = pg.h.appendStateScript((*pg.state)[:0], pg.res, pg.queries, pg.deadline)
	return *pg.state
}

// decided records a guard decision: metrics, a debug log line, and the
// debug header when the response is decided here.
func (h *Handler) decided(w http.ResponseWriter, r *http.Request, dbg *debugInfo, outcome string) {
	guardCounters[outcome].Inc()
	if dbg != nil {
		dbg.guard = outcome
		if r != nil { // the sidecar answers this request itself
			w.Header().Set(h.DebugHeader, dbg.value(nil))
		}
	}
	if r != nil && h.debugLog {
		if c := h.logger.Check(zapcore.DebugLevel, "guard decision"); c != nil {
			c.Write(zap.String("outcome", outcome), zap.String("method", r.Method), zap.String("path", r.URL.Path))
		}
	}
}

// appendStateScript is called by the injector at the insertion point: it
// waits for the route's queries until the deadline, leaves out what is not
// there, and appends the state's element to dst.
func (h *Handler) appendStateScript(dst []byte, res sessionResult, queries *pending, deadline time.Time) []byte {
	var buf [8]inject.Query
	qs := append(buf[:0], res.query())
	qs = queries.collect(qs, deadline)
	dst = slices.Grow(dst, inject.StateSize(qs)+len(h.StateID))
	return inject.AppendScript(dst, h.StateID, qs, time.Now().UnixMilli())
}

var statePool = sync.Pool{New: func() any { b := make([]byte, 0, 4<<10); return &b }}

// injecting reports whether a better_auth handler further up the chain
// injects into this request's page. The mark is a value of the request's
// replacer, set around the next handler (its map is locked: reverse_proxy's
// dialer may still read the request's variables after the handler returns),
// which costs no copy of the request. repl is nil outside Caddy.
func injecting(repl *caddy.Replacer) bool {
	if repl == nil {
		return false
	}
	v, _ := repl.Get(injectingVar)
	return v == true
}

const injectingVar = "better_auth.injecting"

func (h *Handler) underBasePath(r *http.Request) bool {
	p := r.URL.Path
	return p == h.BasePath || strings.HasPrefix(p, h.BasePath+"/")
}

// isGuarded applies the guard patterns exactly as Caddy's path matcher
// does; the sign-in page itself is never guarded, so there is no loop.
func (h *Handler) isGuarded(r *http.Request) bool {
	if len(h.guard) == 0 || !h.guard.Match(r) {
		return false
	}
	return !strings.EqualFold(caddyhttp.CleanPath(r.URL.Path, true), h.SignIn)
}

// logBackendError logs a failed backend call; a 4xx answer to a query
// (Better Auth refusing it for this user) is an answer, logged at debug.
func (h *Handler) logBackendError(path string, f *betterauth.Family, err error) {
	level, msg := zapcore.ErrorLevel, "better auth backend call failed"
	var se *betterauth.StatusError
	if errors.As(err, &se) && se.Code >= 400 && se.Code < 500 && se.Code != http.StatusTooManyRequests && f != betterauth.SessionFamily {
		level, msg = zapcore.DebugLevel, "better auth refused a query"
	}
	if c := h.logger.Check(level, msg); c != nil {
		c.Write(zap.String("family", f.Name), zap.String("path", path), zap.Error(err))
	}
}

// setPlaceholders gives the rest of the Caddyfile the identity, in the
// names caddyauth uses, boxed once per cache entry. Set, not a provider: a
// value set earlier (vars, basic_auth, an outer better_auth) is
// overwritten, as caddyauth does.
func setPlaceholders(repl *caddy.Replacer, a *answer) {
	if repl == nil {
		return
	}
	repl.Set("http.auth.user.id", a.vars[0])
	repl.Set("http.auth.user.email", a.vars[1])
	repl.Set("http.auth.user.name", a.vars[2])
	repl.Set("http.auth.session.id", a.vars[3])
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddy.Validator             = (*Handler)(nil)
	_ caddy.CleanerUpper          = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
)
