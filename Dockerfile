# syntax=docker/dockerfile:1
# qlora images: one Dockerfile, two targets (README.md, "Containers").
#
#   docker build --target cpu  -t qlora:cpu  .
#   docker build --target cuda -t qlora:cuda .
#   python3 scripts/fetch_model.py      # on the host: models/ is mounted, never baked in
#   docker run --rm -v "$PWD/runs:/work/runs" -v "$PWD/models:/work/models:ro" qlora:cpu run pipelines/tiny.yaml --ci
#   docker run --rm --gpus all -v "$PWD/runs:/work/runs" -v "$PWD/models:/work/models:ro" qlora:cuda devices
#
# The binary links no CUDA: the cuda target only adds the NVRTC and cuBLASLt wheels it opens at run time and the
# environment the NVIDIA container toolkit needs to inject the driver. tini is PID 1, so `docker stop` (SIGTERM)
# reaches qlora, which stops at the next safe point and exits 75 (resumable). The user is not root (UID/GID are
# build arguments, to match the owner of the mounted run directory).
ARG SWIFT_IMAGE=swift:6.3-bookworm
ARG RUNTIME_IMAGE=debian:bookworm-slim
# Where the binary comes from: `build` (compiled here), or `prebuilt` (docker/prebuilt/qlora, a static build made
# outside, e.g. by scripts/container-smoke.sh on a machine whose image store has no Swift image).
ARG BINARY_STAGE=build

FROM ${SWIFT_IMAGE} AS build
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends zlib1g-dev libopenblas-dev libarchive-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Package.swift ./
COPY Sources Sources
COPY Tests Tests
RUN swift build -c release --product qlora --static-swift-stdlib \
    && strip -o /qlora .build/release/qlora

FROM scratch AS prebuilt
COPY docker/prebuilt/qlora /qlora

# hadolint ignore=DL3006
FROM ${BINARY_STAGE} AS binary

FROM ${RUNTIME_IMAGE} AS cpu
ARG UID=10001
ARG GID=10001
# Exactly what `ldd qlora` needs beyond glibc (libarchive, zlib) plus OpenBLAS, which qlora opens at run time.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends libarchive13 zlib1g libopenblas0-pthread tini ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --gid "${GID}" qlora \
    && useradd --uid "${UID}" --gid "${GID}" --create-home --home-dir /home/qlora qlora \
    && mkdir -p /work/runs /work/models \
    && chown -R qlora:qlora /work
COPY --from=binary /qlora /usr/local/bin/qlora
WORKDIR /work
# The shipped pipelines and the small committed inputs they name (tiny.yaml's tokenizer fixture); the model is
# mounted at /work/models (pipelines refer to ../models/...).
COPY pipelines pipelines
COPY datasets datasets
COPY Tests/QLoRATokenizerTests/Fixtures/smollm2 Tests/QLoRATokenizerTests/Fixtures/smollm2
LABEL org.opencontainers.image.title="qlora" \
      org.opencontainers.image.description="QLoRA fine-tuning pipeline: NF4 + double quantization, LoRA, PEFT-compatible adapters" \
      org.opencontainers.image.source="https://github.com/qlora/qlora" \
      org.opencontainers.image.licenses="Apache-2.0"
VOLUME ["/work/runs", "/work/models"]
USER ${UID}:${GID}
ENTRYPOINT ["/usr/bin/tini", "--", "qlora"]
CMD ["--help"]

FROM cpu AS cuda
ARG UID=10001
ARG GID=10001
USER 0
COPY docker/cuda-requirements.txt /tmp/cuda-requirements.txt
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3-pip \
    && pip3 install --no-cache-dir --break-system-packages --require-hashes --no-deps --target /opt/cuda \
        -r /tmp/cuda-requirements.txt \
    && apt-get purge -y python3-pip && apt-get autoremove -y \
    && rm -rf /var/lib/apt/lists/* /tmp/cuda-requirements.txt
ENV QLORA_CUDA_LIBRARY_PATH=/opt/cuda/nvidia/cu13/lib \
    NVIDIA_VISIBLE_DEVICES=all \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility \
    QLORA_KERNEL_CACHE=/work/runs/.kernel-cache
USER ${UID}:${GID}
