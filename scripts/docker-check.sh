#!/usr/bin/env bash
# docker-check (`make docker-check`): what can be checked of the Docker
# image and the compose example without a Docker engine.
#
#  1. Dockerfile: the Caddy versions of its two FROM lines and of its xcaddy
#     command agree with each other and with go.mod; the xcaddy command
#     builds this module from the copied source; the final stage copies the
#     binary xcaddy writes.
#  2. The Dockerfile's build step, run here: its own xcaddy arguments (read
#     from the Dockerfile, so the two cannot drift), with /src replaced by
#     the repository root and the output by a temporary file, and the
#     builder stage's ENV lines; xcaddy from the Go module proxy, at the
#     version the caddy builder image ships.
#  3. The binary: version, the better_auth module, `caddy adapt` and
#     `caddy validate` of examples/compose/Caddyfile (the image's default
#     config) and examples/demo/Caddyfile; then it runs the compose
#     Caddyfile on free loopback ports and asks /healthz (what the image's
#     HEALTHCHECK asks), a guarded page (redirect to sign-in, no backend
#     needed), a page and /api/auth/* (502 each: no upstreams here).
#  4. examples/compose/compose.yaml, loaded as docker compose loads it
#     (`docker compose config` where the compose plugin is installed; else
#     the compose-spec loader, compose-go, in a throwaway Go module): the
#     services, builds, ports, mounts and wiring; and for each build, that
#     its Dockerfile parses with BuildKit's parser and instruction parser
#     without a warning (syntax, instruction arguments, the lint rules run
#     at parse time), runs as non-root with a HEALTHCHECK, and that
#     the files it COPYs are in the build context after
#     .dockerignore, and that node_modules, .git, bin and artifacts are
#     not.
#
# Exits non-zero on the first failure. Environment: XCADDY_VERSION (default
# v0.4.5, as in caddy:2.11-builder), KEEP=1 keeps the temporary folder.
set -euo pipefail

XCADDY_VERSION="${XCADDY_VERSION:-v0.4.5}"
COMPOSE_GO_VERSION=v2.16.2
PATTERNMATCHER_VERSION=v0.6.1
BUILDKIT_VERSION=v0.34.2

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
dockerfile="$root/Dockerfile"
compose_dir="$root/examples/compose"
compose_file="$compose_dir/compose.yaml"
compose_caddyfile="$compose_dir/Caddyfile"
demo_caddyfile="$root/examples/demo/Caddyfile"

work="$(mktemp -d "${TMPDIR:-/tmp}/docker-check.XXXXXX")"
caddy_pid=""
cleanup() {
	if [[ -n "$caddy_pid" ]]; then
		kill "$caddy_pid" 2>/dev/null || true
		wait "$caddy_pid" 2>/dev/null || true
	fi
	if [[ "${KEEP:-}" == 1 ]]; then
		echo "docker-check: kept $work"
	else
		chmod -R u+w "$work" 2>/dev/null || true
		rm -rf "$work"
	fi
}
trap cleanup EXIT

for tool in go curl shuf; do
	command -v "$tool" >/dev/null || { echo "docker-check: needs $tool" >&2; exit 1; }
done

started=$SECONDS
step() { printf '\n== %s\n' "$*"; }
ok() { printf '   ok  %s\n' "$*"; }
note() { printf '   --  %s\n' "$*"; }
fail() {
	printf '   FAIL %s\n' "$*" >&2
	printf 'docker-check: FAILED after %ss\n' "$((SECONDS - started))" >&2
	exit 1
}

# The Dockerfile with continuation lines joined and comments dropped.
joined="$(sed -e '/^[[:space:]]*#/d' -e ':a' -e '/\\$/N; s/\\\n//; ta' "$dockerfile")"

# ---------------------------------------------------------------------------
step "1. Dockerfile: versions and the xcaddy command"

module="$(awk '$1 == "module" { print $2; exit }' go.mod)"
gomod_caddy="$(awk '$1 == "github.com/caddyserver/caddy/v2" { print $2; exit }' go.mod)"
[[ -n "$module" && -n "$gomod_caddy" ]] || fail "cannot read the module path or the Caddy version from go.mod"

