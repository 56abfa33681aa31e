//! Augmentation on the vectors, before rasterization: a small random rotation, anisotropic
//! scale, shear, point jitter and the occasional dropped stroke, so that the model sees many
//! plausible variants of each drawing. It is deterministic: the same strokes, seed and
//! parameters always give the same result, which keeps training runs reproducible and
//! resumable.
//!
//! Uniform scaling is pointless here (the rasterizer normalises to the bounding box), so the
//! scale is drawn separately for x and y and changes the aspect ratio.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

/// Default largest rotation either way, in degrees.
const DEFAULT_MAX_ROTATION_DEG: f32 = 12.0;

/// Default largest relative change of the width or height (0.12: 88 % to 112 %).
const DEFAULT_MAX_SCALE: f32 = 0.12;

/// Default largest shear factor either way.
const DEFAULT_MAX_SHEAR: f32 = 0.12;

/// Default point jitter, as a fraction of the drawing's larger side.
const DEFAULT_JITTER: f32 = 0.012;

/// Default probability that a drawing with several strokes loses one of them.
const DEFAULT_STROKE_DROP: f32 = 0.1;

/// How strong each augmentation is; recorded with the training configuration.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AugmentParams {
    /// Largest rotation either way, in degrees.
    pub max_rotation_deg: f32,
    /// Largest relative change of width or height, drawn independently for each.
    pub max_scale: f32,
    /// Largest shear factor (x += shear * y) either way.
    pub max_shear: f32,
    /// Standard deviation-like size of the point jitter, as a fraction of the drawing's
    /// larger side (uniform in ±jitter).
    pub jitter: f32,
    /// Probability that a drawing with two or more strokes loses one stroke (never its
    /// longest, so a drawing never loses all its strokes).
    pub stroke_drop: f32,
}

impl Default for AugmentParams {
    fn default() -> Self {
        AugmentParams {
            max_rotation_deg: DEFAULT_MAX_ROTATION_DEG,
            max_scale: DEFAULT_MAX_SCALE,
            max_shear: DEFAULT_MAX_SHEAR,
            jitter: DEFAULT_JITTER,
            stroke_drop: DEFAULT_STROKE_DROP,
        }
    }
}

impl AugmentParams {
    /// Stronger than the default: rotation ±20°, scale and shear ±0.25, jitter 0.02, stroke
    /// drop 0.2. With many epochs on a small collection it keeps showing new variants (see
    /// `jobs::train_config`); at ten epochs it costs accuracy.
    pub const STRONG: AugmentParams = AugmentParams {
        max_rotation_deg: 20.0,
        max_scale: 0.25,
        max_shear: 0.25,
        jitter: 0.02,
        stroke_drop: 0.2,
    };
}

/// Returns an augmented copy of `strokes`, fully determined by `seed` and `params`.
pub fn augment(strokes: &[Vec<[f32; 2]>], seed: u64, params: &AugmentParams) -> Vec<Vec<[f32; 2]>> {
    augment_with_rng(strokes, &mut StdRng::seed_from_u64(seed), params)
}

/// Same as [`augment`], drawing from a caller's random number generator.
pub fn augment_with_rng<R: Rng>(
    strokes: &[Vec<[f32; 2]>],
    rng: &mut R,
    params: &AugmentParams,
) -> Vec<Vec<[f32; 2]>> {
    // The transform and the drop decision are drawn first, in a fixed order, so that they
    // do not depend on the drawing; the jitter then takes one draw per coordinate.
    let angle = symmetric(rng, params.max_rotation_deg).to_radians();
    let sx = 1.0 + symmetric(rng, params.max_scale);
    let sy = 1.0 + symmetric(rng, params.max_scale);
    let shear = symmetric(rng, params.max_shear);
    let drop_roll: f32 = rng.random();
    let drop_pick: f32 = rng.random();

    let mut kept: Vec<&Vec<[f32; 2]>> = strokes.iter().collect();
    if kept.len() >= 2 && drop_roll < params.stroke_drop {
        let longest = longest_stroke(strokes);
        // Two or more strokes minus the longest leave at least one candidate.
        let candidates: Vec<usize> = (0..kept.len()).filter(|&i| i != longest).collect();
        let pick = (drop_pick * candidates.len() as f32) as usize;
        kept.remove(candidates[pick.min(candidates.len() - 1)]);
    }

    let (center, extent) = center_and_extent(strokes);
    let jitter = params.jitter * extent;
    let (sin, cos) = angle.sin_cos();
    kept.into_iter()
        .map(|stroke| {
            stroke
                .iter()
                .map(|&[x, y]| {
                    let (x, y) = (x - center[0], y - center[1]);
                    let (x, y) = (x + shear * y, y);
                    let (x, y) = (x * sx, y * sy);
                    let (x, y) = (x * cos - y * sin, x * sin + y * cos);
                    [
                        x + center[0] + symmetric(rng, jitter),
                        y + center[1] + symmetric(rng, jitter),
                    ]
                })
                .collect()
        })
        .collect()
}

