# aigw — one Makefile for the gateway, aigw-mock, the tests and the benchmark.
#
#   make            build build/aigw and build/aigw-mock
#   make run        install what building and running lack (C libraries), build, start
#                   aigw-mock + aigw on aigw.example.yaml
#   make test       the include layers, install what is missing (also cmocka, Node and the e2e
#                   tests' npm packages), build, unit + e2e tests, then again under ASan+UBSan
#   make check-includes  every #include of src/ keeps to the layers (tools/check-includes.sh)
#   make test-asan  only the sanitizer pass
#   make fuzz       build the libFuzzer targets (clang) and run each briefly
#   make bench      bench/run.sh (wrk against direct, nginx, aigw, Portkey)
#   make bench-index  the semantic index's lookup time at 1k, 10k, 100k vectors (bench/index_bench.c)
#   make install    build/aigw to $(DESTDIR)$(PREFIX)/bin, aigw.example.yaml to
#                   $(DESTDIR)$(PREFIX)/share/aigw (PREFIX=/usr/local; the catalog is embedded)
#   make uninstall  removes what install put there
#
# SANITIZER=address builds into build-asan/ with -fsanitize=address,undefined.

CC       ?= cc
PREFIX   ?= /usr/local
DESTDIR  ?=
PKGS     := libuv libcurl jansson yaml-0.1 libpcre2-8 sqlite3 libsodium libpq hiredis
# ncursesw's cflags (_XOPEN_SOURCE, _DEFAULT_SOURCE) are for `aigw top` alone: src/top below.
CURSES   := ncursesw
BUILD    ?= build
OPT      ?= -O2
ifeq ($(SANITIZER),address)
OPT      := -O1
endif
CFLAGS   := -std=gnu11 -Wall -Wextra -Werror -Wshadow -Wno-unused-parameter \
            $(OPT) -g -D_GNU_SOURCE -Isrc $(shell pkg-config --cflags $(PKGS) 2>/dev/null) $(EXTRA_CFLAGS)
LDLIBS   := $(shell pkg-config --libs $(PKGS) $(CURSES) 2>/dev/null) -lhttp_parser -lpthread -lm

ifeq ($(SANITIZER),address)
BUILD    := build-asan
CFLAGS   += -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
LDFLAGS  += -fsanitize=address,undefined
endif

