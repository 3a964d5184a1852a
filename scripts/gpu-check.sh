#!/usr/bin/env bash
# The CUDA backend's check on a GPU machine (docs/CUDA.md), prepared here and run there.
#
#   scripts/gpu-check.sh build
#       Here (no GPU needed): builds the bundle in .gpu-check/ (ignored by git): a static qlora (stripped, xz), the
#       shared libraries it loads (OpenBLAS, libarchive and their dependencies), a small random LLaMA
#       (scripts/make_tiny_llama.py), the check's spec (pipelines/tiny.yaml on that model, 5 steps) and the CPU backend's
#       losses for it. Checks the bundle is under 64 MiB (what the GPU machine accepts per call), then dry-runs
#       `run` here, which must end with the "no CUDA driver" line.
#   scripts/gpu-check.sh run OUT
#       On the GPU machine, from the repository root with .gpu-check/ beside it: each stage under `timeout`,
#       appending to OUT/summary.txt as it goes (a stage that times out still leaves what came before):
#       environment; the ops check on the CPU; every CUDA op against the scalar reference (qlora bench ops), with fp32
#       GEMMs and with bf16 ones (products within 1e-2, every other op as in fp32); compute-sanitizer memcheck of
#       the same; the check pipeline on CUDA against the CPU's losses (fp32: 1e-4 relative; bf16 compute: 2e-2) and
#       the CPU's package archive (the same files);
#       kill -9 during training and resume, byte-identical to an uninterrupted run; AdamW's moments paged under a
#       1 MB device budget (a rank-256 adapter: 4 MB of moments, most streamed from pinned host memory), byte-identical
#       to the unpaged run. About 4 minutes on an H100 once started.
#   scripts/gpu-check.sh bench OUT
#       There, after `run` (a second call: one command may run 10 minutes): `qlora bench train --backend cuda` on
#       random-weight Llama-3.2-1B and Llama-3-8B shapes (seq 2048, batch 4) next to PyTorch + peft on the same GPU
#       (bitsandbytes NF4 + double quant + paged AdamW with bf16 compute, and plain LoRA on a bf16 base; the slim
#       bitsandbytes comes in the bundle), and one step of a Llama-2-70B shape (r=64, seq 512, batch 1,
#       checkpointing, paged AdamW) for its peak device memory. At most 9 minutes: each shape has its own timeout
#       (200 + 170 + 170 s), within the 10 minutes one call may run.
set -uo pipefail
cd "$(dirname "$0")/.."
BUNDLE=.gpu-check
LIMIT=$((64 * 1024 * 1024))

