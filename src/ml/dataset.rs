//! The data a training run learns from: labelled drawings grouped by who drew them, a hash
//! that identifies exactly that data, its checks, and the split into training and validation
//! sets by class and by group (so that one player's drawings never sit on both sides).

use std::collections::{BTreeMap, HashSet};

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::permutation::Permutation;
use super::side_map::SideMap;
use super::source::{Entries, SourceError};

/// Mixed into the seed for the split's shuffle, so that it differs from other uses of the
/// same seed.
const SPLIT_SALT: u64 = 0x5EED_5B11_7000_0001;

/// Fewer players than this cannot give a player-independent split worth the name: the
/// split falls back to a stratified random one.
pub const MIN_GROUPS: usize = 3;

/// When one player holds more than this share of the drawings, the split falls back to a
/// stratified random one: holding that player out would leave little to train on, and
/// keeping them in would leave little to validate on.
pub const LOPSIDED_SHARE: f64 = 0.5;

/// Steps the fallback split's key from one class to the next (an odd constant, so that
/// every class gets its own permutation).
const CLASS_KEY_STEP: u64 = 0xA24B_AED4_963E_E407;

/// Why a dataset cannot be trained on.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DatasetError {
    /// Too few classes, a label out of range, a class with no drawings, ...
    #[error("invalid dataset: {0}")]
    Invalid(String),
    /// The drawings cannot be split into non-empty training and validation sets.
    #[error("cannot split the dataset: {0}")]
    Split(String),
}

/// One labelled drawing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// The strokes, x and y in any coordinate space, y down.
    pub strokes: Vec<Vec<[f32; 2]>>,
    /// Index into [`Dataset::classes`].
    pub label: usize,
    /// Who drew it (player id), so that one player's drawings never sit on both sides of
    /// the split. Use the drawing's own id for anonymous drawings.
    pub group: u64,
}

/// The drawings to train on, with the class names their labels index.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Dataset {
    /// Class names; a sample's `label` indexes this list, and so does the model's output.
    pub classes: Vec<String>,
    /// The drawings. Give them in a stable order (e.g. by drawing id): the order is part of
    /// the [`Dataset::hash`] and of the split.
    pub samples: Vec<Sample>,
}

impl Dataset {
    /// A SHA-256 (hex) of the classes and every sample's label, group and points, in order,
    /// recorded in checkpoints and model manifests to tell exactly what a model learned from.
    /// [`DatasetHasher`] computes the same hash one sample at a time.
    pub fn hash(&self) -> String {
        let mut hasher = DatasetHasher::new(&self.classes, self.samples.len());
        for sample in &self.samples {
            hasher.add(sample.label, sample.group, &sample.strokes);
        }
        hasher.finish()
    }

    /// Every sample's label, in order.
    pub fn labels(&self) -> Vec<u32> {
        self.samples.iter().map(|s| s.label as u32).collect()
    }

    /// Every sample's group, in order.
    pub fn groups(&self) -> Vec<u64> {
        self.samples.iter().map(|s| s.group).collect()
    }
}

/// [`Dataset::hash`] computed while the samples stream past, so that a training set read
/// from the stores is identified without holding it: give the classes and the number of
/// samples first, then every sample in order.
pub struct DatasetHasher {
    /// The hash so far.
    hasher: Sha256,
}

impl DatasetHasher {
    /// Starts the hash of `count` samples labelled with `classes`.
    pub fn new(classes: &[String], count: usize) -> Self {
        let mut h = Sha256::new();
        h.update((classes.len() as u64).to_le_bytes());
        for class in classes {
            h.update((class.len() as u64).to_le_bytes());
            h.update(class.as_bytes());
        }
        h.update((count as u64).to_le_bytes());
        Self { hasher: h }
    }

    /// Adds the next sample.
    pub fn add(&mut self, label: usize, group: u64, strokes: &[Vec<[f32; 2]>]) {
        let h = &mut self.hasher;
        h.update((label as u64).to_le_bytes());
        h.update(group.to_le_bytes());
        h.update((strokes.len() as u64).to_le_bytes());
        for stroke in strokes {
            h.update((stroke.len() as u64).to_le_bytes());
            for [x, y] in stroke {
                h.update(x.to_le_bytes());
                h.update(y.to_le_bytes());
            }
        }
    }

    /// The hex digest.
    pub fn finish(self) -> String {
        hex::encode(self.hasher.finalize())
    }
}

