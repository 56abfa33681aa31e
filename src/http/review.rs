//! The admin review API (`/api/v1/admin`): listing drawings with filters and totals, one
//! drawing with its strokes, thumbnails, review actions one by one and in bulk, players and
//! their blocks, the purge of long-deleted drawings, and the stats page.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::error::{ApiError, RequestError};
use super::extract::JsonBody;
use super::{run_blocking, AppState};
use crate::domain::review::{parse_listing, parse_player_page, FilterError, ReviewAction};
use crate::domain::{DrawingId, PlayerId, Record};
use crate::service::thumbnails::{self, ThumbnailError};
use crate::store::now_ms;
use crate::store::review::{purge_deleted, ReviewItem, MAX_BULK};

/// Most recent training jobs on the stats page.
const STATS_RECENT_JOBS: usize = 5;
/// Milliseconds in a day (purge cutoff).
const DAY_MS: u64 = 24 * 3600 * 1000;

/// Decoded query pairs, whatever their names (each handler parses its own).
type Pairs = Result<Query<Vec<(String, String)>>, QueryRejection>;

fn pairs(query: Pairs) -> Result<Vec<(String, String)>, ApiError> {
    query
        .map(|Query(q)| q)
        .map_err(|e| RequestError::InvalidFilter(e.body_text()).into())
}

fn borrowed(pairs: &[(String, String)]) -> Vec<(&str, &str)> {
    pairs
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect()
}

/// A review item as the API shows it: the stored fields plus where its thumbnail is.
fn item_json(item: &ReviewItem) -> Value {
    let mut value = serde_json::to_value(item).unwrap_or(Value::Null);
    value["thumbnail_url"] = json!(format!("/api/v1/admin/drawings/{}/thumbnail.png", item.id));
    value
}

fn found(item: Option<ReviewItem>) -> Result<Json<Value>, ApiError> {
    item.map(|i| Json(item_json(&i)))
        .ok_or_else(|| ApiError::not_found("drawing"))
}

/// `GET /drawings?<filters>&limit&cursor`: newest first, with the total and the next cursor.
pub async fn list(State(state): State<AppState>, query: Pairs) -> Result<Json<Value>, ApiError> {
    let query = pairs(query)?;
    let (filter, page) = parse_listing(&borrowed(&query))?;
    let review = state.stores.review.clone();
    let (page, total) = run_blocking(move || {
        let listed = review.list_drawings(&filter, page)?;
        let total = review.count_matching(&filter)?;
        Ok((listed, total))
    })
    .await?;
    Ok(Json(json!({
        "items": page.items.iter().map(item_json).collect::<Vec<_>>(),
        "total": total,
        "next_cursor": page.next.map(|c| c.to_string()),
    })))
}

/// `GET /drawings/{id}`: the item plus the whole drawing (strokes, timestamps).
pub async fn detail(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id: DrawingId = id.parse()?;
    let stores = state.stores.clone();
    let found = run_blocking(move || {
        let Some(item) = stores.review.review_item(id)? else {
            return Ok(None);
        };
        Ok(Some((item, stores.blobs.get(id)?)))
    })
    .await?;
    let (item, bytes) = found.ok_or_else(|| ApiError::not_found("drawing"))?;
    let bytes = bytes
        .ok_or_else(|| ApiError::internal(format!("drawing {id} has a row but no strokes")))?;
    let record =
        Record::decode(&bytes).map_err(|e| ApiError::internal(format!("drawing {id}: {e}")))?;
    let mut value = item_json(&item);
    value["drawing"] = record.drawing.to_json();
    Ok(Json(value))
}

/// `GET /drawings/{id}/thumbnail.png?size=96` (32..=512): rendered once, then cached.
pub async fn thumbnail(
    State(state): State<AppState>,
    Path(id): Path<String>,
    query: Pairs,
) -> Result<Response, ApiError> {
    let id: DrawingId = id.parse()?;
    let query = pairs(query)?;
    let mut size = thumbnails::DEFAULT_SIZE;
    for (name, value) in &query {
        if name != "size" {
            return Err(FilterError {
                parameter: name.clone(),
                reason: "unknown parameter".into(),
            }
            .into());
        }
        size = value
            .parse()
            .ok()
            .filter(|s| (thumbnails::MIN_SIZE..=thumbnails::MAX_SIZE).contains(s))
            .ok_or_else(|| FilterError {
                parameter: "size".into(),
                reason: format!(
                    "expected {} to {} pixels",
                    thumbnails::MIN_SIZE,
                    thumbnails::MAX_SIZE
                ),
            })?;
    }
    let png = match state.thumbnails.get(id, size) {
        Some(png) => png,
        None => {
            let stores = state.stores.clone();
            let png = run_blocking(move || {
                if stores.review.review_item(id)?.is_none() {
                    return Ok(None);
                }
                let bytes = stores.blobs.get(id)?.ok_or_else(|| {
                    ApiError::internal(format!("drawing {id} has a row but no strokes"))
                })?;
                let record = Record::decode(&bytes)
                    .map_err(|e| ApiError::internal(format!("drawing {id}: {e}")))?;
                thumbnails::render_png(&record.drawing, size)
                    .map(|png| Some(std::sync::Arc::new(png)))
                    .map_err(|e: ThumbnailError| ApiError::internal(e))
            })
            .await?
            .ok_or_else(|| ApiError::not_found("drawing"))?;
            state.thumbnails.insert(id, size, png.clone());
            png
        }
    };
    Ok((
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("image/png")),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("private, max-age=86400, immutable"),
            ),
        ],
        png.as_ref().clone(),
    )
        .into_response())
}

