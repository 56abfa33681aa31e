//! A training job's drawings, read from the stores without holding them: one walk over the
//! metadata chooses them and writes one fixed-width binary record per drawing (its id, its
//! shape and its group) to `dataset-drawings.bin` in the job's scratch directory, keeping
//! only counts per shape in memory; a second pass reads every stroke record once to compute
//! the dataset hash; the trainer then reads each drawing's label and group
//! ([`Entries`]) and its strokes ([`StrokeSource`]) through [`StoredDrawings`], which finds
//! the drawing's record by its index (a positioned read: the file sits in the page cache,
//! not in the process's memory) and its strokes in the blob store.
//!
//! The subset a job asks for is applied here: the evaluation split's drawings are left out
//! (never trained on), then at most `per_class_cap` drawings of each shape are kept (the
//! oldest, in id order); the store applies the rest of the filter (shapes, quality, flags,
//! time range).

use std::collections::{BTreeSet, HashMap, HashSet};
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

use sha2::{Digest, Sha256};

use super::runner::JobContext;
use super::train_config::{DataSource, JobConfig};
use crate::domain::{DrawingId, Record};
use crate::ml::dataset::DatasetHasher;
use crate::ml::source::{Catalog, Entries, Entry, SourceError, StrokeSource, Strokes};
use crate::ml::synth;
use crate::service::evaluation;
use crate::service::quality::strokes_of;
use crate::store::{BlobStore, StoreError};

/// Synthetic doodles per shape in a starter dataset.
const STARTER_PER_CLASS: usize = 300;
/// The file of the job's drawings in its scratch directory.
pub const DRAWINGS_FILE: &str = "dataset-drawings.bin";
/// Bytes of one record of the drawings file: the id (16, big-endian), the shape's number in
/// the walk (4, little-endian) and the group (8, little-endian).
const RECORD: usize = 28;
/// Read buffer of a streamed pass over the drawings file.
const PASS_BUFFER: usize = 1 << 16;

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

impl From<SourceError> for SnapshotError {
    fn from(e: SourceError) -> Self {
        Self::Store(StoreError::Corrupt(e.to_string()))
    }
}

/// What a job trains on: the catalog and where its strokes are.
pub struct TrainingData {
    pub catalog: Catalog,
    pub source: Box<dyn StrokeSource>,
}

/// Chooses the job's drawings, records exactly which ones (a file of records, hash and
/// counts in the job row) and opens them for the trainer. Classes are the shapes present,
/// sorted.
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
    let path = dir.join(DRAWINGS_FILE);
    let Walk {
        shapes,
        counts,
        held_out,
        held_out_shapes,
        capped,
        missing,
        rule,
    } = walk_drawings(ctx, config, &path)?;
    // Classes sorted by name (a shape met whose drawings were all capped or missing is
    // none); a label indexes them.
    let mut order: Vec<usize> = (0..shapes.len()).filter(|&s| counts[s] > 0).collect();
    order.sort_by(|&a, &b| shapes[a].cmp(&shapes[b]));
    let mut label_of_shape = vec![0u32; shapes.len()];
    for (label, &shape) in order.iter().enumerate() {
        label_of_shape[shape] = label as u32;
    }
    let classes: Vec<String> = order.iter().map(|&i| shapes[i].clone()).collect();
    let only_in_evaluation = only_in_evaluation(held_out_shapes, &classes);
    if !only_in_evaluation.is_empty() {
        tracing::warn!(
            job = job_id,
            shapes = ?only_in_evaluation,
            "every drawing of these shapes is in the evaluation split: this model will not know them"
        );
    }
    let size: usize = counts.iter().sum();
    if classes.len() < 2 {
        return Err(SnapshotError::Unusable(format!(
            "training needs drawings of at least two shapes; found {size} drawing(s) of {} shape(s)",
            classes.len()
        )));
    }
    let open = || StoredDrawings::open(&path, ctx.stores.blobs.clone(), label_of_shape.clone());
    let source = open()?;
    let hash = hash_stored(&source, &classes)?;
    let mut per_class = serde_json::Map::new();
    for &shape in &order {
        per_class.insert(shapes[shape].clone(), counts[shape].into());
    }
    let summary = serde_json::json!({
        "size": size,
        "hash": hash,
        "per_class": per_class,
        "drawings_file": path,
        "evaluation_held_out": held_out,
        "evaluation_rule": rule,
        "classes_only_in_evaluation": only_in_evaluation,
        "left_out_by_per_class_cap": capped,
        "missing_strokes": missing,
    });
    ctx.stores.jobs.record_dataset(job_id, &summary)?;
    Ok(TrainingData {
        catalog: Catalog {
            classes,
            entries: Box::new(open()?),
            hash,
        },
        source: Box::new(source),
    })
}

