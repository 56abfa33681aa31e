//! Importing drawings from ndjson: Quick, Draw! raw or simplified lines, and Doodlebox's own
//! JSON lines (what `export --format jsonl` writes), mixed freely, one drawing per line.
//!
//! The importer reads lines in chunks, parses and encodes each chunk on every core, and hands
//! it to the group-commit writer as one bulk message ([`Ingest::import_chunk`]): durable, ids
//! in order, and while the writer commits one chunk the next is being parsed. A bad line is
//! reported with its number and the import goes on; a line whose source key (Quick, Draw!
//! `key_id`) is already stored is skipped and counted. All drawings of one import belong to
//! one player named after the source (the file name), the same player on every re-import.
//!
//! This module blocks (it reads, waits for the writer and touches SQLite): call it from a
//! blocking thread.

use std::collections::HashMap;
use std::io::BufRead;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use thiserror::Error;

use super::quickdraw::QuickDrawRecord;
use crate::domain::drawing::DrawingInput;
use crate::domain::{Drawing, Judgement, ModelVersion, PlayerId, ShapeName, Source};
use crate::store::{ImportItem, ImportOutcome, Ingest, IngestError, StoreError, Stores};

/// Most drawings handed to the writer in one message (and committed together).
pub const CHUNK: usize = 2_000;
/// Most bytes of lines read into one chunk: a chunk ends at [`CHUNK`] lines or at this
/// many bytes, whichever comes first, so that an import holds about two chunks (the one
/// being parsed and the one being committed) however long its lines are, instead of
/// 2,000 lines of up to [`MAX_LINE_BYTES`] each (8 GiB).
pub const CHUNK_BYTES: usize = 16 * 1024 * 1024;
/// Bad lines listed in a report; beyond these only the count grows.
pub const MAX_REPORTED_BAD_LINES: usize = 100;
/// Longest line read; a longer one is a bad line (a drawing at the point limit is far shorter).
pub const MAX_LINE_BYTES: usize = 4 * 1024 * 1024;
/// Longest source name (it becomes the import player's nickname).
pub const MAX_SOURCE_NAME_LEN: usize = 64;
/// The `model_version` under which Quick, Draw!'s own `recognized` flag is kept.
pub const QUICKDRAW_MODEL: &str = "quickdraw";
/// The description a shape created by an import gets.
const CREATED_SHAPE_DESCRIPTION: &str = "Created by an import";

/// How an import goes.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// Words that name no shape create one (otherwise their lines are bad lines).
    pub create_shapes: bool,
    /// Where the lines come from, e.g. the file name: names the import player.
    pub source: SourceName,
}

/// The name of an import's source: 1 to [`MAX_SOURCE_NAME_LEN`] printable characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceName(String);

impl SourceName {
    pub fn parse(raw: &str) -> Result<Self, ImportError> {
        let ok = !raw.trim().is_empty()
            && raw.chars().count() <= MAX_SOURCE_NAME_LEN
            && !raw.chars().any(char::is_control);
        if ok {
            Ok(Self(raw.to_owned()))
        } else {
            Err(ImportError::SourceName(MAX_SOURCE_NAME_LEN))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The player all drawings of this source belong to: derived from the name, so a
    /// re-import of the same file lands with the same player.
    pub fn player(&self) -> PlayerId {
        let digest = Sha256::digest(format!("doodlebox import: {}", self.0).as_bytes());
        let mut bytes = [0; 16];
        bytes.copy_from_slice(&digest[..16]);
        PlayerId::from_bytes(bytes)
    }
}

/// What an import did.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ImportReport {
    /// Drawings stored.
    pub imported: u64,
    /// Lines whose source key was already stored (or came earlier in the input).
    pub skipped_duplicates: u64,
    /// The first [`MAX_REPORTED_BAD_LINES`] lines that could not be imported.
    pub bad_lines: Vec<BadLine>,
    /// All lines that could not be imported.
    pub bad_line_count: u64,
    /// Shapes the import created (only with `create_shapes`).
    pub created_shapes: Vec<String>,
}

/// A line that could not be imported, and why.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct BadLine {
    /// 1-based line number.
    pub line: u64,
    pub error: String,
}

