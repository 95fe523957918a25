#!/usr/bin/env bash
# The demo: Better Auth (127.0.0.1:3000), the demo frontend (127.0.0.1:5173)
# and the better_auth sidecar in front of both (http://localhost:8080).
# Run from anywhere (`make demo` runs it from the repository root); Ctrl-C
# stops all three. Needs Node 20+, npm and Go. Stdout gets one line,
# "Demo ready: http://localhost:8080"; progress goes to stderr and each
# service's output to examples/demo/.data/logs/.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
state="$here/.data"
logs="$state/logs"
mkdir -p "$logs"

log() { printf 'demo: %s\n' "$*" >&2; }

# npm ci where node_modules is missing or older than the lock file.
install_deps() {
	local dir="$1"
	if [[ ! -d "$dir/node_modules" || "$dir/package-lock.json" -nt "$dir/node_modules/.package-lock.json" ]]; then
		log "npm ci in ${dir#"$root"/}"
		(cd "$dir" && npm ci --no-audit --no-fund) >&2
	fi
}

install_deps "$root/testdata/betterauth"
install_deps "$here"

log "building the frontend"
(cd "$here" && npm run --silent build) >&2

log "building the sidecar (bin/caddy)"
(cd "$root" && go build -o bin/caddy ./cmd/caddy)

# Keep one secret across runs, so sessions in the demo database stay valid.
if [[ ! -s "$state/secret" ]]; then
	node -e 'process.stdout.write(require("node:crypto").randomBytes(32).toString("hex"))' >"$state/secret"
fi

# Each service runs in its own process group (job control on while they are
# started), so stopping a group stops everything that service started, and
# Ctrl-C in the terminal reaches this script, which then stops them all.
pids=()
names=()
cleanup() {
	trap - EXIT INT TERM
	set +e
	for pid in "${pids[@]}"; do kill -TERM -- "-$pid" 2>/dev/null; done
	for _ in $(seq 50); do
		local alive=0
		for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
		((alive)) || break
		sleep 0.1
	done
	for pid in "${pids[@]}"; do kill -KILL -- "-$pid" 2>/dev/null; done
	wait 2>/dev/null
}
trap cleanup EXIT
trap 'log stopping; exit 0' INT TERM

start() {
	local name="$1"
	shift
	"$@" >"$logs/$name.log" 2>&1 &
	pids+=("$!")
	names+=("$name")
}

set -m
start better-auth env PORT=3000 HOST=127.0.0.1 \
	BETTER_AUTH_URL=http://localhost:8080 \
	TRUSTED_ORIGINS=http://localhost:8080 \
	BETTER_AUTH_SECRET="$(cat "$state/secret")" \
	DATABASE_FILE="$state/auth.sqlite" \
	node "$root/testdata/betterauth/server.mjs"
start frontend env HOST=127.0.0.1 PORT=5173 node "$here/server.mjs"
start caddy "$root/bin/caddy" run --config "$here/Caddyfile" --adapter caddyfile
set +m

# Any HTTP answer counts as up; a service that exited is a failure.
answers() {
	node -e 'fetch(process.argv[1], { redirect: "manual", signal: AbortSignal.timeout(2000) }).then(() => process.exit(0), () => process.exit(1))' "$1"
}
wait_for() {
	local index="$1" url="$2"
	local name="${names[$index]}" pid="${pids[$index]}"
	for _ in $(seq 200); do
		if ! kill -0 "$pid" 2>/dev/null; then
			log "$name exited; its log ($logs/$name.log):"
			tail -n 40 "$logs/$name.log" >&2
			exit 1
		fi
		answers "$url" && return 0
		sleep 0.2
	done
	log "$name did not answer at $url in time; its log:"
	tail -n 40 "$logs/$name.log" >&2
	exit 1
}
wait_for 0 http://127.0.0.1:3000/api/auth/ok
wait_for 1 http://127.0.0.1:5173/
wait_for 2 http://localhost:8080/

echo "Demo ready: http://localhost:8080"
log "logs in ${logs#"$root"/}/; Ctrl-C stops the demo"

# Wait until a service exits (then stop the rest) or Ctrl-C.
while :; do
	for i in "${!pids[@]}"; do
		if ! kill -0 "${pids[$i]}" 2>/dev/null; then
			log "${names[$i]} exited; its log:"
			tail -n 20 "$logs/${names[$i]}.log" >&2
			exit 1
		fi
	done
	sleep 1
done
