//! Data directories of synthetic drawings for the benchmarks, built through the library's
//! import path and reused across runs. Each drawing is different: the five default shapes in
//! turn, strokes from `ml::synth` seeded by the drawing's number, as Quick, Draw! simplified
//! ndjson lines made as they are read (the input is never written whole), in `SOURCES`
//! imports (each import is one "player"). A directory lives at `<base>/drawings-<n>`; a
//! finished build leaves a `bench-built` marker holding `n`, so that later runs reuse it.
//! Also here: a directory's size on disk and a process's peak resident set, which the
//! benches that run the real binary on such a directory report.

use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};
use std::time::Instant;

use doodlebox::cli::transfer::LocalStores;
use doodlebox::ml::synth::{self, Shape};
use doodlebox::transfer::import::{self, ImportOptions, SourceName};

/// Imports per directory: each is one player.
pub const SOURCES: u64 = 16;
/// The file a finished build leaves in its directory, holding the number of drawings.
pub const BUILT_MARKER: &str = "bench-built";

/// Where the directory of `drawings` drawings lives under `base`.
pub fn dir_for(base: &Path, drawings: u64) -> PathBuf {
    base.join(format!("drawings-{drawings}"))
}

/// Quick, Draw! simplified ndjson lines of synthetic doodles, made as they are read.
struct Generated {
    /// The next drawing's global number (its seed and key).
    next: u64,
    /// One past the last drawing's number.
    end: u64,
    /// The current line, and how much of it has been read.
    line: Vec<u8>,
    at: usize,
}

impl Generated {
    fn new(range: std::ops::Range<u64>) -> Self {
        Self {
            next: range.start,
            end: range.end,
            line: Vec::new(),
            at: 0,
        }
    }
}

/// One drawing as a line: shape by number, strokes from the synthetic generator.
fn line(n: u64) -> String {
    let shape = Shape::ALL[(n % Shape::ALL.len() as u64) as usize];
    let strokes: Vec<[Vec<i64>; 2]> = synth::doodle(shape, n)
        .iter()
        .map(|stroke| {
            [
                stroke.iter().map(|p| p[0].round() as i64).collect(),
                stroke.iter().map(|p| p[1].round() as i64).collect(),
            ]
        })
        .collect();
    // Spread over 2025, one drawing a few seconds apart, so that date ranges select some.
    let second = 1_735_689_600 + n * 3;
    let time = doodlebox::time::rfc3339(second * 1000);
    serde_json::json!({"word": shape.name(), "countrycode": "NZ",
        "timestamp": time.replace('T', " ").replace('Z', " UTC"),
        "recognized": true, "key_id": format!("{}", 7_000_000_000_000_000u64 + n),
        "drawing": strokes})
    .to_string()
}

impl Read for Generated {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.at == self.line.len() {
            if self.next == self.end {
                return Ok(0);
            }
            self.line = line(self.next).into_bytes();
            self.line.push(b'\n');
            self.at = 0;
            self.next += 1;
        }
        let n = buf.len().min(self.line.len() - self.at);
        buf[..n].copy_from_slice(&self.line[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

/// Builds (or finds built) a data directory of `drawings`; returns the import's seconds
/// (`None` when reused). `progress` hears after each source: (drawings so far, seconds).
pub fn build(
    dir: &Path,
    drawings: u64,
    progress: &mut dyn FnMut(u64, f64),
) -> anyhow::Result<Option<f64>> {
    let marker = dir.join(BUILT_MARKER);
    if std::fs::read_to_string(&marker).is_ok_and(|m| m.trim() == drawings.to_string()) {
        return Ok(None);
    }
    if dir.exists() {
        std::fs::remove_dir_all(dir)?;
    }
    std::fs::create_dir_all(dir)?;
    let started = Instant::now();
    let local = LocalStores::open(dir)?;
    let per_source = drawings.div_ceil(SOURCES);
    for source in 0..SOURCES {
        let range = (source * per_source)..((source + 1) * per_source).min(drawings);
        let options = ImportOptions {
            create_shapes: false,
            source: SourceName::parse(&format!("synthetic-{source:02}.ndjson"))?,
        };
        let input = BufReader::with_capacity(1 << 20, Generated::new(range.clone()));
        let report = import::import(&local.stores, &local.ingest, input, &options, &mut |_| {})?;
        anyhow::ensure!(
            report.imported == range.end - range.start,
            "source {source}: imported {} of {} ({} bad lines: {:?})",
            report.imported,
            range.end - range.start,
            report.bad_line_count,
            report.bad_lines.first()
        );
        progress(range.end, started.elapsed().as_secs_f64());
    }
    local.close();
    let secs = started.elapsed().as_secs_f64();
    std::fs::write(marker, drawings.to_string())?;
    Ok(Some(secs))
}

/// The bytes of all files under `dir`.
pub fn dir_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => dir_bytes(&e.path()),
            _ => e.metadata().map(|m| m.len()).unwrap_or(0),
        })
        .sum()
}

/// The peak resident set of process `pid` so far, in kB.
pub fn vm_hwm_kb(pid: u32) -> Option<u64> {
    proc_status_kb(pid, "VmHWM:")
}

/// A memory figure of process `pid` from `/proc/<pid>/status` (`field` is e.g. `VmRSS:`),
/// in kB.
pub fn proc_status_kb(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}
