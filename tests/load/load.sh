#!/usr/bin/env bash
# tests/load/load.sh - the load test of issue 5: wrk drives a mixed workload
# (tests/load/mixed.lua: 70 % reads, 20 % creates/edits/deletes, 10 %
# evaluations) against a fresh allowd seeded with a few thousand policies,
# and the run fails on any violation:
#
#   - an unexpected answer (anything but 200/201: the workload never asks for
#     a 4xx, so a 400 is a failure too) or a socket error or timeout;
#   - server memory (VmRSS) under load at the end of the run more than
#     LOAD_MAX_RSS_GROWTH % above the same measure early in the run, after
#     the warm-up (see "VmRSS under load" below for the windows);
#   - a descriptor leak: at rest after the run the server holds more open
#     descriptors than at rest after the warm-up, or its sockets do not
#     return to the listening one;
#   - the server dies, stops answering, fails SIGTERM or logs a sanitizer report.
#
#   usage: tests/load/load.sh DURATION CONNECTIONS      (seconds, wrk connections)
#          make stress   runs   tests/load/load.sh 300 256
#          ctest -L stress runs tests/load/load.sh 20 64 (LOAD_MAX_RSS_GROWTH=25)
#
# Knobs (environment):
#   ALLOWD_BIN=build/allowd    the server under test
#   LOAD_POLICIES=3000         policies seeded (a multiple of 1000)
#   LOAD_WARMUP=...            warm-up seconds (default: DURATION / 5, within 5..60)
#   LOAD_MAX_RSS_GROWTH=10     allowed growth of VmRSS, in percent
#   LOAD_WRK_THREADS=...       wrk threads (default: CPUs, at most 4)
#   LOAD_ALLOWD_ARGS="..."     extra allowd flags
#   LOAD_TMPDIR=$TMPDIR        where the data dir lives
#   LOAD_KEEP=1                keep the run's files (kept anyway when the run fails)
# Exit status: 0 pass, 1 a violation, 2 cannot run (usage, missing tools, no server).
# Every process it starts is stopped on exit, and its temp dir removed unless
# the run failed (exit 1) or LOAD_KEEP is set.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
HERE="$ROOT/tests/load"

