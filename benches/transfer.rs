//! Import and export throughput on generated Quick, Draw! raw drawings.
//!
//! Import: the code `doodlebox import FILE` runs when no server is up
//! (`transfer_cli::LocalStores`), in this process, on a file of `DRAWINGS` raw lines.
//! Export: `doodlebox export --format F` as a child process per format, so that its peak
//! resident memory (VmHWM, sampled from /proc while it runs) is the export's alone.
//! Prints figures; asserts nothing about speed.
//!
//! `cargo bench --bench transfer` (DOODLEBOX_BENCH_DRAWINGS overrides the count).

use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};

use doodlebox::cli::transfer::LocalStores;

/// Drawings generated and imported.
const DRAWINGS: usize = 100_000;
/// The shapes the drawings are spread over (all seeded by default).
const SHAPES: [&str; 5] = ["line", "circle", "square", "triangle", "heart"];
/// How often a running export's peak memory is sampled.
const SAMPLE_EVERY: Duration = Duration::from_millis(5);

fn main() {
    let drawings = std::env::var("DOODLEBOX_BENCH_DRAWINGS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DRAWINGS);
    let dir = tempfile::tempdir().expect("temp dir");
    let input = dir.path().join("raw.ndjson");
    let bytes = generate(&input, drawings);
    println!(
        "transfer benchmark: {drawings} generated raw drawings, {:.0} bytes a line, {} cores",
        bytes as f64 / drawings as f64,
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let data = dir.path().join("data");
    let local = LocalStores::open(&data).expect("stores open");
    let started = Instant::now();
    let cpu_before = cpu_seconds();
    let report = local.import_file(&input, false).expect("import");
    local.close();
    let seconds = started.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu_before;
    assert_eq!(report.imported as usize, drawings, "{report:?}");
    println!(
        "import (CLI path, no server): {drawings} drawings in {seconds:.2} s = {:.0} drawings/s, {:.1} MB/s",
        drawings as f64 / seconds,
        bytes as f64 / seconds / 1e6
    );
    // The machine is shared: CPU time says what the import costs whatever else runs.
    println!(
        "import CPU time: {cpu:.2} s over all threads = {:.0} drawings per CPU-second ({:.0} drawings/s on 2 idle cores)",
        drawings as f64 / cpu,
        2.0 * drawings as f64 / cpu
    );
    println!(
        "FIGURE transfer_import drawings={drawings} per_sec={:.0} per_cpu_sec={:.0}",
        drawings as f64 / seconds,
        drawings as f64 / cpu
    );
    let (_, baseline_kib) = run_sampled(
        Command::new(env!("CARGO_BIN_EXE_doodlebox"))
            .args(["keys", "list", "--data-dir"])
            .arg(&data),
    );
    println!(
        "baseline: the binary alone (keys list: libtorch loaded, SQLite open) peaks at {:.1} MiB",
        baseline_kib as f64 / 1024.0
    );
    for format in ["quickdraw-raw", "quickdraw-simplified", "jsonl", "npy"] {
        let out = dir.path().join(format!("out-{format}"));
        let (seconds, peak_kib) = export(&data, format, &out);
        let size = size_of(&out);
        println!(
            "export {format:<21}: {:.2} s = {:>7.0} drawings/s, peak RSS {:.1} MiB, {:.1} MB written",
            seconds,
            drawings as f64 / seconds,
            peak_kib as f64 / 1024.0,
            size as f64 / 1e6
        );
        println!(
            "FIGURE transfer_export format={format} drawings={drawings} per_sec={:.0} peak_rss_mib={:.1}",
            drawings as f64 / seconds,
            peak_kib as f64 / 1024.0
        );
    }
}

/// Writes `n` raw lines of random-walk strokes (integer x, y; t in ms from the first point),
/// about the size of real Quick, Draw! raw drawings; returns the bytes written.
fn generate(path: &Path, n: usize) -> u64 {
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).expect("create"));
    let mut written = 0u64;
    for i in 0..n {
        let mut t = 0i64;
        let (mut x, mut y) = (rng.random_range(100..700i64), rng.random_range(100..500i64));
        let strokes: Vec<serde_json::Value> = (0..rng.random_range(2..6))
            .map(|_| {
                let len = rng.random_range(10..60);
                let (mut xs, mut ys, mut ts) = (vec![], vec![], vec![]);
                for _ in 0..len {
                    x = (x + rng.random_range(-12..13i64)).clamp(0, 900);
                    y = (y + rng.random_range(-12..13i64)).clamp(0, 700);
                    t += rng.random_range(5..30i64);
                    xs.push(x);
                    ys.push(y);
                    ts.push(t);
                }
                t += rng.random_range(100..400i64);
                serde_json::json!([xs, ys, ts])
            })
            .collect();
        let line = format!(
            r#"{{"word":"{}","countrycode":"US","timestamp":"2017-01-25 03:11:35.55071 UTC","recognized":true,"key_id":"{}","drawing":{}}}"#,
            SHAPES[i % SHAPES.len()],
            5_000_000_000_000_000u64 + i as u64,
            serde_json::Value::Array(strokes)
        );
        writeln!(out, "{line}").expect("write");
        written += line.len() as u64 + 1;
    }
    out.flush().expect("flush");
    written
}

/// Runs `doodlebox export` as a child; returns its wall time and peak RSS in KiB.
fn export(data: &Path, format: &str, out: &Path) -> (f64, u64) {
    run_sampled(
        Command::new(env!("CARGO_BIN_EXE_doodlebox"))
            .args(["export", "--format", format, "--out"])
            .arg(out)
            .arg("--data-dir")
            .arg(data),
    )
}

/// This process's user + system CPU time, in seconds (Linux: /proc/self/stat, in ticks of
/// 1/100 s, the kernel's USER_HZ).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which ends with ')'): utime and stime are 12th and 13th.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

/// Runs a command to completion, sampling its peak RSS; returns wall time and peak KiB.
fn run_sampled(command: &mut Command) -> (f64, u64) {
    let started = Instant::now();
    let mut child = command
        .env("DOODLEBOX_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("doodlebox starts");
    let status_path = format!("/proc/{}/status", child.id());
    let mut peak = 0u64;
    loop {
        // VmHWM only grows; the last reading before exit is the peak (to a few ms).
        if let Ok(status) = std::fs::read_to_string(&status_path) {
            if let Some(kib) = status
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            {
                peak = peak.max(kib);
            }
        }
        if let Some(status) = child.try_wait().expect("wait") {
            assert!(status.success(), "{command:?} failed");
            break;
        }
        std::thread::sleep(SAMPLE_EVERY);
    }
    (started.elapsed().as_secs_f64(), peak)
}

fn size_of(path: &Path) -> u64 {
    if path.is_dir() {
        std::fs::read_dir(path)
            .expect("read dir")
            .map(|e| e.expect("entry").metadata().expect("metadata").len())
            .sum()
    } else {
        std::fs::metadata(path).map_or(0, |m| m.len())
    }
}