#[derive(Debug, Error)]
pub enum ImportError {
    #[error("the source name must be 1 to {0} printable characters")]
    SourceName(usize),
    #[error("reading the input failed: {0}")]
    Read(#[from] std::io::Error),
    #[error(transparent)]
    Ingest(#[from] IngestError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl ImportReport {
    fn bad(&mut self, line: u64, error: String) {
        self.bad_line_count += 1;
        if self.bad_lines.len() < MAX_REPORTED_BAD_LINES {
            self.bad_lines.push(BadLine { line, error });
        }
    }
}

/// Imports every line of `input`. `progress` is called after each chunk with the report so
/// far (the CLI draws its bar from it).
pub fn import(
    stores: &Stores,
    ingest: &Ingest,
    mut input: impl BufRead,
    options: &ImportOptions,
    progress: &mut dyn FnMut(&ImportReport),
) -> Result<ImportReport, ImportError> {
    let player = options.source.player();
    stores
        .metadata
        .set_nickname(player, &format!("import: {}", options.source.as_str()))?;
    let shapes = ShapeResolver {
        stores,
        create: options.create_shapes,
        known: Mutex::new(HashMap::new()),
        created: Mutex::new(Vec::new()),
    };
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut report = ImportReport::default();
    let mut line_number = 0u64;
    // The chunk the writer is committing while the next one is parsed: its answer and the
    // line numbers of its items.
    let mut in_flight: Option<(crate::store::PendingImport, Vec<u64>)> = None;
    let mut buffer = Vec::new();
    loop {
        let (lines, at_end) = read_chunk(&mut input, &mut buffer, &mut line_number, &mut report)?;
        let parsed = parse_parallel(&lines, workers, player, &shapes);
        drop(lines);
        let mut items = Vec::with_capacity(parsed.len());
        let mut numbers = Vec::with_capacity(parsed.len());
        for (number, result) in parsed {
            match result {
                Ok(item) => {
                    items.push(item);
                    numbers.push(number);
                }
                Err(error) => report.bad(number, error),
            }
        }
        let next = if items.is_empty() {
            None
        } else {
            Some((ingest.import_chunk(items)?, numbers))
        };
        if let Some((pending, _)) = std::mem::replace(&mut in_flight, next) {
            tally(&mut report, pending.wait()?);
            progress(&report);
        }
        if at_end {
            break;
        }
    }
    if let Some((pending, _)) = in_flight {
        tally(&mut report, pending.wait()?);
    }
    report.bad_lines.sort_by_key(|b| b.line);
    report.created_shapes = shapes
        .created
        .into_inner()
        .unwrap_or_else(|p| p.into_inner());
    progress(&report);
    Ok(report)
}

/// Lines with their 1-based numbers.
type NumberedLines = Vec<(u64, Vec<u8>)>;

/// Reads the next chunk: up to [`CHUNK`] non-blank lines with their numbers, ending early
/// once they hold [`CHUNK_BYTES`]; overlong lines go to `report` as bad lines. Also says
/// whether the input has ended.
fn read_chunk(
    input: &mut impl BufRead,
    buffer: &mut Vec<u8>,
    line_number: &mut u64,
    report: &mut ImportReport,
) -> std::io::Result<(NumberedLines, bool)> {
    let mut lines = Vec::with_capacity(CHUNK);
    let mut bytes = 0usize;
    while lines.len() < CHUNK && bytes < CHUNK_BYTES {
        match read_line(input, buffer)? {
            None => return Ok((lines, true)),
            Some(fits) => {
                *line_number += 1;
                if !fits {
                    report.bad(*line_number, format!("longer than {MAX_LINE_BYTES} bytes"));
                } else if buffer.iter().any(|b| !b.is_ascii_whitespace()) {
                    bytes += buffer.len();
                    lines.push((*line_number, std::mem::take(buffer)));
                }
            }
        }
    }
    Ok((lines, false))
}

fn tally(report: &mut ImportReport, outcomes: Vec<ImportOutcome>) {
    for outcome in outcomes {
        match outcome {
            ImportOutcome::Created(_) => report.imported += 1,
            ImportOutcome::Duplicate => report.skipped_duplicates += 1,
        }
    }
}

/// Reads one line (without its end) into `buffer`: `None` at the end of the input,
/// `Some(false)` for a line longer than [`MAX_LINE_BYTES`] (skipped to its end, not kept).
fn read_line(input: &mut impl BufRead, buffer: &mut Vec<u8>) -> std::io::Result<Option<bool>> {
    buffer.clear();
    let read =
        std::io::Read::take(&mut *input, MAX_LINE_BYTES as u64 + 1).read_until(b'\n', buffer)?;
    if read == 0 {
        return Ok(None);
    }
    if buffer.last() == Some(&b'\n') {
        buffer.pop();
        if buffer.last() == Some(&b'\r') {
            buffer.pop();
        }
        return Ok(Some(true));
    }
    if buffer.len() <= MAX_LINE_BYTES {
        return Ok(Some(true)); // the last line, without a newline
    }
    buffer.clear();
    loop {
        let available = input.fill_buf()?;
        if available.is_empty() {
            return Ok(Some(false));
        }
        match available.iter().position(|&b| b == b'\n') {
            Some(end) => {
                input.consume(end + 1);
                return Ok(Some(false));
            }
            None => {
                let n = available.len();
                input.consume(n);
            }
        }
    }
}

/// Parses and encodes a chunk on `workers` threads, keeping line order.
fn parse_parallel(
    lines: &[(u64, Vec<u8>)],
    workers: usize,
    player: PlayerId,
    shapes: &ShapeResolver<'_>,
) -> Vec<(u64, Result<ImportItem, String>)> {
    let one = |(number, bytes): &(u64, Vec<u8>)| {
        let item = parse_line(bytes)
            .and_then(|line| {
                let shape_id = shapes.resolve(&line.shape)?;
                Ok(ImportItem::new(
                    player,
                    &line.drawing,
                    shape_id,
                    &line.source,
                    line.judgement.as_ref(),
                ))
            })
            .map_err(|e| e.to_string());
        (*number, item)
    };
    if workers <= 1 || lines.len() < 64 {
        return lines.iter().map(one).collect();
    }
    let per = lines.len().div_ceil(workers);
    std::thread::scope(|scope| {
        let handles: Vec<_> = lines
            .chunks(per)
            .map(|part| scope.spawn(move || part.iter().map(one).collect::<Vec<_>>()))
            .collect();
        handles
            .into_iter()
            // A worker only panics on a bug; the import then fails loudly rather than
            // silently dropping lines.
            .flat_map(|h| h.join().expect("an import worker panicked"))
            .collect()
    })
}

/// Maps words to shape ids, creating shapes when asked; shared by the parsing threads.
struct ShapeResolver<'a> {
    stores: &'a Stores,
    create: bool,
    /// Word → shape id, or `None` for a word known to name no shape.
    known: Mutex<HashMap<ShapeName, Option<i64>>>,
    created: Mutex<Vec<String>>,
}

impl ShapeResolver<'_> {
    fn resolve(&self, shape: &ShapeName) -> Result<i64, LineError> {
        let mut known = self.known.lock().unwrap_or_else(|p| p.into_inner());
        let id = match known.get(shape) {
            Some(id) => *id,
            None => {
                let found = match self.stores.metadata.shape_by_name(shape) {
                    Ok(found) => found.map(|s| s.id),
                    Err(e) => return Err(LineError::Store(e.to_string())),
                };
                let id = match (found, self.create) {
                    (Some(id), _) => Some(id),
                    (None, false) => None,
                    (None, true) => {
                        let (row, created) = self
                            .stores
                            .metadata
                            .ensure_shape(shape, CREATED_SHAPE_DESCRIPTION)
                            .map_err(|e| LineError::Store(e.to_string()))?;
                        if created {
                            self.created
                                .lock()
                                .unwrap_or_else(|p| p.into_inner())
                                .push(shape.to_string());
                        }
                        Some(row.id)
                    }
                };
                known.insert(shape.clone(), id);
                id
            }
        };
        id.ok_or_else(|| LineError::UnknownShape(shape.to_string()))
    }
}

