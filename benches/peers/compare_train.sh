#!/usr/bin/env bash
# Side-by-side training-step throughput and peak memory: sagd's U-Net presets against the same
# architecture and step in PyTorch (benches/peers/train_peer.py), batches of 64 x 3 x 32 x 32,
# one run each on this machine, each preset in its own process so peak memory is its own.
#
#   PYTHON=/path/to/venv/bin/python bash benches/peers/compare_train.sh [tiny] [paper]
#
# Another burn backend for sagd: FEATURES=tch SAGD_BENCH_DEVICE=libtorch (with LIBTORCH set to a
# libtorch 2.9.0, see the README's Benchmarks), or FEATURES=ndarray SAGD_BENCH_DEVICE=ndarray.
set -euo pipefail
cd "$(dirname "$0")/../.."
PYTHON=${PYTHON:-python3}
presets=("$@")
[ ${#presets[@]} -eq 0 ] && presets=(tiny paper)
cargo build --release --example train_throughput --quiet ${FEATURES:+--features "$FEATURES"}
printf '%-6s %10s %14s %14s %10s %12s %12s\n' preset params "sagd img/s" "torch img/s" ratio "sagd MiB" "torch MiB"
for p in "${presets[@]}"; do
  s=$(target/release/examples/train_throughput "$p")
  t=$("$PYTHON" benches/peers/train_peer.py "$p" 2>/dev/null)
  "$PYTHON" - "$s" "$t" <<'PY'
import json, sys
s, t = json.loads(sys.argv[1]), json.loads(sys.argv[2])
print(f"{s['preset']:<6} {s['params']:>10} {s['images_per_s']:>14.1f} {t['images_per_s']:>14.1f} "
      f"{s['images_per_s'] / t['images_per_s']:>10.2f} {s['peak_rss_mib']:>12.0f} {t['peak_rss_mib']:>12.0f}"
      f"   (torch params {t['params']}, threads sagd {s['threads']} / torch {t['threads']})")
PY
done
