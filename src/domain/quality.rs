//! The quality score of a drawing: a number in 0..1 that says how useful it is likely to be
//! for training, from validity heuristics and, when a model is active, from how sure that
//! model is that the drawing shows the shape the player was prompted with. Pure: no I/O.
//!
//! # The components
//! Each heuristic is a component in 0..1 with a piecewise-linear curve ([`ramp`]):
//! - **points** (all strokes together): 0 for a single point, rising to 1 at
//!   [`POINTS_GOOD`] points; a dot or a tap carries no shape.
//! - **strokes**: 1 up to [`STROKES_PLENTY`] strokes, then falling to [`STROKES_FLOOR`] at
//!   [`STROKES_TOO_MANY`]; hundreds of strokes are a scribble more often than a drawing.
//! - **size**: the bounding box's larger side as a share of the canvas's matching side.
//!   0 below [`SIZE_TINY`], rising to 1 at [`SIZE_GOOD`], 1 up to the canvas's size, then
//!   falling to 0.5 at twice the canvas (points may lie off the canvas by one canvas size).
//! - **duration** (from `duration_ms`, else the span of the point timestamps; absent when
//!   neither is known): 0 below [`DURATION_TOO_FAST_MS`], rising to 1 at
//!   [`DURATION_GOOD_MS`], 1 up to [`DURATION_LONG_MS`], then falling to 0.5 at
//!   [`DURATION_VERY_LONG_MS`].
//!
//! **Validity** is the weighted geometric mean of the components that are present (weights
//! [`WEIGHT_POINTS`], ...), so one component at 0 makes the drawing invalid whatever the
//! others say. **Agreement** is the probability the active model gives the prompted shape;
//! the score is `validity * (1 - AGREEMENT_WEIGHT + AGREEMENT_WEIGHT * agreement)`: a model
//! can lower a valid drawing's score to `1 - AGREEMENT_WEIGHT` of its validity but never
//! raise an invalid one. Without a model (or for a shape the model does not know) the score
//! is the validity.

use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::drawing::Drawing;

/// Points (over all strokes) at which the points component reaches 1.
pub const POINTS_GOOD: f64 = 16.0;
/// Strokes up to which the strokes component is 1.
pub const STROKES_PLENTY: f64 = 24.0;
/// Strokes at which the strokes component reaches its floor.
pub const STROKES_TOO_MANY: f64 = 200.0;
/// The strokes component never falls below this (some real drawings have many strokes).
pub const STROKES_FLOOR: f64 = 0.2;
/// Bounding box share of the canvas below which the size component is 0.
pub const SIZE_TINY: f64 = 0.03;
/// Bounding box share of the canvas from which the size component is 1.
pub const SIZE_GOOD: f64 = 0.25;
/// Drawing time below which the duration component is 0 (nobody draws a shape this fast).
pub const DURATION_TOO_FAST_MS: f64 = 200.0;
/// Drawing time from which the duration component is 1.
pub const DURATION_GOOD_MS: f64 = 1_500.0;
/// Drawing time up to which the duration component stays 1 (two minutes).
pub const DURATION_LONG_MS: f64 = 120_000.0;
/// Drawing time at which the duration component has fallen to 0.5 (half an hour).
pub const DURATION_VERY_LONG_MS: f64 = 1_800_000.0;
/// Weight of the points component in the validity's geometric mean.
pub const WEIGHT_POINTS: f64 = 1.0;
/// Weight of the strokes component.
pub const WEIGHT_STROKES: f64 = 0.5;
/// Weight of the size component.
pub const WEIGHT_SIZE: f64 = 1.0;
/// Weight of the duration component.
pub const WEIGHT_DURATION: f64 = 0.5;
/// How much the model's agreement can take away from the validity (0: nothing, 1: all).
pub const AGREEMENT_WEIGHT: f64 = 0.6;
/// What an "unsure" model answer leaves of the score: low enough that a valid-looking
/// scribble (validity ~1, agreement ~0, so `1 - AGREEMENT_WEIGHT`) falls below the default
/// auto-flag threshold.
pub const UNSURE_FACTOR: f64 = 0.4;
/// The auto-flag threshold of a fresh install.
pub const DEFAULT_AUTO_FLAG_BELOW: f64 = 0.2;
/// Most histogram bins one request may ask for.
pub const MAX_HISTOGRAM_BINS: usize = 100;

