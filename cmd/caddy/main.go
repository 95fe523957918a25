// Command caddy is Caddy with its standard modules and better_auth.
package main

import (
	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/seed5911dcdf/caddy-better-auth"
)

func main() {
	caddycmd.Main()
}
