# seacore — one non-recursive Makefile for the library, programs, tests,
# benchmarks, labs and docs. `make help` lists the targets.
#
# Variants build into their own trees, so they never mix objects:
#   make                 -> build/        (release flags, assertions on)
#   make SAN=asan check  -> build/asan/   (ASan + UBSan)
#   make SAN=tsan check  -> build/tsan/   (TSan)
#   make lab LAB=02      -> build/lab02/  (your lab file in place of ours)

CC      ?= cc
SAN     ?=
BUILD   ?= build$(if $(SAN),/$(SAN))
BACKEND ?= sim
SEED    ?= 1

# ---- dependencies (Debian packages) --------------------------------------
# Every pkg-config module the project uses. When one is missing, root runs
# the installer; anyone else gets told which command to run.
PKG_MODULES := check libuv libevent liburing numa libdpdk jemalloc libtcmalloc_minimal
NO_DEPS_GOALS := help clean lab-starter
ifeq ($(filter-out $(NO_DEPS_GOALS),$(or $(MAKECMDGOALS),all)),)
else
DEPS_MISSING := $(shell pkg-config --exists $(PKG_MODULES) 2>/dev/null || echo yes)
ifeq ($(DEPS_MISSING),yes)
ifeq ($(shell id -u),0)
$(info seacore: some Debian packages are missing; running scripts/install-deps.sh)
DEPS_RC := $(shell scripts/install-deps.sh >&2; echo $$?)
ifneq ($(DEPS_RC),0)
$(error seacore: scripts/install-deps.sh failed (exit $(DEPS_RC)); see its output above)
endif
else
$(error seacore: missing Debian packages for pkg-config modules: $(PKG_MODULES). Run: sudo scripts/install-deps.sh)
endif
endif
endif

# ---- flags ---------------------------------------------------------------
WARN     := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes
CFLAGS   ?= -O2 -g
ALL_CFLAGS := -std=c11 -D_GNU_SOURCE -fPIC -fno-semantic-interposition -pthread -I. $(WARN) $(CFLAGS) -MMD -MP
# -rdynamic: function names in the stall detector's backtraces
ALL_LDFLAGS := -pthread -rdynamic $(LDFLAGS)
LDLIBS_LIB := -lrt -lnuma -laio -luring

ifeq ($(SAN),asan)
ALL_CFLAGS  += -DSC_SAN=1 -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
ALL_LDFLAGS += -fsanitize=address,undefined
else ifeq ($(SAN),tsan)
ALL_CFLAGS  += -DSC_SAN=1 -DSC_TSAN=1 -fsanitize=thread -fno-omit-frame-pointer
ALL_LDFLAGS += -fsanitize=thread
else ifneq ($(SAN),)
$(error SAN must be asan or tsan, not '$(SAN)')
endif

CHECK_CFLAGS := $(shell pkg-config --cflags check 2>/dev/null)
CHECK_LIBS   := $(shell pkg-config --libs check 2>/dev/null)
PEER_CFLAGS  := $(shell pkg-config --cflags libuv libevent 2>/dev/null)
PEER_LIBS    := $(shell pkg-config --libs libuv libevent 2>/dev/null)
# bench_smp's peers: Concurrency Kit's ck_ring and DPDK's rte_ring
SMP_PEER_CFLAGS := $(shell pkg-config --cflags libdpdk 2>/dev/null)
SMP_PEER_LIBS   := -lck $(shell pkg-config --libs libdpdk 2>/dev/null)

