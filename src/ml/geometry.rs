//! Geometric features of a drawing computed from its strokes: what a 28 px raster loses
//! (corners, how sharp the turns are, whether a stroke closes, how round or convex the shape
//! is, which way the ink runs), as a short fixed-length vector of scale-invariant numbers in
//! `0.0..=1.0`. A model that asks for them (`TrainConfig::geometry`, recorded in its
//! manifest) reads them beside its image: the network concatenates them to its convolutional
//! features before the hidden layer (see `net::DoodleNet`). Training computes them from the
//! same augmented strokes it rasterizes; the classifier from the strokes it is given.
//!
//! Every feature is computed in the drawing's own frame: its bounding box, scaled by the
//! box's diagonal, so moving or resizing a drawing changes nothing. Degenerate drawings (no
//! points, a single dot) give zeros where a feature is undefined, never NaN. What each
//! [`FeatureSet`] computes is fixed once models use it: a change is a new set.

use serde::{Deserialize, Serialize};

/// Numbers in [`FeatureSet::StrokesV1`].
pub const V1_FEATURES: usize = 28;

/// Spacing of the points the corners are found on: the ink (strokes that start where the
/// previous one ended chained into one path) resampled evenly, relative to the diagonal.
const RESAMPLE_STEP: f64 = 0.005;

/// Arc lengths either side of a point over which its turn is measured, relative to the
/// diagonal, for the corner counts: a corner is a point whose turn over the window reaches
/// [`CORNER_ANGLE`] and is the largest within the window, so a rounded or wobbly corner
/// counts once and a circle (about 16° over 0.1 either side) none. Polygon simplification
/// (Ramer-Douglas-Peucker) did worse on real drawings: it cuts a circle into an octagon at
/// 5 % of the diagonal and a hand-drawn corner into two small turns.
const CORNER_WINDOWS: [f64; 3] = [0.025, 0.05, 0.1];

/// The window (an index into [`CORNER_WINDOWS`]) whose corners feed the corner-angle counts.
const HISTOGRAM_WINDOW: usize = 1;

/// Smallest turn that counts as a corner, in radians (35°).
const CORNER_ANGLE: f64 = 35.0 * std::f64::consts::PI / 180.0;

/// Upper edges of the corner-angle bins, in degrees (the first starts at [`CORNER_ANGLE`],
/// the last ends at 180): about an octagon's 45°, a hexagon's 60°, a square's 90°, and
/// sharper (a triangle's 120°, a zigzag's teeth, a star's points).
const TURN_BINS_DEG: [f64; 3] = [52.5, 75.0, 105.0];

/// Corner-angle bin counts are divided by this (and capped at 1).
const MAX_BIN_CORNERS: f64 = 8.0;

/// The simplification tolerance (relative to the diagonal) that removes the pen's jitter
/// before the curvature totals.
const CURVATURE_TOLERANCE: f64 = 0.01;

/// A stroke whose ends are closer than this (relative to the diagonal) is a closed loop: its
/// closing vertex counts as a vertex too.
const CLOSED_GAP: f64 = 0.1;

/// Corner counts are divided by this (and capped at 1).
const MAX_CORNERS: f64 = 16.0;

/// Stroke counts are divided by this (and capped at 1).
const MAX_STROKES: f64 = 10.0;

/// Points resampled evenly along the ink for the radial features.
const RADIAL_SAMPLES: usize = 64;

/// Points closer than this (relative to the diagonal) are one point.
const SAME_POINT: f64 = 1e-6;

/// Every stroke is first simplified (Ramer-Douglas-Peucker) at this tolerance, relative to
/// the diagonal, so that the pen's tremble, and training's point jitter (up to 2 % of the
/// larger side per point with the strong augmentation), do not read as corners, turns and
/// ink length that the drawings classified later do not have. A circle stays a polygon of
/// turns under [`CORNER_ANGLE`] (a 16-gon); at 0.03 it would become an octagon.
const SMOOTHING_TOLERANCE: f64 = 0.02;

