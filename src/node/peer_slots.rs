//! Slots for work we do for peers (uploads we serve, stores we write), bounded in all and
//! per peer: one peer, or one misbehaving member, cannot take every slot and leave the others
//! waiting, nor tie up the blocking threads a store's disk writes run on.
//!
//! A freed slot goes to the waiting peer that holds the fewest, not to the longest waiter: a
//! member that asks for hundreds at once waits behind everyone else's first ask instead of
//! ahead of it.

use crate::id::PeerId;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::oneshot;

pub(crate) struct PeerSlots {
    ledger: Arc<Mutex<Ledger>>,
}

struct Ledger {
    per_peer_max: usize,
    free: usize,
    held: HashMap<PeerId, usize>,
    /// Per peer, its asks in order: (ticket, where to hand the slot).
    waiting: HashMap<PeerId, VecDeque<(u64, oneshot::Sender<Slot>)>>,
    next_ticket: u64,
}

/// A held slot; it is handed on (or freed) when dropped.
pub(crate) struct Slot {
    ledger: Arc<Mutex<Ledger>>,
    peer: PeerId,
}

impl PeerSlots {
    pub(crate) fn new(all: usize, per_peer: usize) -> Self {
        PeerSlots {
            ledger: Arc::new(Mutex::new(Ledger {
                per_peer_max: per_peer.clamp(1, all.max(1)),
                free: all,
                held: HashMap::new(),
                waiting: HashMap::new(),
                next_ticket: 0,
            })),
        }
    }

    fn ledger(&self) -> MutexGuard<'_, Ledger> {
        lock(&self.ledger)
    }

    /// Waits for a slot. None if the slots are dropped first (the node is going away).
    pub(crate) async fn acquire(&self, peer: PeerId) -> Option<Slot> {
        let handed = {
            let mut l = self.ledger();
            if let Some(slot) = self.grant_now(&mut l, peer) {
                return Some(slot);
            }
            let (tx, rx) = oneshot::channel();
            let ticket = l.next_ticket;
            l.next_ticket += 1;
            l.waiting.entry(peer).or_default().push_back((ticket, tx));
            rx
        };
        // Dropped while waiting: the ask is skipped; dropped just after the hand-off: the slot
        // inside the channel is dropped with it, which hands it on.
        handed.await.ok()
    }

    /// A slot now, or None when the peer or everyone already holds all they may.
    pub(crate) fn try_acquire(&self, peer: PeerId) -> Option<Slot> {
        let mut l = self.ledger();
        self.grant_now(&mut l, peer)
    }

    fn grant_now(&self, l: &mut Ledger, peer: PeerId) -> Option<Slot> {
        // A free slot means no eligible peer is waiting (a release hands it on at once), so
        // taking it jumps no queue.
        if l.free == 0 || l.held_by(&peer) >= l.per_peer_max {
            return None;
        }
        l.take(peer);
        Some(Slot {
            ledger: self.ledger.clone(),
            peer,
        })
    }
}

fn lock(ledger: &Mutex<Ledger>) -> MutexGuard<'_, Ledger> {
    ledger.lock().unwrap_or_else(|e| e.into_inner())
}

impl Ledger {
    fn held_by(&self, peer: &PeerId) -> usize {
        self.held.get(peer).copied().unwrap_or(0)
    }

    fn take(&mut self, peer: PeerId) {
        self.free -= 1;
        *self.held.entry(peer).or_default() += 1;
    }

