//! Exporting drawings: Quick, Draw! raw ndjson, simplified ndjson, 28×28 `.npy` bitmaps per
//! shape (one file, or every shape as one `.npz` archive), and Doodlebox's lossless JSON
//! lines, for the drawings a review filter
//! ([`DrawingFilter`]) matches.
//!
//! An export reads pages of rows in id order and their stroke records, and writes each
//! drawing as soon as it is read, so memory stays flat at any size (the `.npy` formats keep
//! the matching ids, 16 bytes a drawing, because the file header names the row count). It
//! covers the drawings stored when it started: later ones wait for the next export.
//! Soft-deleted drawings are never exported; a filter that asks for them is refused.
//!
//! Raw export writes an imported drawing's line back as it came (the same key_id, country,
//! timestamp, recognized flag and integer x, y, t); a drawing collected by the game gets its
//! id as key_id and t counted from its first point.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write;
use std::path::Path;
use std::str::FromStr;

use thiserror::Error;

use super::npy;
use super::simplify::simplify;
use crate::domain::review::{DeletedFilter, DrawingFilter, FilterError, FILTER_PARAMETERS};
use crate::domain::{DrawingId, Record};
use crate::store::review::ExportRow;
use crate::store::{StoreError, Stores};

/// Rows read per query.
const PAGE: usize = 500;
/// Drawings rasterized together (on every core) for an npy export.
const NPY_CHUNK: usize = 1_024;

/// What an export writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    /// Quick, Draw! raw ndjson: x, y and t (ms since the first point) per stroke.
    QuickdrawRaw,
    /// Quick, Draw! simplified ndjson: x and y in 0..=255, RDP-simplified.
    QuickdrawSimplified,
    /// 28×28 bitmaps, one `.npy` file (N × 784 unsigned bytes) per shape.
    Npy,
    /// Doodlebox's own drawing JSON, one per line, with pressure, timestamps and styles.
    Jsonl,
}

impl ExportFormat {
    /// The names `--format` and `format=` take.
    pub const NAMES: &'static str = "quickdraw-raw, quickdraw-simplified, npy, jsonl";

    pub fn content_type(self) -> &'static str {
        match self {
            ExportFormat::Npy => "application/octet-stream",
            _ => "application/x-ndjson",
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            ExportFormat::Npy => "npy",
            ExportFormat::Jsonl => "jsonl",
            _ => "ndjson",
        }
    }
}

impl FromStr for ExportFormat {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Ok(match text {
            "quickdraw-raw" => ExportFormat::QuickdrawRaw,
            "quickdraw-simplified" => ExportFormat::QuickdrawSimplified,
            "npy" => ExportFormat::Npy,
            "jsonl" => ExportFormat::Jsonl,
            _ => return Err(format!("expected one of {}", Self::NAMES)),
        })
    }
}

impl ExportQuery {
    /// The download's file name, saying what is inside: the shape (or `all`), the review
    /// filters, the format and `date`, e.g.
    /// `doodlebox-circle-flagged-simplified-2026-12-01.ndjson`.
    pub fn file_name(&self, date: time::Date) -> String {
        let filter = &self.filter;
        let mut parts = vec![filter
            .shape()
            .map_or("all".to_owned(), |s| file_safe(s.as_str()))];
        match filter.flagged() {
            Some(true) => parts.push("flagged".into()),
            Some(false) => parts.push("unflagged".into()),
            None => {}
        }
        match filter.reviewed() {
            Some(true) => parts.push("reviewed".into()),
            Some(false) => parts.push("unreviewed".into()),
            None => {}
        }
        if let Some(min) = filter.min_quality() {
            parts.push(format!("q{min}+"));
        }
        if let Some(max) = filter.max_quality() {
            parts.push(format!("q-{max}"));
        }
        if let Some(player) = filter.player() {
            parts.push(format!("player-{}", file_safe(&player.to_string())));
        }
        if filter.from_ms().is_some() || filter.to_ms().is_some() {
            parts.push("dated".into());
        }
        let (format, extension) = match self.format {
            ExportFormat::QuickdrawRaw => ("raw", "ndjson"),
            ExportFormat::QuickdrawSimplified => ("simplified", "ndjson"),
            ExportFormat::Jsonl => ("doodlebox", "jsonl"),
            ExportFormat::Npy if filter.shape().is_none() => ("bitmaps", "npz"),
            ExportFormat::Npy => ("bitmaps", "npy"),
        };
        parts.push(format.into());
        let (y, m, d) = (date.year(), u8::from(date.month()), date.day());
        format!(
            "doodlebox-{}-{y:04}-{m:02}-{d:02}.{extension}",
            parts.join("-")
        )
    }