/// Which features a model reads beside its image; recorded (by name) in its training
/// configuration, so a model always gets the features it was trained with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum FeatureSet {
    /// [`V1_FEATURES`] numbers: stroke count, aspect (2), closedness (2), corners at three
    /// scales, corners by angle (4 bins), the mean bend, ink length against hull perimeter, hull
    /// circularity, convexity, ink circularity, total turning, turning consistency, net
    /// winding, a 4-bin direction histogram, hull fill, the radial spread and the ink's
    /// centroid (2). See [`features_v1`].
    #[serde(rename = "strokes-v1")]
    StrokesV1,
}

impl FeatureSet {
    /// How many numbers the set has.
    pub fn count(self) -> usize {
        match self {
            FeatureSet::StrokesV1 => V1_FEATURES,
        }
    }

    /// Writes the features of `strokes` into `out` (which must hold [`FeatureSet::count`]
    /// numbers).
    ///
    /// # Panics
    /// When `out` has another length: a programming error, not bad input.
    pub fn compute_into(self, strokes: &[Vec<[f32; 2]>], out: &mut [f32]) {
        match self {
            FeatureSet::StrokesV1 => out.copy_from_slice(&features_v1(strokes)),
        }
    }
}

/// A point in the drawing's normalised frame.
type P = [f64; 2];

/// The [`FeatureSet::StrokesV1`] features of `strokes`, each in `0.0..=1.0` (non-finite
/// points are ignored).
pub fn features_v1(strokes: &[Vec<[f32; 2]>]) -> [f32; V1_FEATURES] {
    let mut f = [0.0f64; V1_FEATURES];
    let Some(frame) = Frame::of(strokes) else {
        return [0.0; V1_FEATURES];
    };
    let strokes = &frame.strokes;
    f[0] = (strokes.len() as f64 / MAX_STROKES).min(1.0);
    let (w, h) = (frame.width, frame.height);
    f[1] = ratio(w.min(h), w.max(h));
    f[2] = ratio(w, w + h);
    if frame.diagonal <= 0.0 {
        // A dot: nothing else is defined.
        return to_f32(f);
    }
    // The longest stroke's own gap, and the gap between the drawing's first and last point.
    let longest = strokes
        .iter()
        .max_by(|a, b| length(a).total_cmp(&length(b)))
        .expect("a frame has strokes");
    f[3] = distance(longest[0], longest[longest.len() - 1]).min(1.0);
    let last = &strokes[strokes.len() - 1];
    f[4] = distance(strokes[0][0], last[last.len() - 1]).min(1.0);
    let paths = resampled_paths(strokes);
    for (k, &window) in CORNER_WINDOWS.iter().enumerate() {
        let corners = corners(&paths, window);
        f[5 + k] = (corners.len() as f64 / MAX_CORNERS).min(1.0);
        if k == HISTOGRAM_WINDOW {
            for angle in corners {
                let degrees = angle.to_degrees();
                let bin = TURN_BINS_DEG
                    .iter()
                    .filter(|&&edge| degrees >= edge)
                    .count();
                f[8 + bin] += 1.0 / MAX_BIN_CORNERS;
            }
        }
    }
    // How much the ink bends on average at the histogram's window (a circle's 45° is 1/4).
    let (bend, samples) = paths.iter().fold((0.0, 0), |(sum, n), path| {
        let turns = windowed_turns(path, window_samples(CORNER_WINDOWS[HISTOGRAM_WINDOW]));
        (
            sum + turns.iter().map(|t| t.abs()).sum::<f64>(),
            n + turns.len(),
        )
    });
    f[12] = ratio(bend, samples as f64) / std::f64::consts::PI;
    let points: Vec<P> = strokes.iter().flatten().copied().collect();
    let hull = convex_hull(&points);
    let (hull_area, hull_perimeter) = (polygon_area(&hull).abs(), perimeter(&hull));
    let ink: f64 = strokes.iter().map(|s| length(s)).sum();
    // 1/2 for a closed convex outline, 1/3 for a straight line, towards 1 for a scribble.
    f[13] = ratio(ink, ink + hull_perimeter);
    f[14] = circularity(hull_area, hull_perimeter);
    // The strokes chained in drawing order and closed: the outline the drawer went round.
    let chained_area = polygon_area(&points).abs();
    f[15] = ratio(chained_area, hull_area).min(1.0);
    f[16] = circularity(chained_area, ink);
    let fine_turns = turns(strokes, CURVATURE_TOLERANCE);
    let total: f64 = fine_turns.iter().map(|t| t.abs()).sum();
    let signed: f64 = fine_turns.iter().sum();
    let full_turn = 2.0 * std::f64::consts::PI;
    f[17] = total / (total + full_turn);
    f[18] = ratio(signed.abs(), total);
    f[19] = (signed.abs() / full_turn / 2.0).min(1.0);
    for stroke in strokes {
        for pair in stroke.windows(2) {
            let (dx, dy) = (pair[1][0] - pair[0][0], pair[1][1] - pair[0][1]);
            // Undirected angle in 0..180°, binned around 0, 45, 90 and 135°.
            let angle = dy.atan2(dx).to_degrees().rem_euclid(180.0);
            let bin = (((angle + 22.5) / 45.0) as usize) % 4;
            f[20 + bin] += dx.hypot(dy) / ink.max(f64::MIN_POSITIVE);
        }
    }
    f[24] = ratio(hull_area, w * h).min(1.0);
    let samples = resample(strokes, ink);
    let n = samples.len() as f64;
    let centroid = [
        samples.iter().map(|p| p[0]).sum::<f64>() / n,
        samples.iter().map(|p| p[1]).sum::<f64>() / n,
    ];
    let radii: Vec<f64> = samples.iter().map(|&p| distance(p, centroid)).collect();
    let mean = radii.iter().sum::<f64>() / n;
    let spread = (radii.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / n).sqrt();
    f[25] = ratio(spread, mean).min(1.0);
    f[26] = ratio(centroid[0], w).min(1.0);
    f[27] = ratio(centroid[1], h).min(1.0);
    to_f32(f)
}