/// Why one line was not imported.
#[derive(Debug, Error)]
enum LineError {
    #[error("not valid UTF-8")]
    Utf8,
    #[error(transparent)]
    QuickDraw(#[from] super::quickdraw::QuickDrawError),
    #[error("not a Doodlebox drawing line: {0}")]
    Jsonl(serde_json::Error),
    #[error(transparent)]
    Drawing(#[from] crate::domain::DrawingError),
    #[error("{0}")]
    Source(#[from] crate::domain::record::SourceError),
    #[error("{0}")]
    ModelVersion(#[from] crate::domain::IdError),
    #[error("unknown shape `{0}` (import with create_shapes=true / --create-shapes to create it)")]
    UnknownShape(String),
    #[error("storage: {0}")]
    Store(String),
}

/// One line, parsed: what the importer stores.
struct ParsedLine {
    shape: ShapeName,
    drawing: Drawing,
    source: Source,
    judgement: Option<Judgement>,
}

/// A line of Doodlebox's JSON lines export (see `export`).
#[derive(Deserialize)]
struct JsonlLine {
    id: String,
    #[serde(default)]
    key_id: Option<String>,
    #[serde(default)]
    countrycode: Option<String>,
    #[serde(default)]
    timestamp: Option<String>,
    #[serde(default)]
    recognized: Option<bool>,
    #[serde(default)]
    model_version: Option<String>,
    drawing: DrawingInput,
}

fn parse_line(bytes: &[u8]) -> Result<ParsedLine, LineError> {
    let text = std::str::from_utf8(bytes).map_err(|_| LineError::Utf8)?;
    if is_jsonl(text) {
        let line: JsonlLine = serde_json::from_str(text).map_err(LineError::Jsonl)?;
        let drawing = Drawing::parse(line.drawing)?;
        // A drawing exported from another Doodlebox keeps its original key; one that was
        // collected there is known by its id there.
        let key = line
            .key_id
            .unwrap_or_else(|| format!("doodlebox:{}", line.id));
        let source = Source::new(&key, line.countrycode.as_deref(), line.timestamp.as_deref())?;
        // The version is stored in the record and shown on the drawing: the same rule as
        // a version the server hands out (bounded, plain characters).
        let model_version = match line.model_version {
            Some(version) => ModelVersion::parse(&version)?.as_str().to_owned(),
            None => QUICKDRAW_MODEL.into(),
        };
        let judgement = line.recognized.map(|recognized| Judgement {
            recognized,
            model_version,
        });
        return Ok(ParsedLine {
            shape: drawing.shape().clone(),
            drawing,
            source,
            judgement,
        });
    }
    let record = QuickDrawRecord::parse_line(text)?;
    let drawing = record.to_drawing()?;
    // Quick, Draw! lines all carry a key_id; for one that does not, its content is its key,
    // so that importing the same file twice still stores it once.
    let key = match &record.key_id {
        Some(key) => key.clone(),
        None => {
            let digest = Sha256::digest(bytes);
            format!(
                "sha256:{}",
                digest[..16]
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect::<String>()
            )
        }
    };
    let source = Source::new(
        &key,
        record.countrycode.as_deref(),
        record.timestamp.as_deref(),
    )?;
    Ok(ParsedLine {
        shape: drawing.shape().clone(),
        drawing,
        source,
        judgement: record.recognized.map(|recognized| Judgement {
            recognized,
            model_version: QUICKDRAW_MODEL.into(),
        }),
    })
}

/// Whether a line is Doodlebox JSON lines (its `drawing` is an object) rather than Quick,
/// Draw! (an array of strokes).
fn is_jsonl(text: &str) -> bool {
    text.find("\"drawing\"").is_some_and(|at| {
        text[at + "\"drawing\"".len()..]
            .trim_start_matches(|c: char| c.is_whitespace() || c == ':')
            .starts_with('{')
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_raw_line_keeps_its_key_country_time_and_recognized_flag() {
        let line = br#"{"word":"circle","countrycode":"US","timestamp":"2017-01-25 03:11:35.55071 UTC","recognized":true,"key_id":"5266005389475840","drawing":[[[10,20],[5,6],[0,16]]]}"#;
        let parsed = parse_line(line).unwrap();
        assert_eq!(parsed.shape.as_str(), "circle");
        assert_eq!(parsed.source.key(), "5266005389475840");
        assert_eq!(parsed.source.country(), Some("US"));
        assert!(parsed.judgement.unwrap().recognized);
    }

    #[test]
    fn a_line_without_key_id_is_keyed_by_its_content() {
        let line = br#"{"word":"circle","drawing":[[[10,20],[5,6]]]}"#;
        let a = parse_line(line).unwrap().source;
        let b = parse_line(line).unwrap().source;
        assert!(a.key().starts_with("sha256:"));
        assert_eq!(a, b);
    }

    #[test]
    fn jsonl_and_quickdraw_lines_are_told_apart_by_their_drawing() {
        assert!(is_jsonl(r#"{"id":"x","drawing": {"shape":"circle"}}"#));
        assert!(!is_jsonl(r#"{"word":"circle","drawing":[[[1],[2]]]}"#));
        assert!(!is_jsonl("not json"));
    }

    #[test]
    fn overlong_lines_are_skipped_to_their_end_and_the_next_line_reads() {
        let mut input = vec![b'x'; MAX_LINE_BYTES + 10];
        input.extend_from_slice(b"\nnext\r\nlast");
        let mut reader = std::io::BufReader::new(input.as_slice());
        let mut buffer = Vec::new();
        assert_eq!(read_line(&mut reader, &mut buffer).unwrap(), Some(false));
        assert_eq!(read_line(&mut reader, &mut buffer).unwrap(), Some(true));
        assert_eq!(buffer, b"next");
        assert_eq!(read_line(&mut reader, &mut buffer).unwrap(), Some(true));
        assert_eq!(buffer, b"last");
        assert_eq!(read_line(&mut reader, &mut buffer).unwrap(), None);
    }

    #[test]
    fn a_chunk_ends_at_its_byte_budget_before_its_line_count() {
        let line = vec![b'x'; 1024 * 1024];
        let mut input = Vec::new();
        for _ in 0..40 {
            input.extend_from_slice(&line);
            input.push(b'\n');
        }
        let mut reader = std::io::BufReader::new(input.as_slice());
        let (mut buffer, mut number, mut report) = (Vec::new(), 0, ImportReport::default());
        let (first, at_end) =
            read_chunk(&mut reader, &mut buffer, &mut number, &mut report).unwrap();
        assert!(!at_end);
        assert_eq!(
            first.len(),
            CHUNK_BYTES / line.len(),
            "a chunk holds 16 MiB of lines"
        );
        let (second, _) = read_chunk(&mut reader, &mut buffer, &mut number, &mut report).unwrap();
        assert_eq!(second.first().map(|l| l.0), Some(first.len() as u64 + 1));
        let (rest, at_end) =
            read_chunk(&mut reader, &mut buffer, &mut number, &mut report).unwrap();
        assert!(at_end);
        assert_eq!(first.len() + second.len() + rest.len(), 40);
        let small = b"a\n\nb\n".repeat(3);
        let mut reader = std::io::BufReader::new(small.as_slice());
        let (lines, at_end) = read_chunk(&mut reader, &mut buffer, &mut 0, &mut report).unwrap();
        assert_eq!((lines.len(), at_end), (6, true), "blank lines are not kept");
    }

    #[test]
    fn a_jsonl_line_with_an_odd_model_version_is_a_bad_line() {
        let line = |version: &str| {
            serde_json::json!({
                "id": "d1", "recognized": true, "model_version": version,
                "drawing": {"shape": "circle", "canvas": {"width": 400, "height": 400},
                    "strokes": [{"points": [{"x": 1, "y": 2}, {"x": 3, "y": 4}]}]}
            })
            .to_string()
        };
        let parsed = parse_line(line("v3-2026.01_a").as_bytes()).unwrap();
        assert_eq!(parsed.judgement.unwrap().model_version, "v3-2026.01_a");
        for bad in ["", "../x", "a b", "\u{202e}evil", &"v".repeat(1000)] {
            let error = parse_line(line(bad).as_bytes()).err();
            assert!(
                matches!(error, Some(LineError::ModelVersion(_))),
                "{bad:?}: {error:?}"
            );
        }
    }

    #[test]
    fn source_names_pick_one_player_each() {
        let a = SourceName::parse("circle.ndjson").unwrap();
        assert_eq!(
            a.player(),
            SourceName::parse("circle.ndjson").unwrap().player()
        );
        assert_ne!(
            a.player(),
            SourceName::parse("square.ndjson").unwrap().player()
        );
        assert!(SourceName::parse("").is_err());
        assert!(SourceName::parse("a\nb").is_err());
    }
}
