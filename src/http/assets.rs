//! The embedded web UI: one rust-embed type, content type from the extension, an ETag.
//! Pages, scripts and styles are revalidated on every use (their names carry no hash, and
//! an upgrade must never mix old and new modules); icons are cached for an hour. A shape
//! without a built-in icon gets one drawn from its best drawing (`service::icons`), or the
//! fallback pencil while it has none: `/icons/<shape>.svg` never answers 404.

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use rust_embed::RustEmbed;

use super::error::ApiError;

/// How long browsers may reuse an image without asking.
const ASSET_MAX_AGE_SECS: u32 = 3600;
/// How long a drawn shape icon may be reused (a better drawing may come along).
const DRAWN_ICON_MAX_AGE_SECS: u32 = 300;

#[derive(RustEmbed)]
#[folder = "web/"]
struct WebAssets;

/// Serves `web/` files; `/` gets `index.html`, `/x` gets `x.html` or `x/index.html`.
pub async fn serve(uri: Uri, headers: HeaderMap) -> Response {
    let path = uri.path().trim_start_matches('/');
    let path = if path.is_empty() { "index.html" } else { path };
    let (path, file) = match WebAssets::get(path) {
        Some(file) => (path.to_owned(), file),
        None => {
            let page = format!("{path}.html");
            let index = format!("{}/index.html", path.trim_end_matches('/'));
            match WebAssets::get(&page) {
                Some(file) => (page, file),
                None => match WebAssets::get(&index) {
                    Some(file) => (index, file),
                    None => return ApiError::not_found("page").into_response(),
                },
            }
        }
    };
    let etag = format!("\"{}\"", hex::encode(&file.metadata.sha256_hash()[..16]));
    if headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        == Some(etag.as_str())
    {
        return StatusCode::NOT_MODIFIED.into_response();
    }
    let mime = mime_guess::from_path(&path).first_or_octet_stream();
    let cache = if mime.type_() == "image" {
        format!("public, max-age={ASSET_MAX_AGE_SECS}")
    } else {
        "no-cache".to_owned()
    };
    let mut response = file.data.into_owned().into_response();
    let h = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(mime.as_ref()) {
        h.insert(header::CONTENT_TYPE, v);
    }
    if let Ok(v) = HeaderValue::from_str(&cache) {
        h.insert(header::CACHE_CONTROL, v);
    }
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    response
}

/// `GET /icons/{file}`: the built-in icon, else the shape's picture drawn from its best
/// drawing, else the fallback.
pub async fn icon(
    State(state): State<super::AppState>,
    Path(file): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    if WebAssets::get(&format!("icons/{file}")).is_some() {
        return serve(uri, headers).await;
    }
    let drawn = match file
        .strip_suffix(".svg")
        .map(crate::domain::ShapeName::parse)
    {
        Some(Ok(shape)) => {
            let review = super::review::review(&state);
            super::run_blocking(move || Ok(crate::service::icons::shape_icon(&review, &shape)?))
                .await
        }
        _ => Ok(None),
    };
    match drawn {
        Ok(Some(svg)) => (
            [
                (header::CONTENT_TYPE, "image/svg+xml".to_owned()),
                (
                    header::CACHE_CONTROL,
                    format!("public, max-age={DRAWN_ICON_MAX_AGE_SECS}"),
                ),
            ],
            svg,
        )
            .into_response(),
        Ok(None) => serve(Uri::from_static("/icons/fallback.svg"), headers).await,
        Err(e) => e.into_response(),
    }
}
