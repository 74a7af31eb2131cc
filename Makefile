# distmgr - plain GNU make, no autotools. Objects go under $(BUILD)/.
#
#   make                 the daemons, the suites used by tests, the demo suite
#   make check           build and run every test (unit, integration, man lint)
#   make check-asan      the same built with AddressSanitizer + UBSan
#   make demo            build the demo suite and run it with distmgr -j 4
#   make fuzz-smoke      run each libFuzzer harness for FUZZ_TIME seconds
#   make bench           the benchmarks, side by side with peers
#   make install         PREFIX (/usr/local) and DESTDIR are honoured
#
# Adding a file needs no edit here: every .c in common/, protocol/,
# worker/ and manager/ is part of its module; tests/unit/test_*.c are Check
# programs; tests/suites/NAME.c and tests/suites/NAME/*.c are suites.

PREFIX		?= /usr/local
BINDIR		?= $(PREFIX)/bin
LIBEXECDIR	?= $(PREFIX)/libexec/distmgr
INCLUDEDIR	?= $(PREFIX)/include
MANDIR		?= $(PREFIX)/share/man
PKGCONFIGDIR	?= $(PREFIX)/share/pkgconfig
DESTDIR		?=

PKG_CONFIG	?= pkg-config
CC		?= cc
FUZZ_CC		?= clang
FUZZ_TIME	?= 20

ifeq ($(SAN),1)
BUILD		?= build-asan
SAN_FLAGS	:= -fsanitize=address,undefined -fno-sanitize-recover=all \
		   -fno-omit-frame-pointer
else
BUILD		?= build
SAN_FLAGS	:=
endif

PKGS		:= libevent libevent_extra libevent_openssl jansson openssl
DEP_CFLAGS	:= $(shell $(PKG_CONFIG) --cflags $(PKGS) 2>/dev/null)
DEP_LIBS	:= $(shell $(PKG_CONFIG) --libs $(PKGS) 2>/dev/null)
CHECK_CFLAGS	:= $(shell $(PKG_CONFIG) --cflags check 2>/dev/null)
CHECK_LIBS	:= $(shell $(PKG_CONFIG) --libs check 2>/dev/null)

WARN		:= -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
		   -Wmissing-prototypes -Wpointer-arith -Wformat=2
CFLAGS		?= -O2 -g
ALL_CFLAGS	:= -std=c11 -D_GNU_SOURCE $(WARN) $(CFLAGS) $(SAN_FLAGS) \
		   -Icommon -Iprotocol -Iinclude -MMD -MP $(DEP_CFLAGS)
ALL_LDFLAGS	:= $(LDFLAGS) $(SAN_FLAGS)
LIBS		:= $(DEP_LIBS) -ldl -lm
# Suites are what users build: plain -shared -fPIC, nothing of ours linked.
SUITE_CFLAGS	:= -std=c11 -D_GNU_SOURCE $(WARN) -Wno-missing-prototypes \
		   -O2 -g -fPIC -Iinclude

# ---- sources -------------------------------------------------------------

COMMON_SRC	:= $(wildcard common/*.c)
PROTOCOL_SRC	:= $(wildcard protocol/*.c)
WORKER_SRC	:= $(wildcard worker/*.c)
MANAGER_SRC	:= $(wildcard manager/*.c)
TESTLIB_SRC	:= $(wildcard tests/lib/*.c)
UNIT_SRC	:= $(wildcard tests/unit/test_*.c)
BENCH_SRC	:= $(wildcard bench/*.c)
FUZZ_SRC	:= $(wildcard fuzz/fuzz_*.c)

obj		= $(patsubst %.c,$(BUILD)/obj/%.o,$(1))

LIBCOMMON	:= $(BUILD)/lib/libdmcommon.a
LIBPROTOCOL	:= $(BUILD)/lib/libdmprotocol.a
LIBWORKER	:= $(BUILD)/lib/libdmworker.a
LIBMANAGER	:= $(BUILD)/lib/libdmmanager.a
LIBTEST		:= $(BUILD)/lib/libdmtest.a

# Each daemon's main() lives in its main.c; the rest is a library that
# unit tests link too.
BINS		:=
ifneq ($(wildcard worker/main.c),)
BINS		+= $(BUILD)/bin/distworker
endif
ifneq ($(wildcard manager/main.c),)
BINS		+= $(BUILD)/bin/distmgr
endif

# The box helper the worker forks boxed tests from; installed in libexec.
BOX_SRC		:= $(wildcard worker/box/*.c)
HELPERS		:= $(if $(BOX_SRC),$(BUILD)/bin/distworker-box)

UNIT_BINS	:= $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRC))
BENCH_BINS	:= $(patsubst bench/%.c,$(BUILD)/bench/%,$(BENCH_SRC))

SUITE_FILES	:= $(wildcard tests/suites/*.c)
SUITE_DIRS	:= $(patsubst %/,%,$(sort $(dir $(wildcard tests/suites/*/*.c))))
SUITES		:= $(patsubst tests/suites/%.c,$(BUILD)/suites/%.so,$(SUITE_FILES)) \
		   $(patsubst tests/suites/%,$(BUILD)/suites/%.so,$(SUITE_DIRS))
