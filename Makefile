# xroad-replicate - build, test, install.
#   make            build build/xroad-replicate
#   make test       unit + integration tests (installs deps first), ends "N passed, N failed"
#   make asan       the same tests on an ASan+UBSan build
#   make demo       the built-in demo (README)
#   make deps       install the Debian packages needed to build and test

PREFIX   ?= /usr
DESTDIR  ?=
BUILD    ?= build
CC       ?= cc
WERROR   ?=
SAN      ?=

CSTD     := -std=c11 -D_GNU_SOURCE
WARN     := -Wall -Wextra -Wshadow -Wconversion -Wno-sign-conversion -Wstrict-prototypes \
            -Wmissing-prototypes -Wformat=2 -Wvla
CFLAGS   ?= -O2 -g
ALLCFLAGS = $(CSTD) $(WARN) $(if $(WERROR),-Werror) $(CPPFLAGS) $(CFLAGS) $(SAN) -Iinclude -MMD -MP
LDLIBS   := -lrsync -lssh2 -lxxhash -lcrypto -lz -linih
VERSION  := $(shell cat VERSION 2>/dev/null || echo 0.1.0)

LIB_SRC  := $(sort $(wildcard engine/*.c transport/*.c) $(filter-out cli/main.c,$(wildcard cli/*.c)))
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/%.o)
FLT_OBJ  := $(LIB_SRC:%.c=$(BUILD)/faults/%.o)
UNIT_SRC := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
TOOL_SRC := $(sort $(wildcard tests/tools/*.c))
TOOL_BIN := $(TOOL_SRC:tests/tools/%.c=$(BUILD)/tests/%)

BIN      := $(BUILD)/xroad-replicate
FBIN     := $(BUILD)/faults/xroad-replicate

.PHONY: all test unit integration asan demo deps install clean fuzz bench bench-quick format build-tests lint tidy
all: $(BIN)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALLCFLAGS) -DXR_VERSION='"$(VERSION)"' -c $< -o $@

$(BUILD)/faults/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALLCFLAGS) -DXR_FAULTS -DXR_VERSION='"$(VERSION)"' -c $< -o $@

$(BUILD)/libxr.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/faults/libxr.a: $(FLT_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BIN): $(BUILD)/cli/main.o $(BUILD)/libxr.a
	$(CC) $(SAN) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# the same program with the test-only fault points compiled in
$(FBIN): $(BUILD)/faults/cli/main.o $(BUILD)/faults/libxr.a
	$(CC) $(SAN) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/tests/%: tests/unit/%.c $(BUILD)/faults/libxr.a
	@mkdir -p $(dir $@)
	$(CC) $(ALLCFLAGS) -DXR_FAULTS -o $@ $< $(BUILD)/faults/libxr.a $(LDLIBS) -lcmocka

$(BUILD)/tests/%: tests/tools/%.c $(BUILD)/faults/libxr.a
	@mkdir -p $(dir $@)
	$(CC) $(ALLCFLAGS) -DXR_FAULTS -o $@ $< $(BUILD)/faults/libxr.a $(LDLIBS)

build-tests: $(BIN) $(FBIN) $(UNIT_BIN) $(TOOL_BIN)

deps:
	@sh tests/deps.sh

test: deps
	@$(MAKE) --no-print-directory build-tests
	@BUILD=$(BUILD) SKIP="$(SKIP)" sh tests/run.sh

unit: build-tests
	@BUILD=$(BUILD) ONLY=unit sh tests/run.sh

integration: build-tests
	@BUILD=$(BUILD) ONLY=integration sh tests/run.sh

asan:
	@$(MAKE) --no-print-directory BUILD=build-asan CC=clang \
	  SAN="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" \
	  CFLAGS="-O1 -g" SKIP="packaging demo" test

demo: deps $(BIN)
	@sh tests/demo.sh

bench: deps $(BIN)
	bash bench/run.sh

bench-quick: deps $(BIN)
	bash bench/run.sh --quick

install: $(BIN)
	install -D -m 0755 $(BIN) $(DESTDIR)$(PREFIX)/bin/xroad-replicate

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf build build-asan

# static analysis: cppcheck at warning, performance and portability level, no findings allowed
lint:
	cppcheck -q --std=c11 --enable=warning,performance,portability --inline-suppr \
	  -D_GNU_SOURCE -Iinclude --error-exitcode=1 engine transport cli

# clang-tidy with the checks of .clang-tidy (every warning an error), the project's flags plus
# the fault points, two files at a time (largest first); one "tidy: FILE" line per file
TIDY     ?= $(shell command -v clang-tidy-14 || echo clang-tidy)
TIDY_SRC := $(sort $(wildcard engine/*.c transport/*.c cli/*.c))
tidy:
	@ls -S $(TIDY_SRC) | xargs -P2 -I{} sh -c 'out=$$($(TIDY) --quiet {} -- $(CSTD) -Iinclude \
	  -DXR_FAULTS -DXR_VERSION=\"tidy\" 2>&1) && echo "tidy: {}" || { echo "tidy: {}: findings"; \
	  printf "%s\n" "$$out" | grep -v "warnings* generated"; exit 1; }'

fuzz:
	FUZZ_SECONDS=$${FUZZ_SECONDS:-15} bash tests/fuzz/run.sh

include packaging/make.mk

-include $(LIB_OBJ:.o=.d) $(FLT_OBJ:.o=.d) $(BUILD)/cli/main.d $(BUILD)/faults/cli/main.d
