package module

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/seed5911dcdf/caddy-better-auth/betterauth"
	"github.com/seed5911dcdf/caddy-better-auth/cache"
	"github.com/seed5911dcdf/caddy-better-auth/inject"
)

// answer is what a cache entry holds: the answer's injectable JSON and,
// for the session, what the guard and placeholders need.
type answer struct {
	data       []byte              // inject.EncodeJSON of the body
	hash       string              // queryHash of a query's key, computed once
	head       []byte              // inject.QueryHead(hash), for a query (the session's is sessionHead)
	safe       bool                // inject.HTMLSafe(data), checked once
	session    *betterauth.Session // session family only; nil = signed out
	setCookies []string            // reach the browser of the request that fetched
	vars       [4]any              // the session's placeholder values, boxed once (placeholderCost)
}

// placeholderCost is what vars holds: four interface values and the four
// string headers they point to.
const placeholderCost = 4*16 + 4*16

// sessionResult is the resolved session of one request.
type sessionResult struct {
	entry      *cache.Entry // nil without credential
	hit        bool
	stale      bool // served by stale_if_error
	setCookies []string
	key        string // the credential's cache key (a SHA-256), for the queries
}

// newQueryAnswer is a query's answer, with what writing it needs computed
// once.
func newQueryAnswer(data []byte, hash string) *answer {
	return &answer{data: data, hash: hash, head: inject.QueryHead(hash), safe: inject.HTMLSafe(data)}
}

// query is a query answer as the state holds it, fetched as e.
func (a *answer) query(e *cache.Entry) inject.Query {
	return inject.Query{Hash: a.hash, Data: a.data, UpdatedAt: e.FetchedAt.UnixMilli(), Head: a.head, Safe: a.safe}
}

func (s sessionResult) session() *betterauth.Session {
	if s.entry == nil {
		return nil
	}
	return s.entry.Value.(*answer).session
}

// query is the session's dehydrated query: the answer, or null for a
// visitor without credential (the client knows at once it is signed out).
func (s sessionResult) query() inject.Query {
	if s.entry != nil {
		a := s.entry.Value.(*answer)
		return inject.Query{Hash: sessionHash, Data: a.data, UpdatedAt: s.entry.FetchedAt.UnixMilli(), Head: sessionHead, Safe: a.safe}
	}
	return inject.Query{Hash: sessionHash, Data: nullJSON, UpdatedAt: time.Now().UnixMilli(), Head: sessionHead, Safe: true}
}

var nullJSON = []byte("null")

var (
	sessionHash = mustHash(betterauth.SessionFamily.KeyJSON("", nil))
	sessionHead = inject.QueryHead(sessionHash)
)

func mustHash(key []byte) string {
	h, err := inject.HashKey(key)
	if err != nil {
		panic(err)
	}
	return h
}

// Invalidation tags. Credential keys are digests already; session tokens
// are digested so that no token is held outside the entry itself.
func credTag(credKey string) string { return "c\x00" + credKey }
func userTag(uid string) string     { return "u\x00" + uid }
func tokenTag(token string) string {
	d := sha256.Sum256([]byte(token))
	return "t\x00" + string(d[:])
}

// credentialTags are what every entry under a credential carries: the
// credential itself and each session token its cookies hold, so ending
// any of those sessions drops the entry.
func credentialTags(key string, cred betterauth.Credential, prefix string) []string {
	tags := []string{credTag(key)}
	for _, t := range betterauth.SessionTokens(cred.Cookie, prefix) {
		tags = append(tags, tokenTag(t))
	}
	return tags
}