    /// What the download is (`application/zip` for the all-shapes archive).
    pub fn content_type(&self) -> &'static str {
        if self.format == ExportFormat::Npy && self.filter.shape().is_none() {
            "application/zip"
        } else {
            self.format.content_type()
        }
    }
}

/// `text` with anything but letters, digits, `-` and `.` as `_`, for a file name.
fn file_safe(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// An export request: the format and which drawings.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportQuery {
    pub format: ExportFormat,
    pub filter: DrawingFilter,
}

impl ExportQuery {
    /// Parses `format=` and the review filters from query pairs. Unknown parameters are
    /// refused, and so is a filter that admits deleted drawings.
    pub fn parse(pairs: &[(&str, &str)]) -> Result<Self, FilterError> {
        let bad = |parameter: &str, reason: &str| FilterError {
            parameter: parameter.to_owned(),
            reason: reason.to_owned(),
        };
        if let Some((name, _)) = pairs
            .iter()
            .find(|(n, _)| *n != "format" && !FILTER_PARAMETERS.contains(n))
        {
            return Err(bad(name, "unknown parameter"));
        }
        let mut formats = pairs.iter().filter(|(n, _)| *n == "format");
        let format = match (formats.next(), formats.next()) {
            (Some((_, value)), None) => value.parse().map_err(|e: String| bad("format", &e))?,
            (None, _) => return Err(bad("format", &format!("required: {}", ExportFormat::NAMES))),
            (Some(_), Some(_)) => return Err(bad("format", "given more than once")),
        };
        let filter = DrawingFilter::parse(pairs.iter().copied())?;
        if filter.deleted() != DeletedFilter::Exclude {
            return Err(bad("deleted", "deleted drawings are never exported"));
        }
        Ok(Self { format, filter })
    }
}

#[derive(Debug, Error)]
pub enum ExportError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("writing the export failed: {0}")]
    Write(#[from] std::io::Error),
    #[error("drawing {id} cannot be rasterized: {cause}")]
    Raster { id: DrawingId, cause: String },
}

/// Writes the drawings `query` matches to `out` in a line format (raw, simplified, jsonl),
/// or, for npy, the one shape the filter names as one `.npy` file, or with no shape every
/// shape as one `.npz` archive. Returns how many.
pub fn export(
    stores: &Stores,
    query: &ExportQuery,
    out: &mut dyn Write,
) -> Result<u64, ExportError> {
    match query.format {
        ExportFormat::Npy if query.filter.shape().is_none() => {
            let today = time::OffsetDateTime::now_utc().date();
            let mut zip = super::npz::ZipStream::new(
                out,
                (today.year() as u16, today.month().into(), today.day()),
            );
            let mut written = 0;
            for (shape, ids) in matching_ids(stores, &query.filter)? {
                zip.entry(&format!("{shape}.npy"), |out| {
                    written += write_npy(stores, &ids, out)?;
                    Ok::<(), ExportError>(())
                })?;
            }
            zip.finish()?;
            Ok(written)
        }
        ExportFormat::Npy => {
            let ids: Vec<DrawingId> = matching_ids(stores, &query.filter)?
                .into_values()
                .flatten()
                .collect();
            write_npy(stores, &ids, out)
        }
        format => {
            let mut line = String::new();
            let mut written = 0;
            each_drawing(stores, &query.filter, |row, record| {
                line.clear();
                match format {
                    ExportFormat::QuickdrawRaw => raw_line(row, &record, &mut line),
                    ExportFormat::QuickdrawSimplified => simplified_line(row, &record, &mut line),
                    _ => jsonl_line(row, &record, &mut line),
                }
                line.push('\n');
                out.write_all(line.as_bytes())?;
                written += 1;
                Ok(())
            })?;
            out.flush()?;
            Ok(written)
        }
    }
}