/// A drawing's strokes moved to its bounding box's corner and divided by its diagonal, with
/// repeated and non-finite points dropped and each stroke simplified at
/// [`SMOOTHING_TOLERANCE`].
struct Frame {
    /// The non-empty strokes, in the normalised frame.
    strokes: Vec<Vec<P>>,
    /// Width and height of the bounding box, in diagonals (1 and 0 for a horizontal line).
    width: f64,
    height: f64,
    /// The bounding box's diagonal in the drawing's own units (0 for a dot).
    diagonal: f64,
}

impl Frame {
    /// The frame of `strokes`; `None` when there is no finite point.
    fn of(strokes: &[Vec<[f32; 2]>]) -> Option<Frame> {
        let finite = |p: &&[f32; 2]| p[0].is_finite() && p[1].is_finite();
        let (mut lo, mut hi) = ([f64::INFINITY; 2], [f64::NEG_INFINITY; 2]);
        for p in strokes.iter().flatten().filter(finite) {
            for d in 0..2 {
                lo[d] = lo[d].min(f64::from(p[d]));
                hi[d] = hi[d].max(f64::from(p[d]));
            }
        }
        if lo[0] > hi[0] {
            return None;
        }
        let diagonal = (hi[0] - lo[0]).hypot(hi[1] - lo[1]);
        let scale = if diagonal > 0.0 { diagonal } else { 1.0 };
        let mut normalised = Vec::new();
        for stroke in strokes {
            let mut kept: Vec<P> = Vec::with_capacity(stroke.len());
            for p in stroke.iter().filter(finite) {
                let q = [
                    (f64::from(p[0]) - lo[0]) / scale,
                    (f64::from(p[1]) - lo[1]) / scale,
                ];
                if kept.last().is_none_or(|&l| distance(l, q) > SAME_POINT) {
                    kept.push(q);
                }
            }
            if !kept.is_empty() {
                normalised.push(rdp(&kept, SMOOTHING_TOLERANCE));
            }
        }
        Some(Frame {
            strokes: normalised,
            width: (hi[0] - lo[0]) / scale,
            height: (hi[1] - lo[1]) / scale,
            diagonal,
        })
    }
}

