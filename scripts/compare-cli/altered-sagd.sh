#!/bin/bash
# Test double for compare.py: the old binary, with a few outputs altered on purpose.
# Usage: python3 scripts/compare-cli/compare.py /work/old-bin/sagd scripts/compare-cli/altered-sagd.sh
# must report exactly: spectra-list, spectra-list-json, noise-same-seed, verify-data-refused,
# train-mlp-straight, sample-ddim, sample-exists.
real=/work/old-bin/sagd   # the binary it wraps (compare.py passes no environment through: edit here)
case "$1 $2" in
  "spectra list")            # stdout altered
    "$real" "$@" | sed 's/white noise/WHITE noise/'; exit "${PIPESTATUS[0]}";;
  "verify power-law:alpha=-0.5")  # exit code altered when the check fails
    "$real" "$@"; rc=$?; [ "$rc" = 1 ] && exit 3; exit "$rc";;
esac
"$real" "$@"; rc=$?
out=""; prev=""
for a in "$@"; do [ "$prev" = "--out" ] && out="$a"; prev="$a"; done
if [ "$1" = noise ] && [ "$out" = noise/pl2.npy ]; then
  printf '\0' | dd of="$out" bs=1 seek=200 conv=notrunc status=none     # one array value altered
fi
if [ "$1" = sample ] && [ "$out" = samples/ddim ]; then                  # a JSON file altered
  python3 -c "import json; p='$out/summary.json'; d=json.load(open(p)); d['steps']=11; json.dump(d, open(p,'w'), indent=2)"
fi
if [ "$1" = train ] && [ "$out" = runs/mlp-straight ]; then             # one checkpoint tensor byte altered
  f=runs/mlp-straight/checkpoints/step-00000012.safetensors
  size=$(stat -c %s "$f"); printf '\7' | dd of="$f" bs=1 seek=$((size - 5)) conv=notrunc status=none
fi
exit $rc
