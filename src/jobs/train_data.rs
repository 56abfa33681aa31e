//! A training job's drawings, read from the stores without holding them: one walk over the
//! metadata builds the compact [`Catalog`] (a label and a group per drawing) and writes the
//! drawings' ids, one fixed-width line each, to `dataset-ids.txt` in the job's scratch
//! directory; a second walk reads every stroke record once to compute the dataset hash; the
//! trainer then reads each batch's strokes through [`StoredDrawings`], which finds a
//! drawing's id by its line in that file and its strokes in the blob store.
//!
//! The subset a job asks for is applied here: the evaluation split's drawings are left out
//! (never trained on), then at most `per_class_cap` drawings of each shape are kept (the
//! oldest, in id order); the store applies the rest of the filter (shapes, quality, flags,
//! time range).

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

use sha2::{Digest, Sha256};

use super::runner::JobContext;
use super::train_config::{DataSource, JobConfig};
use crate::domain::{DrawingId, Record};
use crate::ml::dataset::DatasetHasher;
use crate::ml::source::{Catalog, SourceError, StrokeSource, Strokes};
use crate::ml::synth;
use crate::service::evaluation;
use crate::service::quality::strokes_of;
use crate::store::{BlobStore, StoreError};

/// Synthetic doodles per shape in a starter dataset.
const STARTER_PER_CLASS: usize = 300;
/// The file of drawing ids in the job's scratch directory.
pub const IDS_FILE: &str = "dataset-ids.txt";
/// Bytes of one line of the ids file: a hyphenated UUID and a newline.
const ID_LINE: usize = 37;

/// Why a job's drawings cannot be read.
#[derive(Debug)]
pub enum SnapshotError {
    /// The stores failed (may pass).
    Store(StoreError),
    /// The drawings cannot be trained on as configured.
    Unusable(String),
}

impl From<StoreError> for SnapshotError {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}

impl From<std::io::Error> for SnapshotError {
    fn from(e: std::io::Error) -> Self {
        Self::Store(StoreError::from(e))
    }
}

/// What a job trains on: the catalog and where its strokes are.
pub struct TrainingData {
    pub catalog: Catalog,
    pub source: Box<dyn StrokeSource>,
}

/// Chooses the job's drawings, records exactly which ones (ids in a file, hash and counts
/// in the job row) and opens them for the trainer. Classes are the shapes present, sorted.
pub fn snapshot(
    ctx: &JobContext,
    job_id: i64,
    config: &JobConfig,
    dir: &Path,
) -> Result<TrainingData, SnapshotError> {
    if config.source == DataSource::Synthetic {
        let dataset = synth::starter_dataset(STARTER_PER_CLASS, config.seed);
        let catalog = dataset.catalog();
        let summary = serde_json::json!({
            "size": catalog.len(),
            "hash": catalog.hash,
            "source": "synthetic",
        });
        ctx.stores.jobs.record_dataset(job_id, &summary)?;
        return Ok(TrainingData {
            catalog,
            source: Box::new(dataset),
        });
    }
    std::fs::create_dir_all(dir)?;
    let ids_path = dir.join(IDS_FILE);
    let walk = walk_drawings(ctx, config, &ids_path)?;
    let Walk {
        shapes,
        shape_of,
        groups,
        counts,
        held_out,
        capped,
        missing,
        rule,
    } = walk;
    // Classes sorted by name (a shape met whose drawings were all capped or missing is
    // none); a label indexes them.
    let mut order: Vec<usize> = (0..shapes.len()).filter(|&s| counts[s] > 0).collect();
    order.sort_by(|&a, &b| shapes[a].cmp(&shapes[b]));
    let mut label_of_shape = vec![0u32; shapes.len()];
    for (label, &shape) in order.iter().enumerate() {
        label_of_shape[shape] = label as u32;
    }
    let classes: Vec<String> = order.iter().map(|&i| shapes[i].clone()).collect();
    if classes.len() < 2 {
        return Err(SnapshotError::Unusable(format!(
            "training needs drawings of at least two shapes; found {} drawing(s) of {} shape(s)",
            groups.len(),
            classes.len()
        )));
    }
    let labels: Vec<u32> = shape_of
        .into_iter()
        .map(|shape| label_of_shape[shape as usize])
        .collect();
    let source = StoredDrawings::open(&ids_path, ctx.stores.blobs.clone())?;
    let hash = hash_stored(&source, &classes, &labels, &groups)?;
    let mut per_class = serde_json::Map::new();
    for &shape in &order {
        per_class.insert(shapes[shape].clone(), counts[shape].into());
    }
    let summary = serde_json::json!({
        "size": labels.len(),
        "hash": hash,
        "per_class": per_class,
        "ids_file": ids_path,
        "evaluation_held_out": held_out,
        "evaluation_rule": rule,
        "left_out_by_per_class_cap": capped,
        "missing_strokes": missing,
    });
    ctx.stores.jobs.record_dataset(job_id, &summary)?;
    Ok(TrainingData {
        catalog: Catalog {
            classes,
            labels,
            groups,
            hash,
        },
        source: Box::new(source),
    })
}