builder_tag="$(sed -nE 's/^FROM[[:space:]]+caddy:([^[:space:]]+)-builder[[:space:]]+AS[[:space:]]+builder[[:space:]]*$/\1/Ip' <<<"$joined")"
final_tag="$(sed -nE 's/^FROM[[:space:]]+caddy:([^[:space:]-]+)[[:space:]]*$/\1/p' <<<"$joined")"
[[ -n "$builder_tag" ]] || fail "no 'FROM caddy:<version>-builder AS builder' line"
[[ -n "$final_tag" ]] || fail "no final 'FROM caddy:<version>' line"
[[ "$(grep -c '^FROM' <<<"$joined")" == 2 ]] || fail "expected exactly two FROM lines"

xcaddy_line="$(grep -E '(^|[[:space:]])xcaddy[[:space:]]+build[[:space:]]' <<<"$joined" || true)"
[[ -n "$xcaddy_line" && "$(wc -l <<<"$xcaddy_line")" == 1 ]] || fail "expected exactly one RUN with 'xcaddy build'"
# From "xcaddy build" to the end of that shell command.
xcaddy_cmd="$(sed -E 's/.*(^|[[:space:]])(xcaddy[[:space:]]+build[[:space:]].*)$/\2/; s/[[:space:]]*(&&|;|\|\|).*$//' <<<"$xcaddy_line")"
read -r -a xargs_df <<<"$xcaddy_cmd"
printf '   Dockerfile: %s\n' "${xargs_df[*]}"

[[ "${xargs_df[2]:-}" == "v$builder_tag" ]] || fail "xcaddy builds '${xargs_df[2]:-}', the builder image is caddy:$builder_tag-builder"
[[ "$final_tag" == "$builder_tag" ]] || fail "builder caddy:$builder_tag-builder, final image caddy:$final_tag"
[[ "$gomod_caddy" == "v$builder_tag" ]] || fail "go.mod requires caddy $gomod_caddy, the Dockerfile builds v$builder_tag"
ok "Caddy v$builder_tag everywhere: builder image, xcaddy build, final image, go.mod"

# Rewrite the arguments for this machine: the module's source, the output.
xargs_local=()
with_src="" output=""
for ((i = 1; i < ${#xargs_df[@]}; i++)); do
	a="${xargs_df[i]}"
	case "$a" in
	--with)
		w="${xargs_df[i + 1]:-}"
		((i += 1))
		if [[ "$w" == "$module="* || "$w" == "$module@"*=* ]]; then
			with_src="${w#*=}"
			w="${w%%=*}=$root"
		fi
		xargs_local+=(--with "$w")
		;;
	--output)
		output="${xargs_df[i + 1]:-}"
		((i += 1))
		xargs_local+=(--output "$work/caddy")
		;;
	*) xargs_local+=("$a") ;;
	esac
done
[[ -n "$with_src" ]] || fail "the xcaddy command has no '--with $module[@version]=<dir>'"
copy_src_re="^COPY[[:space:]]+\.[[:space:]]+${with_src//\//\\/}/?[[:space:]]*$"
grep -Eq "$copy_src_re" <<<"$joined" || fail "no 'COPY . $with_src' for the module source"
ok "builds $module from the copied source ($with_src)"
[[ -n "$output" ]] || fail "the xcaddy command has no --output"
grep -Eq "^COPY[[:space:]]+--from=builder[[:space:]]+${output//\//\\/}[[:space:]]+/usr/bin/caddy[[:space:]]*$" <<<"$joined" ||
	fail "the final stage does not copy $output (xcaddy's --output) to /usr/bin/caddy"
ok "final stage copies xcaddy's output $output to /usr/bin/caddy"

# The builder stage's ENV lines (single KEY=VALUE each) apply to xcaddy.
builder_env=()
while read -r kv; do
	[[ -n "$kv" ]] && builder_env+=("$kv")
done < <(awk '/^FROM/ { n++ } n == 1 && $1 == "ENV" && NF == 2 && $2 ~ /^[A-Za-z_][A-Za-z0-9_]*=/ { print $2 }' <<<"$joined")
ok "builder ENV: ${builder_env[*]:-(none)}"

