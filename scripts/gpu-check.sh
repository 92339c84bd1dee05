#!/usr/bin/env bash
# The GPU checklist (../shared/docs/GPU.md) in one run, for a machine with an NVIDIA GPU, a
# Python with PyTorch (and its `nvidia` CUDA packages: CUDA 13's `nvidia/cu13` folder or CUDA
# 12's one folder per library), numpy and safetensors, and no Rust toolchain.
#
#   SAGD_BIN=gpu/sagd OUT=/path/for/results bash scripts/gpu-check.sh
#
# SAGD_BIN is a `cargo build --release --features cuda -p sagd-cli` binary (gpu/sagd.xz is
# unpacked first when only that exists). Results go under $OUT: env.txt, probe.txt,
# loss_cpu_gpu.json, oracle_gpu.json, train_*.json, sample_*.json and summary.txt.
#
# A dry run on a machine without a GPU checks the script itself with small sizes:
#   GPU_CHECK_DEVICE=cpu GPU_CHECK_QUICK=1 SAGD_BIN=target/release/sagd OUT=/tmp/gc bash scripts/gpu-check.sh
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:?set OUT to a folder for the results}
DEVICE=${GPU_CHECK_DEVICE:-cuda}
QUICK=${GPU_CHECK_QUICK:-0}
PYTHON=${PYTHON:-python3}
BIN=${SAGD_BIN:-gpu/sagd}
mkdir -p "$OUT"
log() { echo "$*" | tee -a "$OUT/summary.txt"; }
# sagd numbers GPUs as nvidia-smi does (it sets this itself); the PyTorch peers must too, or
# "the same GPU" may be another one on a machine with mixed GPU models.
export CUDA_DEVICE_ORDER=PCI_BUS_ID

"$PYTHON" -c "import numpy, safetensors" 2>/dev/null || {
    log "$PYTHON lacks numpy or safetensors (the resume check reads checkpoints with them): pip install numpy safetensors"
    exit 1
}

if [ ! -x "$BIN" ] && [ -f "$BIN.xz" ]; then
    xz -dc "$BIN.xz" > /tmp/sagd-gpu && chmod +x /tmp/sagd-gpu && BIN=/tmp/sagd-gpu
fi
[ -x "$BIN" ] || { log "no sagd binary at $BIN"; exit 1; }