/// Applies one action to one drawing and answers the item.
async fn act(state: AppState, id: String, action: ReviewAction) -> Result<Json<Value>, ApiError> {
    let id: DrawingId = id.parse()?;
    let review = state.stores.review.clone();
    let item = run_blocking(move || {
        review.apply(&[id], action, now_ms())?;
        Ok(review.review_item(id)?)
    })
    .await?;
    found(item)
}

/// `POST /drawings/{id}/approve`: reviewed and not flagged.
pub async fn approve(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    act(state, id, ReviewAction::Approve).await
}

/// `POST /drawings/{id}/flag`: reviewed and flagged.
pub async fn flag(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    act(state, id, ReviewAction::Flag).await
}

/// `POST /drawings/{id}/unflag`: reviewed, no longer flagged.
pub async fn unflag(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    act(state, id, ReviewAction::Unflag).await
}

/// `POST /drawings/{id}/restore`: undoes a soft delete.
pub async fn restore(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    act(state, id, ReviewAction::Restore).await
}

/// `DELETE /drawings/{id}`: soft delete (purged for good after the configured days).
pub async fn delete(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    act(state, id, ReviewAction::Delete).await
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BulkInput {
    ids: Vec<String>,
    action: String,
}

/// `POST /drawings/bulk {"ids":[...],"action":"approve|flag|unflag|delete|restore"}` →
/// `{"changed":N}`: how many drawings the action changed (unknown ids change nothing).
pub async fn bulk(
    State(state): State<AppState>,
    body: JsonBody<BulkInput>,
) -> Result<Json<Value>, ApiError> {
    let invalid = |message: String| ApiError::from(RequestError::InvalidBody(message));
    let action: ReviewAction = body.value.action.parse().map_err(invalid)?;
    if body.value.ids.is_empty() || body.value.ids.len() > MAX_BULK {
        return Err(invalid(format!("send 1 to {MAX_BULK} ids")));
    }
    let ids = body
        .value
        .ids
        .iter()
        .map(|id| id.parse::<DrawingId>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid(e.to_string()))?;
    let review = state.stores.review.clone();
    let changed = run_blocking(move || Ok(review.apply(&ids, action, now_ms())?)).await?;
    Ok(Json(json!({ "changed": changed })))
}

/// `GET /players?limit&cursor`: newest first, with counts of their drawings.
pub async fn players(State(state): State<AppState>, query: Pairs) -> Result<Json<Value>, ApiError> {
    let query = pairs(query)?;
    let (limit, after) = parse_player_page(&borrowed(&query))?;
    let review = state.stores.review.clone();
    let (items, next) = run_blocking(move || Ok(review.players(limit, after)?)).await?;
    Ok(Json(json!({
        "items": items,
        "next_cursor": next.map(|c| c.to_string()),
    })))
}

fn player_id(text: &str) -> Result<PlayerId, ApiError> {
    PlayerId::parse_cookie(text).ok_or_else(|| ApiError::not_found("player"))
}

async fn set_blocked(state: AppState, id: String, blocked: bool) -> Result<Json<Value>, ApiError> {
    let id = player_id(&id)?;
    let review = state.stores.review.clone();
    let player = run_blocking(move || {
        if !review.set_blocked(id, blocked, now_ms())? {
            return Ok(None);
        }
        Ok(review.player(id)?)
    })
    .await?
    .ok_or_else(|| ApiError::not_found("player"))?;
    Ok(Json(json!(player)))
}

/// `POST /players/{id}/block`: soft-deletes all their drawings; their submissions get 403.
pub async fn block(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    set_blocked(state, id, true).await
}

/// `POST /players/{id}/unblock`: they may submit again (their drawings stay deleted).
pub async fn unblock(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    set_blocked(state, id, false).await
}

/// `POST /drawings/purge`: deletes for good the drawings soft-deleted more than the
/// configured days ago (`--purge-after-days`); `{"purged":N}`.
pub async fn purge(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let cutoff = purge_cutoff(state.purge_after_days);
    let stores = state.stores.clone();
    let purged = run_blocking(move || Ok(purge_deleted(&stores, cutoff)?)).await?;
    Ok(Json(json!({ "purged": purged })))
}

/// Drawings soft-deleted at or before this instant are purged.
pub fn purge_cutoff(after_days: u32) -> u64 {
    now_ms().saturating_sub(u64::from(after_days) * DAY_MS)
}

/// `GET /stats`: counts (per shape, per day), players, storage, the active model and the
/// latest training jobs.
pub async fn stats(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let stores = state.stores.clone();
    let data_dir = state.data_dir.clone();
    let (stats, storage, model, jobs) = run_blocking(move || {
        let stats = stores.review.stats()?;
        let storage = crate::store::review::dir_size(&data_dir)?;
        let model = stores.models.active_model()?;
        let jobs = stores.jobs.jobs(STATS_RECENT_JOBS)?;
        Ok((stats, storage, model, jobs))
    })
    .await?;
    let mut value = json!(stats);
    value["storage_bytes"] = json!(storage);
    value["active_model"] = json!(model);
    value["recent_jobs"] = json!(jobs);
    Ok(Json(value))
}
