//! The implementor portal's public view of the model being served: its card
//! (`GET /api/v1/model`), its confusion matrix as a picture (`GET /api/v1/model/confusion.png`)
//! and the OpenAPI document of the public API (`GET /api/v1/openapi.json`).
//!
//! "The model" is the one the inference thread serves ([`ModelServer::serving_version`]), so
//! the card describes exactly what `POST /api/v1/classify` answers with. Its facts come from
//! the manifest stored with the model's row.
//!
//! [`ModelServer::serving_version`]: crate::service::serving::ModelServer::serving_version

use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Serialize;

use super::error::ApiError;
use super::{run_blocking, AppState};
use crate::ml::confusions::{top_confusions, Confusion};
use crate::ml::evaluation::{wilson_interval, Calibration, ClassMetrics};
use crate::ml::{confusion_picture, reliability_picture};
use crate::service::models::{CardManifest, ModelRegistry};
use crate::service::serving::TOP_K;
use crate::store::ModelRow;

/// Where the confusion picture is served.
pub const CONFUSION_PATH: &str = "/api/v1/model/confusion.png";
/// Where the reliability picture is served.
pub const RELIABILITY_PATH: &str = "/api/v1/model/reliability.png";
/// Mistakes listed on the card, most frequent first.
const TOP_CONFUSIONS: usize = 10;
/// Hex digits of the weights hash that make the picture's ETag unique to one model: a version
/// name comes back after the newest model is deleted and another trained.
const ETAG_HASH_CHARS: usize = 12;
/// The OpenAPI document of the public API, written by hand and checked by the API tests.
const OPENAPI_JSON: &str = include_str!("openapi.json");

/// Overall validation measurements.
#[derive(Debug, Serialize)]
pub struct CardMetrics {
    accuracy: f64,
    /// The 95 % Wilson interval of `accuracy` over `validation_samples` drawings: how far a
    /// small validation set lets the figure be trusted.
    accuracy_interval: [f64; 2],
    top3_accuracy: f64,
    loss: f64,
    train_samples: usize,
    validation_samples: usize,
    epochs: usize,
    /// The temperature, the unsure threshold and the calibration error before and after the
    /// temperature (`None` for models made before calibration).
    calibration: Option<Calibration>,
    /// False when validation drawings may come from the players training saw (one player,
    /// or one holding most drawings): the figures may then be optimistic for new people.
    player_independent: bool,
}

/// The active model as implementors see it.
#[derive(Debug, Serialize)]
pub struct ModelCard {
    version: String,
    created_at: String,
    activated_at: Option<String>,
    architecture: String,
    classes: Vec<String>,
    /// Side of the square image drawings are rasterized to.
    input_size: u32,
    /// Guesses per drawing in classify answers.
    top_k: usize,
    dataset_size: usize,
    dataset_hash: String,
    trained_on: String,
    metrics: CardMetrics,
    /// Precision, recall (the class's own accuracy) and support, in class order.
    per_class: Vec<ClassMetrics>,
    /// The most frequent mistakes on the validation set: what to collect more of, readable
    /// where the confusion picture of hundreds of classes is not.
    top_confusions: Vec<Confusion>,
    /// The confusion picture of this version.
    confusion_png_url: String,
    /// The reliability picture (calibration) of this version.
    reliability_png_url: String,
}

