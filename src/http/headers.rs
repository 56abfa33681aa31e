//! Middleware on every answer: the security headers browsers act on, `no-store` for admin
//! answers (they carry players' data and, once, new API keys), and the JSON error body for a
//! `405` (axum answers a known path with an unknown method with an empty body).

use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::{ApiError, RequestError};

/// Everything from our own origin; the join page's QR code is a `data:` image; no page of
/// ours may be framed. `web/` holds no inline script or style.
const CONTENT_SECURITY_POLICY: &str =
    "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'";
/// Where answers that must never be cached live.
const ADMIN_API: &str = "/api/v1/admin";

/// Adds the security headers, `no-store` under the admin API, and a JSON body to a `405`.
pub async fn harden(req: Request, next: Next) -> Response {
    let admin = req.uri().path().starts_with(ADMIN_API);
    let mut response = next.run(req).await;
    if response.status() == StatusCode::METHOD_NOT_ALLOWED && is_bodiless(&response) {
        let allow = response.headers().get(header::ALLOW).cloned();
        response = ApiError::from(RequestError::MethodNotAllowed).into_response();
        if let Some(allow) = allow {
            response.headers_mut().insert(header::ALLOW, allow);
        }
    }
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    if admin {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

/// Whether an answer came without a body of ours (no content type).
fn is_bodiless(response: &Response) -> bool {
    !response.headers().contains_key(header::CONTENT_TYPE)
}
