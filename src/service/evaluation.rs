//! One yardstick for every model version: the frozen evaluation split that no model trains
//! on, and the paired comparison of two versions on it (per-class deltas with direction and
//! an exact McNemar test), which also guards activation against a significantly worse model.
//!
//! # The split
//! A drawing is held out when a stable hash (SHA-256 with a fixed salt) of its player falls in
//! the lowest [`EVALUATION_PERCENT`] % — so whole players are held out and the figures say how
//! the model does on people it never saw — provided every class has drawings from at least
//! [`MIN_PLAYERS_PER_CLASS`] players. Otherwise (one lab member, a single imported file) the
//! hash is of the drawing's id. New drawings join by the same rule, so the split only grows;
//! the rule itself is decided on the drawings present when it is asked.
//!
//! # The comparison
//! Both models classify every held-out drawing of the classes both know; each answer is
//! restricted to those shared classes, so the two are scored on the same drawings with the
//! same choices (paired). The disagreements decide: `a_only` drawings only A got right,
//! `b_only` only B; the exact McNemar test gives the p-value, "significant" below
//! [`SIGNIFICANCE`].

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::domain::{DrawingId, ModelVersion, Record};
use crate::ml::artifact::ArtifactError;
use crate::ml::classifier::{Classifier, ClassifyError};
use crate::ml::evaluation::{mcnemar_p_value, wilson_interval};
use crate::service::artifacts::{Artifacts, LoadError};
use crate::service::models::{Comparison, ModelError, ModelRegistry};
use crate::service::quality::strokes_of;
use crate::store::metadata::{TrainingDrawing, TrainingFilter};
use crate::store::{ModelRow, StoreError, Stores};

/// Share of the hash space (in percent) held out for evaluation.
pub const EVALUATION_PERCENT: u64 = 20;
/// Players every class needs for the split to go by player.
pub const MIN_PLAYERS_PER_CLASS: usize = 5;
/// A comparison's p-value below this is "significant".
pub const SIGNIFICANCE: f64 = 0.05;
/// Held-out drawings classified per forward pass.
const BATCH: usize = 256;
/// Salt of the split's hash, so it is independent of every other hash of a player.
const SPLIT_SALT: &[u8] = b"doodlebox evaluation split v1";

/// How drawings are assigned to the evaluation split.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SplitRule {
    /// By a hash of the player: whole players are held out.
    ByPlayer,
    /// By a hash of the drawing: too few players per class to hold whole players out.
    ByDrawing,
}

impl SplitRule {
    /// The rule for this set of drawings (see the module docs).
    pub fn for_drawings(drawings: &[TrainingDrawing]) -> SplitRule {
        let mut finder = RuleFinder::default();
        for d in drawings {
            finder.see(d);
        }
        finder.rule()
    }

    /// Whether `drawing` belongs to the evaluation split (and so to no training set).
    pub fn holds_out(self, drawing: &TrainingDrawing) -> bool {
        let key = match self {
            SplitRule::ByPlayer => drawing.player.clone(),
            SplitRule::ByDrawing => drawing.id.to_string(),
        };
        let digest = Sha256::new()
            .chain_update(SPLIT_SALT)
            .chain_update(key.as_bytes())
            .finalize();
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest[..8]);
        u64::from_be_bytes(first) % 100 < EVALUATION_PERCENT
    }
}

/// What deciding the rule needs of the drawings, gathered one drawing at a time: the
/// players of each shape, up to [`MIN_PLAYERS_PER_CLASS`] (so it stays small however many
/// drawings pass).
#[derive(Debug, Default)]
pub struct RuleFinder {
    /// Shape name to some of its players.
    players: BTreeMap<String, BTreeSet<String>>,
}

impl RuleFinder {
    /// Takes one more drawing into account.
    pub fn see(&mut self, drawing: &TrainingDrawing) {
        let players = match self.players.get_mut(&drawing.shape) {
            Some(players) => players,
            None => self.players.entry(drawing.shape.clone()).or_default(),
        };
        if players.len() < MIN_PLAYERS_PER_CLASS {
            players.insert(drawing.player.clone());
        }
    }

    /// The rule for the drawings seen.
    pub fn rule(&self) -> SplitRule {
        let enough = |p: &BTreeSet<String>| p.len() >= MIN_PLAYERS_PER_CLASS;
        if !self.players.is_empty() && self.players.values().all(enough) {
            SplitRule::ByPlayer
        } else {
            SplitRule::ByDrawing
        }
    }
}