build() {
    set -e
    echo "== static qlora"
    swift build -c release --static-swift-stdlib --product qlora --build-path .build-static
    rm -rf "$BUNDLE.new" && mkdir -p "$BUNDLE.new/payload/lib"
    strip -o "$BUNDLE.new/qlora" .build-static/release/qlora
    echo "== shared libraries"
    # What the binary links, then OpenBLAS (opened at run time) and what it links; glibc's own stay the machine's.
    local openblas
    openblas=$("$BUNDLE.new/qlora" devices --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["devices"][0]["gemm"]["library"])')
    for lib in $( (ldd "$BUNDLE.new/qlora"; echo "x => $openblas (0)"; ldd "$openblas") | awk '/=> \// {print $3}' | sort -u); do
        case "$(basename "$lib")" in
            libc.so*|libm.so*|libpthread.so*|libdl.so*|librt.so*|libutil.so*|ld-linux*|libresolv.so*) ;;
            *) [ "$lib" = "$openblas" ] || cp -L "$lib" "$BUNDLE.new/payload/lib/" ;;
        esac
    done
    # Under the name qlora opens it by (Sources/COpenBLAS/shim.c), found through LD_LIBRARY_PATH there.
    cp -L "$openblas" "$BUNDLE.new/payload/lib/libopenblas.so.0"
    xz -T0 -6 "$BUNDLE.new/qlora"
    echo "== tiny model, spec, CPU reference"
    python3 scripts/make_tiny_llama.py "$BUNDLE.new/payload/model"
    # The check spec: pipelines/tiny.yaml on the tiny model; `run` makes its relative paths absolute where it runs.
    sed -e 's|path: ../models/SmolLM2-135M-Instruct.Q4_1.gguf|path: model|' -e 's/^name: tiny/name: gpu-check/' \
        -e 's/^  max_steps: 4$/  max_steps: 5/' pipelines/tiny.yaml > "$BUNDLE.new/payload/check.yaml"
    grep -q '^  path: model$' "$BUNDLE.new/payload/check.yaml" && grep -q '^  max_steps: 5$' "$BUNDLE.new/payload/check.yaml"
    # Its variants: bf16 compute on CUDA; a rank-256 adapter (4 MB of AdamW moments) unpaged and under a 1 MB budget.
    sed -e 's/^seed: 42$/seed: 42\nbackend: cuda/' -e 's/^  double_quant: true$/  double_quant: true\n  compute_dtype: bfloat16/' \
        "$BUNDLE.new/payload/check.yaml" > "$BUNDLE.new/payload/check-bf16.yaml"
    sed -e 's/^  lora_rank: 8$/  lora_rank: 256/' -e 's/^  lora_alpha: 16$/  lora_alpha: 512/' \
        "$BUNDLE.new/payload/check.yaml" > "$BUNDLE.new/payload/check-unpaged.yaml"
    sed -e 's/^  learning_rate: 0.001$/  learning_rate: 0.001\n  paged_optimizer_budget_mb: 1/' \
        "$BUNDLE.new/payload/check-unpaged.yaml" > "$BUNDLE.new/payload/check-paged.yaml"
    grep -q '^backend: cuda$' "$BUNDLE.new/payload/check-bf16.yaml" && grep -q '^  compute_dtype: bfloat16$' "$BUNDLE.new/payload/check-bf16.yaml"
    grep -q '^  lora_rank: 256$' "$BUNDLE.new/payload/check-unpaged.yaml" && grep -q '^  paged_optimizer_budget_mb: 1$' "$BUNDLE.new/payload/check-paged.yaml"
    local work
    work=$(mktemp -d /tmp/gpu-check-build.XXXXXX)
    sed -e "s|\.\./|$PWD/|g" "$BUNDLE.new/payload/check.yaml" > "$BUNDLE.new/payload/check.abs.yaml"
    .build-static/release/qlora run "$BUNDLE.new/payload/check.abs.yaml" --backend cpu --run-dir "$work/cpu" --ci > "$work/cpu.log"
    cp "$work/cpu/train/metrics.jsonl" "$BUNDLE.new/cpu-train-metrics.jsonl"
    tar -tzf "$work/cpu/package/gpu-check.tar.gz" | sort > "$BUNDLE.new/cpu-archive-layout.txt"
    # The variants are valid specs, and the paged pair runs here too (the CPU's paged store: byte-identical as well).
    for v in bf16 unpaged paged; do sed -e "s|\.\./|$PWD/|g" "$BUNDLE.new/payload/check-$v.yaml" > "$BUNDLE.new/payload/check-$v.abs.yaml"; done
    .build-static/release/qlora validate "$BUNDLE.new/payload/check-"{bf16,unpaged,paged}.abs.yaml
    for v in unpaged paged; do
        .build-static/release/qlora run "$BUNDLE.new/payload/check-$v.abs.yaml" --backend cpu --run-dir "$work/$v" --to train --ci > "$work/$v.log"
    done
    cmp "$work/unpaged/train/adapter_model.safetensors" "$work/paged/train/adapter_model.safetensors"
    grep -h "paged optimizer:" "$work/paged.log" | head -1
    rm "$BUNDLE.new/payload/check"*.abs.yaml
    rm -rf "$work"
    echo "== slim bitsandbytes (the PyTorch peer's; the GPU machine has none)"
    python3 scripts/fetch_slim_bitsandbytes.py "$BUNDLE.new/payload/pylib"
    tar -C "$BUNDLE.new/payload" -cf - . | xz -T0 -6 > "$BUNDLE.new/payload.tar.xz"
    rm -rf "$BUNDLE.new/payload"
    rm -rf "$BUNDLE" && mv "$BUNDLE.new" "$BUNDLE"
    local size tree
    size=$(du -sb "$BUNDLE" | cut -f1)
    # A call carries the working tree (tracked and untracked, not ignored files) and the bundle: together under 64 MiB.
    tree=$( (git ls-files -z; git ls-files -z -o --exclude-standard) | xargs -0 du -cb 2>/dev/null | awk '$2 == "total" {t += $1} END {print t + 0}')
    echo "bundle: $BUNDLE, $size bytes ($((size / 1024 / 1024)) MiB); with the working tree's $tree bytes: $(((size + tree) / 1024 / 1024)) MiB of the 64 MiB a call carries"
    ls -la "$BUNDLE"
    if [ $((size + tree)) -ge "$LIMIT" ]; then echo "FAIL: the bundle and the working tree are over 64 MiB"; exit 1; fi
    set +e
    echo "== dry run here"
    local out
    out=$(mktemp -d /tmp/gpu-check-dry.XXXXXX)
    run "$out"
    local rc=$?
    tail -1 "$out/summary.txt"
    if [ $rc -eq 0 ] && tail -1 "$out/summary.txt" | grep -q "no CUDA driver"; then
        echo "dry run ok: the bundle unpacks and runs, and stops at the missing driver as it should here"
    else
        echo "FAIL: the dry run did not end with the no-driver line (rc $rc)"; exit 1
    fi
    # The benchmark's command lines, shrunk to one block and a few tokens, on this CPU with the bundle's
    # bitsandbytes: a wrong flag or a peer that cannot build its random model fails here, not on the GPU's clock.
    local py=.venv-torch/bin/python
    if [ -x "$py" ]; then
        echo "== benchmark command lines, dry run on the CPU (one block, 32 tokens)"
        local pylib
        pylib=$(mktemp -d /tmp/gpu-check-pylib.XXXXXX)
        xz -dc "$BUNDLE/payload.tar.xz" | tar -C "$pylib" -xf - ./pylib
        for shape in llama-3.2-1b llama3-8b llama2-70b; do
            PYTHONPATH="$pylib/pylib" .build-static/release/qlora bench train --backend cpu --model-shape "$shape" --layers 1 \
                --seq 32 --batch 1 --warmup 0 --steps 1 --checkpointing on --python "$py" --peer-device cpu --peers nf4 \
                > "$out/bench-dry-$shape.log" 2>&1
            if grep -q "^peer   NF4" "$out/bench-dry-$shape.log" && grep -q "^qlora  NF4" "$out/bench-dry-$shape.log"; then
                echo "  $shape: ours and the peer ran"
            else
                echo "FAIL: the benchmark dry run of $shape:"; cat "$out/bench-dry-$shape.log"; exit 1
            fi
        done
        rm -rf "$pylib"
    else
        echo "== benchmark dry run skipped: no $py (scripts/reference/setup_torch_venv.sh makes it)"
    fi
}

