//! A drawing as a player submits it: strokes of points (x, y, optional pressure, optional
//! timestamp), the canvas it was drawn on, how long it took and with what device.
//!
//! `Drawing::parse` turns the untrusted JSON form (`DrawingInput`) into a `Drawing` that
//! holds every invariant the rest of the program relies on; `Drawing::to_json` gives the
//! same JSON values back.

use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::shape::{ShapeError, ShapeName};

/// Most strokes one drawing may have.
pub const MAX_STROKES: usize = 1_000;
/// Most points one drawing may have, over all its strokes. Also keeps the stored record
/// well under sled's blob threshold (see `store::blobs`).
pub const MAX_POINTS: usize = 8_000;
/// Largest canvas side, in pixels.
pub const MAX_CANVAS_SIDE: u32 = 10_000;
/// Longest drawing session accepted, in milliseconds (one hour).
pub const MAX_DURATION_MS: u64 = 3_600_000;
/// Widest stroke accepted, in pixels.
pub const MAX_STROKE_WIDTH: f64 = 200.0;
/// Largest timestamp accepted: 2^53, the largest integer a JSON number carries exactly.
pub const MAX_TIMESTAMP: f64 = 9_007_199_254_740_992.0;

/// Why a drawing was refused. Each message says what to fix.
#[derive(Debug, Error, PartialEq)]
pub enum DrawingError {
    #[error(transparent)]
    Shape(#[from] ShapeError),
    #[error("canvas width and height must be between 1 and {MAX_CANVAS_SIDE}")]
    Canvas,
    #[error("a drawing needs at least one stroke")]
    NoStrokes,
    #[error("stroke {0} has no points")]
    EmptyStroke(usize),
    #[error("too many strokes: {0} (at most {MAX_STROKES})")]
    TooManyStrokes(usize),
    #[error("too many points: {0} (at most {MAX_POINTS})")]
    TooManyPoints(usize),
    #[error("stroke {stroke} point {point}: x and y must lie within the canvas extended by its own size on each side")]
    Coordinate { stroke: usize, point: usize },
    #[error("stroke {stroke} point {point}: pressure must be between 0 and 1")]
    Pressure { stroke: usize, point: usize },
    #[error("pressure must be given for every point or for none")]
    MixedPressure,
    #[error("timestamp must be given for every point or for none")]
    MixedTimestamps,
    #[error("stroke {stroke} point {point}: timestamp must be a number between 0 and 2^53")]
    Timestamp { stroke: usize, point: usize },
    #[error("stroke {stroke} point {point}: timestamps must never go backwards")]
    TimestampBackwards { stroke: usize, point: usize },
    #[error("stroke {0}: color must be a CSS hex color like #1a2b3c or #abc")]
    Color(usize),
    #[error("stroke {0}: width must be greater than 0 and at most {MAX_STROKE_WIDTH}")]
    Width(usize),
    #[error("duration_ms must be at most {MAX_DURATION_MS}")]
    Duration,
}

/// The JSON form, exactly as the API accepts and returns it. Unknown fields are refused so
/// that nothing a client sends is silently dropped.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DrawingInput {
    pub shape: String,
    pub canvas: Canvas,
    pub strokes: Vec<StrokeInput>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<Device>,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct StrokeInput {
    pub points: Vec<PointInput>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub color: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub width: Option<f64>,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PointInput {
    pub x: f64,
    pub y: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pressure: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<f64>,
}

/// The drawing surface, in CSS pixels.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Canvas {
    pub width: u32,
    pub height: u32,
}

/// What the player drew with, as Pointer Events name it.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Device {
    Mouse,
    Pen,
    Touch,
    Unknown,
}

impl Device {
    pub fn code(self) -> u8 {
        match self {
            Device::Mouse => 1,
            Device::Pen => 2,
            Device::Touch => 3,
            Device::Unknown => 4,
        }
    }

    pub fn from_code(code: u8) -> Option<Self> {
        Some(match code {
            1 => Device::Mouse,
            2 => Device::Pen,
            3 => Device::Touch,
            4 => Device::Unknown,
            _ => return None,
        })
    }
}

