# Thin wrapper over CMake/CTest.  `make run` and `make test` are the two
# commands a newcomer needs; see README.md.
JOBS      ?= $(shell nproc 2>/dev/null || echo 2)
BUILD     ?= build
ASAN      ?= build-asan
TSAN      ?= build-tsan
LISTEN    ?= 127.0.0.1:8787
DATA_DIR  ?= ./var
WERROR    := ON

.PHONY: all deps build build-asan build-tsan run test test-tsan valgrind lint bench fuzz stress \
	clean sdk-deps

all: build

deps:
	@bash scripts/deps.sh

build: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DALLOWD_WERROR=$(WERROR) \
		-DALLOWD_SDK_TESTS=ON >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

build-asan: deps
	@cmake -S . -B $(ASAN) -DCMAKE_BUILD_TYPE=Debug -DALLOWD_WERROR=$(WERROR) \
		-DALLOWD_SANITIZE=ON >/dev/null
	@cmake --build $(ASAN) -j $(JOBS)

build-tsan: deps
	@cmake -S . -B $(TSAN) -DCMAKE_BUILD_TYPE=Debug -DALLOWD_WERROR=$(WERROR) \
		-DALLOWD_TSAN=ON >/dev/null
	@cmake --build $(TSAN) -j $(JOBS)

run: build
	./$(BUILD)/allowd --listen $(LISTEN) --data-dir $(DATA_DIR)

sdk-deps:
	@cd tests/sdk && { [ -d node_modules ] && [ node_modules/.package-lock.json -nt package-lock.json ] \
		|| npm ci --no-audit --no-fund --loglevel=error; }

lint:
	@bash scripts/lint.sh

# The whole suite: lint; unit, e2e, SDK (+ Prism contract), fuzz-corpus replay
# and short stress/load tests on the normal build; the same minus the SDK
# under ASan+UBSan; the concurrent parts (label tsan) under ThreadSanitizer;
# two e2e programs with the server under valgrind memcheck; then cppcheck and
# clang-tidy (scripts/static-analysis.sh).  About 8 minutes on 2 CPUs.
test: build build-asan build-tsan sdk-deps lint
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)
	cd $(ASAN) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
		UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		ctest --output-on-failure -j $(JOBS) -LE "sdk|slow"
	cd $(TSAN) && TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 \
		ctest --output-on-failure -j $(JOBS) -L tsan
	bash scripts/valgrind.sh $(BUILD)
	bash scripts/static-analysis.sh $(BUILD)

# The TSan and valgrind steps of `make test` on their own.
test-tsan: build-tsan
	cd $(TSAN) && TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 \
		ctest --output-on-failure -j $(JOBS) -L tsan

valgrind: build
	bash scripts/valgrind.sh $(BUILD)

bench: build
	bash bench/api.sh
	bash bench/engine.sh

fuzz:
	bash fuzz/run.sh $(FUZZ_SECONDS)

# The long runs of issue 5: 200 SIGKILL cycles, then the 5-minute mixed load
# at 256 connections (docs/reliability.md).
stress: build
	bash tests/stress/crash.sh 200
	ALLOWD_BIN=$(BUILD)/allowd bash tests/load/load.sh 300 256

clean:
	rm -rf $(BUILD) $(ASAN) $(TSAN)
