//! A player's own settings, changed by the player (today: the nickname shown with their
//! drawings). What admins do to players (listing, blocking) is review work, in
//! [`super::review`].

use std::sync::Arc;

use crate::domain::player::Nickname;
use crate::domain::PlayerId;
use crate::store::{MetadataStore, StoreError};

/// The players' own settings over the metadata store.
pub struct Players {
    metadata: Arc<dyn MetadataStore>,
}

impl Players {
    pub fn new(metadata: Arc<dyn MetadataStore>) -> Self {
        Self { metadata }
    }

    /// Sets the nickname shown with `player`'s drawings (the player row is made if needed).
    /// Blocking.
    pub fn set_nickname(&self, player: PlayerId, nickname: &Nickname) -> Result<(), StoreError> {
        self.metadata.set_nickname(player, nickname.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::metadata::temp_store;
    use crate::store::{ReviewStore, SqliteReviewStore};

    #[test]
    fn a_nickname_is_kept_for_the_player_and_can_be_changed() {
        let (_dir, store) = temp_store();
        let store = Arc::new(store);
        let review = SqliteReviewStore::open(store.clone()).unwrap();
        let players = Players::new(store);
        let player = PlayerId::random();
        players
            .set_nickname(player, &Nickname::parse("Ada").unwrap())
            .unwrap();
        players
            .set_nickname(player, &Nickname::parse("Grace").unwrap())
            .unwrap();
        let summary = review.player(player).unwrap().expect("the player exists");
        assert_eq!(summary.nickname.as_deref(), Some("Grace"));
    }
}
