//! API integration tests: one binary, a real server on 127.0.0.1:0 per test with its own
//! temporary data directory.

mod assets;
mod auth;
mod backup;
mod drawings;
mod edge;
mod events;
mod helpers;
mod jobs;
mod keys;
mod model_card;
mod models;
mod openapi;
mod ops;
mod quality;
mod reconcile;
mod review;
mod shapes;
mod shapes_admin;
#[path = "../common/synthetic.rs"]
mod synthetic;
mod training;
mod transfer;