/// Writes `<dir>/<shape>.npy` for every shape with matching drawings; returns each shape's
/// file and count.
pub fn export_npy_dir(
    stores: &Stores,
    filter: &DrawingFilter,
    dir: &Path,
) -> Result<Vec<(std::path::PathBuf, u64)>, ExportError> {
    std::fs::create_dir_all(dir)?;
    let mut written = Vec::new();
    for (shape, ids) in matching_ids(stores, filter)? {
        let path = dir.join(format!("{shape}.npy"));
        let mut file = std::io::BufWriter::new(std::fs::File::create(&path)?);
        let n = write_npy(stores, &ids, &mut file)?;
        file.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        written.push((path, n));
    }
    Ok(written)
}

/// The ids of matching drawings by shape, in id order.
fn matching_ids(
    stores: &Stores,
    filter: &DrawingFilter,
) -> Result<BTreeMap<String, Vec<DrawingId>>, ExportError> {
    let mut by_shape: BTreeMap<String, Vec<DrawingId>> = BTreeMap::new();
    let Some(up_to) = stores.metadata.last_drawing_id()? else {
        return Ok(by_shape);
    };
    let mut after = None;
    loop {
        let rows = stores.review.export_rows(filter, after, up_to, PAGE)?;
        let Some(last) = rows.last() else {
            return Ok(by_shape);
        };
        after = Some(last.id);
        for row in rows {
            by_shape.entry(row.shape).or_default().push(row.id);
        }
    }
}

fn write_npy(stores: &Stores, ids: &[DrawingId], out: &mut dyn Write) -> Result<u64, ExportError> {
    out.write_all(&npy::header(ids.len() as u64))?;
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    for chunk in ids.chunks(NPY_CHUNK) {
        let records = chunk
            .iter()
            .map(|&id| Ok((id, read_record(stores, id)?)))
            .collect::<Result<Vec<_>, ExportError>>()?;
        // Rasterizing is most of the work: spread each chunk over the cores, keep the order.
        let per = records.len().div_ceil(workers);
        let rows = std::thread::scope(|scope| {
            let handles: Vec<_> = records
                .chunks(per)
                .map(|part| scope.spawn(move || part.iter().map(npy_row).collect::<Vec<_>>()))
                .collect();
            handles
                .into_iter()
                // A rasterizer thread only panics on a bug: fail loudly, never a short file.
                .flat_map(|h| h.join().expect("an npy rasterizer thread panicked"))
                .collect::<Vec<_>>()
        });
        for row in rows {
            out.write_all(&row?)?;
        }
    }
    out.flush()?;
    Ok(ids.len() as u64)
}

/// One drawing's bitmap row. The header promised a row per id: a drawing lost meanwhile
/// (purged) stays a blank row rather than shifting every later one.
fn npy_row((id, record): &(DrawingId, Option<Record>)) -> Result<Vec<u8>, ExportError> {
    match record {
        Some(record) => npy::bitmap(&record.drawing).map_err(|e| ExportError::Raster {
            id: *id,
            cause: e.to_string(),
        }),
        None => Ok(vec![0u8; npy::ROW_BYTES]),
    }
}

