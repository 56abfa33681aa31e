//! A procedural generator of hand-drawn-looking doodles for the five default shapes (line,
//! circle, square, triangle, heart). It feeds the starter model that a fresh install trains
//! before anyone has drawn anything, the tests and load generation.
//!
//! Each doodle starts as an ideal shape in a unit frame (about -1..1), is cut into the strokes
//! a person would use (one stroke, or two to four), sampled at a random speed, given a slow
//! wobble and a little tremor, sometimes left open or overshot at the end, then rotated,
//! stretched and placed on a 256-pixel canvas (y down). It is deterministic from the seed.
//!
//! It also draws *scribbles*: things that are not any shape (tangles, hatching, clutter of
//! short strokes, zigzags). Training shows them to the starter model so that it learns to
//! spread its belief instead of naming a shape (see `train`), and the tests measure how often
//! the model says "unsure" on scribbles from seeds training never used
//! ([`HELD_OUT_SCRIBBLE_SEEDS`] and up).

use std::f32::consts::{PI, TAU};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::dataset::{Dataset, Sample};

/// Side of the canvas the doodles are placed on, in pixels (as in the Quick, Draw! game).
const CANVAS: f32 = 256.0;

/// Smallest and largest doodle size on the canvas, in pixels.
const DOODLE_SIZE: (f32, f32) = (50.0, 220.0);

/// Largest slow-wobble amplitude, in unit-frame units (the shape spans about 2).
const MAX_WOBBLE: f32 = 0.06;

/// Largest per-point tremor, in unit-frame units.
const MAX_TREMOR: f32 = 0.012;

/// How many drawings of each shape one synthetic player makes in [`starter_dataset`].
const DRAWINGS_PER_PLAYER_AND_SHAPE: usize = 5;

/// The five default shapes, in the order of [`Shape::ALL`] (which is also their class index).
pub const DEFAULT_SHAPES: [&str; 5] = ["line", "circle", "square", "triangle", "heart"];

/// Scribbles per starter training batch, as a share of its doodles (see
/// `TrainConfig::scribble_share`): what teaches the starter model to be unsure on them.
pub const STARTER_SCRIBBLE_SHARE: f32 = 0.25;

/// Scribble seeds from here up are never used by training or calibration: evaluations draw
/// their scribbles from this range, so they measure unseen scribbles.
pub const HELD_OUT_SCRIBBLE_SEEDS: u64 = 1 << 40;

/// One of the default shapes the generator can draw.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Shape {
    Line,
    Circle,
    Square,
    Triangle,
    Heart,
}

impl Shape {
    /// Every shape, in class-index order (matching [`DEFAULT_SHAPES`]).
    pub const ALL: [Shape; 5] = [
        Shape::Line,
        Shape::Circle,
        Shape::Square,
        Shape::Triangle,
        Shape::Heart,
    ];

    /// The shape's name, as used for classes and in the database.
    pub fn name(self) -> &'static str {
        DEFAULT_SHAPES[self as usize]
    }

    /// The shape with that name, if it is one of the defaults.
    pub fn from_name(name: &str) -> Option<Shape> {
        Shape::ALL.into_iter().find(|s| s.name() == name)
    }
}

/// A doodle of `shape`, fully determined by `seed`.
pub fn doodle(shape: Shape, seed: u64) -> Vec<Vec<[f32; 2]>> {
    doodle_with_rng(shape, &mut StdRng::seed_from_u64(seed))
}

/// A doodle of `shape`, drawing from a caller's random number generator.
pub fn doodle_with_rng<R: Rng>(shape: Shape, rng: &mut R) -> Vec<Vec<[f32; 2]>> {
    let ideal = match shape {
        Shape::Line => line(rng),
        Shape::Circle => circle(rng),
        Shape::Square => square(rng),
        Shape::Triangle => triangle(rng),
        Shape::Heart => heart(rng),
    };
    let wobbly: Vec<Vec<[f32; 2]>> = ideal.iter().map(|s| humanize(s, rng)).collect();
    place_on_canvas(shape, wobbly, rng)
}