    fn give_back(&mut self, peer: &PeerId) {
        self.free += 1;
        if let Some(n) = self.held.get_mut(peer) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.held.remove(peer);
            }
        }
    }

    /// The next live ask to serve: of the peers below their share, the one holding fewest,
    /// then the oldest ask. Asks whose caller gave up are dropped on the way.
    fn next_ask(&mut self) -> Option<(PeerId, oneshot::Sender<Slot>)> {
        self.waiting.retain(|_, asks| {
            while asks.front().is_some_and(|(_, tx)| tx.is_closed()) {
                asks.pop_front();
            }
            !asks.is_empty()
        });
        let (peer, _) = self
            .waiting
            .iter()
            .filter(|(p, _)| self.held_by(p) < self.per_peer_max)
            .filter_map(|(p, asks)| asks.front().map(|(ticket, _)| (*p, *ticket)))
            .min_by_key(|(p, ticket)| (self.held_by(p), *ticket))?;
        let asks = self.waiting.get_mut(&peer)?;
        let (_, tx) = asks.pop_front()?;
        if asks.is_empty() {
            self.waiting.remove(&peer);
        }
        Some((peer, tx))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let handed = {
            let mut l = lock(&self.ledger);
            l.give_back(&self.peer);
            l.next_ask().map(|(peer, tx)| {
                l.take(peer);
                (
                    tx,
                    Slot {
                        ledger: self.ledger.clone(),
                        peer,
                    },
                )
            })
        };
        // Outside the lock: a slot the asker no longer wants comes back here, to the next.
        if let Some((tx, slot)) = handed
            && let Err(unwanted) = tx.send(slot)
        {
            drop(unwanted);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

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
        let waiting = tokio::time::timeout(Duration::from_millis(50), slots.acquire(c));
        assert!(waiting.await.is_err());
        drop(a1);
        let c1 = tokio::time::timeout(Duration::from_secs(1), slots.acquire(c))
            .await
            .unwrap();
        assert!(c1.is_some());
        assert!(slots.try_acquire(a).is_none(), "the freed slot went to c");
    }

    #[tokio::test]
    async fn a_freed_slot_goes_to_the_peer_holding_fewest_not_the_oldest_ask() {
        let slots = Arc::new(PeerSlots::new(2, 2));
        let (greedy, other) = (PeerId([1; 32]), PeerId([2; 32]));
        let first = slots.try_acquire(greedy).unwrap();
        let _second = slots.try_acquire(greedy).unwrap();
        // The greedy peer asks for 20 more, then the other peer for one.
        let (got_tx, mut got_rx) = tokio::sync::mpsc::unbounded_channel();
        let mut asks = Vec::new();
        for who in std::iter::repeat_n(greedy, 20).chain([other]) {
            let (slots, got_tx) = (slots.clone(), got_tx.clone());
            asks.push(tokio::spawn(async move {
                let slot = slots.acquire(who).await;
                let _ = got_tx.send(who);
                // Held until the test ends.
                std::future::pending::<()>().await;
                drop(slot);
            }));
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        drop(first);
        let who = tokio::time::timeout(Duration::from_secs(1), got_rx.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(who, other, "the freed slot went to the oldest ask");
        for a in asks {
            a.abort();
        }
    }

    #[tokio::test]
    async fn an_ask_given_up_passes_its_slot_on() {
        let slots = Arc::new(PeerSlots::new(1, 1));
        let (a, b, c) = (PeerId([1; 32]), PeerId([2; 32]), PeerId([3; 32]));
        let held = slots.try_acquire(a).unwrap();
        // b gives up waiting; c, asking after b, keeps waiting.
        assert!(
            tokio::time::timeout(Duration::from_millis(20), slots.acquire(b))
                .await
                .is_err()
        );
        let c_waits = tokio::spawn({
            let slots = slots.clone();
            async move { slots.acquire(c).await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(slots.ledger().waiting.len(), 2, "b's ask and c's");
        drop(held);
        let c_slot = tokio::time::timeout(Duration::from_secs(1), c_waits)
            .await
            .unwrap()
            .unwrap();
        assert!(c_slot.is_some());
        assert!(slots.ledger().waiting.is_empty());
        drop(c_slot);
        assert!(slots.try_acquire(b).is_some(), "the slot came back");
    }

    #[test]
    fn a_slot_handed_to_an_ask_dropped_before_it_looked_comes_back() {
        use futures_util::FutureExt;
        let slots = PeerSlots::new(1, 1);
        let (a, b, c) = (PeerId([1; 32]), PeerId([2; 32]), PeerId([3; 32]));
        let held = slots.try_acquire(a).unwrap();
        let mut ask = Box::pin(slots.acquire(b));
        assert!((&mut ask).now_or_never().is_none(), "b waits");
        // The slot goes into b's channel; b drops its ask without looking.
        drop(held);
        drop(ask);
        assert!(slots.try_acquire(c).is_some(), "the slot was lost");
    }

    #[test]
    fn idle_peers_are_forgotten() {
        let slots = PeerSlots::new(8, 2);
        for n in 0..100u8 {
            drop(slots.try_acquire(PeerId([n; 32])));
        }
        let _held = slots.try_acquire(PeerId([200; 32])).unwrap();
        let l = slots.ledger();
        assert!(l.held.len() <= 1 && l.waiting.is_empty());
    }
}
