//! Training in bounded memory: peak RSS of a capped `doodlebox train` against the number of
//! drawings in the data directory. The goal (issue 18): the peak at 1M (and 10M) drawings is
//! at most the peak at 100k plus 10 %.
//!
//! For each size it builds a data directory of synthetic drawings (the five default shapes,
//! each drawing different) through the library's import path, from Quick, Draw! ndjson lines
//! generated as they are read (never written whole), in `SOURCES` imports (each import is one
//! "player", so the split goes by player). Then it runs `doodlebox train --epochs 1
//! --max-steps-per-epoch STEPS` as a child process and samples its `VmHWM` (peak resident
//! set) from `/proc/<pid>/status`. The whole validation set is still evaluated, so reading,
//! splitting, hashing and validating scale with the directory; only the training steps are
//! capped. It prints, per size: import rate, data directory size, the run's wall time, peak
//! RSS, and the trainer's samples/s against what the rasterizing workers delivered; and a
//! `FIGURE train_memory` line that `examples/bench_report.rs` draws as peak RSS against size.
//!
//! Environment:
//! - `DOODLEBOX_BENCH_TRAIN_SIZES`: drawings per directory, comma-separated (default
//!   `20000,100000`, a few minutes, so that `scripts/bench-report.sh` stays short; the
//!   issue's stages are `100000,1000000` and then `100000,1000000,10000000`, hours on CPU).
//! - `DOODLEBOX_BENCH_TRAIN_DIR`: where the directories go (`<dir>/drawings-<n>`), kept and
//!   reused by later runs (a finished build leaves a `bench-built` marker). Unset: a
//!   temporary directory, deleted at the end. About 2 GB per million drawings.
//! - `DOODLEBOX_BENCH_TRAIN_STEPS` (default 300), `DOODLEBOX_BENCH_TRAIN_IMAGE_SIZE` (64),
//!   `DOODLEBOX_BENCH_TRAIN_DEVICE` (`cpu`).

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[path = "common/synthetic_dir.rs"]
mod synthetic_dir;
use synthetic_dir::{build, dir_bytes, dir_for, vm_hwm_kb, SOURCES};

/// How often the child's peak RSS is read.
const SAMPLE_EVERY: Duration = Duration::from_millis(50);

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// What one capped training run showed.
struct Run {
    wall_s: f64,
    peak_mib: f64,
    /// The CLI's per-epoch line: trained, read-and-rasterized samples/s, waited share.
    epoch_line: String,
}

fn train(dir: &std::path::Path, steps: u64, image_size: u32, device: &str) -> anyhow::Result<Run> {
    // Each run starts from scratch: no checkpoint of an earlier run to resume from.
    let jobs = dir.join("jobs");
    if jobs.exists() {
        std::fs::remove_dir_all(&jobs)?;
    }
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_doodlebox"))
        .args(["train", "--epochs", "1", "--seed", "1"])
        .args(["--max-steps-per-epoch", &steps.to_string()])
        .args(["--image-size", &image_size.to_string()])
        .args(["--device", device])
        .arg("--data-dir")
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()?;
    let pid = child.id();
    let stderr = child.stderr.take().expect("stderr is piped");
    let reader = std::thread::spawn(move || {
        let mut epoch_line = String::new();
        let mut tail = Vec::new();
        for line in BufReader::new(stderr).split(b'\n').map_while(Result::ok) {
            let line = String::from_utf8_lossy(&line).into_owned();
            if line.starts_with("epoch 1:") {
                epoch_line = line.clone();
            }
            tail.push(line);
            if tail.len() > 20 {
                tail.remove(0);
            }
        }
        (epoch_line, tail)
    });
    let mut peak_kb = 0;
    let status = loop {
        if let Some(kb) = vm_hwm_kb(pid) {
            peak_kb = peak_kb.max(kb);
        }
        if let Some(status) = child.try_wait()? {
            break status;
        }
        std::thread::sleep(SAMPLE_EVERY);
    };
    let (epoch_line, tail) = reader.join().expect("the reader thread does not panic");
    anyhow::ensure!(status.success(), "training failed: {}", tail.join("\n"));
    Ok(Run {
        wall_s: started.elapsed().as_secs_f64(),
        peak_mib: peak_kb as f64 / 1024.0,
        epoch_line,
    })
}

fn main() -> anyhow::Result<()> {
    let sizes: Vec<u64> = std::env::var("DOODLEBOX_BENCH_TRAIN_SIZES")
        .unwrap_or_else(|_| "20000,100000".into())
        .split(',')
        .map(|s| s.trim().replace('_', "").parse())
        .collect::<Result<_, _>>()?;
    let steps: u64 = env_or("DOODLEBOX_BENCH_TRAIN_STEPS", 300);
    let image_size: u32 = env_or("DOODLEBOX_BENCH_TRAIN_IMAGE_SIZE", 64);
    let device: String = env_or("DOODLEBOX_BENCH_TRAIN_DEVICE", "cpu".to_string());
    let (base, _temp): (PathBuf, Option<tempfile::TempDir>) =
        match std::env::var_os("DOODLEBOX_BENCH_TRAIN_DIR") {
            Some(dir) => (PathBuf::from(dir), None),
            None => {
                let temp = tempfile::tempdir()?;
                (temp.path().to_owned(), Some(temp))
            }
        };
    println!(
        "training memory: doodlebox train --epochs 1 --max-steps-per-epoch {steps} \
         --image-size {image_size} --device {device}, {SOURCES} import sources per directory"
    );
    println!(
        "{:>10} {:>9} {:>10} {:>8} {:>10} {:>9}  trainer against input pipeline",
        "drawings", "dir GB", "import/s", "train s", "peak MiB", "vs first"
    );
    let mut first_peak = None;
    for drawings in sizes {
        let dir = dir_for(&base, drawings);
        let import_s = build(&dir, drawings, &mut |_, _| {})?;
        let run = train(&dir, steps, image_size, &device)?;
        let first = *first_peak.get_or_insert(run.peak_mib);
        println!(
            "{:>10} {:>9.2} {:>10} {:>8.1} {:>10.0} {:>8.1}%  {}",
            drawings,
            dir_bytes(&dir) as f64 / 1e9,
            import_s.map_or("reused".into(), |s| format!("{:.0}", drawings as f64 / s)),
            run.wall_s,
            run.peak_mib,
            (run.peak_mib / first - 1.0) * 100.0,
            run.epoch_line.trim_start_matches("epoch 1: "),
        );
        // For scripts/bench-report.sh: the memory-against-size chart.
        println!(
            "FIGURE train_memory drawings={drawings} image_size={image_size} peak_mib={:.1} \
             train_s={:.1}",
            run.peak_mib, run.wall_s
        );
    }
    Ok(())
}
