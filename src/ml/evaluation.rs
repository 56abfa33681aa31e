//! What a trained model is worth: per-epoch records and the final validation measurements
//! (accuracy, top-3 accuracy, loss, per-class precision and recall, confusion matrix),
//! computed from the validation logits.

use serde::{Deserialize, Serialize};
use tch::{TchError, Tensor};

/// How many of the best guesses count for the top-k accuracy.
const TOP_K: i64 = 3;

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
    Ok(Metrics {
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