/// The indices of a dataset's samples on each side of the split: [`Sides`] as lists, for
/// datasets in memory anyway (tests, inspection).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Split {
    /// Samples to learn from.
    pub train: Vec<usize>,
    /// Samples held out to measure the model.
    pub validation: Vec<usize>,
    /// Whether every player is wholly on one side, so validation measures the model on
    /// people it never saw; false after the stratified random fallback (one player, few
    /// players, or one player holding most drawings).
    pub player_independent: bool,
}

/// The split as a training run holds it: one bit per drawing (see [`SideMap`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sides {
    /// Set for the drawings held out for validation.
    map: SideMap,
    /// See [`Split::player_independent`].
    pub player_independent: bool,
}

impl Sides {
    /// Drawings to learn from.
    pub fn train_len(&self) -> usize {
        self.map.zeros()
    }

    /// Drawings held out to measure the model.
    pub fn validation_len(&self) -> usize {
        self.map.ones()
    }

    /// The index of the `k`-th training drawing, in index order.
    pub fn train_at(&self, k: usize) -> usize {
        self.map.select(k, false)
    }

    /// The index of the `k`-th validation drawing, in index order.
    pub fn validation_at(&self, k: usize) -> usize {
        self.map.select(k, true)
    }

    /// Whether the drawing at `index` is held out for validation.
    pub fn is_validation(&self, index: usize) -> bool {
        self.map.get(index)
    }

    /// Both sides as lists of indices.
    pub fn to_split(&self) -> Split {
        let (mut train, mut validation) = (Vec::new(), Vec::new());
        for index in 0..self.map.len() {
            match self.map.get(index) {
                true => validation.push(index),
                false => train.push(index),
            }
        }
        Split {
            train,
            validation,
            player_independent: self.player_independent,
        }
    }
}

/// Refuses datasets that cannot be trained on: fewer than two classes, duplicate class
/// names, a label out of range, a class without drawings.
pub fn validate(dataset: &Dataset) -> Result<(), DatasetError> {
    validate_entries(&dataset.classes, &dataset.entries()).map(drop)
}

/// [`validate`] in one streamed pass over the entries; answers the drawings per class.
pub fn validate_entries(
    classes: &[String],
    entries: &dyn Entries,
) -> Result<Vec<usize>, DatasetError> {
    let bad = |m: String| Err(DatasetError::Invalid(m));
    if classes.len() < 2 {
        return bad("at least two classes are needed".into());
    }
    let mut sorted = classes.to_vec();
    sorted.sort();
    sorted.dedup();
    if sorted.len() != classes.len() {
        return bad("class names must be unique".into());
    }
    let mut counts = vec![0usize; classes.len()];
    let mut out_of_range = None;
    entries
        .visit(&mut |i, entry| match counts.get_mut(entry.label as usize) {
            Some(count) => *count += 1,
            None => {
                out_of_range.get_or_insert(i);
            }
        })
        .map_err(|e| DatasetError::Invalid(e.to_string()))?;
    if let Some(i) = out_of_range {
        return bad(format!("sample {i} has a label out of range"));
    }
    if let Some(empty) = counts.iter().position(|&c| c == 0) {
        return bad(format!("class {:?} has no drawings", classes[empty]));
    }
    Ok(counts)
}

/// Splits the samples into training and validation sets, stratified by class and by group:
/// [`split_entries`] on the dataset's labels and groups, as lists.
pub fn split(dataset: &Dataset, fraction: f64, seed: u64) -> Result<Split, DatasetError> {
    split_entries(&dataset.entries(), dataset.classes.len(), fraction, seed)
        .map(|sides| sides.to_split())
}

/// One player's drawings, counted: all the split needs of them.
#[derive(Debug, Default)]
struct GroupTally {
    /// Drawings per class (only the classes the player drew).
    per_class: BTreeMap<u32, usize>,
    /// Drawings in all.
    total: usize,
}

