// Package caddyfile registers the better_auth Caddyfile directive and
// parses it into the handler's JSON config.
//
// Syntax:
//
//	better_auth [<backend>] {
//	    backend        <origin>            # Better Auth origin (required)
//	    base_path      <path>              # default /api/auth
//	    stale_time     <duration>          # default 5s; 0 disables caching
//	    timeout        <duration>          # per backend call, default 3s
//	    cache_size     <size>              # byte budget, e.g. 64MiB (default)
//	    cookie_prefix  <prefix>            # default better-auth
//	    sign_in        <path>              # default /auth/sign-in
//	    redirect_param <name>              # default redirectTo
//	    guard          <pattern...>        # path-matcher patterns; repeatable
//	    guest          <pattern...>        # signed-in visitors are sent on; repeatable
//	    state_id       <id>                # default __BETTER_AUTH_STATE__
//	    prefetch       <pattern...> {      # repeatable; matching blocks add up
//	        <family> [<params JSON object>]
//	    }
//	}
//
// The directive orders itself after encode and before reverse_proxy, so no
// order option is needed.
package caddyfile

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/dustin/go-humanize"

	"github.com/seed5911dcdf/caddy-better-auth/betterauth"
	"github.com/seed5911dcdf/caddy-better-auth/module"
)

func init() {
	httpcaddyfile.RegisterHandlerDirective("better_auth", parseDirective)
	httpcaddyfile.RegisterDirectiveOrder("better_auth", httpcaddyfile.After, "encode")
}

func parseDirective(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	return Parse(h.Dispenser)
}

// Parse reads one better_auth directive. Every error names the file and line.
func Parse(d *caddyfile.Dispenser) (*module.Handler, error) {
	h := new(module.Handler)
	d.Next() // directive name
	file, line := d.File(), d.Line()
	if d.NextArg() {
		h.Backend = d.Val()
		if d.NextArg() {
			return nil, d.ArgErr()
		}
	}
	seen := map[string]bool{}
	for d.NextBlock(0) {
		opt := d.Val()
		repeatable := opt == "guard" || opt == "guest" || opt == "prefetch"
		if seen[opt] && !repeatable {
			return nil, d.Errf("better_auth: %s given twice", opt)
		}
		seen[opt] = true
		switch opt {
		case "backend", "base_path", "cookie_prefix", "sign_in", "redirect_param", "state_id":
			v, err := oneArg(d)
			if err != nil {
				return nil, err
			}
			switch opt {
			case "backend":
				h.Backend = v
			case "base_path":
				h.BasePath = v
			case "cookie_prefix":
				h.CookiePrefix = v
			case "sign_in":
				h.SignIn = v
			case "redirect_param":
				h.RedirectParam = v
			case "state_id":
				h.StateID = v
			}
		case "debug_header":
			h.DebugHeader = "Better-Auth-Status"
			if d.NextArg() {
				h.DebugHeader = d.Val()
			}
			if d.NextArg() {
				return nil, d.ArgErr()
			}
		case "bearer":
			if d.NextArg() {
				return nil, d.ArgErr()
			}
			h.Bearer = true
		case "invalidation":
			inv, err := parseInvalidation(d)
			if err != nil {
				return nil, err
			}
			h.Invalidation = inv
		case "identity_headers":
			ih, err := parseIdentityHeaders(d)
			if err != nil {
				return nil, err
			}
			h.IdentityHeaders = ih
		case "stale_time", "timeout", "stale_if_error":
			v, err := oneArg(d)
			if err != nil {
				return nil, err
			}
			dur, err := caddy.ParseDuration(v)
			if err != nil || dur < 0 {
				return nil, d.Errf("better_auth: %s: %q is not a duration such as 5s", opt, v)
			}
			cd := caddy.Duration(dur)
			if opt == "stale_time" {
				h.StaleTime = &cd
			} else if opt == "stale_if_error" {
				h.StaleIfError = cd
			} else {
				if dur == 0 {
					return nil, d.Errf("better_auth: timeout must be positive")
				}
				h.Timeout = cd
			}
		case "cache_size", "max_answer_size":
			v, err := oneArg(d)
			if err != nil {
				return nil, err
			}
			n, err := humanize.ParseBytes(v)
			if err != nil || n == 0 || n > 1<<40 {
				return nil, d.Errf("better_auth: %s: %q is not a size such as 64MiB", opt, v)
			}
			if opt == "cache_size" {
				h.CacheSize = int64(n)
			} else {
				h.MaxAnswerSize = int64(n)
			}
		case "guard", "guest":
			args := d.RemainingArgs()
			if len(args) == 0 {
				return nil, d.ArgErr()
			}
			if opt == "guard" {
				h.Guard = append(h.Guard, args...)
			} else {
				h.Guest = append(h.Guest, args...)
			}
		case "prefetch":
			p, err := parsePrefetch(d)
			if err != nil {
				return nil, err
			}
			h.Prefetch = append(h.Prefetch, p)
		default:
			return nil, d.Errf("better_auth: unknown subdirective %q", opt)
		}
	}
	if h.Backend == "" {
		return nil, fmt.Errorf("%s:%d - better_auth: backend is required (the origin of the Better Auth server, e.g. backend http://127.0.0.1:3000)", file, line)
	}
	if err := h.Validate(); err != nil {
		return nil, fmt.Errorf("%s:%d - %v", file, line, err)
	}
	return h, nil
}

