//! A deadline for the public API's handlers, so that a stuck request answers instead of
//! hanging a player's browser. Admin routes are left out: imports, exports and backups run
//! as long as their data needs. A streamed response body is not cut: the deadline covers the
//! handler up to the response head.

use std::time::Duration;

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::ApiError;

/// How long a public API handler may take.
pub const HANDLER_TIMEOUT: Duration = Duration::from_secs(30);

pub async fn deadline(req: Request, next: Next) -> Response {
    match tokio::time::timeout(HANDLER_TIMEOUT, next.run(req)).await {
        Ok(response) => response,
        Err(_) => ApiError::unavailable(
            "timeout",
            format!(
                "the server did not finish within {} s; please retry",
                HANDLER_TIMEOUT.as_secs()
            ),
        )
        .into_response(),
    }
}
