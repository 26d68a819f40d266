//! Drives the repair planner: pulls what placement gives us, drops what it moved away, and on
//! leave hands off copies that would otherwise fall below R.

use super::Node;
use crate::id::PeerId;
use crate::mesh::placement;
use crate::net::msg::Msg;
use crate::store::blobs::Hash;
use crate::store::catalog::{CatalogEntry, CoverRef};
use crate::store::repair::{RepairAction, RepairInput, TrackRef, plan};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tracing::{info, warn};

/// Blobs repair pulls at once: a holder serves one peer at most 6 uploads at a time, and
/// this leaves two of them for what the peer's user plays meanwhile.
const REPAIR_PULLS: usize = 4;
/// A full repair pass at least this often, whatever changed.
const FULL_PASS_EVERY: Duration = Duration::from_secs(300);

impl Node {
    pub(crate) fn repair_tick(&self) {
        if self.state().leaving {
            return;
        }
        let candidates = self.placement_candidates();
        let full = self.full_peers();
        let Some(scope) = self.repair_scope(&candidates, &full) else {
            return;
        };
        let (entries, held, protected, known) = {
            let st = self.state();
            // Names and hashes only: cloning whole entries (their chunk hashes) under the
            // lock every tick stalled every other user of the state at 100,000 tracks.
            let live = |k: &crate::store::catalog::EntryKey| {
                st.catalog
                    .by_key(k)
                    .filter(|e| !e.tombstone)
                    .map(|e| (e.name.clone(), e.hash, e.cover))
            };
            let entries: Vec<(String, Hash, Option<CoverRef>)> = match &scope {
                None => st
                    .catalog
                    .live()
                    .map(|e| (e.name.clone(), e.hash, e.cover))
                    .collect(),
                Some(hashes) => hashes
                    .iter()
                    .flat_map(|h| {
                        let tracks = st.catalog.live_with_hash(h).next();
                        let covers = st.catalog.live_with_cover(h).next();
                        tracks.into_iter().chain(covers).filter_map(live)
                    })
                    .collect(),
            };
            let held: BTreeSet<Hash> = match &scope {
                None => st.held.clone(),
                Some(hashes) => hashes
                    .iter()
                    .filter(|h| st.held.contains(*h))
                    .copied()
                    .collect(),
            };
            let known: crate::store::repair::KnownHolders = match &scope {
                None => st.holdings.all().map(|(h, p)| (*h, p.to_vec())).collect(),
                Some(hashes) => hashes
                    .iter()
                    .filter_map(|h| {
                        let p = st.holdings.holders(h)?;
                        Some((*h, p.to_vec()))
                    })
                    .collect(),
            };
            let protected: BTreeSet<Hash> = st
                .protected
                .keys()
                .chain(st.repairing.iter())
                .copied()
                .collect();
            (entries, held, protected, known)
        };
        // A cover is a blob of its own, placed by its hash like a track.
        let in_scope = |h: &Hash| scope.as_ref().is_none_or(|s| s.contains(h));
        let covers: Vec<CatalogEntry> = entries
            .iter()
            .filter_map(|e| e.2)
            .filter(|c| in_scope(&c.hash))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .map(|c| c.as_blob_entry())
            .collect();
        let tracks: Vec<TrackRef> = entries
            .iter()
            .filter(|(_, hash, _)| in_scope(hash))
            .map(|(name, hash, _)| TrackRef { name, hash: *hash })
            .chain(covers.iter().map(|e| TrackRef {
                name: &e.name,
                hash: e.hash,
            }))
            .collect();
        let actions = plan(&RepairInput {
            tracks: &tracks,
            alive: &candidates,
            replicas: self.inner.cfg.replicas,
            me: self.id(),
            held: &held,
            known_holders: &known,
            protected: &protected,
            full: &full,
        });
        let now = Instant::now();
        for a in actions {
            match a {
                RepairAction::Fetch { hash, .. } => {
                    let mut st = self.state();
                    let backing_off = st
                        .pull_backoff
                        .get(&hash)
                        .is_some_and(|(_, next)| *next > now);
                    if backing_off || st.repairing.contains(&hash) {
                        // Still wanted: look at it again on a later tick.
                        st.repair_dirty.insert(hash);
                        continue;
                    }
                    st.repairing.insert(hash);
                    st.repair_queue.push_back(hash);
                }
                RepairAction::Drop { hash } | RepairAction::DropUnreferenced { hash } => {
                    info!("repair: dropping our copy of {}", self.blob_label(&hash));
                    self.drop_blob(&hash);
                }
            }
        }
        self.spawn_repair_workers();
    }

