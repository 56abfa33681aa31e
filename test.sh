#!/usr/bin/env bash
# Runs every check CI runs: formatting, lints, and the whole test suite (unit, API
# integration, real-binary process tests). Run ./install.sh once first.
set -euo pipefail
cd "$(dirname "$0")"
[ -f .cargo/config.toml ] || { echo "test.sh: run ./install.sh first (it provides libtorch)" >&2; exit 1; }
cargo fmt --all -- --check
cargo clippy --release --all-targets --locked -- -D warnings
cargo test --release --locked