/// A labelled dataset of `per_class` doodles of each default shape, drawn by synthetic
/// players who each make five doodles of every shape (the group id is the player), so
/// group-aware splitting is exercised too.
pub fn starter_dataset(per_class: usize, seed: u64) -> Dataset {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut samples = Vec::with_capacity(per_class * Shape::ALL.len());
    for i in 0..per_class {
        let player = (i / DRAWINGS_PER_PLAYER_AND_SHAPE) as u64;
        for shape in Shape::ALL {
            samples.push(Sample {
                strokes: doodle_with_rng(shape, &mut rng),
                label: shape as usize,
                group: player,
            });
        }
    }
    Dataset {
        classes: DEFAULT_SHAPES.iter().map(|s| s.to_string()).collect(),
        samples,
    }
}

/// A scribble (not any shape), fully determined by `seed`; see the module docs for which
/// seeds training uses.
pub fn scribble(seed: u64) -> Vec<Vec<[f32; 2]>> {
    let mut rng = StdRng::seed_from_u64(seed);
    let strokes = match rng.random_range(0..4) {
        0 => tangle(&mut rng),
        1 => hatching(&mut rng),
        2 => clutter(&mut rng),
        _ => zigzag(&mut rng),
    };
    let wobbly: Vec<Vec<[f32; 2]>> = strokes.iter().map(|s| humanize(s, &mut rng)).collect();
    // Scribbles get any slant and aspect, like the most varied shapes.
    place_on_canvas(Shape::Circle, wobbly, &mut rng)
}

/// One stroke wandering in random directions with sharp and soft turns.
fn tangle<R: Rng>(rng: &mut R) -> Vec<Vec<[f32; 2]>> {
    let turns = rng.random_range(6..20);
    let mut corners = vec![[uniform(rng, -1.0, 1.0), uniform(rng, -1.0, 1.0)]];
    for _ in 0..turns {
        corners.push([uniform(rng, -1.0, 1.0), uniform(rng, -1.0, 1.0)]);
    }
    vec![polyline(rng, &corners)]
}

/// Back-and-forth strokes filling an area, in one stroke or a few.
fn hatching<R: Rng>(rng: &mut R) -> Vec<Vec<[f32; 2]>> {
    let rows = rng.random_range(4..12);
    let mut corners = Vec::with_capacity(rows * 2);
    for r in 0..rows {
        let y = -1.0 + 2.0 * r as f32 / (rows - 1) as f32 + uniform(rng, -0.1, 0.1);
        let (a, b) = (uniform(rng, -1.0, -0.4), uniform(rng, 0.4, 1.0));
        if r % 2 == 0 {
            corners.extend([[a, y], [b, y + uniform(rng, -0.2, 0.2)]]);
        } else {
            corners.extend([[b, y], [a, y + uniform(rng, -0.2, 0.2)]]);
        }
    }
    let points = polyline(rng, &corners);
    if chance(rng, 0.5) {
        vec![points]
    } else {
        let cut = points.len() / 2;
        vec![points[..cut].to_vec(), points[cut..].to_vec()]
    }
}

/// Several short strokes scattered about: dots, dashes, small hooks.
fn clutter<R: Rng>(rng: &mut R) -> Vec<Vec<[f32; 2]>> {
    (0..rng.random_range(4..12))
        .map(|_| {
            let start = [uniform(rng, -1.0, 1.0), uniform(rng, -1.0, 1.0)];
            let bends = rng.random_range(1..4);
            let mut corners = vec![start];
            for _ in 0..bends {
                let [x, y] = corners[corners.len() - 1];
                corners.push([x + uniform(rng, -0.5, 0.5), y + uniform(rng, -0.5, 0.5)]);
            }
            polyline(rng, &corners)
        })
        .collect()
}

/// A zigzag or sawtooth with irregular teeth.
fn zigzag<R: Rng>(rng: &mut R) -> Vec<Vec<[f32; 2]>> {
    let teeth = rng.random_range(4..14);
    let corners: Vec<[f32; 2]> = (0..=teeth)
        .map(|i| {
            let x = -1.0 + 2.0 * i as f32 / teeth as f32;
            let y = if i % 2 == 0 { -1.0 } else { 1.0 } * uniform(rng, 0.3, 1.0);
            [x, y]
        })
        .collect();
    vec![polyline(rng, &corners)]
}