// resolveSession finds the request's session through the cache. The
// Set-Cookie headers of a backend call go to the requests that waited for
// it (the same credential), not to later cache hits.
func (h *Handler) resolveSession(r *http.Request, cred betterauth.Credential, now time.Time) (sessionResult, error) {
	if cred.Empty() {
		return sessionResult{}, nil
	}
	key := cred.Key()
	if e, ok := h.cache.Fresh(key, h.staleTime, now); ok {
		observeLookup(betterauth.SessionFamily, true, false)
		return sessionResult{entry: e, hit: true, key: key}, nil
	}
	call := h.visitor(r, cred)
	call.Method, call.Endpoint = http.MethodGet, betterauth.SessionFamily.Endpoint
	e, err := h.cache.FetchMissed(r.Context(), key, h.keep, h.timeout,
		func(ctx context.Context) (*cache.Entry, error) {
			start := time.Now()
			ans, err := h.client.Do(ctx, call)
			observeCall(betterauth.SessionFamily, start, err)
			if err != nil {
				return nil, &cookieError{err: err, setCookies: ans.SetCookies}
			}
			sess, err := betterauth.ParseSession(ans.Body)
			if err != nil {
				return nil, err
			}
			data, err := inject.EncodeJSON(ans.Body)
			if err != nil {
				return nil, err
			}
			tags := credentialTags(key, cred, h.CookiePrefix)
			if sess != nil {
				tags = append(tags, userTag(sess.UserID), tokenTag(sess.Token))
			}
			a := &answer{data: data, safe: inject.HTMLSafe(data), session: sess, setCookies: ans.SetCookies}
			cost := int64(len(data)) + sessionCost(sess)
			if sess != nil {
				a.vars = [4]any{sess.UserID, sess.Email, sess.Name, sess.SessionID}
				cost += placeholderCost
			}
			return &cache.Entry{
				Value:     a,
				Cost:      cost,
				FetchedAt: ans.FetchedAt,
				Tags:      tags,
			}, nil
		})
	if err != nil && h.StaleIfError > 0 && r.Context().Err() == nil {
		// The opt-in trade-off: the last good answer, for a while.
		if old, ok := h.cache.Get(key); ok && old.Age(time.Now()) < h.keep {
			h.logBackendError(r.URL.Path, betterauth.SessionFamily, err)
			observeLookup(betterauth.SessionFamily, true, true)
			return sessionResult{entry: old, hit: true, stale: true, key: key}, nil
		}
	}
	observeLookup(betterauth.SessionFamily, false, false)
	if err != nil {
		// Better Auth clears cookies even on a failed call (401).
		var ce *cookieError
		if errors.As(err, &ce) {
			return sessionResult{setCookies: ce.setCookies}, ce.err
		}
		return sessionResult{}, err
	}
	// This request waited for the call: its Set-Cookie headers are its own.
	return sessionResult{entry: e, key: key, setCookies: e.Value.(*answer).setCookies}, nil
}

// sessionCost is what a parsed session holds beyond the answer's JSON: its
// struct and its strings.
func sessionCost(s *betterauth.Session) int64 {
	if s == nil {
		return 0
	}
	return int64(96 + len(s.UserID) + len(s.Email) + len(s.Name) + len(s.SessionID) + len(s.Token) + len(s.ActiveOrganizationID))
}

// cookieError keeps the Set-Cookie headers of a failed call.
type cookieError struct {
	err        error
	setCookies []string
}

func (e *cookieError) Error() string { return e.err.Error() }
func (e *cookieError) Unwrap() error { return e.err }

// visitor is what every backend call carries for this visitor, read once
// in the request's goroutine (queries run in others).
func (h *Handler) visitor(r *http.Request, cred betterauth.Credential) betterauth.Call {
	c := betterauth.Call{Cookie: cred.Cookie, Authorization: cred.Authorization, UserAgent: r.UserAgent(), Origin: requestOrigin(r)}
	c.ClientIP, _ = caddyhttp.GetVar(r.Context(), caddyhttp.ClientIPVarKey).(string)
	return c
}

// requestOrigin is the origin the visitor's browser is on, which Better
// Auth's origin check expects among its trusted origins. Behind TLS
// termination, X-Forwarded-Proto counts only from a trusted proxy (Caddy's
// trusted_proxies).
func requestOrigin(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	} else if trusted, _ := caddyhttp.GetVar(r.Context(), caddyhttp.TrustedProxyVarKey).(bool); trusted &&
		strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https") {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// pending is the route's queries, resolving in parallel.
type pending struct {
	mu    sync.Mutex
	items []pendingQuery // in configuration order
	done  chan struct{}  // nil: all resolved when the page started (a warm page)

	key    []byte // scratch for cache keys, in keyBuf
	store  [8]pendingQuery
	keyBuf [192]byte
}

type pendingQuery struct {
	resolvedQuery
	result inject.Query
	ok     bool
	miss   bool   // not in the cache: a goroutine of startMisses resolves it
	status string // cache outcome, for the debug header
}

var pendingPool = sync.Pool{New: func() any { return new(pending) }}

