//! The stored form of a drawing: a compact, self-describing binary record.
//!
//! A record carries everything needed to rebuild the drawing's metadata row (id, player,
//! time, idempotency key), so the stroke store alone can repair the metadata store after a
//! crash. The layout is documented in `docs/record-format.md`; in short, every number column
//! (x, y, pressure, timestamp) is stored as zig-zag varint deltas of its values scaled by the
//! smallest power of ten that makes them whole, and falls back to raw floats only when no
//! such scale reproduces the values exactly. Everything after the uncompressed header
//! (magic, version, id, player, time) is compressed with zstd, which takes a further quarter
//! off real drawings (see `benches/encoding.rs`). Decoding re-checks every drawing invariant.

use thiserror::Error;

use super::drawing::{Canvas, Device, Drawing, DrawingError, Point, Stroke};
use super::ids::{DrawingId, IdempotencyKey, PlayerId};
use super::shape::ShapeName;

/// First byte of every record.
const MAGIC: u8 = 0xDB;
/// Format version, second byte. Bump it (and keep decoding the old one) on any change.
/// Version 2 added the import source (flag bit 6); version 1 records decode unchanged.
pub const RECORD_VERSION: u8 = 2;
/// The first version, still decoded: it never carries an import source.
const RECORD_VERSION_1: u8 = 1;
/// zstd level: 3 is zstd's default, a few microseconds for a typical record.
const ZSTD_LEVEL: i32 = 3;
/// Largest uncompressed body a record may claim; far above what `MAX_POINTS` allows.
const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;
/// Largest decimal scale tried for a number column: 10^6.
const MAX_DECIMAL_SCALE: u8 = 6;
/// Column mode: every value is exactly an f32.
const MODE_F32: u8 = 0x10;
/// Column mode: raw f64 values.
const MODE_F64: u8 = 0x11;
/// Largest magnitude of a scaled value: 2^53, so it converts to f64 exactly.
const MAX_SCALED: f64 = 9_007_199_254_740_992.0;

const FLAG_IDEMPOTENCY: u8 = 1;
const FLAG_PRESSURE: u8 = 1 << 1;
const FLAG_TIMESTAMPS: u8 = 1 << 2;
const FLAG_DURATION: u8 = 1 << 3;
const FLAG_DEVICE: u8 = 1 << 4;
const FLAG_JUDGEMENT: u8 = 1 << 5;
const FLAG_SOURCE: u8 = 1 << 6;
/// Longest text field of an import source (key, country code, timestamp).
pub const MAX_SOURCE_FIELD_LEN: usize = 64;

const STYLE_COLOR_HEX6: u8 = 1;
const STYLE_COLOR_TEXT: u8 = 1 << 1;
const STYLE_WIDTH: u8 = 1 << 2;

#[derive(Debug, Error, PartialEq)]
pub enum RecordError {
    #[error("record body does not decompress: {0}")]
    Compression(String),
    #[error("record is truncated")]
    Truncated,
    #[error("not a drawing record (bad magic byte)")]
    BadMagic,
    #[error("unsupported record version {0}")]
    Version(u8),
    #[error("record is corrupt: {0}")]
    Corrupt(&'static str),
    #[error("record holds an invalid drawing: {0}")]
    Invalid(#[from] DrawingError),
}

/// The idempotency key a drawing was submitted with and a digest of the request body, so
/// that a retry with the same key can be told apart from a different request.
#[derive(Debug, Clone, PartialEq)]
pub struct Idempotency {
    pub key: IdempotencyKey,
    pub body_digest: [u8; 16],
}

/// What the active model made of a drawing when it was submitted, as Quick, Draw!'s
/// `recognized` flag: whether its top guess was the prompted shape, and which model judged.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Judgement {
    pub recognized: bool,
    pub model_version: String,
}

/// Where an imported drawing came from: its Quick, Draw! `key_id` (unique across the
/// dataset; a re-import of the same key is skipped) and the fields of the raw line that have
/// no column of their own, so that an export writes the line back as it came. Kept in the
/// record because start-up reconciliation rebuilds rows from records alone: without the key
/// a re-import after a crash-rebuild would duplicate drawings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    key: String,
    country: Option<String>,
    timestamp: Option<String>,
}

