// Package caddybetterauth registers the better_auth Caddy module and its
// Caddyfile directive:
//
//	xcaddy build --with github.com/seed5911dcdf/caddy-better-auth
package caddybetterauth

import (
	_ "github.com/seed5911dcdf/caddy-better-auth/caddyfile"
	_ "github.com/seed5911dcdf/caddy-better-auth/module"
)