/// Calls `each` for every matching drawing in id order, with its row and record.
fn each_drawing(
    stores: &Stores,
    filter: &DrawingFilter,
    mut each: impl FnMut(&ExportRow, Record) -> Result<(), ExportError>,
) -> Result<(), ExportError> {
    let Some(up_to) = stores.metadata.last_drawing_id()? else {
        return Ok(());
    };
    let mut after = None;
    loop {
        let rows = stores.review.export_rows(filter, after, up_to, PAGE)?;
        let Some(last) = rows.last() else {
            return Ok(());
        };
        after = Some(last.id);
        for row in &rows {
            if let Some(record) = read_record(stores, row.id)? {
                each(row, record)?;
            }
        }
    }
}

/// A drawing's record; `None` (logged) when it is missing or unreadable, which start-up
/// reconciliation and `doodlebox doctor` report: an export skips it rather than failing.
fn read_record(stores: &Stores, id: DrawingId) -> Result<Option<Record>, ExportError> {
    let Some(bytes) = stores.blobs.get(id)? else {
        tracing::warn!(%id, "export: the drawing's stroke record is missing; skipped");
        return Ok(None);
    };
    match Record::decode(&bytes) {
        Ok(record) => Ok(Some(record)),
        Err(e) => {
            tracing::warn!(%id, error = %e, "export: the stroke record is unreadable; skipped");
            Ok(None)
        }
    }
}

/// Writes a JSON number as Quick, Draw! does: whole numbers without a fraction.
fn push_number(out: &mut String, v: f64) {
    if v.fract() == 0.0 && v.abs() < crate::domain::drawing::MAX_TIMESTAMP {
        let _ = write!(out, "{}", v as i64);
    } else {
        // Rust prints the shortest text that reads back as the same f64, never with an
        // exponent: valid JSON.
        let _ = write!(out, "{v}");
    }
}

fn push_string(out: &mut String, text: &str) {
    // Serializing a &str to JSON cannot fail.
    out.push_str(&serde_json::to_string(text).unwrap_or_else(|_| "\"\"".into()));
}

fn push_array(out: &mut String, values: impl Iterator<Item = f64>) {
    out.push('[');
    for (i, v) in values.enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_number(out, v);
    }
    out.push(']');
}

/// The fields every Quick, Draw! line opens with, up to `"drawing":`.
fn push_quickdraw_head(row: &ExportRow, record: &Record, out: &mut String) {
    let source = record.source.as_ref();
    out.push_str("{\"word\":");
    push_string(out, &row.shape);
    out.push_str(",\"countrycode\":");
    push_string(out, source.and_then(|s| s.country()).unwrap_or(""));
    out.push_str(",\"timestamp\":");
    match source.and_then(|s| s.timestamp()) {
        Some(text) => push_string(out, text),
        None => push_string(out, &quickdraw_time(record.created_at_ms)),
    }
    let recognized = verdict(row, record).is_some_and(|(recognized, _)| recognized);
    let _ = write!(out, ",\"recognized\":{recognized},\"key_id\":");
    match source {
        Some(source) => push_string(out, source.key()),
        None => push_string(out, &record.id.to_string()),
    }
    out.push_str(",\"drawing\":");
}

/// A drawing's `recognized` and the model behind it. An imported drawing keeps the verdict it
/// came with (its line is written back as it came); a game drawing has the background
/// scorer's, from its row, or, stored before the scorer judged (migration 8), its record's.
/// `None` until a model judged it.
fn verdict<'a>(row: &'a ExportRow, record: &'a Record) -> Option<(bool, &'a str)> {
    let from_record = || {
        record
            .judgement
            .as_ref()
            .map(|j| (j.recognized, j.model_version.as_str()))
    };
    if record.source.is_some() {
        return from_record();
    }
    match (row.recognized, row.model_version.as_deref()) {
        (Some(recognized), Some(model)) => Some((recognized, model)),
        _ => from_record(),
    }
}

/// Quick, Draw!'s timestamp text, e.g. `2017-01-25 03:11:35.55071 UTC`.
fn quickdraw_time(ms: u64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| {
            t.format(time::macros::format_description!(
                "[year]-[month]-[day] [hour]:[minute]:[second].[subsecond digits:6] UTC"
            ))
            .ok()
        })
        .unwrap_or_default()
}

