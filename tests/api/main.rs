//! API integration tests: one binary, a real server on 127.0.0.1:0 per test with its own
//! temporary data directory.

mod assets;
mod drawings;
mod helpers;
mod keys;
mod models;
mod ops;
mod reconcile;
mod review;
mod shapes;
#[path = "../common/synthetic.rs"]
mod synthetic;
mod training;
mod transfer;
