//! Who is calling the classify API, and whether they may right now: an implementor with an
//! API key (`Authorization: Bearer dbx_...`, at the key's own rate), a local admin command
//! (the control token, unlimited), or a player of the game (the session cookie, at the
//! per-session and per-address rates).

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::header;
use axum::http::request::Parts;
use sha2::{Digest, Sha256};

use super::error::{AccessError, ApiError};
use super::extract::Player;
use super::{run_blocking, AppState};
use crate::service::limits::Limited;

/// The address the request came from (no proxy is trusted: the server faces the LAN).
#[derive(Debug, Clone, Copy)]
pub struct ClientAddress(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddress {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0.ip()),
        ))
    }
}

/// A classify caller that passed authentication and its rate limit.
#[derive(Debug, Clone)]
pub enum Caller {
    ApiKey { id: i64 },
    Admin,
    Session,
}

impl Caller {
    /// The metrics label.
    pub fn kind(&self) -> &'static str {
        match self {
            Caller::ApiKey { .. } => "api_key",
            Caller::Admin => "admin",
            Caller::Session => "session",
        }
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let ClientAddress(address) = ClientAddress::from_request_parts(parts, state)
            .await
            .unwrap_or(ClientAddress(None));
        let Some(authorization) = parts.headers.get(header::AUTHORIZATION) else {
            let Player(player) = Player::from_request_parts(parts, state).await?;
            state
                .limits
                .classify_session(player, address)
                .map_err(|l| state.too_many(l))?;
            return Ok(Caller::Session);
        };
        let secret = authorization
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .ok_or_else(|| invalid_key("send the key as `Authorization: Bearer <key>`"))?;
        if is_control_token(secret, &state.control.token) {
            return Ok(Caller::Admin);
        }
        let row = match state.key_auth.cached(secret) {
            Some(row) => row,
            None => {
                let (auth, secret) = (state.key_auth.clone(), secret.to_owned());
                run_blocking(move || Ok(auth.lookup(&secret)?)).await?
            }
        };
        let row = row.ok_or_else(|| invalid_key("this API key is unknown or was revoked"))?;
        state
            .limits
            .classify_key(row.id, row.rate_per_min)
            .map_err(|l| state.too_many(l))?;
        state.key_auth.note_use(row.id);
        Ok(Caller::ApiKey { id: row.id })
    }
}

fn invalid_key(message: &'static str) -> ApiError {
    AccessError::InvalidApiKey(message).into()
}

/// Compares digests, so the time taken says nothing about how much of the token matched.
pub fn is_control_token(offered: &str, token: &str) -> bool {
    Sha256::digest(offered.as_bytes()) == Sha256::digest(token.as_bytes())
}

impl AppState {
    /// Whether the request carries this run's control token (local admin tooling, which the
    /// rate limits leave alone).
    pub fn is_local_admin(&self, headers: &axum::http::HeaderMap) -> bool {
        headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .is_some_and(|token| is_control_token(token.trim(), &self.control.token))
    }

    /// The 429 for a refused request, counted in the metrics.
    pub fn too_many(&self, limited: Limited) -> ApiError {
        limited.count(&self.metrics);
        ApiError::from(limited)
    }
}
