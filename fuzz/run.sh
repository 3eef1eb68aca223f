#!/usr/bin/env bash
# fuzz/run.sh [SECONDS] - builds the libFuzzer targets (clang, ASan+UBSan) in
# build-fuzz/ and runs each for SECONDS (default 60) with its dictionary,
# starting from the seed corpus fuzz/corpus/<name>/ and keeping what it
# finds in build-fuzz/fuzz-work/<name>/corpus/ (never in the repository).
# Prints per target: executions, exec/s, coverage (cov/ft from libFuzzer's
# final line), crashes.  `make fuzz` calls it.  See fuzz/README.md.
#
# Environment:
#   FUZZ_TARGETS="pattern authres"  only these targets (default: all)
#   FUZZ_JOBS=2                     targets run at once (default 1)
#   FUZZ_BUILD=build-fuzz           build directory
#   FUZZ_ARGS="-max_len=4096"       extra libFuzzer flags
# Exit status: 0 when no target crashed, 1 otherwise (artifacts are named
# in the table; replay one with build-fuzz/fuzz/fuzz_<name> <file>).
set -euo pipefail
cd "$(dirname "$0")/.."

SECONDS_EACH=${1:-60}
BUILD=${FUZZ_BUILD:-build-fuzz}
JOBS=${FUZZ_JOBS:-1}
CC_FUZZ=${CC_FUZZ:-$(command -v clang || command -v clang-14 || true)}

if [[ -z "$CC_FUZZ" ]]; then
	echo "fuzz: clang is required (apt-get install clang libclang-rt-dev)" >&2
	exit 2
fi
if ! [[ "$SECONDS_EACH" =~ ^[0-9]+$ ]] || ((SECONDS_EACH < 1)); then
	echo "usage: fuzz/run.sh [SECONDS]" >&2
	exit 2
fi

all_targets() {
	local f
	for f in fuzz/fuzz_*.c; do
		f=${f#fuzz/fuzz_}
		f=${f%.c}
		[[ "$f" == common ]] && continue
		[[ "$f" == eml && ! -e src/cli/eml.c ]] && continue
		echo "$f"
	done
}
TARGETS=${FUZZ_TARGETS:-$(all_targets | tr '\n' ' ')}

echo "fuzz: configuring $BUILD with $CC_FUZZ"
CC="$CC_FUZZ" cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DALLOWD_FUZZ=ON \
	-DALLOWD_WERROR=OFF >/dev/null
build_list=()
for t in $TARGETS; do build_list+=("fuzz_$t"); done
echo "fuzz: building ${build_list[*]}"
cmake --build "$BUILD" -j "$(nproc 2>/dev/null || echo 2)" --target "${build_list[@]}" >/dev/null

WORK="$BUILD/fuzz-work"
mkdir -p "$WORK"

# Targets that go through glib (GMime) fuzz without leak checks -- glib has no
# frame pointers, so a fast-unwound leak report cannot tell a known GMime leak
# from anything else -- and then replay their corpus once with full stacks
# and fuzz/lsan.supp: the leak pass.
LEAK_PASS=" eml "

run_one() {
	local t=$1 dir="$WORK/$1"
	local dict=() leaks=1
	mkdir -p "$dir/corpus" "$dir/artifacts"
	[[ -f fuzz/$t.dict ]] && dict=(-dict="fuzz/$t.dict")
	[[ "$LEAK_PASS" == *" $t "* ]] && leaks=0
	# shellcheck disable=SC2086
	ASAN_OPTIONS="detect_leaks=$leaks" \
	nice -n 10 "$BUILD/fuzz/fuzz_$t" -max_total_time="$SECONDS_EACH" -timeout=25 \
		-rss_limit_mb=3072 -print_final_stats=1 -detect_leaks=$leaks \
		-artifact_prefix="$dir/artifacts/" "${dict[@]}" ${FUZZ_ARGS:-} \
		"$dir/corpus" "fuzz/corpus/$t" >"$dir/log" 2>&1 || true
	if ((leaks == 0)); then
		ASAN_OPTIONS=fast_unwind_on_malloc=0 LSAN_OPTIONS="suppressions=$PWD/fuzz/lsan.supp" \
		nice -n 10 "$BUILD/fuzz/fuzz_$t" -runs=0 -timeout=25 -rss_limit_mb=3072 \
			-artifact_prefix="$dir/artifacts/leak-pass-" "$dir/corpus" "fuzz/corpus/$t" \
			>"$dir/leak.log" 2>&1 || true
	fi
}

# at most JOBS targets at once
running=0
for t in $TARGETS; do
	if [[ ! -x "$BUILD/fuzz/fuzz_$t" ]]; then
		echo "fuzz: no target fuzz_$t" >&2
		exit 2
	fi
	echo "fuzz: running $t for ${SECONDS_EACH}s"
	run_one "$t" &
	running=$((running + 1))
	if ((running >= JOBS)); then
		wait -n || true
		running=$((running - 1))
	fi
done
wait

crashed=0
printf '\n%-14s %14s %9s %7s %8s %8s  %s\n' target executions exec/s cov ft crashes artifacts
for t in $TARGETS; do
	log="$WORK/$t/log"
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
	rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
	last=$(grep -E '^#[0-9]+' "$log" | grep -E 'cov: ' | tail -1 || true)
	cov=$(sed -n 's/.*cov: \([0-9]*\).*/\1/p' <<<"$last")
	ft=$(sed -n 's/.*ft: \([0-9]*\).*/\1/p' <<<"$last")
	n=$(find "$WORK/$t/artifacts" -type f | wc -l)
	if grep -qsE '^==[0-9]+==ERROR|INVARIANT VIOLATED|deadly signal' "$log" "$WORK/$t/leak.log" &&
		((n == 0)); then
		n=1
	fi
	((n > 0)) && crashed=1
	printf '%-14s %14s %9s %7s %8s %8s  %s\n' "$t" "${execs:-?}" "${rate:-?}" "${cov:-?}" \
		"${ft:-?}" "$n" "$( ((n > 0)) && echo "$WORK/$t/artifacts/ (log: $log)")"
done
exit $crashed
