//! Which shape to prompt next (active learning): a weighting of the candidate shapes that
//! favours those with fewer good drawings and those the active model recognises worst,
//! mixed with a uniform share so that every candidate stays possible. Pure: the caller
//! gathers the counts and accuracies and draws the random number.
//!
//! The weight of a shape is `need(good) * weakness(accuracy)`:
//! - `need(good) = 1 / (1 + good / COUNT_SCALE)`: a shape with no good drawing weighs 1,
//!   one with [`COUNT_SCALE`] weighs 1/2, one with ten times that 1/11;
//! - `weakness(accuracy) = ACCURACY_FLOOR + (1 - accuracy)`: a class the model always gets
//!   right still weighs [`ACCURACY_FLOOR`], one it never gets right `1 + ACCURACY_FLOOR`;
//!   a shape the model does not know (or no model) counts as accuracy 0.
//!
//! The weights are normalised, then mixed with the uniform distribution:
//! `p = (1 - EXPLORE) * w / sum(w) + EXPLORE / n`.
//!
//! The candidates are the active shapes the player has drawn least ([`choose`]): a player
//! meets every shape once per round, so nobody gets the same shape over and over, and the
//! weighting decides the order within a round (which is what counts in short sessions).

/// Drawings at which a shape's need has halved.
pub const COUNT_SCALE: f64 = 50.0;
/// The weakness of a class the model always recognises.
pub const ACCURACY_FLOOR: f64 = 0.25;
/// The share of prompts drawn uniformly, whatever the weights say.
pub const EXPLORE: f64 = 0.2;

/// What the weighting knows about one candidate shape.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Candidate {
    /// Non-deleted, non-flagged drawings of the shape.
    pub good_drawings: u64,
    /// The active model's recall on the shape's validation drawings, if it knows the shape.
    pub accuracy: Option<f64>,
}

/// The probability of prompting each candidate, in the same order; they sum to 1 (empty
/// for no candidates).
pub fn probabilities(candidates: &[Candidate]) -> Vec<f64> {
    if candidates.is_empty() {
        return Vec::new();
    }
    let weights: Vec<f64> = candidates.iter().map(weight).collect();
    let total: f64 = weights.iter().sum();
    let uniform = 1.0 / candidates.len() as f64;
    weights
        .iter()
        .map(|w| (1.0 - EXPLORE) * w / total + EXPLORE * uniform)
        .collect()
}

/// The unnormalised weight of one candidate (see the module docs).
pub fn weight(candidate: &Candidate) -> f64 {
    let need = 1.0 / (1.0 + candidate.good_drawings as f64 / COUNT_SCALE);
    let accuracy = candidate.accuracy.unwrap_or(0.0).clamp(0.0, 1.0);
    need * (ACCURACY_FLOOR + 1.0 - accuracy)
}

/// The index that a uniform random number `r` in `0..1` picks from `probabilities`.
pub fn pick(probabilities: &[f64], r: f64) -> Option<usize> {
    let mut left = r;
    for (index, p) in probabilities.iter().enumerate() {
        if left < *p {
            return Some(index);
        }
        left -= p;
    }
    // Rounding can leave `r` just past the last bucket.
    probabilities.len().checked_sub(1)
}

/// Chooses among shapes given as (what the weighting knows, how often this player drew
/// it): only those the player drew least are candidates, picked by [`probabilities`] with
/// the uniform random number `r` in `0..1`. Returns the index into `shapes`.
pub fn choose(shapes: &[(Candidate, u64)], r: f64) -> Option<usize> {
    let fewest = shapes.iter().map(|(_, mine)| *mine).min()?;
    let round: Vec<usize> = (0..shapes.len())
        .filter(|&i| shapes[i].1 == fewest)
        .collect();
    let candidates: Vec<Candidate> = round.iter().map(|&i| shapes[i].0).collect();
    pick(&probabilities(&candidates), r).map(|i| round[i])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(good_drawings: u64, accuracy: Option<f64>) -> Candidate {
        Candidate {
            good_drawings,
            accuracy,
        }
    }

    #[test]
    fn equal_candidates_are_equally_likely_and_probabilities_sum_to_one() {
        let p = probabilities(&[with(3, Some(0.5)); 4]);
        assert!(p.iter().all(|x| (x - 0.25).abs() < 1e-12), "{p:?}");
        let p = probabilities(&[with(0, None), with(500, Some(0.9)), with(7, Some(0.1))]);
        assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        assert!(probabilities(&[]).is_empty());
    }

    #[test]
    fn the_distribution_shifts_away_from_a_shape_as_its_good_drawings_grow() {
        let mut previous = f64::MAX;
        for count in [0, 10, 50, 200, 1_000] {
            let p = probabilities(&[with(count, None), with(0, None), with(0, None)]);
            assert!(p[0] < previous, "{count}: {p:?}");
            previous = p[0];
        }
        let p = probabilities(&[with(50, None), with(0, None)]);
        // need 1/2 against 1: weights 1/3 and 2/3, mixed with 1/2 each.
        assert!((p[0] - (0.8 / 3.0 + 0.1)).abs() < 1e-12, "{p:?}");
    }

    #[test]
    fn a_class_the_model_gets_wrong_is_prompted_more_than_one_it_gets_right() {
        let p = probabilities(&[with(100, Some(0.99)), with(100, Some(0.3))]);
        assert!(p[1] > 2.0 * p[0], "{p:?}");
        let unknown = probabilities(&[with(100, None), with(100, Some(0.0))]);
        assert!((unknown[0] - unknown[1]).abs() < 1e-12);
    }

    #[test]
    fn every_candidate_keeps_at_least_its_uniform_exploration_share() {
        let p = probabilities(&[with(1_000_000, Some(1.0)), with(0, Some(0.0))]);
        assert!(p[0] >= EXPLORE / 2.0 - 1e-12, "{p:?}");
    }

    #[test]
    fn only_the_shapes_the_player_drew_least_are_candidates() {
        let shapes = [
            (with(0, None), 2),
            (with(1_000, Some(1.0)), 1),
            (with(0, None), 2),
        ];
        for r in [0.0, 0.5, 0.999] {
            assert_eq!(choose(&shapes, r), Some(1));
        }
        assert_eq!(choose(&[], 0.5), None);
    }

    #[test]
    fn pick_walks_the_cumulative_distribution() {
        let p = [0.2, 0.5, 0.3];
        assert_eq!(pick(&p, 0.0), Some(0));
        assert_eq!(pick(&p, 0.19), Some(0));
        assert_eq!(pick(&p, 0.2), Some(1));
        assert_eq!(pick(&p, 0.69), Some(1));
        assert_eq!(pick(&p, 0.71), Some(2));
        assert_eq!(pick(&p, 1.0), Some(2));
        assert_eq!(pick(&[], 0.5), None);
    }
}
