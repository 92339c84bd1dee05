#!/usr/bin/env bash
# Side-by-side sampling throughput and peak memory: deterministic DDIM (eta = 0, STEPS levels of
# the DDPM-linear schedule) with sagd's U-Net presets against the same architecture and sampler
# in PyTorch (benches/peers/sample_peer.py), batches of BATCH x 3 x 32 x 32 from coloured noise,
# one warm-up and a median of 3 full runs each, one run each on this machine, each preset in its
# own process so peak memory is its own.
#
#   PYTHON=/path/to/venv/bin/python BATCH=64 STEPS=50 bash benches/peers/compare_sample.sh [tiny] [paper]
#
# Another burn backend for sagd: FEATURES=tch SAGD_BENCH_DEVICE=libtorch (or ndarray), as in
# compare_train.sh.
set -euo pipefail
cd "$(dirname "$0")/../.."
PYTHON=${PYTHON:-python3}
BATCH=${BATCH:-64}
STEPS=${STEPS:-50}
presets=("$@")
[ ${#presets[@]} -eq 0 ] && presets=(tiny)
cargo build --release --example sample_throughput --quiet ${FEATURES:+--features "$FEATURES"}
echo "DDIM-$STEPS, batch $BATCH"
printf '%-6s %10s %14s %14s %10s %12s %12s\n' preset params "sagd img/s" "torch img/s" ratio "sagd MiB" "torch MiB"
for p in "${presets[@]}"; do
  s=$(SAGD_BENCH_BATCH=$BATCH SAGD_BENCH_STEPS=$STEPS target/release/examples/sample_throughput "$p")
  t=$("$PYTHON" benches/peers/sample_peer.py "$p" --batch "$BATCH" --steps "$STEPS" 2>/dev/null)
  "$PYTHON" - "$s" "$t" <<'PY'
import json, sys
s, t = json.loads(sys.argv[1]), json.loads(sys.argv[2])
print(f"{s['preset']:<6} {s['params']:>10} {s['images_per_s']:>14.2f} {t['images_per_s']:>14.2f} "
      f"{s['images_per_s'] / t['images_per_s']:>10.2f} {s['peak_rss_mib']:>12.0f} {t['peak_rss_mib']:>12.0f}"
      f"   (torch params {t['params']}, threads sagd {s['threads']} / torch {t['threads']})")
PY
done