/// A uniform number in `lo..hi`.
fn uniform<R: Rng>(rng: &mut R, lo: f32, hi: f32) -> f32 {
    lo + (hi - lo) * rng.random::<f32>()
}

/// True with probability `p`.
fn chance<R: Rng>(rng: &mut R, p: f32) -> bool {
    rng.random::<f32>() < p
}

/// A point moved by up to `amount` in each direction.
fn nudge<R: Rng>(rng: &mut R, [x, y]: [f32; 2], amount: f32) -> [f32; 2] {
    [
        x + uniform(rng, -amount, amount),
        y + uniform(rng, -amount, amount),
    ]
}

/// Points along the segments through `corners`, about `spacing` apart, corners included.
fn polyline<R: Rng>(rng: &mut R, corners: &[[f32; 2]]) -> Vec<[f32; 2]> {
    let spacing = uniform(rng, 0.08, 0.35);
    let mut points = vec![corners[0]];
    for pair in corners.windows(2) {
        let ([x0, y0], [x1, y1]) = (pair[0], pair[1]);
        let length = ((x1 - x0).powi(2) + (y1 - y0).powi(2)).sqrt();
        let steps = ((length / spacing).ceil() as usize).max(1);
        for k in 1..=steps {
            let t = k as f32 / steps as f32;
            points.push([x0 + (x1 - x0) * t, y0 + (y1 - y0) * t]);
        }
    }
    points
}

/// A point slightly past (`t > 1`) or short of (`t < 1`) `b` on the way from `a`.
fn along(a: [f32; 2], b: [f32; 2], t: f32) -> [f32; 2] {
    [a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t]
}

/// A straight or gently bent line from left to right.
fn line<R: Rng>(rng: &mut R) -> Vec<Vec<[f32; 2]>> {
    let bend = uniform(rng, -0.08, 0.08);
    let n = rng.random_range(2..24);
    let points = (0..n)
        .map(|i| {
            let t = i as f32 / (n - 1) as f32;
            [t * 2.0 - 1.0, bend * (1.0 - (2.0 * t - 1.0).powi(2))]
        })
        .collect();
    vec![points]
}

/// An ellipse-ish loop, sometimes not closed, sometimes overshot, sometimes in two arcs.
fn circle<R: Rng>(rng: &mut R) -> Vec<Vec<[f32; 2]>> {
    let start = uniform(rng, 0.0, TAU);
    let sweep = TAU * uniform(rng, 0.82, 1.18);
    let direction = if chance(rng, 0.5) { 1.0 } else { -1.0 };
    let drift = uniform(rng, -0.12, 0.12);
    let n = rng.random_range(12..60);
    let arc = |from: f32, to: f32, n: usize| -> Vec<[f32; 2]> {
        (0..n)
            .map(|i| {
                let t = from + (to - from) * i as f32 / (n - 1) as f32;
                let r = 1.0 + drift * t;
                let a = start + direction * sweep * t;
                [r * a.cos(), r * a.sin()]
            })
            .collect()
    };
    if chance(rng, 0.15) {
        let cut = uniform(rng, 0.4, 0.6);
        vec![arc(0.0, cut + 0.05, n / 2 + 2), arc(cut, 1.0, n / 2 + 2)]
    } else {
        vec![arc(0.0, 1.0, n)]
    }
}

/// A square or slightly oblong rectangle in one, two or four strokes.
fn square<R: Rng>(rng: &mut R) -> Vec<Vec<[f32; 2]>> {
    let mut c: Vec<[f32; 2]> = [[-1.0, -1.0], [1.0, -1.0], [1.0, 1.0], [-1.0, 1.0]]
        .into_iter()
        .map(|p| nudge(rng, p, 0.1))
        .collect();
    // Start at a random corner, going either way round.
    c.rotate_left(rng.random_range(0..4));
    if chance(rng, 0.5) {
        c.reverse();
    }
    closed_polygon_strokes(rng, &c)
}

