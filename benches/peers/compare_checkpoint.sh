#!/usr/bin/env bash
# PyTorch round trip of a sagd checkpoint: trains a small U-Net for a few steps with `sagd
# train` (so that every weight, including the zero-initialised output convolutions, is
# non-zero), evaluates the network and its EMA on a fixed input in sagd
# (examples/checkpoint_forward.rs), loads the same .safetensors file into the PyTorch twin
# (benches/peers/checkpoint_peer.py) and compares. Exits non-zero if an output differs by more
# than 1e-4.
#
#   PYTHON=/path/to/venv/bin/python bash benches/peers/compare_checkpoint.sh [WORK_DIR]
#
# The venv needs torch, numpy and safetensors.
set -euo pipefail
cd "$(dirname "$0")/../.."
PYTHON=${PYTHON:-python3}
work=${1:-$(mktemp -d)}
mkdir -p "$work"
cargo build --release -p sagd-cli --quiet
cargo build --release --example checkpoint_forward --quiet
run="$work/run"
rm -rf "$run"
cat > "$work/unet.toml" <<'TOML'
seed = 3
steps = 20
batch = 16
checkpoint_every = 20
log_every = 10
parameterization = "coloured-eps"

[data]
spec = "shapes:n=256,size=3x16x16,seed=0"

[noise]
spectrum = "power-law:alpha=-0.5,eps=0.01"

[schedule]
kind = "ddpm-linear"

[model]
kind = "unet"
widths = [16, 32]
blocks = 1
attention = [8]
groups = 8

[optimizer]
lr = 1e-3
warmup = 0

[ema]
decay = 0.9
TOML
target/release/sagd train --config "$work/unet.toml" --out "$run" --quiet
ckpt=$(ls "$run"/checkpoints/*.safetensors | tail -1)
status=0
for weights in network ema; do
  flag=""; [ "$weights" = ema ] && flag="--ema"
  target/release/examples/checkpoint_forward "$ckpt" "$work/$weights" $flag
  "$PYTHON" benches/peers/checkpoint_peer.py "$ckpt" "$work/$weights" $flag || status=1
done
exit $status