impl ModelCard {
    fn new(row: &ModelRow, manifest: CardManifest) -> Self {
        let time = |ms: i64| crate::time::rfc3339(u64::try_from(ms).unwrap_or(0));
        let metrics = manifest.metrics;
        let mistakes = top_confusions(&manifest.classes, &metrics.confusion, TOP_CONFUSIONS);
        Self {
            version: row.version.clone(),
            created_at: time(row.created_at_ms),
            activated_at: row.activated_at_ms.map(time),
            architecture: manifest.architecture,
            classes: manifest.classes,
            input_size: manifest.input_size,
            top_k: TOP_K,
            dataset_size: manifest.dataset_size,
            dataset_hash: manifest.dataset_hash,
            trained_on: manifest.device,
            metrics: CardMetrics {
                accuracy: metrics.accuracy,
                // Older models: recomputed from the accuracy and the sample size it counts.
                accuracy_interval: metrics.accuracy_interval.unwrap_or_else(|| {
                    let n = metrics.validation_samples;
                    wilson_interval((metrics.accuracy * n as f64).round() as usize, n)
                }),
                top3_accuracy: metrics.top3_accuracy,
                loss: metrics.loss,
                train_samples: metrics.train_samples,
                validation_samples: metrics.validation_samples,
                epochs: metrics.history.len(),
                calibration: metrics.calibration,
                player_independent: metrics.player_independent,
            },
            top_confusions: mistakes,
            per_class: metrics.per_class,
            // The version in the query lets browsers keep one picture per model.
            confusion_png_url: format!("{CONFUSION_PATH}?version={}", row.version),
            reliability_png_url: format!("{RELIABILITY_PATH}?version={}", row.version),
        }
    }
}

/// The served model's row and manifest; `503 no_active_model` when none is served.
async fn served_model(state: &AppState) -> Result<(ModelRow, CardManifest), ApiError> {
    let registry = ModelRegistry::serving(state.stores.models.clone(), state.models.clone());
    run_blocking(move || Ok(registry.served()?)).await
}

/// `GET /api/v1/model`: the served model's card.
pub async fn card(State(state): State<AppState>) -> Result<Json<ModelCard>, ApiError> {
    let (row, manifest) = served_model(&state).await?;
    Ok(Json(ModelCard::new(&row, manifest)))
}

/// The latest confusion picture drawn, by ETag: one model is served at a time.
#[derive(Debug, Default)]
pub struct PictureCache(Mutex<Option<(String, Bytes)>>);

impl PictureCache {
    /// An empty cache, for one router.
    pub fn new() -> Arc<Self> {
        Arc::default()
    }

    fn get(&self, etag: &str) -> Option<Bytes> {
        let slot = self.0.lock().unwrap_or_else(|p| p.into_inner());
        slot.as_ref()
            .filter(|(tag, _)| tag == etag)
            .map(|(_, png)| png.clone())
    }

    fn put(&self, etag: String, png: Bytes) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = Some((etag, png));
    }
}

/// Whether `If-None-Match` names `etag` (or is `*`).
fn matches(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|tag| tag.trim().trim_start_matches("W/"))
        .any(|tag| tag == etag || tag == "*")
}