/// One sampled point of a stroke.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    pub x: f64,
    pub y: f64,
    pub pressure: Option<f64>,
    pub timestamp: Option<f64>,
}

/// One pen-down to pen-up movement.
#[derive(Debug, Clone, PartialEq)]
pub struct Stroke {
    pub points: Vec<Point>,
    pub color: Option<String>,
    pub width: Option<f64>,
}

/// A validated drawing. Fields are private: the only way in is `parse` (or the record
/// decoder, which re-checks the same invariants).
#[derive(Debug, Clone, PartialEq)]
pub struct Drawing {
    shape: ShapeName,
    canvas: Canvas,
    strokes: Vec<Stroke>,
    duration_ms: Option<u64>,
    device: Option<Device>,
}

impl Drawing {
    /// Validates an untrusted drawing.
    pub fn parse(input: DrawingInput) -> Result<Self, DrawingError> {
        let shape = ShapeName::parse(&input.shape)?;
        let strokes = input
            .strokes
            .into_iter()
            .map(|s| Stroke {
                points: s
                    .points
                    .into_iter()
                    .map(|p| Point {
                        x: p.x,
                        y: p.y,
                        pressure: p.pressure,
                        timestamp: p.timestamp,
                    })
                    .collect(),
                color: s.color,
                width: s.width,
            })
            .collect();
        Self::from_parts(
            shape,
            input.canvas,
            strokes,
            input.duration_ms,
            input.device,
        )
    }

    /// Builds a drawing from already-typed parts, checking every invariant.
    pub fn from_parts(
        shape: ShapeName,
        canvas: Canvas,
        strokes: Vec<Stroke>,
        duration_ms: Option<u64>,
        device: Option<Device>,
    ) -> Result<Self, DrawingError> {
        check_canvas(canvas)?;
        check_strokes(canvas, &strokes)?;
        if duration_ms.is_some_and(|d| d > MAX_DURATION_MS) {
            return Err(DrawingError::Duration);
        }
        Ok(Self {
            shape,
            canvas,
            strokes,
            duration_ms,
            device,
        })
    }

    pub fn shape(&self) -> &ShapeName {
        &self.shape
    }

    pub fn canvas(&self) -> Canvas {
        self.canvas
    }

    pub fn strokes(&self) -> &[Stroke] {
        &self.strokes
    }

    pub fn duration_ms(&self) -> Option<u64> {
        self.duration_ms
    }

    pub fn device(&self) -> Option<Device> {
        self.device
    }

    pub fn point_count(&self) -> usize {
        self.strokes.iter().map(|s| s.points.len()).sum()
    }

    /// Whether points carry pressure (all of them do, or none).
    pub fn has_pressure(&self) -> bool {
        self.strokes[0].points[0].pressure.is_some()
    }

    /// Whether points carry timestamps (all of them do, or none).
    pub fn has_timestamps(&self) -> bool {
        self.strokes[0].points[0].timestamp.is_some()
    }

    /// The JSON form: the same values that were submitted.
    pub fn to_input(&self) -> DrawingInput {
        DrawingInput {
            shape: self.shape.to_string(),
            canvas: self.canvas,
            strokes: self
                .strokes
                .iter()
                .map(|s| StrokeInput {
                    points: s
                        .points
                        .iter()
                        .map(|p| PointInput {
                            x: p.x,
                            y: p.y,
                            pressure: p.pressure,
                            timestamp: p.timestamp,
                        })
                        .collect(),
                    color: s.color.clone(),
                    width: s.width,
                })
                .collect(),
            duration_ms: self.duration_ms,
            device: self.device,
        }
    }

    /// JSON with whole numbers written as integers (`100`, not `100.0`), as clients sent them.
    pub fn to_json(&self) -> serde_json::Value {
        let mut value = serde_json::to_value(self.to_input()).unwrap_or(serde_json::Value::Null);
        integralize(&mut value);
        value
    }
}