/// What the walk over the metadata found.
struct Walk {
    /// Shape names in the order first met.
    shapes: Vec<String>,
    /// Each kept drawing's index into `shapes`.
    shape_of: Vec<u32>,
    /// Each kept drawing's group (a hash of its player).
    groups: Vec<u64>,
    /// Kept drawings per entry of `shapes`.
    counts: Vec<usize>,
    /// Drawings left out because they belong to the evaluation split.
    held_out: usize,
    /// Drawings left out by the per-class cap.
    capped: usize,
    /// Drawings left out because their strokes are missing.
    missing: usize,
    /// The evaluation split's rule.
    rule: evaluation::SplitRule,
}

/// Walks the job's drawings once, keeping a label and a group of each in memory and its id
/// in the ids file at `ids_path`.
fn walk_drawings(
    ctx: &JobContext,
    config: &JobConfig,
    ids_path: &Path,
) -> Result<Walk, SnapshotError> {
    // The frozen evaluation split is never trained on (see `service::evaluation`).
    let rule = evaluation::current_rule(&ctx.stores)?;
    let mut ids = BufWriter::new(File::create(ids_path)?);
    let mut shape_index: HashMap<String, u32> = HashMap::new();
    let mut walk = Walk {
        shapes: Vec::new(),
        shape_of: Vec::new(),
        groups: Vec::new(),
        counts: Vec::new(),
        held_out: 0,
        capped: 0,
        missing: 0,
        rule,
    };
    let cap = config.per_class_cap.unwrap_or(usize::MAX);
    ctx.stores
        .metadata
        .visit_training_drawings(&config.filter(), &mut |d| {
            if rule.holds_out(&d) {
                walk.held_out += 1;
                return Ok(());
            }
            let shape = match shape_index.get(&d.shape) {
                Some(&shape) => shape,
                None => {
                    let shape = walk.shapes.len() as u32;
                    walk.shapes.push(d.shape.clone());
                    walk.counts.push(0);
                    shape_index.insert(d.shape, shape);
                    shape
                }
            };
            if walk.counts[shape as usize] >= cap {
                walk.capped += 1;
                return Ok(());
            }
            if ctx.stores.blobs.get(d.id)?.is_none() {
                tracing::warn!(id = %d.id, "a drawing's strokes are missing; left out of training");
                walk.missing += 1;
                return Ok(());
            }
            walk.counts[shape as usize] += 1;
            walk.shape_of.push(shape);
            walk.groups.push(group_of(&d.player));
            writeln!(ids, "{}", d.id).map_err(StoreError::from)?;
            Ok(())
        })?;
    ids.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    Ok(walk)
}

/// A player's group: the first 8 bytes of the SHA-256 of their id.
fn group_of(player: &str) -> u64 {
    let digest = Sha256::digest(player.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(first)
}

/// The dataset hash (the same as `Dataset::hash` of these drawings held in memory), from
/// one pass over their stroke records.
fn hash_stored(
    source: &StoredDrawings,
    classes: &[String],
    labels: &[u32],
    groups: &[u64],
) -> Result<String, SnapshotError> {
    let mut hasher = DatasetHasher::new(classes, labels.len());
    let mut lines = BufReader::new(File::open(&source.path)?).lines();
    for (index, (&label, &group)) in labels.iter().zip(groups).enumerate() {
        let line = lines.next().transpose()?.ok_or_else(|| {
            SnapshotError::Store(StoreError::Corrupt("the ids file is short".into()))
        })?;
        let strokes = source
            .read(index, &line)
            .map_err(|e| SnapshotError::Store(StoreError::Corrupt(e.to_string())))?;
        hasher.add(label as usize, group, &strokes);
    }
    Ok(hasher.finish())
}

/// A job's drawings in the stores, by their line in the ids file.
pub struct StoredDrawings {
    /// The ids file.
    path: std::path::PathBuf,
    /// The same, open for reads at an offset (from many threads at once).
    file: File,
    /// Where the stroke records are.
    blobs: Arc<dyn BlobStore>,
}

impl StoredDrawings {
    /// Opens the ids file at `path` over `blobs`.
    pub fn open(path: &Path, blobs: Arc<dyn BlobStore>) -> std::io::Result<Self> {
        Ok(Self {
            path: path.to_owned(),
            file: File::open(path)?,
            blobs,
        })
    }

    /// The strokes of the drawing whose id is `text`, the `index`-th of the file.
    fn read(&self, index: usize, text: &str) -> Result<Strokes, SourceError> {
        let fail = |message: String, transient: bool| SourceError {
            index,
            message,
            transient,
        };
        let id: DrawingId = text
            .trim_end()
            .parse()
            .map_err(|e| fail(format!("bad id in the ids file: {e}"), false))?;
        let bytes = self
            .blobs
            .get(id)
            .map_err(|e| fail(e.to_string(), true))?
            // Deleted since the snapshot: the job runs again on a fresh one.
            .ok_or_else(|| fail(format!("the strokes of {id} are gone"), true))?;
        let record =
            Record::decode(&bytes).map_err(|e| fail(format!("drawing {id}: {e}"), false))?;
        Ok(strokes_of(&record.drawing))
    }
}

impl StrokeSource for StoredDrawings {
    fn strokes(&self, index: usize) -> Result<Strokes, SourceError> {
        let mut line = [0u8; ID_LINE];
        self.file
            .read_exact_at(&mut line, (index * ID_LINE) as u64)
            .map_err(|e| SourceError {
                index,
                message: format!("cannot read the ids file: {e}"),
                transient: true,
            })?;
        let text = std::str::from_utf8(&line).unwrap_or_default();
        self.read(index, text)
    }
}
