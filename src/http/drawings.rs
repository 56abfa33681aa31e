//! Submitting drawings and reading them back.

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use sha2::{Digest, Sha256};

use super::caller::{Caller, ClientAddress};
use super::error::ApiError;
use super::extract::{JsonBody, Player};
use super::{run_blocking, AppState};
use crate::domain::classify_input::{parse_classify_input, ClassifyInputError};
use crate::domain::drawing::DrawingInput;
use crate::domain::{Agreement, Drawing, DrawingId, IdempotencyKey, Judgement, Record};
use crate::service::quality::Arrival;
use crate::store::{Submission, SubmitOutcome};

const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");
const IDEMPOTENT_REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");

/// `POST /api/v1/drawings`: `201` once the drawing is durably stored; `200` with
/// `"status":"duplicate"` when the same `Idempotency-Key` and body were stored before.
pub async fn submit(
    State(state): State<AppState>,
    Player(player): Player,
    ClientAddress(address): ClientAddress,
    headers: HeaderMap,
    body: JsonBody<DrawingInput>,
) -> Result<Response, ApiError> {
    if !state.is_local_admin(&headers) {
        state
            .limits
            .submit(player, address)
            .map_err(|l| state.too_many(l))?;
    }
    // From memory: blocking is rare, submitting is the hot path.
    if state.stores.review.is_blocked(player) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "player_blocked",
            "this player may no longer submit drawings",
        ));
    }
    let key = headers
        .get(IDEMPOTENCY_KEY)
        .map(|v| IdempotencyKey::parse(v.as_bytes()))
        .transpose()?;
    let drawing = Drawing::parse(body.value)?;
    let metadata = state.stores.metadata.clone();
    let wanted = drawing.shape().clone();
    // Shapes are cached in memory; only a cold cache touches the database.
    let shape = match metadata.cached_shapes() {
        Some(shapes) => shapes.iter().find(|s| s.name == wanted.as_str()).cloned(),
        None => run_blocking(move || Ok(metadata.shape_by_name(&wanted)?)).await?,
    };
    let shape = match shape {
        Some(shape) if shape.active => shape,
        Some(_) => {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "retired_shape",
                format!(
                "`{}` is no longer being collected; GET /api/v1/shapes lists the shapes that are",
                drawing.shape()
            ),
            ))
        }
        None => {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "unknown_shape",
                format!(
                    "`{}` is not a shape being collected; GET /api/v1/shapes lists them",
                    drawing.shape()
                ),
            ))
        }
    };
    let idempotency = key.map(|k| (k, body_digest(&body.raw)));
    // Like Quick, Draw!'s `recognized`: what the active model made of it, if one is active.
    let answer = match state.models.classify(vec![strokes_of(&drawing)]).await {
        Ok(mut answers) => answers.pop(),
        Err(_) => None,
    };
    let judgement = answer.as_ref().map(|a| Judgement {
        recognized: a.shape == drawing.shape().as_str(),
        model_version: a.model_version.clone(),
    });
    // For the quality score: how likely the model found the prompted shape.
    let agreement = answer.as_ref().and_then(|a| {
        a.probability_of(drawing.shape().as_str())
            .map(|p| Agreement {
                model_version: a.model_version.clone(),
                probability: f64::from(p),
            })
    });
    let submission = Submission::new(player, &drawing, shape.id, idempotency, judgement.as_ref());
    let outcome = state.ingest.submit(submission).await?;
    if let SubmitOutcome::Created(id) = outcome {
        state.quality.arrived(Arrival {
            id,
            drawing,
            agreement,
        });
    }
    Ok(match outcome {
        SubmitOutcome::Created(id) => {
            let location = HeaderValue::from_str(&format!("/api/v1/drawings/{id}"))
                .map_err(ApiError::internal)?;
            (
                StatusCode::CREATED,
                [(header::LOCATION, location)],
                Json(serde_json::json!({
                    "id": id.to_string(),
                    "status": "created",
                    "recognized": judgement.as_ref().map(|j| j.recognized),
                    "model_version": judgement.as_ref().map(|j| &j.model_version),
                })),
            )
                .into_response()
        }
        SubmitOutcome::Duplicate(id) => (
            StatusCode::OK,
            [(IDEMPOTENT_REPLAYED, HeaderValue::from_static("true"))],
            Json(serde_json::json!({"id": id.to_string(), "status": "duplicate"})),
        )
            .into_response(),
    })
}

/// The first 16 bytes of the body's SHA-256: enough to tell a retry from a new request.
fn body_digest(raw: &[u8]) -> [u8; 16] {
    let full = Sha256::digest(raw);
    let mut digest = [0; 16];
    digest.copy_from_slice(&full[..16]);
    digest
}

