//! Shapes (admin): list every shape with its drawing counts and the active model's accuracy
//! on it, add, edit and retire. A retired shape keeps its drawings, is never prompted and
//! refuses new submissions (`422 retired_shape`).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;

use super::error::ApiError;
use super::extract::JsonBody;
use super::{run_blocking, AppState};
use crate::domain::shape::{parse_description, parse_difficulty};
use crate::domain::ShapeName;
use crate::service::prompter::per_class_accuracy;
use crate::store::shapes::ShapeChange;
use crate::store::{ShapeRow, StoreError, Stores};

/// `POST /api/v1/admin/shapes` body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewShape {
    name: String,
    description: String,
    difficulty: i64,
}

/// `PATCH /api/v1/admin/shapes/{name}` body: any of the fields.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShapePatch {
    description: Option<String>,
    difficulty: Option<i64>,
    active: Option<bool>,
}

/// The admin view of shapes: `(model version, items)`, only `only` when given.
fn items(
    stores: &Stores,
    only: Option<&ShapeRow>,
) -> Result<(Option<String>, Vec<serde_json::Value>), StoreError> {
    let counts = stores.shapes.shape_counts()?;
    let model = stores.models.active_model()?;
    let accuracy = model
        .as_ref()
        .map(|m| per_class_accuracy(&m.manifest))
        .unwrap_or_default();
    let shapes = match only {
        Some(shape) => Arc::new(vec![shape.clone()]),
        None => stores.metadata.shapes()?,
    };
    let items = shapes
        .iter()
        .map(|s| {
            let c = counts.get(&s.id).copied().unwrap_or_default();
            serde_json::json!({
                "name": s.name,
                "description": s.description,
                "difficulty": s.difficulty,
                "active": s.active,
                "drawings": c.drawings,
                "good_drawings": c.good,
                "flagged": c.flagged,
                "deleted": c.deleted,
                "accuracy": accuracy.get(&s.name),
            })
        })
        .collect();
    Ok((model.map(|m| m.version), items))
}

/// One shape's admin view.
fn item(stores: &Stores, shape: &ShapeRow) -> Result<serde_json::Value, StoreError> {
    let (_, mut items) = items(stores, Some(shape))?;
    Ok(items.pop().unwrap_or_default())
}

/// `GET /api/v1/admin/shapes` → `{"items":[{"name","description","difficulty","active",
/// "drawings","good_drawings","flagged","deleted","accuracy"}],"model_version"}`; `accuracy`
/// is the active model's recall on the shape (`null` without a model or for a shape it
/// does not know).
pub async fn list(State(state): State<AppState>) -> Result<Json<serde_json::Value>, ApiError> {
    let stores = state.stores.clone();
    let (model, items) = run_blocking(move || Ok(items(&stores, None)?)).await?;
    Ok(Json(
        serde_json::json!({"items": items, "model_version": model}),
    ))
}

/// `POST /api/v1/admin/shapes {"name","description","difficulty"}` → `201` with the shape;
/// `409 shape_exists` when the name is taken (a retired shape comes back with `PATCH`);
/// `422 invalid_shape` for a bad name, description or difficulty (1..5).
pub async fn create(
    State(state): State<AppState>,
    body: JsonBody<NewShape>,
) -> Result<Response, ApiError> {
    let name = ShapeName::parse(&body.value.name)?;
    let description = parse_description(&body.value.description)?;
    let difficulty = parse_difficulty(body.value.difficulty)?;
    let stores = state.stores.clone();
    let taken = name.clone();
    let added = run_blocking(move || {
        let Some(shape) = stores.shapes.add_shape(&name, &description, difficulty)? else {
            return Ok(None);
        };
        Ok(Some(item(&stores, &shape)?))
    })
    .await?;
    state.prompter.forget();
    let added = added.ok_or_else(|| {
        ApiError::new(
            StatusCode::CONFLICT,
            "shape_exists",
            format!("a shape named `{taken}` exists already (PATCH it to change or reactivate it)"),
        )
    })?;
    Ok((StatusCode::CREATED, Json(added)).into_response())
}

/// `PATCH /api/v1/admin/shapes/{name} {"description"?,"difficulty"?,"active"?}` → the shape.
pub async fn change(
    State(state): State<AppState>,
    Path(name): Path<String>,
    body: JsonBody<ShapePatch>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let patch = body.value;
    let change = ShapeChange {
        description: patch
            .description
            .as_deref()
            .map(parse_description)
            .transpose()?,
        difficulty: patch.difficulty.map(parse_difficulty).transpose()?,
        active: patch.active,
    };
    if change == ShapeChange::default() {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_shape",
            "send at least one of description, difficulty and active",
        ));
    }
    apply(&state, &name, change).await
}

/// `DELETE /api/v1/admin/shapes/{name}`: retires the shape (inactive; drawings kept) → the
/// shape.
pub async fn retire(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let change = ShapeChange {
        active: Some(false),
        ..ShapeChange::default()
    };
    apply(&state, &name, change).await
}

async fn apply(
    state: &AppState,
    name: &str,
    change: ShapeChange,
) -> Result<Json<serde_json::Value>, ApiError> {
    let name = ShapeName::parse(name).map_err(|_| ApiError::not_found("shape"))?;
    let stores = state.stores.clone();
    let changed = run_blocking(move || {
        let Some(shape) = stores.shapes.change_shape(&name, &change)? else {
            return Ok(None);
        };
        Ok(Some(item(&stores, &shape)?))
    })
    .await?;
    state.prompter.forget();
    Ok(Json(changed.ok_or_else(|| ApiError::not_found("shape"))?))
}
