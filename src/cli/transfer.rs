//! `doodlebox import FILE...` and `doodlebox export`, which work whether or not a server runs
//! on the data directory.
//!
//! The stroke store admits one process. When a server answers on the address in its control
//! file (see [`crate::control`]), the commands go through it: an import streams each file to
//! `POST /api/v1/admin/import` and follows the import job it starts to its report, an export
//! downloads `GET /api/v1/admin/export`. Otherwise
//! they open the stores themselves and run the same library code the server runs. Progress
//! goes to stderr (a bar on a terminal), results to stdout.

use std::io::{BufReader, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use crate::cli::client::{self, RunningServer};
use crate::store::reconcile::{last_id, reconcile};
use crate::store::{Ingest, Stores};
use crate::transfer::export::{self, ExportFormat, ExportQuery};
use crate::transfer::import::{self, ImportOptions, ImportReport, SourceName};
use crate::transfer::npy;

/// How often the progress bar is redrawn.
const REDRAW_EVERY: Duration = Duration::from_millis(100);
/// Width of the progress bar, in characters.
const BAR_WIDTH: usize = 30;
/// How long reading the shape list from the running server may take.
const STATS_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a command waits for the running server's import job to finish.
const IMPORT_TIMEOUT: Duration = Duration::from_secs(24 * 3600);
/// `doodlebox import FILE... [--create-shapes]`.
pub fn import_files(data_dir: &Path, files: &[PathBuf], create_shapes: bool) -> anyhow::Result<()> {
    for file in files {
        if !file.is_file() {
            bail!("{} is not a file", file.display());
        }
    }
    let mut total = ImportReport::default();
    if let Some(server) = RunningServer::find(data_dir) {
        for file in files {
            let report = import_through_server(&server, file, create_shapes)?;
            print_report(file, &report);
            add(&mut total, report);
        }
    } else {
        let local = LocalStores::open(data_dir)?;
        for file in files {
            let report = local.import_file(file, create_shapes);
            let report = report?;
            print_report(file, &report);
            add(&mut total, report);
        }
        local.close();
    }
    if files.len() > 1 {
        println!(
            "all files: imported {}, skipped {} duplicates, {} bad lines",
            total.imported, total.skipped_duplicates, total.bad_line_count
        );
    }
    Ok(())
}

/// `doodlebox export --format F --out PATH [filters]`: `pairs` are the query pairs of
/// `GET /api/v1/admin/export`.
pub fn export(data_dir: &Path, pairs: &[(String, String)], out: &Path) -> anyhow::Result<()> {
    let borrowed: Vec<(&str, &str)> = pairs
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let query = ExportQuery::parse(&borrowed).map_err(|e| {
        anyhow::anyhow!(
            "{}",
            e.to_string().replace("query parameter `", "option `--")
        )
    })?;
    let started = Instant::now();
    let files: Vec<(PathBuf, u64)> = if let Some(server) = RunningServer::find(data_dir) {
        export_through_server(&server, &query, pairs, out)?
    } else {
        let local = LocalStores::open(data_dir)?;
        let files = if query.format == ExportFormat::Npy {
            export::export_npy_dir(&local.stores, &query.filter, out)?
        } else {
            let file = std::fs::File::create(out)
                .with_context(|| format!("creating {}", out.display()))?;
            let mut writer = std::io::BufWriter::with_capacity(1 << 20, file);
            let n = export::export(&local.stores, &query, &mut writer)?;
            writer
                .into_inner()
                .map_err(|e| e.into_error())?
                .sync_all()?;
            vec![(out.to_owned(), n)]
        };
        local.close();
        files
    };
    let total: u64 = files.iter().map(|(_, n)| n).sum();
    for (path, n) in &files {
        println!("{}: {n} drawings", path.display());
    }
    println!(
        "exported {total} drawings in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn export_through_server(
    server: &RunningServer,
    query: &ExportQuery,
    pairs: &[(String, String)],
    out: &Path,
) -> anyhow::Result<Vec<(PathBuf, u64)>> {
    let encoded = |pairs: &[(String, String)]| {
        pairs
            .iter()
            .map(|(k, v)| format!("{k}={}", percent_encode(v)))
            .collect::<Vec<_>>()
            .join("&")
    };
    if query.format != ExportFormat::Npy {
        let n = download(server, &encoded(pairs), out)?;
        return Ok(vec![(out.to_owned(), n)]);
    }
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let shapes: Vec<String> = match query.filter.shape() {
        Some(shape) => vec![shape.to_string()],
        None => {
            let stats = server.get_json("/api/v1/admin/stats", STATS_TIMEOUT)?;
            stats["per_shape"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|s| s["count"].as_u64().unwrap_or(0) > 0)
                .filter_map(|s| s["shape"].as_str().map(str::to_owned))
                .collect()
        }
    };
    let mut files = Vec::new();
    for shape in shapes {
        let mut pairs: Vec<(String, String)> = pairs
            .iter()
            .filter(|(k, _)| k != "shape")
            .cloned()
            .collect();
        pairs.push(("shape".into(), shape.clone()));
        let path = out.join(format!("{shape}.npy"));
        download(server, &encoded(&pairs), &path)?;
        let rows = (std::fs::metadata(&path)?.len() as usize).saturating_sub(npy::HEADER_BYTES)
            / npy::ROW_BYTES;
        if rows == 0 {
            // No drawing of this shape passed the filters: no file, as without a server.
            std::fs::remove_file(&path)?;
        } else {
            files.push((path, rows as u64));
        }
    }
    Ok(files)
}

/// Streams `GET /api/v1/admin/export?{query}` into `path`; returns the lines written.
fn download(server: &RunningServer, query: &str, path: &Path) -> anyhow::Result<u64> {
    let mut response = server
        .transfer_agent()
        .get(format!("{}/api/v1/admin/export?{query}", server.url))
        .header("Authorization", &server.authorization())
        .call()
        .with_context(|| format!("calling the running server at {}", server.url))?;
    let status = response.status();
    if !status.is_success() {
        let body: serde_json::Value = response
            .body_mut()
            .read_json()
            .unwrap_or(serde_json::Value::Null);
        let message = body["error"]["message"].as_str().unwrap_or("no message");
        bail!("the server refused the export ({status}): {message}");
    }
    let file =
        std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut writer = std::io::BufWriter::with_capacity(1 << 20, file);
    let mut reader = response.body_mut().with_config().limit(u64::MAX).reader();
    let mut lines = 0u64;
    let mut chunk = vec![0u8; 1 << 16];
    loop {
        let n = reader
            .read(&mut chunk)
            .context("the download from the server broke off")?;
        if n == 0 {
            break;
        }
        lines += chunk[..n].iter().filter(|&&b| b == b'\n').count() as u64;
        writer.write_all(&chunk[..n])?;
    }
    writer
        .into_inner()
        .map_err(|e| e.into_error())?
        .sync_all()?;
    Ok(lines)
}

/// The stores of a data directory no server holds, with a writer started on them.
pub struct LocalStores {
    pub stores: Arc<Stores>,
    pub ingest: Ingest,
}

impl LocalStores {
    /// Opens and reconciles the stores, as the server does at start.
    pub fn open(data_dir: &Path) -> anyhow::Result<Self> {
        let stores = Arc::new(Stores::open(data_dir).with_context(|| {
            format!(
                "opening {} (if a server runs on it, it did not answer on the address in its control file)",
                data_dir.display()
            )
        })?);
        reconcile(&stores).context("reconciling the stores")?;
        let last = last_id(&stores)?;
        let ingest = Ingest::start(stores.clone(), last).context("starting the writer")?;
        Ok(Self { stores, ingest })
    }

    /// Imports one file with a progress bar by bytes read.
    pub fn import_file(&self, file: &Path, create_shapes: bool) -> anyhow::Result<ImportReport> {
        let options = options_for(file, create_shapes)?;
        let opened =
            std::fs::File::open(file).with_context(|| format!("opening {}", file.display()))?;
        let size = opened.metadata().map(|m| m.len()).unwrap_or(0);
        let bar = Arc::new(Progress::new(file, size));
        let counted = Counting {
            inner: opened,
            bar: bar.clone(),
        };
        let report = import::import(
            &self.stores,
            &self.ingest,
            BufReader::with_capacity(1 << 20, counted),
            &options,
            &mut |so_far| bar.drawings(so_far.imported + so_far.skipped_duplicates),
        )
        .with_context(|| format!("importing {}", file.display()))?;
        bar.finish();
        Ok(report)
    }

    /// Lets the writer finish, then closes the stores.
    pub fn close(self) {
        self.ingest.shutdown();
    }
}

fn options_for(file: &Path, create_shapes: bool) -> anyhow::Result<ImportOptions> {
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| file.display().to_string());
    let name: String = name.chars().take(import::MAX_SOURCE_NAME_LEN).collect();
    Ok(ImportOptions {
        create_shapes,
        source: SourceName::parse(&name)?,
    })
}

fn import_through_server(
    server: &RunningServer,
    file: &Path,
    create_shapes: bool,
) -> anyhow::Result<ImportReport> {
    let options = options_for(file, create_shapes)?;
    let opened =
        std::fs::File::open(file).with_context(|| format!("opening {}", file.display()))?;
    let size = opened.metadata().map(|m| m.len()).unwrap_or(0);
    let bar = Arc::new(Progress::new(file, size));
    let mut counted = Counting {
        inner: opened,
        bar: bar.clone(),
    };
    let url = format!(
        "{}/api/v1/admin/import?create_shapes={create_shapes}&source={}",
        server.url,
        percent_encode(options.source.as_str())
    );
    let mut response = server
        .transfer_agent()
        .post(&url)
        .header("Authorization", &server.authorization())
        .header("Content-Type", "application/x-ndjson")
        .send(ureq::SendBody::from_reader(&mut counted))
        .with_context(|| {
            format!(
                "sending {} to the running server at {}",
                file.display(),
                server.url
            )
        })?;
    bar.finish();
    let job = client::answer(&mut response)
        .map_err(|refusal| anyhow::anyhow!("{}: {refusal}", file.display()))?;
    // The server keeps the upload and imports it as a job: follow it to its report.
    let result = server
        .follow_job(&job, IMPORT_TIMEOUT)
        .with_context(|| format!("importing {}", file.display()))?;
    serde_json::from_value(result).context("reading the server's import report")
}

/// Percent-encodes a query value (everything but unreserved characters).
fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn add(total: &mut ImportReport, report: ImportReport) {
    total.imported += report.imported;
    total.skipped_duplicates += report.skipped_duplicates;
    total.bad_line_count += report.bad_line_count;
}

fn print_report(file: &Path, report: &ImportReport) {
    for bad in &report.bad_lines {
        eprintln!("{}:{}: {}", file.display(), bad.line, bad.error);
    }
    let unlisted = report.bad_line_count - report.bad_lines.len() as u64;
    if unlisted > 0 {
        eprintln!("{}: {unlisted} more bad lines not listed", file.display());
    }
    let created = if report.created_shapes.is_empty() {
        String::new()
    } else {
        format!(", created shapes: {}", report.created_shapes.join(", "))
    };
    println!(
        "{}: imported {}, skipped {} duplicates, {} bad lines{created}",
        file.display(),
        report.imported,
        report.skipped_duplicates,
        report.bad_line_count
    );
}

/// Seconds as a progress bar shows them: "42s", "3m05s", "2h07m".
fn short_duration(seconds: f64) -> String {
    let s = seconds.round().max(0.0) as u64;
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}

/// A reader that reports the bytes it has read to a progress bar.
struct Counting<R> {
    inner: R,
    bar: Arc<Progress>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bar.bytes(n as u64);
        Ok(n)
    }
}

