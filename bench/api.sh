#!/usr/bin/env bash
# bench/api.sh - allowd's HTTP API against nginx serving the same bytes, on
# this machine, in one run (`make bench`).  See docs/benchmarks.md.
#
#  1. fdatasync rate of the disk under the bench's temp dir (bench/fsync_rate.c)
#  2. allowd on a fresh data dir, seeded with BENCH_POLICIES policies through
#     POST .../batch (1000 posts per batch); nginx (2 workers) serving the
#     exact bodies allowd returns for GET one policy and for the list page
#  3. wrk (keep-alive) against: GET one (allowd, nginx), GET list page
#     (allowd, nginx), durable POST creates (allowd, bench/create.lua)
#  4. a table of req/s and p99, with PASS/MISS against the targets of issue 2:
#       GET one          allowd req/s >= 1.0 x nginx req/s
#       list page        allowd p99 <= 10 ms
#       durable creates  creates/s >= 3 x the single-fdatasync rate
#
# A measurement, not a test: it exits 0 whether targets are met or missed,
# and non-zero only when it cannot measure (a server fails to start, seeding
# fails).  Everything listens on 127.0.0.1; every process it starts and its
# temp dir are removed on exit.
#
# Knobs (environment):
#   BENCH_DURATION=10        seconds per measured wrk run (plus BENCH_WARMUP=2 before each)
#   BENCH_CONNECTIONS=32     wrk connections;  BENCH_WRK_THREADS=2  wrk threads
#   BENCH_ALLOWD_THREADS=8   allowd --threads (allowd's default)
#   BENCH_POLICIES=100000    policies seeded (a multiple of 1000)
#   BENCH_LIST_QUERY=...     the list page's query string
#   BENCH_TMPDIR=$TMPDIR     where the data dir (and the fdatasync probe) live
#   BENCH_FSYNC_SECONDS=3    length of each fdatasync sample
#   BENCH_QUIET_WAIT=15      before each run, wait up to this many seconds for a second
#   BENCH_QUIET_PCT=15       in which other processes use < this % of all CPUs
#   BENCH_ALLOWD_ARGS="..."  extra allowd flags, e.g. "--max-header-bytes 8192"
#   BENCH_PROFILE=1          perf-record allowd during its runs, print top symbols
#   BENCH_ONLY=one,list,create  the scenarios to run (default: all three); "one" and
#                            "list" run nginx and allowd, "create" allowd alone
#   ALLOWD_BIN=build/allowd  the server under test (built if missing)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

DURATION=${BENCH_DURATION:-10}
WARMUP=${BENCH_WARMUP:-2}
CONNS=${BENCH_CONNECTIONS:-32}
WRK_THREADS=${BENCH_WRK_THREADS:-2}
ALLOWD_THREADS=${BENCH_ALLOWD_THREADS:-8}
POLICIES=${BENCH_POLICIES:-100000}
LIST_QUERY=${BENCH_LIST_QUERY:-per_page=100&pattern_type=EMAIL&order=pattern&direction=desc&page=5}
ALLOWD_BIN=${ALLOWD_BIN:-$ROOT/build/allowd}
PROFILE=${BENCH_PROFILE:-0}
read -r -a EXTRA_ARGS <<<"${BENCH_ALLOWD_ARGS:-}"
FSYNC_SECONDS=${BENCH_FSYNC_SECONDS:-3}
ONLY=${BENCH_ONLY:-one,list,create}
want() { [[ ",$ONLY," == *",$1,"* ]]; }
for o in ${ONLY//,/ }; do
	case "$o" in one | list | create) ;; *) echo "BENCH_ONLY: unknown scenario '$o' (one, list, create)" >&2; exit 2 ;; esac
done

