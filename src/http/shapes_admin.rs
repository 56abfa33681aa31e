//! Shapes (admin): list every shape with its drawing counts and the active model's accuracy
//! on it, add, edit and retire. A retired shape keeps its drawings, is never prompted and
//! refuses new submissions (`422 retired_shape`). The use cases live in
//! [`crate::service::shapes`].

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;

use super::error::ApiError;
use super::extract::JsonBody;
use super::{run_blocking, AppState};
use crate::domain::shape::{parse_description, parse_difficulty};
use crate::domain::{DrawingId, ShapeName};
use crate::service::shapes::{ShapeEdit, ShapeList, ShapeView, Shapes, ShapesError};

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

/// The shape service over this server's stores and prompter.
pub(super) fn shapes(state: &AppState) -> Shapes {
    Shapes {
        stores: state.stores.clone(),
        prompter: state.prompter.clone(),
        events: state.events.clone(),
    }
}

/// A shape named in a path: a name that cannot be a shape is simply not found.
fn path_name(name: &str) -> Result<ShapeName, ShapesError> {
    ShapeName::parse(name).map_err(|_| ShapesError::NotFound)
}

/// `GET /api/v1/admin/shapes` → `{"items":[{"name","description","difficulty","active",
/// "drawings","good_drawings","flagged","deleted","accuracy"}],"model_version"}`; `accuracy`
/// is the active model's recall on the shape (`null` without a model or for a shape it
/// does not know).
pub async fn list(State(state): State<AppState>) -> Result<Json<ShapeList>, ApiError> {
    let shapes = shapes(&state);
    Ok(Json(run_blocking(move || Ok(shapes.list()?)).await?))
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
    let shapes = shapes(&state);
    let added = run_blocking(move || Ok(shapes.add(&name, &description, difficulty)?)).await?;
    Ok((StatusCode::CREATED, Json(added)).into_response())
}

/// `PATCH /api/v1/admin/shapes/{name} {"description"?,"difficulty"?,"active"?}` → the shape.
pub async fn change(
    State(state): State<AppState>,
    Path(name): Path<String>,
    body: JsonBody<ShapePatch>,
) -> Result<Json<ShapeView>, ApiError> {
    let patch = body.value;
    let edit = ShapeEdit::parse(patch.description.as_deref(), patch.difficulty, patch.active)?;
    apply(&state, &name, edit).await
}

/// `DELETE /api/v1/admin/shapes/{name}`: retires the shape (inactive; drawings kept) → the
/// shape.
pub async fn retire(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<ShapeView>, ApiError> {
    apply(&state, &name, ShapeEdit::retire()).await
}

async fn apply(state: &AppState, name: &str, edit: ShapeEdit) -> Result<Json<ShapeView>, ApiError> {
    let name = path_name(name)?;
    let shapes = shapes(state);
    Ok(Json(
        run_blocking(move || Ok(shapes.change(&name, &edit)?)).await?,
    ))
}

/// `PUT /api/v1/admin/shapes/{name}/picture` body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PictureChoice {
    drawing_id: String,
}

/// `PUT /api/v1/admin/shapes/{name}/picture {"drawing_id"}`: that drawing becomes the
/// shape's picture (`/icons/{name}.svg`, the game's card) → the shape; `404` for an
/// unknown shape or drawing, `409 invalid_picture` for a deleted drawing or one of another
/// shape.
pub async fn choose_picture(
    State(state): State<AppState>,
    Path(name): Path<String>,
    body: JsonBody<PictureChoice>,
) -> Result<Json<ShapeView>, ApiError> {
    let name = path_name(&name)?;
    let id = body.value.drawing_id;
    let drawing: DrawingId = id
        .parse()
        .map_err(|_| ShapesError::PictureNotFound(format!("there is no drawing `{id}`")))?;
    set_picture(&state, name, Some(drawing)).await
}

/// `DELETE /api/v1/admin/shapes/{name}/picture`: back to the automatic picture (the
/// built-in icon, else the highest-quality drawing) → the shape.
pub async fn reset_picture(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<ShapeView>, ApiError> {
    set_picture(&state, path_name(&name)?, None).await
}

async fn set_picture(
    state: &AppState,
    name: ShapeName,
    drawing: Option<DrawingId>,
) -> Result<Json<ShapeView>, ApiError> {
    let shapes = shapes(state);
    Ok(Json(
        run_blocking(move || Ok(shapes.set_picture(&name, drawing)?)).await?,
    ))
}
