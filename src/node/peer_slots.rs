//! Slots for work we do for peers (uploads we serve, stores we write), bounded in all and
//! per peer: one peer, or one misbehaving member, cannot take every slot and leave the others
//! waiting, nor tie up the blocking threads a store's disk writes run on.

use crate::id::PeerId;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

pub(crate) struct PeerSlots {
    all: Arc<Semaphore>,
    per_peer_max: usize,
    by_peer: Mutex<HashMap<PeerId, Arc<Semaphore>>>,
}

/// A held slot: the peer's and one of all; both free when it is dropped.
pub(crate) struct Slot {
    _peer: OwnedSemaphorePermit,
    _all: OwnedSemaphorePermit,
}

impl PeerSlots {
    pub(crate) fn new(all: usize, per_peer: usize) -> Self {
        PeerSlots {
            all: Arc::new(Semaphore::new(all)),
            per_peer_max: per_peer.clamp(1, all.max(1)),
            by_peer: Mutex::new(HashMap::new()),
        }
    }

    fn of_peer(&self, peer: PeerId) -> Arc<Semaphore> {
        let mut by_peer = self.by_peer.lock().unwrap_or_else(|e| e.into_inner());
        // Peers with nothing held or awaited are forgotten, so the map stays as small as the
        // work: permits and callers on their way to one hold a clone.
        by_peer.retain(|_, s| Arc::strong_count(s) > 1);
        by_peer
            .entry(peer)
            .or_insert_with(|| Arc::new(Semaphore::new(self.per_peer_max)))
            .clone()
    }

    /// Waits for a slot: first the peer's own, then one of all. None once closed.
    pub(crate) async fn acquire(&self, peer: PeerId) -> Option<Slot> {
        let own = self.of_peer(peer).acquire_owned().await.ok()?;
        let all = self.all.clone().acquire_owned().await.ok()?;
        Some(Slot {
            _peer: own,
            _all: all,
        })
    }

    /// A slot now, or None when the peer or everyone already holds all they may.
    pub(crate) fn try_acquire(&self, peer: PeerId) -> Option<Slot> {
        let own = self.of_peer(peer).try_acquire_owned().ok()?;
        let all = self.all.clone().try_acquire_owned().ok()?;
        Some(Slot {
            _peer: own,
            _all: all,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn one_peer_takes_at_most_its_share_and_others_still_get_in() {
        let slots = PeerSlots::new(4, 2);
        let (a, b, c) = (PeerId([1; 32]), PeerId([2; 32]), PeerId([3; 32]));
        let a1 = slots.try_acquire(a).unwrap();
        let _a2 = slots.try_acquire(a).unwrap();
        assert!(slots.try_acquire(a).is_none(), "a third for one peer");
        let _b1 = slots.try_acquire(b).unwrap();
        let _b2 = slots.try_acquire(b).unwrap();
        assert!(slots.try_acquire(c).is_none(), "all four are taken");
        // A waiting peer gets in when a slot frees up.
        let waiting = tokio::time::timeout(std::time::Duration::from_millis(50), slots.acquire(c));
        assert!(waiting.await.is_err());
        drop(a1);
        let c1 = tokio::time::timeout(std::time::Duration::from_secs(1), slots.acquire(c))
            .await
            .unwrap();
        assert!(c1.is_some());
        assert!(slots.try_acquire(a).is_none(), "the freed slot went to c");
    }

    #[test]
    fn idle_peers_are_forgotten() {
        let slots = PeerSlots::new(8, 2);
        for n in 0..100u8 {
            drop(slots.try_acquire(PeerId([n; 32])));
        }
        let _held = slots.try_acquire(PeerId([200; 32])).unwrap();
        assert!(slots.by_peer.lock().unwrap().len() <= 1);
    }
}
