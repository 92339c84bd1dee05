#!/usr/bin/env bash
# Side-by-side coloured-noise throughput: sagd against NumPy (fftn, the papers' Appendix-E
# style, and rfft2) and PyTorch (torch.fft.rfft2), same shapes, spectrum and timing method,
# one run on this machine. Prints images/s and the ratio sagd / peer.
#
#   PYTHON=/path/to/venv/bin/python bash benches/peers/compare_noise.sh
#
# PYTHON must have numpy and torch (see README, "Benchmarks").
set -euo pipefail
cd "$(dirname "$0")/../.."
PYTHON=${PYTHON:-python3}
cargo build --release --example noise_throughput --quiet
sagd_json=$(target/release/examples/noise_throughput)
peer_json=$("$PYTHON" benches/peers/noise_peer.py --json 2>/dev/null)
"$PYTHON" - "$sagd_json" "$peer_json" <<'PY'
import json, sys
sagd = {tuple(r["shape"]): r for r in json.loads(sys.argv[1])}
peers = json.loads(sys.argv[2])
print(f"{'shape':<16} {'peer':<12} {'threads':>7} {'peer img/s':>12} {'sagd img/s':>12} {'sagd/peer':>10}")
for p in peers:
    s = sagd[tuple(p["shape"])]
    shape = "x".join(map(str, p["shape"]))
    print(f"{shape:<16} {p['impl']:<12} {p['threads']:>7} {p['images_per_s']:>12.1f} "
          f"{s['images_per_s']:>12.1f} {s['images_per_s'] / p['images_per_s']:>10.2f}")
print(f"sagd threads: {next(iter(sagd.values()))['threads']}")
PY