    /// Pulls run in a few workers that drain the queue: a new peer given 50,000 blobs must
    /// not start 50,000 transfers at once.
    fn spawn_repair_workers(&self) {
        loop {
            {
                let mut st = self.state();
                if st.repair_workers >= REPAIR_PULLS || st.repair_workers >= st.repair_queue.len() {
                    return;
                }
                st.repair_workers += 1;
            }
            let node = self.clone();
            self.spawn_task(async move {
                while let Some(hash) = node.next_repair() {
                    let entry = {
                        let st = node.state();
                        st.catalog.entry_with_hash(&hash).cloned().or_else(|| {
                            st.catalog
                                .live_with_cover(&hash)
                                .find_map(|k| st.catalog.by_key(k).and_then(|e| e.cover))
                                .map(|c| c.as_blob_entry())
                        })
                    };
                    if let Some(entry) = entry {
                        let t0 = Instant::now();
                        let result = node.pull_blob(&entry).await;
                        node.note_pull(hash, result.is_ok());
                        match result {
                            Ok(()) => info!(
                                "repair: now holding {} ({} ms)",
                                entry.name,
                                t0.elapsed().as_millis()
                            ),
                            Err(e) => {
                                node.note_write_error(&e);
                                warn!("repair: cannot pull {}: {e:#}", entry.name);
                            }
                        }
                    }
                    let mut st = node.state();
                    st.repairing.remove(&hash);
                    st.repair_dirty.insert(hash);
                }
            });
        }
    }

    /// The next blob to pull; None (and one worker fewer) when there is none or we stop.
    fn next_repair(&self) -> Option<Hash> {
        let mut st = self.state();
        let next = if self.is_stopped() {
            None
        } else {
            st.repair_queue.pop_front()
        };
        if next.is_none() {
            st.repair_workers = st.repair_workers.saturating_sub(1);
        }
        next
    }

    /// The blobs this tick must look at: None for all of them (the first tick, a change in who
    /// may hold copies, and every few minutes as a backstop), else those whose entries,
    /// holders, copy or protection changed since the last tick; nothing when nothing did.
    fn repair_scope(
        &self,
        candidates: &[placement::Candidate],
        full: &BTreeSet<crate::id::PeerId>,
    ) -> Option<Option<std::collections::HashSet<Hash>>> {
        let mut st = self.state();
        let now = Instant::now();
        // Protection ends once the catalog has caught up with the write it was for.
        let catalog = &st.catalog;
        let caught_up: Vec<Hash> = st
            .protected
            .iter()
            .filter(|(_, (until, name, version))| {
                *until <= now
                    || catalog
                        .newest_version_at(name)
                        .is_some_and(|v| v >= *version)
            })
            .map(|(h, _)| *h)
            .collect();
        for h in caught_up {
            st.protected.remove(&h);
            st.repair_dirty.insert(h);
        }
        let mut dirty = std::mem::take(&mut st.repair_dirty);
        dirty.extend(st.catalog.take_changed_blobs());
        dirty.extend(st.holdings.take_changed());
        let view = (candidates.to_vec(), full.clone());
        let stale = st
            .repair_full_at
            .is_none_or(|t| now.duration_since(t) >= FULL_PASS_EVERY);
        if stale || st.repair_view.as_ref() != Some(&view) {
            st.repair_view = Some(view);
            st.repair_full_at = Some(now);
            return Some(None);
        }
        (!dirty.is_empty()).then_some(Some(dirty))
    }

    /// Fetch a blob from its holders into our blob store.
    pub(crate) async fn pull_blob(&self, entry: &CatalogEntry) -> anyhow::Result<()> {
        let mut w = crate::store::blob_sink::BlobSink::new(
            self.inner.blobs.begin(&entry.hash, entry.size)?,
        );
        let (tx, mut rx) = mpsc::channel::<Vec<u8>>(16);
        let node = self.clone();
        let e = entry.clone();
        let fetch = self
            .inner
            .tasks
            .spawn(async move { node.fetch_verified(&e, tx, false, |_| {}).await });
        while let Some(chunk) = rx.recv().await {
            w.write(chunk.into()).await?;
        }
        fetch.await??;
        w.commit().await?;
        self.note_held(entry);
        Ok(())
    }

