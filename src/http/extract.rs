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
        let value = serde_json::from_slice(&raw).map_err(|e| match e.classify() {
            serde_json::error::Category::Data => RequestError::InvalidBody(e.to_string()),
            _ => RequestError::MalformedJson(e.to_string()),
        })?;
        Ok(Self { value, raw })
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
