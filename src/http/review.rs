//! The admin review API (`/api/v1/admin`): listing drawings with filters and totals, one
//! drawing with its strokes, thumbnails, review actions one by one and in bulk, players and
//! their blocks, the purge of long-deleted drawings, and the stats page. The use cases live
//! in [`crate::service::review`]; these handlers parse queries and paths and shape answers.

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
use crate::domain::{DrawingId, PlayerId};
use crate::service::review::{BulkRequest, Review, ReviewError};
use crate::service::thumbnails;
use crate::store::review::ReviewItem;

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

/// The review service over this server's stores and thumbnail cache.
pub(super) fn review(state: &AppState) -> Review {
    Review {
        stores: state.stores.clone(),
        thumbnails: state.thumbnails.clone(),
        data_dir: state.data_dir.clone(),
        purge_after_days: state.purge_after_days,
        events: state.events.clone(),
    }
}

/// `GET /drawings?<filters>&limit&cursor`: newest first, with the total and the next cursor.
pub async fn list(State(state): State<AppState>, query: Pairs) -> Result<Json<Value>, ApiError> {
    let query = pairs(query)?;
    let (filter, page) = parse_listing(&borrowed(&query))?;
    let review = review(&state);
    let page = run_blocking(move || Ok(review.list(&filter, page)?)).await?;
    Ok(Json(json!({
        "items": page.items.iter().map(item_json).collect::<Vec<_>>(),
        "total": page.total,
        "next_cursor": page.next.map(|c| c.to_string()),
    })))
}

/// `GET /drawings/{id}`: the item plus the whole drawing (strokes, timestamps).
pub async fn detail(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id: DrawingId = id.parse()?;
    let review = review(&state);
    let (item, drawing) = run_blocking(move || Ok(review.detail(id)?)).await?;
    let mut value = item_json(&item);
    value["drawing"] = drawing.to_json();
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
    let review = review(&state);
    let png = run_blocking(move || Ok(review.thumbnail(id, size)?)).await?;
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
    let review = review(&state);
    let item = run_blocking(move || Ok(review.act(id, action)?)).await?;
    Ok(Json(item_json(&item)))
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
    let request = BulkRequest::parse(&body.value.ids, &body.value.action)?;
    let review = review(&state);
    let changed = run_blocking(move || Ok(review.bulk(&request)?)).await?;
    Ok(Json(json!({ "changed": changed })))
}

/// `GET /players?limit&cursor`: newest first, with counts of their drawings.
pub async fn players(State(state): State<AppState>, query: Pairs) -> Result<Json<Value>, ApiError> {
    let query = pairs(query)?;
    let (limit, after) = parse_player_page(&borrowed(&query))?;
    let review = review(&state);
    let (items, next) = run_blocking(move || Ok(review.players(limit, after)?)).await?;
    Ok(Json(json!({
        "items": items,
        "next_cursor": next.map(|c| c.to_string()),
    })))
}

async fn set_blocked(state: AppState, id: String, blocked: bool) -> Result<Json<Value>, ApiError> {
    // A path that cannot name a player is simply not found.
    let id = PlayerId::parse_cookie(&id).ok_or(ReviewError::PlayerNotFound)?;
    let review = review(&state);
    let player = run_blocking(move || Ok(review.set_blocked(id, blocked)?)).await?;
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
    let review = review(&state);
    let purged = run_blocking(move || Ok(review.purge()?)).await?;
    Ok(Json(json!({ "purged": purged })))
}

/// `GET /stats`: counts (per shape, per day), players, storage, the active model and the
/// latest training jobs.
pub async fn stats(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let review = review(&state);
    let stats = run_blocking(move || Ok(review.stats()?)).await?;
    let mut value = json!(stats.review);
    value["storage_bytes"] = json!(stats.storage_bytes);
    value["backup_bytes"] = json!(stats.backup_bytes);
    value["active_model"] = json!(stats.active_model);
    value["recent_jobs"] = json!(stats.recent_jobs);
    Ok(Json(value))
}
