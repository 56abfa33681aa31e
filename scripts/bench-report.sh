#!/usr/bin/env bash
# Runs every benchmark of the project side by side with the machine probes and writes
# docs/BENCHMARKS.md (and docs/bench/*.svg).
#   scripts/bench-report.sh          the full run (about half an hour on two cores)
#   scripts/bench-report.sh --quick  one second per measurement cell (figures are rougher)
#   scripts/bench-report.sh --scale-10m  the scale bench on 10,000,000 drawings instead of
#       200,000 (off by default: the first build of the directory takes about 45 minutes
#       and 10 GB on two cores; later runs reuse it from $DOODLEBOX_BENCH_SCALE_DIR, default
#       /work/bench-data, and each run takes about 30 minutes more: see benches/scale.rs)
# Run ./install.sh first. Nothing else should be running on the machine.
set -euo pipefail
cd "$(dirname "$0")/.."
mode="full run"
for arg in "$@"; do
    case "$arg" in
        --quick)
            export DOODLEBOX_BENCH_SECS=1
            mode="quick run: 1 s cells"
            ;;
        --scale-10m)
            export DOODLEBOX_BENCH_SCALE_DRAWINGS=10000000
            export DOODLEBOX_BENCH_SCALE_DIR="${DOODLEBOX_BENCH_SCALE_DIR:-/work/bench-data}"
            # Rescoring 10M on the CPU takes longer than a report should: a labelled projection.
            export DOODLEBOX_BENCH_SCALE_RESCORE_WINDOW_S="${DOODLEBOX_BENCH_SCALE_RESCORE_WINDOW_S:-180}"
            ;;
        *)
            echo "usage: $0 [--quick] [--scale-10m]" >&2
            exit 2
            ;;
    esac
done
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