grep -Eq '^USER[[:space:]]+[0-9]+(:[0-9]+)?[[:space:]]*$' <<<"$joined" || fail "no numeric USER"
user_line="$(grep -E '^USER' <<<"$joined" | tail -1)"
[[ "$user_line" =~ ^USER[[:space:]]+0(:|[[:space:]]*$) ]] && fail "USER is root"
health_line="$(grep -E '^HEALTHCHECK' <<<"$joined" || true)"
[[ "$health_line" == *'wget -q --spider'*'/healthz'* ]] || fail "HEALTHCHECK is not 'wget -q --spider .../healthz'"
health_port="$(sed -nE 's/^ENV.*[[:space:]]CADDY_HTTP_PORT=([0-9]+).*/\1/p' <<<"$joined")"
[[ -n "$health_port" ]] || fail "no ENV CADDY_HTTP_PORT"
grep -Eq "^EXPOSE[[:space:]]+$health_port([[:space:]]|$)" <<<"$joined" || fail "EXPOSE does not list $health_port"
default_config="$(sed -nE 's#^COPY[[:space:]]+([^-][^[:space:]]*)[[:space:]]+/etc/caddy/Caddyfile[[:space:]]*$#\1#p' <<<"$joined")"
[[ "$default_config" == examples/compose/Caddyfile ]] || fail "the image's /etc/caddy/Caddyfile is '$default_config', not examples/compose/Caddyfile"
grep -Fq '"caddy", "run", "--config", "/etc/caddy/Caddyfile", "--adapter", "caddyfile"' <<<"$joined" || fail "CMD is not caddy run with /etc/caddy/Caddyfile"
ok "non-root $user_line, EXPOSE $health_port, HEALTHCHECK wget /healthz on \$CADDY_HTTP_PORT, CMD caddy run"

# ---------------------------------------------------------------------------
step "2. The Dockerfile's build step, here: xcaddy $XCADDY_VERSION"
mkdir -p "$work/tmp"
printf '   xcaddy %s\n' "${xargs_local[*]}"
t0=$SECONDS
if ! (cd "$work" && env TMPDIR="$work/tmp" "${builder_env[@]}" \
	go run "github.com/caddyserver/xcaddy/cmd/xcaddy@$XCADDY_VERSION" "${xargs_local[@]}") >"$work/xcaddy.log" 2>&1; then
	tail -n 40 "$work/xcaddy.log" >&2
	fail "xcaddy build failed (log above)"
fi
caddy="$work/caddy"
[[ -x "$caddy" ]] || fail "xcaddy wrote no $caddy"
ok "built in $((SECONDS - t0))s: $(du -h "$caddy" | cut -f1)"

# ---------------------------------------------------------------------------
step "3. The binary"
export XDG_DATA_HOME="$work/data" XDG_CONFIG_HOME="$work/config" HOME="$work/home"
mkdir -p "$XDG_DATA_HOME" "$XDG_CONFIG_HOME" "$HOME"
# A loopback port nothing listens on (connection refused).
free_port() {
	local p
	for p in $(shuf -i 20000-59999 -n 50); do
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			echo "$p"
			return
		fi
	done
	fail "no free loopback port found"
}
# Not the default admin address, which another Caddy here may hold.
CADDY_ADMIN="127.0.0.1:$(free_port)"
export CADDY_ADMIN

version="$("$caddy" version)"
[[ "$version" == "v$builder_tag"* ]] || fail "caddy version is '$version', want v$builder_tag"
ok "caddy version: $version"
"$caddy" list-modules >"$work/modules.txt"
grep -qx 'http.handlers.better_auth' "$work/modules.txt" || fail "list-modules has no http.handlers.better_auth"
grep -qx 'http.handlers.reverse_proxy' "$work/modules.txt" || fail "list-modules has no http.handlers.reverse_proxy (standard modules)"
ok "list-modules: http.handlers.better_auth (+ $(grep -c '^[a-z]' "$work/modules.txt") modules in all)"
"$caddy" build-info >"$work/build-info.txt"
awk -v m="$module" -v r="$root" '$1 == "dep" && $2 == m { getline; if ($1 == "=>" && $2 == r) found = 1 } END { exit !found }' \
	"$work/build-info.txt" || fail "build-info does not show $module replaced by this source tree"
