//! The use cases: one module per feature, each the single home of what the HTTP handlers and
//! the CLI commands do. A handler or a command parses its input, calls one service function
//! and maps the answer; the service talks to the stores, the model and the queue.
//!
//! One convention for blocking work: services over the stores are synchronous. They take
//! typed domain inputs (ids, names, checked values), return typed results or their own
//! `thiserror` enum, and block freely (SQLite, sled, loading a model, removing files). An
//! HTTP handler runs each call on a blocking thread through [`crate::http::run_blocking`];
//! a CLI command, which has no runtime to protect, calls it directly. The exception is
//! [`submit`], which is async because the group-commit writer and the classifier answer over
//! channels on the runtime; its one blocking read goes to a blocking thread inside it.
//!
//! Errors reach HTTP through the one table in `http/error.rs`, never by a handler choosing a
//! status.

pub mod accounts;
pub mod api_keys;
pub mod artifacts;
pub mod backup;
pub mod cluster;
pub mod evaluation;
pub mod events;
pub mod icons;
pub mod limits;
pub mod migrate;
pub mod models;
pub mod players;
pub mod prompter;
pub mod quality;
pub mod review;
pub mod serving;
pub mod shapes;
pub mod submit;
pub mod thumbnails;
