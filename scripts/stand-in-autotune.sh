#!/usr/bin/env bash
# Regenerates tests/stand-in/autotune.db.gz (gzip of an SQLite file): the autotune decisions (which kernel won, per shape
# key) of every kernel the stand-in tests run, at CUBECL_AUTOTUNE_LEVEL=minimal.
#
# Autotuning times every candidate kernel of every new shape, and on the CPU each candidate is
# first JIT-compiled: from a cold cache the stand-in tests spend over half an hour tuning
# (the tiny U-Net's gradient test alone about 20 minutes), more than CI's budget. CI copies
# this file into the autotune cache (`target/environment/stand-in.db`, CUBECL_ENVIRONMENT=
# stand-in), so it compiles only the winners. cubecl checks each entry against the candidate
# set it was tuned over and keys it by the cubecl version and the device, so a stale file costs
# tuning time, never a wrong result; rerun this after changing a test's shapes or the burn or
# cubecl versions (about 45 minutes on 2 cores).
#
#   SAGD_MODELS_DIR=../shared/models bash scripts/stand-in-autotune.sh
set -euo pipefail
cd "$(dirname "$0")/.."
: "${SAGD_MODELS_DIR:?set SAGD_MODELS_DIR to the shared models folder (the Inception test reads it)}"
name="stand-in-regen-$$"
db="target/environment/$name.db"
trap 'rm -f "$db" "$db"-*' EXIT
bash scripts/setup-cuda-build.sh
SAGD_TEST_DEVICE=cube-cpu CUBECL_AUTOTUNE_LEVEL=minimal CUBECL_ENVIRONMENT="$name" \
    SAGD_MODELS_DIR="$(cd "$SAGD_MODELS_DIR" && pwd)" \
    cargo test --features sagd/cube-cpu -p sagd -p sagd-core -p sagd-samplers --test it -- \
    --include-ignored stand_in device_noise ddim_and_heun
# Keep the autotune namespaces only (not the session records), as one self-contained file.
python3 - "$db" tests/stand-in/autotune.db.gz <<'PY'
import gzip, os, shutil, sqlite3, sys
source, target = sys.argv[1], sys.argv[2]
conn = sqlite3.connect(source)
tmp = target + ".tmp"
if os.path.exists(tmp):
    os.remove(tmp)
out = sqlite3.connect(tmp)
conn.backup(out)
conn.close()
out.execute("PRAGMA journal_mode=DELETE")
out.execute("DELETE FROM entries WHERE namespace NOT LIKE 'autotune/%'")
out.commit()
out.execute("VACUUM")
(count,) = out.execute("SELECT count(*) FROM entries").fetchone()
out.close()
with open(tmp, "rb") as raw, gzip.open(target + ".part", "wb", compresslevel=9) as packed:
    shutil.copyfileobj(raw, packed)
os.remove(tmp)
os.replace(target + ".part", target)
print(f"{target}: {count} autotune entries, {os.path.getsize(target)} bytes gzipped")
PY
