//! Integration tests of the machine-learning module: training on synthetic doodles,
//! checkpoints and resume, model artifacts and their verification, the classifier, and
//! (ignored by default) accuracy figures on the real Quick, Draw! sample.

mod artifact;
mod classifier;
mod helpers;
mod quickdraw;
mod training;
mod unsure;