/// Why an import source was refused.
#[derive(Debug, Error, PartialEq, Eq)]
#[error("{0} must be 1 to {MAX_SOURCE_FIELD_LEN} printable ASCII characters")]
pub struct SourceError(pub &'static str);

impl Source {
    /// Validates a source: every field is 1 to [`MAX_SOURCE_FIELD_LEN`] printable ASCII
    /// characters (`key_id`s are decimal numbers, country codes two letters).
    pub fn new(
        key: &str,
        country: Option<&str>,
        timestamp: Option<&str>,
    ) -> Result<Self, SourceError> {
        let check = |what: &'static str, text: &str| {
            let ok = !text.is_empty()
                && text.len() <= MAX_SOURCE_FIELD_LEN
                && text.bytes().all(|b| (0x20..0x7f).contains(&b));
            if ok {
                Ok(text.to_owned())
            } else {
                Err(SourceError(what))
            }
        };
        Ok(Self {
            key: check("key_id", key)?,
            country: country.map(|c| check("countrycode", c)).transpose()?,
            timestamp: timestamp.map(|t| check("timestamp", t)).transpose()?,
        })
    }

    /// The source's unique key (Quick, Draw!'s `key_id`).
    pub fn key(&self) -> &str {
        &self.key
    }

    /// Quick, Draw!'s `countrycode`, if the line had one.
    pub fn country(&self) -> Option<&str> {
        self.country.as_deref()
    }

    /// Quick, Draw!'s `timestamp` text, if the line had one.
    pub fn timestamp(&self) -> Option<&str> {
        self.timestamp.as_deref()
    }
}

/// One stored drawing and who made it when.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub id: DrawingId,
    pub player: PlayerId,
    pub created_at_ms: u64,
    pub idempotency: Option<Idempotency>,
    /// `None` when no model was active at submission.
    pub judgement: Option<Judgement>,
    /// `Some` for an imported drawing.
    pub source: Option<Source>,
    pub drawing: Drawing,
}

impl Record {
    pub fn encode(&self) -> Vec<u8> {
        let body = encode_body_with_source(
            self.idempotency.as_ref(),
            self.judgement.as_ref(),
            self.source.as_ref(),
            &self.drawing,
        );
        assemble(self.id, self.player, self.created_at_ms, &body)
    }
}

/// The compressed part of a record: everything but id, player and time, which are only
/// known in the group-commit writer. Callers encode in parallel; the writer just assembles.
pub fn encode_body(
    idempotency: Option<&Idempotency>,
    judgement: Option<&Judgement>,
    d: &Drawing,
) -> Vec<u8> {
    encode_body_with_source(idempotency, judgement, None, d)
}

/// [`encode_body`] for an imported drawing, which also carries its [`Source`].
pub fn encode_body_with_source(
    idempotency: Option<&Idempotency>,
    judgement: Option<&Judgement>,
    source: Option<&Source>,
    d: &Drawing,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + d.point_count() * 4);
    let mut flags = 0;
    flags |= if idempotency.is_some() {
        FLAG_IDEMPOTENCY
    } else {
        0
    };
    flags |= if d.has_pressure() { FLAG_PRESSURE } else { 0 };
    flags |= if d.has_timestamps() {
        FLAG_TIMESTAMPS
    } else {
        0
    };
    flags |= if d.duration_ms().is_some() {
        FLAG_DURATION
    } else {
        0
    };
    flags |= if d.device().is_some() { FLAG_DEVICE } else { 0 };
    flags |= if judgement.is_some() {
        FLAG_JUDGEMENT
    } else {
        0
    };
    flags |= if source.is_some() { FLAG_SOURCE } else { 0 };
    out.push(flags);
    if let Some(idem) = idempotency {
        put_bytes(&mut out, idem.key.as_str().as_bytes());
        out.extend_from_slice(&idem.body_digest);
    }
    put_bytes(&mut out, d.shape().as_str().as_bytes());
    put_varint(&mut out, u64::from(d.canvas().width));
    put_varint(&mut out, u64::from(d.canvas().height));
    if let Some(ms) = d.duration_ms() {
        put_varint(&mut out, ms);
    }
    if let Some(device) = d.device() {
        out.push(device.code());
    }
    if let Some(j) = judgement {
        out.push(u8::from(j.recognized));
        put_bytes(&mut out, j.model_version.as_bytes());
    }
    if let Some(source) = source {
        put_bytes(&mut out, source.key.as_bytes());
        // Absent fields are written empty: a present field is never empty.
        put_bytes(&mut out, source.country.as_deref().unwrap_or("").as_bytes());
        put_bytes(
            &mut out,
            source.timestamp.as_deref().unwrap_or("").as_bytes(),
        );
    }
    put_varint(&mut out, d.strokes().len() as u64);
    for stroke in d.strokes() {
        put_varint(&mut out, stroke.points.len() as u64);
        put_style(&mut out, stroke);
    }
    let points = || d.strokes().iter().flat_map(|s| s.points.iter());
    put_column(&mut out, &points().map(|p| p.x).collect::<Vec<_>>());
    put_column(&mut out, &points().map(|p| p.y).collect::<Vec<_>>());
    if d.has_pressure() {
        put_column(
            &mut out,
            &points().filter_map(|p| p.pressure).collect::<Vec<_>>(),
        );
    }
    if d.has_timestamps() {
        put_column(
            &mut out,
            &points().filter_map(|p| p.timestamp).collect::<Vec<_>>(),
        );
    }
    compress(&out)
}

