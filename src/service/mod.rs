//! The use cases: one module per feature, each the single home of what the HTTP handlers and
//! the CLI commands do. A handler or a command parses its input, calls one service function
//! and maps the answer; the service talks to the stores, the model and the queue.

pub mod accounts;
pub mod backup;
pub mod limits;
pub mod prompter;
pub mod quality;
pub mod serving;
pub mod thumbnails;