/// A triangle with its apex up, in one, two or three strokes.
fn triangle<R: Rng>(rng: &mut R) -> Vec<Vec<[f32; 2]>> {
    let apex = [uniform(rng, -0.5, 0.5), -1.0];
    let mut c = vec![
        nudge(rng, apex, 0.08),
        nudge(rng, [1.0, 0.9], 0.1),
        nudge(rng, [-1.0, 0.9], 0.1),
    ];
    c.rotate_left(rng.random_range(0..3));
    if chance(rng, 0.5) {
        c.reverse();
    }
    closed_polygon_strokes(rng, &c)
}

/// The strokes of a closed polygon through `c` (already in drawing order): one stroke that
/// returns near its start (short of it or past it), two strokes that meet at the opposite
/// corner, or one stroke per side with small overshoots.
fn closed_polygon_strokes<R: Rng>(rng: &mut R, c: &[[f32; 2]]) -> Vec<Vec<[f32; 2]>> {
    let n = c.len();
    let closing = |rng: &mut R| along(c[n - 1], c[0], uniform(rng, 0.85, 1.12));
    let style = rng.random::<f32>();
    if style < 0.6 {
        let mut corners = c.to_vec();
        corners.push(closing(rng));
        vec![polyline(rng, &corners)]
    } else if style < 0.85 {
        // Both strokes start at corner 0 and meet near the middle corner.
        let middle = n / 2;
        let first: Vec<[f32; 2]> = c[..=middle].to_vec();
        let mut second: Vec<[f32; 2]> = vec![c[0]];
        second.extend(c[middle..].iter().rev().copied());
        let end = second.len() - 1;
        second[end] = along(second[end - 1], second[end], uniform(rng, 0.9, 1.1));
        vec![polyline(rng, &first), polyline(rng, &second)]
    } else {
        (0..n)
            .map(|i| {
                let (a, b) = (c[i], c[(i + 1) % n]);
                let from = along(b, a, uniform(rng, 0.95, 1.08));
                let to = along(a, b, uniform(rng, 0.92, 1.08));
                polyline(rng, &[from, to])
            })
            .collect()
    }
}

/// A heart from the classic parametric curve, in one stroke from the top notch or as two
/// halves from the notch down to the tip.
fn heart<R: Rng>(rng: &mut R) -> Vec<Vec<[f32; 2]>> {
    let depth = uniform(rng, 0.7, 1.3);
    // x = 16 sin^3 t, y = -(13 cos t - 5 cos 2t - 2 cos 3t - cos 4t), scaled to about ±1;
    // t = 0 is the top notch, t = PI the bottom tip.
    let point = |t: f32| -> [f32; 2] {
        let x = 16.0 * t.sin().powi(3) / 16.0;
        let y = -(13.0 * t.cos()
            - depth * 5.0 * (2.0 * t).cos()
            - 2.0 * (3.0 * t).cos()
            - (4.0 * t).cos())
            / 14.0;
        [x, y]
    };
    let n = rng.random_range(16..60);
    let curve = |from: f32, to: f32, n: usize| -> Vec<[f32; 2]> {
        (0..n)
            .map(|i| point(from + (to - from) * i as f32 / (n - 1) as f32))
            .collect()
    };
    if chance(rng, 0.4) {
        let end_left = -PI * uniform(rng, 0.95, 1.05);
        let end_right = PI * uniform(rng, 0.95, 1.05);
        vec![
            curve(0.0, end_left, n / 2 + 2),
            curve(0.0, end_right, n / 2 + 2),
        ]
    } else {
        let sweep = TAU * uniform(rng, 0.88, 1.06);
        let start = uniform(rng, -0.1, 0.1);
        let direction = if chance(rng, 0.5) { 1.0 } else { -1.0 };
        vec![curve(start, start + direction * sweep, n)]
    }
}

/// Adds a slow wobble (two low-frequency sine waves along the stroke) and a little tremor.
fn humanize<R: Rng>(stroke: &[[f32; 2]], rng: &mut R) -> Vec<[f32; 2]> {
    let amplitude = uniform(rng, 0.0, MAX_WOBBLE);
    let tremor = uniform(rng, 0.0, MAX_TREMOR);
    let waves: Vec<(f32, f32, f32)> = (0..4)
        .map(|_| {
            (
                uniform(rng, 0.5, 2.5),
                uniform(rng, 0.0, TAU),
                uniform(rng, 0.5, 1.0),
            )
        })
        .collect();
    let last = (stroke.len().max(2) - 1) as f32;
    stroke
        .iter()
        .enumerate()
        .map(|(i, &[x, y])| {
            let t = i as f32 / last;
            let wave = |(f, phase, w): (f32, f32, f32)| w * (TAU * f * t + phase).sin();
            let dx = amplitude * (wave(waves[0]) + wave(waves[1])) / 2.0;
            let dy = amplitude * (wave(waves[2]) + wave(waves[3])) / 2.0;
            nudge(rng, [x + dx, y + dy], tremor)
        })
        .collect()
}