thread_local! {
    /// One zstd context per thread: creating one costs more than compressing a drawing.
    static COMPRESSOR: std::cell::RefCell<Option<zstd::bulk::Compressor<'static>>> =
        const { std::cell::RefCell::new(None) };
}

fn compress(body: &[u8]) -> Vec<u8> {
    COMPRESSOR.with(|cell| {
        let mut slot = cell.borrow_mut();
        let compressed = match slot.as_mut() {
            Some(compressor) => compressor.compress(body),
            None => zstd::bulk::Compressor::new(ZSTD_LEVEL).and_then(|mut c| {
                let out = c.compress(body);
                *slot = Some(c);
                out
            }),
        };
        // zstd only fails on allocation failure or bad parameters; level 3 is always valid.
        compressed.expect("zstd compresses an in-memory buffer")
    })
}

/// Puts the uncompressed header (magic, version, id, player, time) before a body made by
/// [`encode_body`]. This is all the group-commit writer does per drawing.
pub fn assemble(id: DrawingId, player: PlayerId, created_at_ms: u64, body: &[u8]) -> Vec<u8> {
    let mut record = Vec::with_capacity(2 + 32 + 10 + body.len());
    record.extend_from_slice(&[MAGIC, RECORD_VERSION]);
    record.extend_from_slice(&id.to_bytes());
    record.extend_from_slice(&player.to_bytes());
    put_varint(&mut record, created_at_ms);
    record.extend_from_slice(body);
    record
}

impl Record {
    pub fn decode(bytes: &[u8]) -> Result<Self, RecordError> {
        let version = match bytes {
            [MAGIC, version @ (RECORD_VERSION_1 | RECORD_VERSION), ..] => *version,
            [MAGIC, other, ..] => return Err(RecordError::Version(*other)),
            [_, ..] => return Err(RecordError::BadMagic),
            [] => return Err(RecordError::Truncated),
        };
        let mut header = Reader { bytes, at: 2 };
        let id = DrawingId::from_bytes(header.array()?);
        let player = PlayerId::from_bytes(header.array()?);
        let created_at_ms = header.varint()?;
        let body = zstd::bulk::decompress(&bytes[header.at..], MAX_BODY_BYTES)
            .map_err(|e| RecordError::Compression(e.to_string()))?;
        Self::decode_body(id, player, created_at_ms, version, &body)
    }

