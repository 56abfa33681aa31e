//! Admin routes that move many drawings at once: `POST /api/v1/admin/import` (an ndjson body,
//! streamed into the importer) and `GET /api/v1/admin/export` (a streamed download).
//!
//! Both bridge an async body and blocking work through a small bounded channel, so memory
//! stays flat however large the file, and neither has a deadline: they run as long as their
//! data needs.

use std::collections::HashMap;
use std::io::BufReader;

use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::Json;
use futures_util::StreamExt;
use tokio::sync::mpsc;

use super::error::ApiError;
use super::{run_blocking, AppState};
use crate::transfer::import::{self, ImportOptions, ImportReport, SourceName};

/// Body chunks buffered between the connection and the importer.
const BODY_CHUNKS_IN_FLIGHT: usize = 16;
/// The source name of an upload that names none.
const DEFAULT_SOURCE: &str = "upload";

/// `POST /api/v1/admin/import?create_shapes=true|false&source=NAME` with an ndjson body
/// (Quick, Draw! raw or simplified, or Doodlebox JSON lines), streamed → the import report
/// `{"imported","skipped_duplicates","bad_lines":[{"line","error"}],"bad_line_count",
/// "created_shapes"}`. Bad lines do not fail the request.
pub async fn import(
    State(state): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
    body: Body,
) -> Result<Json<ImportReport>, ApiError> {
    if let Some(unknown) = query
        .keys()
        .find(|k| !matches!(k.as_str(), "create_shapes" | "source"))
    {
        return Err(invalid_parameter(unknown, "is not an import parameter"));
    }
    let create_shapes = match query.get("create_shapes").map(String::as_str) {
        None | Some("false") => false,
        Some("true") => true,
        Some(_) => return Err(invalid_parameter("create_shapes", "expected true or false")),
    };
    let source = SourceName::parse(query.get("source").map_or(DEFAULT_SOURCE, String::as_str))
        .map_err(|e| invalid_parameter("source", &e.to_string()))?;
    let options = ImportOptions {
        create_shapes,
        source,
    };
    let (sender, receiver) = mpsc::channel(BODY_CHUNKS_IN_FLIGHT);
    let pump = async move {
        let mut stream = body.into_data_stream();
        while let Some(chunk) = stream.next().await {
            let failed = chunk.is_err();
            let chunk = chunk.map_err(std::io::Error::other);
            // A closed channel means the importer stopped (it failed); stop reading.
            if sender.send(chunk).await.is_err() || failed {
                break;
            }
        }
    };
    let stores = state.stores.clone();
    let ingest = state.ingest.clone();
    let work = run_blocking(move || {
        let input = BufReader::new(ChannelReader::new(receiver));
        Ok(import::import(
            &stores,
            &ingest,
            input,
            &options,
            &mut |_| {},
        )?)
    });
    let ((), report) = tokio::join!(pump, work);
    Ok(Json(report?))
}

fn invalid_parameter(name: &str, reason: &str) -> ApiError {
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_parameter",
        format!("query parameter `{name}`: {reason}"),
    )
}

/// A blocking reader over body chunks sent from the async side.
struct ChannelReader {
    receiver: mpsc::Receiver<std::io::Result<Bytes>>,
    current: Bytes,
}

impl ChannelReader {
    fn new(receiver: mpsc::Receiver<std::io::Result<Bytes>>) -> Self {
        Self {
            receiver,
            current: Bytes::new(),
        }
    }
}

impl std::io::Read for ChannelReader {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while self.current.is_empty() {
            match self.receiver.blocking_recv() {
                Some(chunk) => self.current = chunk?,
                None => return Ok(0),
            }
        }
        let n = out.len().min(self.current.len());
        out[..n].copy_from_slice(&self.current.split_to(n));
        Ok(n)
    }
}