// release gives p back for another page, once the page is written, if no
// goroutine of it can still be running (every query was a cache hit).
func (p *pending) release() {
	if p == nil || p.done != nil {
		return
	}
	*p = pending{}
	pendingPool.Put(p)
}

func (p *pending) finish(i int, status string) {
	p.mu.Lock()
	p.items[i].status = status
	p.mu.Unlock()
}

// wait blocks until every query is resolved or the deadline passed.
func (p *pending) wait(deadline time.Time) {
	if p.done == nil {
		return
	}
	select {
	case <-p.done:
		return
	default:
	}
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	select {
	case <-p.done:
	case <-t.C:
	}
}

// collect appends the queries resolved by the deadline, in order.
func (p *pending) collect(qs []inject.Query, deadline time.Time) []inject.Query {
	if p == nil {
		return qs
	}
	p.wait(deadline)
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := range p.items {
		if p.items[i].ok {
			qs = append(qs, p.items[i].result)
		}
	}
	return qs
}

// startQueries resolves every query of the prefetch routes that match r,
// each through the cache under credential + family + params. Families the
// client scopes to the active organization wait for it: the route's
// active_organization answer when it has one (the client hook reads the
// same), else the session's activeOrganizationId.
func (h *Handler) startQueries(r *http.Request, repl *caddy.Replacer, cred betterauth.Credential, credKey string, sess *betterauth.Session, now time.Time) *pending {
	p := h.matchPrefetch(r, repl)
	if p == nil {
		return nil
	}
	items := p.items
	aoIndex := -1
	for i := range items {
		if items[i].family.Name == "active_organization" {
			aoIndex = i
			break
		}
	}

	// Answers already in the cache are taken here, the active organization
	// first; only misses start goroutines (a warm page starts none).
	activeOrg := sess.ActiveOrganizationID
	aoPending := false
	misses := 0
	visit := func(i int) {
		it := &items[i]
		if it.family.OrgScoped {
			if aoPending {
				it.miss = true
				misses++
				return
			}
			params, ok, err := it.family.ScopeParams(it.params, activeOrg)
			if err != nil || !ok {
				it.status = "detail=no-organization" // the client has no organization to ask about either
				return
			}
			it.params = params
		}
		if q, data, ok := h.cachedQuery(&p.key, credKey, sess, it.resolvedQuery, now); ok {
			observeLookup(it.family, true, false)
			it.result, it.ok = q, true
			if h.DebugHeader != "" {
				it.status = fmt.Sprintf("hit; age=%d", int(now.Sub(time.UnixMilli(q.UpdatedAt)).Seconds()))
			}
			if i == aoIndex {
				activeOrg = organizationID(data)
			}
			return
		}
		if i == aoIndex {
			aoPending = true
		}
		it.miss = true
		misses++
	}
	if aoIndex >= 0 {
		visit(aoIndex)
	}
	for i := range items {
		if i != aoIndex {
			visit(i)
		}
	}
	if misses == 0 {
		return p
	}

	h.startMisses(r, cred, credKey, sess, p, aoIndex, aoPending, activeOrg)
	return p
}

// startMisses starts a goroutine for each query startQueries marked as a
// miss; p.done closes when all have ended. (Apart from startQueries, so
// that what they share escapes to the heap only for a page that misses.)
func (h *Handler) startMisses(r *http.Request, cred betterauth.Credential, credKey string, sess *betterauth.Session,
	p *pending, aoIndex int, aoPending bool, activeOrg string) {
	items := p.items
	p.done = make(chan struct{})
	visitor := h.visitor(r, cred)
	ctx := context.WithoutCancel(r.Context())
	path := r.URL.Path
	orgReady := make(chan struct{})
	if !aoPending {
		close(orgReady)
	}
	var wg sync.WaitGroup
	for i := range items {
		if !items[i].miss {
			continue
		}
		s := items[i].resolvedQuery
		wg.Add(1)
		go func() {
			defer wg.Done()
			if i == aoIndex {
				defer close(orgReady)
			}
			if s.family.OrgScoped && aoPending {
				<-orgReady
				params, ok, err := s.family.ScopeParams(s.params, activeOrg)
				if err != nil || !ok {
					p.finish(i, "detail=no-organization")
					return
				}
				s.params = params
			}
			q, data, hit, err := h.runQuery(ctx, visitor, credKey, sess, s)
			observeLookup(s.family, hit, false)
			if err != nil {
				h.logBackendError(path, s.family, err)
				detail := "error"
				var se *betterauth.StatusError
				if errors.As(err, &se) && se.Code >= 400 && se.Code < 500 {
					detail = "refused"
				}
				p.finish(i, "fwd=miss; detail="+detail)
				return
			}
			if i == aoIndex {
				activeOrg = organizationID(data)
			}
			p.mu.Lock()
			p.items[i].result, p.items[i].ok = q, true
			p.items[i].status = "fwd=miss; stored"
			if hit {
				p.items[i].status = "hit; age=0"
			}
			p.mu.Unlock()
		}()
	}
	go func() { wg.Wait(); close(p.done) }()
}