GW_SRC   := $(filter-out src/main.c,$(wildcard src/*/*.c))
GW_OBJ   := $(GW_SRC:%.c=$(BUILD)/%.o) $(BUILD)/src/config/catalog_data.o $(BUILD)/src/router/router_data.o \
            $(BUILD)/src/ui/ui_data.o
MOCK_SRC := $(wildcard tools/mock/*.c)
MOCK_OBJ := $(MOCK_SRC:%.c=$(BUILD)/%.o)
UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)

.PHONY: router-examples router-train router-eval router-bench reqlog-bench all deps deps-test run test test-unit test-e2e test-asan check-includes fuzz bench bench-index format format-check clean \
        install uninstall

all: $(BUILD)/aigw $(BUILD)/aigw-mock

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/src/top/%.o: CFLAGS += $(shell pkg-config --cflags $(CURSES) 2>/dev/null)

# The model catalog is data, embedded with the assembler's .incbin.
$(BUILD)/src/config/catalog_data.o: src/config/catalog_data.S catalog/models.json
	@mkdir -p $(dir $@)
	$(CC) -c $< -o $@

# The dashboard's files likewise (src/ui/ui_data.S: one .incbin per file of ui/).
UI_FILES := $(wildcard ui/*.html ui/*.css ui/*.svg ui/js/*.js)
$(BUILD)/src/ui/ui_data.o: src/ui/ui_data.S $(UI_FILES)
	@mkdir -p $(dir $@)
	$(CC) -c $< -o $@

# The learned router's model likewise (router_data.S).
$(BUILD)/src/router/router_data.o: src/router/router_data.S router/lr.model
	@mkdir -p $(dir $@)
	$(CC) -c $< -o $@

$(BUILD)/aigw: $(BUILD)/src/main.o $(GW_OBJ)
	$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@

$(BUILD)/aigw-mock: $(MOCK_OBJ)
	$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@

# The learned router's trainer and evaluator, and its decision-time benchmark: both link the
# gateway's own feature code (src/router), so training sees what aigw computes.
ROUTER_OBJ := $(filter-out %/router_data.o,$(filter $(BUILD)/src/router/%.o,$(GW_OBJ))) $(BUILD)/src/util/alloc.o
$(BUILD)/aigw-router-train: $(BUILD)/tools/router_train.o $(ROUTER_OBJ)
	$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@
$(BUILD)/router-bench: $(BUILD)/bench/router_bench.o $(ROUTER_OBJ)
	$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@

# The request log's queries on a large store (bench/reqlog_bench.c): make reqlog-bench [N=…].
STORE_OBJ := $(filter $(BUILD)/src/store/%.o $(BUILD)/src/util/%.o,$(GW_OBJ))
$(BUILD)/reqlog-bench: $(BUILD)/bench/reqlog_bench.o $(STORE_OBJ)
	$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@
reqlog-bench: $(BUILD)/reqlog-bench
	$(BUILD)/reqlog-bench $(BUILD)/reqlog-bench.db $(or $(N),1000000); rm -f $(BUILD)/reqlog-bench.db*

# make router-train DATA=DIR: router/lr.model from RouteLLM's judgements in DIR (the routing data
# is not in the repository: docs/routing-quality.md). make router-eval DATA=DIR: the evaluation
# table of docs/routing-quality.md, printed. make router-bench DATA=DIR: decision time.
ROUTER_EXAMPLES := $(BUILD)/router-examples.jsonl
router-examples:
	@test -n "$(DATA)" || { echo "usage: make $(MAKECMDGOALS) DATA=path/to/routing-data" >&2; exit 2; }
	@mkdir -p $(BUILD)
	python3 tools/router_data.py $(DATA) > $(ROUTER_EXAMPLES)
router-train: $(BUILD)/aigw-router-train router-examples
	$(BUILD)/aigw-router-train train $(ROUTER_EXAMPLES) router/lr.model
router-eval: $(BUILD)/aigw-router-train router-examples
	$(BUILD)/aigw-router-train eval $(ROUTER_EXAMPLES) $(or $(BOOTSTRAPS),1000)
router-bench: $(BUILD)/router-bench router-examples
	$(BUILD)/router-bench router/lr.model $(ROUTER_EXAMPLES)

# aigw with the test-only stages of tests/stages/ in its stage table (tests/e2e/stages.test.mjs).
$(BUILD)/test-stages/%.o: src/pipeline/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -DAIGW_TEST_STAGES -MMD -MP -c $< -o $@
$(BUILD)/test-stages/test_stages.o: tests/stages/test_stages.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@
$(BUILD)/aigw-test-stages: $(BUILD)/src/main.o $(filter-out %/pipeline/pipeline.o,$(GW_OBJ)) \
                           $(BUILD)/test-stages/pipeline.o $(BUILD)/test-stages/test_stages.o
	$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@

# tests/unit/test_NAME.c includes src/*/NAME.c (to reach its statics) and links every other
# gateway object.
$(BUILD)/tests/%: tests/unit/%.c $(GW_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Wno-unused-function -Itests/unit $< $(filter-out %/$(patsubst test_%,%,$*).o,$(GW_OBJ)) \
	    $(LDFLAGS) $(LDLIBS) -lcmocka -o $@

# bench/index_bench.c: the semantic index's lookup time and memory per vector (docs/cache.md).
$(BUILD)/bench/index_bench: bench/index_bench.c $(BUILD)/src/cache/cache_index.o
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $^ $(LDFLAGS) -lpthread -lm -o $@

bench-index: $(BUILD)/bench/index_bench
	$(BUILD)/bench/index_bench

# deps: to build and run; deps-test: also what the tests need (scripts/deps.sh says what).
deps:
	@scripts/deps.sh

deps-test:
	@scripts/deps.sh --test

run: deps all
	@scripts/run.sh

test-unit: $(UNIT_BIN)
	@set -e; for t in $(UNIT_BIN); do echo "== $$t"; $$t; done

test-e2e: all $(BUILD)/aigw-test-stages
	@scripts/e2e.sh $(BUILD)

test-asan:
	$(MAKE) SANITIZER=address all test-unit test-e2e

# The layer order of src/ is written in tools/check-includes.sh; the second script tests the
# check itself on small trees (a loop between folders must fail it).
check-includes:
	@tools/check-includes.sh
	@tools/check-includes-test.sh

test:
	$(MAKE) check-includes
	$(MAKE) deps-test
	$(MAKE) all
	$(MAKE) test-unit
	$(MAKE) test-e2e
	$(MAKE) test-asan

fuzz:
	@scripts/fuzz.sh

bench: all
	bench/run.sh

format:
	clang-format -i $(wildcard src/*/*.[ch] src/*.c tools/mock/*.[ch] tests/unit/*.[ch] tests/fuzz/*.c tests/stages/*.c tools/*.c bench/*.c)

format-check:
	clang-format --dry-run -Werror $(wildcard src/*/*.[ch] src/*.c tools/mock/*.[ch] tests/unit/*.[ch] tests/fuzz/*.c tests/stages/*.c tools/*.c bench/*.c)

# The model catalog is inside the binary (catalog_data.S), so the binary and the example
# config are all there is to install.
install: $(BUILD)/aigw
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/aigw
	install -m 755 $(BUILD)/aigw $(DESTDIR)$(PREFIX)/bin/aigw
	install -m 644 aigw.example.yaml aigw.example.catalog.json $(DESTDIR)$(PREFIX)/share/aigw/

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/bin/aigw $(DESTDIR)$(PREFIX)/share/aigw/aigw.example.yaml \
	      $(DESTDIR)$(PREFIX)/share/aigw/aigw.example.catalog.json
	-rmdir $(DESTDIR)$(PREFIX)/share/aigw 2>/dev/null

clean:
	rm -rf build build-asan build-fuzz

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
