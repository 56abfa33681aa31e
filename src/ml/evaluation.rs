//! What a trained model is worth: per-epoch records and the final validation measurements
//! (accuracy, top-3 accuracy, loss, per-class precision and recall, confusion matrix),
//! tallied a chunk of validation logits at a time (see [`Tally`]), so that memory does not
//! grow with the validation set; the 95 % Wilson interval that goes with every accuracy; and
//! the calibration (a temperature fitted on a bounded sample of the validation logits, the
//! expected calibration error before and after it, and a reliability table).

use serde::{Deserialize, Serialize};
use tch::{TchError, Tensor};

/// How many of the best guesses count for the top-k accuracy.
const TOP_K: i64 = 3;

/// z for a two-sided 95 % interval.
const Z95: f64 = 1.959_963_984_540_054;

/// Equal-width confidence bins of the expected calibration error and reliability table.
pub const CALIBRATION_BINS: usize = 10;

/// Validation drawings at most whose logits are kept to fit the temperature and measure the
/// calibration: every `ceil(n / CALIBRATION_SAMPLE)`-th drawing of the validation set. A
/// smaller set is kept whole. 20k rows pin the temperature to well within the grid's step
/// and hold at most 28 MB of logits at 345 classes, whatever the dataset size.
pub const CALIBRATION_SAMPLE: usize = 20_000;

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
    /// Logits are divided by this before the softmax (fitted on the validation set, or on
    /// [`CALIBRATION_SAMPLE`] drawings spread evenly over it, by least cross-entropy; 1
    /// changes nothing). The two errors and the table below come from the same drawings.
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

/// The validation measurements, gathered a chunk of logits at a time: counts (confusion,
/// top-3), the summed loss, and the calibration sample (every `stride`-th row, see
/// [`CALIBRATION_SAMPLE`]). Holds O(classes^2 + sample) whatever the number of rows.
pub(crate) struct Tally {
    /// `confusion[true][predicted]` so far.
    confusion: Vec<Vec<u32>>,
    /// Rows whose label is among their best [`TOP_K`] guesses.
    in_top: usize,
    /// Sum of the rows' cross-entropies.
    loss_sum: f64,
    /// Rows tallied.
    seen: usize,
    /// Every `stride`-th row goes to the calibration sample.
    stride: usize,
    /// The calibration sample's logits and labels.
    sample_logits: Vec<Vec<f32>>,
    sample_labels: Vec<i64>,
}

impl Tally {
    /// An empty tally of `rows` rows (to come) over `classes` classes.
    pub(crate) fn new(classes: usize, rows: usize) -> Self {
        Self {
            confusion: vec![vec![0u32; classes]; classes],
            in_top: 0,
            loss_sum: 0.0,
            seen: 0,
            stride: rows.div_ceil(CALIBRATION_SAMPLE).max(1),
            sample_logits: Vec::new(),
            sample_labels: Vec::new(),
        }
    }

    /// Adds the next rows: `logits` `[rows, classes]` on any device and their `labels`.
    pub(crate) fn add(&mut self, logits: &Tensor, labels: &[i64]) -> Result<(), TchError> {
        let classes = self.confusion.len() as i64;
        let ys = Tensor::from_slice(labels).to_device(logits.device());
        let loss = f64::try_from(logits.cross_entropy_loss::<Tensor>(
            &ys,
            None,
            tch::Reduction::Sum,
            -100,
            0.0,
        ))?;
        let predicted = Vec::<i64>::try_from(&logits.argmax(-1, false))?;
        let (_, top) = logits.topk(TOP_K.min(classes), -1, true, true);
        let top = Vec::<Vec<i64>>::try_from(&top)?;
        for ((&p, &l), t) in predicted.iter().zip(labels).zip(&top) {
            self.confusion[l as usize][p as usize] += 1;
            self.in_top += usize::from(t.contains(&l));
        }
        let first = self.seen;
        let kept: Vec<i64> = (0..labels.len())
            .filter(|r| (first + r) % self.stride == 0)
            .map(|r| r as i64)
            .collect();
        if !kept.is_empty() {
            let rows = logits
                .index_select(0, &Tensor::from_slice(&kept).to_device(logits.device()))
                .to_device(tch::Device::Cpu);
            self.sample_logits.extend(Vec::<Vec<f32>>::try_from(&rows)?);
            self.sample_labels
                .extend(kept.iter().map(|&r| labels[r as usize]));
        }
        self.loss_sum += loss;
        self.seen += labels.len();
        Ok(())
    }

    /// Mean cross-entropy of the rows so far.
    pub(crate) fn loss(&self) -> f64 {
        self.loss_sum / self.seen.max(1) as f64
    }

    /// Share of the rows so far whose best guess is right.
    pub(crate) fn accuracy(&self) -> f64 {
        self.right() as f64 / self.seen.max(1) as f64
    }