EXAMPLES	:= $(patsubst examples/%.c,$(BUILD)/examples/%.so,$(wildcard examples/*.c))

MANPAGES	:= $(wildcard man/*.[1-8])

.PHONY: all deps check check-asan unit integration lint-man demo bench \
	fuzz fuzz-smoke install uninstall clean
.DEFAULT_GOAL := all
.SECONDARY:

all: $(BINS) $(HELPERS) $(SUITES) $(EXAMPLES)

deps:
	@sh scripts/ensure-deps.sh

# ---- libraries and programs ------------------------------------------------

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(LIBCOMMON): $(call obj,$(COMMON_SRC))
$(LIBPROTOCOL): $(call obj,$(PROTOCOL_SRC))
$(LIBWORKER): $(call obj,$(filter-out worker/main.c,$(WORKER_SRC)))
$(LIBMANAGER): $(call obj,$(filter-out manager/main.c,$(MANAGER_SRC)))
$(LIBTEST): $(call obj,$(TESTLIB_SRC))

$(BUILD)/lib/%.a:
	@mkdir -p $(@D)
	@rm -f $@
	$(AR) rcs $@ $^

# The dashboard's page is assembled into the binary with .incbin; the
# compiler's dependency file cannot see it, so say it here.
$(call obj,manager/webpage.c): manager/webpage.html

# -z now: a test's child would otherwise resolve every libc function it
# calls again, through symbol tables it faults in (a third of a boxed
# test's cost).
#
# libevent, jansson and OpenSSL are linked into distworker statically: a
# worker is started per job (sixteen at once with -j 16, on however many
# cores), and loading and relocating the shared libssl and libcrypto was
# a third of the CPU a worker spends from its start to its exit (6.3 ms
# against 4.1 ms, for one test). It exports no symbols, so that a suite
# using these libraries binds to its own copies. WORKER_STATIC=0 links
# them shared, for a packager who wants OpenSSL's updates to reach the
# worker without a rebuild.
WORKER_STATIC	?= 1
ifeq ($(WORKER_STATIC),1)
WORKER_LIBS	:= -Wl,-Bstatic $(DEP_LIBS) -Wl,-Bdynamic \
		   $(sort $(filter-out $(DEP_LIBS),$(shell $(PKG_CONFIG) --static \
		   --libs $(PKGS) 2>/dev/null))) -ldl -lm
else
WORKER_LIBS	:= $(LIBS)
endif

$(BUILD)/bin/distworker: $(call obj,worker/main.c) $(LIBWORKER) $(LIBPROTOCOL) $(LIBCOMMON)
	@mkdir -p $(@D)
	$(CC) $(ALL_LDFLAGS) -Wl,-z,now -o $@ $^ $(WORKER_LIBS)

# The box helper links libc and host.c only, and nothing else: each boxed
# test is a fork of it, and a fork costs in proportion to what the
# process has mapped. -z now for the reason above.
$(BUILD)/obj/worker/box/%.o: ALL_CFLAGS += -Iworker
$(BUILD)/bin/distworker-box: $(call obj,$(BOX_SRC) worker/host.c)
	@mkdir -p $(@D)
	$(CC) $(ALL_LDFLAGS) -Wl,-z,now -o $@ $^

$(BUILD)/bin/distmgr: $(call obj,manager/main.c) $(LIBMANAGER) $(LIBPROTOCOL) $(LIBCOMMON)
	@mkdir -p $(@D)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS)

# ---- tests -----------------------------------------------------------------

UNIT_LIBS	:= $(if $(TESTLIB_SRC),$(LIBTEST)) \
		   $(if $(filter-out manager/main.c,$(MANAGER_SRC)),$(LIBMANAGER)) \
		   $(if $(filter-out worker/main.c,$(WORKER_SRC)),$(LIBWORKER)) \
		   $(LIBPROTOCOL) $(LIBCOMMON)

$(BUILD)/obj/tests/%.o: ALL_CFLAGS += $(CHECK_CFLAGS) -Itests/lib -Iworker -Imanager
$(BUILD)/obj/bench/%.o: ALL_CFLAGS += -Iworker -Imanager
# Where `make install` puts distworker, so that an installed distmgr finds it.
$(BUILD)/obj/manager/transport-popen.o $(BUILD)/obj/worker/runner-boxer.o: \
		   ALL_CFLAGS += \
		   -DDM_LIBEXECDIR='"$(LIBEXECDIR)"' -DDM_BINDIR='"$(BINDIR)"'

$(BUILD)/tests/%: $(BUILD)/obj/tests/unit/%.o $(UNIT_LIBS)
	@mkdir -p $(@D)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(CHECK_LIBS) $(LIBS)

$(BUILD)/bench/%: $(BUILD)/obj/bench/%.o $(UNIT_LIBS)
	@mkdir -p $(@D)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS)

$(BUILD)/suites/%.so: tests/suites/%.c include/distmgr.h
	@mkdir -p $(@D)
	$(CC) $(SUITE_CFLAGS) -shared -o $@ $<

# What the integration suites of groups and locks share.
$(filter-out $(BUILD)/examples/%,$(SUITES)): tests/suites/record.h

.SECONDEXPANSION:
$(BUILD)/suites/%.so: $$(wildcard tests/suites/$$*/*.c) include/distmgr.h
	@mkdir -p $(@D)
	$(CC) $(SUITE_CFLAGS) -shared -o $@ $(filter %.c,$^)

$(BUILD)/examples/%.so: examples/%.c include/distmgr.h
	@mkdir -p $(@D)
	$(CC) $(SUITE_CFLAGS) -shared -o $@ $<

check: deps
	@$(MAKE) --no-print-directory all-tests
	@sh tests/run-tests.sh $(BUILD)

check-asan: deps
	@$(MAKE) --no-print-directory SAN=1 all-tests
	@ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:halt_on_error=1 \
	 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	 sh tests/run-tests.sh build-asan

.PHONY: all-tests
all-tests: all $(UNIT_BINS) $(BENCH_BINS)

lint-man:
	@for m in $(MANPAGES); do mandoc -Tlint -W warning $$m || exit 1; done

# ---- demo, bench, fuzz -----------------------------------------------------

demo: deps
	@$(MAKE) --no-print-directory all
	@sh examples/run-demo.sh $(BUILD)

bench:
	@sh scripts/ensure-deps.sh bench
	@$(MAKE) --no-print-directory all $(BENCH_BINS)
	@sh bench/run.sh $(BUILD)

FUZZ_BUILD	:= build-fuzz
FUZZ_CFLAGS	:= -std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined \
		   -Icommon -Iprotocol -Iinclude $(DEP_CFLAGS)
FUZZ_BINS	:= $(patsubst fuzz/%.c,$(FUZZ_BUILD)/%,$(FUZZ_SRC))

$(FUZZ_BUILD)/%: fuzz/%.c $(COMMON_SRC) $(PROTOCOL_SRC) common/common.h protocol/protocol.h
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ $< $(COMMON_SRC) $(PROTOCOL_SRC) $(LIBS)

# What a worker does with shipped names and bytes is fuzzed with the
# worker's own files.
FUZZ_SHIP_SRC	:= worker/shipping.c worker/blobcache.c worker/env.c
$(FUZZ_BUILD)/fuzz_ship: fuzz/fuzz_ship.c $(COMMON_SRC) $(PROTOCOL_SRC) $(FUZZ_SHIP_SRC) \
		common/common.h protocol/protocol.h worker/worker.h
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -Iworker -o $@ $< $(COMMON_SRC) $(PROTOCOL_SRC) \
	    $(FUZZ_SHIP_SRC) $(LIBS)

# The manager's reading of a worker's test list, with its own file.
$(FUZZ_BUILD)/fuzz_catalog: fuzz/fuzz_catalog.c $(COMMON_SRC) $(PROTOCOL_SRC) \
		manager/catalog.c common/common.h protocol/protocol.h manager/manager.h
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -Imanager -o $@ $< $(COMMON_SRC) $(PROTOCOL_SRC) \
	    manager/catalog.c $(LIBS)

fuzz: $(FUZZ_BINS)

fuzz-smoke:
	@sh scripts/ensure-deps.sh fuzz
	@$(MAKE) --no-print-directory fuzz
	@sh fuzz/smoke.sh $(FUZZ_BUILD) $(FUZZ_TIME)

# ---- install ---------------------------------------------------------------

install: all
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(INCLUDEDIR) \
	    $(DESTDIR)$(PKGCONFIGDIR)
	for b in $(BINS); do install -m 755 $$b $(DESTDIR)$(BINDIR)/; done
	install -d $(DESTDIR)$(LIBEXECDIR)
	for b in $(HELPERS); do install -m 755 $$b $(DESTDIR)$(LIBEXECDIR)/; done
	install -m 644 include/distmgr.h $(DESTDIR)$(INCLUDEDIR)/
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|' \
	    -e 's|@VERSION@|$(shell sed -n 's/^#define DM_VERSION "\(.*\)"/\1/p' common/common.h)|' \
	    distmgr.pc.in > $(DESTDIR)$(PKGCONFIGDIR)/distmgr.pc
	for m in $(MANPAGES); do \
	    s=$${m##*.}; install -d $(DESTDIR)$(MANDIR)/man$$s; \
	    install -m 644 $$m $(DESTDIR)$(MANDIR)/man$$s/; done

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/distmgr $(DESTDIR)$(BINDIR)/distworker
	rm -f $(DESTDIR)$(LIBEXECDIR)/distworker-box
	rm -f $(DESTDIR)$(INCLUDEDIR)/distmgr.h
	rm -f $(DESTDIR)$(PKGCONFIGDIR)/distmgr.pc
	for m in $(MANPAGES); do s=$${m##*.}; b=$${m##*/}; \
	    rm -f $(DESTDIR)$(MANDIR)/man$$s/$$b; done

clean:
	rm -rf build build-asan $(FUZZ_BUILD)

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
