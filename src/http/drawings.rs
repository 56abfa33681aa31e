//! Submitting drawings and reading them back.

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

use super::caller::{Caller, ClientAddress};
use super::error::{ApiError, RequestError};
use super::extract::{whole_numbers_as_integers, JsonBody, Player};
use super::{run_blocking, AppState};
use crate::domain::classify_input::parse_classify_input;
use crate::domain::drawing::DrawingInput;
use crate::domain::DrawingId;
use crate::service::submit::{SubmitRequest, Submitted, Submitter};

const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");
const IDEMPOTENT_REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");

/// `POST /api/v1/drawings`: `201` once the drawing is durably stored; `200` with
/// `"status":"duplicate"` when the same `Idempotency-Key` and body were stored before. The
/// rules live in [`crate::service::submit`].
pub async fn submit(
    State(state): State<AppState>,
    Player(player): Player,
    ClientAddress(address): ClientAddress,
    headers: HeaderMap,
    body: JsonBody<DrawingInput>,
) -> Result<Response, ApiError> {
    let request = SubmitRequest {
        player,
        address,
        limited: !state.is_local_admin(&headers),
        idempotency_key: headers.get(IDEMPOTENCY_KEY).map(|v| v.as_bytes().to_vec()),
        input: body.value,
        body: body.raw,
    };
    Ok(match submitter(&state).submit(request).await? {
        Submitted::Created(id) => {
            let location = HeaderValue::from_str(&format!("/api/v1/drawings/{id}"))
                .map_err(ApiError::internal)?;
            (
                StatusCode::CREATED,
                [(header::LOCATION, location)],
                Json(serde_json::json!({
                    "id": id.to_string(),
                    "status": "created",
                    // Judged later by the background scorer: GET the drawing to see it.
                    "recognized": null,
                    "model_version": null,
                })),
            )
                .into_response()
        }
        Submitted::Duplicate(id) => (
            StatusCode::OK,
            [(IDEMPOTENT_REPLAYED, HeaderValue::from_static("true"))],
            Json(serde_json::json!({"id": id.to_string(), "status": "duplicate"})),
        )
            .into_response(),
    })
}

/// The submit service over this server's stores, writer, model and limits.
fn submitter(state: &AppState) -> Submitter {
    Submitter {
        stores: state.stores.clone(),
        ingest: state.ingest.clone(),
        quality: state.quality.clone(),
        limits: state.limits.clone(),
        metrics: state.metrics.clone(),
        events: state.events.clone(),
    }
}

/// `GET /api/v1/drawings/{id}`: a player's own drawing, with the JSON values they sent.
pub async fn get_own(
    State(state): State<AppState>,
    Player(player): Player,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let id: DrawingId = id.parse()?;
    let review = super::review::review(&state);
    let (record, judgement) = run_blocking(move || Ok(review.own_drawing(player, id)?)).await?;
    Ok(Json(serde_json::json!({
        "id": id.to_string(),
        "created_at": crate::time::rfc3339(record.created_at_ms),
        // `null` until the background scorer has judged the drawing with a model.
        "recognized": judgement.as_ref().map(|j| j.recognized),
        "model_version": judgement.as_ref().map(|j| &j.model_version),
        "drawing": record.drawing.to_json(),
    })))
}

/// Most drawings in one `POST /api/v1/classify/batch`.
pub const MAX_CLASSIFY_BATCH: usize = 64;

/// `POST /api/v1/classify`: the active model's guesses for one drawing, from memory.
/// Authenticated by an API key, or the game's player session; both rate-limited.
pub async fn classify(
    State(state): State<AppState>,
    caller: Caller,
    body: JsonBody<serde_json::Value>,
) -> Result<Response, ApiError> {
    let mut input = body.value;
    whole_numbers_as_integers(&mut input);
    let strokes = parse_classify_input(input)?;
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
        return Err(RequestError::BatchSize(MAX_CLASSIFY_BATCH).into());
    }
    let mut strokes = Vec::with_capacity(count);
    for (index, mut input) in body.value.drawings.into_iter().enumerate() {
        whole_numbers_as_integers(&mut input);
        let parsed = parse_classify_input(input)
            .map_err(|source| RequestError::BatchItem { index, source })?;
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
