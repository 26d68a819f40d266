//! The queue in front of a link's control stream. Bounded: a peer that stops reading its
//! control stream (but still heartbeats) cannot make us buffer without limit. Snapshots
//! (membership table, catalog digest, holdings) are latest-wins: a newer one replaces the one
//! still waiting, so a slow reader costs one of each; other messages queue in order up to a
//! bound, and overflowing it closes the link.

use crate::net::msg::Msg;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;

/// Ordered (non-snapshot) messages that may wait for one link.
pub(crate) const MAX_QUEUED: usize = 256;

#[derive(Default)]
struct Queue {
    ordered: VecDeque<Msg>,
    /// Members, CatalogDigest, HoldingsDigest, PlaylistDigest, MembersDigest, and a whole
    /// playlist set answering a digest: the latest of each.
    snapshots: [Option<Msg>; 6],
    closed: bool,
}

struct Shared {
    queue: Mutex<Queue>,
    ready: Notify,
    on_overflow: Box<dyn Fn() + Send + Sync>,
}

/// The sending side; when its last clone is dropped (the link was replaced or closed), the
/// writer sees the end of the queue.
#[derive(Clone)]
pub(crate) struct ControlTx {
    shared: Arc<Shared>,
    _last: Arc<LastSender>,
}

struct LastSender(Arc<Shared>);

impl Drop for LastSender {
    fn drop(&mut self) {
        self.0
            .queue
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .closed = true;
        self.0.ready.notify_one();
    }
}

pub(crate) struct ControlRx(Arc<Shared>);

pub(crate) fn control_queue(
    on_overflow: impl Fn() + Send + Sync + 'static,
) -> (ControlTx, ControlRx) {
    let shared = Arc::new(Shared {
        queue: Mutex::new(Queue::default()),
        ready: Notify::new(),
        on_overflow: Box::new(on_overflow),
    });
    let last = Arc::new(LastSender(shared.clone()));
    (
        ControlTx {
            shared: shared.clone(),
            _last: last,
        },
        ControlRx(shared),
    )
}

fn snapshot_slot(msg: &Msg) -> Option<usize> {
    match msg {
        Msg::Members(_) => Some(0),
        Msg::CatalogDigest(_) => Some(1),
        Msg::HoldingsDigest { .. } => Some(2),
        Msg::PlaylistDigest(_) => Some(3),
        Msg::MembersDigest(_) => Some(4),
        _ => None,
    }
}

/// The slot of a whole set sent with [`ControlTx::send_whole_set`].
const WHOLE_SET_SLOT: usize = 5;

impl ControlTx {
    /// Queues `msg`; false when the link is closed or has just overflowed (and is closed).
    pub(crate) fn send(&self, msg: Msg) -> bool {
        let slot = snapshot_slot(&msg);
        self.queue(msg, slot)
    }

    /// Queues a whole set (all playlists, answering a digest) that replaces one still
    /// waiting: a peer that sends digests and does not read costs one copy, not one each.
    /// Merging is order-free, so it may overtake ordered messages.
    pub(crate) fn send_whole_set(&self, msg: Msg) -> bool {
        self.queue(msg, Some(WHOLE_SET_SLOT))
    }

    fn queue(&self, msg: Msg, slot: Option<usize>) -> bool {
        let overflow = {
            let mut q = self.shared.queue.lock().unwrap_or_else(|e| e.into_inner());
            if q.closed {
                return false;
            }
            match slot {
                Some(i) => {
                    q.snapshots[i] = Some(msg);
                    false
                }
                None if q.ordered.len() >= MAX_QUEUED => {
                    q.closed = true;
                    q.ordered.clear();
                    q.snapshots = Default::default();
                    true
                }
                None => {
                    q.ordered.push_back(msg);
                    false
                }
            }
        };
        self.shared.ready.notify_one();
        if overflow {
            (self.shared.on_overflow)();
            return false;
        }
        true
    }
}

