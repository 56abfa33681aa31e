//! What a trained model is worth: per-epoch records and the final validation measurements
//! (accuracy, top-3 accuracy, loss, per-class precision and recall, confusion matrix),
//! computed from the validation logits; the 95 % Wilson interval that goes with every
//! accuracy; and the calibration (a temperature fitted on the validation logits, the
//! expected calibration error before and after it, and a reliability table).

use serde::{Deserialize, Serialize};
use tch::{TchError, Tensor};

/// How many of the best guesses count for the top-k accuracy.
const TOP_K: i64 = 3;

/// z for a two-sided 95 % interval.
const Z95: f64 = 1.959_963_984_540_054;

/// Equal-width confidence bins of the expected calibration error and reliability table.
pub const CALIBRATION_BINS: usize = 10;

/// Temperatures tried when fitting one: a log-spaced grid from 1/4 to 8.
const TEMPERATURE_GRID: (f64, f64, usize) = (0.25, 8.0, 121);

/// The calibrated top probability below which a model says it is unsure. On the starter
/// model (trained with scribbles) 0.8 measured: unsure on ~87 % of unseen scribbles, on ~3 %
/// of real drawings, 99.6 % right on the sure ones (`tests/ml/unsure.rs`); 0.6 caught only
/// ~78 % of the scribbles.
pub const UNSURE_BELOW: f64 = 0.8;

/// The 95 % Wilson score interval of `successes` out of `n`, as `[low, high]`; `[0, 1]` when
/// `n` is 0. Unlike the normal approximation it stays inside 0..1 and is honest for small `n`
/// and for shares near 0 or 1, which is what small validation sets give.
pub fn wilson_interval(successes: usize, n: usize) -> [f64; 2] {
    if n == 0 {
        return [0.0, 1.0];
    }
    let n_f = n as f64;
    let p = successes as f64 / n_f;
    let z2 = Z95 * Z95;
    let denominator = 1.0 + z2 / n_f;
    let centre = (p + z2 / (2.0 * n_f)) / denominator;
    let half = Z95 * (p * (1.0 - p) / n_f + z2 / (4.0 * n_f * n_f)).sqrt() / denominator;
    // All right (or all wrong) reaches 1 (or 0) exactly, which rounding would miss.
    let low = if successes == 0 {
        0.0
    } else {
        (centre - half).max(0.0)
    };
    let high = if successes >= n {
        1.0
    } else {
        (centre + half).min(1.0)
    };
    [low, high]
}

/// The two-sided exact McNemar test of a paired comparison: `a_only` drawings only the
/// first model got right, `b_only` only the second. Under "equally good" each disagreement
/// is a fair coin, so the p-value is the two-sided binomial tail of the smaller count
/// (1 when they never disagree). Exact rather than chi-squared, because the disagreements on
/// a small evaluation split are few.
pub fn mcnemar_p_value(a_only: usize, b_only: usize) -> f64 {
    let n = a_only + b_only;
    if n == 0 {
        return 1.0;
    }
    let k_max = a_only.min(b_only);
    // log C(n, k) / 2^n, term by term, summed in f64 (tiny terms vanish harmlessly).
    let mut log_term = -(n as f64) * std::f64::consts::LN_2;
    let mut tail = log_term.exp();
    for k in 0..k_max {
        log_term += ((n - k) as f64 / (k + 1) as f64).ln();
        tail += log_term.exp();
    }
    (2.0 * tail).min(1.0)
}

/// One confidence bin of a reliability table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReliabilityBin {
    /// Lower edge of the bin's top probability (the upper is `lower + 1/bins`).
    pub lower: f64,
    /// Validation drawings whose top probability falls in the bin.
    pub count: usize,
    /// Their mean top probability (0 when empty).
    pub confidence: f64,
    /// The share of them whose top guess is right (0 when empty).
    pub accuracy: f64,
}

/// How far a model's probabilities can be taken at their word, and the temperature and
/// threshold that make its "unsure" answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    /// Logits are divided by this before the softmax (fitted on the validation set by
    /// least cross-entropy; 1 changes nothing).
    pub temperature: f64,
    /// A calibrated top probability below this makes the answer "unsure".
    pub unsure_below: f64,
    /// Expected calibration error of the raw probabilities on the validation set.
    pub ece_before: f64,
    /// Expected calibration error after the temperature.
    pub ece_after: f64,
    /// The reliability table after the temperature, [`CALIBRATION_BINS`] bins.
    pub reliability: Vec<ReliabilityBin>,
}

impl Calibration {
    /// Fits the temperature to validation `logits` (rows) and `labels`, and measures the
    /// calibration error before and after. The threshold is [`UNSURE_BELOW`].
    pub fn fit(logits: &[Vec<f32>], labels: &[i64]) -> Calibration {
        let (lo, hi, steps) = TEMPERATURE_GRID;
        let temperature = (0..steps)
            .map(|i| lo * (hi / lo).powf(i as f64 / (steps - 1) as f64))
            .map(|t| (t, mean_nll(logits, labels, t)))
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .map_or(1.0, |(t, _)| t);
        let (ece_before, _) = reliability(logits, labels, 1.0);
        let (ece_after, table) = reliability(logits, labels, temperature);
        Calibration {
            temperature,
            unsure_below: UNSURE_BELOW,
            ece_before,
            ece_after,
            reliability: table,
        }
    }
}

