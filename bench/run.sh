#!/usr/bin/env bash
# bench/run.sh (make bench): the Issue 10 load figures, measured side by side
# in one run on this machine. Loopback only; every load run stops by itself;
# every process started here is stopped on exit (trap). BENCHMARKS.md says
# what each figure means.
#
# Knobs (environment): DURATION (s per measured wrk run, default 2) x ROUNDS
# (default 40, the variants in alternating order: ABCDE CBA ABC CBA ABCDE ...,
# the forward_auth ones D and E in every fourth round), SETTLE (s
# of pause before each measured run, 0.3), WARMUP (s, 2),
# CONNS (8), THREADS (2), USERS (100000), USERS_CACHE (16MiB), GO_BENCH (1:
# also run the Go benchmarks at the end; 0: skip them), VARIANTS (the wrk
# variants, default "plain session five fa_gs fa_ls"), CHECKS (1: the cold,
# overlap, 10 MiB and users checks after wrk; 0: skip them), PPROF (a folder:
# Caddy's admin endpoint is turned on and a CPU profile of each variant's first
# round is written there as NAME.pprof, for `go tool pprof bin/caddy FILE`).
#
# Short rounds, many of them: on a shared VM the same variant's throughput
# drifts by 15% and more within a minute, so variants are compared in
# neighbouring 2 s slots rather than in long runs of their own.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-2}
ROUNDS=${ROUNDS:-40}
SETTLE=${SETTLE:-0.3}
WARMUP=${WARMUP:-2}
CONNS=${CONNS:-8}
THREADS=${THREADS:-2}
USERS=${USERS:-100000}
USERS_CACHE=${USERS_CACHE:-16MiB}
GO_BENCH=${GO_BENCH:-1}
GO=${GO:-go}
VARIANTS=${VARIANTS:-plain session five fa_gs fa_ls}
CHECKS=${CHECKS:-1}
PPROF=${PPROF:-}