ok "build-info: $module => this source tree"

check_caddyfile() {
	local file="$1" name="${1#"$root"/}"
	"$caddy" adapt --config "$file" --adapter caddyfile >"$work/adapted.json" 2>"$work/adapt.log" ||
		{ cat "$work/adapt.log" >&2; fail "caddy adapt $name"; }
	grep -q '"handler":"better_auth"' "$work/adapted.json" || fail "adapted $name has no better_auth handler"
	"$caddy" validate --config "$file" --adapter caddyfile >"$work/validate.log" 2>&1 ||
		{ cat "$work/validate.log" >&2; fail "caddy validate $name"; }
	ok "$name: adapts ($(wc -c <"$work/adapted.json") bytes of JSON, better_auth handler in it) and validates"
}
check_caddyfile "$compose_caddyfile"
grep -q '"backend":"http://better-auth:3000"' "$work/adapted.json" || fail "compose Caddyfile: default backend is not http://better-auth:3000"
check_caddyfile "$demo_caddyfile"

# Run the compose Caddyfile as the container would, on free loopback ports.
http_port="$(free_port)"
closed_port="$(free_port)" # nothing listens there: the upstreams are down
CADDY_HTTP_PORT="$http_port" \
	BETTER_AUTH_BACKEND="http://127.0.0.1:$closed_port" \
	FRONTEND_UPSTREAM="127.0.0.1:$closed_port" \
	"$caddy" run --config "$compose_caddyfile" --adapter caddyfile >"$work/run.log" 2>&1 &
caddy_pid=$!
base="http://127.0.0.1:$http_port"
for _ in $(seq 100); do
	curl -fsS -o /dev/null "$base/healthz" 2>/dev/null && break
	kill -0 "$caddy_pid" 2>/dev/null || { cat "$work/run.log" >&2; fail "caddy run exited"; }
	sleep 0.1
done
probe() { curl -sS -o "$work/body" -w '%{http_code} %{redirect_url}' "$@"; }
got="$(probe "$base/healthz")"
[[ "$got" == "200 " && "$(cat "$work/body")" == ok ]] || fail "GET /healthz: $got $(cat "$work/body")"
ok "caddy run: GET /healthz -> 200 ok (the HEALTHCHECK's request; wget itself runs only in the image)"
if command -v busybox >/dev/null; then
	busybox wget -q --spider "$base/healthz" || fail "busybox wget --spider /healthz failed"
	ok "busybox wget -q --spider /healthz succeeds"
fi
got="$(probe -H 'Accept: text/html' "$base/settings/account")"
[[ "$got" == "302 $base/auth/sign-in?redirectTo=%2Fsettings%2Faccount" ]] ||
	fail "GET /settings/account signed out: '$got', want 302 to /auth/sign-in?redirectTo=%2Fsettings%2Faccount"
ok "guarded /settings/account signed out -> 302 /auth/sign-in?redirectTo=%2Fsettings%2Faccount"
got="$(probe -H 'Accept: text/html' "$base/")"
[[ "$got" == "502 " ]] || fail "GET / with the frontend down: '$got', want 502"
ok "GET / -> 502 with no frontend (proxied to \$FRONTEND_UPSTREAM)"
got="$(probe "$base/api/auth/get-session")"
[[ "$got" == "502 " ]] || fail "GET /api/auth/get-session with Better Auth down: '$got', want 502"
ok "GET /api/auth/get-session -> 502 with no Better Auth (proxied to \$BETTER_AUTH_BACKEND)"
kill "$caddy_pid"
wait "$caddy_pid" 2>/dev/null || true
caddy_pid=""

# ---------------------------------------------------------------------------
step "4. examples/compose/compose.yaml"
if docker compose version >/dev/null 2>&1; then
	docker compose -f "$compose_file" config -q || fail "docker compose config -q"
	ok "docker compose config -q"
else
	note "no docker compose plugin here: loading with compose-go $COMPOSE_GO_VERSION instead"
fi