/// A path of evenly spaced points along the ink, and whether it closes on itself.
struct Path {
    /// Points [`RESAMPLE_STEP`] apart along the ink (the last one may be closer).
    points: Vec<P>,
    /// Whether its ends meet (closer than [`CLOSED_GAP`]): its points then go round.
    closed: bool,
}

/// The strokes as paths: a stroke that starts within [`CLOSED_GAP`] of where the previous one
/// ended continues its path (a polygon drawn side by side is one outline), each path
/// resampled every [`RESAMPLE_STEP`].
fn resampled_paths(strokes: &[Vec<P>]) -> Vec<Path> {
    let mut chained: Vec<Vec<P>> = Vec::new();
    for stroke in strokes {
        match chained.last_mut() {
            Some(path) if distance(path[path.len() - 1], stroke[0]) < CLOSED_GAP => {
                path.extend_from_slice(stroke);
            }
            _ => chained.push(stroke.clone()),
        }
    }
    chained
        .into_iter()
        .map(|path| {
            let mut points = vec![path[0]];
            // Ink walked since the last point kept.
            let mut carried = 0.0;
            for pair in path.windows(2) {
                let d = distance(pair[0], pair[1]);
                let mut at = RESAMPLE_STEP - carried;
                while at <= d {
                    let t = at / d;
                    points.push([
                        pair[0][0] + t * (pair[1][0] - pair[0][0]),
                        pair[0][1] + t * (pair[1][1] - pair[0][1]),
                    ]);
                    at += RESAMPLE_STEP;
                }
                carried = d - (at - RESAMPLE_STEP);
            }
            let closed = length(&points) > 2.0 * CLOSED_GAP
                && distance(points[0], points[points.len() - 1]) < CLOSED_GAP;
            if closed && distance(points[0], points[points.len() - 1]) < RESAMPLE_STEP / 2.0 {
                // The end is the start again: one point, as the path goes round.
                points.pop();
            }
            Path { points, closed }
        })
        .collect()
}

/// Points either side over which a turn is measured for a `window` of arc length.
fn window_samples(window: f64) -> usize {
    ((window / RESAMPLE_STEP).round() as usize).max(1)
}

/// The turn (signed radians) at each point of `path` between the chord from `k` points
/// before it and the chord to `k` points after it; going round for a closed path, only where
/// both exist for an open one (index `i` of the answer is point `i`, or `i + k` when open).
fn windowed_turns(path: &Path, k: usize) -> Vec<f64> {
    let (p, n) = (&path.points, path.points.len());
    if path.closed && n > 2 * k {
        (0..n)
            .map(|i| turn(p[(i + n - k) % n], p[i], p[i], p[(i + k) % n]))
            .collect()
    } else if !path.closed && n > 2 * k {
        (k..n - k)
            .map(|i| turn(p[i - k], p[i], p[i], p[i + k]))
            .collect()
    } else {
        Vec::new()
    }
}

/// The corners of `paths` at `window` (see [`CORNER_WINDOWS`]): the absolute turn (radians)
/// of each.
fn corners(paths: &[Path], window: f64) -> Vec<f64> {
    let k = window_samples(window);
    let mut out = Vec::new();
    for path in paths {
        let turns: Vec<f64> = windowed_turns(path, k).iter().map(|t| t.abs()).collect();
        let n = turns.len();
        let neighbour = |i: usize, d: usize, before: bool| match (path.closed, before) {
            (true, true) => Some((i + n - d) % n),
            (true, false) => Some((i + d) % n),
            (false, true) => i.checked_sub(d),
            (false, false) => Some(i + d).filter(|&j| j < n),
        };
        for i in 0..n {
            // The largest turn within the window; of equal ones, the first.
            let largest = (1..=k.min(n.saturating_sub(1) / 2)).all(|d| {
                let before = neighbour(i, d, true).is_none_or(|j| turns[j] < turns[i]);
                let after = neighbour(i, d, false).is_none_or(|j| turns[j] <= turns[i]);
                before && after
            });
            if turns[i] >= CORNER_ANGLE && largest {
                out.push(turns[i]);
            }
        }
    }
    out
}

