# keyroom - offline CA signing appliance.
#   make            build ./build/keyroom
#   make test       build and run every test (unit, integration, SAN pass)
#   make demo       install what is missing, build, run the main job
#   make bench      throughput and memory benchmarks
#   make image      the bootable appliance image (image/)
#   make install PREFIX=/usr/local DESTDIR=
#   make SAN=1      ASan+UBSan build in ./build-san

PREFIX  ?= /usr/local
DESTDIR ?=
CC      ?= cc
PKGS     = libcrypto libp11 p11-kit-1 lmdb libqrencode libpng jansson yaml-0.1 libgfshare

ifeq ($(SAN),1)
BUILD   ?= build-san
SANFLAGS = -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
OPT      = -O1 -g
HARDEN   =
else
BUILD   ?= build
SANFLAGS =
OPT      = -O2 -g
HARDEN   = -D_FORTIFY_SOURCE=2 -fstack-protector-strong -fPIE
HARDEN_LD = -pie -Wl,-z,relro,-z,now
endif

WARN    = -Wall -Wextra -Wshadow -Wwrite-strings -Wformat=2 -Wno-unused-parameter \
          -Wno-deprecated-declarations
ifeq ($(WERROR),1)
WARN   += -Werror
endif

PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
CFLAGS  ?=
CFLAGS  += -std=c11 -D_GNU_SOURCE $(OPT) $(WARN) $(HARDEN) $(SANFLAGS) -I. $(PKG_CFLAGS)
LDFLAGS += $(HARDEN_LD) $(SANFLAGS)
LDLIBS  += $(PKG_LIBS) -ldl -lm

DIRS     = lib ca audit media policy ceremony
LIB_SRCS = $(sort $(wildcard $(addsuffix /*.c,$(DIRS))))
LIB_OBJS = $(LIB_SRCS:%.c=$(BUILD)/%.o)
HDRS     = $(wildcard $(addsuffix /*.h,$(DIRS))) lib/commands.def
UNIT_SRCS  = $(sort $(wildcard tests/unit/test_*.c))
UNIT_BINS  = $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)
TOOL_SRCS  = $(sort $(wildcard tests/tools/*.c))
TOOL_BINS  = $(TOOL_SRCS:tests/tools/%.c=$(BUILD)/tools/%)
FUZZ_SRCS  = $(sort $(wildcard tests/fuzz/fuzz_*.c))

.PHONY: all deps test test-only unit demo bench image install clean fuzz check-format

all: $(BUILD)/keyroom $(TOOL_BINS)

deps:
	@./scripts/deps.sh

$(BUILD)/%.o: %.c $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c -o $@ $<

$(BUILD)/libkeyroom.a: $(LIB_OBJS)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/keyroom: $(BUILD)/keyroom.o $(BUILD)/libkeyroom.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/tests/%: tests/unit/%.c $(BUILD)/libkeyroom.a $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/libkeyroom.a $(LDLIBS) -lcmocka

$(BUILD)/tools/%: tests/tools/%.c $(BUILD)/libkeyroom.a $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/libkeyroom.a $(LDLIBS)

unit: $(UNIT_BINS)

# The test command of the README: normal build, then the sanitizer pass.
test: deps
	./scripts/deps.sh --image
	$(MAKE) test-only
	$(MAKE) SAN=1 test-only

test-only: all unit
	BUILD=$(BUILD) SAN=$(SAN) ./tests/run.sh

demo: deps all
	BUILD=$(BUILD) ./scripts/demo.sh

bench: deps all
	BUILD=$(BUILD) ./scripts/bench.sh

image: all
	./scripts/deps.sh --image
	BUILD=$(BUILD) $(MAKE) -C image

fuzz:
	./tests/fuzz/run.sh

install: $(BUILD)/keyroom
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/man/man1 \
	    $(DESTDIR)$(PREFIX)/share/keyroom/ceremony
	install -m 0755 $(BUILD)/keyroom $(DESTDIR)$(PREFIX)/bin/keyroom
	install -m 0644 docs/man/*.1 $(DESTDIR)$(PREFIX)/share/man/man1/
	if [ -d ceremony/scripts ]; then install -m 0644 ceremony/scripts/* \
	    $(DESTDIR)$(PREFIX)/share/keyroom/ceremony/; fi

check-format:
	clang-format --dry-run --Werror $(LIB_SRCS) keyroom.c

clean:
	rm -rf build build-san
