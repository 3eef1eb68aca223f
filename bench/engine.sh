#!/usr/bin/env bash
# The engine benchmark (issue 4): the indexed engine against the naive
# reference in one run, then API write latency with 100,000 policies of
# which 10,000 are regexes.  Prints figures; asserts nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
cmake --build "$BUILD" --target bench_engine allowd -j "$(nproc)" >/dev/null
echo "== bench_engine: 1,000,000 exact policies, then 10,000 regexes (one core) =="
taskset -c 0 "$BUILD/bench_engine" 1000000 10000
echo
echo "== API writes with 100,000 policies (10,000 regexes) =="
python3 bench/writes.py "$BUILD/allowd"