/// What the walk over the metadata found (each kept drawing is a record in the file).
struct Walk {
    /// Shape names in the order first met; a record's shape number indexes this list.
    shapes: Vec<String>,
    /// Kept drawings per entry of `shapes`.
    counts: Vec<usize>,
    /// Drawings left out because they belong to the evaluation split.
    held_out: usize,
    /// The shapes of those drawings.
    held_out_shapes: BTreeSet<String>,
    /// Drawings left out by the per-class cap.
    capped: usize,
    /// Drawings left out because their strokes are missing.
    missing: usize,
    /// The evaluation split's rule.
    rule: evaluation::SplitRule,
}

/// Walks the job's drawings once, writing a record of each kept one to the file at `path`
/// and counting them per shape.
fn walk_drawings(ctx: &JobContext, config: &JobConfig, path: &Path) -> Result<Walk, SnapshotError> {
    // The frozen evaluation split is never trained on (see `service::evaluation`).
    let rule = evaluation::current_rule(&ctx.stores)?;
    let mut file = BufWriter::new(File::create(path)?);
    let mut shape_index: HashMap<String, u32> = HashMap::new();
    let mut walk = Walk {
        shapes: Vec::new(),
        counts: Vec::new(),
        held_out: 0,
        held_out_shapes: BTreeSet::new(),
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
                walk.held_out_shapes.insert(d.shape);
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
            file.write_all(&encode(d.id, shape, group_of(&d.player)))
                .map_err(StoreError::from)?;
            Ok(())
        })?;
    file.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    Ok(walk)
}

/// The shapes with drawings in the evaluation split and none to train on, by name: a shape
/// of a few drawings can lose them all to the split (each is held out with a chance of one in
/// five), and then the model does not know it. The job's dataset names them.
fn only_in_evaluation(held_out_shapes: BTreeSet<String>, classes: &[String]) -> Vec<String> {
    let trained: HashSet<&str> = classes.iter().map(String::as_str).collect();
    held_out_shapes
        .into_iter()
        .filter(|shape| !trained.contains(shape.as_str()))
        .collect()
}