/// The signed turning angles (radians, -π..π) at the vertices of every stroke simplified at
/// `tolerance`, with the closing vertex of closed strokes.
fn turns(strokes: &[Vec<P>], tolerance: f64) -> Vec<f64> {
    let mut out = Vec::new();
    for stroke in strokes {
        let v = rdp(stroke, tolerance);
        let closed = v.len() >= 4 && distance(v[0], v[v.len() - 1]) < CLOSED_GAP;
        for i in 1..v.len().saturating_sub(1) {
            out.push(turn(v[i - 1], v[i], v[i], v[i + 1]));
        }
        if closed {
            let n = v.len();
            out.push(turn(v[n - 2], v[n - 1], v[0], v[1]));
        }
    }
    out
}

/// The signed angle from the direction `a → b` to the direction `c → d`.
fn turn(a: P, b: P, c: P, d: P) -> f64 {
    let (u, v) = ([b[0] - a[0], b[1] - a[1]], [d[0] - c[0], d[1] - c[1]]);
    let cross = u[0] * v[1] - u[1] * v[0];
    let dot = u[0] * v[0] + u[1] * v[1];
    cross.atan2(dot)
}

/// Ramer-Douglas-Peucker: the points of `line` that stay when every dropped point lies within
/// `tolerance` of the segment that replaces it; first and last points always stay. Iterative,
/// so a long stroke cannot overflow the stack. Also the Quick, Draw! export's simplification
/// (`crate::transfer::simplify`).
pub fn rdp(line: &[[f64; 2]], tolerance: f64) -> Vec<[f64; 2]> {
    if line.len() < 3 {
        return line.to_vec();
    }
    let mut keep = vec![false; line.len()];
    keep[0] = true;
    keep[line.len() - 1] = true;
    let mut pending = vec![(0, line.len() - 1)];
    while let Some((first, last)) = pending.pop() {
        let (mut farthest, mut index) = (0.0, first);
        for i in first + 1..last {
            let d = segment_distance(line[i], line[first], line[last]);
            if d > farthest {
                (farthest, index) = (d, i);
            }
        }
        if farthest > tolerance {
            keep[index] = true;
            pending.push((first, index));
            pending.push((index, last));
        }
    }
    line.iter()
        .zip(keep)
        .filter_map(|(&p, k)| k.then_some(p))
        .collect()
}

/// Distance from `p` to the segment `a`-`b` (to `a` when the segment is a point).
fn segment_distance(p: P, a: P, b: P) -> f64 {
    let (dx, dy) = (b[0] - a[0], b[1] - a[1]);
    let squared = dx * dx + dy * dy;
    if squared <= 0.0 {
        return distance(p, a);
    }
    let t = (((p[0] - a[0]) * dx + (p[1] - a[1]) * dy) / squared).clamp(0.0, 1.0);
    distance(p, [a[0] + t * dx, a[1] + t * dy])
}

/// The convex hull of `points` (Andrew's monotone chain), counter-clockwise in y-up terms.
fn convex_hull(points: &[P]) -> Vec<P> {
    let mut sorted = points.to_vec();
    sorted.sort_by(|a, b| a[0].total_cmp(&b[0]).then(a[1].total_cmp(&b[1])));
    sorted.dedup();
    if sorted.len() < 3 {
        return sorted;
    }
    let cross = |o: P, a: P, b: P| (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0]);
    let mut hull: Vec<P> = Vec::with_capacity(2 * sorted.len());
    for pass in [sorted.clone(), sorted.into_iter().rev().collect()] {
        let start = hull.len();
        for p in pass {
            while hull.len() >= start + 2
                && cross(hull[hull.len() - 2], hull[hull.len() - 1], p) <= 0.0
            {
                hull.pop();
            }
            hull.push(p);
        }
        // The last point of each pass is the first of the next.
        hull.pop();
    }
    hull
}