/// Splits `drawings` into (training candidates, evaluation split) by the rule for them.
pub fn partition(
    drawings: Vec<TrainingDrawing>,
) -> (Vec<TrainingDrawing>, Vec<TrainingDrawing>, SplitRule) {
    let rule = SplitRule::for_drawings(&drawings);
    let (held_out, train): (Vec<_>, Vec<_>) = drawings.into_iter().partition(|d| rule.holds_out(d));
    (train, held_out, rule)
}

/// Which drawings the evaluation split is drawn from: live, unflagged, of any shape, from
/// any time. The rule is decided on these, whatever a training job's own filter is, so that
/// every job and every comparison agree on which drawings are held out.
pub fn candidates_filter() -> TrainingFilter {
    TrainingFilter {
        include_flagged: false,
        ..TrainingFilter::default()
    }
}

/// The rule in force now (see the module docs), from one streaming walk over the
/// candidates.
pub fn current_rule(stores: &Stores) -> Result<SplitRule, StoreError> {
    let mut finder = RuleFinder::default();
    stores
        .metadata
        .visit_training_drawings(&candidates_filter(), &mut |d| {
            finder.see(&d);
            Ok(())
        })?;
    Ok(finder.rule())
}

/// One class of a paired comparison.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PairedClass {
    pub class: String,
    /// Held-out drawings of this class.
    pub drawings: usize,
    pub a_recall: f64,
    pub b_recall: f64,
    /// `b_recall - a_recall`.
    pub delta: f64,
    /// `up` (B better), `down` (B worse) or `same`.
    pub direction: &'static str,
}

/// Two versions scored on the same held-out drawings of the classes both know.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PairedComparison {
    pub a: String,
    pub b: String,
    /// How the evaluation split was drawn.
    pub rule: SplitRule,
    /// The classes both know, the only ones scored.
    pub classes: Vec<String>,
    /// Held-out drawings scored.
    pub drawings: usize,
    pub a_accuracy: f64,
    /// 95 % Wilson interval of `a_accuracy`.
    pub a_interval: [f64; 2],
    pub b_accuracy: f64,
    pub b_interval: [f64; 2],
    /// Drawings only A got right.
    pub a_only: usize,
    /// Drawings only B got right.
    pub b_only: usize,
    /// Exact McNemar p-value of the disagreements.
    pub p_value: f64,
    /// `p_value < SIGNIFICANCE`.
    pub significant: bool,
    /// `better` or `worse` (B against A) when significant, else `no_significant_difference`.
    pub verdict: &'static str,
    pub per_class: Vec<PairedClass>,
}

impl PairedComparison {
    /// Whether B is significantly worse than A: what makes activating B need `force`.
    pub fn b_is_significantly_worse(&self) -> bool {
        self.significant && self.b_only < self.a_only
    }
}

/// Why a paired comparison could not be made.
#[derive(Debug, Error)]
pub enum EvaluationError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A model's artifact does not load.
    #[error("model {version} cannot be loaded: {source}")]
    Model {
        version: String,
        source: ArtifactError,
    },
    /// Inference failed.
    #[error("classifying the evaluation split failed: {0}")]
    Classify(#[from] ClassifyError),
}

