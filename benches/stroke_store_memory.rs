//! What the stroke store costs in memory as it grows (issue 18): the resident set sled adds
//! when it opens a store, the most it holds during the open (recovery), what it holds after
//! one walk over every record, and a random read's time. It measures the product's layout
//! (one sled key per drawing) and, for comparison, copies of the same records packed K to a
//! sled value (`PACKS`, keyed by the pack's first id), the layout that would cut sled's
//! pages K-fold.
//!
//! Each measurement runs in a child process of its own (this bench run again with
//! `DOODLEBOX_BENCH_STORE_PROBE` set), so that one's freed memory does not hide the next
//! one's growth; figures are the child's `VmRSS`/`VmHWM` from `/proc/self/status`, less what
//! the child held before opening the store. Directories come from `common/synthetic_dir.rs`
//! (the same `<dir>/drawings-<n>` as the training-memory and scale benches, reused when
//! built); the packed copies are written to a temporary directory beside them and deleted.
//!
//! Environment: `DOODLEBOX_BENCH_STORE_SIZES` (drawings, comma-separated; default
//! `20000,100000`), `DOODLEBOX_BENCH_STORE_DIR` (where the directories are kept; unset: a
//! temporary directory). No assertions.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use doodlebox::store::blobs::sled_config;
use rand::{Rng, SeedableRng};

#[path = "common/synthetic_dir.rs"]
mod synthetic_dir;
use synthetic_dir::{build, dir_bytes, dir_for, proc_status_kb, vm_hwm_kb};

/// Records per sled value in the packed copies.
const PACKS: [usize; 2] = [4, 16];
/// Random reads timed per store.
const READS: usize = 20_000;
/// Records per `apply_batch` while copying.
const COPY_BATCH: usize = 4_096;

/// This process's `VmRSS`, in kB (0 where `/proc` cannot say).
fn rss_kb() -> u64 {
    proc_status_kb(std::process::id(), "VmRSS:").unwrap_or(0)
}

/// This process's peak resident set so far, in kB.
fn peak_kb() -> u64 {
    vm_hwm_kb(std::process::id()).unwrap_or(0)
}

/// The child: opens the store at `dir`, walks it, reads at random; prints one `PROBE` line.
fn probe(dir: &Path, pack: usize) -> anyhow::Result<()> {
    let before = rss_kb();
    let opened = Instant::now();
    let db = sled_config(dir).open()?;
    let open_s = opened.elapsed().as_secs_f64();
    let after_open = rss_kb();
    let open_peak = peak_kb();
    // One walk over every value, keeping a uniform sample of keys for the random reads.
    let mut rng = rand::rngs::StdRng::seed_from_u64(18);
    let mut sample: Vec<sled::IVec> = Vec::with_capacity(READS);
    let (mut values, mut bytes) = (0usize, 0usize);
    let walked = Instant::now();
    for item in db.iter() {
        let (key, value) = item?;
        values += 1;
        bytes += value.len();
        if sample.len() < READS {
            sample.push(key);
        } else {
            let slot = rng.random_range(0..values);
            if slot < READS {
                sample[slot] = key;
            }
        }
    }
    let walk_s = walked.elapsed().as_secs_f64();
    let after_walk = rss_kb();
    let read = Instant::now();
    for key in &sample {
        // A reader of the packed layout finds a record's pack as the last key at or before it.
        let found = if pack == 1 {
            db.get(key)?.map(|v| v.len())
        } else {
            db.range(..=key.as_ref())
                .next_back()
                .transpose()?
                .map(|(_, v)| v.len())
        };
        anyhow::ensure!(found.is_some(), "a sampled key reads back");
    }
    let read_us = read.elapsed().as_secs_f64() * 1e6 / sample.len().max(1) as f64;
    println!(
        "PROBE values={values} bytes={bytes} open_s={open_s:.2} open_mib={:.1} open_peak_mib={:.1} \
         walk_s={walk_s:.1} walk_mib={:.1} read_us={read_us:.1}",
        kib_to_mib(after_open.saturating_sub(before)),
        kib_to_mib(open_peak.saturating_sub(before)),
        kib_to_mib(after_walk.saturating_sub(before)),
    );
    Ok(())
}