# ---- the library ---------------------------------------------------------
# LAB_SUBST is a list of ref.c=replacement.c pairs: the lab machinery builds
# the library with a student's file in place of a reference one.
# Pairs whose reference file is in apps/ replace that app's file instead
# (lab 10: apps/memcached/shard.c).
LAB_SUBST ?=
LAB_SUBST_LIB := $(filter-out apps/%,$(LAB_SUBST))
LAB_SUBST_APP := $(filter apps/%,$(LAB_SUBST))
LAB_ORIG  := $(foreach p,$(LAB_SUBST_LIB),$(word 1,$(subst =, ,$(p))))
LAB_REPL  := $(foreach p,$(LAB_SUBST_LIB),$(word 2,$(subst =, ,$(p))))
APP_LAB_ORIG := $(foreach p,$(LAB_SUBST_APP),$(word 1,$(subst =, ,$(p))))
# The fiber context switch is assembly, one file per architecture: only the
# host's (core/switch_x86_64.S, core/switch_aarch64.S) goes into the library.
HOST_ARCH := $(firstword $(subst -, ,$(shell $(CC) -dumpmachine)))
LIB_ASM   := $(wildcard core/switch_$(HOST_ARCH).S)
ifeq ($(LIB_ASM),)
$(error seacore: no fiber context switch for '$(HOST_ARCH)' (core/switch_<arch>.S))
endif
LIB_SRCS  := $(filter-out $(LAB_ORIG),$(wildcard core/*.c disk/*.c net/*.c sim/*.c) $(LIB_ASM)) $(LAB_REPL)
LIB_OBJS  := $(patsubst %.S,$(BUILD)/obj/%.o,$(LIB_SRCS:%.c=$(BUILD)/obj/%.o))
LIB_A     := $(BUILD)/lib/libseacore.a
LIB_SO    := $(BUILD)/lib/libseacore.so

# ---- programs ------------------------------------------------------------
APPS      := $(patsubst apps/%/main.c,$(BUILD)/bin/seacore-%,$(wildcard apps/*/main.c))
EXAMPLES  := $(patsubst chapters/examples/%.c,$(BUILD)/bin/%,$(wildcard chapters/examples/*.c))
TESTS     := $(patsubst tests/%.c,$(BUILD)/tests/%,$(wildcard tests/core/test_*.c tests/sim/test_*.c))
SIM_TOOLS := $(patsubst tests/sim/%.c,$(BUILD)/bin/%,$(wildcard tests/sim/sim_*.c))
BENCHES   := $(patsubst bench/%.c,$(BUILD)/bench/%,$(wildcard bench/bench_*.c))
LAB_DIRS  := $(sort $(dir $(wildcard labs/[0-9][0-9]-*/grader.c)))
GRADERS   := $(foreach d,$(LAB_DIRS),$(BUILD)/labs/grader_$(firstword $(subst -, ,$(notdir $(d:/=)))))

.PHONY: all lib run run-kitchen check check-unit check-examples check-integration check-sim bench docs lab lab-start \
        lab-check lab-starter sim asan tsan format clean help

# one test links the shared library instead of the archive (its malloc too must be ours)
SO_CHECK  := $(BUILD)/tests/so_malloc_check

all: lib $(APPS) $(EXAMPLES) $(TESTS) $(SO_CHECK) $(SIM_TOOLS) $(BENCHES) $(GRADERS)

lib: $(LIB_A) $(LIB_SO)

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c $< -o $@

$(BUILD)/obj/%.o: %.S
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c $< -o $@

$(LIB_A): $(LIB_OBJS)
	@mkdir -p $(dir $@)
	rm -f $@
	ar rcs $@ $^

$(LIB_SO): $(LIB_OBJS)
	@mkdir -p $(dir $@)
	$(CC) -shared $(ALL_LDFLAGS) -o $@ $^ $(LDLIBS_LIB)