    fn decode_body(
        id: DrawingId,
        player: PlayerId,
        created_at_ms: u64,
        version: u8,
        bytes: &[u8],
    ) -> Result<Self, RecordError> {
        let mut r = Reader { bytes, at: 0 };
        let flags = r.byte()?;
        if version == RECORD_VERSION_1 && flags & FLAG_SOURCE != 0 {
            return Err(RecordError::Corrupt("a version 1 record with a source"));
        }
        let idempotency = if flags & FLAG_IDEMPOTENCY != 0 {
            let key = IdempotencyKey::parse(r.bytes()?)
                .map_err(|_| RecordError::Corrupt("idempotency key"))?;
            Some(Idempotency {
                key,
                body_digest: r.array()?,
            })
        } else {
            None
        };
        let shape =
            std::str::from_utf8(r.bytes()?).map_err(|_| RecordError::Corrupt("shape name"))?;
        let shape = ShapeName::parse(shape).map_err(DrawingError::from)?;
        let width = r.small(u64::from(u32::MAX))? as u32;
        let height = r.small(u64::from(u32::MAX))? as u32;
        let duration_ms = if flags & FLAG_DURATION != 0 {
            Some(r.varint()?)
        } else {
            None
        };
        let device = if flags & FLAG_DEVICE != 0 {
            Some(Device::from_code(r.byte()?).ok_or(RecordError::Corrupt("device"))?)
        } else {
            None
        };
        let judgement = if flags & FLAG_JUDGEMENT != 0 {
            let recognized = r.byte()? != 0;
            let version = std::str::from_utf8(r.bytes()?)
                .map_err(|_| RecordError::Corrupt("model version"))?;
            Some(Judgement {
                recognized,
                model_version: version.to_owned(),
            })
        } else {
            None
        };
        let source = if flags & FLAG_SOURCE != 0 {
            let mut text = |what: &'static str| -> Result<Option<String>, RecordError> {
                let text =
                    std::str::from_utf8(r.bytes()?).map_err(|_| RecordError::Corrupt(what))?;
                Ok((!text.is_empty()).then(|| text.to_owned()))
            };
            let key = text("source key")?.ok_or(RecordError::Corrupt("source key"))?;
            let country = text("source country")?;
            let timestamp = text("source timestamp")?;
            Some(
                Source::new(&key, country.as_deref(), timestamp.as_deref())
                    .map_err(|_| RecordError::Corrupt("source"))?,
            )
        } else {
            None
        };
        let stroke_count = r.small(crate::domain::drawing::MAX_STROKES as u64)?;
        let mut shapes_of_strokes = Vec::with_capacity(stroke_count);
        let mut total = 0usize;
        for _ in 0..stroke_count {
            let n = r.small(crate::domain::drawing::MAX_POINTS as u64)?;
            total += n;
            let (color, width) = r.style()?;
            shapes_of_strokes.push((n, color, width));
        }
        if total > crate::domain::drawing::MAX_POINTS {
            return Err(RecordError::Corrupt("point count"));
        }
        let xs = r.column(total)?;
        let ys = r.column(total)?;
        let pressures = if flags & FLAG_PRESSURE != 0 {
            Some(r.column(total)?)
        } else {
            None
        };
        let times = if flags & FLAG_TIMESTAMPS != 0 {
            Some(r.column(total)?)
        } else {
            None
        };
        if r.at != bytes.len() {
            return Err(RecordError::Corrupt("trailing bytes"));
        }
        let mut next = 0;
        let strokes = shapes_of_strokes
            .into_iter()
            .map(|(n, color, width)| {
                let points = (next..next + n)
                    .map(|i| Point {
                        x: xs[i],
                        y: ys[i],
                        pressure: pressures.as_ref().map(|p| p[i]),
                        timestamp: times.as_ref().map(|t| t[i]),
                    })
                    .collect();
                next += n;
                Stroke {
                    points,
                    color,
                    width,
                }
            })
            .collect();
        let drawing = Drawing::from_parts(
            shape,
            Canvas { width, height },
            strokes,
            duration_ms,
            device,
        )?;
        Ok(Record {
            id,
            player,
            created_at_ms,
            idempotency,
            judgement,
            source,
            drawing,
        })
    }
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

fn put_style(out: &mut Vec<u8>, stroke: &Stroke) {
    let hex6 = stroke
        .color
        .as_deref()
        .filter(|c| {
            c.len() == 7
                && c[1..]
                    .bytes()
                    .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        })
        .and_then(|c| u32::from_str_radix(&c[1..], 16).ok());
    let mut style = 0;
    style |= match (&stroke.color, hex6) {
        (_, Some(_)) => STYLE_COLOR_HEX6,
        (Some(_), None) => STYLE_COLOR_TEXT,
        (None, _) => 0,
    };
    style |= if stroke.width.is_some() {
        STYLE_WIDTH
    } else {
        0
    };
    out.push(style);
    match (&stroke.color, hex6) {
        (_, Some(rgb)) => out.extend_from_slice(&rgb.to_be_bytes()[1..]),
        (Some(text), None) => put_bytes(out, text.as_bytes()),
        (None, _) => {}
    }
    if let Some(width) = stroke.width {
        put_column(out, &[width]);
    }
}