    /// Rows whose best guess is right.
    fn right(&self) -> usize {
        (0..self.confusion.len())
            .map(|c| self.confusion[c][c] as usize)
            .sum()
    }

    /// The final metrics of these rows, `classes` naming the labels.
    pub(crate) fn metrics(
        self,
        classes: &[String],
        history: Vec<EpochRecord>,
        train_samples: usize,
    ) -> Metrics {
        let k = classes.len();
        let confusion = &self.confusion;
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
        let n = self.seen.max(1) as f64;
        Metrics {
            accuracy_interval: Some(wilson_interval(self.right(), self.seen)),
            calibration: Some(Calibration::fit(&self.sample_logits, &self.sample_labels)),
            player_independent: true,
            accuracy: self.accuracy(),
            top3_accuracy: self.in_top as f64 / n,
            loss: self.loss(),
            per_class,
            confusion: self.confusion,
            history,
            train_samples,
            validation_samples: self.seen,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The final metrics from all the validation logits at once: how they were computed
    /// before [`Tally`], kept as its reference.
    fn measure_at_once(
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

    /// Made-up logits `[rows, classes]` (right more often than not) and labels, the same
    /// every time.
    fn made_up(rows: usize, classes: usize) -> (Tensor, Vec<i64>) {
        let labels: Vec<i64> = (0..rows)
            .map(|r| ((r * 31 + r / 7) % classes) as i64)
            .collect();
        let values: Vec<f32> = (0..rows * classes)
            .map(|i| {
                let (r, c) = (i / classes, i % classes);
                let hint = if c as i64 == labels[r] && r % 3 != 0 {
                    2.5
                } else {
                    0.0
                };
                (r as f32 * 7.3 + c as f32 * 1.9).sin() * 3.0 + hint
            })
            .collect();
        let logits = Tensor::from_slice(&values).view([rows as i64, classes as i64]);
        (logits, labels)
    }

    /// A tally of `logits` fed `chunk` rows at a time.
    fn tallied(logits: &Tensor, labels: &[i64], chunk: usize) -> Tally {
        let classes = logits.size()[1] as usize;
        let mut tally = Tally::new(classes, labels.len());
        for (c, part) in labels.chunks(chunk).enumerate() {
            let rows = logits.narrow(0, (c * chunk) as i64, part.len() as i64);
            tally.add(&rows, part).unwrap();
        }
        tally
    }

    #[test]
    fn tallying_chunk_by_chunk_measures_what_all_the_logits_at_once_measure() {
        let (logits, labels) = made_up(1000, 7);
        let classes: Vec<String> = (0..7).map(|c| format!("class {c}")).collect();
        let loss =
            f64::try_from(logits.cross_entropy_for_logits(&Tensor::from_slice(&labels))).unwrap();
        let at_once = measure_at_once(&classes, &logits, &labels, loss, Vec::new(), 9).unwrap();
        for chunk in [1000, 64, 7] {
            let tally = tallied(&logits, &labels, chunk);
            assert!(
                (tally.loss() - loss).abs() < 1e-5,
                "{} {loss}",
                tally.loss()
            );
            assert_eq!(tally.accuracy(), at_once.accuracy);
            let streamed = tally.metrics(&classes, Vec::new(), 9);
            // Neither all right nor all wrong: the confusion has entries off its diagonal.
            assert!(
                (0.2..0.9).contains(&at_once.accuracy),
                "{}",
                at_once.accuracy
            );
            assert_eq!(Metrics { loss, ..streamed }, at_once, "chunks of {chunk}");
        }
    }

    #[test]
    fn the_calibration_of_a_large_validation_set_is_fitted_on_a_bounded_even_sample() {
        let rows = 2 * CALIBRATION_SAMPLE + 5;
        let (logits, labels) = made_up(rows, 3);
        let tally = tallied(&logits, &labels, 512);
        // Every third row: rows 0, 3, 6, ...
        assert_eq!(tally.sample_labels.len(), rows.div_ceil(3));
        assert!(tally.sample_labels.len() <= CALIBRATION_SAMPLE);
        let every_third: Vec<i64> = labels.iter().step_by(3).copied().collect();
        assert_eq!(tally.sample_labels, every_third);
        assert_eq!(
            tally.sample_logits[1],
            Vec::<f32>::try_from(logits.get(3)).unwrap()
        );
        let metrics = tally.metrics(&["a".into(), "b".into(), "c".into()], Vec::new(), 1);
        assert_eq!(metrics.validation_samples, rows);
        let reliability = metrics.calibration.unwrap().reliability;
        assert_eq!(
            reliability.iter().map(|b| b.count).sum::<usize>(),
            rows.div_ceil(3)
        );
    }
}
