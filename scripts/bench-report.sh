#!/usr/bin/env bash
# Runs every benchmark of the project side by side with the machine probes and writes
# docs/BENCHMARKS.md (and docs/bench/*.svg).
#   scripts/bench-report.sh          the full run (about half an hour on two cores)
#   scripts/bench-report.sh --quick  one second per measurement cell (figures are rougher)
# Run ./install.sh first. Nothing else should be running on the machine.
set -euo pipefail
cd "$(dirname "$0")/.."
mode="full run"
if [[ "${1:-}" == "--quick" ]]; then
    export DOODLEBOX_BENCH_SECS=1
    mode="quick run: 1 s cells"
fi
export DOODLEBOX_BENCH_MODE="$mode"
logs=target/bench-report
rm -rf "$logs" && mkdir -p "$logs"
benches=$(sed -n '/^\[\[bench\]\]/,/^name/ s/^name = "\(.*\)"/\1/p' Cargo.toml)
cargo build --release --benches --examples --locked
for bench in $benches; do
    echo "==> cargo bench --bench $bench"
    start=$(date +%s)
    if ! cargo bench --locked --bench "$bench" 2>&1 | grep -v '^\s*\(Finished\|Running\|Compiling\)' | tee "$logs/$bench.txt"; then
        echo "(the benchmark failed; its output is above)" >> "$logs/$bench.txt"
    fi
    echo $(( $(date +%s) - start )) > "$logs/$bench.secs"
done
cargo run --release --locked --example bench_report -- "$logs" docs/BENCHMARKS.md
