#!/usr/bin/env bash
# One-time setup for `cargo build --release --features cuda` (burn 0.22's CUDA backend).
#
# burn's `cuda` feature pulls cubecl-llvm, whose build dependency tracel-llvm-bundler downloads
# an LLVM 23.1.0 bundle from GitHub unless its install marker exists. This script provides the
# same LLVM from PyPI instead (`mlc-llvm-static`: static LLVM 23 with the NVPTX target), so the
# build needs no network beyond PyPI for this one step, and none at all afterwards:
#
#   1. a Python venv (default ~/.local/share/sagd/llvm23-venv; SAGD_LLVM_VENV overrides it)
#      with mlc-llvm-static[all]==23.1.1.post0;
#   2. a symlink ${XDG_DATA_HOME:-~/.local/share}/tracel/tracel-llvm-23.1.0-4 -> its prefix;
#   3. the bundler's marker file `.tracel-llvm-installed` in that prefix.
#
# Safe to run again: it reuses the venv and replaces the link. On a machine that can reach
# GitHub the bundler would download LLVM itself; running this script first avoids that too.
# Options: --check only reports whether the setup is in place (exit 0 if so, 1 if not).
set -euo pipefail

VERSION_DIR="tracel-llvm-23.1.0-4"
PACKAGE="mlc-llvm-static[all]==23.1.1.post0"
PYTHON=${PYTHON:-python3}
VENV=${SAGD_LLVM_VENV:-${XDG_DATA_HOME:-$HOME/.local/share}/sagd/llvm23-venv}
LINK_DIR="${XDG_DATA_HOME:-$HOME/.local/share}/tracel"
LINK="$LINK_DIR/$VERSION_DIR"

in_place() {
    [ -e "$LINK/.tracel-llvm-installed" ] && [ -x "$LINK/bin/llvm-config" ]
}

if [ "${1:-}" = "--check" ]; then
    if in_place; then
        echo "LLVM 23 for the cuda build is in place: $LINK -> $(readlink -f "$LINK")"
        exit 0
    fi
    echo "LLVM 23 for the cuda build is not set up ($LINK); run scripts/setup-cuda-build.sh" >&2
    exit 1
fi

if ! command -v "$PYTHON" >/dev/null; then
    echo "error: $PYTHON not found; set PYTHON to a Python 3.9+ interpreter" >&2
    exit 1
fi
if [ ! -x "$VENV/bin/python" ]; then
    echo "== creating the venv $VENV"
    "$PYTHON" -m venv "$VENV"
fi
echo "== installing $PACKAGE (about 300 MB)"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "$PACKAGE"
PREFIX=$("$VENV/bin/python" -m mlc_llvm_static.config --prefix)
if [ ! -x "$PREFIX/bin/llvm-config" ]; then
    echo "error: $PREFIX/bin/llvm-config is missing: the mlc-llvm-static install is incomplete" >&2
    exit 1
fi
mkdir -p "$LINK_DIR"
ln -sfn "$PREFIX" "$LINK"
touch "$PREFIX/.tracel-llvm-installed"
echo "== LLVM $("$PREFIX/bin/llvm-config" --version) linked at $LINK"
echo "Now build:  cargo build --release --features cuda -p sagd-cli   (about 13 minutes on 2 cores)"