/// A one-line progress bar on stderr by bytes, drawn only when stderr is a terminal.
pub struct Progress {
    label: String,
    total: u64,
    started: Instant,
    enabled: bool,
    state: std::sync::Mutex<ProgressState>,
}

#[derive(Default)]
struct ProgressState {
    done: u64,
    drawings: u64,
    drawn_at: Option<Instant>,
}

impl Progress {
    pub fn new(file: &Path, total: u64) -> Self {
        Self {
            label: file
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            total,
            started: Instant::now(),
            enabled: std::io::stderr().is_terminal(),
            state: Default::default(),
        }
    }

    fn bytes(&self, n: u64) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        state.done += n;
        self.draw(&mut state, false);
    }

    fn drawings(&self, n: u64) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        state.drawings = n;
        self.draw(&mut state, false);
    }

    fn finish(&self) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        self.draw(&mut state, true);
        if self.enabled {
            eprintln!();
        }
    }

    fn draw(&self, state: &mut ProgressState, force: bool) {
        if !self.enabled || (!force && state.drawn_at.is_some_and(|at| at.elapsed() < REDRAW_EVERY))
        {
            return;
        }
        state.drawn_at = Some(Instant::now());
        let fraction = if self.total == 0 {
            1.0
        } else {
            (state.done as f64 / self.total as f64).min(1.0)
        };
        let filled = (fraction * BAR_WIDTH as f64) as usize;
        let seconds = self.started.elapsed().as_secs_f64().max(1e-3);
        let bytes_per_second = state.done as f64 / seconds;
        let left = self.total.saturating_sub(state.done) as f64;
        let eta = if force || left == 0.0 {
            "done".to_owned()
        } else if bytes_per_second > 0.0 {
            format!("ETA {}", short_duration(left / bytes_per_second))
        } else {
            "ETA --".to_owned()
        };
        let mut err = std::io::stderr().lock();
        let _ = write!(
            err,
            "\r{} [{}{}] {:>3.0}% {:.1}/{:.1} MB {:>7.0} drawings/s, {:.1} MB/s, {eta}   ",
            self.label,
            "#".repeat(filled),
            "-".repeat(BAR_WIDTH - filled),
            fraction * 100.0,
            state.done as f64 / 1e6,
            self.total as f64 / 1e6,
            state.drawings as f64 / seconds,
            bytes_per_second / 1e6
        );
        let _ = err.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::short_duration;

    #[test]
    fn the_time_left_reads_in_the_largest_units_that_matter() {
        assert_eq!(short_duration(0.2), "0s");
        assert_eq!(short_duration(42.4), "42s");
        assert_eq!(short_duration(185.0), "3m05s");
        assert_eq!(short_duration(7_620.0), "2h07m");
    }
}
