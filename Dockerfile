# Caddy with the better_auth module, as a sidecar in front of any frontend.
#
#   docker build -t caddy-better-auth .
#   docker run --rm -p 8080:8080 \
#     -v "$PWD/Caddyfile:/etc/caddy/Caddyfile:ro" caddy-better-auth
#
# The official pattern for a Caddy with plugins: xcaddy in caddy:<v>-builder,
# then the binary into caddy:<v>. The module is built from this source tree
# (copied to /src), not fetched. `make docker-check` runs this build step
# outside Docker, with the same xcaddy arguments read from this file, and
# smoke-tests the binary; keep the three versions below the same as the
# Caddy version in go.mod (it checks that too).

FROM caddy:2.11.9-builder AS builder

# The builder's Go may be older than the go line of go.mod; official golang
# images set GOTOOLCHAIN=local, which would then refuse to build. With auto
# the go command fetches the toolchain go.mod asks for.
ENV GOTOOLCHAIN=auto
# Plain binary without file capabilities: the final image runs as non-root
# on port 8080, and a capability-carrying binary cannot start under
# no-new-privileges or with capabilities dropped.
ENV XCADDY_SETCAP=0

COPY . /src

# The module at Go's placeholder version v0.0.0-00010101000000-000000000000,
# replaced by /src: xcaddy then asks no module proxy or VCS for it. (With a
# bare `--with <module>=/src`, xcaddy's `go get <module>` looks the module
# up, which fails for an unpublished module or a private repository, or a
# proxy that refuses it.)
RUN --mount=type=cache,target=/go/pkg/mod \
	--mount=type=cache,target=/root/.cache/go-build \
	xcaddy build v2.11.9 \
		--with github.com/seed5911dcdf/caddy-better-auth@v0.0.0-00010101000000-000000000000=/src \
		--output /usr/bin/caddy

FROM caddy:2.11.9

COPY --from=builder /usr/bin/caddy /usr/bin/caddy

# The default config: the compose example's Caddyfile (better_auth in front
# of $FRONTEND_UPSTREAM, /api/auth/* to $BETTER_AUTH_BACKEND, /healthz).
# Mount your own over it.
COPY examples/compose/Caddyfile /etc/caddy/Caddyfile

# A numeric non-root user (the uid of caddy's rootless image), owning the
# two folders Caddy writes: $XDG_CONFIG_HOME/caddy (autosaved config) and
# $XDG_DATA_HOME/caddy (storage: locks, certificates if any). Group 0 gets
# the same rights, for runtimes that pick an arbitrary uid with gid 0
# (OpenShift). /etc/caddy stays root's: the config is read-only to Caddy.
RUN set -eux; \
	mkdir -p /config/caddy /data/caddy; \
	chown -R 1001:0 /config /data; \
	chmod -R g=u /config /data; \
	caddy version; \
	caddy list-modules | grep -qx 'http.handlers.better_auth'

ENV XDG_CONFIG_HOME=/config \
	XDG_DATA_HOME=/data \
	CADDY_HTTP_PORT=8080 \
	BETTER_AUTH_BACKEND=http://better-auth:3000 \
	FRONTEND_UPSTREAM=frontend:5173

USER 1001:0

# Unprivileged port: no setcap and no root needed. The admin API stays on
# localhost:2019 inside the container (for `caddy reload`), not published.
EXPOSE 8080

# busybox wget (the image is Alpine; nothing else is installed for this)
# against /healthz, which the Caddyfile answers itself with 200 on the
# site's own listener, before better_auth and without any upstream: it
# fails only when Caddy does not serve HTTP. A Caddyfile of your own needs
# the same route (or override the healthcheck).
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
	CMD wget -q --spider "http://127.0.0.1:${CADDY_HTTP_PORT}/healthz" || exit 1

WORKDIR /srv

CMD ["caddy", "run", "--config", "/etc/caddy/Caddyfile", "--adapter", "caddyfile"]
