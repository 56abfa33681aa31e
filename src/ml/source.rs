//! Where a training run's drawings come from, read one at a time: a compact [`Catalog`]
//! (what the trainer needs of every drawing to validate, split and shuffle) and a
//! [`StrokeSource`] it asks for a drawing's strokes when a batch needs them. Memory then
//! holds the catalog and the batches in flight, never every drawing.
//!
//! A [`Dataset`] is both (everything already in memory: tests, the starter model, benches);
//! a training job streams its drawings from the stores (see `jobs::train_data`).

use super::dataset::Dataset;

/// A drawing's strokes, x and y in any coordinate space, y down.
pub type Strokes = Vec<Vec<[f32; 2]>>;

/// What the trainer holds of every drawing: its label and group, by index.
#[derive(Debug, Clone, PartialEq)]
pub struct Catalog {
    /// Class names; a label indexes this list, and so does the model's output.
    pub classes: Vec<String>,
    /// Each drawing's class, by index.
    pub labels: Vec<u32>,
    /// Who drew each drawing (see [`super::dataset::Sample::group`]); only the split needs it.
    pub groups: Vec<u64>,
    /// [`Dataset::hash`] of exactly these drawings, computed however they are stored.
    pub hash: String,
}

impl Catalog {
    /// How many drawings.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }
}

/// Why a drawing's strokes could not be read.
#[derive(Debug, thiserror::Error)]
#[error("drawing {index} cannot be read: {message}")]
pub struct SourceError {
    /// Index of the drawing in the catalog.
    pub index: usize,
    /// What went wrong.
    pub message: String,
    /// Whether trying again later may succeed (I/O trouble), rather than never (corrupt data).
    pub transient: bool,
}

/// Reads a drawing's strokes by catalog index. Called from several rasterizing threads at
/// once.
pub trait StrokeSource: Sync {
    /// The strokes of the drawing at `index`.
    fn strokes(&self, index: usize) -> Result<Strokes, SourceError>;
}

impl StrokeSource for Dataset {
    fn strokes(&self, index: usize) -> Result<Strokes, SourceError> {
        self.samples
            .get(index)
            .map(|s| s.strokes.clone())
            .ok_or_else(|| SourceError {
                index,
                message: "no such sample".into(),
                transient: false,
            })
    }
}

impl Dataset {
    /// The catalog of this dataset (computes its hash).
    pub fn catalog(&self) -> Catalog {
        Catalog {
            classes: self.classes.clone(),
            labels: self.labels(),
            groups: self.groups(),
            hash: self.hash(),
        }
    }
}