/// A player's group: the first 8 bytes of the SHA-256 of their id.
fn group_of(player: &str) -> u64 {
    let digest = Sha256::digest(player.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(first)
}

/// One record of the drawings file.
fn encode(id: DrawingId, shape: u32, group: u64) -> [u8; RECORD] {
    let mut record = [0u8; RECORD];
    record[..16].copy_from_slice(&id.to_bytes());
    record[16..20].copy_from_slice(&shape.to_le_bytes());
    record[20..].copy_from_slice(&group.to_le_bytes());
    record
}

/// A record's id, shape number and group.
fn decode(record: &[u8; RECORD]) -> (DrawingId, u32, u64) {
    let mut id = [0u8; 16];
    id.copy_from_slice(&record[..16]);
    let mut shape = [0u8; 4];
    shape.copy_from_slice(&record[16..20]);
    let mut group = [0u8; 8];
    group.copy_from_slice(&record[20..]);
    (
        DrawingId::from_bytes(id),
        u32::from_le_bytes(shape),
        u64::from_le_bytes(group),
    )
}

/// The dataset hash (the same as `Dataset::hash` of these drawings held in memory), from
/// one pass over their stroke records.
fn hash_stored(source: &StoredDrawings, classes: &[String]) -> Result<String, SnapshotError> {
    let mut hasher = DatasetHasher::new(classes, source.len());
    let mut failed = None;
    source.visit_records(&mut |index, id, entry| {
        if failed.is_some() {
            return;
        }
        match source.read(index, id) {
            Ok(strokes) => hasher.add(entry.label as usize, entry.group, &strokes),
            Err(e) => failed = Some(e),
        }
    })?;
    match failed {
        Some(e) => Err(SnapshotError::Store(StoreError::Corrupt(e.to_string()))),
        None => Ok(hasher.finish()),
    }
}

/// A job's drawings in the stores, by their record in the drawings file.
pub struct StoredDrawings {
    /// The drawings file, open for reads at an offset (from many threads at once).
    file: File,
    /// The records in the file.
    len: usize,
    /// The label of each shape number a record holds.
    label_of_shape: Vec<u32>,
    /// Where the stroke records are.
    blobs: Arc<dyn BlobStore>,
}

impl StoredDrawings {
    /// Opens the drawings file at `path` over `blobs`; `label_of_shape` turns the records'
    /// shape numbers into labels.
    pub fn open(
        path: &Path,
        blobs: Arc<dyn BlobStore>,
        label_of_shape: Vec<u32>,
    ) -> std::io::Result<Self> {
        let file = File::open(path)?;
        let bytes = file.metadata()?.len() as usize;
        if bytes % RECORD != 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("{} is not a whole number of records", path.display()),
            ));
        }
        Ok(Self {
            file,
            len: bytes / RECORD,
            label_of_shape,
            blobs,
        })
    }

    /// The entry of a record's shape number and group.
    fn entry_of(&self, index: usize, shape: u32, group: u64) -> Result<Entry, SourceError> {
        let label = *self
            .label_of_shape
            .get(shape as usize)
            .ok_or_else(|| SourceError {
                index,
                message: format!("shape number {shape} is unknown"),
                transient: false,
            })?;
        Ok(Entry { label, group })
    }

    /// The id and entry of the drawing at `index`, by a positioned read.
    fn record(&self, index: usize) -> Result<(DrawingId, Entry), SourceError> {
        let mut record = [0u8; RECORD];
        self.file
            .read_exact_at(&mut record, (index * RECORD) as u64)
            .map_err(|e| SourceError {
                index,
                message: format!("cannot read the drawings file: {e}"),
                transient: true,
            })?;
        let (id, shape, group) = decode(&record);
        Ok((id, self.entry_of(index, shape, group)?))
    }

    /// Every record in order, from one buffered pass over the file.
    fn visit_records(
        &self,
        visit: &mut dyn FnMut(usize, DrawingId, Entry),
    ) -> Result<(), SourceError> {
        let fail = |index: usize, e: std::io::Error| SourceError {
            index,
            message: format!("cannot read the drawings file: {e}"),
            transient: true,
        };
        let file = self.file.try_clone().map_err(|e| fail(0, e))?;
        let mut reader = BufReader::with_capacity(PASS_BUFFER, ReadFrom { file, at: 0 });
        let mut record = [0u8; RECORD];
        for index in 0..self.len {
            reader.read_exact(&mut record).map_err(|e| fail(index, e))?;
            let (id, shape, group) = decode(&record);
            visit(index, id, self.entry_of(index, shape, group)?);
        }
        Ok(())
    }

    /// The strokes of the drawing `id`, the `index`-th of the file.
    fn read(&self, index: usize, id: DrawingId) -> Result<Strokes, SourceError> {
        let fail = |message: String, transient: bool| SourceError {
            index,
            message,
            transient,
        };
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

/// A file read from an offset of its own with positioned reads, so that a streamed pass
/// does not move the offset other readers of the same open file share.
struct ReadFrom {
    /// The file.
    file: File,
    /// Where the next read starts.
    at: u64,
}

impl Read for ReadFrom {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.file.read_at(buf, self.at)?;
        self.at += n as u64;
        Ok(n)
    }
}