/// `0` at or below `lo`, `1` at or above `hi`, linear in between.
pub fn ramp(x: f64, lo: f64, hi: f64) -> f64 {
    ((x - lo) / (hi - lo)).clamp(0.0, 1.0)
}

/// The measurements the heuristics look at, taken from a validated drawing.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Features {
    /// Points over all strokes (at least 1 for a valid drawing).
    pub points: usize,
    /// Strokes (at least 1).
    pub strokes: usize,
    /// The bounding box's larger side as a share of the canvas's matching side.
    pub extent: f64,
    /// How long the drawing took, if known.
    pub duration_ms: Option<f64>,
}

impl Features {
    /// Measures a drawing.
    pub fn of(drawing: &Drawing) -> Self {
        let points = drawing.strokes().iter().flat_map(|s| s.points.iter());
        let (mut min_x, mut max_x, mut min_y, mut max_y) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
        for p in points.clone() {
            min_x = min_x.min(p.x);
            max_x = max_x.max(p.x);
            min_y = min_y.min(p.y);
            max_y = max_y.max(p.y);
        }
        let canvas = drawing.canvas();
        // A valid drawing has at least one point and a canvas of at least 1x1.
        let extent = ((max_x - min_x) / f64::from(canvas.width))
            .max((max_y - min_y) / f64::from(canvas.height))
            .max(0.0);
        let from_timestamps = || {
            let stamps = points.clone().filter_map(|p| p.timestamp);
            let (lo, hi) = stamps.fold((f64::MAX, f64::MIN), |(lo, hi), t| (lo.min(t), hi.max(t)));
            (lo <= hi).then_some(hi - lo)
        };
        let duration_ms = drawing
            .duration_ms()
            .map(|d| d as f64)
            .or_else(from_timestamps);
        Self {
            points: drawing.point_count(),
            strokes: drawing.strokes().len(),
            extent,
            duration_ms,
        }
    }
}

/// What the active model made of a drawing: the probability it gives the prompted shape.
#[derive(Debug, Clone, PartialEq)]
pub struct Agreement {
    /// The model version that judged.
    pub model_version: String,
    /// The probability of the prompted shape, 0..1.
    pub probability: f64,
    /// The model declined to name any shape (a scribble, most likely): see [`unsure_factor`].
    pub unsure: bool,
}

/// A drawing's score and its parts, as stored (JSON) in `drawings.quality`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QualityScore {
    /// The score, 0..1.
    pub score: f64,
    /// The geometric mean of the heuristic components.
    pub validity: f64,
    /// The points component.
    pub points: f64,
    /// The strokes component.
    pub strokes: f64,
    /// The size component.
    pub size: f64,
    /// The duration component, when the duration is known.
    pub duration: Option<f64>,
    /// The probability the model gave the prompted shape, when a model judged it.
    pub agreement: Option<f64>,
    /// The model that judged, when one did.
    pub model_version: Option<String>,
    /// The model declined to name any shape, which cut the score (see [`unsure_factor`]).
    #[serde(default)]
    pub unsure: bool,
}

/// The points component (see the module docs).
pub fn points_component(points: usize) -> f64 {
    ramp(points as f64, 1.0, POINTS_GOOD)
}

/// The strokes component (see the module docs).
pub fn strokes_component(strokes: usize) -> f64 {
    1.0 - (1.0 - STROKES_FLOOR) * ramp(strokes as f64, STROKES_PLENTY, STROKES_TOO_MANY)
}

/// The size component (see the module docs).
pub fn size_component(extent: f64) -> f64 {
    ramp(extent, SIZE_TINY, SIZE_GOOD) * (1.0 - 0.5 * ramp(extent, 1.0, 2.0))
}

