//! Classroom join: the LAN addresses players open, with a QR code rendered as SVG.

use axum::extract::State;
use axum::Json;
use qrcode::render::svg;
use qrcode::QrCode;

use super::error::ApiError;
use super::AppState;

/// Smallest side of the QR code picture, in pixels.
const QR_MIN_PIXELS: u32 = 240;

/// `GET /api/v1/join`: `{"urls": [...], "qr_svg": "<svg ...>"}` for the first URL.
pub async fn info(State(state): State<AppState>) -> Result<Json<serde_json::Value>, ApiError> {
    let primary = state.lan_urls.first().cloned().unwrap_or_default();
    let qr = QrCode::new(primary.as_bytes()).map_err(ApiError::internal)?;
    let svg = qr
        .render::<svg::Color<'_>>()
        .min_dimensions(QR_MIN_PIXELS, QR_MIN_PIXELS)
        .build();
    Ok(Json(
        serde_json::json!({"urls": *state.lan_urls, "qr_svg": svg}),
    ))
}
