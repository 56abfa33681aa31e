//! Submitting a drawing, the game's one write: everything between a parsed request and a
//! durably stored drawing. In order: the rate limits (one token per attempt, valid or not),
//! the block list, the idempotency key and the drawing's own rules, the shape rules (known
//! and still collected), the group-commit write, and the handoff to the quality scorer,
//! which judges it with the active model later (Quick, Draw!'s `recognized`): no model
//! inference happens inside the request.
//!
//! Async, unlike the other services: the writer is reached over a channel and answers on
//! the runtime. Its one blocking store read (the shape list on a cold
//! cache) goes to a blocking thread here.

use std::net::IpAddr;
use std::sync::Arc;

use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::domain::drawing::DrawingInput;
use crate::domain::{
    Drawing, DrawingError, DrawingId, IdError, IdempotencyKey, PlayerId, ShapeId, ShapeName,
};
use crate::service::limits::{Limited, Limiters};
use crate::service::quality::{Arrival, QualityService};
use crate::store::{Ingest, IngestError, ShapeRow, StoreError, Stores, Submission, SubmitOutcome};
use crate::telemetry::Metrics;

/// Why a drawing was not stored. Nothing is stored whatever the reason.
#[derive(Debug, Error)]
pub enum SubmitError {
    #[error("too many drawings from this {}", .0.scope)]
    Limited(Limited),
    #[error("this player may no longer submit drawings")]
    PlayerBlocked,
    #[error(transparent)]
    Id(#[from] IdError),
    #[error(transparent)]
    Drawing(#[from] DrawingError),
    #[error("`{0}` is no longer being collected; GET /api/v1/shapes lists the shapes that are")]
    RetiredShape(ShapeName),
    #[error("`{0}` is not a shape being collected; GET /api/v1/shapes lists them")]
    UnknownShape(ShapeName),
    #[error(transparent)]
    Ingest(#[from] IngestError),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The blocking thread that read the shapes did not come back (it panicked).
    #[error("reading the shapes failed: {0}")]
    Worker(String),
}

/// One submission as the HTTP layer hands it over.
pub struct SubmitRequest {
    pub player: PlayerId,
    /// The client's address, for the per-address limit (`None` when unknown).
    pub address: Option<IpAddr>,
    /// `false` for the local admin's commands (imports of many drawings), which no limit
    /// applies to.
    pub limited: bool,
    /// The raw `Idempotency-Key` header, parsed here after the limits and the block check.
    pub idempotency_key: Option<Vec<u8>>,
    /// The drawing as sent, parsed here.
    pub input: DrawingInput,
    /// The request body as sent: its digest tells a retry from a new request under one key.
    pub body: Vec<u8>,
}

/// What became of a submission that was accepted.
#[derive(Debug, Clone, PartialEq)]
pub enum Submitted {
    /// Stored durably under a new id. What the active model makes of it comes later, from
    /// the background scorer.
    Created(DrawingId),
    /// The same idempotency key and body were stored before, under this id.
    Duplicate(DrawingId),
}

/// Everything a submission touches.
#[derive(Clone)]
pub struct Submitter {
    pub stores: Arc<Stores>,
    /// The group-commit writer.
    pub ingest: Arc<Ingest>,
    /// Scores and judges new drawings in the background.
    pub quality: Arc<QualityService>,
    pub limits: Arc<Limiters>,
    /// Counts refusals by the rate limits.
    pub metrics: Arc<Metrics>,
    /// Tells the portal that drawings arrived (coalesced).
    pub events: super::events::Events,
}

impl Submitter {
    /// Runs one submission through every rule and stores it.
    pub async fn submit(&self, request: SubmitRequest) -> Result<Submitted, SubmitError> {
        let SubmitRequest {
            player,
            address,
            limited,
            idempotency_key,
            input,
            body,
        } = request;
        if limited {
            self.limits.submit(player, address).map_err(|l| {
                l.count(&self.metrics);
                SubmitError::Limited(l)
            })?;
        }
        // From memory: blocking is rare, submitting is the hot path.
        if self.stores.review.is_blocked(player) {
            return Err(SubmitError::PlayerBlocked);
        }
        let key = idempotency_key
            .map(|raw| IdempotencyKey::parse(&raw))
            .transpose()?;
        let drawing = Drawing::parse(input)?;
        let shape = self.collected_shape(drawing.shape()).await?;
        let idempotency = key.map(|k| (k, body_digest(&body)));
        // No model runs here: the background scorer judges the drawing after the `201`
        // (`recognized` stays null until then), so a slow or busy model never slows a submit.
        let submission = Submission::new(player, &drawing, shape.get(), idempotency);
        Ok(match self.ingest.submit(submission).await? {
            SubmitOutcome::Created(id) => {
                self.quality.arrived(Arrival { id, drawing });
                self.events.drawing_added();
                Submitted::Created(id)
            }
            SubmitOutcome::Duplicate(id) => Submitted::Duplicate(id),
        })
    }

    /// The shape a drawing may be stored under: known and still collected.
    async fn collected_shape(&self, wanted: &ShapeName) -> Result<ShapeId, SubmitError> {
        let metadata = self.stores.metadata.clone();
        // Shapes are cached in memory; only a cold cache touches the database.
        let shape: Option<ShapeRow> = match metadata.cached_shapes() {
            Some(shapes) => shapes.iter().find(|s| s.name == wanted.as_str()).cloned(),
            None => {
                let name = wanted.clone();
                tokio::task::spawn_blocking(move || metadata.shape_by_name(&name))
                    .await
                    .map_err(|e| SubmitError::Worker(e.to_string()))??
            }
        };
        match shape {
            Some(shape) if shape.active => Ok(ShapeId::from_row(shape.id)),
            Some(_) => Err(SubmitError::RetiredShape(wanted.clone())),
            None => Err(SubmitError::UnknownShape(wanted.clone())),
        }
    }
}

/// The first 16 bytes of the body's SHA-256: enough to tell a retry from a new request.
fn body_digest(raw: &[u8]) -> [u8; 16] {
    let full = Sha256::digest(raw);
    let mut digest = [0; 16];
    digest.copy_from_slice(&full[..16]);
    digest
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::limits::RateLimits;
    use crate::service::serving::ModelServer;
    use crate::store::shapes::ShapeChange;

    fn submitter(dir: &std::path::Path) -> Submitter {
        let stores = Arc::new(Stores::open(dir).unwrap());
        let models = ModelServer::start(stores.clone(), dir.join("models"), 8).unwrap();
        let quality = QualityService::start(
            stores.clone(),
            models,
            crate::service::quality::DEFAULT_QUEUE_CAPACITY,
        )
        .unwrap();
        Submitter {
            ingest: Arc::new(Ingest::start(stores.clone(), None).unwrap()),
            stores,
            quality,
            limits: Arc::new(Limiters::new(RateLimits::DEFAULT)),
            metrics: Arc::new(Metrics::new()),
            events: crate::service::events::Events::new(),
        }
    }

    fn request(shape: &str, key: Option<&str>) -> SubmitRequest {
        let input = serde_json::json!({
            "shape": shape,
            "canvas": {"width": 400, "height": 400},
            "strokes": [{"points": [
                {"x": 100, "y": 100, "pressure": 0.5, "timestamp": 1000},
                {"x": 140, "y": 110, "pressure": 0.7, "timestamp": 1016}
            ]}]
        });
        SubmitRequest {
            player: PlayerId::random(),
            address: None,
            limited: false,
            idempotency_key: key.map(|k| k.as_bytes().to_vec()),
            body: input.to_string().into_bytes(),
            input: serde_json::from_value(input).unwrap(),
        }
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    fn drawings(submitter: &Submitter) -> u64 {
        submitter.stores.metadata.count_drawings().unwrap()
    }

    #[test]
    fn a_drawing_of_an_unknown_or_retired_shape_is_refused_and_stores_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let submitter = submitter(dir.path());
        let rt = runtime();
        let unknown = rt.block_on(submitter.submit(request("zeppelin", None)));
        assert!(matches!(unknown, Err(SubmitError::UnknownShape(s)) if s.as_str() == "zeppelin"));
        let circle = ShapeName::parse("circle").unwrap();
        let retire = ShapeChange {
            active: Some(false),
            ..ShapeChange::default()
        };
        submitter
            .stores
            .shapes
            .change_shape(&circle, &retire)
            .unwrap()
            .unwrap();
        let retired = rt.block_on(submitter.submit(request("circle", None)));
        assert!(matches!(retired, Err(SubmitError::RetiredShape(s)) if s == circle));
        assert_eq!(drawings(&submitter), 0);
    }

    #[test]
    fn a_blocked_player_is_refused_and_a_retry_with_the_same_key_is_a_duplicate() {
        let dir = tempfile::tempdir().unwrap();
        let submitter = submitter(dir.path());
        let rt = runtime();
        let first = rt
            .block_on(submitter.submit(request("circle", Some("k-1"))))
            .unwrap();
        let Submitted::Created(id) = first else {
            panic!("expected a new drawing, got {first:?}");
        };
        let mut again = request("circle", Some("k-1"));
        let player = submitter
            .stores
            .metadata
            .drawing(id)
            .unwrap()
            .and_then(|row| PlayerId::parse_cookie(&row.player_id))
            .unwrap();
        again.player = player;
        let retry = rt.block_on(submitter.submit(again)).unwrap();
        assert_eq!(retry, Submitted::Duplicate(id));
        submitter
            .stores
            .review
            .set_blocked(player, true, crate::store::now_ms())
            .unwrap();
        let mut blocked = request("circle", None);
        blocked.player = player;
        assert!(matches!(
            rt.block_on(submitter.submit(blocked)),
            Err(SubmitError::PlayerBlocked)
        ));
    }
}
