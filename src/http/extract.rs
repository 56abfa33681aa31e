//! Extractors that give malformed requests our error format: a JSON body extractor that also
//! keeps the raw bytes (for idempotency digests), and the player session.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use serde::de::DeserializeOwned;

use super::error::{ApiError, RequestError};
use crate::domain::PlayerId;

/// Name of the anonymous player session cookie.
pub const PLAYER_COOKIE: &str = "doodlebox_player";
/// How long the player cookie lives: a school year.
const PLAYER_COOKIE_MAX_AGE_SECS: u64 = 365 * 24 * 3600;

/// A JSON request body, parsed, with the bytes it came from.
pub struct JsonBody<T> {
    pub value: T,
    pub raw: Bytes,
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"));
        if !is_json {
            return Err(RequestError::NotJson.into());
        }
        let raw = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                RequestError::BodyTooLarge
            } else {
                RequestError::UnreadableBody(rejection.body_text())
            }
        })?;
        let value = match serde_json::from_slice(&raw) {
            Ok(value) => value,
            // `{"difficulty": 4.0}`: read again with whole numbers as integers (rarely taken,
            // so the usual body is parsed once).
            Err(e) if e.classify() == serde_json::error::Category::Data => {
                with_whole_numbers(&raw).ok_or_else(|| RequestError::InvalidBody(e.to_string()))?
            }
            Err(e) => return Err(RequestError::MalformedJson(e.to_string()).into()),
        };
        Ok(Self { value, raw })
    }
}

/// `raw` parsed into `T` after [`whole_numbers_as_integers`]; `None` when that changes
/// nothing or still does not parse (the first error stands).
fn with_whole_numbers<T: DeserializeOwned>(raw: &[u8]) -> Option<T> {
    let mut value: serde_json::Value = serde_json::from_slice(raw).ok()?;
    if !whole_numbers_as_integers(&mut value) {
        return None;
    }
    serde_json::from_value(value).ok()
}

/// Rewrites numbers written with a fraction that are whole (`42.0`, `1e3`) as integers, so
/// that integer fields take them: JSON, and the JSON Schemas of the API document, make no
/// difference between `42.0` and `42`; serde does. Answers whether anything changed.
pub fn whole_numbers_as_integers(value: &mut serde_json::Value) -> bool {
    use serde_json::{Number, Value};
    /// 2^63 and 2^64: the first floats past `i64` and `u64`.
    const I64_END: f64 = 9_223_372_036_854_775_808.0;
    const U64_END: f64 = 18_446_744_073_709_551_616.0;
    match value {
        Value::Number(n) => {
            let Some(f) = n.as_f64().filter(|f| n.is_f64() && f.fract() == 0.0) else {
                return false;
            };
            let whole = if (-I64_END..I64_END).contains(&f) {
                Number::from(f as i64)
            } else if (0.0..U64_END).contains(&f) {
                Number::from(f as u64)
            } else {
                return false;
            };
            *n = whole;
            true
        }
        Value::Array(items) => items
            .iter_mut()
            .fold(false, |changed, v| whole_numbers_as_integers(v) | changed),
        Value::Object(map) => map
            .values_mut()
            .fold(false, |changed, v| whole_numbers_as_integers(v) | changed),
        _ => false,
    }
}

/// A path parameter parsed into `T`; one that does not parse names nothing, so it gets our
/// `404 not_found` (JSON) instead of axum's plain-text `400`.
pub struct PathParam<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for PathParam<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(value)| Self(value))
            .map_err(|_| RequestError::UnparsablePath.into())
    }
}

/// Query parameters parsed into `T`; missing or unusable ones get our `422 invalid_query`
/// (JSON) instead of axum's plain-text `400`.
pub struct QueryParams<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for QueryParams<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(value)| Self(value))
            .map_err(|rejection| RequestError::InvalidQuery(rejection.body_text()).into())
    }
}

/// The anonymous player making the request, from the session cookie (or a new one).
#[derive(Debug, Clone, Copy)]
pub struct Player(pub PlayerId);

/// Middleware: every request gets a player; a new one is sent its cookie.
pub async fn player_session(mut req: Request, next: Next) -> Response {
    let existing = req
        .headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().strip_prefix(PLAYER_COOKIE)?.strip_prefix('='))
        .find_map(PlayerId::parse_cookie);
    let player = existing.unwrap_or_else(PlayerId::random);
    req.extensions_mut().insert(Player(player));
    let mut response = next.run(req).await;
    if existing.is_none() {
        let cookie = format!(
            "{PLAYER_COOKIE}={player}; Path=/; HttpOnly; SameSite=Lax; Max-Age={PLAYER_COOKIE_MAX_AGE_SECS}"
        );
        // The cookie is ASCII by construction.
        if let Ok(value) = HeaderValue::from_str(&cookie) {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }
    response
}

impl<S: Send + Sync> FromRequestParts<S> for Player {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts.extensions.get::<Player>().copied().ok_or_else(|| {
            ApiError::internal("player_session middleware is not installed on this route")
        })
    }
}
