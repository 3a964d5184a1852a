#!/usr/bin/env bash
# Proves the image (Dockerfile, target cpu) with podman, no Docker engine needed:
#   1. a Debian bookworm base from debootstrap (--variant=minbase), imported once as localhost/qlora-bookworm-base;
#   2. the image built with `podman build --isolation chroot`, the static qlora built here copied in
#      (BINARY_STAGE=prebuilt: this machine's image store has no Swift image to compile in);
#   3. `qlora run pipelines/tiny.yaml --ci` in the container, network off, runs/ and models/ mounted: succeeds; a
#      second run skips every stage; `qlora verify` accepts the archive;
#   4. a container stopped mid-stage (`podman stop`, SIGTERM through tini) exits 75 (interrupted, resumable) within
#      seconds, and the next run resumes.
# podman needs runc here (crun fails on hybrid cgroups) and ulimits at or below the hard limits: both go in a
# containers.conf given by CONTAINERS_CONF. Run as root (apt, debootstrap). Needs models/ (scripts/fetch_model.py).
# Note for users of bookworm's podman 4.3: `docker run --rm` through podman's docker shim reports exit 0 whatever the
# container returned (podman#18889); `podman run` itself reports it correctly, as used here.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
pass=0; fail=0
ok()  { echo "PASS: $*"; pass=$((pass+1)); }
bad() { echo "FAIL: $*"; fail=$((fail+1)); }

for tool in podman buildah runc debootstrap; do
    command -v "$tool" > /dev/null || { echo "installing podman buildah runc debootstrap"; \
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends podman buildah runc debootstrap > /dev/null; break; }
done
[ -f models/SmolLM2-135M-Instruct.Q4_1.gguf ] || python3 scripts/fetch_model.py

WORK=$(mktemp -d /tmp/qlora-container.XXXXXX)
trap 'podman rm -f qlora-smoke-stop > /dev/null 2>&1 || true; rm -rf "$WORK"' EXIT
cat > "$WORK/containers.conf" <<CONF
[containers]
default_ulimits = ["nofile=$(ulimit -Hn):$(ulimit -Hn)", "nproc=32768:32768"]
[engine]
runtime = "runc"
CONF
export CONTAINERS_CONF=$WORK/containers.conf

BASE=localhost/qlora-bookworm-base
if ! podman image exists "$BASE"; then
    echo "== base image (debootstrap bookworm minbase)"
    # The mirror apt uses here (deb822 `URIs:` or a one-line `deb` entry), else Debian's.
    mirror=$(grep -rhE '^(URIs:|deb) ' /etc/apt/sources.list /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list 2>/dev/null \
        | grep -oE 'https?://[^ ]+/debian/?' | head -1 || true)
    debootstrap --variant=minbase bookworm "$WORK/rootfs" "${mirror:-http://deb.debian.org/debian}" > "$WORK/debootstrap.log" 2>&1 \
        || { tail -20 "$WORK/debootstrap.log"; exit 1; }
    tar -C "$WORK/rootfs" -c . | podman import - "$BASE" > /dev/null
    rm -rf "$WORK/rootfs"
fi

echo "== static qlora"
swift build -c release --static-swift-stdlib --product qlora --build-path .build-static > "$WORK/build.log" 2>&1
mkdir -p docker/prebuilt
strip -o docker/prebuilt/qlora .build-static/release/qlora

echo "== image"
IMAGE=localhost/qlora:smoke
podman build --isolation chroot --target cpu --build-arg RUNTIME_IMAGE="$BASE" --build-arg BINARY_STAGE=prebuilt \
    -t "$IMAGE" . > "$WORK/image.log" 2>&1 || { tail -30 "$WORK/image.log"; exit 1; }
podman run --rm --network none "$IMAGE" --version > "$WORK/version.log" 2>&1 \
    && ok "the image starts: $(cat "$WORK/version.log")" || bad "qlora --version in the image: $(cat "$WORK/version.log")"
[ "$(podman image inspect --format '{{.Config.User}}' "$IMAGE")" != "" ] && ok "runs as user $(podman image inspect --format '{{.Config.User}}' "$IMAGE")" || bad "the image runs as root"

mkdir -p "$WORK/runs" && chmod 777 "$WORK/runs"
run() { podman run --rm --network none -v "$WORK/runs:/work/runs" -v "$ROOT/models:/work/models:ro" "$IMAGE" "$@"; }
if run run pipelines/tiny.yaml --ci > "$WORK/run1.log" 2>&1; then ok "tiny pipeline in the container"; else bad "tiny pipeline: $(tail -5 "$WORK/run1.log")"; fi
if run run pipelines/tiny.yaml --ci > "$WORK/run2.log" 2>&1 && grep -q "everything up to date" "$WORK/run2.log"; then
    ok "second run skips every stage"
else
    bad "second run: $(tail -3 "$WORK/run2.log")"
fi
if run verify runs/tiny/package/tiny.tar.gz > "$WORK/verify.log" 2>&1; then ok "verify accepts the archive"; else bad "verify: $(tail -3 "$WORK/verify.log")"; fi

# Stop mid-stage: training rerun from scratch, SIGTERM once a checkpoint exists.
podman run -d --name qlora-smoke-stop --network none -v "$WORK/runs:/work/runs" -v "$ROOT/models:/work/models:ro" "$IMAGE" \
    run pipelines/tiny.yaml --ci --from train > /dev/null
for _ in $(seq 1 600); do [ -d "$WORK/runs/tiny/train.checkpoints/step-00000001" ] && break; sleep 0.2; done
start=$SECONDS
podman stop -t 60 qlora-smoke-stop > /dev/null
took=$((SECONDS - start))
code=$(podman inspect --format '{{.State.ExitCode}}' qlora-smoke-stop)
podman logs qlora-smoke-stop > "$WORK/stop.log" 2>&1 || true
podman rm qlora-smoke-stop > /dev/null
if [ "$code" = "75" ] && [ "$took" -le 30 ] && grep -q '"status" : "interrupted"\|"status": "interrupted"' "$WORK/runs/tiny/summary.json"; then
    ok "podman stop mid-training: exit 75 in ${took} s, summary says interrupted"
else
    bad "podman stop: exit $code after ${took} s; $(tail -3 "$WORK/stop.log")"
fi
# The same command again (the interrupted --from train left the committed outputs of the first run in place, so only
# --from train reruns training, now from the checkpoint the stop saved).
if run run pipelines/tiny.yaml --ci --from train > "$WORK/run3.log" 2>&1 && grep -q "resumed from step-" "$WORK/run3.log"; then
    ok "the stopped run resumes in a new container"
else
    bad "resume after stop: $(tail -3 "$WORK/run3.log")"
fi
echo "container smoke: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
