//! Admin routes that move many drawings at once: `POST /api/v1/admin/import` (an ndjson body,
//! streamed to a file under the data directory, or into the database in cluster mode, then
//! imported by an `import` job) and
//! `GET /api/v1/admin/export` (a streamed download).
//!
//! Both bridge an async body and blocking work through a small bounded channel, so memory
//! stays flat however large the file, and neither has a deadline: they run as long as their
//! data needs.

use std::collections::HashMap;

use axum::body::{Body, Bytes};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use tokio::sync::mpsc;

use super::error::{ApiError, RequestError};
use super::{run_blocking, AppState};
use crate::jobs::import::{keep_upload, ImportJob, MAX_UPLOAD_BYTES};
use crate::store::JobKind;
use crate::transfer::export::{self, ExportQuery};
use crate::transfer::import::{ImportOptions, SourceName};

/// Body chunks buffered between the connection and the importer.
const BODY_CHUNKS_IN_FLIGHT: usize = 16;
/// The source name of an upload that names none.
const DEFAULT_SOURCE: &str = "upload";
/// Bytes of an export gathered before they are sent as one chunk.
const EXPORT_CHUNK_BYTES: usize = 64 * 1024;
/// Export chunks buffered between the exporter and the connection.
const EXPORT_CHUNKS_IN_FLIGHT: usize = 8;

/// `POST /api/v1/admin/import?create_shapes=true|false&source=NAME` with an ndjson body
/// (Quick, Draw! raw or simplified, or Doodlebox JSON lines), saved under
/// `<data>/jobs/uploads/` (in cluster mode stored in the database, committed before the
/// answer, so any replica runs the job; at most [`MAX_UPLOAD_BYTES`], else `413`) → `202` with the
/// `import` job. Its `result`, once completed, is the import report `{"imported",
/// "skipped_duplicates","bad_lines":[{"line","error"}],"bad_line_count","created_shapes"}`;
/// bad lines do not fail it. Bad parameters are refused (`422`) before anything is saved.
pub async fn import(
    State(state): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
    body: Body,
) -> Result<Response, ApiError> {
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
    let (data_dir, stores) = (state.data_dir.clone(), state.stores.clone());
    let work = run_blocking(move || {
        let mut input = ChannelReader::new(receiver);
        Ok(keep_upload(
            &stores,
            &data_dir,
            &mut input,
            MAX_UPLOAD_BYTES,
        )?)
    });
    let ((), upload) = tokio::join!(pump, work);
    let upload = upload?;
    let config = ImportJob::new(&upload, &options).to_json();
    let (scheduler, stores) = (state.scheduler.clone(), state.stores.clone());
    let (job, _) = run_blocking(move || {
        scheduler
            .enqueue_kind(JobKind::Import, &config)
            .map_err(|e| {
                // No job will read it.
                upload.discard(&stores);
                ApiError::from(e)
            })
    })
    .await?;
    Ok(super::jobs::accepted(&job))
}

/// `GET /api/v1/admin/export?format=quickdraw-raw|quickdraw-simplified|npy|jsonl&<filters>`:
/// the matching drawings, streamed as they are read (no deadline, flat memory). `npy` with
/// `shape=` is that shape's `.npy` file; without, every shape as one `.npz` archive (a zip
/// of `<shape>.npy`). The file name (`Content-Disposition`) says what is inside. Bad
/// parameters → `422 invalid_filter` naming them.
///
/// The exporter runs on a blocking thread of its own for the whole download, feeding the
/// response body through a bounded channel: not `run_blocking`, which answers once.
pub async fn export(
    State(state): State<AppState>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(pairs) = query.map_err(|e| RequestError::InvalidFilter(e.body_text()))?;
    let borrowed: Vec<(&str, &str)> = pairs
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let query = ExportQuery::parse(&borrowed)?;
    let name = query.file_name(time::OffsetDateTime::now_utc().date());
    let disposition = HeaderValue::from_str(&format!("attachment; filename=\"{name}\""))
        .map_err(ApiError::internal)?;
    let (sender, receiver) = mpsc::channel(EXPORT_CHUNKS_IN_FLIGHT);
    let stores = state.stores.clone();
    let content_type = query.content_type();
    tokio::task::spawn_blocking(move || {
        let mut out = ChannelWriter {
            sender: sender.clone(),
            buffer: Vec::with_capacity(EXPORT_CHUNK_BYTES),
        };
        match export::export(&stores, &query, &mut out) {
            Ok(_) => {}
            // The client went away: nothing to tell anyone.
            Err(export::ExportError::Write(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
            Err(e) => {
                tracing::error!(error = %e, "export failed midway; the download is cut short");
                // An error item makes the connection end without the last chunk, so the
                // client sees a broken download rather than a short file that looks whole.
                let _ = sender.blocking_send(Err(std::io::Error::other(e.to_string())));
            }
        }
    });
    let stream = futures_util::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|item| (item, receiver))
    });
    Ok((
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        Body::from_stream(stream),
    )
        .into_response())
}

/// A blocking writer that sends what is written, in chunks, to the response body.
struct ChannelWriter {
    sender: mpsc::Sender<std::io::Result<Bytes>>,
    buffer: Vec<u8>,
}

impl ChannelWriter {
    fn send(&mut self) -> std::io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(
            &mut self.buffer,
            Vec::with_capacity(EXPORT_CHUNK_BYTES),
        ));
        self.sender
            .blocking_send(Ok(chunk))
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::BrokenPipe))
    }
}

impl std::io::Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buffer.extend_from_slice(data);
        if self.buffer.len() >= EXPORT_CHUNK_BYTES {
            self.send()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.send()
    }
}

fn invalid_parameter(name: &str, reason: &str) -> ApiError {
    RequestError::InvalidParameter {
        name: name.to_owned(),
        reason: reason.to_owned(),
    }
    .into()
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