/// Rewrites floats that hold whole numbers as JSON integers, recursively.
fn integralize(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Number(n) => {
            if let Some(f) = n
                .as_f64()
                .filter(|f| f.fract() == 0.0 && f.abs() < MAX_TIMESTAMP)
            {
                if n.is_f64() {
                    *n = serde_json::Number::from(f as i64);
                }
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(integralize),
        serde_json::Value::Object(map) => map.values_mut().for_each(integralize),
        _ => {}
    }
}

fn check_canvas(canvas: Canvas) -> Result<(), DrawingError> {
    let side_ok = |s: u32| (1..=MAX_CANVAS_SIDE).contains(&s);
    if side_ok(canvas.width) && side_ok(canvas.height) {
        Ok(())
    } else {
        Err(DrawingError::Canvas)
    }
}

fn check_strokes(canvas: Canvas, strokes: &[Stroke]) -> Result<(), DrawingError> {
    if strokes.is_empty() {
        return Err(DrawingError::NoStrokes);
    }
    if strokes.len() > MAX_STROKES {
        return Err(DrawingError::TooManyStrokes(strokes.len()));
    }
    let total: usize = strokes.iter().map(|s| s.points.len()).sum();
    if total > MAX_POINTS {
        return Err(DrawingError::TooManyPoints(total));
    }
    if let Some(i) = strokes.iter().position(|s| s.points.is_empty()) {
        return Err(DrawingError::EmptyStroke(i));
    }
    let has_pressure = strokes[0].points[0].pressure.is_some();
    let has_time = strokes[0].points[0].timestamp.is_some();
    let (w, h) = (f64::from(canvas.width), f64::from(canvas.height));
    let mut last_time = 0.0_f64;
    for (si, stroke) in strokes.iter().enumerate() {
        check_style(si, stroke)?;
        for (pi, p) in stroke.points.iter().enumerate() {
            let (stroke, point) = (si, pi);
            if !(p.x.is_finite()
                && p.y.is_finite()
                && (-w..=2.0 * w).contains(&p.x)
                && (-h..=2.0 * h).contains(&p.y))
            {
                return Err(DrawingError::Coordinate { stroke, point });
            }
            match p.pressure {
                Some(pr) if !(0.0..=1.0).contains(&pr) => {
                    return Err(DrawingError::Pressure { stroke, point })
                }
                Some(_) if !has_pressure => return Err(DrawingError::MixedPressure),
                None if has_pressure => return Err(DrawingError::MixedPressure),
                _ => {}
            }
            match p.timestamp {
                Some(t) if !(0.0..=MAX_TIMESTAMP).contains(&t) => {
                    return Err(DrawingError::Timestamp { stroke, point })
                }
                Some(t) if t < last_time => {
                    return Err(DrawingError::TimestampBackwards { stroke, point })
                }
                Some(t) if has_time => last_time = t,
                Some(_) => return Err(DrawingError::MixedTimestamps),
                None if has_time => return Err(DrawingError::MixedTimestamps),
                None => {}
            }
        }
    }
    Ok(())
}

fn check_style(index: usize, stroke: &Stroke) -> Result<(), DrawingError> {
    if let Some(color) = &stroke.color {
        let hex = color.strip_prefix('#').unwrap_or("");
        let ok = color.starts_with('#')
            && matches!(hex.len(), 3 | 6)
            && hex.bytes().all(|b| b.is_ascii_hexdigit());
        if !ok {
            return Err(DrawingError::Color(index));
        }
    }
    if let Some(width) = stroke.width {
        if !(width > 0.0 && width <= MAX_STROKE_WIDTH) {
            return Err(DrawingError::Width(index));
        }
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn sample_input() -> DrawingInput {
        serde_json::from_value(serde_json::json!({
            "shape": "circle",
            "canvas": {"width": 400, "height": 400},
            "strokes": [
                {"points": [
                    {"x": 100, "y": 100, "pressure": 0.5, "timestamp": 1234567890},
                    {"x": 110.25, "y": 104.5, "pressure": 0.55, "timestamp": 1234567906}
                ], "color": "#000000", "width": 3},
                {"points": [{"x": 50, "y": 60, "pressure": 0.125, "timestamp": 1234568000}]}
            ],
            "duration_ms": 2500,
            "device": "mouse"
        }))
        .unwrap()
    }

    fn with(mutate: impl FnOnce(&mut DrawingInput)) -> Result<Drawing, DrawingError> {
        let mut input = sample_input();
        mutate(&mut input);
        Drawing::parse(input)
    }

    #[test]
    fn a_valid_drawing_parses_and_gives_the_same_json_back() {
        let input = sample_input();
        let json = serde_json::to_value(&input).unwrap();
        let drawing = Drawing::parse(input).unwrap();
        assert_eq!(drawing.point_count(), 3);
        let mut expected = json;
        integralize(&mut expected);
        assert_eq!(drawing.to_json(), expected);
        assert_eq!(
            drawing.to_json()["strokes"][0]["points"][0]["x"].to_string(),
            "100"
        );
    }

    #[test]
    fn each_class_of_bad_drawing_is_refused_with_its_own_error() {
        assert_eq!(with(|d| d.strokes.clear()), Err(DrawingError::NoStrokes));
        assert_eq!(
            with(|d| d.strokes[1].points.clear()),
            Err(DrawingError::EmptyStroke(1))
        );
        assert_eq!(with(|d| d.canvas.width = 0), Err(DrawingError::Canvas));
        assert_eq!(
            with(|d| d.strokes[0].points[1].x = 1e9),
            Err(DrawingError::Coordinate {
                stroke: 0,
                point: 1
            })
        );
        assert_eq!(
            with(|d| d.strokes[0].points[1].y = f64::NAN),
            Err(DrawingError::Coordinate {
                stroke: 0,
                point: 1
            })
        );
        assert_eq!(
            with(|d| d.strokes[0].points[0].pressure = Some(1.5)),
            Err(DrawingError::Pressure {
                stroke: 0,
                point: 0
            })
        );
        assert_eq!(
            with(|d| d.strokes[1].points[0].pressure = None),
            Err(DrawingError::MixedPressure)
        );
        assert_eq!(
            with(|d| d.strokes[1].points[0].timestamp = None),
            Err(DrawingError::MixedTimestamps)
        );
        assert_eq!(
            with(|d| d.strokes[1].points[0].timestamp = Some(5.0)),
            Err(DrawingError::TimestampBackwards {
                stroke: 1,
                point: 0
            })
        );
        assert_eq!(
            with(|d| d.strokes[0].points[0].timestamp = Some(-1.0)),
            Err(DrawingError::Timestamp {
                stroke: 0,
                point: 0
            })
        );
        assert_eq!(
            with(|d| d.strokes[0].color = Some("red".into())),
            Err(DrawingError::Color(0))
        );
        assert_eq!(
            with(|d| d.strokes[0].width = Some(0.0)),
            Err(DrawingError::Width(0))
        );
        assert_eq!(
            with(|d| d.duration_ms = Some(MAX_DURATION_MS + 1)),
            Err(DrawingError::Duration)
        );
        assert!(matches!(
            with(|d| d.shape = "No Such".into()),
            Err(DrawingError::Shape(_))
        ));
        let many = with(|d| {
            let p = d.strokes[0].points[0].clone();
            d.strokes[0].points = vec![p; MAX_POINTS + 1];
        });
        // The second stroke keeps its one point.
        assert_eq!(many, Err(DrawingError::TooManyPoints(MAX_POINTS + 2)));
        let strokes = with(|d| d.strokes = vec![d.strokes[1].clone(); MAX_STROKES + 1]);
        assert_eq!(strokes, Err(DrawingError::TooManyStrokes(MAX_STROKES + 1)));
    }

    #[test]
    fn unknown_fields_are_refused_rather_than_dropped() {
        let err = serde_json::from_value::<DrawingInput>(serde_json::json!({
            "shape": "circle", "canvas": {"width": 1, "height": 1}, "strokes": [], "colour": 1
        }));
        assert!(err.is_err());
    }
}