# The compose and build-context check, in a throwaway module (its
# dependencies stay out of this repository's go.mod).
mkdir -p "$work/composecheck"
cat >"$work/composecheck/main.go" <<'GO'
// composecheck ROOT COMPOSE_FILE: loads the compose file as docker compose
// does, checks the example's wiring, and checks each build's context.
package main

import (
	"context"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/linter"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
)

var failed bool

func ok(format string, a ...any) { fmt.Printf("   ok  "+format+"\n", a...) }
func bad(format string, a ...any) {
	fmt.Printf("   FAIL "+format+"\n", a...)
	failed = true
}

func main() {
	root, file := os.Args[1], os.Args[2]
	// No OS environment and no .env: the defaults in the file are checked.
	opts, err := cli.NewProjectOptions([]string{file}, cli.WithWorkingDirectory(filepath.Dir(file)))
	if err == nil {
		var p *types.Project
		if p, err = opts.LoadProject(context.Background()); err == nil {
			check(root, p)
		}
	}
	if err != nil {
		bad("loading %s: %v", file, err)
	}
	if failed {
		os.Exit(1)
	}
}

func env(s types.ServiceConfig, k string) string {
	if v := s.Environment[k]; v != nil {
		return *v
	}
	return ""
}

func check(root string, p *types.Project) {
	ok("loads (compose spec, interpolation, paths): project %q", p.Name)
	names := p.ServiceNames()
	sort.Strings(names)
	if strings.Join(names, " ") != "better-auth frontend sidecar" {
		bad("services are %v, want better-auth, frontend, sidecar", names)
		return
	}
	ok("services: %s", strings.Join(names, ", "))

	sc, ba, fe := p.Services["sidecar"], p.Services["better-auth"], p.Services["frontend"]
	for _, s := range []types.ServiceConfig{fe, ba, sc} {
		if s.Build == nil {
			bad("%s has no build", s.Name)
			continue
		}
		checkBuild(root, s)
	}
	if sc.Build != nil && (sc.Build.Context != root || sc.Build.Dockerfile != "Dockerfile") {
		bad("sidecar builds %s/%s, want the repository's Dockerfile", sc.Build.Context, sc.Build.Dockerfile)
	}

	// Ports: the sidecar alone is published, on 8080.
	published := ""
	for _, port := range sc.Ports {
		if port.Target == 8080 {
			published = port.Published
		}
	}
	if published == "" {
		bad("sidecar does not publish container port 8080")
	} else {
		ok("sidecar publishes %s -> 8080", published)
	}
	for _, s := range []types.ServiceConfig{fe, ba} {
		if len(s.Ports) > 0 {
			bad("%s publishes ports; it is meant to be reached through the sidecar only", s.Name)
		}
	}

	// The Caddyfile mount.
	caddyfile := filepath.Join(root, "examples/compose/Caddyfile")
	mounted := false
	for _, v := range sc.Volumes {
		if v.Type == types.VolumeTypeBind && v.Target == "/etc/caddy/Caddyfile" {
			mounted = true
			if v.Source != caddyfile {
				bad("sidecar mounts %s as the Caddyfile, want %s", v.Source, caddyfile)
			} else if _, err := os.Stat(v.Source); err != nil {
				bad("sidecar's Caddyfile mount: %v", err)
			} else if !v.ReadOnly {
				bad("the Caddyfile mount is not read-only")
			} else {
				ok("sidecar mounts examples/compose/Caddyfile at /etc/caddy/Caddyfile (ro)")
			}
		}
	}
	if !mounted {
		bad("sidecar does not mount a Caddyfile at /etc/caddy/Caddyfile")
	}

	// Wiring: the sidecar reaches both services by name; Better Auth knows
	// the origin the browser sees.
	for dep, want := range map[string]string{"frontend": "service_healthy", "better-auth": "service_healthy"} {
		if d, found := sc.DependsOn[dep]; !found || d.Condition != want {
			bad("sidecar depends_on %s: %+v, want condition %s", dep, d, want)
		}
	}
	backend, err := url.Parse(env(sc, "BETTER_AUTH_BACKEND"))
	if err != nil || backend.Scheme != "http" || backend.Hostname() != "better-auth" || backend.Port() != env(ba, "PORT") {
		bad("sidecar BETTER_AUTH_BACKEND=%q, want http://better-auth:%s", env(sc, "BETTER_AUTH_BACKEND"), env(ba, "PORT"))
	}
	if up := env(sc, "FRONTEND_UPSTREAM"); !strings.HasPrefix(up, "frontend:") {
		bad("sidecar FRONTEND_UPSTREAM=%q, want frontend:<port>", up)
	}
	if got, want := env(ba, "BETTER_AUTH_URL"), "http://localhost:"+published; got != want {
		bad("better-auth BETTER_AUTH_URL=%q, want %q (the sidecar's published origin)", got, want)
	}
	if env(ba, "HOST") != "0.0.0.0" {
		bad("better-auth HOST=%q: it must listen on all interfaces to be reached from the sidecar", env(ba, "HOST"))
	}
	ok("wiring: sidecar -> %s and %s (depends_on healthy); BETTER_AUTH_URL %s",
		env(sc, "BETTER_AUTH_BACKEND"), env(sc, "FRONTEND_UPSTREAM"), env(ba, "BETTER_AUTH_URL"))

	// Better Auth's database on a named volume.
	dbDir := filepath.Dir(env(ba, "DATABASE_FILE"))
	onVolume := false
	for _, v := range ba.Volumes {
		if v.Type == types.VolumeTypeVolume && v.Target == dbDir {
			if _, declared := p.Volumes[v.Source]; declared {
				onVolume = true
				ok("better-auth database %s on the named volume %s", env(ba, "DATABASE_FILE"), v.Source)
			}
		}
	}
	if !onVolume {
		bad("better-auth DATABASE_FILE=%q is not on a declared named volume", env(ba, "DATABASE_FILE"))
	}
}