// queryKey is the cache key of a query; the user id is part of it, since
// the hash the entry holds is the user's.
func queryKey(credKey string, sess *betterauth.Session, s resolvedQuery) string {
	return string(appendQueryKey(nil, credKey, sess, s))
}

func appendQueryKey(dst []byte, credKey string, sess *betterauth.Session, s resolvedQuery) []byte {
	dst = append(dst, credKey...)
	dst = append(dst, 0)
	dst = append(dst, s.family.Name...)
	dst = append(dst, 0)
	dst = append(dst, sess.UserID...)
	dst = append(dst, 0)
	return append(dst, s.params...)
}

// cachedQuery is a fresh cached answer of the query, if there is one. buf
// is scratch space for the key.
func (h *Handler) cachedQuery(buf *[]byte, credKey string, sess *betterauth.Session, s resolvedQuery, now time.Time) (inject.Query, []byte, bool) {
	*buf = appendQueryKey((*buf)[:0], credKey, sess, s)
	e, ok := h.cache.FreshBytes(*buf, h.staleTime, now)
	if !ok {
		return inject.Query{}, nil, false
	}
	a := e.Value.(*answer)
	return a.query(e), a.data, true
}

// organizationID reads the id of a get-full-organization answer ("" for null).
func organizationID(data []byte) string {
	var v struct {
		ID string `json:"id"`
	}
	if json.Unmarshal(data, &v) != nil {
		return ""
	}
	return v.ID
}

func (h *Handler) runQuery(ctx context.Context, visitor betterauth.Call, credKey string, sess *betterauth.Session, s resolvedQuery) (q inject.Query, data []byte, hit bool, err error) {
	key := queryKey(credKey, sess, s)
	e, hit, err := h.cache.Fetch(ctx, key, h.staleTime, h.staleTime, h.timeout,
		func(ctx context.Context) (*cache.Entry, error) {
			hash, err := inject.HashKey(s.family.KeyJSON(sess.UserID, s.params))
			if err != nil {
				return nil, err
			}
			if s.family.AnswersNull(s.params) {
				return &cache.Entry{Value: newQueryAnswer(nullJSON, hash), FetchedAt: time.Now(), Tags: []string{credTag(credKey)}}, nil
			}
			call, err := s.family.Call(s.params)
			if err != nil {
				return nil, err
			}
			call.Cookie, call.Authorization = visitor.Cookie, visitor.Authorization
			call.ClientIP, call.UserAgent, call.Origin = visitor.ClientIP, visitor.UserAgent, visitor.Origin
			start := time.Now()
			ans, err := h.client.Do(ctx, call)
			observeCall(s.family, start, err)
			if err != nil {
				return nil, err
			}
			data, err := inject.EncodeJSON(ans.Body)
			if err != nil {
				return nil, err
			}
			tags := append(credentialTags(credKey, visitor.Credential(), h.CookiePrefix), userTag(sess.UserID), tokenTag(sess.Token))
			if s.family.Organization {
				tags = append(tags, orgTags(sess, s.params, ans.Body)...)
			}
			a := newQueryAnswer(data, hash)
			return &cache.Entry{Value: a, Cost: int64(len(data) + len(hash) + len(a.head) + len(key)), FetchedAt: ans.FetchedAt, Tags: tags}, nil
		})
	if err != nil {
		return inject.Query{}, nil, false, err
	}
	a := e.Value.(*answer)
	return a.query(e), a.data, hit, nil
}

// orgTags ties organization data to every change of organizations: the
// whole family is invalidated by any organization mutation (they are rare,
// and a spurious miss is cheap where a stale member list is not).
func orgTags(*betterauth.Session, []byte, []byte) []string { return []string{orgAllTag} }

const orgAllTag = "o\x00*"