fn raw_line(row: &ExportRow, record: &Record, out: &mut String) {
    push_quickdraw_head(row, record, out);
    let drawing = &record.drawing;
    // A game drawing's timestamps are the player's clock: count them from the first point,
    // as Quick, Draw! does. An imported drawing's are already so, and are kept exactly.
    let origin = match (&record.source, drawing.strokes()[0].points[0].timestamp) {
        (None, Some(first)) => first,
        _ => 0.0,
    };
    out.push('[');
    for (i, stroke) in drawing.strokes().iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push('[');
        push_array(out, stroke.points.iter().map(|p| p.x));
        out.push(',');
        push_array(out, stroke.points.iter().map(|p| p.y));
        if drawing.has_timestamps() {
            out.push(',');
            push_array(
                out,
                stroke
                    .points
                    .iter()
                    .map(|p| p.timestamp.unwrap_or(0.0) - origin),
            );
        }
        out.push(']');
    }
    out.push_str("]}");
}

fn simplified_line(row: &ExportRow, record: &Record, out: &mut String) {
    push_quickdraw_head(row, record, out);
    let strokes: Vec<Vec<[f64; 2]>> = record
        .drawing
        .strokes()
        .iter()
        .map(|s| s.points.iter().map(|p| [p.x, p.y]).collect())
        .collect();
    out.push('[');
    for (i, (xs, ys)) in simplify(&strokes).iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push('[');
        push_array(out, xs.iter().map(|&v| v as f64));
        out.push(',');
        push_array(out, ys.iter().map(|&v| v as f64));
        out.push(']');
    }
    out.push_str("]}");
}

fn jsonl_line(row: &ExportRow, record: &Record, out: &mut String) {
    let mut line = serde_json::json!({
        "id": row.id.to_string(),
        "shape": row.shape,
        "player_id": row.player_id,
        "created_at": row.created_at_ms,
    });
    if let Some(source) = &record.source {
        line["key_id"] = source.key().into();
        if let Some(country) = source.country() {
            line["countrycode"] = country.into();
        }
        if let Some(timestamp) = source.timestamp() {
            line["timestamp"] = timestamp.into();
        }
    }
    if let Some((recognized, model_version)) = verdict(row, record) {
        line["recognized"] = recognized.into();
        line["model_version"] = model_version.into();
    }
    line["drawing"] = record.drawing.to_json();
    out.push_str(&line.to_string());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(pairs: &[(&str, &str)]) -> Result<ExportQuery, FilterError> {
        ExportQuery::parse(pairs)
    }

    #[test]
    fn an_export_query_needs_one_known_format_and_never_admits_deleted_drawings() {
        let ok = query(&[("format", "npy"), ("shape", "circle")]).unwrap();
        assert_eq!(ok.format, ExportFormat::Npy);
        assert_eq!(query(&[]).unwrap_err().parameter, "format");
        assert_eq!(query(&[("format", "csv")]).unwrap_err().parameter, "format");
        let deleted = query(&[("format", "jsonl"), ("deleted", "any")]).unwrap_err();
        assert_eq!(deleted.parameter, "deleted");
        assert!(query(&[("format", "jsonl"), ("deleted", "false")]).is_ok());
        assert_eq!(
            query(&[("format", "jsonl"), ("colour", "red")])
                .unwrap_err()
                .parameter,
            "colour"
        );
        assert_eq!(
            query(&[("format", "jsonl"), ("min_quality", "2")])
                .unwrap_err()
                .parameter,
            "min_quality"
        );
    }

    #[test]
    fn numbers_are_written_as_quick_draw_writes_them() {
        let mut out = String::new();
        push_array(&mut out, [0.0, -20.0, 110.25, 1e-7].into_iter());
        assert_eq!(out, "[0,-20,110.25,0.0000001]");
        assert_eq!(
            quickdraw_time(1_485_314_295_550),
            "2017-01-25 03:18:15.550000 UTC"
        );
    }
}
