//! API keys for implementors, the one home of creating, listing and revoking them: the admin
//! routes (`/api/v1/admin/keys`) and `doodlebox keys` both call [`ApiKeys`].
//!
//! Synchronous, like every store-backed service: a handler runs these on a blocking thread,
//! the CLI calls them directly.

use std::sync::Arc;

use thiserror::Error;

use crate::domain::ApiKeyId;
use crate::store::keys::{
    ApiKeyRow, CreatedApiKey, KeyAuthenticator, KeyInputError, KeyStore, NewApiKey,
};
use crate::store::StoreError;

/// Why an API key operation failed.
#[derive(Debug, Error)]
pub enum ApiKeyError {
    /// The name or rate of a new key is out of bounds.
    #[error(transparent)]
    Input(#[from] KeyInputError),
    /// No key has this id.
    #[error("there is no API key {0}")]
    NotFound(ApiKeyId),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Creates, lists and revokes keys. A server passes its key cache so that a revoked key is
/// refused at once; the CLI, in another process, has none (the server's cache expires).
pub struct ApiKeys {
    store: Arc<dyn KeyStore>,
    /// The running server's in-memory key lookups, dropped after a revocation.
    cache: Option<Arc<KeyAuthenticator>>,
}

impl ApiKeys {
    pub fn new(store: Arc<dyn KeyStore>) -> Self {
        Self { store, cache: None }
    }

    /// The same, forgetting `cache`'s lookups whenever a key is revoked.
    pub fn with_cache(store: Arc<dyn KeyStore>, cache: Arc<KeyAuthenticator>) -> Self {
        Self {
            store,
            cache: Some(cache),
        }
    }

    /// Creates a key named `name` allowed `rate_per_min` classify requests a minute (the
    /// default when `None`); the answer is the only place its secret ever appears.
    pub fn create(
        &self,
        name: &str,
        rate_per_min: Option<u32>,
    ) -> Result<CreatedApiKey, ApiKeyError> {
        let new = NewApiKey::parse(name, rate_per_min)?;
        Ok(self.store.create_key(&new)?)
    }

    /// Every key, newest first, revoked ones included, without secrets.
    pub fn list(&self) -> Result<Vec<ApiKeyRow>, ApiKeyError> {
        Ok(self.store.keys()?)
    }

    /// Revokes key `id` (revoking twice keeps the first time) and answers its row.
    pub fn revoke(&self, id: ApiKeyId) -> Result<ApiKeyRow, ApiKeyError> {
        let row = self
            .store
            .revoke_key(id.get())?
            .ok_or(ApiKeyError::NotFound(id))?;
        if let Some(cache) = &self.cache {
            cache.forget_all();
        }
        Ok(row)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::SqliteMetadataStore;

    fn keys() -> (tempfile::TempDir, ApiKeys) {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteMetadataStore::open(&dir.path().join("meta.sqlite")).unwrap();
        (dir, ApiKeys::new(Arc::new(store)))
    }

    #[test]
    fn a_created_key_is_listed_without_its_secret_and_revoking_it_marks_it_revoked() {
        let (_dir, keys) = keys();
        let created = keys.create("  robot  ", None).unwrap();
        assert_eq!(created.row.name, "robot");
        let listed = keys.list().unwrap();
        assert_eq!(listed, vec![created.row.clone()]);
        let id = ApiKeyId::from_row(created.row.id);
        let revoked = keys.revoke(id).unwrap();
        assert!(revoked.revoked_at.is_some());
        assert_eq!(keys.list().unwrap()[0].revoked_at, revoked.revoked_at);
    }

    #[test]
    fn a_bad_name_or_rate_is_refused_and_stores_nothing() {
        let (_dir, keys) = keys();
        assert!(matches!(keys.create(" ", None), Err(ApiKeyError::Input(_))));
        assert!(matches!(
            keys.create("robot", Some(0)),
            Err(ApiKeyError::Input(_))
        ));
        assert!(keys.list().unwrap().is_empty());
    }

    #[test]
    fn revoking_an_unknown_key_says_not_found() {
        let (_dir, keys) = keys();
        let id = ApiKeyId::from_row(7);
        assert!(matches!(keys.revoke(id), Err(ApiKeyError::NotFound(i)) if i == id));
    }
}