/// The duration component (see the module docs).
pub fn duration_component(duration_ms: f64) -> f64 {
    ramp(duration_ms, DURATION_TOO_FAST_MS, DURATION_GOOD_MS)
        * (1.0 - 0.5 * ramp(duration_ms, DURATION_LONG_MS, DURATION_VERY_LONG_MS))
}

/// Scores a drawing from its features and, if a model judged it, its agreement.
pub fn score(features: &Features, agreement: Option<&Agreement>) -> QualityScore {
    let points = points_component(features.points);
    let strokes = strokes_component(features.strokes);
    let size = size_component(features.extent);
    let duration = features.duration_ms.map(duration_component);
    let mut parts = vec![
        (points, WEIGHT_POINTS),
        (strokes, WEIGHT_STROKES),
        (size, WEIGHT_SIZE),
    ];
    if let Some(d) = duration {
        parts.push((d, WEIGHT_DURATION));
    }
    let validity = weighted_geometric_mean(&parts);
    let probability = agreement.map(|a| a.probability.clamp(0.0, 1.0));
    let score = match probability {
        Some(p) => validity * (1.0 - AGREEMENT_WEIGHT + AGREEMENT_WEIGHT * p),
        None => validity,
    } * unsure_factor(agreement);
    QualityScore {
        score: score.clamp(0.0, 1.0),
        validity,
        points,
        strokes,
        size,
        duration,
        agreement: probability,
        model_version: agreement.map(|a| a.model_version.clone()),
        unsure: agreement.is_some_and(|a| a.unsure),
    }
}

/// How much of the score an "unsure" model answer leaves: [`UNSURE_FACTOR`] when the model
/// was unsure, else all of it.
pub fn unsure_factor(agreement: Option<&Agreement>) -> f64 {
    match agreement {
        Some(a) if a.unsure => UNSURE_FACTOR,
        _ => 1.0,
    }
}

/// `prod(x_i ^ w_i) ^ (1 / sum(w_i))`; 0 as soon as one value is 0.
fn weighted_geometric_mean(parts: &[(f64, f64)]) -> f64 {
    let total: f64 = parts.iter().map(|(_, w)| w).sum();
    if parts.iter().any(|(x, _)| *x <= 0.0) || total <= 0.0 {
        return 0.0;
    }
    let log: f64 = parts.iter().map(|(x, w)| w * x.ln()).sum();
    (log / total).exp()
}

/// Why a quality setting or query was refused.
#[derive(Debug, Error, PartialEq)]
pub enum QualityError {
    #[error("auto_flag_below must be a number from 0 to 1")]
    Threshold,
    #[error("bins must be a whole number from 1 to {MAX_HISTOGRAM_BINS}")]
    Bins,
}

/// The settings an admin changes at run time (`settings` key `quality`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QualitySettings {
    /// Drawings scoring below this are flagged for review (0 flags nothing).
    pub auto_flag_below: f64,
}

impl Default for QualitySettings {
    fn default() -> Self {
        Self {
            auto_flag_below: DEFAULT_AUTO_FLAG_BELOW,
        }
    }
}

impl QualitySettings {
    /// Validates untrusted settings.
    pub fn parse(input: QualitySettings) -> Result<Self, QualityError> {
        let t = input.auto_flag_below;
        if !t.is_finite() || !(0.0..=1.0).contains(&t) {
            return Err(QualityError::Threshold);
        }
        Ok(input)
    }
}

/// Validates a histogram's bin count.
pub fn parse_bins(bins: Option<i64>) -> Result<usize, QualityError> {
    match bins {
        None => Ok(20),
        Some(n) if (1..=MAX_HISTOGRAM_BINS as i64).contains(&n) => Ok(n as usize),
        Some(_) => Err(QualityError::Bins),
    }
}

/// A score's hundredth: `floor(score * 100)` over 0..1, so 0..=100. The histogram bins
/// hundredths, which the embedded store keeps counted (`drawing_counts.quality_bucket`), so
/// that no histogram reads every drawing.
pub fn hundredth_of(score: f64) -> usize {
    (score.clamp(0.0, 1.0) * 100.0) as usize
}

