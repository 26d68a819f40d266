//! Catalog anti-entropy between two peers: digests compared, and when they differ a round of
//! range reconciliation ([`recon`]) in which only the differing entries travel, in bounded
//! frames, paced by the link's queue. Nothing here grows with the catalog but the entries a
//! joiner has to receive.

use super::Node;
use crate::id::PeerId;
use crate::net::msg::Msg;
use crate::store::catalog::{CatalogEntry, EntryKey};
use crate::store::recon::{self, Limits, Range, Step};
use anyhow::{Result, bail};
use std::time::{Duration, Instant};
use tracing::debug;

pub(crate) type CatalogRanges = Vec<Range<EntryKey>>;

/// Entries per `Catalog`/`CatalogItems` frame, by encoded size.
const BATCH_BYTES: usize = 1024 * 1024;
/// Ordered messages a link may have waiting before a sender of entries waits for it to drain.
const BACKLOG_LIMIT: usize = 32;
/// A round we pull from in bulk, silent for this long, no longer keeps other rounds away.
const PULL_STALL: Duration = Duration::from_secs(5);
/// Messages of one peer's rounds waiting to be answered; more is a flood.
const RECON_QUEUE: usize = 16;

/// Splits entries into frames of at most about [`BATCH_BYTES`] (one larger entry goes alone).
pub(crate) fn batches(entries: Vec<CatalogEntry>) -> Vec<Vec<CatalogEntry>> {
    let mut out = Vec::new();
    let mut cur = Vec::new();
    let mut bytes = 0;
    for e in entries {
        let size = entry_bytes(&e);
        if !cur.is_empty() && bytes + size > BATCH_BYTES {
            out.push(std::mem::take(&mut cur));
            bytes = 0;
        }
        bytes += size;
        cur.push(e);
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

fn entry_bytes(e: &CatalogEntry) -> usize {
    postcard::to_allocvec(e).map_or(BATCH_BYTES, |v| v.len())
}

impl Node {
    /// A new link. A peer still catching up pulls from one peer at a time (a joiner would
    /// otherwise receive the whole catalog from every peer it links to); a synced one offers
    /// its digest.
    pub(crate) fn open_catalog_sync(&self, peer: PeerId) {
        if self.is_synced() {
            let d = self.state().catalog.digest();
            self.send_to(peer, Msg::CatalogDigest(d));
        } else if self.claim_pull(peer) {
            self.start_recon(peer);
        }
    }

    pub(crate) fn on_catalog_digest(&self, peer: PeerId, theirs: [u8; 32]) {
        let ours = self.state().catalog.digest();
        if ours == theirs {
            self.mark_synced();
        } else if self.is_synced() || self.claim_pull(peer) {
            self.start_recon(peer);
        }
    }

    /// Entries sent because a round found them missing: applied, not passed on (the others
    /// reconcile for themselves).
    pub(crate) fn on_catalog_items(&self, peer: PeerId, entries: Vec<CatalogEntry>) {
        self.touch_pull(peer);
        self.apply_catalog_quietly(entries);
    }

    /// One message of a round; an empty one ends it: the sender has everything we have.
    pub(crate) fn on_catalog_recon(&self, peer: PeerId, ranges: CatalogRanges) -> Result<()> {
        recon::check(&ranges, &Limits::default())
            .map_err(|e| anyhow::anyhow!("bad catalog ranges: {e}"))?;
        if !self.is_synced() && !self.claim_pull(peer) {
            // Catching up from another peer already; this round can wait for a later digest.
            return Ok(());
        }
        self.touch_pull(peer);
        if ranges.is_empty() {
            self.end_pull(peer);
            return Ok(());
        }
        let tx = {
            let st = self.state();
            st.recon_workers
                .get(&peer)
                .filter(|t| !t.is_closed())
                .cloned()
        };
        let tx = match tx {
            Some(t) => t,
            None => self.spawn_recon_worker(peer),
        };
        if tx.try_send(ranges).is_err() {
            bail!("more than {RECON_QUEUE} catalog rounds waiting");
        }
        Ok(())
    }

    fn start_recon(&self, peer: PeerId) {
        let ranges = recon::start(&self.state().catalog);
        self.send_to(peer, Msg::CatalogRecon(ranges));
    }

    /// True when we may pull from `peer`: nobody else is feeding us, or that round stalled.
    fn claim_pull(&self, peer: PeerId) -> bool {
        let mut st = self.state();
        let now = Instant::now();
        match st.pulling {
            Some((p, at)) if p != peer && now.duration_since(at) < PULL_STALL => false,
            _ => {
                st.pulling = Some((peer, now));
                true
            }
        }
    }

    fn touch_pull(&self, peer: PeerId) {
        let mut st = self.state();
        if let Some((p, at)) = st.pulling.as_mut()
            && *p == peer
        {
            *at = Instant::now();
        }
    }

    fn end_pull(&self, peer: PeerId) {
        {
            let mut st = self.state();
            if st.pulling.is_some_and(|(p, _)| p == peer) {
                st.pulling = None;
            }
        }
        self.mark_synced();
    }

    fn spawn_recon_worker(&self, peer: PeerId) -> tokio::sync::mpsc::Sender<CatalogRanges> {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<CatalogRanges>(RECON_QUEUE);
        self.state().recon_workers.insert(peer, tx.clone());
        let node = self.clone();
        self.spawn_task(async move {
            while let Some(ranges) = rx.recv().await {
                let step = recon::respond(&node.state().catalog, &ranges, &Limits::default());
                let step = match step {
                    Ok(s) => s,
                    Err(e) => {
                        debug!("catalog round with {peer:?}: {e}");
                        continue;
                    }
                };
                node.send_round_items(peer, &step).await;
                let done = step.reply.is_empty();
                node.send_to(peer, Msg::CatalogRecon(step.reply));
                if done {
                    node.end_pull(peer);
                }
            }
        });
        tx
    }

    /// Sends the entries a step found the peer lacking, in bounded frames, waiting while the
    /// link's queue is long so a large range never piles up in memory.
    async fn send_round_items(&self, peer: PeerId, step: &Step<EntryKey>) {
        let keyed: Vec<CatalogEntry> = {
            let st = self.state();
            step.send_keys
                .iter()
                .filter_map(|k| st.catalog.by_key(k).cloned())
                .collect()
        };
        for b in batches(keyed) {
            self.send_items_paced(peer, b).await;
        }
        for (lower, upper) in &step.send_ranges {
            let mut from = lower.clone();
            loop {
                let (batch, next) = self.entries_from(from.as_ref(), upper.as_ref());
                if !batch.is_empty() {
                    self.send_items_paced(peer, batch).await;
                }
                match next {
                    Some(k) => from = Some(k),
                    None => break,
                }
            }
        }
    }

    /// Up to about [`BATCH_BYTES`] of entries from `from` (inclusive) below `upper`, and the key
    /// to go on from if the range holds more.
    fn entries_from(
        &self,
        from: Option<&EntryKey>,
        upper: Option<&EntryKey>,
    ) -> (Vec<CatalogEntry>, Option<EntryKey>) {
        use crate::store::recon::ReconSet;
        let st = self.state();
        let mut out = Vec::new();
        let mut bytes = 0;
        let mut next = None;
        st.catalog.scan(from, upper, &mut |k, _| {
            if bytes >= BATCH_BYTES {
                next = Some(k.clone());
                return false;
            }
            if let Some(e) = st.catalog.by_key(k) {
                bytes += entry_bytes(e);
                out.push(e.clone());
            }
            true
        });
        (out, next)
    }

    async fn send_items_paced(&self, peer: PeerId, batch: Vec<CatalogEntry>) {
        loop {
            let backlog = match self.state().links.get(&peer) {
                Some(l) => l.control.backlog(),
                None => return,
            };
            if backlog < BACKLOG_LIMIT {
                break;
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(5)) => {}
                _ = self.stopped() => return,
            }
        }
        self.send_to(peer, Msg::CatalogItems(batch));
    }
}
