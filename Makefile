# Convenience front end to meson. `make demo` and `make check` install what is
# missing (Debian/Ubuntu), build, and run.
BUILD ?= build
MESON_OPTS ?=
NINJA ?= ninja

.PHONY: all build deps check demo clean check-unit check-sim

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

check-unit: build
	meson test -C $(BUILD) --suite unit --print-errorlogs

check-sim: build
	meson test -C $(BUILD) --suite sim --print-errorlogs

demo: deps
	@$(MAKE) --no-print-directory build
	./tests/sim/demo.sh $(BUILD)

clean:
	rm -rf $(BUILD)
