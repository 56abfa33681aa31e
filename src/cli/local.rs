//! What the commands that work on a data directory directly share: opening its metadata
//! database, and printing times.

use std::path::Path;

use anyhow::{bail, Context};

use crate::store::{metadata_path, SqliteMetadataStore};

/// Opens the metadata database of `data_dir`, which must exist already. SQLite admits
/// several processes, so this works while a server runs.
pub fn open_metadata(data_dir: &Path) -> anyhow::Result<SqliteMetadataStore> {
    if !metadata_path(data_dir).exists() {
        bail!(
            "{} holds no Doodlebox data yet (start the server once, or pass --data-dir)",
            data_dir.display()
        );
    }
    SqliteMetadataStore::open(&metadata_path(data_dir))
        .with_context(|| format!("opening the metadata database in {}", data_dir.display()))
}

/// A time in ms since the Unix epoch as `YYYY-MM-DD HH:MM` (UTC).
pub fn format_ms(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| {
            t.format(time::macros::format_description!(
                "[year]-[month]-[day] [hour]:[minute]"
            ))
            .ok()
        })
        .unwrap_or_else(|| ms.to_string())
}
