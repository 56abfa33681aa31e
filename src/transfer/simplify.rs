//! Quick, Draw!'s "simplified" drawing: aligned to the top-left corner (smallest x and y
//! become 0), scaled uniformly so that the largest coordinate is 255, each stroke simplified
//! with the Ramer-Douglas-Peucker algorithm at epsilon 2.0, coordinates rounded to integers.
//! (Google's pipeline also resamples strokes at 1-pixel spacing before simplifying; RDP keeps
//! only the corners either way, so this step is left out.)

/// The largest coordinate after scaling.
pub const SIMPLIFIED_MAX: f64 = 255.0;
/// RDP's tolerance, in scaled pixels.
pub const RDP_EPSILON: f64 = 2.0;

pub use crate::ml::geometry::rdp;

/// One simplified stroke: integer x and y in `0..=255`.
pub type SimpleStroke = (Vec<i64>, Vec<i64>);

/// Simplifies strokes of `[x, y]` points as described in the module documentation.
pub fn simplify(strokes: &[Vec<[f64; 2]>]) -> Vec<SimpleStroke> {
    let points = || strokes.iter().flatten();
    let min_x = points().map(|p| p[0]).fold(f64::INFINITY, f64::min);
    let min_y = points().map(|p| p[1]).fold(f64::INFINITY, f64::min);
    let extent = points()
        .map(|p| (p[0] - min_x).max(p[1] - min_y))
        .fold(0.0, f64::max);
    // A drawing that is a single spot has no extent to scale: it stays at the origin.
    let scale = if extent > 0.0 {
        SIMPLIFIED_MAX / extent
    } else {
        0.0
    };
    strokes
        .iter()
        .map(|stroke| {
            let scaled: Vec<[f64; 2]> = stroke
                .iter()
                .map(|p| [(p[0] - min_x) * scale, (p[1] - min_y) * scale])
                .collect();
            let kept = rdp(&scaled, RDP_EPSILON);
            let round = |v: f64| v.round().clamp(0.0, SIMPLIFIED_MAX) as i64;
            (
                kept.iter().map(|p| round(p[0])).collect(),
                kept.iter().map(|p| round(p[1])).collect(),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rdp_drops_points_within_epsilon_of_a_straight_line_and_keeps_corners() {
        let line: Vec<[f64; 2]> = (0..=10).map(|i| [f64::from(i), 0.5]).collect();
        assert_eq!(rdp(&line, 2.0), vec![[0.0, 0.5], [10.0, 0.5]]);
        let corner = vec![
            [0.0, 0.0],
            [5.0, 0.1],
            [10.0, 0.0],
            [10.0, 5.0],
            [10.0, 10.0],
        ];
        assert_eq!(
            rdp(&corner, 2.0),
            vec![[0.0, 0.0], [10.0, 0.0], [10.0, 10.0]]
        );
        // A bump higher than epsilon stays.
        let bump = vec![[0.0, 0.0], [5.0, 3.0], [10.0, 0.0]];
        assert_eq!(rdp(&bump, 2.0), bump);
        assert_eq!(rdp(&[[1.0, 1.0]], 2.0), vec![[1.0, 1.0]]);
    }

    #[test]
    fn a_simplified_drawing_starts_at_zero_and_reaches_255_on_its_longer_side() {
        let strokes = vec![
            vec![[100.0, 50.0], [610.0, 50.0], [610.0, 250.0]],
            vec![[355.0, 150.0]],
        ];
        let simple = simplify(&strokes);
        assert_eq!(simple[0].0, vec![0, 255, 255]);
        assert_eq!(simple[0].1, vec![0, 0, 100]);
        assert_eq!(simple[1], (vec![128], vec![50]));
    }

    #[test]
    fn a_single_spot_stays_at_the_origin() {
        assert_eq!(simplify(&[vec![[7.0, 9.0]]]), vec![(vec![0], vec![0])]);
    }
}
