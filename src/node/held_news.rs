//! Telling peers what we came to hold or dropped, a few changes to a message: an import
//! stores hundreds of blobs a second, and one message per blob to every peer was most of
//! its control traffic (at 5 peers, 12 messages a track). A change leaves at once when no
//! message left in the last [`HELD_NEWS_DELAY`] (a push is known to hold where it landed by
//! the time it returns); otherwise it waits for the end of that window and leaves with
//! every change made meanwhile, under one change number.

use super::Node;
use crate::net::msg::Msg;
use crate::store::blobs::Hash;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

/// At most one message per this long while changes keep coming: short beside anything that
/// reads holdings (a holder chosen for a read, repair after minutes).
const HELD_NEWS_DELAY: Duration = Duration::from_millis(20);

/// Hashes a message carries at most (its frame is 64 KiB; a hash is 32 bytes).
const MAX_HASHES_PER_MESSAGE: usize = 1_500;

/// Changes to our holdings not yet told. A blob added then dropped before the message
/// leaves is told as dropped (a peer that never heard of the add loses nothing), and the
/// other way round as added.
#[derive(Debug, Default)]
pub(crate) struct PendingHeld {
    added: BTreeSet<Hash>,
    removed: BTreeSet<Hash>,
    /// When the last message left.
    told_at: Option<Instant>,
}

impl PendingHeld {
    pub fn add(&mut self, h: Hash) {
        self.removed.remove(&h);
        self.added.insert(h);
    }

    pub fn remove(&mut self, h: Hash) {
        self.added.remove(&h);
        self.removed.insert(h);
    }

    /// How long a change made `now` must wait before it may leave.
    pub fn wait_at(&self, now: Instant) -> Duration {
        self.told_at
            .map(|t| (t + HELD_NEWS_DELAY).saturating_duration_since(now))
            .unwrap_or_default()
    }

    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty()
    }

    /// Up to [`MAX_HASHES_PER_MESSAGE`] changes, drops first (their order against adds
    /// does not matter: a hash is in one set only).
    pub fn take_message(&mut self) -> Option<(Vec<Hash>, Vec<Hash>)> {
        if self.is_empty() {
            return None;
        }
        let mut removed = Vec::new();
        while removed.len() < MAX_HASHES_PER_MESSAGE {
            match self.removed.pop_first() {
                Some(h) => removed.push(h),
                None => break,
            }
        }
        let mut added = Vec::new();
        while removed.len() + added.len() < MAX_HASHES_PER_MESSAGE {
            match self.added.pop_first() {
                Some(h) => added.push(h),
                None => break,
            }
        }
        Some((added, removed))
    }
}

/// Sends every queued change, each message one step of our change number, under the lock
/// that guards the number: messages leave in number order (a peer that sees a gap asks for
/// the whole set), and whoever states the number (a digest, the whole set) calls this first
/// under the same lock, so the number always covers what it describes.
pub(crate) fn tell_pending(st: &mut super::State) {
    if !st.held_pending.is_empty() {
        st.held_pending.told_at = Some(Instant::now());
    }
    while let Some((added, removed)) = st.held_pending.take_message() {
        st.held_seq += 1;
        let msg = Msg::HoldingsDelta {
            seq: st.held_seq,
            added,
            removed,
        };
        for link in st.links.values() {
            let _ = link.control.send(msg.clone());
        }
    }
}

impl Node {
    /// Tells a change to our holdings at once if no message left lately, else queues it
    /// for the teller.
    pub(crate) fn held_changed(&self, added: Option<Hash>, removed: Option<Hash>) {
        {
            let mut st = self.state();
            if let Some(h) = added {
                st.held_pending.add(h);
            }
            if let Some(h) = removed {
                st.held_pending.remove(h);
            }
            if st.held_pending.wait_at(Instant::now()).is_zero() {
                tell_pending(&mut st);
                return;
            }
        }
        self.inner.held_news.notify_one();
    }

    pub(crate) fn spawn_held_news(&self) {
        let node = self.clone();
        self.spawn_task(async move {
            loop {
                node.inner.held_news.notified().await;
                let wait = node.state().held_pending.wait_at(Instant::now());
                tokio::time::sleep(wait).await;
                tell_pending(&mut node.state());
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(i: u8) -> Hash {
        [i; 32]
    }

    #[test]
    fn changes_in_one_window_cancel_out_to_the_last() {
        let mut p = PendingHeld::default();
        p.add(h(1));
        p.remove(h(1));
        p.add(h(2));
        p.remove(h(3));
        p.add(h(3));
        let (added, removed) = p.take_message().unwrap();
        assert_eq!(added, vec![h(2), h(3)]);
        assert_eq!(removed, vec![h(1)]);
        assert!(p.take_message().is_none());
    }

    #[test]
    fn a_change_waits_only_if_a_message_left_lately() {
        let mut p = PendingHeld::default();
        let t0 = Instant::now();
        assert!(p.wait_at(t0).is_zero());
        p.told_at = Some(t0);
        assert_eq!(p.wait_at(t0), HELD_NEWS_DELAY);
        assert_eq!(p.wait_at(t0 + HELD_NEWS_DELAY / 2), HELD_NEWS_DELAY / 2);
        assert!(p.wait_at(t0 + HELD_NEWS_DELAY).is_zero());
    }

    #[test]
    fn a_large_batch_leaves_in_messages_that_fit_their_frame() {
        let mut p = PendingHeld::default();
        for i in 0..4_000u32 {
            let mut x = [0u8; 32];
            x[..4].copy_from_slice(&i.to_be_bytes());
            p.add(x);
        }
        let mut total = 0;
        while let Some((added, removed)) = p.take_message() {
            let msg = Msg::HoldingsDelta {
                seq: u64::MAX,
                added,
                removed,
            };
            let bytes = postcard::to_allocvec(&msg).unwrap();
            assert!(bytes.len() <= 64 << 10, "{} bytes", bytes.len());
            if let Msg::HoldingsDelta { added, .. } = msg {
                total += added.len();
            }
        }
        assert_eq!(total, 4_000);
    }
}