// checkBuild: the Dockerfile exists, and what it COPYs from the context is
// in the context after .dockerignore; node_modules and .git are not.
func checkBuild(root string, s types.ServiceConfig) {
	ctxDir, dfName := s.Build.Context, s.Build.Dockerfile
	if dfName == "" {
		dfName = "Dockerfile"
	}
	df := filepath.Join(ctxDir, dfName)
	if _, err := os.Stat(df); err != nil {
		bad("%s: %v", s.Name, err)
		return
	}
	// BuildKit prefers <Dockerfile>.dockerignore beside the Dockerfile.
	ignore := df + ".dockerignore"
	if _, err := os.Stat(ignore); err != nil {
		ignore = filepath.Join(ctxDir, ".dockerignore")
	}
	var patterns []string
	if f, err := os.Open(ignore); err == nil {
		patterns, err = ignorefile.ReadAll(f)
		f.Close()
		if err != nil {
			bad("%s: %v", ignore, err)
			return
		}
	}
	pm, err := patternmatcher.New(patterns)
	if err != nil {
		bad("%s: %v", ignore, err)
		return
	}

	// The context as the builder would send it.
	included := map[string]bool{}
	var bytes int64
	err = filepath.WalkDir(ctxDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(ctxDir, path)
		if rel == "." {
			return nil
		}
		rel = filepath.ToSlash(rel)
		skip, err := pm.MatchesOrParentMatches(rel)
		if err != nil {
			return err
		}
		if skip {
			if d.IsDir() && !pm.Exclusions() {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.IsDir() {
			included[rel] = true
			if info, err := d.Info(); err == nil {
				bytes += info.Size()
			}
		}
		return nil
	})
	if err != nil {
		bad("%s: walking the context: %v", s.Name, err)
		return
	}
	for rel := range included {
		parts := strings.Split(rel, "/")
		for _, part := range parts {
			if part == "node_modules" || part == ".git" {
				bad("%s: context includes %s", s.Name, rel)
				return
			}
		}
		if parts[0] == "bin" || parts[0] == "artifacts" {
			bad("%s: context includes %s", s.Name, rel)
			return
		}
	}

	srcs, err := parseDockerfile(df)
	if err != nil {
		bad("%s: %s: %v", s.Name, dfName, err)
		return
	}
	for _, src := range srcs {
		src = strings.TrimSuffix(strings.TrimPrefix(filepath.ToSlash(filepath.Clean(src)), "./"), "/")
		if src == "." {
			// The whole context: it must hold the Go module.
			if _, err := os.Stat(filepath.Join(ctxDir, "go.mod")); err == nil {
				for _, f := range []string{"go.mod", "go.sum"} {
					if !included[f] {
						bad("%s: COPY . leaves out %s", s.Name, f)
					}
				}
			}
			continue
		}
		found := included[src]
		for rel := range included {
			if found {
				break
			}
			found = strings.HasPrefix(rel, src+"/")
		}
		if !found {
			bad("%s: %s COPYs %s, which the context (after %s) does not hold", s.Name, dfName, src, filepath.Base(ignore))
		}
	}
	where := "the repository root"
	if rel, _ := filepath.Rel(root, ctxDir); rel != "." {
		where = rel + "/"
	}
	ok("%s: %s parses (BuildKit, no lint warning), non-root, HEALTHCHECK; context %s after %s: %d files, %.1f MB, no node_modules, .git, bin, artifacts; its %d COPY sources are in it",
		s.Name, dfName, where, filepath.Base(ignore), len(included), float64(bytes)/1e6, len(srcs))
}

// parseDockerfile parses a Dockerfile with BuildKit's own parser and
// instruction parser (arguments of each instruction, the lint rules that
// run at parse time); any parser or lint warning is an error. It returns the context sources
// of the COPY and ADD instructions without --from, and checks that the
// final stage runs as a non-root user and has a HEALTHCHECK.
func parseDockerfile(df string) ([]string, error) {
	f, err := os.Open(df)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	res, err := parser.Parse(f)
	if err != nil {
		return nil, err
	}
	var warnings []string
	for _, w := range res.Warnings {
		warnings = append(warnings, w.Short)
	}
	lint := linter.New(&linter.Config{Warn: func(rule, _, _, msg string, _ []parser.Range) {
		warnings = append(warnings, rule+": "+msg)
	}})
	stages, _, err := instructions.Parse(res.AST, lint)
	if err != nil {
		return nil, err
	}
	if len(warnings) > 0 {
		return nil, fmt.Errorf("warnings: %s", strings.Join(warnings, "; "))
	}
	if len(stages) == 0 {
		return nil, fmt.Errorf("no stage")
	}
	var srcs []string
	for _, st := range stages {
		for _, c := range st.Commands {
			switch c := c.(type) {
			case *instructions.CopyCommand:
				if c.From == "" {
					srcs = append(srcs, c.SourcePaths...)
				}
			case *instructions.AddCommand:
				srcs = append(srcs, c.SourcePaths...)
			}
		}
	}
	user, health := "", false
	for _, c := range stages[len(stages)-1].Commands {
		switch c := c.(type) {
		case *instructions.UserCommand:
			user = c.User
		case *instructions.HealthCheckCommand:
			health = c.Health != nil && len(c.Health.Test) > 0 && c.Health.Test[0] != "NONE"
		}
	}
	if name, _, _ := strings.Cut(user, ":"); name == "" || name == "root" || name == "0" {
		return nil, fmt.Errorf("the final stage runs as root (USER %q)", user)
	}
	if !health {
		return nil, fmt.Errorf("the final stage has no HEALTHCHECK")
	}
	return srcs, nil
}
GO
(
	cd "$work/composecheck"
	export GOFLAGS=-mod=mod
	go mod init composecheck >/dev/null 2>&1
	go get "github.com/compose-spec/compose-go/v2@$COMPOSE_GO_VERSION" \
		"github.com/moby/patternmatcher@$PATTERNMATCHER_VERSION" \
		"github.com/moby/buildkit@$BUILDKIT_VERSION" >"$work/composecheck.log" 2>&1 ||
		{ cat "$work/composecheck.log" >&2; exit 1; }
	go build -o composecheck . >>"$work/composecheck.log" 2>&1 ||
		{ cat "$work/composecheck.log" >&2; exit 1; }
	./composecheck "$root" "$compose_file"
) || fail "compose.yaml / build contexts (above)"

printf '\ndocker-check: all passed in %ss (xcaddy build %s)\n' "$((SECONDS - started))" "$(du -h "$caddy" | cut -f1)"
