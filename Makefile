# nestvm: `make` builds build/nestvm, `make check` runs every test tier,
# `make demo` boots the default guest, `make image` builds that guest,
# `make install` (PREFIX, DESTDIR) installs it all, `make deb` packages it.
CC      ?= gcc
CFLAGS  ?= -O2 -g
WARN    := -Wall -Wextra -Wformat=2 -Wmissing-prototypes -Wstrict-prototypes \
           -Wundef -Wwrite-strings -Werror
# CPPFLAGS and LDFLAGS from the environment (dpkg-buildflags' hardening) come after ours.
CPPFLAGS := -Isrc -D_GNU_SOURCE $(CPPFLAGS)
ALL_CFLAGS := -std=gnu11 $(WARN) $(CFLAGS) -MMD -MP
LDLIBS  := -lpthread -ljansson -lz -llz4 -lseccomp
SAN     := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined

B := build
LIB_SRCS := $(wildcard src/*.c src/devices/*.c src/virtio/*.c src/net/*.c src/arch/x86/*.c)
CLI_SRCS := $(wildcard src/cli/*.c)
LIB_OBJS := $(LIB_SRCS:%.c=$(B)/obj/%.o)
CLI_OBJS := $(CLI_SRCS:%.c=$(B)/obj/%.o)
SAN_LIB_OBJS := $(LIB_SRCS:%.c=$(B)/san/%.o)
SAN_CLI_OBJS := $(filter-out $(B)/san/src/cli/main.o,$(CLI_SRCS:%.c=$(B)/san/%.o))

UNIT_TESTS := $(patsubst tests/unit/%.c,$(B)/tests/unit/%,$(wildcard tests/unit/test_*.c)) \
              $(patsubst tests/unit/%.sh,$(B)/tests/unit/%,$(wildcard tests/unit/test_*.sh))
KVM_TESTS  := $(patsubst tests/kvm/%.c,$(B)/tests/kvm/%,$(wildcard tests/kvm/test_*.c))
KVM_STATIC_TESTS := $(patsubst tests/kvm/%.c,$(B)/tests/kvm-static/%,$(wildcard tests/kvm/test_*.c))
FUZZERS    := $(patsubst fuzz/%.c,$(B)/fuzz/%,$(wildcard fuzz/fuzz_*.c))
FUZZ_LIB_OBJS := $(LIB_SRCS:%.c=$(B)/fuzzobj/%.o)
FUZZ_SAN   := -fsanitize=address,undefined

.PHONY: all check check-long unit kvm e2e image demo fuzz fuzz-run fuzz-long bench clean deps install uninstall deb
all: $(B)/nestvm

$(B)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(ALL_CFLAGS) -c $< -o $@

$(B)/san/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(ALL_CFLAGS) $(SAN) -O1 -c $< -o $@

$(B)/nestvm: $(LIB_OBJS) $(CLI_OBJS)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# The guest image carries this one so that every guest can be a host.
$(B)/nestvm-static: $(LIB_OBJS) $(CLI_OBJS)
	$(CC) $(CFLAGS) -static -o $@ $^ $(LDLIBS)

$(B)/tests/unit/%: tests/unit/%.c $(SAN_LIB_OBJS) $(SAN_CLI_OBJS) tests/harness.h
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -Itests $(ALL_CFLAGS) $(SAN) -O1 -o $@ $< $(SAN_LIB_OBJS) $(SAN_CLI_OBJS) $(LDLIBS)

# Tests written in shell (installing, packaging, the man page, completion)
# run from the unit tier like the others.
$(B)/tests/unit/%: tests/unit/%.sh
	@mkdir -p $(dir $@)
	cp $< $@ && chmod +x $@

$(B)/tests/kvm/%: tests/kvm/%.c tests/kvm/payloads.S $(SAN_LIB_OBJS) tests/harness.h
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -Itests $(ALL_CFLAGS) $(SAN) -O1 -o $@ $< tests/kvm/payloads.S $(SAN_LIB_OBJS) $(LDLIBS)

# The same tests, static and without sanitizers, to run inside the simulated
# host where KVM has what this host may lack (nested state, hardware speed).
$(B)/tests/kvm-static/%: tests/kvm/%.c tests/kvm/payloads.S $(LIB_OBJS) tests/harness.h
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -Itests $(ALL_CFLAGS) -static -o $@ $< tests/kvm/payloads.S $(LIB_OBJS) $(LDLIBS)

# The tiny guest the deep end-to-end case boots at level 3.
$(B)/tests/tiny-guest: tests/tiny-guest.c tests/kvm/payloads.S tests/fake_bzimage.h
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -Itests $(ALL_CFLAGS) -o $@ $< tests/kvm/payloads.S

$(B)/tests/tiny-guest.bzImage: $(B)/tests/tiny-guest
	$< $@

# The library is built once for every target, instrumented for coverage
# (fuzzer-no-link); each target then only compiles its own file and links.
$(B)/fuzzobj/%.o: %.c
	@mkdir -p $(dir $@)
	clang $(CPPFLAGS) -std=gnu11 -g -O1 $(FUZZ_SAN),fuzzer-no-link -MMD -MP -c $< -o $@

$(B)/fuzz/%: fuzz/%.c $(FUZZ_LIB_OBJS)
	@mkdir -p $(dir $@)
	clang $(CPPFLAGS) -std=gnu11 -g -O1 $(FUZZ_SAN),fuzzer -o $@ $< $(FUZZ_LIB_OBJS) $(LDLIBS)

deps:
	scripts/install-deps

image: $(B)/nestvm-static
	scripts/mkimage

unit: $(UNIT_TESTS)
kvm: $(KVM_TESTS)

# What the tiers run, built on every core first: make check is usually
# called without -j, and built one file at a time this took minutes of it.
NPROC := $(shell nproc 2>/dev/null || echo 1)
TEST_BUILD := all $(B)/nestvm-static $(UNIT_TESTS) $(KVM_TESTS) $(KVM_STATIC_TESTS)

check:
	$(MAKE) -j$(NPROC) $(TEST_BUILD)
	tests/run

# Every tier with the longest nested proofs too (saving and migrating a
# NestedHost with its NestedVM, on both simulated hosts): nightly, about an
# hour.
check-long:
	$(MAKE) -j$(NPROC) $(TEST_BUILD)
	E2E_LONG=1 tests/run

fuzz: $(FUZZERS)
fuzz-run: fuzz
	tests/fuzz-run 30

# Fuzzing at depth: each target until FUZZ_RUNS executions (default 10^7) or
# FUZZ_SECONDS (default 3600), whichever comes first, folding what it found
# into its committed corpus.
FUZZ_RUNS ?= 10000000
FUZZ_SECONDS ?= 3600
fuzz-long: fuzz
	tests/fuzz-run --runs $(FUZZ_RUNS) --merge $(FUZZ_SECONDS)

demo: all $(B)/nestvm-static
	scripts/demo

# Every benchmark, each against QEMU in the same run (an hour or more).
bench: $(B)/nestvm-static
	bench/boot
	bench/nested
	bench/io
	bench/snapshot

# Where make install puts things; the binary finds the guest image in
# $(BINDIR)/../share/nestvm or /usr/share/nestvm. IMAGE is the guest image
# to install (make image builds it).
PREFIX  ?= /usr/local
BINDIR  ?= $(PREFIX)/bin
DATADIR ?= $(PREFIX)/share
MANDIR  ?= $(DATADIR)/man
BASHCOMPDIR ?= $(DATADIR)/bash-completion/completions
UNITDIR ?= $(PREFIX)/lib/systemd/system
IMAGE   ?= $(B)/image
INSTALLED := $(BINDIR)/nestvm $(DATADIR)/nestvm/vmlinuz $(DATADIR)/nestvm/initrd.img \
             $(MANDIR)/man1/nestvm.1 $(BASHCOMPDIR)/nestvm $(UNITDIR)/nestvm.service

install: $(B)/nestvm
	@test -f $(IMAGE)/vmlinuz -a -f $(IMAGE)/initrd.img || \
		{ echo "make install: no guest image in $(IMAGE)/: run 'make image' first (or give IMAGE=DIR)" >&2; exit 1; }
	install -D -m 755 $(B)/nestvm $(DESTDIR)$(BINDIR)/nestvm
	install -D -m 644 $(IMAGE)/vmlinuz $(DESTDIR)$(DATADIR)/nestvm/vmlinuz
	install -D -m 644 $(IMAGE)/initrd.img $(DESTDIR)$(DATADIR)/nestvm/initrd.img
	install -D -m 644 man/nestvm.1 $(DESTDIR)$(MANDIR)/man1/nestvm.1
	install -D -m 644 dist/nestvm.bash-completion $(DESTDIR)$(BASHCOMPDIR)/nestvm
	@mkdir -p $(DESTDIR)$(UNITDIR)
	sed 's|@BINDIR@|$(BINDIR)|g' dist/nestvm.service.in >$(DESTDIR)$(UNITDIR)/nestvm.service
	chmod 644 $(DESTDIR)$(UNITDIR)/nestvm.service

# Removes what install put there, and the guest image's directory; the VM
# store (/var/lib/nestvm) is the administrator's and stays.
uninstall:
	rm -f $(addprefix $(DESTDIR),$(INSTALLED))
	-rmdir $(DESTDIR)$(DATADIR)/nestvm 2>/dev/null

# The Debian package, built by debian/rules in a build folder of its own;
# the .deb lands in $(B)/deb/. DEB_IMAGE is the guest image it carries.
# debian/rules is a make of its own: this make's variables stay out of it.
DEB_IMAGE ?= $(IMAGE)
DEB_DIR := $(abspath $(B)/deb)
deb:
	rm -rf $(DEB_DIR) && mkdir -p $(DEB_DIR)
	env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL NESTVM_IMAGE=$(abspath $(DEB_IMAGE)) NESTVM_DEB_DIR=$(DEB_DIR) \
		dpkg-buildpackage -b -us -uc --buildinfo-option=-u$(DEB_DIR) --changes-option=-u$(DEB_DIR) \
		--buildinfo-file=$(DEB_DIR)/nestvm.buildinfo --changes-file=$(DEB_DIR)/nestvm.changes

clean:
	rm -rf $(B)/obj $(B)/san $(B)/tests $(B)/fuzz $(B)/fuzzobj $(B)/nestvm $(B)/nestvm-static

-include $(shell find $(B)/obj $(B)/san $(B)/fuzzobj $(B)/tests -name '*.d' 2>/dev/null)
