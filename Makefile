# Convenience front end to meson. `make demo` and `make check` install what is
# missing (Debian/Ubuntu), build, and run.
BUILD ?= build
MESON_OPTS ?=
NINJA ?= ninja

.PHONY: all build deps check demo clean check-unit check-sim check-xen check-sanitized bench fuzz deb check-deb

all: build

deps:
	@./scripts/install-deps

$(BUILD)/build.ninja:
	meson setup $(BUILD) $(MESON_OPTS)

build: $(BUILD)/build.ninja
	$(NINJA) -C $(BUILD)

check: deps
	@$(MAKE) --no-print-directory build
	./scripts/run-tests $(BUILD)
	./scripts/run-sanitized $(SAN_BUILD)

# The unit and sim suites again, built with ASan+UBSan in $(SAN_BUILD); any
# sanitizer report fails (issue 8). See scripts/run-sanitized.
SAN_BUILD ?= build-asan
check-sanitized: deps
	./scripts/run-sanitized $(SAN_BUILD)

check-unit: build
	meson test -C $(BUILD) --suite unit --print-errorlogs

check-sim: build
	meson test -C $(BUILD) --suite sim --print-errorlogs

# Real Xen 4.17 + xl + Linux xen-tpmfront under QEMU (root; images cached in
# $(BUILD)/xen-rig/cache or $$XENRIG_CACHE): builds the package (scripts/build-deb,
# into $(BUILD)/xen-rig/deb), boots a systemd dom0 and tests the installed
# vtpmd.service. See tests/xen/README.
check-xen: deps
	./tests/xen/run.sh $(BUILD)

# The Debian package (issue 16): vtpmd_<version>_<arch>.deb, its -dbgsym, the
# .changes and .buildinfo in $(DEB_DIR), built from a copy of the tree (see
# scripts/build-deb). Install it with `apt install ./$(DEB_DIR)/vtpmd_*.deb`.
DEB_DIR ?= build-deb
deb: deps
	./scripts/build-deb $(DEB_DIR)

# The package built, linted (lintian: no error, no warning), inspected,
# installed and purged in a Debian 12 chroot (debootstrap'd once, cached in
# $(DEB_DIR)/chroot-cache or $$PKGTEST_CACHE). See tests/pkg/run.sh.
check-deb: deps
	./tests/pkg/run.sh $(DEB_DIR)

demo: deps
	@$(MAKE) --no-print-directory build
	./tests/sim/demo.sh $(BUILD)

# Benchmarks (issue 7): binaries from an optimised tree in build-bench/ (release
# -O2, no sanitizers), results and plots in $(BUILD)/bench/. See tests/bench/README.md.
BENCH_BUILD ?= build-bench
bench: deps
	@if [ -f $(BENCH_BUILD)/build.ninja ]; then \
		meson configure $(BENCH_BUILD) --buildtype=release -Db_sanitize=none; \
	else \
		meson setup $(BENCH_BUILD) --buildtype=release -Db_sanitize=none; \
	fi
	$(NINJA) -C $(BENCH_BUILD)
	./tests/bench/run-bench.sh --build $(BENCH_BUILD) --out $(BUILD)/bench

clean:
	rm -rf $(BUILD)

# Every libFuzzer harness for FUZZ_SECONDS (default 60) each; see scripts/run-fuzz.
fuzz: deps
	./scripts/run-fuzz
