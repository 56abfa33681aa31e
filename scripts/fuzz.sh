#!/usr/bin/env bash
# Deep fuzzing of the parsers with cargo-fuzz (libFuzzer), for a nightly job:
#   scripts/fuzz.sh [SECONDS_PER_TARGET]   (default 300)
# Needs a nightly toolchain and cargo-fuzz (`rustup toolchain install nightly`,
# `cargo install cargo-fuzz`). CI runs the same targets on stable over mutated seeds in
# tests/fuzz_smoke.rs. Crashes land in fuzz/artifacts/<target>/.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-300}"
for target in drawing_json quickdraw_line classify_body stroke_record; do
    echo "==> fuzzing $target for ${seconds}s"
    cargo +nightly fuzz run "$target" -- -max_total_time="$seconds" -rss_limit_mb=4096
done