impl ControlTx {
    /// Ordered messages waiting to be written.
    pub(crate) fn backlog(&self) -> usize {
        self.shared
            .queue
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .ordered
            .len()
    }
}

impl ControlRx {
    /// The next message to write: ordered ones first, then the waiting snapshots; None once
    /// the queue is closed.
    pub(crate) async fn recv(&mut self) -> Option<Msg> {
        loop {
            {
                let mut q = self.0.queue.lock().unwrap_or_else(|e| e.into_inner());
                if q.closed {
                    return None;
                }
                if let Some(m) = q.ordered.pop_front() {
                    return Some(m);
                }
                if let Some(m) = q.snapshots.iter_mut().find_map(Option::take) {
                    return Some(m);
                }
            }
            self.0.ready.notified().await;
        }
    }
}

impl Drop for ControlRx {
    fn drop(&mut self) {
        self.0
            .queue
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .closed = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn snapshots_are_latest_wins_and_ordered_messages_keep_their_order() {
        let (tx, mut rx) = control_queue(|| {});
        for i in 0..1000u64 {
            assert!(tx.send(Msg::Members(vec![])));
            assert!(tx.send(Msg::CatalogDigest([i as u8; 32])));
        }
        assert!(tx.send(Msg::Leave { incarnation: 1 }));
        assert!(tx.send(Msg::Leave { incarnation: 2 }));
        let mut got = Vec::new();
        for _ in 0..4 {
            got.push(rx.recv().await.unwrap());
        }
        assert!(matches!(got[0], Msg::Leave { incarnation: 1 }));
        assert!(matches!(got[1], Msg::Leave { incarnation: 2 }));
        assert!(matches!(got[2], Msg::Members(_)));
        assert!(
            matches!(got[3], Msg::CatalogDigest(d) if d == [231; 32]),
            "the latest digest"
        );
        // Nothing else was waiting: 2000 snapshots cost two messages.
        let next = tokio::time::timeout(std::time::Duration::from_millis(50), rx.recv()).await;
        assert!(next.is_err());
    }

    #[tokio::test]
    async fn a_whole_set_replaces_the_one_still_waiting() {
        let (tx, mut rx) = control_queue(|| {});
        for i in 0..1000u64 {
            assert!(tx.send_whole_set(Msg::Leave { incarnation: i }));
        }
        assert!(tx.send(Msg::Leave { incarnation: 5000 }));
        assert!(matches!(
            rx.recv().await,
            Some(Msg::Leave { incarnation: 5000 })
        ));
        assert!(matches!(
            rx.recv().await,
            Some(Msg::Leave { incarnation: 999 })
        ));
        let next = tokio::time::timeout(std::time::Duration::from_millis(50), rx.recv()).await;
        assert!(next.is_err(), "1000 whole sets cost one message");
    }

    #[tokio::test]
    async fn a_reader_that_never_reads_overflows_the_bound_and_closes_the_link() {
        let closed = Arc::new(AtomicUsize::new(0));
        let c = closed.clone();
        let (tx, mut rx) = control_queue(move || {
            c.fetch_add(1, Ordering::Relaxed);
        });
        for i in 0..MAX_QUEUED {
            assert!(tx.send(Msg::Leave {
                incarnation: i as u64
            }));
        }
        assert_eq!(closed.load(Ordering::Relaxed), 0);
        assert!(!tx.send(Msg::Leave { incarnation: 0 }));
        assert_eq!(closed.load(Ordering::Relaxed), 1);
        assert!(!tx.send(Msg::Members(vec![])), "closed for good");
        assert!(rx.recv().await.is_none(), "what was queued is dropped");
    }

    #[tokio::test]
    async fn the_writer_ends_when_the_last_sender_goes() {
        let (tx, mut rx) = control_queue(|| {});
        let tx2 = tx.clone();
        drop(tx);
        assert!(tx2.send(Msg::Leave { incarnation: 1 }));
        assert!(rx.recv().await.is_some());
        drop(tx2);
        assert!(rx.recv().await.is_none());
    }
}