# An app is every .c file of its folder (apps/NAME/*.c -> seacore-NAME),
# with a lab's replacement in place of the reference file it names.
app_srcs = $(filter-out $(APP_LAB_ORIG),$(wildcard apps/$(1)/*.c)) \
           $(foreach p,$(LAB_SUBST_APP),$(if $(filter apps/$(1)/%,$(word 1,$(subst =, ,$(p)))),$(word 2,$(subst =, ,$(p)))))
app_objs = $(patsubst %.c,$(BUILD)/obj/%.o,$(call app_srcs,$(1)))
# memcached without its main(), as an archive: its unit tests, its
# simulation sweep and lab 10's grader link it (and take what they use).
MC_OBJS := $(filter-out $(BUILD)/obj/apps/memcached/main.o,$(call app_objs,memcached))
MC_LIB  := $(BUILD)/lib/libmcapp.a
.SECONDEXPANSION:
$(BUILD)/bin/seacore-%: $$(call app_objs,$$*) $(LIB_A)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LDLIBS_LIB)

# apps/httpd without its main(): its unit test and its simulation test link it too
HTTPD_OBJS := $(patsubst %.c,$(BUILD)/obj/%.o,$(filter-out apps/httpd/main.c,$(wildcard apps/httpd/*.c)))

$(BUILD)/tests/core/test_http: $(BUILD)/obj/tests/core/test_http.o $(BUILD)/obj/tests/harness.o $(BUILD)/obj/apps/httpd/http.o $(LIB_A)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(CHECK_LIBS) $(LDLIBS_LIB)

$(BUILD)/bin/sim_httpd: $(BUILD)/obj/tests/sim/sim_httpd.o $(BUILD)/obj/tests/sim/sweep.o $(HTTPD_OBJS) $(LIB_A)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LDLIBS_LIB)

$(MC_LIB): $(MC_OBJS)
	@mkdir -p $(dir $@)
	rm -f $@
	ar rcs $@ $^

$(BUILD)/bin/%: $(BUILD)/obj/chapters/examples/%.o $(LIB_A)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LDLIBS_LIB)

$(BUILD)/bin/sim_%: $(BUILD)/obj/tests/sim/sim_%.o $(BUILD)/obj/tests/sim/sweep.o $(LIB_A)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LDLIBS_LIB)

# the crash sweep of the append-only log links the log it tests
$(BUILD)/bin/sim_applog: $(BUILD)/obj/tests/sim/sim_applog.o $(BUILD)/obj/apps/applog/log.o \
                         $(BUILD)/obj/tests/sim/sweep.o $(LIB_A)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LDLIBS_LIB)

$(BUILD)/obj/tests/%.o: tests/%.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(CHECK_CFLAGS) -c $< -o $@

$(BUILD)/tests/%: $(BUILD)/obj/tests/%.o $(BUILD)/obj/tests/harness.o $(LIB_A)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(CHECK_LIBS) $(LDLIBS_LIB)

# memcached's tests (tests/core/test_mc_*.c, tests/sim/sim_memcached.c) link the app too
$(BUILD)/tests/core/test_mc_%: $(BUILD)/obj/tests/core/test_mc_%.o $(BUILD)/obj/tests/harness.o \
                               $(MC_LIB) $(LIB_A)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(CHECK_LIBS) $(LDLIBS_LIB)

$(BUILD)/bin/sim_memcached: $(BUILD)/obj/tests/sim/sim_memcached.o $(BUILD)/obj/tests/sim/sweep.o \
                            $(MC_LIB) $(LIB_A)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LDLIBS_LIB)

$(SO_CHECK): $(BUILD)/obj/tests/so_malloc_check.o $(LIB_SO)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) -o $@ $< -L$(BUILD)/lib -Wl,-rpath,$(abspath $(BUILD)/lib) -lseacore $(LDLIBS_LIB)

$(BUILD)/obj/bench/%.o: bench/%.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(PEER_CFLAGS) -c $< -o $@

$(BUILD)/bench/%: $(BUILD)/obj/bench/%.o $(LIB_A)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(PEER_LIBS) $(LDLIBS_LIB)

$(BUILD)/obj/bench/bench_smp.o: PEER_CFLAGS += $(SMP_PEER_CFLAGS)
# bench_alloc's peer child: the same workloads without seacore, so that an
# LD_PRELOADed allocator (jemalloc, mimalloc, tcmalloc) can answer malloc
$(BUILD)/bench/alloc_peer: bench/bench_alloc.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -DBENCH_ALLOC_SYS $< -o $@ $(ALL_LDFLAGS) -ldl
$(BUILD)/bench/bench_alloc: | $(BUILD)/bench/alloc_peer
$(BUILD)/bench/bench_smp: PEER_LIBS += $(SMP_PEER_LIBS)
# bench_fiber's peer: Boost.Context's jump_fcontext (C-callable, declared in the bench)
$(BUILD)/bench/bench_fiber: PEER_LIBS += -lboost_context
# bench_disk measures the disk with seacore-iotune first
$(BUILD)/bench/bench_disk: | $(BUILD)/bin/seacore-iotune

$(BUILD)/obj/labs/%.o: labs/%.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(CHECK_CFLAGS) -c $< -o $@

# grader_NN is built from labs/NN-*/grader.c (plus GRADER_OBJS_NN, when a
# lab's code lives in an app)
GRADER_OBJS_10 = $(MC_LIB)
define GRADER_RULE
$(BUILD)/labs/grader_$(1): $(BUILD)/obj/$(2:.c=.o) $(BUILD)/obj/tests/harness.o $$(GRADER_OBJS_$(1)) $(LIB_A)
	@mkdir -p $$(dir $$@)
	$$(CC) $$(ALL_LDFLAGS) -o $$@ $$^ $$(CHECK_LIBS) $$(LDLIBS_LIB)
endef
$(foreach g,$(wildcard labs/[0-9][0-9]-*/grader.c),$(eval $(call GRADER_RULE,$(firstword $(subst -, ,$(notdir $(patsubst %/grader.c,%,$(g))))),$(g))))

# Keep intermediate objects (they are reused by several programs).
.SECONDARY:

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)

# ---- running -------------------------------------------------------------
# The flagship demo: seacore-memcached. In the simulator: 4 shards and 16
# checking clients, then a report (load per shard, latency, trace hash). On
# the real machine (BACKEND=real): serves 127.0.0.1:11211 until Ctrl-C.
# RUN_ARGS passes more options (e.g. RUN_ARGS='--sim-net-reset-ppm 2000').
RUN_SMP := $(if $(filter sim,$(BACKEND)),--smp 4)
run: $(BUILD)/bin/seacore-memcached
	$(BUILD)/bin/seacore-memcached --backend $(BACKEND) $(RUN_SMP) $(if $(filter command line,$(origin SEED)),--seed $(SEED)) $(RUN_ARGS)

# The first demo: a kitchen of futures (apps/demo)
run-kitchen: $(BUILD)/bin/seacore-demo
	$(BUILD)/bin/seacore-demo --backend $(BACKEND) $(if $(filter command line,$(origin SEED)),--seed $(SEED))

run-example: $(BUILD)/bin/$(EX)
	$(BUILD)/bin/$(EX)

# make sim SEED=n [SIM=name]: replay one seed of a simulation test
SIM ?= sim_futures
sim: $(BUILD)/bin/$(SIM)
	$(BUILD)/bin/$(SIM) --seed $(SEED)

# The phases run one after the other (each builds with -j): the
# benchmarks in check-examples spin pinned threads on every CPU, and a
# timing-sensitive unit test (the stall detector's) beside them would starve.
check:
	@$(MAKE) --no-print-directory check-unit
	@$(MAKE) --no-print-directory check-examples
	@$(MAKE) --no-print-directory check-sim
	@$(MAKE) --no-print-directory check-integration
	@echo "seacore: all checks passed ($(BUILD))"

check-unit: $(TESTS) $(SO_CHECK) $(GRADERS)
	@set -e; for t in $(TESTS) $(SO_CHECK); do echo "== $$t"; $$t; done
	@set -e; for g in $(GRADERS); do echo "== $$g (reference)"; $$g; done

check-examples: $(EXAMPLES) $(APPS) $(BENCHES)
	@BUILD=$(BUILD) scripts/check-examples.sh

check-sim: $(SIM_TOOLS)
	@BUILD=$(BUILD) scripts/sim-sweep.sh

# Real programs against real clients on 127.0.0.1 (curl, wrk, ...): one
# script per program in tests/integration/
check-integration: $(APPS)
	@set -e; for t in tests/integration/*.sh; do echo "== $$t"; BUILD=$(BUILD) sh $$t; done

bench: $(BENCHES) $(APPS)
	@set -e; for b in $(BENCHES); do $$b; done
	@BUILD=$(BUILD) bench/bench_httpd.sh

asan:
	$(MAKE) SAN=asan check
tsan:
	$(MAKE) SAN=tsan check

# ---- labs ----------------------------------------------------------------
# make lab LAB=02     : grade your labs/02-*/work/ files (plus earlier labs)
# make lab-start LAB=02 : create labs/02-*/work/ from the blank starter
# make lab-check      : every grader passes on the reference, fails on the blank
lab:
	@scripts/lab.sh grade $(LAB)
lab-start:
	@scripts/lab.sh start $(LAB)
lab-check:
	@scripts/lab.sh check
lab-starter:
	@scripts/lab-starter.sh $(LAB) $(FILE)

# ---- docs ----------------------------------------------------------------
docs:
	@command -v doxygen >/dev/null || { echo "seacore: doxygen missing; run scripts/install-deps.sh"; exit 1; }
	@mkdir -p build/docs
	doxygen docs/Doxyfile
	@echo "seacore: docs in build/docs/html/index.html"

format:
	clang-format -i $(wildcard core/*.[ch] sim/*.[ch] tests/*/*.[ch] tests/*.[ch] bench/*.[ch] apps/*/*.[ch] chapters/examples/*.c labs/*/*.c)

clean:
	rm -rf build

help:
	@echo "make              build the library, apps, tests, benches, examples"
	@echo "make run          run the demo: memcached with checking clients (BACKEND=sim|real, SEED=n)"
	@echo "make check        run every test (SAN=asan|tsan for sanitizers)"
	@echo "make sim SEED=n   replay one seed of a simulation (SIM=name)"
	@echo "make bench        run the benchmarks beside their peers"
	@echo "make docs         build the Doxygen site into build/docs"
	@echo "make lab LAB=nn   grade your lab (see labs/README.md); make lab-check"