/// The signed area of the closed polygon through `points` (shoelace).
fn polygon_area(points: &[P]) -> f64 {
    let n = points.len();
    if n < 3 {
        return 0.0;
    }
    let twice: f64 = (0..n)
        .map(|i| {
            let (a, b) = (points[i], points[(i + 1) % n]);
            a[0] * b[1] - b[0] * a[1]
        })
        .sum();
    twice / 2.0
}

/// The perimeter of the closed polygon through `points`.
fn perimeter(points: &[P]) -> f64 {
    let n = points.len();
    if n < 2 {
        return 0.0;
    }
    (0..n)
        .map(|i| distance(points[i], points[(i + 1) % n]))
        .sum()
}

/// The length of the polyline `stroke`.
fn length(stroke: &[P]) -> f64 {
    stroke.windows(2).map(|w| distance(w[0], w[1])).sum()
}

/// `4πA / P²`: 1 for a circle, less for anything else, 0 when undefined; capped at 1.
fn circularity(area: f64, perimeter: f64) -> f64 {
    ratio(4.0 * std::f64::consts::PI * area, perimeter * perimeter).min(1.0)
}

/// [`RADIAL_SAMPLES`] points spread evenly along the ink (`ink` long); the points themselves
/// when there is no ink length (dots only).
fn resample(strokes: &[Vec<P>], ink: f64) -> Vec<P> {
    if ink <= 0.0 {
        return strokes.iter().flatten().copied().collect();
    }
    let step = ink / RADIAL_SAMPLES as f64;
    let mut out = Vec::with_capacity(RADIAL_SAMPLES);
    // Arc length at which the next sample lies.
    let mut next = step / 2.0;
    let mut walked = 0.0;
    for stroke in strokes {
        for pair in stroke.windows(2) {
            let d = distance(pair[0], pair[1]);
            while next <= walked + d && out.len() < RADIAL_SAMPLES {
                let t = (next - walked) / d;
                out.push([
                    pair[0][0] + t * (pair[1][0] - pair[0][0]),
                    pair[0][1] + t * (pair[1][1] - pair[0][1]),
                ]);
                next += step;
            }
            walked += d;
        }
    }
    out
}

/// `a / b`, or 0 when `b` is not positive.
fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 {
        a / b
    } else {
        0.0
    }
}

fn distance(a: P, b: P) -> f64 {
    (a[0] - b[0]).hypot(a[1] - b[1])
}

