# qlora container image, first version: CPU build. The CUDA issue adds the runtime libraries that the
# binary dlopens (driver, cuBLAS, NVRTC); the binary itself builds and runs without them.
#
#   docker build -t qlora .
#   docker run --rm -v $PWD/runs:/work/runs qlora run pipelines/tiny.yaml
FROM swift:6.1-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends zlib1g-dev libopenblas-dev && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Package.swift ./
COPY Sources Sources
COPY Tests Tests
RUN swift build -c release --product qlora --static-swift-stdlib

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends zlib1g libopenblas0-pthread ca-certificates python3 python3-yaml python3-pip \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/.build/release/qlora /usr/local/bin/qlora
WORKDIR /work
COPY pipelines pipelines
COPY datasets datasets
COPY scripts scripts
ENTRYPOINT ["qlora"]
CMD ["--help"]
