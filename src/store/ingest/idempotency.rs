//! Idempotency inside a group commit: a submission whose key was stored before, or came
//! earlier in the same batch, is answered with the first drawing's id when its body is the
//! same, and refused as a conflict when it is not. Only the first of a batch is stored.

use std::collections::HashMap;

use super::writer::Plan;
use super::{IngestError, SubmitOutcome};
use crate::domain::{IdempotencyKey, PlayerId};
use crate::store::IdempotencyStore;

/// The keys one batch has met so far, each with the body digest and new-record index of the
/// first submission that carried it.
#[derive(Default)]
pub(super) struct BatchKeys(HashMap<(PlayerId, String), ([u8; 16], usize)>);

impl BatchKeys {
    /// How a submission with `key` is answered without a new record, or `None` when it is
    /// new: it is then remembered as the batch's new record number `index`.
    pub(super) fn check(
        &mut self,
        metadata: &dyn IdempotencyStore,
        player: PlayerId,
        key: &IdempotencyKey,
        digest: &[u8; 16],
        index: usize,
    ) -> Option<Plan> {
        if let Some((first_digest, first)) = self.0.get(&(player, key.as_str().to_owned())) {
            return Some(if first_digest == digest {
                Plan::SameAs(*first)
            } else {
                Plan::Done(Err(IngestError::IdempotencyConflict))
            });
        }
        match metadata.idempotency(player, key) {
            Ok(Some(found)) if found.body_digest == *digest => {
                return Some(Plan::Done(Ok(SubmitOutcome::Duplicate(found.drawing_id))))
            }
            Ok(Some(_)) => return Some(Plan::Done(Err(IngestError::IdempotencyConflict))),
            Ok(None) => {}
            Err(e) => return Some(Plan::Done(Err(IngestError::Storage(e.to_string())))),
        }
        self.0
            .insert((player, key.as_str().to_owned()), (*digest, index));
        None
    }
}