fn to_f32(f: [f64; V1_FEATURES]) -> [f32; V1_FEATURES] {
    f.map(|v| v.clamp(0.0, 1.0) as f32)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A regular polygon with `sides` corners drawn as one closed stroke, `per_side` points
    /// on each side, radius `r` around (cx, cy).
    fn polygon(sides: usize, per_side: usize, r: f32, cx: f32, cy: f32) -> Vec<Vec<[f32; 2]>> {
        let corner = |k: usize| {
            let a = std::f32::consts::TAU * k as f32 / sides as f32 + 0.3;
            [cx + r * a.cos(), cy + r * a.sin()]
        };
        let mut stroke = Vec::new();
        for k in 0..sides {
            let (a, b) = (corner(k), corner(k + 1));
            for i in 0..per_side {
                let t = i as f32 / per_side as f32;
                stroke.push([a[0] + t * (b[0] - a[0]), a[1] + t * (b[1] - a[1])]);
            }
        }
        stroke.push(corner(0));
        vec![stroke]
    }

    fn circle() -> Vec<Vec<[f32; 2]>> {
        polygon(200, 1, 50.0, 100.0, 100.0)
    }

    /// A horizontal zigzag of `teeth` teeth.
    fn zigzag(teeth: usize) -> Vec<Vec<[f32; 2]>> {
        let stroke = (0..=2 * teeth)
            .map(|i| [i as f32 * 10.0, if i % 2 == 0 { 0.0 } else { 20.0 }])
            .collect();
        vec![stroke]
    }

    /// A sine wave of `waves` periods, densely sampled.
    fn squiggle(waves: f32) -> Vec<Vec<[f32; 2]>> {
        let stroke = (0..=400)
            .map(|i| {
                let x = i as f32 / 400.0;
                [x * 200.0, 15.0 * (x * waves * std::f32::consts::TAU).sin()]
            })
            .collect();
        vec![stroke]
    }

    fn corners(f: &[f32; V1_FEATURES], tolerance: usize) -> f32 {
        f[5 + tolerance] * MAX_CORNERS as f32
    }

    /// Whether `a` and `b` agree within 1e-4 each.
    fn close(a: &[f32], b: &[f32]) -> bool {
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-4)
    }

    #[test]
    fn regular_polygons_have_as_many_corners_as_sides_and_a_circle_has_none() {
        for sides in [3, 4, 6, 8] {
            let f = features_v1(&polygon(sides, 10, 40.0, 0.0, 0.0));
            for window in 0..3 {
                assert_eq!(corners(&f, window), sides as f32, "{sides} sides, {window}");
            }
        }
        let f = features_v1(&circle());
        assert_eq!(&f[5..8], &[0.0; 3], "a circle has no corners");
    }

    #[test]
    fn corners_are_binned_by_angle_an_octagon_at_45_a_hexagon_at_60_a_square_at_90() {
        let bins = |d: &[Vec<[f32; 2]>]| features_v1(d)[8..12].to_vec();
        let polygon = |sides| polygon(sides, 10, 40.0, 0.0, 0.0);
        assert!(close(&bins(&circle()), &[0.0; 4]));
        assert!(close(&bins(&polygon(8)), &[1.0, 0.0, 0.0, 0.0]));
        assert!(close(&bins(&polygon(6)), &[0.0, 0.75, 0.0, 0.0]));
        assert!(close(&bins(&polygon(4)), &[0.0, 0.0, 0.5, 0.0]));
        assert!(close(&bins(&polygon(3)), &[0.0, 0.0, 0.0, 0.375]));
        let zigzag = zigzag(5);
        assert!(close(&bins(&zigzag), &[0.0, 0.0, 0.0, 1.0]), "127° teeth");
        assert_eq!(corners(&features_v1(&zigzag), 1), 9.0);
    }

    #[test]
    fn a_polygon_drawn_side_by_side_has_the_corners_of_one_drawn_in_one_stroke() {
        let one = polygon(6, 10, 40.0, 0.0, 0.0).remove(0);
        // Each side a stroke that ends where the next one starts (the last at the start).
        let sides: Vec<Vec<[f32; 2]>> = one[..60]
            .chunks(10)
            .enumerate()
            .map(|(k, side)| [side, &[one[(k + 1) * 10]]].concat())
            .collect();
        let f = features_v1(&sides);
        assert_eq!(corners(&f, 1), 6.0);
        assert!(close(&f[8..12], &features_v1(&[one])[8..12]));
    }

    #[test]
    fn a_circle_is_round_closed_convex_and_winds_once() {
        let f = features_v1(&circle());
        assert!(f[3] < 0.01 && f[4] < 0.01, "closed: {} {}", f[3], f[4]);
        assert!(f[14] > 0.95, "hull circularity {}", f[14]);
        assert!(f[16] > 0.95, "ink circularity {}", f[16]);
        assert!(f[15] > 0.99, "convexity {}", f[15]);
        assert!(
            (f[13] - 0.5).abs() < 0.01,
            "ink as long as its hull: {}",
            f[13]
        );
        assert!((f[19] - 0.5).abs() < 0.01, "one full turn: {}", f[19]);
        assert!(f[18] > 0.99, "every turn the same way: {}", f[18]);
        assert!(f[25] < 0.01, "radial spread {}", f[25]);
        assert!((f[26] - 0.5).abs() < 0.01 && (f[27] - 0.5).abs() < 0.01);
        let square = features_v1(&polygon(4, 10, 40.0, 0.0, 0.0));
        assert!((square[14] - std::f32::consts::FRAC_PI_4).abs() < 0.01);
        let octagon = features_v1(&polygon(8, 10, 40.0, 0.0, 0.0));
        assert!(
            octagon[25] > f[25] && octagon[25] < square[25],
            "octagon between"
        );
    }

    #[test]
    fn a_squiggle_turns_both_ways_and_a_crescent_is_not_convex() {
        let f = features_v1(&squiggle(3.0));
        assert!(
            f[12] > features_v1(&circle())[12],
            "bends more than a circle"
        );
        assert!(f[18] < 0.2, "turns cancel: {}", f[18]);
        assert!(f[17] > 0.3, "but it turns a lot: {}", f[17]);
        assert!(f[3] > 0.9, "open: {}", f[3]);
        assert!(f[19] < 0.1, "no net winding: {}", f[19]);
        // A crescent: an outer half circle, then an inner arc back.
        let mut stroke = Vec::new();
        for i in 0..=50 {
            let a = std::f32::consts::PI * (i as f32 / 50.0 - 0.5);
            stroke.push([50.0 * a.cos(), 50.0 * a.sin()]);
        }
        for i in 0..=50 {
            let a = std::f32::consts::PI * (0.5 - i as f32 / 50.0);
            stroke.push([25.0 * a.cos() + 10.0, 50.0 * a.sin()]);
        }
        let moon = features_v1(&[stroke]);
        assert!(moon[15] < 0.6, "convexity {}", moon[15]);
        assert!(moon[16] < 0.3, "ink circularity {}", moon[16]);
        assert!(moon[3] < 0.2, "closed: {}", moon[3]);
    }

    #[test]
    fn strokes_aspect_and_direction_are_read_off_a_plus_sign() {
        let plus = vec![
            vec![[0.0, 50.0], [100.0, 50.0]],
            vec![[50.0, 0.0], [50.0, 100.0]],
        ];
        let f = features_v1(&plus);
        assert!(
            close(&f[..3], &[0.2, 1.0, 0.5]),
            "two strokes, square, as wide as high"
        );
        assert!(
            close(&f[20..24], &[0.5, 0.0, 0.5, 0.0]),
            "half across, half down"
        );
        let line = features_v1(&[vec![[0.0, 0.0], [30.0, 0.0], [100.0, 0.0]]]);
        assert!(close(&[line[1], line[2], line[20]], &[0.0, 1.0, 1.0]));
        assert!(
            (line[13] - 1.0 / 3.0).abs() < 1e-4,
            "the hull goes there and back"
        );
        assert_eq!(line[14], 0.0, "no area");
    }

    #[test]
    fn features_ignore_position_and_size_and_stay_in_range_on_degenerate_drawings() {
        let a = features_v1(&polygon(6, 7, 40.0, 0.0, 0.0));
        let b = features_v1(&polygon(6, 7, 400.0, 1000.0, -50.0));
        assert!(close(&a, &b), "{a:?} {b:?}");
        let drawings: Vec<Vec<Vec<[f32; 2]>>> = vec![
            vec![],
            vec![vec![]],
            vec![vec![[3.0, 3.0]]],
            vec![vec![[3.0, 3.0], [3.0, 3.0]], vec![[3.0, 3.0]]],
            vec![vec![[f32::NAN, 1.0], [2.0, f32::INFINITY]]],
            vec![vec![[0.0, 0.0], [f32::NAN, 0.0], [10.0, 10.0]]],
        ];
        for d in &drawings {
            let f = features_v1(d);
            assert!(f.iter().all(|v| (0.0..=1.0).contains(v)), "{d:?}: {f:?}");
        }
        assert_eq!(features_v1(&[]), [0.0; V1_FEATURES]);
        let mut out = vec![9.0; FeatureSet::StrokesV1.count()];
        FeatureSet::StrokesV1.compute_into(&circle(), &mut out);
        assert_eq!(out, features_v1(&circle()));
    }

    #[test]
    fn the_feature_set_is_recorded_by_its_name() {
        let json = serde_json::to_value(FeatureSet::StrokesV1).unwrap();
        assert_eq!(json, "strokes-v1");
        assert_eq!(
            serde_json::from_value::<FeatureSet>(json).unwrap(),
            FeatureSet::StrokesV1
        );
    }
}
