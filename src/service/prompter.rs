//! Chooses the next prompt for a player (active learning): gathers what
//! [`crate::domain::prompt`] weighs — good drawings per shape and the active model's
//! per-class accuracy — and keeps them in memory for [`STATS_TTL`], so that a prompt costs
//! one small per-player query rather than a scan of every drawing.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::domain::prompt::{choose, Candidate};
use crate::domain::PlayerId;
use crate::store::{ShapeRow, StoreError, Stores};

/// How long the per-shape counts and accuracies are reused before they are read again.
pub const STATS_TTL: Duration = Duration::from_secs(5);

/// What the weighting reads, as of `at`.
#[derive(Debug)]
struct Stats {
    at: Instant,
    /// Good (live, unflagged) drawings per shape id.
    good: HashMap<i64, u64>,
    /// The active model's recall per class name.
    accuracy: HashMap<String, f64>,
}

/// The prompt chooser; one per server.
pub struct Prompter {
    stores: Arc<Stores>,
    /// The cached stats; `None` until first read or after [`Prompter::forget`].
    stats: Mutex<Option<Arc<Stats>>>,
}

impl Prompter {
    pub fn new(stores: Arc<Stores>) -> Self {
        Self {
            stores,
            stats: Mutex::new(None),
        }
    }

    /// Drops the cached stats (after a shape change or an activation).
    pub fn forget(&self) {
        *self.stats.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }

    /// The next shape for `player`, or `None` when no shape is active. Blocking.
    pub fn prompt(&self, player: PlayerId) -> Result<Option<ShapeRow>, StoreError> {
        let shapes = self.stores.metadata.shapes()?;
        let active: Vec<&ShapeRow> = shapes.iter().filter(|s| s.active).collect();
        if active.is_empty() {
            return Ok(None);
        }
        let mine = self.stores.shapes.drawn_by(player)?;
        let stats = self.stats()?;
        let weighed: Vec<(Candidate, u64)> = active
            .iter()
            .map(|s| {
                let candidate = Candidate {
                    good_drawings: stats.good.get(&s.id).copied().unwrap_or(0),
                    accuracy: stats.accuracy.get(&s.name).copied(),
                };
                (candidate, mine.get(&s.id).copied().unwrap_or(0))
            })
            .collect();
        let r: f64 = rand::random();
        Ok(choose(&weighed, r).map(|i| active[i].clone()))
    }

    fn stats(&self) -> Result<Arc<Stats>, StoreError> {
        let cached = self.stats.lock().unwrap_or_else(|p| p.into_inner()).clone();
        if let Some(stats) = cached.filter(|s| s.at.elapsed() < STATS_TTL) {
            return Ok(stats);
        }
        let good = self
            .stores
            .shapes
            .shape_counts()?
            .into_iter()
            .map(|(id, counts)| (id, counts.good))
            .collect();
        let accuracy = match self.stores.models.active_model()? {
            Some(model) => per_class_accuracy(&model.manifest),
            None => HashMap::new(),
        };
        let stats = Arc::new(Stats {
            at: Instant::now(),
            good,
            accuracy,
        });
        *self.stats.lock().unwrap_or_else(|p| p.into_inner()) = Some(stats.clone());
        Ok(stats)
    }
}

/// The recall of each class on the validation set, from a model manifest's
/// `metrics.per_class`: the share of a class's drawings the model recognises.
pub fn per_class_accuracy(manifest: &serde_json::Value) -> HashMap<String, f64> {
    crate::service::models::ManifestScores::read(manifest).recall_by_class()
}
