//! Quick, Draw! ndjson: one JSON object per line. The raw format's `drawing` is a list of
//! strokes `[[x...], [y...], [t...]]` (t in ms since the drawing's first point); the
//! simplified format has only `[[x...], [y...]]`, scaled to 0..255.

use serde::Deserialize;
use thiserror::Error;

use crate::domain::drawing::{Canvas, Point, Stroke};
use crate::domain::{Drawing, DrawingError, ShapeName};

#[derive(Debug, Error)]
pub enum QuickDrawError {
    #[error("not a Quick, Draw! record: {0}")]
    Json(#[from] serde_json::Error),
    #[error("stroke {0}: x, y (and t) arrays must have equal lengths")]
    Ragged(usize),
    #[error("word {0:?} is not a valid shape name")]
    Word(String),
    #[error(transparent)]
    Drawing(#[from] DrawingError),
}

/// One line of a Quick, Draw! file.
#[derive(Debug, Clone, Deserialize)]
pub struct QuickDrawRecord {
    pub word: String,
    #[serde(default)]
    pub countrycode: Option<String>,
    #[serde(default)]
    pub timestamp: Option<String>,
    #[serde(default)]
    pub recognized: Option<bool>,
    #[serde(default)]
    pub key_id: Option<String>,
    pub drawing: Vec<Vec<Vec<f64>>>,
}

impl QuickDrawRecord {
    pub fn parse_line(line: &str) -> Result<Self, QuickDrawError> {
        Ok(serde_json::from_str(line)?)
    }

    /// The strokes as the trainer takes them: `[x, y]` points per stroke, timestamps left
    /// out (a stroke whose arrays differ in length keeps its shorter run of pairs).
    pub fn point_strokes(&self) -> Vec<Vec<[f32; 2]>> {
        self.drawing
            .iter()
            .map(|arrays| match arrays.as_slice() {
                [xs, ys, ..] => xs
                    .iter()
                    .zip(ys)
                    .map(|(&x, &y)| [x as f32, y as f32])
                    .collect(),
                _ => Vec::new(),
            })
            .collect()
    }

    /// The shape name for `word` (`smiley face` stays `smiley face`).
    pub fn shape(&self) -> Result<ShapeName, QuickDrawError> {
        ShapeName::parse(&self.word.to_lowercase())
            .map_err(|_| QuickDrawError::Word(self.word.clone()))
    }

    /// The drawing in Doodlebox's model; the canvas is the drawing's extent (from the origin).
    pub fn to_drawing(&self) -> Result<Drawing, QuickDrawError> {
        let mut strokes = Vec::with_capacity(self.drawing.len());
        let (mut max_x, mut max_y) = (1.0f64, 1.0f64);
        for (i, arrays) in self.drawing.iter().enumerate() {
            let (xs, ys) = match arrays.as_slice() {
                [xs, ys] | [xs, ys, _] if xs.len() == ys.len() => (xs, ys),
                _ => return Err(QuickDrawError::Ragged(i)),
            };
            let ts = match arrays.get(2) {
                Some(ts) if ts.len() == xs.len() => Some(ts),
                Some(_) => return Err(QuickDrawError::Ragged(i)),
                None => None,
            };
            let points = (0..xs.len())
                .map(|j| Point {
                    x: xs[j],
                    y: ys[j],
                    pressure: None,
                    timestamp: ts.map(|t| t[j]),
                })
                .collect();
            // Points may stray left of or above the canvas; the canvas must still cover them.
            max_x = xs.iter().fold(max_x, |m, &v| m.max(v).max(-v));
            max_y = ys.iter().fold(max_y, |m, &v| m.max(v).max(-v));
            strokes.push(Stroke {
                points,
                color: None,
                width: None,
            });
        }
        let side = |m: f64| {
            (m.ceil() as u32)
                .saturating_add(1)
                .min(crate::domain::drawing::MAX_CANVAS_SIDE)
        };
        let canvas = Canvas {
            width: side(max_x),
            height: side(max_y),
        };
        Ok(Drawing::from_parts(
            self.shape()?,
            canvas,
            strokes,
            None,
            None,
        )?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_raw_line_becomes_a_drawing_with_timestamps() {
        let line = r#"{"word":"circle","countrycode":"US","timestamp":"2017-01-25 03:11:35.55071 UTC","recognized":true,"key_id":"1","drawing":[[[10,20,30],[5,6,7],[0,16,40]]]}"#;
        let record = QuickDrawRecord::parse_line(line).unwrap();
        let drawing = record.to_drawing().unwrap();
        assert_eq!(drawing.point_count(), 3);
        assert!(drawing.has_timestamps());
        assert_eq!(
            drawing.canvas(),
            Canvas {
                width: 31,
                height: 8
            }
        );
    }

    #[test]
    fn ragged_strokes_are_refused() {
        let line = r#"{"word":"circle","drawing":[[[10,20],[5]]]}"#;
        let record = QuickDrawRecord::parse_line(line).unwrap();
        assert!(matches!(
            record.to_drawing(),
            Err(QuickDrawError::Ragged(0))
        ));
    }
}
