//! The embedded web UI: one rust-embed type, content type from the extension, an ETag.
//! Pages, scripts and styles are revalidated on every use (their names carry no hash, and
//! an upgrade must never mix old and new modules); icons are cached for an hour. A shape's
//! icon is the drawing an admin chose as its picture, else its built-in icon, else its best
//! drawing (`service::icons`), else the fallback pencil: `/icons/<shape>.svg` never answers
//! 404.

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use rust_embed::RustEmbed;

use super::error::ApiError;
use crate::service::icons::ShapePicture;

/// How long browsers may reuse an image without asking.
const ASSET_MAX_AGE_SECS: u32 = 3600;

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

/// `GET /icons/{file}`: for a shape, the drawing an admin chose as its picture, else its
/// built-in icon, else its best drawing, else the fallback; any other file as it is.
pub async fn icon(
    State(state): State<super::AppState>,
    Path(file): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let built_in = WebAssets::get(&format!("icons/{file}")).is_some();
    let shape = file
        .strip_suffix(".svg")
        .and_then(|name| crate::domain::ShapeName::parse(name).ok());
    let Some(shape) = shape else {
        return if built_in {
            serve(uri, headers).await
        } else {
            serve(Uri::from_static("/icons/fallback.svg"), headers).await
        };
    };
    let review = super::review::review(&state);
    let picture = super::run_blocking(move || {
        Ok(crate::service::icons::shape_picture(
            &review, &shape, built_in,
        )?)
    })
    .await;
    match picture {
        Ok(ShapePicture::Drawn(svg)) => drawn_icon(svg, &headers),
        Ok(ShapePicture::BuiltIn) => {
            // Revalidated like a drawn one, so that an admin's choice shows at once.
            let mut response = serve(uri, headers).await;
            response
                .headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            response
        }
        Ok(ShapePicture::None) => serve(Uri::from_static("/icons/fallback.svg"), headers).await,
        Err(e) => e.into_response(),
    }
}

/// A shape picture drawn from a drawing. Shape icons are revalidated on every use (a new
/// choice or a better drawing shows at once; an unchanged one costs a `304`).
fn drawn_icon(svg: String, headers: &HeaderMap) -> Response {
    use sha2::Digest;
    let etag = format!(
        "\"{}\"",
        hex::encode(&sha2::Sha256::digest(svg.as_bytes())[..16])
    );
    if headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        == Some(etag.as_str())
    {
        return StatusCode::NOT_MODIFIED.into_response();
    }
    (
        [
            (header::CONTENT_TYPE, "image/svg+xml".to_owned()),
            (header::CACHE_CONTROL, "no-cache".to_owned()),
            (header::ETAG, etag),
        ],
        svg,
    )
        .into_response()
}
