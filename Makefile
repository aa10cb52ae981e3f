# nestvm: `make` builds build/nestvm, `make check` runs every test tier,
# `make demo` boots the default guest, `make image` builds that guest.
CC      ?= gcc
CFLAGS  ?= -O2 -g
WARN    := -Wall -Wextra -Wformat=2 -Wmissing-prototypes -Wstrict-prototypes \
           -Wundef -Wwrite-strings -Werror
CPPFLAGS := -Isrc -D_GNU_SOURCE
ALL_CFLAGS := -std=gnu11 $(WARN) $(CFLAGS) -MMD -MP
LDLIBS  := -lpthread -ljansson -lz
SAN     := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined

B := build
LIB_SRCS := $(wildcard src/*.c src/devices/*.c src/virtio/*.c src/net/*.c src/arch/x86/*.c)
CLI_SRCS := $(wildcard src/cli/*.c)
LIB_OBJS := $(LIB_SRCS:%.c=$(B)/obj/%.o)
CLI_OBJS := $(CLI_SRCS:%.c=$(B)/obj/%.o)
SAN_LIB_OBJS := $(LIB_SRCS:%.c=$(B)/san/%.o)
SAN_CLI_OBJS := $(filter-out $(B)/san/src/cli/main.o,$(CLI_SRCS:%.c=$(B)/san/%.o))

UNIT_TESTS := $(patsubst tests/unit/%.c,$(B)/tests/unit/%,$(wildcard tests/unit/test_*.c))
KVM_TESTS  := $(patsubst tests/kvm/%.c,$(B)/tests/kvm/%,$(wildcard tests/kvm/test_*.c))
KVM_STATIC_TESTS := $(patsubst tests/kvm/%.c,$(B)/tests/kvm-static/%,$(wildcard tests/kvm/test_*.c))
FUZZERS    := $(patsubst fuzz/%.c,$(B)/fuzz/%,$(wildcard fuzz/fuzz_*.c))

.PHONY: all check unit kvm e2e image demo fuzz fuzz-run bench clean deps
all: $(B)/nestvm

$(B)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(ALL_CFLAGS) -c $< -o $@

$(B)/san/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(ALL_CFLAGS) $(SAN) -O1 -c $< -o $@

$(B)/nestvm: $(LIB_OBJS) $(CLI_OBJS)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

# The guest image carries this one so that every guest can be a host.
$(B)/nestvm-static: $(LIB_OBJS) $(CLI_OBJS)
	$(CC) $(CFLAGS) -static -o $@ $^ $(LDLIBS)

$(B)/tests/unit/%: tests/unit/%.c $(SAN_LIB_OBJS) $(SAN_CLI_OBJS) tests/harness.h
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -Itests $(ALL_CFLAGS) $(SAN) -O1 -o $@ $< $(SAN_LIB_OBJS) $(SAN_CLI_OBJS) $(LDLIBS)

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

$(B)/fuzz/%: fuzz/%.c $(LIB_SRCS)
	@mkdir -p $(dir $@)
	clang $(CPPFLAGS) -std=gnu11 -g -O1 -fsanitize=fuzzer,address,undefined -o $@ $< $(LIB_SRCS) $(LDLIBS)

deps:
	scripts/install-deps

image: $(B)/nestvm-static
	scripts/mkimage

unit: $(UNIT_TESTS)
kvm: $(KVM_TESTS)

check: all $(B)/nestvm-static $(UNIT_TESTS) $(KVM_TESTS) $(KVM_STATIC_TESTS)
	tests/run

fuzz: $(FUZZERS)
fuzz-run: fuzz
	tests/fuzz-run 30

demo: all $(B)/nestvm-static
	scripts/demo

bench: $(B)/nestvm-static
	bench/boot

clean:
	rm -rf $(B)/obj $(B)/san $(B)/tests $(B)/fuzz $(B)/nestvm $(B)/nestvm-static

-include $(shell find $(B)/obj $(B)/san $(B)/tests -name '*.d' 2>/dev/null)
