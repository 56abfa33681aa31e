//! `doodlebox keys create|list|revoke`: API keys for implementors.
//!
//! Keys live only in SQLite, which admits several processes, so these commands write the
//! database directly (a running server sees a new key at once and a revoked one within
//! seconds). The use cases live in [`crate::service::api_keys`], shared with the admin API.

use std::path::Path;
use std::sync::Arc;

use super::local::{format_ms, open_metadata};
use crate::domain::ApiKeyId;
use crate::service::api_keys::{ApiKeyError, ApiKeys};

/// The key service over `data_dir`'s database.
fn api_keys(data_dir: &Path) -> anyhow::Result<ApiKeys> {
    Ok(ApiKeys::new(Arc::new(open_metadata(data_dir)?)))
}

/// `doodlebox keys create NAME`: the key is printed alone on the last line.
pub fn create_key(data_dir: &Path, name: &str, rate_per_min: Option<u32>) -> anyhow::Result<()> {
    let created = api_keys(data_dir)?.create(name, rate_per_min)?;
    println!(
        "created API key {} {:?} ({} classify requests a minute). It is shown only now; send it as",
        created.row.id, created.row.name, created.row.rate_per_min
    );
    println!("`Authorization: Bearer <key>`. The key:");
    println!("{}", created.key);
    Ok(())
}

/// `doodlebox keys list`.
pub fn list_keys(data_dir: &Path) -> anyhow::Result<()> {
    let keys = api_keys(data_dir)?.list()?;
    if keys.is_empty() {
        println!("no API keys yet: `doodlebox keys create NAME` makes one");
        return Ok(());
    }
    println!(
        "{:>4}  {:<14} {:<24} {:>8}  {:<20} state",
        "id", "prefix", "name", "per min", "last used"
    );
    for k in keys {
        println!(
            "{:>4}  {:<14} {:<24} {:>8}  {:<20} {}",
            k.id,
            k.prefix,
            k.name,
            k.rate_per_min,
            k.last_used_at
                .map(format_ms)
                .unwrap_or_else(|| "never".into()),
            if k.revoked_at.is_some() {
                "revoked"
            } else {
                "live"
            }
        );
    }
    Ok(())
}

/// `doodlebox keys revoke ID`.
pub fn revoke_key(data_dir: &Path, id: i64) -> anyhow::Result<()> {
    let id = ApiKeyId::from_row(id);
    match api_keys(data_dir)?.revoke(id) {
        Ok(k) => {
            println!(
                "revoked API key {} {:?} (a running server refuses it within seconds)",
                k.id, k.name
            );
            Ok(())
        }
        Err(ApiKeyError::NotFound(_)) => {
            anyhow::bail!("there is no API key {id} (`doodlebox keys list` shows them)")
        }
        Err(e) => Err(e.into()),
    }
}
