//! What the classify API accepts: a drawing in Doodlebox's own format (the `shape` may be left
//! out: the point is to find it) or Quick, Draw!'s strokes (`"drawing": [[x...], [y...],
//! [t...]?]`, raw or simplified). Either becomes the strokes the rasterizer takes, checked
//! against the same limits as a submission.

use serde_json::Value;
use thiserror::Error;

use super::drawing::{DrawingInput, MAX_POINTS, MAX_STROKES};
use super::{Drawing, DrawingError};

/// A placeholder shape name for validating a core-format drawing sent without one.
const ANY_SHAPE: &str = "unknown";
/// Coordinates beyond this are refused (as in submissions, canvases are at most 10,000 wide).
const MAX_COORDINATE: f64 = 1.0e6;

/// Strokes as the rasterizer takes them: points `[x, y]`.
pub type Strokes = Vec<Vec<[f32; 2]>>;

#[derive(Debug, Error)]
pub enum ClassifyInputError {
    #[error("send a JSON object: a drawing with `strokes`, or Quick, Draw! `drawing` strokes")]
    NotAnObject,
    #[error("{0}")]
    Body(serde_json::Error),
    #[error(transparent)]
    Drawing(#[from] DrawingError),
    #[error("Quick, Draw! `drawing`: {0}")]
    QuickDraw(String),
}

/// Parses one classify body into strokes.
pub fn parse_classify_input(value: Value) -> Result<Strokes, ClassifyInputError> {
    let Value::Object(mut object) = value else {
        return Err(ClassifyInputError::NotAnObject);
    };
    if let Some(drawing) = object.remove("drawing") {
        return quickdraw_strokes(&drawing).map_err(ClassifyInputError::QuickDraw);
    }
    object
        .entry("shape")
        .or_insert_with(|| Value::String(ANY_SHAPE.to_owned()));
    let input: DrawingInput =
        serde_json::from_value(Value::Object(object)).map_err(ClassifyInputError::Body)?;
    let drawing = Drawing::parse(input)?;
    Ok(drawing
        .strokes()
        .iter()
        .map(|s| s.points.iter().map(|p| [p.x as f32, p.y as f32]).collect())
        .collect())
}

fn quickdraw_strokes(drawing: &Value) -> Result<Strokes, String> {
    let strokes = drawing
        .as_array()
        .ok_or("must be a list of strokes [[x...], [y...]]")?;
    if strokes.is_empty() {
        return Err("has no strokes".into());
    }
    if strokes.len() > MAX_STROKES {
        return Err(format!("has more than {MAX_STROKES} strokes"));
    }
    let mut total = 0;
    let mut out = Vec::with_capacity(strokes.len());
    for (index, stroke) in strokes.iter().enumerate() {
        let arrays = stroke
            .as_array()
            .filter(|a| a.len() == 2 || a.len() == 3)
            .ok_or_else(|| {
                format!("stroke {index} must be [[x...], [y...]] or [[x...], [y...], [t...]]")
            })?;
        let column = |i: usize| -> Result<Vec<f64>, String> {
            arrays[i]
                .as_array()
                .ok_or_else(|| format!("stroke {index}: coordinates must be lists of numbers"))?
                .iter()
                .map(|v| {
                    v.as_f64()
                        .filter(|n| n.is_finite() && n.abs() <= MAX_COORDINATE)
                        .ok_or_else(|| format!("stroke {index}: {v} is not a usable number"))
                })
                .collect()
        };
        let (xs, ys) = (column(0)?, column(1)?);
        if xs.len() != ys.len() || (arrays.len() == 3 && column(2)?.len() != xs.len()) {
            return Err(format!(
                "stroke {index}: x, y (and t) lists must have equal lengths"
            ));
        }
        if xs.is_empty() {
            return Err(format!("stroke {index} has no points"));
        }
        total += xs.len();
        if total > MAX_POINTS {
            return Err(format!("has more than {MAX_POINTS} points"));
        }
        out.push(
            xs.iter()
                .zip(&ys)
                .map(|(x, y)| [*x as f32, *y as f32])
                .collect(),
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn quickdraw_raw_and_simplified_strokes_are_accepted() {
        let raw = json!({"word": "circle", "drawing": [[[0, 10, 20], [5, 6, 7], [0, 16, 32]]]});
        assert_eq!(
            parse_classify_input(raw).unwrap(),
            vec![vec![[0.0, 5.0], [10.0, 6.0], [20.0, 7.0]]]
        );
        let simplified = json!({"drawing": [[[0, 255], [0, 255]], [[3], [4]]]});
        assert_eq!(parse_classify_input(simplified).unwrap().len(), 2);
    }

    #[test]
    fn a_core_drawing_needs_no_shape() {
        let body = json!({"canvas": {"width": 100, "height": 100},
            "strokes": [{"points": [{"x": 1, "y": 2}, {"x": 3, "y": 4}]}]});
        assert_eq!(
            parse_classify_input(body).unwrap(),
            vec![vec![[1.0, 2.0], [3.0, 4.0]]]
        );
    }

    #[test]
    fn broken_quickdraw_strokes_are_refused_with_a_reason() {
        for (body, needle) in [
            (json!({"drawing": []}), "no strokes"),
            (json!({"drawing": [[[1, 2], [3]]]}), "equal lengths"),
            (json!({"drawing": [[[1, 2], [3, 4], [0]]]}), "equal lengths"),
            (json!({"drawing": [[[1, "a"], [3, 4]]]}), "usable number"),
            (json!({"drawing": [[[], []]]}), "no points"),
            (json!({"drawing": [[[1]]]}), "stroke 0 must be"),
            (json!({"drawing": "circle"}), "list of strokes"),
        ] {
            let error = parse_classify_input(body).unwrap_err().to_string();
            assert!(error.contains(needle), "{error}");
        }
        assert!(matches!(
            parse_classify_input(json!([1])),
            Err(ClassifyInputError::NotAnObject)
        ));
    }
}