/// Softmax of `logits / temperature`, in f64.
pub fn softmax(logits: &[f32], temperature: f64) -> Vec<f64> {
    let scaled: Vec<f64> = logits.iter().map(|&l| f64::from(l) / temperature).collect();
    let max = scaled.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let exps: Vec<f64> = scaled.iter().map(|l| (l - max).exp()).collect();
    let sum: f64 = exps.iter().sum();
    exps.into_iter().map(|e| e / sum).collect()
}

/// Mean cross-entropy of the labels under `logits / temperature`.
fn mean_nll(logits: &[Vec<f32>], labels: &[i64], temperature: f64) -> f64 {
    let total: f64 = logits
        .iter()
        .zip(labels)
        .map(|(row, &l)| -softmax(row, temperature)[l as usize].max(1e-12).ln())
        .sum();
    total / labels.len().max(1) as f64
}

/// The expected calibration error (the count-weighted mean gap between confidence and
/// accuracy over [`CALIBRATION_BINS`] bins) and the reliability table.
fn reliability(
    logits: &[Vec<f32>],
    labels: &[i64],
    temperature: f64,
) -> (f64, Vec<ReliabilityBin>) {
    let mut sums = vec![(0usize, 0.0f64, 0usize); CALIBRATION_BINS];
    for (row, &label) in logits.iter().zip(labels) {
        let p = softmax(row, temperature);
        let (best, top) = p
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map_or((0, 0.0), |(i, &v)| (i, v));
        let bin = ((top * CALIBRATION_BINS as f64) as usize).min(CALIBRATION_BINS - 1);
        sums[bin].0 += 1;
        sums[bin].1 += top;
        sums[bin].2 += usize::from(best as i64 == label);
    }
    let n = labels.len().max(1) as f64;
    let mut ece = 0.0;
    let table = sums
        .into_iter()
        .enumerate()
        .map(|(i, (count, confidence, right))| {
            let (confidence, accuracy) = if count == 0 {
                (0.0, 0.0)
            } else {
                (confidence / count as f64, right as f64 / count as f64)
            };
            ece += count as f64 / n * (confidence - accuracy).abs();
            ReliabilityBin {
                lower: i as f64 / CALIBRATION_BINS as f64,
                count,
                confidence,
                accuracy,
            }
        })
        .collect();
    (ece, table)
}

/// The measurements of one finished epoch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    /// The epoch, 1-based.
    pub epoch: u32,
    /// Mean training loss over the epoch.
    pub train_loss: f64,
    /// Training accuracy over the epoch.
    pub train_accuracy: f64,
    /// Mean loss on the validation set after the epoch.
    pub validation_loss: f64,
    /// Accuracy on the validation set after the epoch.
    pub validation_accuracy: f64,
    /// Training throughput over the epoch, rasterization included.
    pub samples_per_sec: f64,
}

/// Precision and recall of one class on the validation set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassMetrics {
    /// The class name.
    pub class: String,
    /// Of the drawings predicted as this class, the share that are (0 when none is).
    pub precision: f64,
    /// Of the drawings of this class, the share predicted as it (0 when there are none).
    pub recall: f64,
    /// Validation drawings of this class.
    pub support: usize,
}

/// How good the final model is, measured on the validation set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    /// Share of validation drawings whose best guess is right.
    pub accuracy: f64,
    /// Share of validation drawings whose right class is among the best three guesses.
    pub top3_accuracy: f64,
    /// Mean cross-entropy on the validation set.
    pub loss: f64,
    /// Precision, recall and support per class, in class order.
    pub per_class: Vec<ClassMetrics>,
    /// `confusion[true][predicted]` counts of validation drawings.
    pub confusion: Vec<Vec<u32>>,
    /// One record per epoch, from the first (including epochs before a resume).
    pub history: Vec<EpochRecord>,
    /// Drawings in the training set.
    pub train_samples: usize,
    /// Drawings in the validation set.
    pub validation_samples: usize,
    /// The 95 % Wilson interval of `accuracy` over `validation_samples` drawings (absent in
    /// models made before it was measured).
    #[serde(default)]
    pub accuracy_interval: Option<[f64; 2]>,
    /// Temperature, unsure threshold and calibration error (absent in older models, which
    /// then serve raw probabilities with the default threshold).
    #[serde(default)]
    pub calibration: Option<Calibration>,
    /// Whether validation drawings come from players training never saw; false when the
    /// split fell back to a stratified random one (one player, or one holding most drawings),
    /// so the figures may be optimistic for new people. Older models were always split by
    /// player.
    #[serde(default = "older_models_were_split_by_player")]
    pub player_independent: bool,
}