/// `GET /api/v1/drawings/{id}`: a player's own drawing, with the JSON values they sent.
pub async fn get_own(
    State(state): State<AppState>,
    Player(player): Player,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let id: DrawingId = id.parse()?;
    let stores = state.stores.clone();
    let found = run_blocking(move || {
        let Some(row) = stores.metadata.drawing(id)? else {
            return Ok(None);
        };
        let bytes = stores.blobs.get(id)?;
        Ok(Some((row, bytes)))
    })
    .await?;
    let Some((row, bytes)) =
        found.filter(|(row, _)| row.player_id == player.to_string() && row.deleted_at_ms.is_none())
    else {
        return Err(ApiError::not_found("drawing"));
    };
    let bytes = bytes
        .ok_or_else(|| ApiError::internal(format!("drawing {id} has a row but no strokes")))?;
    let record =
        Record::decode(&bytes).map_err(|e| ApiError::internal(format!("drawing {id}: {e}")))?;
    Ok(Json(serde_json::json!({
        "id": row.id,
        "created_at": crate::time::rfc3339(record.created_at_ms),
        "recognized": record.judgement.as_ref().map(|j| j.recognized),
        "model_version": record.judgement.as_ref().map(|j| &j.model_version),
        "drawing": record.drawing.to_json(),
    })))
}

/// Most drawings in one `POST /api/v1/classify/batch`.
pub const MAX_CLASSIFY_BATCH: usize = 64;

fn strokes_of(drawing: &Drawing) -> Vec<Vec<[f32; 2]>> {
    drawing
        .strokes()
        .iter()
        .map(|s| s.points.iter().map(|p| [p.x as f32, p.y as f32]).collect())
        .collect()
}

/// `POST /api/v1/classify`: the active model's guesses for one drawing, from memory.
/// Authenticated by an API key, or the game's player session; both rate-limited.
pub async fn classify(
    State(state): State<AppState>,
    caller: Caller,
    body: JsonBody<serde_json::Value>,
) -> Result<Response, ApiError> {
    let strokes = parse_classify_input(body.value).map_err(classify_input_error)?;
    let started = std::time::Instant::now();
    let mut answers = state.models.classify(vec![strokes]).await?;
    let answer = answers
        .pop()
        .ok_or_else(|| ApiError::internal("the classifier returned no answer"))?;
    state.metrics.record_classify(
        &answer.model_version,
        caller.kind(),
        1,
        started.elapsed().as_secs_f64(),
    );
    let version = HeaderValue::from_str(&answer.model_version).map_err(ApiError::internal)?;
    Ok((
        [(HeaderName::from_static("x-model-version"), version)],
        Json(answer),
    )
        .into_response())
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchInput {
    drawings: Vec<serde_json::Value>,
}

/// `POST /api/v1/classify/batch`: `{"drawings":[...]}` (at most [`MAX_CLASSIFY_BATCH`]) →
/// `{"items":[...]}` in the same order, in one forward pass. One rate-limit token per request.
pub async fn classify_batch(
    State(state): State<AppState>,
    caller: Caller,
    body: JsonBody<BatchInput>,
) -> Result<Response, ApiError> {
    let count = body.value.drawings.len();
    if count == 0 || count > MAX_CLASSIFY_BATCH {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_batch",
            format!("send 1 to {MAX_CLASSIFY_BATCH} drawings"),
        ));
    }
    let mut strokes = Vec::with_capacity(count);
    for (index, input) in body.value.drawings.into_iter().enumerate() {
        let parsed = parse_classify_input(input).map_err(|e| {
            let error = classify_input_error(e);
            ApiError::new(
                error.status(),
                "invalid_drawing",
                format!("drawing {index}: {}", error.message()),
            )
        })?;
        strokes.push(parsed);
    }
    let started = std::time::Instant::now();
    let answers = state.models.classify(strokes).await?;
    let version = answers
        .first()
        .map(|a| a.model_version.clone())
        .unwrap_or_default();
    state.metrics.record_classify(
        &version,
        caller.kind(),
        count,
        started.elapsed().as_secs_f64(),
    );
    let version = HeaderValue::from_str(&version).map_err(ApiError::internal)?;
    Ok((
        [(HeaderName::from_static("x-model-version"), version)],
        Json(serde_json::json!({"items": answers})),
    )
        .into_response())
}

fn classify_input_error(e: ClassifyInputError) -> ApiError {
    match e {
        ClassifyInputError::Body(e) => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
            e.to_string(),
        ),
        other => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_drawing",
            other.to_string(),
        ),
    }
}
