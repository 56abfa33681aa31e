//! Reviewing what players drew, the one home of the admin review screens' use cases:
//! listing drawings with their total, one drawing with its strokes, thumbnails (rendered once
//! by [`crate::service::thumbnails`], then cached), review actions one by one and in bulk,
//! players and their blocks, the purge of long-deleted drawings, and the stats page; and a
//! player reading back their own drawing.
//!
//! Synchronous, like every store-backed service: a handler runs these on a blocking thread.

use std::path::PathBuf;
use std::sync::Arc;

use thiserror::Error;

use crate::data_dir::{dir_size, dir_size_except};
use crate::domain::review::{Cursor, DrawingFilter, Page, PlayerCursor, ReviewAction};
use crate::domain::{Drawing, DrawingId, IdError, Judgement, PlayerId, Record};
use crate::service::events::{AdminEvent, Events};
use crate::service::thumbnails::{self, ThumbnailCache, ThumbnailError};
use crate::store::review::{purge_deleted, PlayerSummary, ReviewItem, ReviewStats, MAX_BULK};
use crate::store::{now_ms, JobRow, ModelRow, StoreError, Stores};

/// Most recent training jobs on the stats page.
const STATS_RECENT_JOBS: usize = 5;
/// Milliseconds in a day (purge cutoff).
const DAY_MS: u64 = 24 * 3600 * 1000;

