//! A full disk: the peer says so (its member record, `status`, `peers`), takes no new copies
//! until it has room again (placement skips it for blobs it does not hold, so repair puts
//! them elsewhere), and keeps the copies it has. Failed pulls back off per blob.

use super::Node;
use crate::id::PeerId;
use crate::store::blobs::Hash;
use crate::store::disk::{ROOM_AGAIN, available_bytes, is_disk_full};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};
use tracing::{info, warn};

/// Backoff of a blob whose pull failed: doubling from this, up to `PULL_BACKOFF_MAX`.
const PULL_BACKOFF_MIN: Duration = Duration::from_secs(1);
const PULL_BACKOFF_MAX: Duration = Duration::from_secs(300);

impl Node {
    /// A write failed: when it is because the disk is full, say so once and take no new
    /// copies from here on.
    pub(crate) fn note_write_error(&self, err: &anyhow::Error) {
        if !is_disk_full(err) || std::mem::replace(&mut self.state().disk_full, true) {
            return;
        }
        warn!(
            "the disk holding {} is full: taking no new copies until it has room",
            self.data_dir().display()
        );
        self.update_self(|r| r.disk_full = true);
    }

    /// While full, checks whether there is room again.
    pub(crate) fn check_disk_room(&self) {
        if !self.state().disk_full {
            return;
        }
        let free = available_bytes(&self.data_dir().join("blobs")).unwrap_or(0);
        if free < ROOM_AGAIN {
            return;
        }
        self.state().disk_full = false;
        info!(
            "the disk has room again ({} MiB free): taking copies again",
            free >> 20
        );
        self.update_self(|r| r.disk_full = false);
    }

    /// Whether this peer's disk is full (it takes no new copies).
    pub fn is_disk_full(&self) -> bool {
        self.state().disk_full
    }

    /// Members (this peer included) whose disk is full.
    pub(crate) fn full_peers(&self) -> BTreeSet<PeerId> {
        let st = self.state();
        st.table
            .records()
            .filter(|r| r.disk_full && !r.left)
            .map(|r| r.id)
            .collect()
    }

    /// A pull of `hash` failed (or succeeded: `ok`), for its backoff.
    pub(crate) fn note_pull(&self, hash: Hash, ok: bool) {
        let mut st = self.state();
        if ok {
            st.pull_backoff.remove(&hash);
            return;
        }
        let failures = st.pull_backoff.get(&hash).map_or(0, |(n, _)| *n) + 1;
        let wait = PULL_BACKOFF_MIN
            .saturating_mul(1u32 << failures.min(16))
            .min(PULL_BACKOFF_MAX);
        st.pull_backoff
            .insert(hash, (failures, Instant::now() + wait));
    }

    /// Failed pulls still backing off (for tests and status).
    pub fn pulls_backing_off(&self) -> usize {
        let now = Instant::now();
        self.state()
            .pull_backoff
            .values()
            .filter(|(_, next)| *next > now)
            .count()
    }
}