/// Rotates, stretches, sizes and positions a unit-frame doodle on the canvas.
fn place_on_canvas<R: Rng>(
    shape: Shape,
    strokes: Vec<Vec<[f32; 2]>>,
    rng: &mut R,
) -> Vec<Vec<[f32; 2]>> {
    let angle = match shape {
        // Mostly horizontal, sometimes vertical, sometimes any slant.
        Shape::Line => match rng.random::<f32>() {
            r if r < 0.6 => uniform(rng, -0.25, 0.25),
            r if r < 0.8 => PI / 2.0 + uniform(rng, -0.25, 0.25),
            _ => uniform(rng, 0.0, PI),
        },
        Shape::Circle => uniform(rng, 0.0, TAU),
        _ => uniform(rng, -0.2, 0.2),
    };
    let aspect = match shape {
        Shape::Line => 1.0,
        Shape::Circle => uniform(rng, 0.7, 1.3),
        _ => uniform(rng, 0.75, 1.3),
    };
    let size = uniform(rng, DOODLE_SIZE.0, DOODLE_SIZE.1);
    let (sin, cos) = angle.sin_cos();
    let half = size / 2.0;
    let cx = uniform(rng, half, CANVAS - half);
    let cy = uniform(rng, half, CANVAS - half);
    strokes
        .into_iter()
        .map(|stroke| {
            stroke
                .into_iter()
                .map(|[x, y]| {
                    let (x, y) = (x * aspect, y);
                    let (x, y) = (x * cos - y * sin, x * sin + y * cos);
                    [cx + x * half / 1.3, cy + y * half / 1.3]
                })
                .collect()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ml::raster;

    #[test]
    fn the_same_seed_gives_the_same_doodle() {
        for shape in Shape::ALL {
            assert_eq!(doodle(shape, 42), doodle(shape, 42));
            assert_ne!(doodle(shape, 42), doodle(shape, 43));
        }
    }

    #[test]
    fn every_doodle_has_finite_points_and_rasterizes() {
        for shape in Shape::ALL {
            for seed in 0..300 {
                let strokes = doodle(shape, seed);
                assert!(!strokes.is_empty());
                assert!(strokes.iter().all(|s| s.len() >= 2), "{shape:?} {seed}");
                assert!(strokes
                    .iter()
                    .flatten()
                    .all(|p| p[0].is_finite() && p[1].is_finite()));
                raster::rasterize(&strokes, 28).unwrap();
            }
        }
    }

    #[test]
    fn closed_shapes_are_sometimes_drawn_in_several_strokes() {
        for shape in [Shape::Circle, Shape::Square, Shape::Triangle, Shape::Heart] {
            let multi = (0..200).filter(|&s| doodle(shape, s).len() > 1).count();
            assert!((10..150).contains(&multi), "{shape:?}: {multi} of 200");
        }
    }

    #[test]
    fn names_round_trip_and_follow_the_class_order() {
        for (i, shape) in Shape::ALL.into_iter().enumerate() {
            assert_eq!(shape as usize, i);
            assert_eq!(Shape::from_name(shape.name()), Some(shape));
        }
        assert_eq!(Shape::from_name("star"), None);
    }

    #[test]
    fn the_starter_dataset_has_every_class_and_players_drawing_several_shapes() {
        let data = starter_dataset(12, 1);
        assert_eq!(data.samples.len(), 60);
        assert_eq!(data.classes, DEFAULT_SHAPES);
        for label in 0..5 {
            assert_eq!(data.samples.iter().filter(|s| s.label == label).count(), 12);
        }
        let player0 = data.samples.iter().filter(|s| s.group == 0).count();
        assert_eq!(player0, 25);
    }
}