/// Why a review request failed.
#[derive(Debug, Error)]
pub enum ReviewError {
    #[error("drawing not found")]
    DrawingNotFound,
    #[error("player not found")]
    PlayerNotFound,
    /// A bulk request that is malformed: an unknown action, too few or many ids, a bad id.
    #[error("{0}")]
    InvalidBulk(String),
    /// A drawing whose row and strokes disagree, or whose record does not decode: a fault
    /// of the store, not of the request.
    #[error("drawing {id}: {problem}")]
    Damaged { id: DrawingId, problem: String },
    #[error(transparent)]
    Thumbnail(#[from] ThumbnailError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A checked bulk action: 1 to [`MAX_BULK`] drawing ids and one action.
#[derive(Debug, Clone, PartialEq)]
pub struct BulkRequest {
    ids: Vec<DrawingId>,
    action: ReviewAction,
}

impl BulkRequest {
    pub fn parse(ids: &[String], action: &str) -> Result<Self, ReviewError> {
        let action: ReviewAction = action.parse().map_err(ReviewError::InvalidBulk)?;
        if ids.is_empty() || ids.len() > MAX_BULK {
            return Err(ReviewError::InvalidBulk(format!(
                "send 1 to {MAX_BULK} ids"
            )));
        }
        let ids = ids
            .iter()
            .map(|id| id.parse::<DrawingId>())
            .collect::<Result<Vec<_>, IdError>>()
            .map_err(|e| ReviewError::InvalidBulk(e.to_string()))?;
        Ok(Self { ids, action })
    }
}

/// A page of the drawing list.
#[derive(Debug, Clone)]
pub struct Listing {
    pub items: Vec<ReviewItem>,
    /// How many drawings match the filter in all.
    pub total: u64,
    /// Where the next page starts; `None` on the last page.
    pub next: Option<Cursor>,
}

/// What the stats page shows.
#[derive(Debug, Clone)]
pub struct Stats {
    pub review: ReviewStats,
    /// Bytes the data directory takes, its backups folder left out.
    pub storage_bytes: u64,
    /// Bytes the backups inside the data directory (`<data>/backups`) take.
    pub backup_bytes: u64,
    pub active_model: Option<ModelRow>,
    /// The latest training jobs, newest first.
    pub recent_jobs: Vec<JobRow>,
}

/// Drawings soft-deleted at or before this instant are purged.
pub fn purge_cutoff(after_days: u32) -> u64 {
    now_ms().saturating_sub(u64::from(after_days) * DAY_MS)
}

/// The review service over the stores.
#[derive(Clone)]
pub struct Review {
    pub stores: Arc<Stores>,
    /// Thumbnails already rendered.
    pub thumbnails: Arc<ThumbnailCache>,
    /// The data directory, whose size the stats page shows.
    pub data_dir: Arc<PathBuf>,
    /// Soft-deleted drawings are purged for good this many days after their deletion.
    pub purge_after_days: u32,
    /// Tells open portal screens what was reviewed.
    pub events: Events,
}

impl Review {
    /// Announces that `ids` were reviewed with `action` (when any changed).
    fn announce(&self, ids: &[DrawingId], action: ReviewAction) {
        let action = match action {
            ReviewAction::Approve => "approve",
            ReviewAction::Flag => "flag",
            ReviewAction::Unflag => "unflag",
            ReviewAction::Delete => "delete",
            ReviewAction::Restore => "restore",
        };
        self.events.publish(AdminEvent::Reviewed {
            ids: ids.iter().map(DrawingId::to_string).collect(),
            action: action.to_owned(),
        });
    }

    /// A page of drawings matching `filter`, newest first, with the total.
    pub fn list(&self, filter: &DrawingFilter, page: Page) -> Result<Listing, ReviewError> {
        let listed = self.stores.review.list_drawings(filter, page)?;
        let total = self.stores.review.count_matching(filter)?;
        Ok(Listing {
            items: listed.items,
            total,
            next: listed.next,
        })
    }

    /// One drawing, deleted or not, with its strokes.
    pub fn detail(&self, id: DrawingId) -> Result<(ReviewItem, Drawing), ReviewError> {
        let item = self.item(id)?;
        Ok((item, self.record(id)?.drawing))
    }

    /// A drawing's thumbnail of `size` pixels (checked by the caller), from the cache or
    /// rendered now and cached.
    pub fn thumbnail(&self, id: DrawingId, size: u32) -> Result<Arc<Vec<u8>>, ReviewError> {
        if let Some(png) = self.thumbnails.get(id, size) {
            return Ok(png);
        }
        self.item(id)?;
        let record = self.record(id)?;
        let png = Arc::new(thumbnails::render_png(&record.drawing, size)?);
        self.thumbnails.insert(id, size, png.clone());
        Ok(png)
    }

    /// Applies `action` to one drawing and answers it as it is now.
    pub fn act(&self, id: DrawingId, action: ReviewAction) -> Result<ReviewItem, ReviewError> {
        self.stores.review.apply(&[id], action, now_ms())?;
        self.announce(&[id], action);
        self.item(id)
    }

    /// Applies a bulk action; answers how many drawings it changed (unknown ids change
    /// nothing).
    pub fn bulk(&self, request: &BulkRequest) -> Result<usize, ReviewError> {
        let changed = self
            .stores
            .review
            .apply(&request.ids, request.action, now_ms())?;
        if changed > 0 {
            self.announce(&request.ids, request.action);
        }
        Ok(changed)
    }

    /// A page of players, newest first, with counts of their drawings.
    pub fn players(
        &self,
        limit: u32,
        after: Option<PlayerCursor>,
    ) -> Result<(Vec<PlayerSummary>, Option<PlayerCursor>), ReviewError> {
        Ok(self.stores.review.players(limit, after)?)
    }

    /// Blocks a player (soft-deleting all their drawings) or unblocks them.
    pub fn set_blocked(
        &self,
        player: PlayerId,
        blocked: bool,
    ) -> Result<PlayerSummary, ReviewError> {
        if !self.stores.review.set_blocked(player, blocked, now_ms())? {
            return Err(ReviewError::PlayerNotFound);
        }
        // Blocking soft-deletes (unblocking restores) the player's drawings.
        self.events.drawings_changed();
        self.stores
            .review
            .player(player)?
            .ok_or(ReviewError::PlayerNotFound)
    }

    /// Deletes for good the drawings soft-deleted more than the configured days ago.
    pub fn purge(&self) -> Result<usize, ReviewError> {
        let cutoff = purge_cutoff(self.purge_after_days);
        let purged = purge_deleted(&self.stores, cutoff)?;
        if purged > 0 {
            self.events.drawings_changed();
        }
        Ok(purged)
    }

    /// Counts, storage (data and backups apart), the active model and the latest training
    /// jobs.
    pub fn stats(&self) -> Result<Stats, ReviewError> {
        let backups = self.data_dir.join(crate::data_dir::BACKUPS_DIR);
        Ok(Stats {
            review: self.stores.review.stats()?,
            storage_bytes: dir_size_except(&self.data_dir, Some(&backups))
                .map_err(StoreError::from)?,
            backup_bytes: match dir_size(&backups) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
                size => size.map_err(StoreError::from)?,
            },
            active_model: self.stores.models.active_model()?,
            recent_jobs: self
                .stores
                .jobs
                .jobs_of_kind(crate::store::JobKind::Train, STATS_RECENT_JOBS)?,
        })
    }

    /// A player's own live drawing as stored, with what a model made of it (`None` until the
    /// background scorer judged it); any other drawing is not found for them.
    pub fn own_drawing(
        &self,
        player: PlayerId,
        id: DrawingId,
    ) -> Result<(Record, Option<Judgement>), ReviewError> {
        let row = self
            .stores
            .metadata
            .drawing(id)?
            .ok_or(ReviewError::DrawingNotFound)?;
        // The row keeps the player as text; compare as ids, not as strings.
        let theirs = PlayerId::parse_cookie(&row.player_id) == Some(player);
        if !theirs || row.deleted_at_ms.is_some() {
            return Err(ReviewError::DrawingNotFound);
        }
        let record = self.record(id)?;
        // The row holds the scorer's verdict; a drawing stored before migration 8 may have
        // only its record's.
        let judgement = match (row.recognized, row.recognized_by) {
            (Some(recognized), Some(model_version)) => Some(Judgement {
                recognized,
                model_version,
            }),
            _ => record.judgement.clone(),
        };
        Ok((record, judgement))
    }

    fn item(&self, id: DrawingId) -> Result<ReviewItem, ReviewError> {
        self.stores
            .review
            .review_item(id)?
            .ok_or(ReviewError::DrawingNotFound)
    }

    /// The stored record of a drawing whose row exists.
    fn record(&self, id: DrawingId) -> Result<Record, ReviewError> {
        let damaged = |problem: String| ReviewError::Damaged { id, problem };
        let bytes = self
            .stores
            .blobs
            .get(id)?
            .ok_or_else(|| damaged("it has a row but no strokes".into()))?;
        Record::decode(&bytes).map_err(|e| damaged(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bulk_request_needs_a_known_action_and_1_to_max_valid_ids() {
        let id = DrawingId::next(1_700_000_000_000, None).to_string();
        assert!(BulkRequest::parse(std::slice::from_ref(&id), "approve").is_ok());
        assert!(matches!(
            BulkRequest::parse(std::slice::from_ref(&id), "burn"),
            Err(ReviewError::InvalidBulk(_))
        ));
        assert!(matches!(
            BulkRequest::parse(&[], "approve"),
            Err(ReviewError::InvalidBulk(_))
        ));
        assert!(matches!(
            BulkRequest::parse(&["nope".to_owned()], "approve"),
            Err(ReviewError::InvalidBulk(_))
        ));
        assert!(matches!(
            BulkRequest::parse(&vec![id; MAX_BULK + 1], "approve"),
            Err(ReviewError::InvalidBulk(_))
        ));
    }

    #[test]
    fn blocking_an_unknown_player_is_not_found_and_an_unknown_drawing_has_no_thumbnail() {
        let dir = tempfile::tempdir().unwrap();
        let review = Review {
            stores: Arc::new(Stores::open(dir.path()).unwrap()),
            thumbnails: Arc::new(ThumbnailCache::new(thumbnails::CACHE_BYTES)),
            data_dir: Arc::new(dir.path().to_owned()),
            purge_after_days: 30,
            events: Events::new(),
        };
        assert!(matches!(
            review.set_blocked(PlayerId::random(), true),
            Err(ReviewError::PlayerNotFound)
        ));
        let id = DrawingId::next(1_700_000_000_000, None);
        assert!(matches!(
            review.thumbnail(id, thumbnails::DEFAULT_SIZE),
            Err(ReviewError::DrawingNotFound)
        ));
        assert_eq!(review.purge().unwrap(), 0);
        assert_eq!(review.stats().unwrap().review.drawings, 0);
    }
}
