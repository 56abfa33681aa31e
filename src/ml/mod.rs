//! Machine learning for Doodlebox: from strokes to pixels to a trained CNN to answers.
//!
//! - [`raster`]: the one rasterizer, shared by training and inference (its version is
//!   recorded in every model).
//! - [`augment`]: random but seeded changes to the vectors before rasterizing, for training.
//! - [`geometry`]: scale-invariant features of the strokes (corners, turns, closedness,
//!   roundness, convexity, directions) that a model may read beside its image.
//! - [`synth`]: procedural doodles of the default shapes and scribbles, for the starter
//!   model and tests.
//! - [`net`]: the CNNs (the small original and a wide one), chosen per run by name.
//! - [`dataset`]: labelled drawings, their hash, the split by class and by player (or, for
//!   one player or a lopsided set, a stratified random one).
//! - [`source`]: the catalog of a run's drawings (each one's label and group, read by index
//!   or streamed, in memory or from a file), and the source it reads each batch's strokes
//!   from (a `Dataset` in memory, or the stores).
//! - [`side_map`]: which side of the split each drawing is on, one bit a drawing.
//! - [`permutation`]: a seeded shuffle of `0..n` computed a position at a time, so that an
//!   epoch's order costs no memory per drawing.
//! - [`batches`]: prepares batches on worker threads, in order, a bounded number ahead.
//! - [`types`]: what a run is asked to do and what it produces, shared by `train`,
//!   `checkpoint` and `artifact` (so that none of them needs the others' internals).
//! - [`train`]: the training loop, its progress and cancellation.
//! - [`checkpoint`]: a run's state after each epoch, to resume from.
//! - [`evaluation`]: per-epoch records and the final validation measurements, Wilson
//!   intervals, and the calibration (temperature, unsure threshold, ECE, reliability).
//! - [`confusion_picture`]: the confusion matrix drawn as a PNG heat map.
//! - [`confusions`]: the most frequent mistakes read off the confusion matrix.
//! - [`reliability_picture`]: the reliability diagram (calibration) drawn as a PNG.
//! - [`artifact`]: a model on disk (weights + manifest), written atomically, verified at load.
//! - [`classifier`]: a loaded model answering classify requests from memory, calibrated,
//!   saying when it is unsure.
//!
//! A training job flows `source::Catalog` + `source::StrokeSource` (or a `dataset::Dataset`)
//! → `train::train_from` (which uses `raster`, `augment`
//! and `net`) → `artifact::write`; serving flows `artifact` → `classifier::Classifier::load`
//! → `Classifier::classify` (which uses `raster`). Nothing here touches the database or HTTP.

pub mod artifact;
pub mod augment;
pub mod batches;
pub mod checkpoint;
pub mod classifier;
pub mod confusion_picture;
pub mod confusions;
pub mod dataset;
pub mod evaluation;
pub mod geometry;
pub mod net;
pub mod permutation;
pub mod raster;
pub mod reliability_picture;
pub mod side_map;
pub mod source;
pub mod synth;
pub mod train;
pub mod types;
