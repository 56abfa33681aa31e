#!/usr/bin/env bash
# Doodlebox installer: idempotent, no root needed.
#
# 1. libtorch: honours an existing $LIBTORCH; otherwise installs PyTorch 2.13.0 (what tch 0.26
#    expects) into a local virtual environment (.venv) from the Python package registry.
# 2. Writes .cargo/config.toml so that plain `cargo build` / `cargo test` find libtorch.
# 3. Builds the release binary with an rpath to libtorch (see build.rs), so it runs without
#    LD_LIBRARY_PATH.
set -euo pipefail
cd "$(dirname "$0")"
root=$(pwd)
TORCH_VERSION=2.13.0

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }

if [ -n "${LIBTORCH:-}" ]; then
    say "using LIBTORCH=$LIBTORCH"
    libtorch=$(cd "$LIBTORCH" && pwd)
else
    py=${PYTHON:-python3}
    command -v "$py" >/dev/null || { echo "install.sh: python3 is needed to fetch libtorch (or set LIBTORCH)" >&2; exit 1; }
    if [ ! -x .venv/bin/python ]; then
        say "creating a Python virtual environment in .venv"
        "$py" -m venv .venv
    fi
    have=$(.venv/bin/python -c 'import torch; print(torch.__version__.split("+")[0])' 2>/dev/null || true)
    if [ "$have" != "$TORCH_VERSION" ]; then
        say "installing PyTorch $TORCH_VERSION into .venv (about 5 GB, once)"
        .venv/bin/pip install --quiet --disable-pip-version-check "torch==$TORCH_VERSION"
    else
        say "PyTorch $TORCH_VERSION already in .venv"
    fi
    libtorch=$(.venv/bin/python -c 'import os, torch; print(os.path.dirname(torch.__file__))')
fi
[ -f "$libtorch/lib/libtorch_cpu.so" ] || { echo "install.sh: $libtorch does not look like libtorch (no lib/libtorch_cpu.so)" >&2; exit 1; }

mkdir -p .cargo
cat > .cargo/config.toml <<TOML
# Written by install.sh; not tracked. Lets cargo find libtorch without extra variables.
[env]
LIBTORCH = "$libtorch"
LIBTORCH_CXX11_ABI = "1"
TOML

command -v cargo >/dev/null || { echo "install.sh: cargo (Rust) is needed: https://rustup.rs" >&2; exit 1; }
say "building the release binary"
cargo build --release --locked
test -x target/release/doodlebox || { echo "install.sh: the build failed" >&2; exit 1; }

cat <<MSG

Doodlebox is built. Start it with:

    ./target/release/doodlebox

then open http://localhost:8080 (players on your network: the LAN address it prints).
Data goes to ./doodlebox-data (change with --data-dir); see --help for every option.
MSG
