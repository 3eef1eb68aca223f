#!/usr/bin/env bash
# crash.sh - the long crash-consistency run of issue 5 (`make stress` calls it):
# CYCLES SIGKILL cycles of tests/stress/crash.c against the built allowd.  See
# docs/reliability.md, "Crash consistency", for what each cycle checks.
#
# Usage: tests/stress/crash.sh [CYCLES [SEED]]   (200 cycles and a random seed by default)
# Environment: BUILD (the CMake build directory, default build), THREADS (client
# threads, default 8), MAX_DELAY_MS (the kill falls within this, default 400).
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
build=${BUILD:-build}
case $build in /*) ;; *) build=$root/$build ;; esac
cycles=${1:-200}
seed=${2:-}

bin=$build/tests/stress/stress_crash
if [[ ! -x $bin || ! -x $build/allowd ]]; then
	echo "crash.sh: $bin or $build/allowd is missing; build first (make build)" >&2
	exit 2
fi

args=(-c "$cycles")
[[ -n $seed ]] && args+=(-s "$seed")
[[ -n ${THREADS:-} ]] && args+=(-t "$THREADS")
[[ -n ${MAX_DELAY_MS:-} ]] && args+=(-d "$MAX_DELAY_MS")

export ALLOWD_BIN=$build/allowd
export ALLOWD_TEST_TMP=$build/stress-tmp
exec "$bin" "${args[@]}"