# unpack OUT: the bundle unpacked under OUT and the environment the stages run in (both subcommands).
unpack() {
    OUT=$1
    mkdir -p "$OUT"
    SUMMARY=$OUT/summary.txt
    touch "$SUMMARY"
    BIN=$OUT/bin W=$OUT/work
    mkdir -p "$BIN" "$W"
    xz -dc "$BUNDLE/qlora.xz" > "$BIN/qlora" && chmod +x "$BIN/qlora"
    xz -dc "$BUNDLE/payload.tar.xz" | tar -C "$W" -xf -
    # The spec's paths into the repository (datasets, the tokenizer fixture) made absolute; the model is beside it.
    sed -e "s|\.\./|$PWD/|g" "$W/check.yaml" > "$W/check.run.yaml"
    export LD_LIBRARY_PATH="$W/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    # NVRTC and cuBLASLt from the machine's Python wheels (PyTorch brings them), found wherever pip put them.
    local wheels
    wheels=$(python3 -c 'import glob, site, sys
paths = site.getsitepackages() + [site.getusersitepackages()] + sys.path
print(":".join(sorted({d for p in paths for d in glob.glob(p + "/nvidia/*/lib")})))' 2>/dev/null || true)
    export QLORA_CUDA_LIBRARY_PATH="${QLORA_CUDA_LIBRARY_PATH:+$QLORA_CUDA_LIBRARY_PATH:}$wheels"
    export QLORA_KERNEL_CACHE="$OUT/kernel-cache"
    # The peer's bitsandbytes (slim, from the bundle) ahead of any other.
    export PYTHONPATH="$W/pylib${PYTHONPATH:+:$PYTHONPATH}"
    Q=$BIN/qlora

    # stage NAME SECONDS COMMAND...: runs it under timeout, its output to OUT/NAME.log, a summary block appended.
    stage() {
        local name=$1 seconds=$2; shift 2
        local start=$SECONDS
        timeout "$seconds" "$@" > "$OUT/$name.log" 2>&1
        local rc=$?
        { echo "== $name: exit $rc in $((SECONDS - start)) s$([ $rc -eq 124 ] && echo " (TIMED OUT after $seconds s)")"
          tail -n 60 "$OUT/$name.log"; echo; } >> "$SUMMARY"
        return $rc
    }

}

# run OUT: the checks, on the GPU machine.
run() {
    unpack "$1"
    : > "$SUMMARY"
    stage environment 60 bash -c "nvidia-smi -L 2>&1 || true; uname -a; ldd --version | head -1; echo QLORA_CUDA_LIBRARY_PATH=\$QLORA_CUDA_LIBRARY_PATH; '$Q' devices"
    # The harness itself, on this machine's CPU (so a failure below is the GPU's, not the bundle's).
    stage ops-cpu 120 "$Q" bench ops --backend cpu --against reference
    if grep -q "^CUDA driver: none" "$OUT/environment.log"; then
        echo "no CUDA driver: $(grep '^CUDA driver: none' "$OUT/environment.log" | head -1); the GPU stages are skipped" >> "$SUMMARY"
        return 0
    fi
    stage ops-fp32 120 "$Q" bench ops --backend cuda --precision fp32 --against reference
    stage ops-bf16 120 "$Q" bench ops --backend cuda --precision bf16 --against reference
    if command -v compute-sanitizer > /dev/null; then
        stage memcheck 300 compute-sanitizer --tool memcheck --error-exitcode 9 "$Q" bench ops --backend cuda --against reference
    else
        echo "== memcheck: compute-sanitizer not found" >> "$SUMMARY"
    fi
    # parity NAME SPEC TOLERANCE: the check pipeline on CUDA, its training losses against the CPU's (relative), and its
    # package archive against the CPU's: the same files.
    parity() {
        stage "$1" 300 bash -c "'$Q' run '$2' --backend cuda --run-dir '$OUT/$1-run' --ci || exit 1
python3 - '$BUNDLE/cpu-train-metrics.jsonl' '$OUT/$1-run/train/metrics.jsonl' $3 <<'PY' || exit 1
import json, sys
cpu = [json.loads(l)['loss'] for l in open(sys.argv[1])]
gpu = [json.loads(l)['loss'] for l in open(sys.argv[2])]
goal = float(sys.argv[3])
worst = max(abs(a - b) / abs(a) for a, b in zip(cpu, gpu)) if len(cpu) == len(gpu) else float('inf')
print('cpu ', cpu); print('cuda', gpu); print('max relative loss difference %.3g (goal %g): %s' % (worst, goal, 'ok' if worst <= goal else 'FAILED'))
sys.exit(0 if worst <= goal else 1)
PY
tar -tzf '$OUT/$1-run/package/gpu-check.tar.gz' | sort | diff - '$BUNDLE/cpu-archive-layout.txt' && echo 'package archive: the same files as the CPU run'"
    }
    parity train-cpu-parity "$W/check.run.yaml" 1e-4
    sed -e "s|\.\./|$PWD/|g" "$W/check-bf16.yaml" > "$W/check-bf16.run.yaml"
    parity train-cpu-parity-bf16 "$W/check-bf16.run.yaml" 2e-2
    # Resume: 40 steps uninterrupted, then killed after the step-3 checkpoint and run again: the same adapter bytes.
    sed -e 's/max_steps: 5$/max_steps: 40/' "$W/check.run.yaml" > "$W/resume.yaml"
    stage resume 300 bash -c "
        '$Q' run '$W/resume.yaml' --backend cuda --run-dir '$OUT/resume-a' --ci > /dev/null || exit 1
        '$Q' run '$W/resume.yaml' --backend cuda --run-dir '$OUT/resume-b' --ci > '$OUT/resume-b1.log' 2>&1 & pid=\$!
        for _ in \$(seq 1 3000); do [ -d '$OUT/resume-b/train.checkpoints/step-00000003' ] && break; sleep 0.01; done
        kill -9 \$pid 2>/dev/null; wait \$pid; echo killed: exit \$?
        grep -h 'step' '$OUT/resume-b1.log' | tail -2
        '$Q' run '$W/resume.yaml' --backend cuda --run-dir '$OUT/resume-b' --ci | grep -i 'resum' | head -3
        cmp '$OUT/resume-a/train/adapter_model.safetensors' '$OUT/resume-b/train/adapter_model.safetensors' \
            && echo 'resumed run: adapter byte-identical to the uninterrupted one'"
    # Paging: the rank-256 adapter's moments under a 1 MB device budget against all of them on the device.
    for v in unpaged paged; do sed -e "s|\.\./|$PWD/|g" "$W/check-$v.yaml" > "$W/check-$v.run.yaml"; done
    stage paging 300 bash -c "
        '$Q' run '$W/check-unpaged.run.yaml' --backend cuda --run-dir '$OUT/unpaged' --to train --ci > '$OUT/unpaged.log' 2>&1 || exit 1
        '$Q' run '$W/check-paged.run.yaml' --backend cuda --run-dir '$OUT/paged' --to train --ci > '$OUT/paged.log' 2>&1 || exit 1
        grep -h 'paged optimizer:' '$OUT/paged.log' | head -1
        cmp '$OUT/unpaged/train/adapter_model.safetensors' '$OUT/paged/train/adapter_model.safetensors' \
            && echo 'paged under 1 MB: adapter byte-identical to the unpaged run'"
    echo "checks done" >> "$SUMMARY"
}

# bench OUT: the benchmark, on the GPU machine (after run, or alone).
bench() {
    unpack "$1"
    if ! nvidia-smi -L > /dev/null 2>&1; then
        echo "no CUDA driver: the benchmark needs a GPU" >> "$SUMMARY"
        return 0
    fi
    # bitsandbytes loads the library of torch's CUDA version; the slim copy has 12.8 and 13.0 (fetch_slim_bitsandbytes.py).
    local torch_cuda
    torch_cuda=$(python3 -c 'import torch; print(torch.version.cuda or "")' 2>/dev/null)
    case "$torch_cuda" in
        12.8|13.0|"") ;;
        12.*) export BNB_CUDA_VERSION=128 ;;
        13.*) export BNB_CUDA_VERSION=130 ;;
    esac
    echo "torch CUDA ${torch_cuda:-?}; BNB_CUDA_VERSION=${BNB_CUDA_VERSION:-unset}" >> "$SUMMARY"
    local common=(bench train --backend cuda --python python3 --peer-device cuda --checkpointing on)
    stage bench-llama-3.2-1b 200 "$Q" "${common[@]}" --model-shape llama-3.2-1b --seq 2048 --batch 4 --warmup 2 --steps 8 \
        --peers nf4,bf16
    stage bench-llama2-70b 170 "$Q" "${common[@]}" --model-shape llama2-70b --rank 64 --seq 512 --batch 1 --warmup 0 --steps 1 \
        --paged-budget 1024 --peers nf4
    stage bench-llama3-8b 170 "$Q" "${common[@]}" --model-shape llama3-8b --seq 2048 --batch 4 --warmup 1 --steps 3 \
        --peers nf4,bf16
    echo "benchmark done" >> "$SUMMARY"
}

case "${1:-}" in
    build) build ;;
    run) [ $# -eq 2 ] || { echo "usage: $0 run OUT"; exit 2; }; run "$2"; cat "$2/summary.txt" ;;
    bench) [ $# -eq 2 ] || { echo "usage: $0 bench OUT"; exit 2; }; bench "$2"; cat "$2/summary.txt" ;;
    *) echo "usage: $0 build | run OUT | bench OUT"; exit 2 ;;
esac
