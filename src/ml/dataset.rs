//! The data a training run learns from: labelled drawings grouped by who drew them, a hash
//! that identifies exactly that data, its checks, and the split into training and validation
//! sets by class and by group (so that one player's drawings never sit on both sides).

use std::collections::BTreeMap;

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

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

    /// Every sample's label, in order (the table [`split_table`] takes).
    pub fn labels(&self) -> Vec<u32> {
        self.samples.iter().map(|s| s.label as u32).collect()
    }

    /// Every sample's group, in order (the table [`split_table`] takes).
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

/// The indices of a dataset's samples on each side of the split.
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

/// Refuses datasets that cannot be trained on: fewer than two classes, duplicate class
/// names, a label out of range, a class without drawings.
pub fn validate(dataset: &Dataset) -> Result<(), DatasetError> {
    validate_table(&dataset.classes, &dataset.labels())
}

/// [`validate`] on the compact table: the class names and every sample's label.
pub fn validate_table(classes: &[String], labels: &[u32]) -> Result<(), DatasetError> {
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
    for (i, &label) in labels.iter().enumerate() {
        match counts.get_mut(label as usize) {
            Some(count) => *count += 1,
            None => return bad(format!("sample {i} has a label out of range")),
        }
    }
    if let Some(empty) = counts.iter().position(|&c| c == 0) {
        return bad(format!("class {:?} has no drawings", classes[empty]));
    }
    Ok(())
}

/// Splits the samples into training and validation sets, stratified by class and by group:
/// [`split_table`] on the dataset's labels and groups.
pub fn split(dataset: &Dataset, fraction: f64, seed: u64) -> Result<Split, DatasetError> {
    split_table(
        &dataset.labels(),
        &dataset.groups(),
        dataset.classes.len(),
        fraction,
        seed,
    )
}

/// Splits samples, given as their labels and groups (index `i` is sample `i`), into training
/// and validation sets, stratified by class and by group.
///
/// Every group (player) goes wholly to one side, so no player's drawings are on both. Each
/// class aims at `round(fraction * count)` validation drawings (at most `count - 1`). The
/// groups are shuffled with `seed`, then visited in turn: a group goes to validation when
/// more than half of its drawings fill a class's remaining validation quota, otherwise to
/// training. If that leaves validation empty, the group that fits the quotas best goes to
/// validation.
///
/// With fewer than [`MIN_GROUPS`] players, or one holding more than [`LOPSIDED_SHARE`] of the
/// drawings (a lab member collecting alone, a single imported file), the split is a
/// stratified random one by drawing instead, and `player_independent` says so.
pub fn split_table(
    labels: &[u32],
    groups: &[u64],
    num_classes: usize,
    fraction: f64,
    seed: u64,
) -> Result<Split, DatasetError> {
    let label = |i: usize| labels[i] as usize;
    let mut members: BTreeMap<u64, Vec<usize>> = BTreeMap::new();
    let mut counts = vec![0usize; num_classes];
    for (i, &group) in groups.iter().enumerate() {
        members.entry(group).or_default().push(i);
        counts[label(i)] += 1;
    }
    let mut quota: Vec<usize> = counts
        .iter()
        .map(|&c| ((c as f64 * fraction).round() as usize).min(c.saturating_sub(1)))
        .collect();
    let largest = members.values().map(Vec::len).max().unwrap_or(0);
    if members.len() < MIN_GROUPS || largest as f64 > LOPSIDED_SHARE * labels.len() as f64 {
        drop(members);
        return stratified_random_split(labels, &quota, seed);
    }
    let mut groups: Vec<Vec<usize>> = members.into_values().collect();
    groups.shuffle(&mut StdRng::seed_from_u64(seed ^ SPLIT_SALT));

    // How well a group fits the remaining quotas: (drawings filling a quota, the others).
    let fit = |group: &[usize], quota: &[usize]| -> (usize, usize) {
        let mut per_class = vec![0usize; num_classes];
        for &i in group {
            per_class[label(i)] += 1;
        }
        let filling: usize = per_class.iter().zip(quota).map(|(&n, &q)| n.min(q)).sum();
        (filling, group.len() - filling)
    };
    let mut to_validation = vec![false; groups.len()];
    for (g, group) in groups.iter().enumerate() {
        let (filling, excess) = fit(group, &quota);
        if filling > excess {
            to_validation[g] = true;
            for &i in group {
                quota[label(i)] = quota[label(i)].saturating_sub(1);
            }
        }
    }
    if !to_validation.contains(&true) {
        let best = (0..groups.len())
            .max_by_key(|&g| {
                let (filling, excess) = fit(&groups[g], &quota);
                (filling as i64 - excess as i64, std::cmp::Reverse(g))
            })
            .unwrap_or(0);
        to_validation[best] = true;
    }
    let mut result = Split {
        train: Vec::new(),
        validation: Vec::new(),
        player_independent: true,
    };
    for (group, validation) in groups.iter().zip(to_validation) {
        match validation {
            true => result.validation.extend(group),
            false => result.train.extend(group),
        }
    }
    if result.train.is_empty() {
        return Err(DatasetError::Split(
            "the training set would be empty".into(),
        ));
    }
    result.train.sort_unstable();
    result.validation.sort_unstable();
    Ok(result)
}

/// The fallback split: each class's drawings shuffled with `seed`, its `quota` of them to
/// validation, the rest to training. Fails when no class can spare a drawing.
fn stratified_random_split(
    labels: &[u32],
    quota: &[usize],
    seed: u64,
) -> Result<Split, DatasetError> {
    let mut rng = StdRng::seed_from_u64(seed ^ SPLIT_SALT);
    let mut result = Split {
        train: Vec::new(),
        validation: Vec::new(),
        player_independent: false,
    };
    // Each class's members in index order, gathered in one pass.
    let mut by_class: Vec<Vec<usize>> = vec![Vec::new(); quota.len()];
    for (i, &label) in labels.iter().enumerate() {
        by_class[label as usize].push(i);
    }
    for (members, &wanted) in by_class.iter_mut().zip(quota) {
        members.shuffle(&mut rng);
        result.validation.extend(&members[..wanted]);
        result.train.extend(&members[wanted..]);
    }
    if result.validation.is_empty() {
        return Err(DatasetError::Split(
            "too few drawings to hold any out for validation; draw a few more of each shape".into(),
        ));
    }
    result.train.sort_unstable();
    result.validation.sort_unstable();
    Ok(result)
}
