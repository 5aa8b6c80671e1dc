# Makefile - builds the engine library, the CLI tools, the server, tests and benchmarks.
#
#   make            build everything into build/
#   make run        set up (deps, models) and start the service
#   make test       set up and run every test suite
#   make bench      engine benchmark table
#   make loadtest   latency vs group count (results/latency-vs-groups.csv + PNG plots)
#   make soak       1.5x saturation for SOAK_SECONDS (600): RSS flat, only 200/503
#   make scale-test 3 replicas behind HAProxy: rolling restart, kill, 3->4->3 under load
#   make scale-bench  what replicas add up to (1x2 workers vs 2x1 behind HAProxy)
#   make SANITIZE=1 ...   ASan+UBSan build (separate build dir)
#   make test-tsan  the threaded suites under ThreadSanitizer (clang)

CC       ?= cc
SHARED   ?= ../shared
O        ?= 2
CFLAGS_BASE := -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -O$(O) -g -MMD -MP \
               -I. $(shell pkg-config --cflags libpng 2>/dev/null)
LDLIBS_BASE := -lm -lpthread

ifeq ($(SANITIZE),1)
  BUILD   ?= build/asan
  CFLAGS_BASE += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
  LDFLAGS += -fsanitize=address,undefined
else ifeq ($(SANITIZE),fuzz)
  BUILD   ?= build/fuzz
  CC      := clang
  CFLAGS_BASE += -fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer
else ifeq ($(SANITIZE),thread)
  BUILD   ?= build/tsan
  CC      := clang
  CFLAGS_BASE += -fsanitize=thread -fno-omit-frame-pointer
  LDFLAGS += -fsanitize=thread
else
  BUILD   ?= build
endif
CFLAGS  := $(CFLAGS_BASE) $(EXTRA_CFLAGS)

# ISA-specific kernel files get their own flags; everything else is the baseline of the target
# (x86-64, or ARMv8-A where NEON is baseline). The kernel files of the other architecture are
# left out of the build.
AVX2_FLAGS   := -mavx2 -mfma
AVX512_FLAGS := -mavx512f -mavx512bw -mavx512vl -mavx512dq -mfma -mavx2
TARGET_ARCH_ := $(shell $(CC) -dumpmachine 2>/dev/null)
ifneq ($(filter aarch64% arm64%,$(TARGET_ARCH_)),)
  ARCH_SKIP := engine/kernels_avx2.c engine/kernels_avx512.c common/resize_avx2.c \
               common/jpegdc_avx2.c
else
  ARCH_SKIP := engine/kernels_neon.c
endif