T_START=$(date +%s)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/cba-bench.XXXXXX")
PIDS=()
cleanup() {
	local p
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say() { printf '\n== %s\n' "$*"; }
die() {
	echo "bench: $*" >&2
	for f in "$WORK"/*.log "$WORK"/*.err; do [ -s "$f" ] && { echo "--- $f" >&2; tail -n 20 "$f" >&2; }; done
	exit 1
}
# wait_for FILE PATTERN SECONDS: until a process announces itself.
wait_for() {
	local i
	for ((i = 0; i < $3 * 10; i++)); do
		grep -q "$2" "$1" 2>/dev/null && return 0
		sleep 0.1
	done
	die "no '$2' in $1 after $3 s"
}
# wait_port PORT: until something listens there.
wait_port() {
	local i
	for ((i = 0; i < 100; i++)); do
		(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
		sleep 0.1
	done
	die "nothing listens on 127.0.0.1:$1"
}

# --- tools -------------------------------------------------------------------
if ! command -v wrk >/dev/null; then
	say "installing wrk"
	if [ "$(id -u)" = 0 ]; then
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
	else
		sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
	fi
fi
command -v node >/dev/null || die "node (Node.js 20+) is needed for the real Better Auth server"
BA_DIR=testdata/betterauth
if [ ! -f "$BA_DIR/node_modules/.package-lock.json" ] || [ ! -f "$BA_DIR/node_modules/better-sqlite3/build/Release/better_sqlite3.node" ]; then
	say "npm ci in $BA_DIR"
	(cd "$BA_DIR" && timeout 600 npm ci --no-audit --no-fund >/dev/null)
fi

say "building bin/caddy and the bench tool"
$GO build -o bin/caddy ./cmd/caddy
$GO build -o "$WORK/benchtool" ./bench/benchtool
BT="$WORK/benchtool"
CADDY="$PWD/bin/caddy"

# --- servers -----------------------------------------------------------------
read -r P_UP P_CP P_STUB P_BA P_PLAIN P_SESS P_FIVE P_FA P_FA2 P_SPLAIN P_SLOW P_MPLAIN P_MSIDE P_USERS P_ADMIN \
	<<<"$($BT ports 15 | tr '\n' ' ')"

say "starting the real Better Auth (fresh database, RATE_LIMIT=off) and the loopback servers"
env -u TRUSTED_ORIGINS -u BETTER_AUTH_SECRET -u SESSION_EXPIRES_IN -u SESSION_UPDATE_AGE -u AUTO_VERIFY_EMAIL \
	PORT="$P_BA" HOST=127.0.0.1 BETTER_AUTH_URL="http://127.0.0.1:$P_BA" \
	DATABASE_FILE="$WORK/auth.sqlite" RATE_LIMIT=off \
	node "$BA_DIR/server.mjs" >"$WORK/ba.out" 2>"$WORK/ba.err" &
PIDS+=($!)
$BT serve -upstream "127.0.0.1:$P_UP" -countproxy "127.0.0.1:$P_CP" -ba "http://127.0.0.1:$P_BA" \
	-stub "127.0.0.1:$P_STUB" -stub-delay 50ms -max 15m >"$WORK/servers.out" 2>"$WORK/servers.err" &
PIDS+=($!)
wait_for "$WORK/ba.out" "better-auth ready" 60
wait_for "$WORK/servers.out" "ready" 10
$BT setup -ba "http://127.0.0.1:$P_BA" -out "$WORK" || die "sign-up on Better Auth failed"
COOKIE=$(cat "$WORK/cookie")

FIVE='prefetch /* {
			list_accounts
			list_sessions
			list_device_sessions
			list_passkeys
			list_api_keys
		}'
globals() {
	local admin="admin off"
	[ -n "$PPROF" ] && [ "$1" = main ] && admin="admin 127.0.0.1:$P_ADMIN"
	cat <<EOF
{
	$admin
	persist_config off
	auto_https off
	default_bind 127.0.0.1
	grace_period 1s
	log {
		output file $WORK/$1.log
		level WARN
	}
}
EOF
}
# start_caddy NAME: bin/caddy run with $WORK/NAME.caddyfile; sets CADDY_PID.
start_caddy() {
	(cd "$WORK" && exec "$CADDY" run --adapter caddyfile --config "$WORK/$1.caddyfile") >"$WORK/$1.out" 2>&1 &
	CADDY_PID=$!
	PIDS+=("$CADDY_PID")
}
stop_caddy() {
	kill "$1" 2>/dev/null || true
	wait "$1" 2>/dev/null || true
}

# The variants wrk compares, in one Caddy process. better_auth reaches Better
# Auth through the counting proxy (only its cache misses go there);
# forward_auth goes straight to Better Auth, the most favourable for it.
{
	globals main
	cat <<EOF
# 1. plain: what the page costs without any auth.
http://:$P_PLAIN {
	reverse_proxy 127.0.0.1:$P_UP
}
# 2. better_auth: guard every path, inject the session.
http://:$P_SESS {
	better_auth {
		backend http://127.0.0.1:$P_CP
		guard /*
	}
	reverse_proxy 127.0.0.1:$P_UP
}
# 3. better_auth: the same plus five settings families.
http://:$P_FIVE {
	better_auth {
		backend http://127.0.0.1:$P_CP
		guard /*
		$FIVE
	}
	reverse_proxy 127.0.0.1:$P_UP
}
# 4. forward_auth to get-session: what a user would write. Better Auth
# answers 200 "null" when signed out (chunked, no header tells it apart), so
# this alone guards nothing; it is the cheapest forward_auth there is: one
# get-session per request and no check. Any check only adds work.
http://:$P_FA {
	forward_auth 127.0.0.1:$P_BA {
		uri /api/auth/get-session
	}
	reverse_proxy 127.0.0.1:$P_UP
}
# 5. forward_auth that really guards: an endpoint that answers 401 when
# signed out (list-sessions: the session lookup plus one list query).
http://:$P_FA2 {
	forward_auth 127.0.0.1:$P_BA {
		uri /api/auth/list-sessions
	}
	reverse_proxy 127.0.0.1:$P_UP
}
# Overlap check: the upstream sleeps 50 ms on /slow/*, the stub's query
# endpoints under /slowauth sleep 50 ms; stale_time 0: every query is cold.
http://:$P_SPLAIN {
	reverse_proxy 127.0.0.1:$P_UP
}
http://:$P_SLOW {
	better_auth {
		backend http://127.0.0.1:$P_STUB
		base_path /slowauth
		stale_time 0
		guard /*
		$FIVE
	}
	reverse_proxy 127.0.0.1:$P_UP
}
EOF
} >"$WORK/main.caddyfile"
start_caddy main
MAIN_PID=$CADDY_PID
for p in $P_PLAIN $P_SESS $P_FIVE $P_FA $P_FA2 $P_SPLAIN $P_SLOW; do wait_port "$p"; done

say "sanity: every variant serves what it should"
U=/settings/account
$BT check -url "http://127.0.0.1:$P_PLAIN$U" -cookie "$COOKIE" -queries -1 || die "plain"
$BT check -url "http://127.0.0.1:$P_SESS$U" -cookie "$COOKIE" -queries 1 || die "better_auth session"
$BT check -url "http://127.0.0.1:$P_SESS$U" -status 302 || die "better_auth signed out"
$BT check -url "http://127.0.0.1:$P_FIVE$U" -cookie "$COOKIE" -queries 6 || die "better_auth five families"
$BT check -url "http://127.0.0.1:$P_FA$U" -cookie "$COOKIE" -queries -1 || die "forward_auth"
$BT check -url "http://127.0.0.1:$P_FA$U" -queries -1 && echo "  (forward_auth to get-session lets a signed-out visitor through: 200)"
$BT check -url "http://127.0.0.1:$P_FA2$U" -cookie "$COOKIE" -queries -1 || die "forward_auth list-sessions"
$BT check -url "http://127.0.0.1:$P_FA2$U" -status 401 || die "forward_auth list-sessions signed out"

# --- wrk ---------------------------------------------------------------------
read -r -a NAMES <<<"$VARIANTS"
[ -n "$PPROF" ] && mkdir -p "$PPROF"
declare -A URL=(
	[plain]="http://127.0.0.1:$P_PLAIN$U" [session]="http://127.0.0.1:$P_SESS$U"
	[five]="http://127.0.0.1:$P_FIVE$U" [fa_gs]="http://127.0.0.1:$P_FA$U" [fa_ls]="http://127.0.0.1:$P_FA2$U")
declare -A LABEL=(
	[plain]="plain reverse_proxy" [session]="better_auth guard + session" [five]="better_auth + 5 families"
	[fa_gs]="forward_auth get-session (no check)" [fa_ls]="forward_auth list-sessions (401 guard)")
wrk_run() { # NAME SECONDS OUT
	timeout $(($2 + 30)) wrk -t"$THREADS" -c"$CONNS" -d"$2s" --latency -s bench/wrk-report.lua \
		-H "Cookie: $COOKIE" -H "Accept: text/html,application/xhtml+xml" "${URL[$1]}" >"$3" ||
		die "wrk ${URL[$1]}"
}
field() { sed -n "s/.*\b$2=\([0-9.]*\).*/\1/p" "$1"; }
# cpu_ticks PID: user+system CPU of a process so far, in clock ticks.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
TCK=$(getconf CLK_TCK)

say "wrk: warm-up ${WARMUP}s each, then ${ROUNDS} x ${DURATION}s each, alternating order ($THREADS threads, $CONNS connections, cookie, Accept: text/html)"
for n in "${NAMES[@]}"; do wrk_run "$n" "$WARMUP" "$WORK/warm-$n.txt"; done
declare -A REQ=() DUR=() P50=() P99=() GS=() LISTS=() BAD=() ROUNDRPS=() CPU=() NR=()
for n in "${NAMES[@]}"; do REQ[$n]=0 DUR[$n]=0 P50[$n]=0 P99[$n]=0 GS[$n]=0 LISTS[$n]=0 BAD[$n]=0 ROUNDRPS[$n]="" CPU[$n]=0 NR[$n]=0; done
for ((r = 0; r < ROUNDS; r++)); do
	order=("${NAMES[@]}")
	if ((r % 2 == 1)); then order=(); for ((i = ${#NAMES[@]} - 1; i >= 0; i--)); do order+=("${NAMES[$i]}"); done; fi
	for n in "${order[@]}"; do
		# The forward_auth variants, a dozen times off their target, run in
		# every fourth round only: the rounds go to the close ratios.
		case $n in fa_gs | fa_ls) ((r % 4 != 0)) && continue ;; esac
		curl -fsS "http://127.0.0.1:$P_CP/__bench/counts" >"$WORK/c0.json"
		sleep "$SETTLE" # what the last run left behind (Node's work after a forward_auth run) is not measured here
		prof=""
		if [ -n "$PPROF" ] && ((r == 0)); then
			curl -fsS -o "$PPROF/$n.pprof" "http://127.0.0.1:$P_ADMIN/debug/pprof/profile?seconds=$((DURATION > 1 ? DURATION - 1 : 1))" &
			prof=$!
		fi
		t0=$(cpu_ticks "$MAIN_PID")
		wrk_run "$n" "$DURATION" "$WORK/run.txt"
		t1=$(cpu_ticks "$MAIN_PID")
		[ -n "$prof" ] && { wait "$prof" || die "pprof $n"; }
		curl -fsS "http://127.0.0.1:$P_CP/__bench/counts" >"$WORK/c1.json"
		CPU[$n]=$((CPU[$n] + t1 - t0))
		read -r gs lists _ < <($BT calls "$WORK/c0.json" "$WORK/c1.json")
		f="$WORK/run.txt"
		REQ[$n]=$((REQ[$n] + $(field "$f" requests)))
		DUR[$n]=$((DUR[$n] + $(field "$f" duration_us)))
		P50[$n]=$((P50[$n] + $(field "$f" p50_us))) NR[$n]=$((NR[$n] + 1))
		p99=$(field "$f" p99_us)
		((p99 > P99[$n])) && P99[$n]=$p99
		BAD[$n]=$((BAD[$n] + $(field "$f" non2xx3xx) + $(field "$f" sockerr)))
		GS[$n]=$((GS[$n] + gs)) LISTS[$n]=$((LISTS[$n] + lists))
		ROUNDRPS[$n]+="$(printf '%.0f' "$(field "$f" rps)") "
		printf '  round %d %-38s %8.0f req/s  p50 %6.2f ms  p99 %7.2f ms\n' $((r + 1)) "${LABEL[$n]}" \
			"$(field "$f" rps)" "$(echo "$(field "$f" p50_us)" | awk '{print $1/1000}')" "$(echo "$p99" | awk '{print $1/1000}')"
	done
done
rps() { awk -v q="${REQ[$1]}" -v d="${DUR[$1]}" 'BEGIN{printf "%.0f", q/(d/1e6)}'; }
ran() { [ -n "${REQ[$1]:-}" ]; }
ratio() { if ran "$1" && ran "$2"; then awk -v a="$(rps "$1")" -v b="$(rps "$2")" 'BEGIN{printf "%.2f", a/b}'; else echo n/a; fi; }

TABLE="$WORK/table.txt"
{
	printf '| variant | req/s | p50 ms | p99 ms | vs plain | rounds req/s | caddy CPU µs/req | Better Auth calls: get-session / list-* | non-2xx/3xx + socket errors |\n'
	printf '|---|---:|---:|---:|---:|---|---:|---|---:|\n'
	for n in "${NAMES[@]}"; do
		case $n in
		fa_gs | fa_ls) calls="one per request (${REQ[$n]}), by construction" ;;
		*) calls="${GS[$n]} / ${LISTS[$n]}" ;;
		esac
		printf '| %s | %s | %.2f | %.2f | %s | %s | %.0f | %s | %s |\n' "${LABEL[$n]}" "$(rps "$n")" \
			"$(awk -v s="${P50[$n]}" -v r="${NR[$n]}" 'BEGIN{print s/r/1000}')" \
			"$(awk -v s="${P99[$n]}" 'BEGIN{print s/1000}')" "$(ratio "$n" plain)" "${ROUNDRPS[$n]% }" \
			"$(awk -v t="${CPU[$n]}" -v k="$TCK" -v q="${REQ[$n]}" 'BEGIN{print t/k*1e6/q}')" "$calls" "${BAD[$n]}"
	done
} >"$TABLE"
pass() { awk -v a="$1" -v b="$2" 'BEGIN{ if (a >= b) print "PASS"; else print "FAIL" }'; }
# paired NAME: the ratios to plain round by round (neighbouring slots), as
# "median (middle half LOW-HIGH)": how far one round's ratio strays.
paired() {
	ran "$1" && ran plain || { echo n/a; return; }
	awk -v a="${ROUNDRPS[$1]}" -v b="${ROUNDRPS[plain]}" 'BEGIN{
		n = split(a, x, " "); split(b, y, " ")
		for (i = 1; i <= n; i++) r[i] = x[i] / y[i]
		for (i = 2; i <= n; i++) for (j = i; j > 1 && r[j-1] > r[j]; j--) { t = r[j]; r[j] = r[j-1]; r[j-1] = t }
		printf "%.2f (middle half %.2f-%.2f)", (r[int((n+1)/2)] + r[int(n/2)+1]) / 2, r[int(n/4)+1], r[n-int(n/4)]
	}'
}
R_SESS=$(ratio session plain) R_FIVE=$(ratio five plain) R_FA=$(ratio session fa_gs) R_FA2=$(ratio session fa_ls)
RESULTS=()
[ "$R_SESS" != n/a ] && RESULTS+=("RESULT session $(pass "$R_SESS" 0.90): better_auth guard + session = $R_SESS of plain reverse_proxy (target >= 0.90; round by round: $(paired session))")
[ "$R_FIVE" != n/a ] && RESULTS+=("RESULT five $(pass "$R_FIVE" 0.85): better_auth + 5 families = $R_FIVE of plain reverse_proxy (target >= 0.85; round by round: $(paired five))")
[ "$R_FA" != n/a ] && RESULTS+=("RESULT forward_auth $(pass "$R_FA" 5): better_auth guard + session = ${R_FA}x forward_auth to get-session (target >= 5x); ${R_FA2}x forward_auth to list-sessions")
say "wrk results ($(nproc) cores; rps = all requests / all time over the rounds; p50 = mean of the rounds, p99 = worst round)"
cat "$TABLE"
printf '%s\n' "${RESULTS[@]}"

# --- the other checks ----------------------------------------------------------
if [ "$CHECKS" = 1 ]; then
say "cold cache: 64 concurrent requests for one fresh credential (real Better Auth, five families)"
OUT=$($BT cold -ba "http://127.0.0.1:$P_BA" -email "$(cat "$WORK/email")" -password "$(cat "$WORK/password")" \
	-url "http://127.0.0.1:$P_FIVE$U" -counts "http://127.0.0.1:$P_CP/__bench/counts" -n 64 -queries 6) || die "cold check"
echo "$OUT"
RESULTS+=("$(echo "$OUT" | grep '^RESULT')")

say "overlap: slow upstream (50 ms) and slow queries (50 ms)"
OUT=$($BT overlap -plain "http://127.0.0.1:$P_SPLAIN/slow$U" -sidecar "http://127.0.0.1:$P_SLOW/slow$U" \
	-cookie "better-auth.session_token=overlap.c2ln" -n 20 -queries 6) || die "overlap check"
echo "$OUT"
RESULTS+=("$(echo "$OUT" | grep '^RESULT')")
stop_caddy "$MAIN_PID"

say "10 MiB pages: RSS of a caddy process of their own while streaming"
{
	globals mem
	cat <<EOF
http://:$P_MPLAIN {
	reverse_proxy 127.0.0.1:$P_UP
}
http://:$P_MSIDE {
	better_auth {
		backend http://127.0.0.1:$P_STUB
		guard /*
		$FIVE
	}
	reverse_proxy 127.0.0.1:$P_UP
}
EOF
} >"$WORK/mem.caddyfile"
start_caddy mem
wait_port "$P_MPLAIN"
wait_port "$P_MSIDE"
OUT=$($BT mem10 -pid "$CADDY_PID" -plain "http://127.0.0.1:$P_MPLAIN/big/page" -sidecar "http://127.0.0.1:$P_MSIDE/big/page" \
	-cookie "better-auth.session_token=big.c2ln" -conc 4 -dur 6s) || die "10 MiB check"
echo "$OUT"
RESULTS+=("$(echo "$OUT" | grep '^RESULT')")
stop_caddy "$CADDY_PID"

say "$USERS distinct signed-in users against the stub, cache_size $USERS_CACHE"
{
	globals users
	cat <<EOF
http://:$P_USERS {
	better_auth {
		backend http://127.0.0.1:$P_STUB
		cache_size $USERS_CACHE
		guard /*
	}
	header Content-Type "text/html; charset=utf-8"
	respond "<!doctype html><html><head><title>u</title></head><body>hello</body></html>"
}
EOF
} >"$WORK/users.caddyfile"
start_caddy users
wait_port "$P_USERS"
CACHE_BYTES=$(echo "$USERS_CACHE" | awk '/MiB$/{print int($0)*1048576; next} /KiB$/{print int($0)*1024; next} {print int($0)}')
OUT=$($BT users -pid "$CADDY_PID" -url "http://127.0.0.1:$P_USERS/settings/account" \
	-counts "http://127.0.0.1:$P_STUB/__bench/counts" -n "$USERS" -conc 32 -cache-size "$CACHE_BYTES" -limit 150s) || die "users check"
echo "$OUT"
RESULTS+=("$(echo "$OUT" | grep '^RESULT')")
stop_caddy "$CADDY_PID"
fi

# Everything below runs without the servers.
TABLE_TXT=$(cat "$TABLE")
cleanup
trap - EXIT

if [ "$GO_BENCH" = 1 ]; then
	say "Go benchmarks (go test -bench, 1 s each)"
	$GO test -run '^$' -bench . -benchmem -benchtime 1s ./module/ ./cache/ ./inject/ | grep -E '^(Benchmark|ok|FAIL|goos|cpu)' || die "go test -bench"
fi

say "summary ($(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $($GO env GOVERSION), $(($(date +%s) - T_START)) s)"
echo "$TABLE_TXT"
printf '%s\n' "${RESULTS[@]}"
