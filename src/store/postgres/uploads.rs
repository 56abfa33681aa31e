//! [`UploadStore`] on PostgreSQL: an upload is rows of `job_uploads`, one per chunk of
//! [`UPLOAD_CHUNK_BYTES`], inserted in one transaction, so no process sees part of one.
//! (A large object would do as well; plain rows keep `pg_dump` and `verify` simple.)

use std::io::Read;

use super::PgStore;
use crate::store::uploads::{UploadStore, UploadStoreError, UPLOAD_CHUNK_BYTES};
use crate::store::{now_ms, StoreError};

/// Reads from `body` until `buffer` is full or the body ends; returns how many bytes came.
fn fill(body: &mut dyn Read, buffer: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buffer.len() {
        match body.read(&mut buffer[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

impl UploadStore for PgStore {
    fn store_upload(
        &self,
        name: &str,
        body: &mut dyn Read,
        limit: u64,
    ) -> Result<u64, UploadStoreError> {
        let mut conn = self.conn()?;
        let mut tx = conn.transaction().map_err(StoreError::from)?;
        let insert = tx
            .prepare(
                "INSERT INTO job_uploads (name, seq, bytes, created_at) VALUES ($1, $2, $3, $4)",
            )
            .map_err(StoreError::from)?;
        let now = now_ms() as i64;
        let mut buffer = vec![0; UPLOAD_CHUNK_BYTES];
        let (mut total, mut seq) = (0u64, 0i64);
        loop {
            let filled = fill(body, &mut buffer).map_err(UploadStoreError::Read)?;
            total += filled as u64;
            if total > limit {
                // Dropping the transaction rolls back what was inserted.
                return Err(UploadStoreError::TooLarge { limit });
            }
            // Chunk 0 always exists, empty for an empty upload: a missing one means the
            // upload is gone, not that it was empty.
            if filled > 0 || seq == 0 {
                let chunk: &[u8] = &buffer[..filled];
                tx.execute(&insert, &[&name, &seq, &chunk, &now])
                    .map_err(StoreError::from)?;
            }
            seq += 1;
            if filled < buffer.len() {
                break;
            }
        }
        tx.commit().map_err(StoreError::from)?;
        Ok(total)
    }

    fn upload_chunk(&self, name: &str, index: i64) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .conn()?
            .query_opt(
                "SELECT bytes FROM job_uploads WHERE name = $1 AND seq = $2",
                &[&name, &index],
            )?
            .map(|row| row.try_get(0))
            .transpose()?)
    }

    fn delete_upload(&self, name: &str) -> Result<(), StoreError> {
        self.conn()?
            .execute("DELETE FROM job_uploads WHERE name = $1", &[&name])?;
        Ok(())
    }

    fn sweep_uploads(&self, before_ms: i64) -> Result<usize, StoreError> {
        let removed = self.conn()?.execute(
            "DELETE FROM job_uploads u WHERE u.created_at < $1 AND NOT EXISTS (
                 SELECT 1 FROM training_jobs j WHERE j.kind = 'import'
                 AND j.status IN ('pending', 'queued', 'running')
                 AND j.config::jsonb ->> 'upload' = u.name)",
            &[&before_ms],
        )?;
        Ok(removed as usize)
    }
}
