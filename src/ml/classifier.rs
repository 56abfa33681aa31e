//! In-memory inference: a verified model artifact loaded on the CPU, in eval mode, warmed
//! up, that turns strokes into class probabilities with the same rasterizer training used
//! (and, for a model that reads them, the same geometric features of the strokes), and says
//! when it is unsure.
//!
//! # Unsure
//! The probabilities are calibrated: the logits are divided by the temperature fitted on the
//! validation set at training time (see `evaluation::Calibration`) before the softmax. When
//! the best calibrated probability is below the model's `unsure_below`, the model declines to
//! commit ([`Classifier::is_unsure`]): the answer still ranks every class, but callers say
//! "not sure" instead of naming a shape. Models made before calibration existed use a
//! temperature of 1 and [`evaluation::UNSURE_BELOW`].
//!
//! # Threads
//! A [`Classifier`] is `Send` but not `Sync` (it holds tch tensors, which are `Send` but not
//! `Sync`). The server must give it one owner: a dedicated inference thread that receives
//! drawings over a channel and answers over a oneshot is the intended shape (it also keeps
//! the async runtime free); a `Mutex<Classifier>` used from `spawn_blocking` works too. A
//! plain `Arc<Classifier>` does not compile across threads, by design. To activate another
//! model, load it (on the owner thread), then replace the owned value: requests queued
//! before the swap get the old model, later ones the new.
//!
//! Inference runs on [`INFERENCE_THREADS`] torch intra-op thread(s): one small drawing is
//! faster on one core than split across several, and it leaves the other cores to HTTP and
//! training. Torch keeps that count per OS thread (a fresh thread inherits the value last set
//! anywhere), so every call checks and, when needed, sets it for the calling thread; a
//! training run on another thread sets its own.

use std::path::Path;

use tch::{Device, Kind, TchError};

use super::artifact::{self, ArtifactError, LoadedModel, Manifest};
use super::evaluation;
use super::geometry::FeatureSet;
use super::net::{geometry_tensor, input_tensor};
use super::raster::{self, RasterError};

/// Torch intra-op threads for inference, set on the loading thread.
pub const INFERENCE_THREADS: i32 = 1;

/// Forward passes run at load so the first real request does not pay for lazy allocation.
const WARMUP_RUNS: usize = 3;

/// A loaded model that classifies drawings; see the module docs for how to share it.
#[derive(Debug)]
pub struct Classifier {
    /// The verified model; its network runs in eval mode only.
    model: LoadedModel,
}

/// Why drawings could not be classified.
#[derive(Debug, thiserror::Error)]
pub enum ClassifyError {
    /// Drawing `index` (0 for a single drawing) cannot be rasterized (empty, non-finite).
    #[error("drawing {index} cannot be rasterized: {source}")]
    Raster {
        /// Index of the drawing in the batch.
        index: usize,
        /// Why.
        source: RasterError,
    },
    /// libtorch failed.
    #[error("torch: {0}")]
    Torch(#[from] TchError),
}

impl Classifier {
    /// Loads and verifies the artifact in `dir` on the CPU, then warms it up. Fails with the
    /// artifact's typed error when the model is corrupt or does not fit this build.
    pub fn load(dir: &Path) -> Result<Classifier, ArtifactError> {
        use_inference_threads();
        let model = artifact::load(dir, Device::Cpu)?;
        let classifier = Classifier { model };
        let size = classifier.input_size();
        let channels = classifier.raster_style().channels();
        let blank = vec![0.0; channels * (size * size) as usize];
        let features = classifier.model.manifest.training.geometry_features();
        let geometry = geometry_tensor(&vec![0.0; features], 1, features, Device::Cpu);
        for _ in 0..WARMUP_RUNS {
            let _logits = tch::no_grad(|| {
                let xs = input_tensor(&blank, 1, channels, size, Device::Cpu);
                classifier
                    .model
                    .net
                    .forward_with(&xs, geometry.as_ref(), false)
            });
        }
        Ok(classifier)
    }

    /// The model's manifest (version-independent facts: classes, metrics, ...).
    pub fn manifest(&self) -> &Manifest {
        &self.model.manifest
    }

    /// Class names in output order.
    pub fn classes(&self) -> &[String] {
        &self.model.manifest.classes
    }

