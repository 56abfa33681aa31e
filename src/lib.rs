//! Doodlebox: a one-binary appliance that collects crowdsourced drawings, trains a
//! classifier on them and serves it.
//!
//! # Map of the crate
//! - [`cli`] and [`config`]: the command line, parsed once into a validated [`config::Config`].
//! - [`app`]: [`app::App::build`] opens the stores, reconciles them, starts the group-commit
//!   writer and binds; `run_until_stopped` serves until a signal.
//! - [`accounts`]: admin accounts (argon2id passwords, server-side sessions, the first-admin
//!   setup link); [`http::auth`] guards every admin route with them.
//! - [`control`]: the control file through which commands on this machine reach the running
//!   server (the stroke store admits one process).
//! - [`domain`]: pure types and validation (drawings, ids, shape names) and the compact
//!   binary record a drawing is stored as. No I/O.
//! - [`store`]: the only module that touches sled (stroke records) or SQLite (metadata),
//!   behind the `BlobStore` and `MetadataStore` interfaces, plus the group-commit writer and
//!   start-up reconciliation.
//! - [`http`]: axum routes, the one error mapping, extractors and the embedded web UI.
//! - [`limits`]: token-bucket rate limits per player session, client address and API key.
//! - [`metrics`]: the Prometheus metrics served at `/metrics`.
//! - [`backup`] and [`backup_cli`]: `doodlebox backup|restore|verify`, an online consistent
//!   snapshot of both stores and the models, the way back, and the cross-store checks.
//! - [`transfer`] and [`transfer_cli`]: Quick, Draw! import and export (ndjson, npy, JSON
//!   lines), from the CLI (through the running server when there is one) and the admin API.
//! - [`thumbnail`]: PNG thumbnails of drawings for the admin review screens, cached.
//! - [`quality`]: the background scorer (quality score of each new drawing, auto-flag) and
//!   the resumable rescore walk after a model is activated; [`prompter`] picks prompts
//!   favouring shapes with few good drawings or a weak class in the active model.
//! - [`manage_cli`]: `doodlebox keys ...` and `doodlebox models activate|rollback`, which work
//!   whether or not a server runs.
//!
//! # How a drawing flows
//! `POST /api/v1/drawings` → `http::drawings::submit` parses the body into a
//! [`domain::Drawing`] (bad input ends here with a 4xx) → `store::Ingest::submit` queues it →
//! the group-commit thread batches it with its neighbours, writes and syncs the stroke
//! records in sled, then inserts the rows in one SQLite transaction (`synchronous=FULL`) →
//! only then does the handler answer `201`. After a crash, `store::reconcile` rebuilds rows
//! for records that have none. Two guards stand before the writer: below the free-space
//! watermark (`store::disk`) a submission gets `507` at once; after repeated storage
//! failures the circuit breaker (`store::breaker`) answers `503` with `Retry-After`.
//! for records that have none. After the `201` the drawing goes to the `quality` thread,
//! which scores it (and flags it when the score is below the threshold) in a later batch.

pub mod app;
pub mod cli;
pub mod config;
pub mod control;
pub mod data_dir;
pub mod device;
pub mod domain;
pub mod fault;
#[cfg(any(test, feature = "fuzzing"))]
pub mod fuzz;
pub mod http;
pub mod jobs;
pub mod lan;
pub mod ml;
pub mod service;
pub mod store;
pub mod telemetry;
pub mod time;
pub mod transfer;