/// A model picture's ETag (the version, the start of the weights' hash and `suffix`, one
/// per picture) and the headers that make browsers revalidate it on every use.
fn picture_caching(
    version: &str,
    weights_sha256: &str,
    suffix: &str,
) -> Result<(String, [(header::HeaderName, HeaderValue); 2]), ApiError> {
    let hash: String = weights_sha256.chars().take(ETAG_HASH_CHARS).collect();
    let etag = format!("\"{version}-{hash}{suffix}\"");
    let etag_header = HeaderValue::from_str(&etag).map_err(ApiError::internal)?;
    Ok((
        etag,
        [
            (header::ETAG, etag_header),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
    ))
}

/// `GET /api/v1/model/confusion.png`: the served model's confusion matrix, drawn once per
/// model and kept in memory. Revalidated on every use (the URL shows whichever model is
/// active); the ETag names the version.
pub async fn confusion(
    State(state): State<AppState>,
    Extension(cache): Extension<Arc<PictureCache>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (row, manifest) = served_model(&state).await?;
    let (etag, caching) = picture_caching(&row.version, &manifest.weights_sha256, "")?;
    if matches(&headers, &etag) {
        return Ok((StatusCode::NOT_MODIFIED, caching).into_response());
    }
    let png = match cache.get(&etag) {
        Some(png) => png,
        None => {
            let confusion = manifest.metrics.confusion;
            let png = run_blocking(move || {
                confusion_picture::render_png(&confusion).map_err(ApiError::internal)
            })
            .await?;
            let png = Bytes::from(png);
            cache.put(etag, png.clone());
            png
        }
    };
    Ok((
        caching,
        [(header::CONTENT_TYPE, HeaderValue::from_static("image/png"))],
        png,
    )
        .into_response())
}

/// `GET /api/v1/model/reliability.png`: the served model's reliability diagram (see
/// `ml::reliability_picture`); `404 not_found` for a model made before calibration. Small and
/// quick to draw, so it is drawn per request; revalidated like the confusion picture.
pub async fn reliability(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (row, manifest) = served_model(&state).await?;
    let (etag, caching) = picture_caching(&row.version, &manifest.weights_sha256, "-reliability")?;
    if matches(&headers, &etag) {
        return Ok((StatusCode::NOT_MODIFIED, caching).into_response());
    }
    let Some(calibration) = manifest.metrics.calibration else {
        return Err(ApiError::not_found(
            "a reliability picture for this model (made before calibration)",
        ));
    };
    let png = run_blocking(move || {
        reliability_picture::render_png(&calibration.reliability).map_err(ApiError::internal)
    })
    .await?;
    Ok((
        caching,
        [(header::CONTENT_TYPE, HeaderValue::from_static("image/png"))],
        png,
    )
        .into_response())
}

/// `GET /api/v1/openapi.json`: the OpenAPI 3.1 document of the public API.
pub async fn openapi() -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        OPENAPI_JSON,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn document() -> serde_json::Value {
        serde_json::from_str(OPENAPI_JSON).expect("openapi.json is JSON")
    }

    #[test]
    fn the_openapi_document_is_openapi_3_1() {
        let doc = document();
        let version = doc["openapi"].as_str().expect("an openapi field");
        assert!(version.starts_with("3.1."), "{version}");
        assert!(doc["info"]["title"].is_string() && doc["info"]["version"].is_string());
        assert!(!doc["paths"].as_object().expect("paths").is_empty());
    }

    #[test]
    fn the_openapi_document_states_the_real_batch_maximum_and_top_k() {
        let doc = document();
        let batch = &doc["components"]["schemas"]["BatchClassifyRequest"]["properties"]["drawings"];
        assert_eq!(
            batch["maxItems"].as_u64(),
            Some(super::super::drawings::MAX_CLASSIFY_BATCH as u64)
        );
        let top_k = &doc["components"]["schemas"]["Classification"]["properties"]["top_k"];
        assert_eq!(top_k["maxItems"].as_u64(), Some(TOP_K as u64));
    }

    /// Every `$ref` value anywhere under `node`.
    fn refs(node: &serde_json::Value, found: &mut Vec<String>) {
        match node {
            serde_json::Value::Object(map) => {
                for (key, value) in map {
                    match value.as_str() {
                        Some(target) if key == "$ref" => found.push(target.to_owned()),
                        _ => refs(value, found),
                    }
                }
            }
            serde_json::Value::Array(items) => items.iter().for_each(|v| refs(v, found)),
            _ => {}
        }
    }

    #[test]
    fn every_component_the_document_refers_to_exists() {
        let doc = document();
        let mut found = Vec::new();
        refs(&doc, &mut found);
        assert!(found.len() > 10, "the document uses shared components");
        for target in found {
            let path = target
                .strip_prefix("#/")
                .unwrap_or_else(|| panic!("{target} is not a local reference"));
            let node = path.split('/').fold(&doc, |node, part| &node[part]);
            assert!(!node.is_null(), "{target} is missing");
        }
    }

    #[test]
    fn if_none_match_lists_and_weak_tags_are_understood() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::IF_NONE_MATCH,
            HeaderValue::from_static("\"v1-aa\", W/\"v2-bb\""),
        );
        assert!(matches(&headers, "\"v2-bb\""));
        assert!(matches(&headers, "\"v1-aa\""));
        assert!(!matches(&headers, "\"v3-cc\""));
        assert!(!matches(&HeaderMap::new(), "\"v1-aa\""));
    }
}