/// Splits the drawings `entries` lists into training and validation sets, stratified by
/// class and by group, from two streamed passes: memory holds a few counts per player and
/// per class, and one bit per drawing for the result.
///
/// Every group (player) goes wholly to one side, so no player's drawings are on both. Each
/// class aims at `round(fraction * count)` validation drawings (at most `count - 1`). The
/// groups, in the order of their keys, are shuffled with `seed`, then visited in turn: a
/// group goes to validation when more than half of its drawings fill a class's remaining
/// validation quota, otherwise to training. If that leaves validation empty, the group that
/// fits the quotas best goes to validation.
///
/// With fewer than [`MIN_GROUPS`] players, or one holding more than [`LOPSIDED_SHARE`] of the
/// drawings (a lab member collecting alone, a single imported file), the split is a
/// stratified random one by drawing instead, and `player_independent` says so: each class
/// holds out exactly its quota, chosen by a seeded [`Permutation`] of the class's drawings.
pub fn split_entries(
    entries: &dyn Entries,
    num_classes: usize,
    fraction: f64,
    seed: u64,
) -> Result<Sides, DatasetError> {
    let source_error = |e: SourceError| DatasetError::Split(e.to_string());
    let mut tallies: BTreeMap<u64, GroupTally> = BTreeMap::new();
    let mut counts = vec![0usize; num_classes];
    let mut out_of_range = false;
    entries
        .visit(&mut |_, entry| {
            let Some(count) = counts.get_mut(entry.label as usize) else {
                out_of_range = true;
                return;
            };
            *count += 1;
            let tally = tallies.entry(entry.group).or_default();
            *tally.per_class.entry(entry.label).or_default() += 1;
            tally.total += 1;
        })
        .map_err(source_error)?;
    if out_of_range {
        return Err(DatasetError::Invalid("a label is out of range".into()));
    }
    let mut quota: Vec<usize> = counts
        .iter()
        .map(|&c| ((c as f64 * fraction).round() as usize).min(c.saturating_sub(1)))
        .collect();
    let largest = tallies.values().map(|t| t.total).max().unwrap_or(0);
    if tallies.len() < MIN_GROUPS || largest as f64 > LOPSIDED_SHARE * entries.len() as f64 {
        drop(tallies);
        return stratified_random_split(entries, &counts, &quota, seed);
    }
    let mut groups: Vec<(u64, GroupTally)> = tallies.into_iter().collect();
    groups.shuffle(&mut StdRng::seed_from_u64(seed ^ SPLIT_SALT));

    // How well a group fits the remaining quotas: (drawings filling a quota, the others).
    let fit = |tally: &GroupTally, quota: &[usize]| -> (usize, usize) {
        let filling: usize = tally
            .per_class
            .iter()
            .map(|(&label, &n)| n.min(quota[label as usize]))
            .sum();
        (filling, tally.total - filling)
    };
    let mut to_validation = vec![false; groups.len()];
    for (g, (_, tally)) in groups.iter().enumerate() {
        let (filling, excess) = fit(tally, &quota);
        if filling > excess {
            to_validation[g] = true;
            for (&label, &n) in &tally.per_class {
                quota[label as usize] = quota[label as usize].saturating_sub(n);
            }
        }
    }
    if !to_validation.contains(&true) {
        let best = (0..groups.len())
            .max_by_key(|&g| {
                let (filling, excess) = fit(&groups[g].1, &quota);
                (filling as i64 - excess as i64, std::cmp::Reverse(g))
            })
            .unwrap_or(0);
        to_validation[best] = true;
    }
    let held_out: HashSet<u64> = groups
        .iter()
        .zip(&to_validation)
        .filter(|(_, &validation)| validation)
        .map(|((group, _), _)| *group)
        .collect();
    drop(groups);
    let mut map = SideMap::new(entries.len());
    entries
        .visit(&mut |i, entry| {
            if held_out.contains(&entry.group) {
                map.set(i);
            }
        })
        .map_err(source_error)?;
    map.finish();
    if map.zeros() == 0 {
        return Err(DatasetError::Split(
            "the training set would be empty".into(),
        ));
    }
    Ok(Sides {
        map,
        player_independent: true,
    })
}

/// The fallback split: each class's `quota` of its drawings to validation, chosen by a
/// permutation of the class's drawings (in index order) keyed by `seed` and the class; the
/// rest to training. Fails when no class can spare a drawing.
fn stratified_random_split(
    entries: &dyn Entries,
    counts: &[usize],
    quota: &[usize],
    seed: u64,
) -> Result<Sides, DatasetError> {
    if quota.iter().all(|&q| q == 0) {
        return Err(DatasetError::Split(
            "too few drawings to hold any out for validation; draw a few more of each shape".into(),
        ));
    }
    let orders: Vec<Permutation> = counts
        .iter()
        .enumerate()
        .map(|(class, &count)| {
            let key = (seed ^ SPLIT_SALT).wrapping_add((class as u64).wrapping_mul(CLASS_KEY_STEP));
            Permutation::new(count, key)
        })
        .collect();
    // Each class's drawings met so far: the next one's position among them.
    let mut seen = vec![0usize; counts.len()];
    let mut map = SideMap::new(entries.len());
    entries
        .visit(&mut |i, entry| {
            let class = entry.label as usize;
            if orders[class].at(seen[class]) < quota[class] {
                map.set(i);
            }
            seen[class] += 1;
        })
        .map_err(|e| DatasetError::Split(e.to_string()))?;
    map.finish();
    Ok(Sides {
        map,
        player_independent: false,
    })
}
