package module

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/seed5911dcdf/caddy-better-auth/betterauth"
)

// Prefetch is a set of queries resolved and injected on matching paths.
// Several matching blocks add up.
type Prefetch struct {
	// Paths are path-matcher patterns.
	Paths []string `json:"paths"`
	// Queries are the families to resolve, with their params.
	Queries []QuerySpec `json:"queries"`
}

// QuerySpec is one query family with the params its client hook gets as
// `query` (for has_permission, the flat params sent as the body). String
// values may hold Caddy placeholders, replaced per request.
type QuerySpec struct {
	Family string          `json:"family"`
	Params json.RawMessage `json:"params,omitempty"`
}

type prefetchRoute struct {
	match   caddyhttp.MatchPath
	queries []compiledQuery
}

type compiledQuery struct {
	family *betterauth.Family
	params []byte // canonical JSON when static
	tmpl   any    // decoded params holding placeholders, else nil
}

type resolvedQuery struct {
	family *betterauth.Family
	params []byte
}

func compilePrefetch(ps []Prefetch) ([]prefetchRoute, error) {
	routes := make([]prefetchRoute, 0, len(ps))
	for i, p := range ps {
		if len(p.Paths) == 0 {
			return nil, fmt.Errorf("better_auth: prefetch %d has no paths", i)
		}
		m := caddyhttp.MatchPath(append([]string(nil), p.Paths...))
		if err := m.Provision(caddy.Context{}); err != nil {
			return nil, err
		}
		rt := prefetchRoute{match: m}
		for _, q := range p.Queries {
			f, ok := betterauth.Families[q.Family]
			if !ok {
				return nil, fmt.Errorf("better_auth: unknown query family %q (known: %s)", q.Family, strings.Join(betterauth.FamilyNames(), ", "))
			}
			if f == betterauth.SessionFamily {
				continue // always injected
			}
			cq := compiledQuery{family: f}
			if raw := bytes.TrimSpace(q.Params); len(raw) > 0 && !bytes.Equal(raw, []byte("null")) {
				v, err := decodeParams(raw)
				if err != nil {
					return nil, fmt.Errorf("better_auth: %s params: %v", q.Family, err)
				}
				if hasPlaceholder(v) {
					cq.tmpl = v
				} else if cq.params, err = encodeParams(v); err != nil {
					return nil, err
				}
			}
			rt.queries = append(rt.queries, cq)
		}
		routes = append(routes, rt)
	}
	return routes, nil
}

func decodeParams(raw []byte) (map[string]any, error) {
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	var v map[string]any
	if err := d.Decode(&v); err != nil {
		return nil, fmt.Errorf("must be a JSON object: %v", err)
	}
	if v == nil {
		return nil, fmt.Errorf("must be a JSON object")
	}
	if d.More() {
		return nil, fmt.Errorf("trailing data after the JSON object")
	}
	return v, nil
}

func encodeParams(v any) ([]byte, error) {
	var b bytes.Buffer
	e := json.NewEncoder(&b)
	e.SetEscapeHTML(false)
	if err := e.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimRight(b.Bytes(), "\n"), nil
}

func hasPlaceholder(v any) bool {
	switch t := v.(type) {
	case string:
		return strings.Contains(t, "{")
	case map[string]any:
		for _, x := range t {
			if hasPlaceholder(x) {
				return true
			}
		}
	case []any:
		for _, x := range t {
			if hasPlaceholder(x) {
				return true
			}
		}
	}
	return false
}

func replaceStrings(v any, repl *caddy.Replacer) any {
	switch t := v.(type) {
	case string:
		return repl.ReplaceAll(t, "")
	case map[string]any:
		m := make(map[string]any, len(t))
		for k, x := range t {
			m[k] = replaceStrings(x, repl)
		}
		return m
	case []any:
		a := make([]any, len(t))
		for i, x := range t {
			a[i] = replaceStrings(x, repl)
		}
		return a
	}
	return v
}

// matchPrefetch lists the queries of every prefetch block matching r, with
// placeholders replaced (from repl, the request's; nil outside Caddy),
// each family+params once: nil when none matches.
func (h *Handler) matchPrefetch(r *http.Request, repl *caddy.Replacer) *pending {
	var p *pending
	for _, rt := range h.prefetch {
		if !rt.match.Match(r) {
			continue
		}
	next:
		for _, q := range rt.queries {
			rq := resolvedQuery{family: q.family, params: q.params}
			if q.tmpl != nil {
				if repl == nil {
					continue
				}
				params, err := encodeParams(replaceStrings(q.tmpl, repl))
				if err != nil {
					continue
				}
				rq.params = params
			}
			if p == nil {
				p = pendingPool.Get().(*pending)
				p.items, p.key = p.store[:0], p.keyBuf[:0]
			}
			for i := range p.items {
				if o := &p.items[i]; o.family == rq.family && bytes.Equal(o.params, rq.params) {
					continue next
				}
			}
			p.items = append(p.items, pendingQuery{resolvedQuery: rq})
		}
	}
	return p
}