/// Scores `a` and `b` on the current evaluation split, paired (see the module docs).
/// `None` when they share fewer than two classes or the split holds no drawing of them.
/// Blocking (loads both models, classifies every held-out drawing).
pub fn compare(
    stores: &Stores,
    artifacts: &Artifacts,
    a: &ModelRow,
    b: &ModelRow,
) -> Result<Option<PairedComparison>, EvaluationError> {
    let load = |row: &ModelRow| {
        artifacts.load(row).map_err(|e| match e {
            LoadError::Store(e) => EvaluationError::Store(e),
            LoadError::Artifact(source) => EvaluationError::Model {
                version: row.version.clone(),
                source,
            },
        })
    };
    let (ca, cb) = (load(a)?, load(b)?);
    let known_b: BTreeSet<&String> = cb.classes().iter().collect();
    let shared: BTreeSet<String> = ca
        .classes()
        .iter()
        .filter(|c| known_b.contains(c))
        .cloned()
        .collect();
    if shared.len() < 2 {
        return Ok(None);
    }
    // The held-out drawings of the shared classes are scored a batch at a time as the walk
    // meets them: neither their strokes nor their ids are held beyond their batch, so the
    // split's size does not decide the memory a comparison takes.
    let rule = current_rule(stores)?;
    let mut tally = PairedTally::default();
    let mut batch: Vec<(DrawingId, String)> = Vec::with_capacity(BATCH);
    let mut failed = None;
    let score = |batch: &mut Vec<(DrawingId, String)>, tally: &mut PairedTally| {
        let scored = tally.score(stores, &ca, &cb, &shared, batch);
        batch.clear();
        scored
    };
    stores
        .metadata
        .visit_training_drawings(&candidates_filter(), &mut |d| {
            if failed.is_none() && shared.contains(&d.shape) && rule.holds_out(&d) {
                batch.push((d.id, d.shape));
                if batch.len() == BATCH {
                    failed = score(&mut batch, &mut tally).err();
                }
            }
            Ok(())
        })?;
    if let Some(e) = failed {
        return Err(e);
    }
    score(&mut batch, &mut tally)?;
    let PairedTally {
        per_class,
        a_right,
        b_right,
        a_only,
        b_only,
        n,
    } = tally;
    if n == 0 {
        return Ok(None);
    }
    let p_value = mcnemar_p_value(a_only, b_only);
    let significant = p_value < SIGNIFICANCE;
    Ok(Some(PairedComparison {
        a: a.version.clone(),
        b: b.version.clone(),
        rule,
        classes: shared.into_iter().collect(),
        drawings: n,
        a_accuracy: a_right as f64 / n as f64,
        a_interval: wilson_interval(a_right, n),
        b_accuracy: b_right as f64 / n as f64,
        b_interval: wilson_interval(b_right, n),
        a_only,
        b_only,
        p_value,
        significant,
        verdict: match (significant, b_only > a_only) {
            (false, _) => "no_significant_difference",
            (true, true) => "better",
            (true, false) => "worse",
        },
        per_class: per_class
            .into_iter()
            .map(|(class, (count, ra, rb))| {
                let (a_recall, b_recall) = (ra as f64 / count as f64, rb as f64 / count as f64);
                PairedClass {
                    class,
                    drawings: count,
                    a_recall,
                    b_recall,
                    delta: b_recall - a_recall,
                    direction: match rb.cmp(&ra) {
                        std::cmp::Ordering::Greater => "up",
                        std::cmp::Ordering::Less => "down",
                        std::cmp::Ordering::Equal => "same",
                    },
                }
            })
            .collect(),
    }))
}

/// The paired scores of the drawings seen so far.
#[derive(Debug, Default)]
struct PairedTally {
    /// Per class: (drawings, A right, B right).
    per_class: BTreeMap<String, (usize, usize, usize)>,
    a_right: usize,
    b_right: usize,
    /// Drawings only A got right.
    a_only: usize,
    /// Drawings only B got right.
    b_only: usize,
    /// Drawings scored.
    n: usize,
}

impl PairedTally {
    /// Scores both classifiers on the drawings of `batch` (id and shape), each answer
    /// restricted to the `shared` classes; a drawing whose strokes are gone is passed over.
    fn score(
        &mut self,
        stores: &Stores,
        ca: &Classifier,
        cb: &Classifier,
        shared: &BTreeSet<String>,
        batch: &[(DrawingId, String)],
    ) -> Result<(), EvaluationError> {
        let mut shapes = Vec::with_capacity(batch.len());
        let mut drawings = Vec::with_capacity(batch.len());
        for (id, shape) in batch {
            let Some(bytes) = stores.blobs.get(*id)? else {
                continue;
            };
            let record = Record::decode(&bytes)
                .map_err(|e| StoreError::Corrupt(format!("drawing {id}: {e}")))?;
            shapes.push(shape.as_str());
            drawings.push(strokes_of(&record.drawing));
        }
        if drawings.is_empty() {
            return Ok(());
        }
        // The best class among the shared ones, for each drawing.
        let guess = |classifier: &Classifier| -> Result<Vec<String>, ClassifyError> {
            Ok(classifier
                .classify_batch(&drawings)?
                .into_iter()
                .map(|ranked| {
                    let best = ranked.into_iter().find(|(c, _)| shared.contains(c));
                    best.map(|(c, _)| c).unwrap_or_default()
                })
                .collect())
        };
        let (ga, gb) = (guess(ca)?, guess(cb)?);
        for (shape, (x, y)) in shapes.into_iter().zip(ga.iter().zip(&gb)) {
            let (ra, rb) = (x == shape, y == shape);
            let entry = self.per_class.entry(shape.to_owned()).or_default();
            entry.0 += 1;
            entry.1 += usize::from(ra);
            entry.2 += usize::from(rb);
            self.a_right += usize::from(ra);
            self.b_right += usize::from(rb);
            self.a_only += usize::from(ra && !rb);
            self.b_only += usize::from(rb && !ra);
            self.n += 1;
        }
        Ok(())
    }
}