log() { printf '[bench %s] %s\n' "$(date +%T)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# ---- dependencies ---------------------------------------------------------
need_deps=0
for cmd in wrk nginx curl cc awk; do
	command -v "$cmd" >/dev/null 2>&1 || need_deps=1
done
# nginx lives in /usr/sbin, which a non-root PATH may lack.
if ! command -v nginx >/dev/null 2>&1 && [ -x /usr/sbin/nginx ]; then
	PATH=$PATH:/usr/sbin
	command -v wrk >/dev/null 2>&1 && command -v curl >/dev/null 2>&1 &&
		command -v cc >/dev/null 2>&1 && need_deps=0
fi
if [ "$need_deps" = 1 ]; then
	log "wrk, nginx, curl or cc missing: running scripts/deps.sh"
	bash "$ROOT/scripts/deps.sh"
	[ -x /usr/sbin/nginx ] && PATH=$PATH:/usr/sbin
fi
for cmd in wrk nginx curl cc awk; do
	command -v "$cmd" >/dev/null 2>&1 || die "$cmd not found even after scripts/deps.sh"
done

if [ ! -x "$ALLOWD_BIN" ]; then
	log "building allowd"
	cmake -S . -B build -DALLOWD_SDK_TESTS=OFF >/dev/null
	cmake --build build -j "$(nproc)" >/dev/null
fi
[ -x "$ALLOWD_BIN" ] || die "no allowd binary at $ALLOWD_BIN"
((POLICIES % 1000 == 0 && POLICIES >= 1000)) || die "BENCH_POLICIES must be a multiple of 1000"

# ---- temp dir and cleanup ------------------------------------------------
TMPBASE=${BENCH_TMPDIR:-${TMPDIR:-/tmp}}
mkdir -p "$TMPBASE"
WORK=$(mktemp -d "$TMPBASE/allowd-bench.XXXXXX")
ALLOWD_PID=""
NGINX_PID=""
PERF_PID=""
STAT_PID=""
WRK_PID=""

stop_pid() { # pid, signal: signal it, wait up to 5 s, then SIGKILL
	local pid=$1 sig=$2 i
	[ -n "$pid" ] || return 0
	kill -0 "$pid" 2>/dev/null || return 0
	kill "-$sig" "$pid" 2>/dev/null || true
	for ((i = 0; i < 50; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}

cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	if [ -n "$WRK_PID" ]; then # the subshell that times wrk, and wrk
		for p in $(pgrep -P "$WRK_PID" 2>/dev/null); do stop_pid "$p" TERM; done
		stop_pid "$WRK_PID" TERM
	fi
	stop_pid "$PERF_PID" INT
	stop_pid "$STAT_PID" INT
	stop_pid "$NGINX_PID" QUIT
	stop_pid "$ALLOWD_PID" TERM
	rm -rf "$WORK"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

log "temp dir $WORK ($(stat -f -c %T "$WORK") filesystem)"
case "$(stat -f -c %T "$WORK")" in
tmpfs | ramfs) log "WARNING: $WORK is in memory: fdatasync and durable-write figures mean nothing; set BENCH_TMPDIR to a disk" ;;
esac

# ---- 1. fdatasync rate ----------------------------------------------------
# Measured twice (now, and again just before the create run); the higher rate
# is the disk's, and the stricter bar for the creates target.
cc -O2 -o "$WORK/fsync_rate" "$ROOT/bench/fsync_rate.c"
mkdir -p "$WORK/data"
FSYNC_RATE=0
FSYNC_P50=""
FSYNC_SAMPLES=""
measure_fsync() {
	local line rate
	log "measuring fdatasync rate for ${FSYNC_SECONDS}s in $WORK/data"
	line=$("$WORK/fsync_rate" "$WORK/data" "$FSYNC_SECONDS")
	rate=$(sed -n 's/.*fdatasync_ops_per_sec=\([0-9.]*\).*/\1/p' <<<"$line")
	[ -n "$rate" ] || die "fsync_rate printed: $line"
	log "$line"
	FSYNC_SAMPLES="${FSYNC_SAMPLES:+$FSYNC_SAMPLES, }$rate"
	if awk -v a="$rate" -v b="$FSYNC_RATE" 'BEGIN{exit !(a > b)}'; then
		FSYNC_RATE=$rate
		FSYNC_P50=$(sed -n 's/.*p50_us=\([0-9]*\).*/\1/p' <<<"$line")
	fi
}
measure_fsync

# ---- 2. allowd, seeded ------------------------------------------------------
# A per-credential request limit (Cloudflare's 1200 per 5 minutes) would turn
# a load test into a 429 test: switch it off where this allowd has one.
# info: the store's writer reports its group commits (jobs per commit, time) when it stops
ALLOWD_ARGS=(--threads "$ALLOWD_THREADS" --access-log false --log-level info)
"$ALLOWD_BIN" --help 2>&1 | grep -q -- '--rate-limit ' && ALLOWD_ARGS+=(--rate-limit 0)
ALLOWD_ARGS+=(${EXTRA_ARGS[@]+"${EXTRA_ARGS[@]}"})
log "starting allowd ${ALLOWD_ARGS[*]}"
"$ALLOWD_BIN" --listen 127.0.0.1:0 --data-dir "$WORK/data" --notify-fd 3 "${ALLOWD_ARGS[@]}" \
	3>"$WORK/allowd.port" >"$WORK/allowd.log" 2>&1 &
ALLOWD_PID=$!
for ((i = 0; i < 600; i++)); do
	grep -q . "$WORK/allowd.port" 2>/dev/null && break
	kill -0 "$ALLOWD_PID" 2>/dev/null || { cat "$WORK/allowd.log" >&2; die "allowd exited"; }
	sleep 0.05
done
PORT=$(head -n1 "$WORK/allowd.port" | tr -dc 0-9)
[ -n "$PORT" ] || die "allowd did not report its port"
CREDS="$WORK/data/credentials.json"
json_str() { sed -n "s/.*\"$1\"[[:space:]]*:[[:space:]]*\"\([^\"]*\)\".*/\1/p" "$CREDS" | head -n1; }
ACCOUNT=$(json_str account_id)
TOKEN=$(json_str api_token)
[ -n "$ACCOUNT" ] && [ -n "$TOKEN" ] || die "cannot read account_id/api_token from $CREDS"
AUTH="Authorization: Bearer $TOKEN"
BASE="http://127.0.0.1:$PORT/client/v4/accounts/$ACCOUNT/email-security/settings/allow_policies"
log "allowd pid $ALLOWD_PID on 127.0.0.1:$PORT, account $ACCOUNT"

log "seeding $POLICIES policies in $((POLICIES / 1000)) batches of 1000"
seed_start=$(date +%s.%N)
for ((b = 0; b < POLICIES / 1000; b++)); do
	code=$(awk -v first=$((b * 1000)) -v n=1000 -f "$ROOT/bench/seed_batch.awk" |
		curl -sS -o "$WORK/batch.out" -w '%{http_code}' -X POST -H "$AUTH" \
			-H 'Content-Type: application/json' --data-binary @- "$BASE/batch")
	[ "$code" = 200 ] || die "batch $b: HTTP $code: $(head -c 600 "$WORK/batch.out")"
done
seed_secs=$(awk -v a="$seed_start" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b - a}')

total_count() { # prints result_info.total_count of the unfiltered list
	curl -sS -H "$AUTH" "$BASE?per_page=1" | grep -o '"total_count":[0-9]*' | cut -d: -f2
}
SEEDED=$(total_count)
[ "$SEEDED" = "$POLICIES" ] || die "expected $POLICIES policies after seeding, list says ${SEEDED:-nothing}"
log "seeded $SEEDED policies in ${seed_secs}s ($(awk -v n="$POLICIES" -v s="$seed_secs" 'BEGIN{printf "%.0f", n / s}') policies/s)"

# The policy for GET one: one from the middle of the id range.
ONE_ID=$(curl -sS -H "$AUTH" "$BASE?per_page=1&page=$((POLICIES / 2))" |
	grep -o '"id":[0-9]*' | head -n1 | cut -d: -f2)
[ -n "$ONE_ID" ] || die "cannot find a policy id to GET"
ONE_URL="$BASE/$ONE_ID"
LIST_URL="$BASE?$LIST_QUERY"

mkdir -p "$WORK/www"
fetch() { # url, file: the exact body allowd answers, which must be a 200
	local code
	code=$(curl -sS -o "$2" -w '%{http_code}' -H "$AUTH" "$1")
	[ "$code" = 200 ] || die "GET $1: HTTP $code: $(head -c 600 "$2")"
}
fetch "$ONE_URL" "$WORK/www/policy.json"
fetch "$LIST_URL" "$WORK/www/list.json"
LIST_COUNT=$(grep -o '"count":[0-9]*' "$WORK/www/list.json" | head -n1 | cut -d: -f2)
LIST_TOTAL=$(grep -o '"total_count":[0-9]*' "$WORK/www/list.json" | head -n1 | cut -d: -f2)
ONE_BYTES=$(wc -c <"$WORK/www/policy.json")
LIST_BYTES=$(wc -c <"$WORK/www/list.json")
log "GET one: id $ONE_ID, $ONE_BYTES bytes; list page ($LIST_QUERY): $LIST_COUNT of $LIST_TOTAL, $LIST_BYTES bytes"

if want one || want list; then
# ---- nginx (2 workers) serving those bodies -----------------------------
chmod 755 "$WORK" "$WORK/www"
chmod 644 "$WORK/www/"*.json
mkdir -p "$WORK/nginx/tmp"
start_nginx() { # port: 0 when it serves, 1 when it did not come up
	local port=$1 user_line="" i
	# As root the workers would drop to "nobody"; keep them as this user.
	[ "$(id -u)" = 0 ] && user_line="user root root;"
	cat >"$WORK/nginx/nginx.conf" <<EOF
$user_line
worker_processes 2;
daemon off;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    types { application/json json; }
    default_type application/json;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_timeout 65;
    keepalive_requests 1000000;
    client_body_temp_path $WORK/nginx/tmp/body;
    proxy_temp_path $WORK/nginx/tmp/proxy;
    fastcgi_temp_path $WORK/nginx/tmp/fastcgi;
    uwsgi_temp_path $WORK/nginx/tmp/uwsgi;
    scgi_temp_path $WORK/nginx/tmp/scgi;
    server {
        listen 127.0.0.1:$port;
        root $WORK/www;
        location / { }
    }
}
EOF
	nginx -e "$WORK/nginx/error.log" -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" \
		>>"$WORK/nginx/stdout.log" 2>&1 &
	NGINX_PID=$!
	for ((i = 0; i < 100; i++)); do
		kill -0 "$NGINX_PID" 2>/dev/null || { wait "$NGINX_PID" 2>/dev/null || true; NGINX_PID=""; return 1; }
		curl -sf -o /dev/null "http://127.0.0.1:$port/policy.json" 2>/dev/null && return 0
		sleep 0.05
	done
	stop_pid "$NGINX_PID" QUIT
	NGINX_PID=""
	return 1
}
NGINX_PORT=""
for ((attempt = 0; attempt < 20; attempt++)); do
	p=$((20000 + RANDOM % 40000))
	if start_nginx "$p"; then NGINX_PORT=$p; break; fi
done
[ -n "$NGINX_PORT" ] || { cat "$WORK/nginx/error.log" >&2 2>/dev/null || true; die "nginx did not start"; }
NGINX_ONE_URL="http://127.0.0.1:$NGINX_PORT/policy.json"
NGINX_LIST_URL="http://127.0.0.1:$NGINX_PORT/list.json"
cmp -s <(curl -sS "$NGINX_ONE_URL") "$WORK/www/policy.json" || die "nginx does not serve policy.json verbatim"
log "nginx pid $NGINX_PID on 127.0.0.1:$NGINX_PORT (2 workers)"
fi

# ---- 3. wrk runs ------------------------------------------------------------
# CPU accounting, because a shared 2-CPU machine makes a noisy bench: for each
# run, the CPU used by the server under test, by wrk, and by everything else
# ("other": processes this script did not start).  Before each run we wait
# (up to BENCH_QUIET_WAIT seconds) for a second in which others use less than
# BENCH_QUIET_PCT % of the machine.
HZ=$(getconf CLK_TCK 2>/dev/null || echo 100)
NCPU=$(nproc)
QUIET_WAIT=${BENCH_QUIET_WAIT:-15}
QUIET_PCT=${BENCH_QUIET_PCT:-15}
declare -A CPU_SERVER CPU_WRK CPU_OTHER
cpu_busy() { awk '/^cpu /{print $2 + $3 + $4 + $7 + $8 + $9; exit}' /proc/stat; }
proc_cpu() { # jiffies used so far by these processes (all their threads)
	local p sum=0 v
	for p in "$@"; do
		v=$(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null) && sum=$((sum + v))
	done
	echo "$sum"
}
nginx_cpu() { # the master and its workers
	local workers
	[ -n "$NGINX_PID" ] || { echo 0; return; }
	mapfile -t workers < <(pgrep -P "$NGINX_PID" 2>/dev/null || true)
	proc_cpu "$NGINX_PID" "${workers[@]}"
}
ours_cpu() { echo $(($(proc_cpu "$ALLOWD_PID") + $(nginx_cpu))); }
wait_quiet() {
	local i b0 o0 pct
	for ((i = 0; i < QUIET_WAIT; i++)); do
		b0=$(cpu_busy)
		o0=$(ours_cpu)
		sleep 1
		pct=$(( ($(cpu_busy) - b0 - ($(ours_cpu) - o0)) * 100 / (HZ * NCPU) ))
		((pct < QUIET_PCT)) && return 0
		((i == 0)) && log "other processes use ${pct}% of the CPUs; waiting up to ${QUIET_WAIT}s for quiet"
	done
	log "WARNING: still ${pct}% busy with other processes: figures will be low and noisy"
}

# wrk_run name url [wrk options...] [-- script args...]: warm-up, then the measured run into $WORK/wrk.name
wrk_run() {
	local name=$1 url=$2 opts=() sargs=()
	shift 2
	while (($#)); do # wrk wants its options before the URL, script arguments after
		if [ "$1" = -- ]; then sargs=("$@"); break; fi
		opts+=("$1")
		shift
	done
	if ((WARMUP > 0)); then
		# A script argument gets a suffix, so warm-up creates never collide with measured ones.
		wrk -t"$WRK_THREADS" -c"$CONNS" -d"${WARMUP}s" -H "$AUTH" ${opts[@]+"${opts[@]}"} "$url" \
			${sargs[@]+"${sargs[@]}" warmup} >/dev/null 2>&1 &
		WRK_PID=$!
		wait "$WRK_PID" || true
		WRK_PID=""
	fi
	[ "$name" = allowd_create ] && BEFORE=$(total_count)
	wait_quiet
	log "wrk $name: ${DURATION}s, $CONNS connections, $WRK_THREADS threads"
	if [ "$name" = allowd_create ] && [ "$COUNT_SYNCS" = 1 ]; then
		perf stat -x, -e syscalls:sys_enter_fdatasync,syscalls:sys_enter_fsync -p "$ALLOWD_PID" \
			-o "$WORK/syncs.csv" >/dev/null 2>&1 &
		STAT_PID=$!
	fi
	if [ "$PROFILE" = 1 ] && [[ $name == allowd* ]] && command -v perf >/dev/null 2>&1; then
		perf record -F 999 -g -p "$ALLOWD_PID" -o "$WORK/perf.$name.data" >/dev/null 2>&1 &
		PERF_PID=$!
	fi
	local t0 b0 a0 n0 t1 rc=0
	t0=$(date +%s.%N) b0=$(cpu_busy) a0=$(proc_cpu "$ALLOWD_PID") n0=$(nginx_cpu)
	local TIMEFORMAT='%U %S'
	# In the background and waited for, so that a signal to this script is
	# handled (and everything cleaned up) at once rather than after wrk ends.
	{ time wrk -t"$WRK_THREADS" -c"$CONNS" -d"${DURATION}s" --timeout 10s --latency -H "$AUTH" \
		${opts[@]+"${opts[@]}"} "$url" ${sargs[@]+"${sargs[@]}"} >"$WORK/wrk.$name" 2>&1; } \
		2>"$WORK/time.$name" &
	WRK_PID=$!
	wait "$WRK_PID" || rc=$?
	WRK_PID=""
	((rc == 0)) || log "wrk $name exited $rc"
	local da=$(($(proc_cpu "$ALLOWD_PID") - a0)) dn=$(($(nginx_cpu) - n0)) db=$(($(cpu_busy) - b0))
	t1=$(date +%s.%N)
	local dw
	dw=$(awk -v hz="$HZ" '{printf "%d", ($1 + $2) * hz}' "$WORK/time.$name" 2>/dev/null || echo 0)
	# in CPUs (1.00 = one core busy for the whole run)
	CPU_SERVER[$name]=$(awk -v j="$([[ $name == nginx* ]] && echo "$dn" || echo "$da")" -v hz="$HZ" -v a="$t0" -v b="$t1" 'BEGIN{printf "%.3f", j / hz / (b - a)}')
	CPU_WRK[$name]=$(awk -v j="$dw" -v hz="$HZ" -v a="$t0" -v b="$t1" 'BEGIN{printf "%.3f", j / hz / (b - a)}')
	CPU_OTHER[$name]=$(awk -v j="$((db - da - dn - dw))" -v hz="$HZ" -v a="$t0" -v b="$t1" 'BEGIN{o = j / hz / (b - a); printf "%.3f", (o < 0 ? 0 : o)}')
	if [ -n "$PERF_PID" ]; then
		stop_pid "$PERF_PID" INT
		PERF_PID=""
	fi
	if [ -n "$STAT_PID" ]; then
		stop_pid "$STAT_PID" INT
		STAT_PID=""
	fi
}

# How many commits the creates shared: count allowd's fdatasync/fsync calls
# with perf's syscall tracepoints, when this perf and kernel allow it.
COUNT_SYNCS=0
if command -v perf >/dev/null 2>&1 &&
	perf stat -e syscalls:sys_enter_fdatasync -- true >/dev/null 2>&1; then
	COUNT_SYNCS=1
fi

# Fields of one wrk output: req/s, p99 in ms, requests, non-2xx, socket errors.
wrk_rps() { awk '/^Requests\/sec:/{print $2}' "$WORK/wrk.$1"; }
wrk_p99() { wrk_pct "$1" 99%; }
wrk_pct() { # run, "50%" | "75%" | "90%" | "99%": that latency percentile in ms
	awk -v pct="$2" '$1 == pct {
		v = $2
		if (v ~ /us$/) { sub(/us$/, "", v); v = v / 1000 }
		else if (v ~ /ms$/) { sub(/ms$/, "", v) }
		else if (v ~ /m$/) { sub(/m$/, "", v); v = v * 60000 }
		else if (v ~ /s$/) { sub(/s$/, "", v); v = v * 1000 }
		printf "%.2f", v }' "$WORK/wrk.$1"
}
wrk_reqs() { awk '/requests in/{print $1}' "$WORK/wrk.$1"; }
wrk_non2xx() { awk '/Non-2xx or 3xx responses:/{print $NF} END{}' "$WORK/wrk.$1" | tail -n1 | grep . || echo 0; }
wrk_sockerr() {
	awk '/Socket errors:/{gsub(/,/, ""); print $4 + $6 + $8 + $10}' "$WORK/wrk.$1" | grep . || echo 0
}

RUNS=()
if want one; then
	wrk_run nginx_one "$NGINX_ONE_URL"
	wrk_run allowd_one "$ONE_URL"
	RUNS+=(nginx_one allowd_one)
fi
if want list; then
	wrk_run nginx_list "$NGINX_LIST_URL"
	wrk_run allowd_list "$LIST_URL"
	RUNS+=(nginx_list allowd_list)
fi
BEFORE=$POLICIES
AFTER=$POLICIES
if want create; then
	measure_fsync # second sample, after the read runs and just before the writes
	RUN_TAG="r$(date +%s)$$"
	wrk_run allowd_create "$BASE" -s "$ROOT/bench/create.lua" -- "$RUN_TAG"
	RUNS+=(allowd_create)
	# Every acknowledged create must be in the store.
	AFTER=$(total_count)
fi
CREATED=$((AFTER - BEFORE))
# Stopping allowd makes its writer report the group commits of the whole run
# (seeding included).
stop_pid "$ALLOWD_PID" TERM
ALLOWD_PID=""
WRITER_STATS=$(sed -n 's/.*store: writer: //p' "$WORK/allowd.log" | tail -n1)

# ---- 4. report --------------------------------------------------------------
for n in "${RUNS[@]}"; do
	[ -n "$(wrk_rps "$n")" ] || { cat "$WORK/wrk.$n" >&2; die "no wrk figures for $n"; }
done
calc() { awk "BEGIN{ printf \"%.2f\", $* }"; }
# verdict CONDITION RUN...: PASS/MISS, or INVALID when a run had errors
# (more than 0.1% non-2xx or socket errors: it measured something else).
verdict() {
	local cond=$1 n
	shift
	for n in "$@"; do
		if awk -v e="$(($(wrk_non2xx "$n") + $(wrk_sockerr "$n")))" -v r="$(wrk_reqs "$n")" \
			'BEGIN{ exit !(e > r / 1000) }'; then
			echo INVALID
			return
		fi
	done
	awk "BEGIN{ exit !($cond) }" && echo PASS || echo MISS
}

V_ONE="" V_LIST="" V_CREATE="" C_REQS=0 C_BAD=0
if want one; then
	ONE_RATIO=$(calc "$(wrk_rps allowd_one) / $(wrk_rps nginx_one)")
	V_ONE=$(verdict "$ONE_RATIO >= 1.0" allowd_one nginx_one)
fi
if want list; then
	LIST_RATIO=$(calc "$(wrk_rps allowd_list) / $(wrk_rps nginx_list)")
	LIST_P99=$(wrk_p99 allowd_list)
	V_LIST=$(verdict "$LIST_P99 <= 10" allowd_list)
fi
if want create; then
	# Durable creates/s: only 2xx answers count (a 4xx was not a write).
	C_REQS=$(wrk_reqs allowd_create)
	C_BAD=$(wrk_non2xx allowd_create)
	CREATE_RPS=$(calc "$(wrk_rps allowd_create) * ($C_REQS - $C_BAD) / ($C_REQS > 0 ? $C_REQS : 1)")
	CREATE_RATIO=$(calc "$CREATE_RPS / $FSYNC_RATE")
	V_CREATE=$(verdict "$CREATE_RATIO >= 3" allowd_create)
fi

# Commits during the create run (fdatasync + fsync calls by allowd).
SYNCS=""
if [ -s "$WORK/syncs.csv" ]; then
	SYNCS=$(awk -F, '/sys_enter_f(data)?sync/ && $1 ~ /^[0-9]+$/ {n += $1} END{ if (NR) print n + 0 }' "$WORK/syncs.csv")
fi

row() { printf '| %-14s | %10s | %7s | %8s | %-9s | %11s | %s\n' "$@"; }
echo
echo "allowd benchmark  $(date -u +%Y-%m-%dT%H:%MZ)  host $(hostname), $(nproc) CPUs, $(uname -r)," \
	"load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "wrk: $CONNS keep-alive connections, $WRK_THREADS threads, ${DURATION}s per run (+${WARMUP}s warm-up)"
if want one || want list; then
	echo "allowd $(basename "$ALLOWD_BIN") ${ALLOWD_ARGS[*]}; nginx $(nginx -v 2>&1 | sed 's/.*nginx\///'), 2 workers, access_log off"
else
	echo "allowd $(basename "$ALLOWD_BIN") ${ALLOWD_ARGS[*]}; BENCH_ONLY=$ONLY"
fi
echo "data: $POLICIES policies (seeded by batch in ${seed_secs}s)"
echo "GET one: /allow_policies/$ONE_ID ($ONE_BYTES bytes); list: ?$LIST_QUERY ($LIST_COUNT of $LIST_TOTAL matching, $LIST_BYTES bytes)"
echo "disk: fdatasync ${FSYNC_RATE}/s (best of samples: $FSYNC_SAMPLES; p50 ${FSYNC_P50} us; 4 KiB pwrite + fdatasync, one at a time, in $TMPBASE)"
echo
# "server CPU us/req" (server CPU time / requests answered) is the figure
# least disturbed by other load on a shared machine.
row "run" "req/s" "p50 ms" "p99 ms" "errors" "server CPU" "CPUs busy: server / wrk / others"
row "" "" "" "" "n2xx/sock" "us/req" ""
row "--------------" "----------" "-------" "--------" "---------" "-----------" "--------------------------------"
for n in "${RUNS[@]}"; do
	row "$n" "$(wrk_rps "$n")" "$(wrk_pct "$n" 50%)" "$(wrk_p99 "$n")" "$(wrk_non2xx "$n")/$(wrk_sockerr "$n")" \
		"$(calc "${CPU_SERVER[$n]} * 1000000 / $(wrk_rps "$n")")" \
		"${CPU_SERVER[$n]} / ${CPU_WRK[$n]} / ${CPU_OTHER[$n]}"
done
NOISY=""
for n in "${RUNS[@]}"; do
	awk -v o="${CPU_OTHER[$n]}" 'BEGIN{exit !(o > 0.2)}' && NOISY="$NOISY $n"
done
[ -z "$NOISY" ] || echo "NOTE: other processes used > 0.2 CPU during:$NOISY (shared machine): those figures are pessimistic"
echo
printf '| %-40s | %-34s | %s\n' "target (issue 2)" "measured" "verdict"
printf '| %-40s | %-34s | %s\n' "----------------------------------------" "----------------------------------" "-------"
want one && printf '| %-40s | %-34s | %s\n' "GET one: allowd req/s >= 1.0 x nginx" "${ONE_RATIO} x" "$V_ONE"
want list && printf '| %-40s | %-34s | %s\n' "list page: allowd p99 <= 10 ms" "${LIST_P99} ms" "$V_LIST"
want create && printf '| %-40s | %-34s | %s\n' "durable creates/s >= 3 x fdatasync/s" \
	"${CREATE_RPS}/s = ${CREATE_RATIO} x ${FSYNC_RATE}/s" "$V_CREATE"
want list && printf '| %-40s | %-34s | %s\n' "(list page: allowd req/s / nginx)" "${LIST_RATIO} x" "info"
echo
if [ -n "$SYNCS" ] && ((SYNCS > 0)); then
	echo "group commit: allowd called fdatasync/fsync $SYNCS times during the create run:" \
		"$(calc "$SYNCS / $DURATION")/s, $(calc "($C_REQS - $C_BAD) / $SYNCS") creates per sync"
fi
[ -z "$WRITER_STATS" ] || echo "store writer (whole run, seeding included): $WRITER_STATS"
if want create; then
	echo "durability check: wrk counted $C_REQS create answers ($C_BAD non-2xx); the list grew from" \
		"$BEFORE to $AFTER (+$CREATED; a few more than answered is normal: in flight when wrk stopped)"
	if ((CREATED < C_REQS - C_BAD)); then
		echo "WARNING: fewer policies in the store than acknowledged creates"
	fi
fi
case "$V_ONE$V_LIST$V_CREATE" in
*INVALID*) echo "INVALID: a run answered errors; see the errors column (rate limit? auth?)" ;;
esac

if [ "$PROFILE" = 1 ] && command -v perf >/dev/null 2>&1; then
	for n in allowd_one allowd_list allowd_create; do
		[ -s "$WORK/perf.$n.data" ] || continue
		echo
		echo "---- perf: top symbols in allowd during $n (self %) ----"
		perf report -i "$WORK/perf.$n.data" --no-children --sort dso,symbol --stdio 2>/dev/null |
			grep -E '^ +[0-9]' | head -n 25 || true
	done
fi
exit 0