fn kib_to_mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// Copies the store at `from` into `to`, `pack` records to a value: the pack's value is the
/// record count (u16), each record's id and length (u32), then the records; its key is the
/// first record's id.
fn copy_packed(from: &Path, to: &Path, pack: usize) -> anyhow::Result<()> {
    let source = sled_config(from).open()?;
    let target = sled_config(to).open()?;
    let mut group: Vec<(sled::IVec, sled::IVec)> = Vec::with_capacity(pack);
    let mut batch = sled::Batch::default();
    let mut in_batch = 0;
    let seal = |group: &mut Vec<(sled::IVec, sled::IVec)>, batch: &mut sled::Batch| {
        let count = u16::try_from(group.len()).expect("packs are far below 65536 records");
        let mut value = count.to_le_bytes().to_vec();
        for (key, record) in group.iter() {
            value.extend_from_slice(key);
            let len = u32::try_from(record.len()).expect("a record is far below 4 GiB");
            value.extend_from_slice(&len.to_le_bytes());
        }
        for (_, record) in group.iter() {
            value.extend_from_slice(record);
        }
        batch.insert(group[0].0.clone(), value);
        group.clear();
    };
    for item in source.iter() {
        group.push(item?);
        if group.len() == pack {
            seal(&mut group, &mut batch);
            in_batch += pack;
        }
        if in_batch >= COPY_BATCH {
            target.apply_batch(std::mem::take(&mut batch))?;
            in_batch = 0;
        }
    }
    if !group.is_empty() {
        seal(&mut group, &mut batch);
    }
    target.apply_batch(batch)?;
    target.flush()?;
    Ok(())
}

/// Runs the probe in a child process; answers its `PROBE` line's fields.
fn run_probe(dir: &Path, pack: usize) -> anyhow::Result<Vec<(String, String)>> {
    let output = Command::new(std::env::current_exe()?)
        .env("DOODLEBOX_BENCH_STORE_PROBE", dir)
        .env("DOODLEBOX_BENCH_STORE_PACK", pack.to_string())
        .output()?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("PROBE "))
        .ok_or_else(|| {
            anyhow::anyhow!(
                "the probe of {} printed no figures: {}",
                dir.display(),
                String::from_utf8_lossy(&output.stderr)
            )
        })?;
    Ok(line
        .split_whitespace()
        .filter_map(|f| f.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect())
}

fn main() -> anyhow::Result<()> {
    if let Some(dir) = std::env::var_os("DOODLEBOX_BENCH_STORE_PROBE") {
        // As the product's `main` does, so that the allocator behaves as it does there.
        doodlebox::malloc::fix_mmap_threshold();
        let pack = std::env::var("DOODLEBOX_BENCH_STORE_PACK")?.parse()?;
        return probe(Path::new(&dir), pack);
    }
    let sizes: Vec<u64> = std::env::var("DOODLEBOX_BENCH_STORE_SIZES")
        .unwrap_or_else(|_| "20000,100000".into())
        .split(',')
        .map(|s| s.trim().replace('_', "").parse())
        .collect::<Result<_, _>>()?;
    let (base, _temp): (PathBuf, Option<tempfile::TempDir>) =
        match std::env::var_os("DOODLEBOX_BENCH_STORE_DIR") {
            Some(dir) => (PathBuf::from(dir), None),
            None => {
                let temp = tempfile::tempdir()?;
                (temp.path().to_owned(), Some(temp))
            }
        };
    println!("stroke store memory: sled opened, walked once and read at random ({READS} reads), each in a child process; MiB over the child's own baseline");
    println!(
        "{:>10} {:>8} {:>9} {:>7} {:>9} {:>10} {:>7} {:>9} {:>8}",
        "drawings", "layout", "values", "MB", "open s", "open MiB", "peak", "walk MiB", "read µs"
    );
    for drawings in sizes {
        let dir = dir_for(&base, drawings);
        build(&dir, drawings, &mut |_, _| {})?;
        let strokes = dir.join("strokes");
        let mut layouts: Vec<(String, PathBuf, usize, Option<tempfile::TempDir>)> =
            vec![("1 a key".into(), strokes.clone(), 1, None)];
        for pack in PACKS {
            let copy = tempfile::tempdir_in(&base)?;
            copy_packed(&strokes, copy.path(), pack)?;
            layouts.push((
                format!("{pack} a key"),
                copy.path().to_owned(),
                pack,
                Some(copy),
            ));
        }
        for (name, path, pack, _keep) in &layouts {
            let fields = run_probe(path, *pack)?;
            let field = |k: &str| {
                fields
                    .iter()
                    .find(|(key, _)| key == k)
                    .map_or("?".to_owned(), |(_, v)| v.clone())
            };
            println!(
                "{drawings:>10} {name:>8} {:>9} {:>7.0} {:>9} {:>10} {:>7} {:>9} {:>8}",
                field("values"),
                dir_bytes(path) as f64 / 1e6,
                field("open_s"),
                field("open_mib"),
                field("open_peak_mib"),
                field("walk_mib"),
                field("read_us"),
            );
            println!(
                "FIGURE stroke_store_memory drawings={drawings} per_value={pack} open_mib={} open_peak_mib={} walk_mib={} read_us={}",
                field("open_mib"),
                field("open_peak_mib"),
                field("walk_mib"),
                field("read_us"),
            );
        }
    }
    Ok(())
}