# The layers (docs/DESIGN.md, "The layers"): engine -> nothing; common -> engine;
# server, tools, bench -> engine + common. tools/check-layers.sh enforces it on every build.
ENGINE_SRC := $(filter-out $(ARCH_SKIP),$(wildcard engine/*.c))
COMMON_SRC := $(filter-out $(ARCH_SKIP),$(wildcard common/*.c))
SERVER_SRC := $(wildcard server/*.c)
TOOLS_SRC  := $(filter-out tools/shufflenet.c,$(wildcard tools/*.c))
UNIT_SRC   := $(wildcard tests/unit/*.c)
LOADGEN_SRC:= $(wildcard bench/loadgen*.c)

obj = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))
ENGINE_OBJ := $(call obj,$(ENGINE_SRC))
COMMON_OBJ := $(call obj,$(COMMON_SRC))
SERVER_OBJ := $(call obj,$(SERVER_SRC))
TOOLS_OBJ  := $(call obj,$(TOOLS_SRC))
LIBS_A     := $(BUILD)/libsncommon.a $(BUILD)/libshufflenet.a

IMG_LIBS    := -ljpeg $(shell pkg-config --libs libpng 2>/dev/null || echo -lpng)
JSON_LIBS   := -ljansson
HTTP_LIBS   := -lmicrohttpd

BINS := $(BUILD)/shufflenet
ifneq ($(SERVER_SRC),)
  BINS += $(BUILD)/shufflenet-server
endif
ifneq ($(LOADGEN_SRC),)
  BINS += $(BUILD)/shufflenet-loadgen
endif
BINS += $(BUILD)/decode-ab

.PHONY: all deps run test test-unit test-integration test-loadgen test-bench test-tsan bench loadtest clean \
        format models check-deps soak test-deploy scale-test scale-bench
all: $(BUILD)/layers.ok $(BINS)

# Fails the build when an include crosses a layer the wrong way (see tools/check-layers.sh).
$(BUILD)/layers.ok: tools/check-layers.sh Makefile $(wildcard */*.[ch] tests/*/*.[ch])
	@mkdir -p $(dir $@)
	@tools/check-layers.sh
	@touch $@

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/obj/engine/kernels_avx2.o: engine/kernels_avx2.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(AVX2_FLAGS) -c $< -o $@
$(BUILD)/obj/engine/kernels_avx512.o: engine/kernels_avx512.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(AVX512_FLAGS) -c $< -o $@
ifeq ($(ARCH_SKIP),engine/kernels_neon.c)
$(BUILD)/obj/tools/fmapeak.o: tools/fmapeak.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(AVX2_FLAGS) -c $< -o $@
endif

# The resampling plan's loops are plain C that GCC vectorises at -O3 (bit-identical); on
# x86-64 its line passes also have AVX2 twins, picked at run time (common/resize.h).
$(BUILD)/obj/common/resize.o: CFLAGS += -O3
$(BUILD)/obj/common/resize_avx2.o: common/resize_avx2.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -O3 $(AVX2_FLAGS) -c $< -o $@
$(BUILD)/obj/common/jpegdc_avx2.o: common/jpegdc_avx2.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(AVX2_FLAGS) -c $< -o $@

$(BUILD)/libshufflenet.a: $(ENGINE_OBJ)
	@rm -f $@
	ar rcs $@ $^
$(BUILD)/libsncommon.a: $(COMMON_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/shufflenet: $(BUILD)/obj/tools/shufflenet.o $(TOOLS_OBJ) $(LIBS_A)
	$(CC) $(LDFLAGS) -o $@ $^ $(IMG_LIBS) $(JSON_LIBS) $(LDLIBS_BASE)

$(BUILD)/shufflenet-server: $(SERVER_OBJ) $(LIBS_A)
	$(CC) $(LDFLAGS) -o $@ $^ $(HTTP_LIBS) $(IMG_LIBS) $(JSON_LIBS) $(LDLIBS_BASE)

$(BUILD)/shufflenet-loadgen: $(call obj,$(LOADGEN_SRC)) $(LIBS_A)
	$(CC) $(LDFLAGS) -o $@ $^ $(JSON_LIBS) $(LDLIBS_BASE)

# fast mode's 1/8 JPEG decode, skipping decoder vs libjpeg-turbo (docs/request-path.md)
$(BUILD)/decode-ab: $(BUILD)/obj/bench/decode-ab.o $(LIBS_A)
	$(CC) $(LDFLAGS) -o $@ $^ $(IMG_LIBS) $(LDLIBS_BASE)

# The unit tests link the tools' objects and the server objects they test.
$(BUILD)/test-unit: $(call obj,$(UNIT_SRC)) $(TOOLS_OBJ) $(BUILD)/obj/server/multipart.o \
                   $(BUILD)/obj/server/limits.o $(BUILD)/obj/server/oip.o \
                   $(BUILD)/obj/server/oip_reply.o $(LIBS_A) \
                   $(BUILD)/obj/bench/loadgen_hist.o $(BUILD)/obj/bench/loadgen_http.o
	$(CC) $(LDFLAGS) -o $@ $^ -lcriterion $(IMG_LIBS) $(JSON_LIBS) $(LDLIBS_BASE)

# ---- set-up -------------------------------------------------------------------------
DEB_PKGS := build-essential pkg-config libjpeg62-turbo-dev libpng-dev libjansson-dev \
            libmicrohttpd-dev libcriterion-dev curl python3 clang wrk gnuplot-nox prometheus \
            haproxy
# node and npm (tests/deploy) come from Debian only when the machine has none of its own.
deps:
	@if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $(DEB_PKGS) && \
	  { command -v npm >/dev/null || DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq \
	      --no-install-recommends nodejs npm; }

# Installs the packages only when a header or tool is missing.
check-deps:
	@missing=0; \
	  for h in jpeglib.h png.h jansson.h microhttpd.h criterion/criterion.h; do \
	    echo "#include <$$h>" | $(CC) -E $(shell pkg-config --cflags libpng 2>/dev/null) -x c - >/dev/null 2>&1 || missing=1; \
	  done; \
	  command -v pkg-config >/dev/null || missing=1; \
	  command -v wrk >/dev/null && command -v gnuplot >/dev/null || missing=1; \
	  command -v promtool >/dev/null || missing=1; \
	  command -v haproxy >/dev/null && command -v npm >/dev/null || missing=1; \
	  if [ $$missing = 1 ]; then echo "make: installing missing build dependencies (apt-get)"; \
	    $(MAKE) --no-print-directory deps; fi

# ---- models -------------------------------------------------------------------------
# Converted trained models when ../shared (or models/) has the checkpoints.
MODELS_DIR ?= models
$(MODELS_DIR)/megvii-g3-0.5x.safetensors: $(BUILD)/shufflenet
	@mkdir -p $(MODELS_DIR)
	@if [ -f $(SHARED)/models/megvii-shufflenet-v1-g3-0.5x.pth.tar ]; then \
	  $(BUILD)/shufflenet convert $(SHARED)/models/megvii-shufflenet-v1-g3-0.5x.pth.tar $@; fi
$(MODELS_DIR)/megvii-g8-0.5x.safetensors: $(BUILD)/shufflenet
	@mkdir -p $(MODELS_DIR)
	@if [ -f $(SHARED)/models/megvii-shufflenet-v1-g8-0.5x.pth.tar ]; then \
	  $(BUILD)/shufflenet convert $(SHARED)/models/megvii-shufflenet-v1-g8-0.5x.pth.tar $@; fi

# Online: download, verify (sha256) and convert trained checkpoints into $(MODELS_DIR)/;
# offline: one line, then the same fallback as `make run`. Never leaves a partial file.
models: $(BUILD)/shufflenet
	@SN_SHARED=$(SHARED) SN_BUILD=$(BUILD) MODELS_DIR=$(MODELS_DIR) server/fetch-models.sh

# ---- tests --------------------------------------------------------------------------
test: check-deps
	@tests/check-docs.sh
	@$(MAKE) --no-print-directory test-unit
	@if [ -x tests/integration/run.sh ]; then $(MAKE) --no-print-directory test-integration; fi
	@$(MAKE) --no-print-directory test-loadgen
	@$(MAKE) --no-print-directory test-bench
	@$(MAKE) --no-print-directory test-deploy

test-unit: $(BUILD)/test-unit $(BUILD)/shufflenet
	SN_SHARED=$(SHARED) SN_BUILD=$(BUILD) tests/unit/run.sh $(BUILD)/test-unit --jobs 2

# The v2 tests check responses against the OpenAPI schema with Ajv (npm, into .cache/).
test-integration: all
	@tests/integration/oip-deps.sh
	SN_SHARED=$(SHARED) SN_BUILD=$(BUILD) tests/integration/run.sh

# deploy/ validated offline: kustomize renders, Kubernetes and CRD schemas (npm
# kubernetes-models, installed into .cache/), probes against the real server, haproxy -c.
test-deploy: $(BUILD)/shufflenet-server
	SN_BUILD=$(BUILD) tests/deploy/run.sh

# Replicas behind HAProxy on loopback under an open-loop load (tests/scale/scale_test.py);
# about 70 s. scale-bench: capacity of 1 replica x 2 workers vs 2 x 1 behind HAProxy.
scale-test: check-deps
	@$(MAKE) --no-print-directory all
	SN_SHARED=$(SHARED) SN_BUILD=$(BUILD) python3 tests/scale/scale_test.py
scale-bench: check-deps
	@$(MAKE) --no-print-directory all
	SN_SHARED=$(SHARED) SN_BUILD=$(BUILD) python3 tests/scale/scale_test.py --capacity

# The load generator against a stub server (and wrk); about 40 s.
$(BUILD)/loadgen-stub: tests/loadgen/stub_server.c
	@mkdir -p $(dir $@)
	$(CC) $(filter-out -MMD -MP,$(CFLAGS)) $(LDFLAGS) -o $@ $<

test-loadgen: $(BUILD)/shufflenet-loadgen $(BUILD)/loadgen-stub
	SN_BUILD=$(BUILD) tests/loadgen/run.sh

# The benchmark tooling's own checks (bench/cpuid-avx2.c, used by bench/compare-peers).
test-bench:
	CC=$(CC) tests/bench/run.sh

# ThreadSanitizer for the threaded parts: the server (integration suite) and the load
# generator. The Criterion unit binary is single-threaded, and libcriterion itself crashes
# at start-up under TSan, so it runs in the plain and ASan builds only.
test-tsan: check-deps
	@$(MAKE) --no-print-directory SANITIZE=thread test-integration
	@$(MAKE) --no-print-directory SANITIZE=thread test-loadgen

bench: $(BUILD)/shufflenet
	@if [ -x bench/table.sh ]; then SN_SHARED=$(SHARED) SN_BUILD=$(BUILD) bench/table.sh; \
	  else echo "bench: bench/table.sh not built yet"; fi

# Latency vs group count against the real server; <= 10 minutes.
loadtest: check-deps
	@$(MAKE) --no-print-directory all
	SN_SHARED=$(SHARED) SN_BUILD=$(BUILD) bench/loadtest.sh

# Overload soak: open loop at 1.5x saturation, RSS sampled every second (bench/soak.sh).
SOAK_SECONDS ?= 600
soak: check-deps
	@$(MAKE) --no-print-directory all
	SN_SHARED=$(SHARED) SN_BUILD=$(BUILD) SOAK_SECONDS=$(SOAK_SECONDS) bench/soak.sh

run: check-deps
	@$(MAKE) --no-print-directory all
	@if [ -x $(BUILD)/shufflenet-server ]; then SN_SHARED=$(SHARED) SN_BUILD=$(BUILD) server/run.sh; \
	  else echo "make run: the server is not built yet"; exit 1; fi

format:
	clang-format -i $(wildcard engine/*.[ch] common/*.[ch] server/*.[ch] tools/*.[ch] tests/*/*.[ch] bench/*.[ch])

clean:
	rm -rf build

# ---- fuzzing (libFuzzer, clang) -------------------------------------------------------
FUZZ_SECONDS ?= 60
FUZZ_BINS := $(patsubst tests/fuzz/%.c,$(BUILD)/%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_SERVER_OBJ := $(call obj,$(wildcard server/multipart.c server/config.c server/limits.c \
                                          server/oip.c server/oip_reply.c))
$(BUILD)/fuzz_%: $(BUILD)/obj/tests/fuzz/fuzz_%.o $(TOOLS_OBJ) $(FUZZ_SERVER_OBJ) $(LIBS_A)
	$(CC) -fsanitize=fuzzer,address,undefined -o $@ $^ $(IMG_LIBS) $(JSON_LIBS) $(LDLIBS_BASE)

.PHONY: fuzz fuzz-build fuzz-long
fuzz-build: $(FUZZ_BINS)
fuzz: check-deps build/shufflenet
	@command -v clang >/dev/null || $(MAKE) --no-print-directory deps
	@$(MAKE) --no-print-directory SANITIZE=fuzz fuzz-build
	SN_SHARED=$(SHARED) tests/fuzz/run.sh build/fuzz $(FUZZ_SECONDS)

# fuzz-long: every target until it has used FUZZ_CPU_SECONDS of CPU in total (ledger in
# build/fuzz/ledger.txt, so it can be stopped and resumed); seeds the corpora first.
FUZZ_CPU_SECONDS ?= 3600
fuzz-long:
	@$(MAKE) --no-print-directory fuzz FUZZ_SECONDS=1
	tests/fuzz/long.sh $(FUZZ_CPU_SECONDS)

# ---- ARM64 (NEON) cross-build, tests under qemu-user ------------------------------------
# test-arm64: cross-compiles the engine (NEON kernels) and the engine suites (kernels vs scalar
# on odd shapes, networks vs scalar, megvii reference logits, engine vs a naive reference, no
# allocation) with Debian's aarch64 cross gcc against tests/lite (a small stand-in for
# Criterion), and runs them under qemu-aarch64. arm64-deps installs what it needs: the cross
# compiler, qemu-user and jansson for arm64 (Debian multiarch).
ARM64_CC    ?= aarch64-linux-gnu-gcc
ARM64_BUILD := build/arm64
ARM64_CFLAGS := -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -O2 -g -MMD -MP -I. -Itests/lite
ARM64_SRC := $(filter-out engine/kernels_avx2.c engine/kernels_avx512.c,$(wildcard engine/*.c)) \
             tools/convert.c tools/pickle.c tools/pickle_vm.c tools/zip.c tools/npy.c \
             tests/lite/runner.c \
             tests/unit/test_kernels.c tests/unit/test_engine.c tests/unit/test_noalloc.c
ARM64_OBJ := $(patsubst %.c,$(ARM64_BUILD)/obj/%.o,$(ARM64_SRC))
ARM64_PKGS := gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user libjansson-dev:arm64

.PHONY: arm64-deps test-arm64
arm64-deps:
	@if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  if ! command -v $(ARM64_CC) >/dev/null || ! command -v qemu-aarch64 >/dev/null || \
	     [ ! -f /usr/lib/aarch64-linux-gnu/libjansson.a ]; then \
	    echo "make: installing the arm64 cross toolchain, qemu-user and jansson:arm64 (apt-get)"; \
	    $$SUDO dpkg --add-architecture arm64 && $$SUDO apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends \
	      $(ARM64_PKGS); fi

$(ARM64_BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(ARM64_CC) $(ARM64_CFLAGS) -c $< -o $@

# jansson is linked statically, libc dynamically: the cross toolchain's, which qemu finds with -L
# (LD_LIBRARY_PATH=/lib, under that prefix, keeps ld.so off a multiarch libc6:arm64 in
# /lib/aarch64-linux-gnu, which may be another build of glibc than the loader).
$(ARM64_BUILD)/test-engine: $(ARM64_OBJ)
	$(ARM64_CC) -o $@ $^ /usr/lib/aarch64-linux-gnu/libjansson.a -lm -lpthread

test-arm64: arm64-deps
	@$(MAKE) --no-print-directory $(ARM64_BUILD)/test-engine $(BUILD)/shufflenet
	SN_SHARED=$(SHARED) SN_BUILD=$(BUILD) qemu-aarch64 -L /usr/aarch64-linux-gnu \
	  -E LD_LIBRARY_PATH=/lib $(ARM64_BUILD)/test-engine

# ---- docker (docker/README-docker.md) ---------------------------------------------------
# docker: build the image (with no daemon here, a private one; saved to build/*.tar).
# docker-test: build, run and check it, then the compose stack; tears everything down.
# docker-arm64: the same image for linux/arm64 through QEMU, and its CLI run (docker/arm64.sh).
.PHONY: docker docker-test docker-arm64
docker:
	docker/build.sh
docker-arm64:
	docker/arm64.sh
docker-test:
	SN_SHARED=$(SHARED) docker/test.sh

-include $(shell find $(BUILD)/obj $(ARM64_BUILD)/obj -name '*.d' 2>/dev/null)
