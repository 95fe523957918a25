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
	session    *betterauth.Session // session family only; nil = signed out
	setCookies []string            // reach the browser of the request that fetched
}

// sessionResult is the resolved session of one request.
type sessionResult struct {
	entry      *cache.Entry // nil without credential
	hit        bool
	stale      bool // served by stale_if_error
	setCookies []string
	key        string // the credential's cache key (a SHA-256), for the queries
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
	q := inject.Query{Hash: sessionHash, Data: []byte("null"), UpdatedAt: time.Now().UnixMilli()}
	if s.entry != nil {
		q.Data = s.entry.Value.(*answer).data
		q.UpdatedAt = s.entry.FetchedAt.UnixMilli()
	}
	return q
}

var sessionHash = mustHash(betterauth.SessionFamily.KeyJSON("", nil))

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
func (h *Handler) resolveSession(r *http.Request, cred betterauth.Credential) (sessionResult, error) {
	if cred.Empty() {
		return sessionResult{}, nil
	}
	key := cred.Key()
	call := h.visitor(r, cred)
	call.Method, call.Endpoint = http.MethodGet, betterauth.SessionFamily.Endpoint
	e, hit, err := h.cache.Fetch(r.Context(), key, h.staleTime, h.keep, h.timeout,
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
			return &cache.Entry{
				Value:     &answer{data: data, session: sess, setCookies: ans.SetCookies},
				Cost:      int64(len(data)) + sessionCost(sess),
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
	observeLookup(betterauth.SessionFamily, hit, false)
	if err != nil {
		// Better Auth clears cookies even on a failed call (401).
		var ce *cookieError
		if errors.As(err, &ce) {
			return sessionResult{setCookies: ce.setCookies}, ce.err
		}
		return sessionResult{}, err
	}
	res := sessionResult{entry: e, hit: hit, key: key}
	if !hit {
		res.setCookies = e.Value.(*answer).setCookies
	}
	return res, nil
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
	mu      sync.Mutex
	results []inject.Query // in configuration order
	ok      []bool
	names   []string // family names
	status  []string // cache outcome per query, for the debug header
	done    chan struct{}
}

func (p *pending) finish(i int, status string) {
	p.mu.Lock()
	p.status[i] = status
	p.mu.Unlock()
}

// wait blocks until every query is resolved or the deadline passed.
func (p *pending) wait(deadline time.Time) {
	select {
	case <-p.done: // the usual case on a warm page: no timer
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

func (p *pending) len() int {
	if p == nil {
		return 0
	}
	return len(p.results)
}

// collect appends the queries resolved by the deadline, in order.
func (p *pending) collect(qs []inject.Query, deadline time.Time) []inject.Query {
	if p == nil {
		return qs
	}
	p.wait(deadline)
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, q := range p.results {
		if p.ok[i] {
			qs = append(qs, q)
		}
	}
	return qs
}

// startQueries resolves every query of the prefetch routes that match r,
// each through the cache under credential + family + params. Families the
// client scopes to the active organization wait for it: the route's
// active_organization answer when it has one (the client hook reads the
// same), else the session's activeOrganizationId.
func (h *Handler) startQueries(r *http.Request, cred betterauth.Credential, credKey string, sess *betterauth.Session) *pending {
	specs := h.matchPrefetch(r)
	if len(specs) == 0 {
		return nil
	}
	p := &pending{results: make([]inject.Query, len(specs)), ok: make([]bool, len(specs)),
		names: make([]string, len(specs)), status: make([]string, len(specs)), done: make(chan struct{})}
	for i, s := range specs {
		p.names[i] = s.family.Name
	}
	aoIndex := -1
	for i, s := range specs {
		if s.family.Name == "active_organization" {
			aoIndex = i
			break
		}
	}

	// Answers already in the cache are taken here, the active organization
	// first; only misses start goroutines (a warm page starts none).
	activeOrg := sess.ActiveOrganizationID
	aoPending := false
	var misses []int
	for _, i := range queryOrder(len(specs), aoIndex) {
		s := specs[i]
		if s.family.OrgScoped {
			if aoPending {
				misses = append(misses, i)
				continue
			}
			params, ok, err := s.family.ScopeParams(s.params, activeOrg)
			if err != nil || !ok {
				p.status[i] = "detail=no-organization" // the client has no organization to ask about either
				continue
			}
			specs[i].params = params
			s = specs[i]
		}
		if q, data, ok := h.cachedQuery(credKey, sess, s); ok {
			observeLookup(s.family, true, false)
			p.results[i], p.ok[i] = q, true
			if h.DebugHeader != "" {
				p.status[i] = fmt.Sprintf("hit; age=%d", int(time.Since(time.UnixMilli(q.UpdatedAt)).Seconds()))
			}
			if i == aoIndex {
				activeOrg = organizationID(data)
			}
			continue
		}
		if i == aoIndex {
			aoPending = true
		}
		misses = append(misses, i)
	}
	if len(misses) == 0 {
		close(p.done)
		return p
	}

	visitor := h.visitor(r, cred)
	ctx := context.WithoutCancel(r.Context())
	path := r.URL.Path
	orgReady := make(chan struct{})
	if !aoPending {
		close(orgReady)
	}
	var wg sync.WaitGroup
	for _, i := range misses {
		s := specs[i]
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
			p.results[i], p.ok[i] = q, true
			p.status[i] = "fwd=miss; stored"
			if hit {
				p.status[i] = "hit; age=0"
			}
			p.mu.Unlock()
		}()
	}
	go func() { wg.Wait(); close(p.done) }()
	return p
}

// queryOrder visits the active organization first, then the rest in order.
func queryOrder(n, first int) []int {
	order := make([]int, 0, n)
	if first >= 0 {
		order = append(order, first)
	}
	for i := range n {
		if i != first {
			order = append(order, i)
		}
	}
	return order
}

// queryKey is the cache key of a query; the user id is part of it, since
// the hash the entry holds is the user's.
func queryKey(credKey string, sess *betterauth.Session, s resolvedQuery) string {
	return credKey + "\x00" + s.family.Name + "\x00" + sess.UserID + "\x00" + string(s.params)
}

// cachedQuery is a fresh cached answer of the query, if there is one.
func (h *Handler) cachedQuery(credKey string, sess *betterauth.Session, s resolvedQuery) (inject.Query, []byte, bool) {
	if h.staleTime <= 0 {
		return inject.Query{}, nil, false
	}
	e, ok := h.cache.Get(queryKey(credKey, sess, s))
	if !ok || e.Age(time.Now()) >= h.staleTime {
		return inject.Query{}, nil, false
	}
	a := e.Value.(*answer)
	return inject.Query{Hash: a.hash, Data: a.data, UpdatedAt: e.FetchedAt.UnixMilli()}, a.data, true
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
				return &cache.Entry{Value: &answer{data: []byte("null"), hash: hash}, FetchedAt: time.Now(), Tags: []string{credTag(credKey)}}, nil
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
			return &cache.Entry{Value: &answer{data: data, hash: hash}, Cost: int64(len(data) + len(hash) + len(key)), FetchedAt: ans.FetchedAt, Tags: tags}, nil
		})
	if err != nil {
		return inject.Query{}, nil, false, err
	}
	a := e.Value.(*answer)
	return inject.Query{Hash: a.hash, Data: a.data, UpdatedAt: e.FetchedAt.UnixMilli()}, a.data, hit, nil
}

// orgTags ties organization data to every change of organizations: the
// whole family is invalidated by any organization mutation (they are rare,
// and a spurious miss is cheap where a stale member list is not).
func orgTags(*betterauth.Session, []byte, []byte) []string { return []string{orgAllTag} }

const orgAllTag = "o\x00*"