usage() {
	echo "usage: $0 DURATION CONNECTIONS   (seconds, wrk connections)" >&2
	exit 2
}
[ $# -eq 2 ] || usage
DURATION=$1
CONNS=$2
[[ $DURATION =~ ^[0-9]+$ && $CONNS =~ ^[0-9]+$ ]] && ((DURATION > 0 && CONNS > 0)) || usage

ALLOWD_BIN=${ALLOWD_BIN:-$ROOT/build/allowd}
POLICIES=${LOAD_POLICIES:-3000}
MAX_GROWTH=${LOAD_MAX_RSS_GROWTH:-10}
if [ -n "${LOAD_WARMUP:-}" ]; then
	WARMUP=$LOAD_WARMUP
else
	WARMUP=$((DURATION / 5))
	((WARMUP < 5)) && WARMUP=5
	((WARMUP > 60)) && WARMUP=60
fi
NCPU=$(nproc 2>/dev/null || echo 2)
WRK_THREADS=${LOAD_WRK_THREADS:-$((NCPU < 4 ? NCPU : 4))}
((WRK_THREADS > CONNS)) && WRK_THREADS=$CONNS
read -r -a EXTRA_ARGS <<<"${LOAD_ALLOWD_ARGS:-}"

log() { printf '[load %s] %s\n' "$(date +%T)" "$*" >&2; }
die() {
	log "CANNOT RUN: $*"
	exit 2
}

((POLICIES % 1000 == 0 && POLICIES >= 1000)) || die "LOAD_POLICIES must be a multiple of 1000"
if ! command -v wrk >/dev/null 2>&1 || ! command -v curl >/dev/null 2>&1; then
	log "wrk or curl missing: running scripts/deps.sh"
	bash "$ROOT/scripts/deps.sh" >&2 || true
fi
for cmd in wrk curl awk; do
	command -v "$cmd" >/dev/null 2>&1 || die "$cmd not found"
done
[ -x "$ALLOWD_BIN" ] || die "no allowd binary at $ALLOWD_BIN (build it, or set ALLOWD_BIN)"

# Sanitizer builds keep freed memory in quarantine: their RSS grows by design.
SANITIZED=""
grep -qa -m1 -e __asan_init -e __tsan_init -e __msan_init "$ALLOWD_BIN" && SANITIZED=1

# Both wrk and allowd need a descriptor per connection.
want_fds=$((CONNS * 2 + 1024))
if (($(ulimit -Sn) < want_fds)); then
	ulimit -Sn "$(($(ulimit -Hn) < want_fds ? $(ulimit -Hn) : want_fds))" 2>/dev/null || true
fi

# ---- temp dir, cleanup ------------------------------------------------------
TMPBASE=${LOAD_TMPDIR:-${TMPDIR:-/tmp}}
mkdir -p "$TMPBASE"
WORK=$(mktemp -d "$TMPBASE/allowd-load.XXXXXX")
ALLOWD_PID=""
SAMPLER_PID=""
WRK_PID=""

stop_pid() { # pid signal: signal it, wait up to 10 s, then SIGKILL
	local pid=$1 sig=$2 i
	[ -n "$pid" ] || return 0
	kill -0 "$pid" 2>/dev/null || return 0
	kill "-$sig" "$pid" 2>/dev/null || true
	for ((i = 0; i < 100; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}

cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	stop_pid "$WRK_PID" TERM
	stop_pid "$SAMPLER_PID" TERM
	stop_pid "$ALLOWD_PID" KILL
	if ((rc != 0)) && [ -s "$WORK/allowd.log" ]; then
		log "last lines of the server's log:"
		tail -n 30 "$WORK/allowd.log" >&2 || true
	fi
	if ((rc == 1)) || [ -n "${LOAD_KEEP:-}" ]; then
		log "kept the run's files (wrk output, samples, server log) in $WORK"
	else
		rm -rf "$WORK"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---- allowd ---------------------------------------------------------------------
MAX_CONN=$((CONNS + 64 > 1024 ? CONNS + 64 : 1024))
ALLOWD_ARGS=(--rate-limit 0 --access-log false --log-level warn --max-connections "$MAX_CONN")
ALLOWD_ARGS+=(${EXTRA_ARGS[@]+"${EXTRA_ARGS[@]}"})
log "starting $ALLOWD_BIN ${ALLOWD_ARGS[*]}${SANITIZED:+ (sanitizer build)}"
mkdir -p "$WORK/data"
"$ALLOWD_BIN" --listen 127.0.0.1:0 --data-dir "$WORK/data" --notify-fd 3 "${ALLOWD_ARGS[@]}" \
	3>"$WORK/allowd.port" >"$WORK/allowd.log" 2>&1 &
ALLOWD_PID=$!
for ((i = 0; i < 1200; i++)); do
	grep -q . "$WORK/allowd.port" 2>/dev/null && break
	kill -0 "$ALLOWD_PID" 2>/dev/null || die "allowd exited at start"
	sleep 0.05
done
PORT=$(head -n1 "$WORK/allowd.port" | tr -dc 0-9)
[ -n "$PORT" ] || die "allowd did not report its port"
CREDS="$WORK/data/credentials.json"
json_str() { sed -n "s/.*\"$1\"[[:space:]]*:[[:space:]]*\"\([^\"]*\)\".*/\1/p" "$CREDS" | head -n1; }
ACCOUNT=$(json_str account_id)
TOKEN=$(json_str api_token)
[ -n "$ACCOUNT" ] && [ -n "$TOKEN" ] || die "cannot read the credentials in $CREDS"
AUTH="Authorization: Bearer $TOKEN"
URL="http://127.0.0.1:$PORT"
BASE="$URL/client/v4/accounts/$ACCOUNT/email-security/settings/allow_policies"
log "allowd pid $ALLOWD_PID on 127.0.0.1:$PORT"

# ---- the server from /proc ------------------------------------------------------
rss_kb() { awk '/^VmRSS:/{print $2}' "/proc/$ALLOWD_PID/status" 2>/dev/null || echo 0; }
fd_count() { find "/proc/$ALLOWD_PID/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l; }
socket_count() { find "/proc/$ALLOWD_PID/fd" -mindepth 1 -maxdepth 1 -lname 'socket:*' 2>/dev/null | wc -l; }
db_fd_count() { find "/proc/$ALLOWD_PID/fd" -mindepth 1 -maxdepth 1 -lname "$WORK/data/allowd.db*" 2>/dev/null | wc -l; }
task_count() { find "/proc/$ALLOWD_PID/task" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l; }
fd_list() { # what each descriptor points at, sockets and pipes by kind only
	find "/proc/$ALLOWD_PID/fd" -mindepth 1 -maxdepth 1 -printf '%l\n' 2>/dev/null |
		sed 's/:\[[0-9]*\]$//' | sort | uniq -c
}
now_ms() { date +%s%3N; }
REST_SOCKETS=$(socket_count) # the listening socket(s), before any client

# Waits (up to 30 s) until the server has closed every client connection.
wait_at_rest() {
	local i
	for ((i = 0; i < 300; i++)); do
		(($(socket_count) <= REST_SOCKETS)) && return 0
		sleep 0.1
	done
	return 1
}

# ---- seed ---------------------------------------------------------------------------
log "seeding $POLICIES policies"
for ((b = 0; b < POLICIES / 1000; b++)); do
	code=$(awk -v first=$((b * 1000)) -v n=1000 -f "$HERE/seed.awk" |
		curl -sS -o "$WORK/batch.out" -w '%{http_code}' -X POST -H "$AUTH" \
			-H 'Content-Type: application/json' --data-binary @- "$BASE/batch")
	[ "$code" = 200 ] || die "seed batch $b: HTTP $code: $(head -c 600 "$WORK/batch.out")"
done
total_count() {
	curl -sS -H "$AUTH" "$BASE?per_page=1" | grep -o '"total_count":[0-9]*' | cut -d: -f2
}
[ "$(total_count)" = "$POLICIES" ] || die "the list does not hold the $POLICIES seeded policies"
# mixed.lua relies on policy i of seed.awk having id i + 1
for id in 1 "$POLICIES"; do
	want=$(awk -v first=$((id - 1)) -v n=1 -f "$HERE/seed.awk" | grep -o '"pattern":"[^"]*"')
	curl -sS -H "$AUTH" "$BASE/$id" | grep -qF "$want" || die "policy $id is not seed $((id - 1))"
done

# ---- sampler: VmRSS, descriptors, sockets once a second ------------------------------
(
	while kill -0 "$ALLOWD_PID" 2>/dev/null; do
		echo "$(now_ms) $(rss_kb) $(fd_count) $(socket_count)"
		sleep 1
	done
) >"$WORK/samples" 2>/dev/null &
SAMPLER_PID=$!

run_wrk() { # name seconds: the mixed workload into $WORK/wrk.name
	local name=$1 secs=$2 rc=0
	wrk -t"$WRK_THREADS" -c"$CONNS" -d"${secs}s" --timeout 10s --latency -H "$AUTH" \
		-s "$HERE/mixed.lua" "$URL" -- "$ACCOUNT" "$RUN_TAG-$name" "$POLICIES" \
		>"$WORK/wrk.$name" 2>&1 &
	WRK_PID=$!
	wait "$WRK_PID" || rc=$?
	WRK_PID=""
	((rc == 0)) || die "wrk $name exited $rc: $(tail -n 5 "$WORK/wrk.$name")"
	grep -q '^LOAD requests=' "$WORK/wrk.$name" || die "wrk $name printed no figures"
}
field() { # run key: a field of the LOAD line mixed.lua printed for that run
	awk -v k="$2" '/^LOAD requests=/ { for (i = 2; i <= NF; i++) { split($i, a, "=")
		if (a[1] == k) { print a[2]; exit } } }' "$WORK/wrk.$1"
}

RUN_TAG="r$(date +%s)$$"
log "warm-up: ${WARMUP}s, $CONNS connections, $WRK_THREADS wrk threads"
WARM_START=$(now_ms)
run_wrk warmup "$WARMUP"
WARM_END=$(now_ms)
wait_at_rest || die "the server still holds client sockets 30 s after the warm-up"
FDS_BEFORE=$(fd_count)
DB_FDS_BEFORE=$(db_fd_count)
fd_list >"$WORK/fds.before"
RSS_REST_BEFORE=$(rss_kb)

log "measured run: ${DURATION}s, $CONNS connections, $WRK_THREADS wrk threads"
RUN_START=$(now_ms)
run_wrk run "$DURATION"
RUN_END=$(now_ms)
kill -0 "$ALLOWD_PID" 2>/dev/null || { log "allowd died during the run"; exit 1; }

violations=()
AT_REST=1
wait_at_rest || AT_REST=""
FDS_AFTER=$(fd_count)
DB_FDS_AFTER=$(db_fd_count)
TASKS=$(task_count)
SOCKETS_AFTER=$(socket_count)
fd_list >"$WORK/fds.after"
RSS_REST_AFTER=$(rss_kb)
stop_pid "$SAMPLER_PID" TERM
SAMPLER_PID=""

# VmRSS under load, as the highest sample of a window (RSS under load moves
# by a few MB between seconds).  The baseline is taken early in the measured
# run, once its connections are up, not during the warm-up: each new set of
# connections gets fresh per-connection memory (libmicrohttpd's pools), and
# comparing different connection sets would measure that, not growth.
#   after warm-up: [run start + 2 s, + W]      at the end: the last W
# with W = a quarter of the run, at most 30 s.
window_max() { # from_ms to_ms: highest VmRSS sampled in [from, to], else the last sample before
	awk -v a="$1" -v b="$2" '$1 <= b { last = $2 } $1 >= a && $1 <= b && $2 > m { m = $2 }
		END { print (m > 0 ? m : last + 0) }' "$WORK/samples"
}
W=$(((RUN_END - RUN_START) / 4))
((W > 30000)) && W=30000
RSS_WARMUP=$(window_max "$((WARM_END - W))" "$WARM_END")
RSS_WARM=$(window_max "$((RUN_START + 2000))" "$((RUN_START + 2000 + W))")
RSS_END=$(window_max "$((RUN_END - W))" "$RUN_END")
RSS_PEAK=$(window_max "$RUN_START" "$RUN_END")
FDS_PEAK=$(awk -v a="$RUN_START" -v b="$RUN_END" '$1 >= a && $1 <= b && $3 > m {m = $3} END{print m + 0}' "$WORK/samples")
GROWTH=$(awk -v a="$RSS_WARM" -v b="$RSS_END" 'BEGIN{ if (a > 0) printf "%.1f", (b - a) * 100 / a; else print "nan" }')

# ---- the server still serves, and stops cleanly --------------------------------------
code=$(curl -sS -o /dev/null -w '%{http_code}' "$URL/healthz" || true)
[ "$code" = 200 ] || violations+=("/healthz answered HTTP $code after the run")
TOTAL_AFTER=$(total_count || true)
[ -n "$TOTAL_AFTER" ] && ((TOTAL_AFTER >= POLICIES)) ||
	violations+=("the list answers ${TOTAL_AFTER:-nothing} policies after the run, fewer than the $POLICIES seeded")

# ---- verdicts ------------------------------------------------------------------------------
REQS=$(field run requests)
UNEXP=$(field run unexpected)
SOCKERR=$(($(field run connect_errors) + $(field run read_errors) + $(field run write_errors) +
	$(field run timeouts)))
WARM_UNEXP=$(($(field warmup unexpected) + $(field warmup connect_errors) +
	$(field warmup read_errors) + $(field warmup write_errors) + $(field warmup timeouts)))
((REQS > 0)) || violations+=("no requests were answered")
((UNEXP == 0)) || violations+=("$UNEXP unexpected answers: $(sed -n 's/^LOAD first_unexpected=//p' "$WORK/wrk.run" | cut -c1-300)")
((SOCKERR == 0)) || violations+=("$SOCKERR socket errors or timeouts")
((WARM_UNEXP == 0)) || violations+=("$WARM_UNEXP unexpected answers or socket errors during the warm-up: $(sed -n 's/^LOAD first_unexpected=//p' "$WORK/wrk.warmup" | cut -c1-300)")
if [ -n "$SANITIZED" ]; then
	GROWTH_VERDICT="not judged (sanitizer build: freed memory is quarantined)"
elif awk -v g="$GROWTH" -v m="$MAX_GROWTH" 'BEGIN{exit !(g <= m)}'; then
	GROWTH_VERDICT="ok (<= $MAX_GROWTH %)"
else
	GROWTH_VERDICT="TOO MUCH (> $MAX_GROWTH %)"
	violations+=("VmRSS grew $GROWTH % under load, from $RSS_WARM kB after the warm-up to $RSS_END kB at the end (allowed: $MAX_GROWTH %)")
fi
[ -n "$AT_REST" ] || violations+=("30 s after the run the server still holds $SOCKETS_AFTER sockets ($REST_SOCKETS at rest)")
# Each server thread opens its own SQLite connection (database + WAL) the
# first time it reads, so a thread that first read during the run adds two:
# database descriptors may grow up to two per thread (+ the shared memory
# file); everything else must not grow at all.
OTHER_BEFORE=$((FDS_BEFORE - DB_FDS_BEFORE))
OTHER_AFTER=$((FDS_AFTER - DB_FDS_AFTER))
if ((OTHER_AFTER > OTHER_BEFORE || (DB_FDS_AFTER > DB_FDS_BEFORE && DB_FDS_AFTER > 2 * TASKS + 1))); then
	new_fds=$(diff "$WORK/fds.before" "$WORK/fds.after" | grep '^>' | tr -s ' ' | tr '\n' ';' || true)
	violations+=("descriptor leak: $FDS_AFTER open at rest after the run, $FDS_BEFORE after the warm-up; now:$new_fds")
fi

stop_pid "$ALLOWD_PID" TERM &
STOPPER=$!
wait "$ALLOWD_PID" 2>/dev/null && EXIT=0 || EXIT=$?
wait "$STOPPER" 2>/dev/null || true
ALLOWD_PID=""
((EXIT == 0)) || violations+=("allowd exited with status $EXIT after SIGTERM")
if grep -qE 'ERROR: (Address|Leak|Thread|UndefinedBehavior)Sanitizer|runtime error:' "$WORK/allowd.log"; then
	violations+=("the server's log holds a sanitizer report")
	grep -E -A20 'Sanitizer|runtime error:' "$WORK/allowd.log" | head -n 60 >&2
fi

# ---- report --------------------------------------------------------------------------------
ms() { awk -v u="$1" 'BEGIN{printf "%.2f", u / 1000}'; }
RPS=$(awk -v r="$REQS" -v d="$(field run duration_us)" 'BEGIN{ if (d > 0) printf "%.0f", r * 1e6 / d }')
echo
echo "allowd load test  $(date -u +%Y-%m-%dT%H:%MZ)  host $(hostname), $NCPU CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "wrk: ${DURATION}s after a ${WARMUP}s warm-up, $CONNS connections, $WRK_THREADS threads, mixed.lua (70 % reads, 20 % writes, 10 % evaluations)"
echo "allowd: $ALLOWD_BIN ${ALLOWD_ARGS[*]}; $POLICIES policies seeded; $TOTAL_AFTER after the run"
echo
printf '%-34s %s\n' "requests" "$REQS ($RPS/s): $(field run gets) get, $(field run lists) list, $(field run creates) create, $(field run edits) edit, $(field run deletes) delete, $(field run evals) evaluate"
printf '%-34s %s\n' "unexpected answers (not 200/201)" "$UNEXP"
printf '%-34s %s\n' "socket errors / timeouts" "$SOCKERR (connect $(field run connect_errors), read $(field run read_errors), write $(field run write_errors), timeout $(field run timeouts)); warm-up: $WARM_UNEXP"
printf '%-34s %s\n' "latency p50 / p90 / p99 / max (ms)" "$(ms "$(field run p50_us)") / $(ms "$(field run p90_us)") / $(ms "$(field run p99_us)") / $(ms "$(field run max_us)")"
printf '%-34s %s\n' "VmRSS under load (kB)" "$RSS_WARM after warm-up, $RSS_END at the end, $RSS_PEAK peak: $GROWTH % growth, $GROWTH_VERDICT ($RSS_WARMUP at the end of the warm-up's own connections)"
printf '%-34s %s\n' "VmRSS under load over time (kB)" "$(awk -v a="$RUN_START" -v b="$RUN_END" -v step="$(((RUN_END - RUN_START) / 10))" \
	'$1 >= a && $1 <= b && $1 >= next_t { printf "%s%ds %d", sep, ($1 - a) / 1000, $2; sep = ", "; next_t = $1 + step }' "$WORK/samples")"
printf '%-34s %s\n' "VmRSS at rest (kB)" "$RSS_REST_BEFORE after warm-up, $RSS_REST_AFTER after the run"
printf '%-34s %s\n' "open descriptors at rest" "$FDS_BEFORE after warm-up ($DB_FDS_BEFORE database), $FDS_AFTER after the run ($DB_FDS_AFTER database; $TASKS threads); peak $FDS_PEAK under load"
printf '%-34s %s\n' "server exit after SIGTERM" "$EXIT"
echo
if ((${#violations[@]})); then
	for v in "${violations[@]}"; do echo "VIOLATION: $v"; done
	echo "LOAD RESULT: FAIL"
	exit 1
fi
echo "LOAD RESULT: PASS"
