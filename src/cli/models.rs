//! `doodlebox models list|activate|rollback`.
//!
//! Activating a model must also swap the model in the running server's memory, so these go
//! through the server when one answers on the address in its control file (see
//! [`crate::control`]), and write the database directly otherwise (the next start serves
//! what the database names), through the same [`ModelRegistry`] as the admin API.
//! Listing reads the database, which SQLite shares with a running server.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;

use super::client::RunningServer;
use super::local::open_metadata;
use crate::data_dir::DataDir;
use crate::domain::ModelVersion;
use crate::service::models::{ManifestScores, ModelError, ModelRegistry};
use crate::service::serving::ServingError;

/// How long a command waits for the running server to swap models.
const SERVER_TIMEOUT: Duration = Duration::from_secs(60);

/// `doodlebox models list`: every version, newest first, with its validation accuracy.
pub fn list_models(data_dir: &Path) -> anyhow::Result<()> {
    let registry = ModelRegistry::offline(
        Arc::new(open_metadata(data_dir)?),
        &DataDir::new(data_dir).models(),
    );
    let models = registry.list()?;
    if models.is_empty() {
        println!("no models yet: run `doodlebox train`");
    }
    println!(
        "{:<8} {:<8} {:<44} {:>7} {:>8}  created",
        "version", "active", "accuracy (95 % interval, validation drawings)", "top-3", "drawings"
    );
    for m in models {
        let scores = ManifestScores::read(&m.manifest);
        println!(
            "{:<8} {:<8} {:<44} {:>6.1}% {:>8}  {}",
            m.version,
            if m.is_active { "yes" } else { "" },
            scores.accuracy_text(),
            scores.top3_accuracy.unwrap_or(0.0) * 100.0,
            m.manifest["dataset_size"].as_u64().unwrap_or(0),
            m.manifest["created_at"].as_str().unwrap_or(""),
        );
    }
    Ok(())
}

/// `doodlebox models activate VERSION`.
pub fn activate_model(data_dir: &Path, version: &str) -> anyhow::Result<()> {
    if let Some(server) = RunningServer::find(data_dir) {
        let answer = server.post_json(
            &format!("/api/v1/admin/models/{version}/activate"),
            None,
            SERVER_TIMEOUT,
        )?;
        println!("{version} is active on the running server ({})", server.url);
        drop(answer);
        return Ok(());
    }
    let version = ModelVersion::parse(version)
        .with_context(|| format!("there is no model {version} (`doodlebox models list`)"))?;
    let registry = ModelRegistry::offline(
        Arc::new(open_metadata(data_dir)?),
        &DataDir::new(data_dir).models(),
    );
    match registry.activate(&version) {
        Ok(()) => {}
        Err(ModelError::Serving(ServingError::UnknownVersion(_))) => {
            anyhow::bail!("there is no model {version} (`doodlebox models list`)")
        }
        Err(e @ ModelError::Serving(ServingError::InvalidModel { .. })) => {
            return Err(anyhow::Error::new(e).context(format!(
                "{version} does not load; the active model is unchanged"
            )))
        }
        Err(e) => return Err(e.into()),
    }
    println!("{version} is active (no server is running: it serves from the next start)");
    Ok(())
}

/// `doodlebox models rollback`.
pub fn rollback_model(data_dir: &Path) -> anyhow::Result<()> {
    if let Some(server) = RunningServer::find(data_dir) {
        let answer = server.post_json("/api/v1/admin/models/rollback", None, SERVER_TIMEOUT)?;
        let version = answer["active"].as_str().unwrap_or("the previous model");
        println!("rolled back: {version} is active on the running server");
        return Ok(());
    }
    let registry = ModelRegistry::offline(
        Arc::new(open_metadata(data_dir)?),
        &DataDir::new(data_dir).models(),
    );
    let previous = match registry.rollback() {
        Ok(version) => version,
        Err(ModelError::Serving(ServingError::NothingToRollBackTo)) => {
            anyhow::bail!("there is no previously active model to roll back to")
        }
        Err(e) => {
            return Err(anyhow::Error::new(e).context("the active model is unchanged"));
        }
    };
    println!("{previous} is active (no server is running: it serves from the next start)");
    Ok(())
}