/// A uniform number in `-max..=max` (0 when `max` is 0).
fn symmetric<R: Rng>(rng: &mut R, max: f32) -> f32 {
    let unit: f32 = rng.random();
    (unit * 2.0 - 1.0) * max
}

/// Index of the stroke with the most ink (polyline length); 0 for an empty slice.
fn longest_stroke(strokes: &[Vec<[f32; 2]>]) -> usize {
    let length = |s: &Vec<[f32; 2]>| -> f32 {
        s.windows(2)
            .map(|w| ((w[1][0] - w[0][0]).powi(2) + (w[1][1] - w[0][1]).powi(2)).sqrt())
            .sum()
    };
    let mut best = (0, f32::NEG_INFINITY);
    for (i, stroke) in strokes.iter().enumerate() {
        let l = length(stroke);
        if l > best.1 {
            best = (i, l);
        }
    }
    best.0
}

/// Center of the bounding box and its larger side (0 for no points).
fn center_and_extent(strokes: &[Vec<[f32; 2]>]) -> ([f32; 2], f32) {
    let mut min = [f32::INFINITY; 2];
    let mut max = [f32::NEG_INFINITY; 2];
    for &[x, y] in strokes.iter().flatten() {
        min = [min[0].min(x), min[1].min(y)];
        max = [max[0].max(x), max[1].max(y)];
    }
    if min[0] > max[0] {
        return ([0.0, 0.0], 0.0);
    }
    let center = [(min[0] + max[0]) / 2.0, (min[1] + max[1]) / 2.0];
    (center, (max[0] - min[0]).max(max[1] - min[1]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn square() -> Vec<Vec<[f32; 2]>> {
        vec![
            vec![[0.0, 0.0], [100.0, 0.0]],
            vec![[100.0, 0.0], [100.0, 100.0]],
            vec![[100.0, 100.0], [0.0, 100.0]],
            vec![[0.0, 100.0], [0.0, 0.0], [1.0, 1.0]],
        ]
    }

    #[test]
    fn the_same_seed_gives_the_same_drawing_and_another_seed_another() {
        let params = AugmentParams::default();
        let a = augment(&square(), 7, &params);
        let b = augment(&square(), 7, &params);
        let c = augment(&square(), 8, &params);
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn augmentation_stays_small_and_keeps_every_point_finite() {
        let params = AugmentParams::default();
        for seed in 0..200 {
            let out = augment(&square(), seed, &params);
            for &[x, y] in out.iter().flatten() {
                assert!(x.is_finite() && y.is_finite());
                assert!((-40.0..140.0).contains(&x) && (-40.0..140.0).contains(&y));
            }
        }
    }

    #[test]
    fn stroke_drop_never_removes_every_stroke_nor_the_longest() {
        let params = AugmentParams {
            stroke_drop: 1.0,
            ..AugmentParams::default()
        };
        let two = vec![vec![[0.0, 0.0], [100.0, 0.0]], vec![[0.0, 5.0], [1.0, 5.0]]];
        for seed in 0..50 {
            let out = augment(&two, seed, &params);
            assert_eq!(out.len(), 1);
            assert_eq!(out[0].len(), 2, "the long stroke survives");
            let single = augment(&two[..1], seed, &params);
            assert_eq!(single.len(), 1, "a lone stroke is never dropped");
            assert_eq!(augment(&square(), seed, &params).len(), 3);
        }
    }

    #[test]
    fn zero_parameters_leave_the_drawing_unchanged() {
        let params = AugmentParams {
            max_rotation_deg: 0.0,
            max_scale: 0.0,
            max_shear: 0.0,
            jitter: 0.0,
            stroke_drop: 0.0,
        };
        let out = augment(&square(), 3, &params);
        for (a, b) in out.iter().flatten().zip(square().iter().flatten()) {
            assert!((a[0] - b[0]).abs() < 1e-4 && (a[1] - b[1]).abs() < 1e-4);
        }
    }
}