/// The bin of a score's hundredth `h` among `bins`: `bins` equal bins over 0..1, 1.0 in the
/// last one. Where `bins` divides 100 (the portal's 20, say) this is `floor(score * bins)`;
/// otherwise a bin's edges fall on hundredths (see [`bin_start`]).
pub fn bin_of_hundredth(h: usize, bins: usize) -> usize {
    (h.min(100) * bins / 100).min(bins - 1)
}

/// The bin a score falls in (see [`bin_of_hundredth`]).
pub fn bin_of(score: f64, bins: usize) -> usize {
    bin_of_hundredth(hundredth_of(score), bins)
}

/// The lowest score of bin `i` among `bins` (1.0 for `i == bins`, the end of the last).
pub fn bin_start(i: usize, bins: usize) -> f64 {
    if i >= bins {
        return 1.0;
    }
    (i * 100).div_ceil(bins) as f64 / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::drawing::{DrawingInput, PointInput, StrokeInput};
    use crate::domain::Canvas;

    fn drawing(strokes: Vec<Vec<(f64, f64)>>, duration_ms: Option<u64>) -> Drawing {
        Drawing::parse(DrawingInput {
            shape: "circle".into(),
            canvas: Canvas {
                width: 400,
                height: 400,
            },
            strokes: strokes
                .into_iter()
                .map(|points| StrokeInput {
                    points: points
                        .into_iter()
                        .map(|(x, y)| PointInput {
                            x,
                            y,
                            pressure: None,
                            timestamp: None,
                        })
                        .collect(),
                    color: None,
                    width: None,
                })
                .collect(),
            duration_ms,
            device: None,
        })
        .unwrap()
    }

    fn circle() -> Drawing {
        let points = (0..40)
            .map(|i| {
                let a = f64::from(i) / 40.0 * std::f64::consts::TAU;
                (200.0 + 120.0 * a.cos(), 200.0 + 120.0 * a.sin())
            })
            .collect();
        drawing(vec![points], Some(3_000))
    }

    #[test]
    fn a_clear_circle_is_fully_valid() {
        let q = score(&Features::of(&circle()), None);
        assert_eq!(
            (q.points, q.strokes, q.size, q.duration),
            (1.0, 1.0, 1.0, Some(1.0))
        );
        assert_eq!(q.score, 1.0);
        assert_eq!(q.agreement, None);
    }

    #[test]
    fn a_single_point_scores_zero() {
        let q = score(
            &Features::of(&drawing(vec![vec![(10.0, 10.0)]], Some(3_000))),
            None,
        );
        assert_eq!(q.points, 0.0);
        assert_eq!(q.score, 0.0);
    }

    #[test]
    fn a_tiny_drawing_in_a_corner_scores_lower_than_one_that_fills_the_canvas() {
        let tiny: Vec<(f64, f64)> = (0..40)
            .map(|i| (f64::from(i % 5), f64::from(i / 8)))
            .collect();
        let tiny = score(&Features::of(&drawing(vec![tiny], Some(3_000))), None);
        assert!(tiny.size < 0.1, "{tiny:?}");
        assert!(tiny.score < 0.5, "{tiny:?}");
    }

    #[test]
    fn each_curve_has_its_documented_shape() {
        assert_eq!(points_component(1), 0.0);
        assert_eq!(points_component(16), 1.0);
        assert!(points_component(8) > 0.4 && points_component(8) < 0.5);
        assert_eq!(strokes_component(1), 1.0);
        assert_eq!(strokes_component(24), 1.0);
        assert!((strokes_component(1_000) - STROKES_FLOOR).abs() < 1e-12);
        assert_eq!(size_component(0.01), 0.0);
        assert_eq!(size_component(0.5), 1.0);
        assert_eq!(size_component(1.0), 1.0);
        assert_eq!(size_component(2.0), 0.5);
        assert_eq!(duration_component(100.0), 0.0);
        assert_eq!(duration_component(60_000.0), 1.0);
        assert_eq!(duration_component(3_600_000.0), 0.5);
    }

    #[test]
    fn the_duration_falls_back_to_the_timestamps_and_is_left_out_when_unknown() {
        let mut input = circle().to_input();
        input.duration_ms = None;
        assert_eq!(
            Features::of(&Drawing::parse(input.clone()).unwrap()).duration_ms,
            None
        );
        for (i, p) in input.strokes[0].points.iter_mut().enumerate() {
            p.timestamp = Some(1_000.0 + 50.0 * i as f64);
        }
        let features = Features::of(&Drawing::parse(input).unwrap());
        assert_eq!(features.duration_ms, Some(50.0 * 39.0));
    }

    #[test]
    fn model_disagreement_lowers_the_score_but_agreement_never_raises_an_invalid_drawing() {
        let features = Features::of(&circle());
        let sure = Agreement {
            model_version: "v1".into(),
            probability: 1.0,
            unsure: false,
        };
        let unsure = Agreement {
            probability: 0.0,
            ..sure.clone()
        };
        assert_eq!(score(&features, Some(&sure)).score, 1.0);
        let doubted = score(&features, Some(&unsure));
        assert!((doubted.score - (1.0 - AGREEMENT_WEIGHT)).abs() < 1e-12);
        assert_eq!(doubted.model_version.as_deref(), Some("v1"));
        let dot = Features::of(&drawing(vec![vec![(1.0, 1.0)]], None));
        assert_eq!(score(&dot, Some(&sure)).score, 0.0);
    }

    #[test]
    fn an_unsure_model_answer_puts_a_valid_looking_scribble_below_the_default_threshold() {
        let features = Features::of(&circle());
        let scribble = Agreement {
            model_version: "v1".into(),
            probability: 0.1,
            unsure: true,
        };
        let q = score(&features, Some(&scribble));
        assert!(q.score < DEFAULT_AUTO_FLAG_BELOW, "{}", q.score);
        let sure_but_wrong = Agreement {
            unsure: false,
            ..scribble
        };
        assert!(score(&features, Some(&sure_but_wrong)).score > DEFAULT_AUTO_FLAG_BELOW);
    }

    #[test]
    fn the_threshold_must_lie_between_0_and_1() {
        for ok in [0.0, 0.2, 1.0] {
            assert!(QualitySettings::parse(QualitySettings {
                auto_flag_below: ok
            })
            .is_ok());
        }
        for bad in [-0.1, 1.5, f64::NAN] {
            assert_eq!(
                QualitySettings::parse(QualitySettings {
                    auto_flag_below: bad
                }),
                Err(QualityError::Threshold)
            );
        }
    }

    #[test]
    fn bins_are_checked_and_scores_land_in_the_right_one() {
        assert_eq!(parse_bins(None), Ok(20));
        assert_eq!(parse_bins(Some(0)), Err(QualityError::Bins));
        assert_eq!(parse_bins(Some(101)), Err(QualityError::Bins));
        assert_eq!(bin_of(0.0, 20), 0);
        assert_eq!(bin_of(0.05, 20), 1);
        assert_eq!(bin_of(1.0, 20), 19);
        assert_eq!(bin_of(0.1499, 20), 2);
        assert_eq!(bin_of(-0.5, 20), 0);
        // Three bins: edges on hundredths, at 0.34 and 0.67.
        assert_eq!(
            (bin_of(0.335, 3), bin_of(0.34, 3), bin_of(0.67, 3)),
            (0, 1, 2)
        );
        assert_eq!(
            (0..=3).map(|i| bin_start(i, 3)).collect::<Vec<_>>(),
            [0.0, 0.34, 0.67, 1.0]
        );
        // Every hundredth lands in the bin whose edges hold it, for every bin count.
        let hundredths = |edge: f64| (edge * 100.0).round() as usize;
        for bins in 1..=MAX_HISTOGRAM_BINS {
            for h in 0..=100 {
                let bin = bin_of_hundredth(h, bins);
                let end = if bin + 1 == bins {
                    101
                } else {
                    hundredths(bin_start(bin + 1, bins))
                };
                assert!(
                    hundredths(bin_start(bin, bins)) <= h && h < end,
                    "{h} in {bin}/{bins}"
                );
            }
        }
    }
}