/// The smallest decimal scale that reproduces every value exactly, if any.
fn decimal_scale(values: &[f64]) -> Option<u8> {
    (0..=MAX_DECIMAL_SCALE).find(|&e| {
        let p = 10f64.powi(i32::from(e));
        values.iter().all(|&v| {
            let s = (v * p).round();
            s.abs() <= MAX_SCALED && s / p == v
        })
    })
}

fn put_column(out: &mut Vec<u8>, values: &[f64]) {
    if let Some(e) = decimal_scale(values) {
        out.push(e);
        let p = 10f64.powi(i32::from(e));
        let mut prev = 0i64;
        for &v in values {
            let s = (v * p).round() as i64;
            put_varint(out, zigzag(s.wrapping_sub(prev)));
            prev = s;
        }
    } else if values.iter().all(|&v| f64::from(v as f32) == v) {
        out.push(MODE_F32);
        values
            .iter()
            .for_each(|&v| out.extend_from_slice(&(v as f32).to_le_bytes()));
    } else {
        out.push(MODE_F64);
        values
            .iter()
            .for_each(|&v| out.extend_from_slice(&v.to_le_bytes()));
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], RecordError> {
        let end = self
            .at
            .checked_add(n)
            .filter(|&e| e <= self.bytes.len())
            .ok_or(RecordError::Truncated)?;
        let slice = &self.bytes[self.at..end];
        self.at = end;
        Ok(slice)
    }

    fn byte(&mut self) -> Result<u8, RecordError> {
        Ok(self.take(1)?[0])
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], RecordError> {
        let mut out = [0; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn varint(&mut self) -> Result<u64, RecordError> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(RecordError::Corrupt("varint too long"))
    }

    /// A varint that must not exceed `max` (a count or a size).
    fn small(&mut self, max: u64) -> Result<usize, RecordError> {
        let v = self.varint()?;
        if v > max {
            return Err(RecordError::Corrupt("count out of range"));
        }
        Ok(v as usize)
    }

    fn bytes(&mut self) -> Result<&'a [u8], RecordError> {
        let n = self.small(self.bytes.len() as u64)?;
        self.take(n)
    }

    fn style(&mut self) -> Result<(Option<String>, Option<f64>), RecordError> {
        let style = self.byte()?;
        let color = if style & STYLE_COLOR_HEX6 != 0 {
            let [r, g, b] = self.array()?;
            Some(format!("#{r:02x}{g:02x}{b:02x}"))
        } else if style & STYLE_COLOR_TEXT != 0 {
            let text =
                std::str::from_utf8(self.bytes()?).map_err(|_| RecordError::Corrupt("color"))?;
            Some(text.to_owned())
        } else {
            None
        };
        let width = if style & STYLE_WIDTH != 0 {
            Some(self.column(1)?[0])
        } else {
            None
        };
        Ok((color, width))
    }

    fn column(&mut self, n: usize) -> Result<Vec<f64>, RecordError> {
        let mode = self.byte()?;
        let mut out = Vec::with_capacity(n);
        match mode {
            0..=MAX_DECIMAL_SCALE => {
                let p = 10f64.powi(i32::from(mode));
                let mut prev = 0i64;
                for _ in 0..n {
                    prev = prev.wrapping_add(unzigzag(self.varint()?));
                    out.push(prev as f64 / p);
                }
            }
            MODE_F32 => {
                for _ in 0..n {
                    out.push(f64::from(f32::from_le_bytes(self.array()?)));
                }
            }
            MODE_F64 => {
                for _ in 0..n {
                    out.push(f64::from_le_bytes(self.array()?));
                }
            }
            _ => return Err(RecordError::Corrupt("column mode")),
        }
        Ok(out)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::domain::drawing::tests::sample_input;

    /// The encoded record of the sample drawing under `id`, for tests of the stores.
    pub(crate) fn sample_record_bytes(id: DrawingId) -> Vec<u8> {
        Record {
            id,
            player: PlayerId::random(),
            created_at_ms: 1,
            idempotency: None,
            judgement: None,
            source: None,
            drawing: Drawing::parse(sample_input()).unwrap(),
        }
        .encode()
    }

    fn record(drawing: Drawing) -> Record {
        Record {
            id: DrawingId::next(1_700_000_000_000, None),
            player: PlayerId::random(),
            created_at_ms: 1_700_000_000_123,
            idempotency: Some(Idempotency {
                key: IdempotencyKey::parse(b"k-1").unwrap(),
                body_digest: [7; 16],
            }),
            judgement: Some(Judgement {
                recognized: true,
                model_version: "v3".into(),
            }),
            source: None,
            drawing,
        }
    }

    #[test]
    fn an_import_source_survives_the_record_and_absent_fields_stay_absent() {
        let mut original = record(Drawing::parse(sample_input()).unwrap());
        original.source = Some(
            Source::new(
                "5266005389475840",
                Some("US"),
                Some("2017-01-25 03:11:35.55071 UTC"),
            )
            .unwrap(),
        );
        assert_eq!(Record::decode(&original.encode()).unwrap(), original);
        original.source = Some(Source::new("k", None, None).unwrap());
        assert_eq!(Record::decode(&original.encode()).unwrap(), original);
        assert!(Source::new("", None, None).is_err());
        assert!(Source::new("k", Some(""), None).is_err());
        assert!(Source::new(&"9".repeat(65), None, None).is_err());
    }

    #[test]
    fn a_version_1_record_still_decodes() {
        let original = record(Drawing::parse(sample_input()).unwrap());
        let mut bytes = original.encode();
        bytes[1] = RECORD_VERSION_1;
        assert_eq!(Record::decode(&bytes).unwrap(), original);
    }

    #[test]
    fn a_record_decodes_to_exactly_what_was_encoded() {
        let original = record(Drawing::parse(sample_input()).unwrap());
        let bytes = original.encode();
        assert_eq!(Record::decode(&bytes).unwrap(), original);
    }

    #[test]
    fn awkward_floats_survive_bit_for_bit() {
        let mut input = sample_input();
        input.strokes[0].points[0].x = 0.1 + 0.2; // needs more than six decimals
        input.strokes[0].points[1].x = 1.0 / 3.0;
        input.strokes[0].points[0].pressure = Some(f64::from(0.298_039_23_f32));
        let original = record(Drawing::parse(input).unwrap());
        let decoded = Record::decode(&original.encode()).unwrap();
        assert_eq!(decoded, original);
        let x = decoded.drawing.strokes()[0].points[0].x;
        assert_eq!(x.to_bits(), (0.1f64 + 0.2).to_bits());
    }

    #[test]
    fn integer_coordinates_cost_about_a_byte_each() {
        let mut input = sample_input();
        let p = input.strokes[0].points[0].clone();
        input.strokes[0].points = (0..500)
            .map(|i| {
                PointInputExt::at(
                    &p,
                    100.0 + f64::from(i % 7),
                    100.0 + f64::from(i % 5),
                    1_234_567_890.0 + f64::from(i) * 16.0,
                )
            })
            .collect();
        input.strokes[0]
            .points
            .iter_mut()
            .for_each(|p| p.pressure = Some(0.5));
        input.strokes[1].points.iter_mut().for_each(|p| {
            p.pressure = Some(0.5);
            p.timestamp = Some(1_234_580_000.0)
        });
        let bytes = record(Drawing::parse(input).unwrap()).encode();
        // 501 points x 4 columns would be about one byte per value before compression.
        assert!(bytes.len() < 501 * 4 + 120, "{} bytes", bytes.len());
    }

    trait PointInputExt {
        fn at(&self, x: f64, y: f64, t: f64) -> Self;
    }

    impl PointInputExt for crate::domain::drawing::PointInput {
        fn at(&self, x: f64, y: f64, t: f64) -> Self {
            Self {
                x,
                y,
                timestamp: Some(t),
                ..self.clone()
            }
        }
    }

    #[test]
    fn truncated_or_corrupt_bytes_are_errors_never_panics() {
        let bytes = record(Drawing::parse(sample_input()).unwrap()).encode();
        for cut in 0..bytes.len() {
            assert!(Record::decode(&bytes[..cut]).is_err());
        }
        for i in 0..bytes.len() {
            let mut flipped = bytes.clone();
            flipped[i] ^= 0xff;
            let _ = Record::decode(&flipped);
        }
        assert_eq!(Record::decode(&[]), Err(RecordError::Truncated));
        assert_eq!(Record::decode(&[0, 1]), Err(RecordError::BadMagic));
        assert_eq!(Record::decode(&[MAGIC, 9]), Err(RecordError::Version(9)));
    }
}