    /// Side of the images the model reads.
    pub fn input_size(&self) -> u32 {
        self.model.manifest.input_size
    }

    /// How the model's images are drawn: its own, as it was trained (see
    /// [`raster::RasterStyle`]).
    pub fn raster_style(&self) -> &raster::RasterStyle {
        &self.model.manifest.training.raster
    }

    /// The geometric features the model reads beside its image, if any (see
    /// [`super::geometry`]).
    pub fn geometry(&self) -> Option<FeatureSet> {
        self.model.manifest.training.geometry
    }

    /// Every class with its probability (softmax), most likely first.
    pub fn classify(&self, strokes: &[Vec<[f32; 2]>]) -> Result<Vec<(String, f32)>, ClassifyError> {
        let mut all = self.classify_batch(&[strokes])?;
        // `classify_batch` returns one result per drawing, and there was one.
        Ok(all.pop().expect("one result for one drawing"))
    }

    /// [`Classifier::classify`] for several drawings in one forward pass (faster per drawing);
    /// results are in input order. One bad drawing fails the batch, naming its index.
    pub fn classify_batch<S: AsRef<[Vec<[f32; 2]>]>>(
        &self,
        drawings: &[S],
    ) -> Result<Vec<Vec<(String, f32)>>, ClassifyError> {
        if drawings.is_empty() {
            return Ok(Vec::new());
        }
        use_inference_threads();
        let size = self.input_size();
        let style = self.raster_style();
        let pixels = style.channels() * (size * size) as usize;
        let mut buffer = vec![0.0; drawings.len() * pixels];
        let features = self.geometry().map_or(0, FeatureSet::count);
        let mut geometry = vec![0.0; drawings.len() * features];
        for (index, (strokes, out)) in drawings.iter().zip(buffer.chunks_mut(pixels)).enumerate() {
            raster::rasterize_styled_into(strokes.as_ref(), size, style, out)
                .map_err(|source| ClassifyError::Raster { index, source })?;
            if let Some(set) = self.geometry() {
                let row = &mut geometry[index * features..(index + 1) * features];
                set.compute_into(strokes.as_ref(), row);
            }
        }
        let probabilities = tch::no_grad(|| {
            let xs = input_tensor(&buffer, drawings.len(), style.channels(), size, Device::Cpu);
            let geometry = geometry_tensor(&geometry, drawings.len(), features, Device::Cpu);
            self.model
                .net
                .forward_with(&xs, geometry.as_ref(), false)
                .divide_scalar(self.temperature())
                .softmax(-1, Kind::Float)
        });
        let rows = Vec::<Vec<f32>>::try_from(&probabilities)?;
        Ok(rows.into_iter().map(|row| self.ranked(row)).collect())
    }

    /// The temperature the logits are divided by (1 for uncalibrated models).
    pub fn temperature(&self) -> f64 {
        self.model
            .manifest
            .metrics
            .calibration
            .as_ref()
            .map_or(1.0, |c| c.temperature)
    }

    /// The calibrated top probability below which the model is unsure.
    pub fn unsure_below(&self) -> f64 {
        self.model
            .manifest
            .metrics
            .calibration
            .as_ref()
            .map_or(evaluation::UNSURE_BELOW, |c| c.unsure_below)
    }

    /// Whether the model declines to commit to the best class of `ranked` (an answer of
    /// [`Classifier::classify`], most likely first); see the module docs.
    pub fn is_unsure(&self, ranked: &[(String, f32)]) -> bool {
        ranked
            .first()
            .is_none_or(|(_, p)| f64::from(*p) < self.unsure_below())
    }

    /// Pairs each probability with its class name, most likely first.
    fn ranked(&self, probabilities: Vec<f32>) -> Vec<(String, f32)> {
        let mut ranked: Vec<(String, f32)> =
            self.classes().iter().cloned().zip(probabilities).collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
        ranked
    }
}

/// Sets torch's intra-op threads for the calling thread to [`INFERENCE_THREADS`] unless
/// they already are (the check costs nanoseconds, the setting a little more).
fn use_inference_threads() {
    if tch::get_num_threads() != INFERENCE_THREADS {
        tch::set_num_threads(INFERENCE_THREADS);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_classifier_can_move_to_its_owner_thread() {
        fn assert_send<T: Send>() {}
        assert_send::<Classifier>();
    }
}
