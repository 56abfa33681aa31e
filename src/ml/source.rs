//! Where a training run's drawings come from, read one at a time: a [`Catalog`] (the class
//! names, the dataset hash, and [`Entries`]: each drawing's label and group, read by index
//! or in one streamed pass) and a [`StrokeSource`] the trainer asks for a drawing's strokes
//! when a batch needs them. Memory then holds the batches in flight and a few figures per
//! class and per player, never something per drawing: a training job's entries live in a
//! file in its scratch directory (see `jobs::train_data`), read with positioned reads.
//!
//! A [`Dataset`] is both, through [`InMemoryEntries`] (everything already in memory: tests,
//! the starter model, benches).

use super::dataset::Dataset;

/// A drawing's strokes, x and y in any coordinate space, y down.
pub type Strokes = Vec<Vec<[f32; 2]>>;

/// What the trainer knows of one drawing besides its strokes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    /// Its class: an index into [`Catalog::classes`].
    pub label: u32,
    /// Who drew it (see [`super::dataset::Sample::group`]); only the split needs it.
    pub group: u64,
}

/// Every drawing's [`Entry`], by index. Called from several rasterizing threads at once.
pub trait Entries: Sync {
    /// How many drawings.
    fn len(&self) -> usize;

    /// Whether there are none.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The entry of the drawing at `index`.
    fn entry(&self, index: usize) -> Result<Entry, SourceError>;

    /// Every entry in index order, in one streamed pass (how the split and the checks see
    /// them without holding them).
    fn visit(&self, visit: &mut dyn FnMut(usize, Entry)) -> Result<(), SourceError>;
}

/// What a training run knows of its drawings before it reads any strokes.
pub struct Catalog {
    /// Class names; a label indexes this list, and so does the model's output.
    pub classes: Vec<String>,
    /// Each drawing's label and group, by index.
    pub entries: Box<dyn Entries>,
    /// [`Dataset::hash`] of exactly these drawings, computed however they are stored.
    pub hash: String,
}

impl Catalog {
    /// How many drawings.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl std::fmt::Debug for Catalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Catalog")
            .field("classes", &self.classes)
            .field("len", &self.len())
            .field("hash", &self.hash)
            .finish()
    }
}

/// Entries held in memory, 12 bytes a drawing: for datasets that are in memory anyway.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InMemoryEntries {
    /// Each drawing's label.
    pub labels: Vec<u32>,
    /// Each drawing's group, as long as `labels`.
    pub groups: Vec<u64>,
}

impl Entries for InMemoryEntries {
    fn len(&self) -> usize {
        self.labels.len()
    }

    fn entry(&self, index: usize) -> Result<Entry, SourceError> {
        match (self.labels.get(index), self.groups.get(index)) {
            (Some(&label), Some(&group)) => Ok(Entry { label, group }),
            _ => Err(SourceError {
                index,
                message: "no such entry".into(),
                transient: false,
            }),
        }
    }

    fn visit(&self, visit: &mut dyn FnMut(usize, Entry)) -> Result<(), SourceError> {
        for (index, (&label, &group)) in self.labels.iter().zip(&self.groups).enumerate() {
            visit(index, Entry { label, group });
        }
        Ok(())
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
            entries: Box::new(self.entries()),
            hash: self.hash(),
        }
    }

    /// Every sample's label and group, in order.
    pub fn entries(&self) -> InMemoryEntries {
        InMemoryEntries {
            labels: self.labels(),
            groups: self.groups(),
        }
    }
}