# --- environment: CUDA libraries from the Python environment's `nvidia` packages ----------
if [ "$DEVICE" = cuda ]; then
    NV=$("$PYTHON" -c "import nvidia, os; print(os.path.dirname(nvidia.__path__[0]))" 2>/dev/null)
    if [ -n "$NV" ]; then
        for d in "$NV"/nvidia/cu*/lib "$NV"/nvidia/*/lib; do
            [ -d "$d" ] && LD_LIBRARY_PATH="$d:${LD_LIBRARY_PATH:-}"
        done
        # cudarc looks for unversioned names (libnvrtc.so) first; wheels ship libnvrtc.so.13.
        mkdir -p /tmp/sagd-cuda-links
        for lib in nvrtc cudart cublas cublasLt; do
            f=$(ls "$NV"/nvidia/*/lib/lib$lib.so.* 2>/dev/null | head -1)
            [ -n "$f" ] && ln -sf "$f" /tmp/sagd-cuda-links/lib$lib.so
        done
        export LD_LIBRARY_PATH="/tmp/sagd-cuda-links:$LD_LIBRARY_PATH"
        if [ -d "$NV/nvidia/cu13" ]; then
            # CUDA 13 wheels: one toolkit-like folder (include/, lib/, nvvm/ where installed).
            export CUDA_PATH=${CUDA_PATH:-$NV/nvidia/cu13}
        else
            # CUDA 12 wheels: one folder per library (cuda_runtime/include, cuda_nvrtc/include,
            # cuda_nvcc/nvvm, …); merged by links into one root, as a toolkit lays it out.
            root=/tmp/sagd-cuda-root
            mkdir -p "$root/include" "$root/lib"
            for d in "$NV"/nvidia/*/include; do [ -d "$d" ] && ln -sf "$d"/* "$root/include/"; done
            for d in "$NV"/nvidia/*/lib; do [ -d "$d" ] && ln -sf "$d"/* "$root/lib/"; done
            [ -d "$NV/nvidia/cuda_nvcc/nvvm" ] && ln -sfn "$NV/nvidia/cuda_nvcc/nvvm" "$root/nvvm"
            export CUDA_PATH=${CUDA_PATH:-$root}
        fi
    fi
fi
{
    echo "date: $(date -u)"
    nvidia-smi 2>&1 | head -15
    "$PYTHON" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.is_available())" 2>&1
    echo "LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}"
    echo "CUDA_PATH=${CUDA_PATH:-}"
    ls "${CUDA_PATH:-/nonexistent}/nvvm/libdevice" 2>&1
} > "$OUT/env.txt"
log "== environment: $OUT/env.txt"

WORK=$(mktemp -d)
steps_train=30; batch_train=128; count_sample=256; batch_sample=128; preset=paper
if [ "$QUICK" = 1 ]; then steps_train=3; batch_train=4; count_sample=4; batch_sample=4; preset=tiny; fi

config() { # $1 file, $2 preset, $3 batch, $4 steps, $5 draw
    cat > "$1" <<EOF
seed = 0
steps = $4
batch = $3
checkpoint_every = 100000
log_every = 1
keep_checkpoints = 1
[data]
spec = "shapes:n=1024,size=3x32x32,seed=0"
[noise]
spectrum = "power-law:alpha=-0.5,eps=0.05"
draw = "$5"
[model]
kind = "unet"
preset = "$2"
[optimizer]
warmup = 0
decay = "constant"
EOF
}

# --- 1. the device probe and a first step ----------------------------------------------------
config "$WORK/one.toml" tiny 8 2 host
"$BIN" train --config "$WORK/one.toml" --out "$WORK/gpu1" --device "$DEVICE" --quiet --json \
    > "$OUT/probe.txt" 2>&1
log "== probe and two steps on $DEVICE: exit $? ($OUT/probe.txt)"

# --- 2. same weights, same batch: the loss on CPU and on the device --------------------------
"$BIN" train --config "$WORK/one.toml" --out "$WORK/cpu1" --device cpu --quiet --json > /dev/null 2>&1
"$PYTHON" - "$WORK/cpu1/log.csv" "$WORK/gpu1/log.csv" > "$OUT/loss_cpu_gpu.json" <<'PY'
import csv, json, sys
rows = [list(csv.DictReader(open(p))) for p in sys.argv[1:]]
out = []
for a, b in zip(*rows):
    la, lb = float(a["loss"]), float(b["loss"])
    out.append({"step": int(a["step"]), "cpu": la, "device": lb, "relative": abs(la - lb) / abs(la)})
print(json.dumps({"rows": out, "pass_1e-3": all(r["relative"] < 1e-3 for r in out[:1])}))
PY
log "== loss on cpu and $DEVICE (step 1 within 1e-3): $(cat "$OUT/loss_cpu_gpu.json")"

# --- 3. oracle sampling on the device: per-mode variances -----------------------------------
"$BIN" sample --oracle grf:beta=2,size=1x16x16 --spectrum power-law:alpha=-0.5,eps=0.05 \
    --sampler heun --steps 50 --count 512 --device "$DEVICE" --out "$WORK/oracle" --quiet --json \
    > "$OUT/oracle_gpu.json" 2>&1
log "== oracle sampling on $DEVICE: exit $? ($OUT/oracle_gpu.json)"

# --- 4. throughput side by side: training and DDIM-50 sampling -------------------------------
config "$WORK/train.toml" "$preset" "$batch_train" "$steps_train" auto
"$BIN" train --config "$WORK/train.toml" --out "$WORK/train" --device "$DEVICE" --quiet --json \
    > "$OUT/train_sagd.json" 2>&1
tail -n 1 "$WORK/train/log.csv" >> "$OUT/train_sagd.json" 2>/dev/null
log "== sagd train $preset batch $batch_train (last log row: images/s last): $(tail -n 1 "$OUT/train_sagd.json")"
DEVICE=$DEVICE BATCH=$batch_train SAGD_BENCH_STEPS=10 "$PYTHON" benches/peers/train_peer.py "$preset" \
    > "$OUT/train_torch.json" 2>&1
log "== torch train: $(tail -n 1 "$OUT/train_torch.json")"

"$BIN" sample --checkpoint "$WORK/train" --sampler ddim --steps 50 --count "$count_sample" \
    --batch "$batch_sample" --device "$DEVICE" --out "$WORK/ddim" --quiet --json \
    > "$OUT/sample_sagd.json" 2>&1
log "== sagd DDIM-50: exit $? ($OUT/sample_sagd.json)"
"$PYTHON" benches/peers/sample_peer.py "$preset" --batch "$batch_sample" --steps 50 --repeats 3 \
    --device "$DEVICE" > "$OUT/sample_torch.json" 2>&1
log "== torch DDIM-50: $(tail -n 1 "$OUT/sample_torch.json")"
# --- 5. fused, autotuned and resumed: a run stopped after step 2 and resumed in a new process
# (autotune's choices read back from its on-disk cache) against the uninterrupted run --------
config "$WORK/resume.toml" tiny 8 4 auto
# A first run tunes this config's kernels: while autotune tunes, it may run an untuned candidate,
# so only runs after it share the cache's choices (the stand-in test does the same).
"$BIN" train --config "$WORK/resume.toml" --out "$WORK/tuning" --device "$DEVICE" --quiet > /dev/null 2>&1
"$BIN" train --config "$WORK/resume.toml" --out "$WORK/whole" --device "$DEVICE" --quiet > /dev/null 2>&1
"$BIN" train --config "$WORK/resume.toml" --out "$WORK/split" --device "$DEVICE" --stop-at 2 --quiet > /dev/null 2>&1
"$BIN" train --config "$WORK/resume.toml" --out "$WORK/split" --device "$DEVICE" --resume --quiet > /dev/null 2>&1
"$PYTHON" - "$WORK/whole" "$WORK/split" > "$OUT/resume_gpu.json" <<'PY'
import glob, json, sys
import numpy as np
from safetensors.numpy import load_file
last = [load_file(sorted(glob.glob(d + "/checkpoints/*.safetensors"))[-1]) for d in sys.argv[1:]]
gap = max(float(np.max(np.abs(last[0][k] - last[1][k]))) for k in last[0])
print(json.dumps({"tensors": len(last[0]), "max_abs_gap": gap, "bit_exact": gap == 0.0}))
PY
log "== stop at 2, resume in a new process, vs 4 steps at once on $DEVICE: $(cat "$OUT/resume_gpu.json")"
rm -rf "$WORK"