/// The default of `Metrics::player_independent` for manifests that predate it.
fn older_models_were_split_by_player() -> bool {
    true
}

/// Share of rows of `logits` whose argmax is the label.
pub(crate) fn accuracy(logits: &Tensor, labels: &[i64]) -> Result<f64, TchError> {
    let predicted = Vec::<i64>::try_from(&logits.argmax(-1, false))?;
    let right = predicted.iter().zip(labels).filter(|(p, l)| p == l).count();
    Ok(right as f64 / labels.len().max(1) as f64)
}

/// The final metrics from the validation logits.
pub(crate) fn measure(
    classes: &[String],
    logits: &Tensor,
    labels: &[i64],
    loss: f64,
    history: Vec<EpochRecord>,
    train_samples: usize,
) -> Result<Metrics, TchError> {
    let k = classes.len();
    let predicted = Vec::<i64>::try_from(&logits.argmax(-1, false))?;
    let (_, top) = logits.topk(TOP_K.min(k as i64), -1, true, true);
    let top: Vec<Vec<i64>> = Vec::<Vec<i64>>::try_from(&top)?;
    let mut confusion = vec![vec![0u32; k]; k];
    for (&p, &l) in predicted.iter().zip(labels) {
        confusion[l as usize][p as usize] += 1;
    }
    let n = labels.len().max(1) as f64;
    let right: u32 = (0..k).map(|c| confusion[c][c]).sum();
    let in_top = top
        .iter()
        .zip(labels)
        .filter(|(t, l)| t.contains(l))
        .count();
    let per_class = (0..k)
        .map(|c| {
            let predicted_as: u32 = (0..k).map(|t| confusion[t][c]).sum();
            let support: u32 = confusion[c].iter().sum();
            let ratio = |a: u32, b: u32| {
                if b == 0 {
                    0.0
                } else {
                    f64::from(a) / f64::from(b)
                }
            };
            ClassMetrics {
                class: classes[c].clone(),
                precision: ratio(confusion[c][c], predicted_as),
                recall: ratio(confusion[c][c], support),
                support: support as usize,
            }
        })
        .collect();
    let rows = Vec::<Vec<f32>>::try_from(logits)?;
    Ok(Metrics {
        accuracy_interval: Some(wilson_interval(right as usize, labels.len())),
        calibration: Some(Calibration::fit(&rows, labels)),
        player_independent: true,
        accuracy: f64::from(right) / n,
        top3_accuracy: in_top as f64 / n,
        loss,
        per_class,
        confusion,
        history,
        train_samples,
        validation_samples: labels.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wilson_interval_matches_known_values_and_stays_inside_zero_to_one() {
        // 3 of 4 right ("75 %"): the interval is wide, about 30 % to 95 %.
        let [lo, hi] = wilson_interval(3, 4);
        assert!(
            (lo - 0.3006).abs() < 1e-3 && (hi - 0.9544).abs() < 1e-3,
            "{lo} {hi}"
        );
        let [lo, hi] = wilson_interval(10, 10);
        assert!(
            (hi - 1.0).abs() < 1e-12 && (lo - 0.7225).abs() < 1e-3,
            "{lo} {hi}"
        );
        assert_eq!(wilson_interval(0, 0), [0.0, 1.0]);
        let [lo, hi] = wilson_interval(900, 1000);
        assert!(lo > 0.875 && hi < 0.92, "{lo} {hi}");
    }

    #[test]
    fn mcnemar_matches_the_exact_binomial_test() {
        assert_eq!(mcnemar_p_value(0, 0), 1.0);
        // 0 vs 6 disagreements: 2 * 0.5^6 = 0.03125.
        assert!((mcnemar_p_value(0, 6) - 0.031_25).abs() < 1e-12);
        // 2 vs 8: 2 * (1 + 10 + 45) / 1024.
        assert!((mcnemar_p_value(8, 2) - 112.0 / 1024.0).abs() < 1e-12);
        assert_eq!(mcnemar_p_value(5, 5), 1.0);
        assert!(mcnemar_p_value(400, 600) < 1e-9);
    }

    #[test]
    fn fitting_a_temperature_lowers_the_calibration_error_of_an_overconfident_model() {
        // Logits that say ~99 % but are right only 70 % of the time.
        let mut logits = Vec::new();
        let mut labels = Vec::new();
        for i in 0..100 {
            logits.push(vec![6.0, 0.0, 0.0]);
            labels.push(if i % 10 < 7 { 0 } else { 1 + (i % 2) });
        }
        let c = Calibration::fit(&logits, &labels);
        assert!(c.temperature > 1.5, "{}", c.temperature);
        assert!(c.ece_before > 0.25, "{}", c.ece_before);
        assert!(c.ece_after < 0.05, "{}", c.ece_after);
        assert_eq!(c.reliability.len(), CALIBRATION_BINS);
        assert_eq!(c.reliability.iter().map(|b| b.count).sum::<usize>(), 100);
    }
}