/// Why a paired comparison or a safe activation did not happen.
#[derive(Debug, Error)]
pub enum ActivationError {
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error(transparent)]
    Evaluation(#[from] EvaluationError),
    /// The candidate is significantly worse than the active model on the evaluation split.
    #[error("{} is significantly worse than the active {} on the evaluation split ({:.1} % against {:.1} % on {} drawings, McNemar p = {:.4}); activate it with force to override", .0.b, .0.a, .0.b_accuracy * 100.0, .0.a_accuracy * 100.0, .0.drawings, .0.p_value)]
    SignificantlyWorse(Box<PairedComparison>),
}

/// Activates `version` unless it is significantly worse than the active model on the
/// evaluation split (then [`ActivationError::SignificantlyWorse`] with the comparison),
/// or `force` is set. Answers the comparison it made, if any. When the active model cannot
/// be scored (its files are gone) the activation goes ahead: a broken model is no yardstick.
/// Blocking.
pub fn activate_safely(
    stores: &Stores,
    registry: &ModelRegistry,
    version: &ModelVersion,
    force: bool,
) -> Result<Option<PairedComparison>, ActivationError> {
    let candidate = registry.get(version)?;
    let comparison = match stores.models.active_model().map_err(ModelError::from)? {
        Some(active) if active.version != candidate.version && !force => {
            match compare(stores, registry.artifacts(), &active, &candidate) {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "activation: no comparison with the active model");
                    None
                }
            }
        }
        _ => None,
    };
    if let Some(c) = comparison.as_ref().filter(|c| c.b_is_significantly_worse()) {
        return Err(ActivationError::SignificantlyWorse(Box::new(c.clone())));
    }
    registry.activate(version)?;
    Ok(comparison)
}

/// The comparison `GET /admin/models/compare` answers: what the manifests say, and both
/// versions scored on the current evaluation split (`paired`; `None` when one of them does
/// not load). Blocking.
pub fn compare_versions(
    stores: &Stores,
    registry: &ModelRegistry,
    a: &ModelVersion,
    b: &ModelVersion,
) -> Result<Comparison, ActivationError> {
    let mut comparison = registry.compare(a, b)?;
    // A model whose files no longer load still has a manifest to compare; only the paired
    // scores are left out.
    comparison.paired = match compare(
        stores,
        registry.artifacts(),
        &registry.get(a)?,
        &registry.get(b)?,
    ) {
        Ok(paired) => paired,
        Err(EvaluationError::Model { version, source }) => {
            tracing::warn!(%version, error = %source, "compare: model does not load; no paired scores");
            None
        }
        Err(e) => return Err(e.into()),
    };
    Ok(comparison)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drawing(id: u64, player: &str, shape: &str) -> TrainingDrawing {
        TrainingDrawing {
            id: DrawingId::from_u128(u128::from(id)),
            player: player.into(),
            shape: shape.into(),
        }
    }

    #[test]
    fn the_split_holds_out_whole_players_when_every_class_has_enough_of_them() {
        let many: Vec<TrainingDrawing> = (0..400)
            .map(|i| {
                drawing(
                    i,
                    &format!("p{}", i % 40),
                    ["a", "b"][(i / 40 % 2) as usize],
                )
            })
            .collect();
        assert_eq!(SplitRule::for_drawings(&many), SplitRule::ByPlayer);
        let (train, held_out, _) = partition(many.clone());
        let held_players: BTreeSet<&str> = held_out.iter().map(|d| d.player.as_str()).collect();
        assert!(train
            .iter()
            .all(|d| !held_players.contains(d.player.as_str())));
        let share = held_out.len() as f64 / many.len() as f64;
        assert!((0.05..0.4).contains(&share), "{share}");
        // Stable: the same drawing lands on the same side every time.
        assert_eq!(partition(many).1.len(), held_out.len());

        let alone: Vec<TrainingDrawing> = (0..200)
            .map(|i| drawing(i, "me", ["a", "b"][(i % 2) as usize]))
            .collect();
        assert_eq!(SplitRule::for_drawings(&alone), SplitRule::ByDrawing);
        let (_, held_out, _) = partition(alone);
        assert!((10..80).contains(&held_out.len()), "{}", held_out.len());
    }
}
