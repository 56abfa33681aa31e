//! [`BlobStore`] on PostgreSQL: stroke records as `bytea` in `stroke_records`, keyed by the
//! drawing id. A committed insert is durable (PostgreSQL syncs its WAL at commit), so
//! `put_durably` is one multi-row insert in one transaction.

use super::{parse_id, PgStore};
use crate::domain::DrawingId;
use crate::store::blobs::{BlobStore, RecordIter};
use crate::store::StoreError;

/// Records one page of [`BlobStore::records_after`] reads.
const PAGE: i64 = 1_000;

impl BlobStore for PgStore {
    fn put_durably(&self, records: &[(DrawingId, Vec<u8>)]) -> Result<(), StoreError> {
        if records.is_empty() {
            return Ok(());
        }
        let ids: Vec<String> = records.iter().map(|(id, _)| id.to_string()).collect();
        let bytes: Vec<&[u8]> = records.iter().map(|(_, r)| r.as_slice()).collect();
        self.conn()?.execute(
            "INSERT INTO stroke_records (id, record) SELECT * FROM unnest($1::text[], $2::bytea[])
             ON CONFLICT (id) DO UPDATE SET record = excluded.record",
            &[&ids, &bytes],
        )?;
        Ok(())
    }

    fn remove_durably(&self, ids: &[DrawingId]) -> Result<(), StoreError> {
        let ids: Vec<String> = ids.iter().map(|id| id.to_string()).collect();
        self.conn()?.execute(
            "DELETE FROM stroke_records WHERE id = ANY($1::text[])",
            &[&ids],
        )?;
        Ok(())
    }

    fn get(&self, id: DrawingId) -> Result<Option<Vec<u8>>, StoreError> {
        let row = self.conn()?.query_opt(
            "SELECT record FROM stroke_records WHERE id = $1",
            &[&id.to_string()],
        )?;
        Ok(row.map(|r| r.try_get(0)).transpose()?)
    }

    fn records_after(&self, after: Option<DrawingId>) -> RecordIter<'_> {
        Box::new(Pages {
            store: self,
            after: after.map(|id| id.to_string()).unwrap_or_default(),
            page: Vec::new().into_iter(),
            done: false,
        })
    }

    fn last_id(&self) -> Result<Option<DrawingId>, StoreError> {
        let id: Option<String> = self
            .conn()?
            .query_one("SELECT max(id) FROM stroke_records", &[])?
            .try_get(0)?;
        id.map(parse_id).transpose()
    }

    fn size_on_disk(&self) -> Result<u64, StoreError> {
        let size: i64 = self
            .conn()?
            .query_one("SELECT pg_total_relation_size('stroke_records')", &[])?
            .try_get(0)?;
        Ok(size.max(0) as u64)
    }
}

/// The walk of [`BlobStore::records_after`]: one query per page, in id order.
struct Pages<'a> {
    store: &'a PgStore,
    /// The last id returned ("" before the first).
    after: String,
    page: std::vec::IntoIter<(String, Vec<u8>)>,
    done: bool,
}

impl Pages<'_> {
    fn fetch(&mut self) -> Result<(), StoreError> {
        let rows = self.store.conn()?.query(
            "SELECT id, record FROM stroke_records WHERE id > $1 ORDER BY id LIMIT $2",
            &[&self.after, &PAGE],
        )?;
        self.done = (rows.len() as i64) < PAGE;
        let page = rows
            .into_iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect::<Result<Vec<_>, StoreError>>()?;
        self.page = page.into_iter();
        Ok(())
    }
}

impl Iterator for Pages<'_> {
    type Item = Result<(DrawingId, Vec<u8>), StoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some((id, record)) = self.page.next() {
                self.after.clone_from(&id);
                return Some(parse_id(id).map(|id| (id, record)));
            }
            if self.done {
                return None;
            }
            if let Err(e) = self.fetch() {
                self.done = true;
                return Some(Err(e));
            }
        }
    }
}