    /// Before leaving: every blob we hold whose other live copies would fall below R goes to
    /// the peers placement picks without us.
    /// Copies what would fall below R without us to other peers; returns how many tracks.
    pub(crate) async fn hand_off(&self) -> usize {
        let mut handed = 0;
        let me = self.id();
        let candidates: Vec<_> = self
            .placement_candidates()
            .into_iter()
            .filter(|c| c.id != me)
            .collect();
        let known = self.known_holders();
        let alive = self.alive_peers();
        // As pushed (not as shown): these entries go to the peers taking the copies.
        // (entry, whether it is a track whose catalog entry goes along, not a cover)
        let entries: Vec<(CatalogEntry, bool)> = {
            let st = self.state();
            let covers: Vec<(CatalogEntry, bool)> = st
                .catalog
                .live()
                .filter_map(|e| e.cover)
                .map(|c| (c.as_blob_entry(), false))
                .collect();
            st.catalog
                .all()
                .filter(|e| !e.tombstone)
                .map(|e| (e.clone(), true))
                .chain(covers)
                .filter(|(e, _)| st.held.contains(&e.hash))
                .collect()
        };
        let r = self.inner.cfg.replicas.max(1);
        let mut seen = BTreeSet::new();
        // A peer that failed one hand-off gets no more: one that takes stores and never
        // answers would otherwise cost `down` a timeout per blob.
        let mut failed_us: BTreeSet<PeerId> = BTreeSet::new();
        for (e, is_track) in entries {
            if !seen.insert(e.hash) {
                continue;
            }
            let holders: BTreeSet<_> = known
                .get(&e.hash)
                .map(|s| {
                    s.iter()
                        .filter(|p| **p != me && alive.contains(p))
                        .copied()
                        .collect()
                })
                .unwrap_or_default();
            let want = r.min(candidates.len());
            if holders.len() >= want {
                continue;
            }
            let targets: Vec<_> = placement::rank(&e.hash, &candidates)
                .into_iter()
                .filter(|p| !holders.contains(p) && !failed_us.contains(p))
                .take(want - holders.len())
                .collect();
            if targets.is_empty() {
                continue;
            }
            // Opened here, so that a copy of ours we cannot read is not blamed on a peer.
            let file = match tokio::fs::File::open(self.inner.blobs.path(&e.hash)).await {
                Ok(f) => f,
                Err(err) => {
                    warn!("hand-off of {}: cannot read our copy: {err}", e.name);
                    continue;
                }
            };
            let first = targets[0];
            let (stored, failed) = self.send_chain_from(&e, targets, file, &|_, _| {}).await;
            info!(
                "hand-off of {}: stored on {}, {} failed",
                e.name,
                stored.len(),
                failed.len()
            );
            if !stored.is_empty() {
                handed += 1;
            }
            failed_us.extend(to_blame(first, &stored, &failed));
            for p in stored.into_iter().filter(|_| is_track) {
                if let Some(l) = self.state().links.get(&p) {
                    let _ = l.control.send(Msg::Catalog(vec![e.clone()]));
                }
            }
        }
        // Give holdings a moment to spread; bounded so `down` stays prompt.
        tokio::time::sleep(Duration::from_millis(20)).await;
        handed
    }
}

/// Who a failed hand-off down a chain starting at `first` is blamed on. With nothing stored,
/// the chain failed at the peer we spoke to (its answer, its silence or the link to it), and
/// the rest never saw the bytes; with some stored, the holders report their own downstream.
/// A refusal for being busy blames nobody.
fn to_blame(first: PeerId, stored: &[PeerId], failed: &[(PeerId, String)]) -> Vec<PeerId> {
    let busy = |why: &str| why.contains(super::transfer::TRY_AGAIN_LATER);
    if stored.is_empty() {
        return match failed.iter().find(|(p, _)| *p == first) {
            Some((_, why)) if !busy(why) => vec![first],
            _ => Vec::new(),
        };
    }
    failed
        .iter()
        .filter(|(_, why)| !busy(why))
        .map(|(p, _)| *p)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_hand_off_blames_the_peer_that_failed_it_not_the_chain_behind() {
        let (a, b, c) = (PeerId([1; 32]), PeerId([2; 32]), PeerId([3; 32]));
        let all = |why: &str| vec![(a, why.to_string()), (b, why.into()), (c, why.into())];
        assert_eq!(to_blame(a, &[], &all("no answer from the chain")), vec![a]);
        assert_eq!(
            to_blame(a, &[], &all("too many uploads at once; try again later")),
            Vec::<PeerId>::new()
        );
        // a and b stored; b reports c silent.
        let reported = vec![(c, "no answer".to_string())];
        assert_eq!(to_blame(a, &[a, b], &reported), vec![c]);
    }
}
