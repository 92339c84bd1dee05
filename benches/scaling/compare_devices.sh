#!/usr/bin/env bash
# Data-parallel scaling of `sagd train --devices`: the same run on 1 replica and on N, one run
# each on this machine, reporting images/s and the scaling efficiency (speed-up / N).
#
#   bash benches/scaling/compare_devices.sh [DEVICES ...]      # default: cpu,cpu
#   BATCH=64 STEPS=60 bash benches/scaling/compare_devices.sh cpu,cpu cpu,cpu,cpu,cpu
#   FEATURES=cuda bash benches/scaling/compare_devices.sh cuda:0,cuda:1   # on a multi-GPU host
#
# Each run trains STEPS steps (default 60) of benches/scaling/unet-32.toml with batch BATCH
# (default 32; STEPS in 11..1000); the rate is the mean of log.csv's images_per_sec (a row
# every 10 steps) over every row but the first (10 steps of warm-up: allocation, first kernels).
# The 1-replica run uses the first device of the list.
set -euo pipefail
cd "$(dirname "$0")/../.."
BATCH=${BATCH:-32}
STEPS=${STEPS:-60}
case "${1:-}" in
  -h|--help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
esac
if ! [[ "$STEPS" =~ ^[0-9]+$ ]] || [ "$STEPS" -le 10 ] || [ "$STEPS" -gt 1000 ]; then
  echo "STEPS=$STEPS: expected 11 to 1000 (the first 10 steps are warm-up, left out)" >&2
  exit 2
fi
lists=("$@")
[ ${#lists[@]} -eq 0 ] && lists=(cpu,cpu)
cargo build --release -p sagd-cli --quiet ${FEATURES:+--features "$FEATURES"}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
sed "s/^batch = .*/batch = $BATCH/" benches/scaling/unet-32.toml > "$tmp/config.toml"
rate() { # devices -> images/s
  local out="$tmp/run-${1//[:,]/-}"
  target/release/sagd train --config "$tmp/config.toml" --devices "$1" --stop-at "$STEPS" \
    --out "$out" --quiet >/dev/null 2>"$tmp/err" || { cat "$tmp/err" >&2; exit 1; }
  awk -F, 'NR > 2 { s += $5; n++ } END { if (n == 0) exit 1; printf "%.2f", s / n }' "$out/log.csv"
}
printf '%-28s %8s %12s %10s %11s\n' devices replicas "images/s" speed-up efficiency
for list in "${lists[@]}"; do
  n=$(awk -F, '{ print NF }' <<<"$list")
  one=$(rate "${list%%,*}")
  many=$(rate "$list")
  printf '%-28s %8d %12s %10s %11s\n' "${list%%,*}" 1 "$one" 1.00 1.00
  awk -v l="$list" -v n="$n" -v a="$one" -v b="$many" \
    'BEGIN { printf "%-28s %8d %12.2f %10.2f %11.2f\n", l, n, b, b / a, b / a / n }'
done
echo "batch $BATCH, $STEPS steps per run ($(nproc) cores)"