impl Entries for StoredDrawings {
    fn len(&self) -> usize {
        self.len
    }

    fn entry(&self, index: usize) -> Result<Entry, SourceError> {
        self.record(index).map(|(_, entry)| entry)
    }

    fn visit(&self, visit: &mut dyn FnMut(usize, Entry)) -> Result<(), SourceError> {
        self.visit_records(&mut |index, _, entry| visit(index, entry))
    }
}

impl StrokeSource for StoredDrawings {
    fn strokes(&self, index: usize) -> Result<Strokes, SourceError> {
        let (id, _) = self.record(index)?;
        self.read(index, id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ml::dataset::{self, Dataset};
    use crate::store::SledBlobStore;

    /// `dataset`'s drawings as a drawings file in `dir`, its shape numbers the labels in
    /// reverse (as a walk that met the shapes in another order than their names' writes
    /// them), opened over an empty blob store.
    fn stored(dataset: &Dataset, dir: &Path) -> StoredDrawings {
        let classes = dataset.classes.len() as u32;
        let path = dir.join(DRAWINGS_FILE);
        let mut file = BufWriter::new(File::create(&path).unwrap());
        for (i, sample) in dataset.samples.iter().enumerate() {
            let shape = classes - 1 - sample.label as u32;
            let id = DrawingId::from_u128(1000 + i as u128);
            file.write_all(&encode(id, shape, sample.group)).unwrap();
        }
        file.into_inner().unwrap().sync_all().unwrap();
        let blobs = Arc::new(SledBlobStore::open(&dir.join("strokes")).unwrap());
        let label_of_shape = (0..classes).rev().collect();
        StoredDrawings::open(&path, blobs, label_of_shape).unwrap()
    }

    #[test]
    fn the_drawings_file_gives_the_same_entries_checks_and_split_as_the_dataset_in_memory() {
        let by_player = crate::ml::synth::starter_dataset(40, 3);
        let mut alone = crate::ml::synth::starter_dataset(40, 4);
        for sample in &mut alone.samples {
            sample.group = 9;
        }
        for (dataset, player_independent) in [(by_player, true), (alone, false)] {
            let dir = tempfile::tempdir().unwrap();
            let file = stored(&dataset, dir.path());
            let memory = dataset.entries();
            assert_eq!(file.len(), memory.len());
            let mut streamed = Vec::new();
            file.visit(&mut |i, entry| streamed.push((i, entry)))
                .unwrap();
            for (i, entry) in streamed {
                assert_eq!(entry, memory.entry(i).unwrap());
                assert_eq!(file.entry(i).unwrap(), entry, "read by index");
            }
            assert_eq!(
                dataset::validate_entries(&dataset.classes, &file).unwrap(),
                dataset::validate_entries(&dataset.classes, &memory).unwrap()
            );
            let sides = dataset::split_entries(&file, 5, 0.2, 11).unwrap();
            assert_eq!(sides, dataset::split_entries(&memory, 5, 0.2, 11).unwrap());
            assert_eq!(sides.player_independent, player_independent);
            assert_eq!(sides.to_split(), dataset::split(&dataset, 0.2, 11).unwrap());
        }
    }

    #[test]
    fn a_drawings_file_cut_mid_record_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(DRAWINGS_FILE);
        std::fs::write(&path, [0u8; RECORD + 3]).unwrap();
        let blobs = Arc::new(SledBlobStore::open(&dir.path().join("strokes")).unwrap());
        assert!(StoredDrawings::open(&path, blobs, vec![0]).is_err());
    }
}
