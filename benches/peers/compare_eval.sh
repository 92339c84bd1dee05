#!/usr/bin/env bash
# FID feature-extraction throughput and the FID itself: `sagd eval` against pytorch-fid 0.3.0
# (benches/peers/fid_peer.py) on the same images (the first N MNIST training images against the
# first N test images), the same weights and the same number of threads, one run each.
#
#   PYTHON=/path/to/venv/bin/python SAGD_DATA_DIR=../shared/data SAGD_MODELS_DIR=../shared/models \
#     bash benches/peers/compare_eval.sh [N]
#
# Another burn backend for sagd: FEATURES=tch DEVICE=libtorch (see the README's Benchmarks).
set -euo pipefail
cd "$(dirname "$0")/../.."
PYTHON=${PYTHON:-python3}
N=${1:-1000}
DATA=${SAGD_DATA_DIR:?set SAGD_DATA_DIR to the shared data folder}
WEIGHTS=${SAGD_MODELS_DIR:?set SAGD_MODELS_DIR to the shared models folder}/fid-inception/pt_inception-2015-12-05.safetensors
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cargo build --release -p sagd-cli --quiet ${FEATURES:+--features "$FEATURES"}
sagd=target/release/sagd
# `data export` writes the models' range ([-1, 1] for 8-bit data); evaluation takes [0, 1].
for split in train test; do
  "$sagd" data export "mnist:$DATA/mnist,split=$split" --count "$N" --out "$work/$split.npy" >/dev/null
  "$PYTHON" -c "import numpy as np, sys; a = np.load(sys.argv[1]); np.save(sys.argv[1], ((a + 1) / 2).astype(np.float32))" "$work/$split.npy"
done
s=$("$sagd" eval --samples "$work/train.npy" --reference "$work/test.npy" --metrics fid \
      --inception "$WEIGHTS" --out "$work/sagd" --quiet --json --device "${DEVICE:-cpu}" 2>/dev/null)
t=$("$PYTHON" benches/peers/fid_peer.py "$work/train.npy" "$work/test.npy" --weights "$WEIGHTS" --threads 2 2>/dev/null)
"$PYTHON" - "$s" "$t" <<'PY'
import json, sys
s, t = json.loads(sys.argv[1]), json.loads(sys.argv[2])
print(f"images {sum(t['n'])}: sagd {s['feature_images_per_s']:.2f} img/s, pytorch-fid {t['images_per_s']:.2f} img/s, "
      f"ratio {s['feature_images_per_s'] / t['images_per_s']:.2f}")
print(f"FID sagd {s['fid']:.6f}, pytorch-fid {t['fid']:.6f}, relative difference "
      f"{abs(s['fid'] - t['fid']) / t['fid']:.2e}   (torch {t['torch']}, {t['threads']} threads)")
PY