func oneArg(d *caddyfile.Dispenser) (string, error) {
	if !d.NextArg() {
		return "", d.ArgErr()
	}
	v := d.Val()
	if d.NextArg() {
		return "", d.ArgErr()
	}
	return v, nil
}

func parseInvalidation(d *caddyfile.Dispenser) (*module.Invalidation, error) {
	inv := new(module.Invalidation)
	if !d.NextArg() {
		return nil, d.ArgErr()
	}
	inv.URL = d.Val()
	if d.NextArg() {
		return nil, d.ArgErr()
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		switch field := d.Val(); field {
		case "password", "channel":
			v, err := oneArg(d)
			if err != nil {
				return nil, err
			}
			if field == "password" {
				inv.Password = v
			} else {
				inv.Channel = v
			}
		case "tls":
			inv.TLS = true
		case "tls_insecure_skip_verify":
			inv.TLSInsecureSkipVerify = true
		default:
			return nil, d.Errf("better_auth: invalidation: unknown option %q (password, tls, tls_insecure_skip_verify, channel)", field)
		}
	}
	return inv, nil
}

func parseIdentityHeaders(d *caddyfile.Dispenser) (*module.IdentityHeaders, error) {
	if d.NextArg() {
		return nil, d.ArgErr()
	}
	ih := new(module.IdentityHeaders)
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		field := d.Val()
		name, err := oneArg(d)
		if err != nil {
			return nil, err
		}
		switch field {
		case "user_id":
			ih.UserID = name
		case "email":
			ih.Email = name
		case "name":
			ih.Name = name
		case "session_id":
			ih.SessionID = name
		default:
			return nil, d.Errf("better_auth: identity_headers: unknown field %q (user_id, email, name, session_id)", field)
		}
	}
	return ih, nil
}

func parsePrefetch(d *caddyfile.Dispenser) (module.Prefetch, error) {
	p := module.Prefetch{Paths: d.RemainingArgs()}
	if len(p.Paths) == 0 {
		return p, d.Errf("better_auth: prefetch needs at least one path pattern")
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		name := d.Val()
		f, ok := betterauth.Families[name]
		if !ok {
			return p, d.Errf("better_auth: unknown query family %q (known: %s)", name, strings.Join(betterauth.FamilyNames(), ", "))
		}
		q := module.QuerySpec{Family: f.Name}
		if d.NextArg() {
			raw := d.Val()
			var obj map[string]any
			if err := json.Unmarshal([]byte(raw), &obj); err != nil || obj == nil {
				return p, d.Errf("better_auth: %s params must be a JSON object (in backticks), got %q", name, raw)
			}
			q.Params = json.RawMessage(raw)
			if d.NextArg() {
				return p, d.ArgErr()
			}
		}
		p.Queries = append(p.Queries, q)
	}
	return p, nil
}
