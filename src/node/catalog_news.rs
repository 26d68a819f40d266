//! How catalog changes travel: our own writes go to every peer, news from others is passed
//! on to a few more (a rumor), and every change is merged, persisted and indexed once; plus
//! the holdings and other storage messages of the control stream.

use super::{Node, now_ms};
use crate::id::PeerId;
use crate::net::msg::Msg;
use crate::store::catalog::{CatalogEntry, EntryKey, db_key, validate_entry};
use anyhow::{Result, bail};
use std::collections::{BTreeSet, HashSet};
use std::time::{Duration, Instant};
use tracing::warn;

/// Peers a catalog change that was news to us is passed on to.
const CATALOG_RUMOR_FANOUT: usize = 2;
/// The least time between two answers of all our playlists to one peer's digests.
const PLAYLISTS_ANSWER_GAP: Duration = Duration::from_secs(1);
/// Entries stamped further than this ahead of our clock are refused.
pub(super) const MAX_CLOCK_SKEW_MS: u64 = 3_600_000;

impl Node {
    /// Apply entries (ours or from `from`), persist what changed, pass it on.
    pub(crate) fn apply_catalog(&self, entries: Vec<CatalogEntry>, from: Option<PeerId>) {
        let (changed, acked) = self.merge_entries(entries);
        let Some(from) = from else {
            self.publish_own(changed);
            return;
        };
        self.persist_entries(&changed, false);
        // Our ack of a tombstone is our own write: every peer must hear it.
        let acked_keys: HashSet<EntryKey> = acked.iter().map(|e| e.key()).collect();
        for b in super::catalog_sync::batches(acked) {
            self.broadcast(Msg::Catalog(b), None);
        }
        // News straight from its writer reached every peer the writer is linked to: passing
        // it on again would only repeat it (at 5 peers, 8 more messages a track of an
        // import). News that came by way of another peer is passed on.
        let relayed: Vec<CatalogEntry> = changed
            .into_iter()
            .filter(|e| e.version.peer != from && !acked_keys.contains(&e.key()))
            .collect();
        for b in super::catalog_sync::batches(relayed) {
            self.rumor(Msg::Catalog(b), from);
        }
    }

    /// Apply entries a reconciliation round brought: persisted, and passed on only where we
    /// added our ack to a tombstone (the others reconcile for themselves, and a joiner passing
    /// on the whole catalog to every peer would send it N times over).
    pub(crate) fn apply_catalog_quietly(&self, entries: Vec<CatalogEntry>) {
        let (changed, acked) = self.merge_entries(entries);
        self.persist_entries(&changed, false);
        for b in super::catalog_sync::batches(acked) {
            self.broadcast(Msg::Catalog(b), None);
        }
    }

    /// Saves entries; `own` (this peer's writes) commit at once, news waits for company.
    fn persist_entries(&self, changed: &[CatalogEntry], own: bool) {
        if changed.is_empty() {
            return;
        }
        let rows: Vec<(String, CatalogEntry)> = changed
            .iter()
            .map(|e| (db_key(&e.key()), e.clone()))
            .collect();
        let write = crate::store::db::Write::catalog(&rows, &[]);
        if own {
            self.inner.db_writes.submit_now(write);
        } else {
            self.inner.db_writes.submit(write);
        }
    }

    /// Merges entries; returns those that changed, and those of them that changed because we
    /// acked a tombstone.
    fn merge_entries(&self, entries: Vec<CatalogEntry>) -> (Vec<CatalogEntry>, Vec<CatalogEntry>) {
        let me = self.id();
        let mut changed = Vec::new();
        let mut acked = Vec::new();
        let mut guard = self.state();
        let st = &mut *guard;
        let wall = now_ms();
        st.catalog.batch(|catalog| {
            for e in entries {
                merge_one(catalog, &mut st.hlc, e, wall, me, &mut changed, &mut acked);
            }
        });
        (changed, acked)
    }

    /// Stores our own writes at once and sends them to every peer. News from a peer is
    /// handled by [`Node::apply_catalog`]: the writer already sent it to every peer it is
    /// linked to, so it is passed on only when it came by way of another peer.
    pub(crate) fn publish_own(&self, changed: Vec<CatalogEntry>) {
        self.persist_entries(&changed, true);
        for b in super::catalog_sync::batches(changed) {
            self.broadcast(Msg::Catalog(b), None);
        }
    }

    /// Sends `msg` to a few random linked peers other than `from`.
    fn rumor(&self, msg: Msg, from: PeerId) {
        use rand::seq::IteratorRandom;
        let st = self.state();
        let targets = st
            .links
            .iter()
            .filter(|(id, _)| **id != from)
            .choose_multiple(&mut rand::rng(), CATALOG_RUMOR_FANOUT);
        for (_, link) in targets {
            let _ = link.control.send(msg.clone());
        }
    }

    pub(crate) fn broadcast(&self, msg: Msg, except: Option<PeerId>) {
        let st = self.state();
        for (id, link) in &st.links {
            if Some(*id) != except {
                let _ = link.control.send(msg.clone());
            }
        }
    }

    pub(crate) fn send_to(&self, peer: PeerId, msg: Msg) {
        if let Some(l) = self.state().links.get(&peer) {
            let _ = l.control.send(msg);
        }
    }

    /// Our whole holdings, in pages (see [`holdings_pages`](crate::mesh::holdings_pages)).
    fn send_holdings(&self, peer: PeerId) {
        let pages = {
            let mut st = self.state();
            super::held_news::tell_pending(&mut st);
            crate::mesh::holdings_pages::pages(st.held_seq, st.held.iter())
        };
        for (seq, held, more) in pages {
            self.send_to(peer, Msg::Holdings { seq, held, more });
        }
    }

    /// Asks `peer` for its whole holdings, at most once a second.
    fn ask_holdings(&self, peer: PeerId) {
        let now = Instant::now();
        {
            let mut st = self.state();
            if st
                .holdings_asked
                .get(&peer)
                .is_some_and(|t| now.duration_since(*t) < Duration::from_secs(1))
            {
                return;
            }
            st.holdings_asked.insert(peer, now);
        }
        self.send_to(peer, Msg::HoldingsAsk);
    }

    /// What a new link starts with: a catalog round or digest, and our holdings and playlist
    /// digest, so neither side waits for the next anti-entropy round.
    pub(crate) fn open_sync(&self, peer: PeerId) {
        self.open_catalog_sync(peer);
        self.send_holdings(peer);
        let playlists = self.state().playlists.digest();
        self.send_to(peer, Msg::PlaylistDigest(playlists));
    }

    /// Anti-entropy for the catalog and holdings, run every few seconds.
    /// Changes travel at once to every peer; this backstop goes to `targets` (a few peers
    /// per round), so its cost per peer does not grow with the mesh.
    pub(crate) fn storage_gossip(&self, targets: &[PeerId]) {
        let (digest, held_seq, held_digest) = {
            let mut st = self.state();
            super::held_news::tell_pending(&mut st);
            (
                st.catalog.digest(),
                st.held_seq,
                crate::mesh::holdings::digest(&st.held_fp),
            )
        };
        let playlists = self.state().playlists.digest();
        for peer in targets {
            self.send_to(*peer, Msg::CatalogDigest(digest));
            self.send_to(
                *peer,
                Msg::HoldingsDigest {
                    seq: held_seq,
                    digest: held_digest,
                },
            );
            self.send_to(*peer, Msg::PlaylistDigest(playlists));
        }
        self.prune_tombstones();
    }

    fn prune_tombstones(&self) {
        let pruned = {
            let mut st = self.state();
            let members: BTreeSet<PeerId> = st
                .table
                .records()
                .filter(|r| !r.left)
                .map(|r| r.id)
                .collect();
            st.catalog.prune_tombstones(&members)
        };
        if !pruned.is_empty() {
            let keys: Vec<String> = pruned.iter().map(db_key).collect();
            self.inner
                .db_writes
                .submit(crate::store::db::Write::catalog::<CatalogEntry>(&[], &keys));
        }
    }

    pub(crate) fn handle_storage_control(&self, peer: PeerId, msg: Msg) -> Result<()> {
        match msg {
            Msg::Catalog(entries) => self.apply_catalog(entries, Some(peer)),
            Msg::CatalogItems(entries) => self.on_catalog_items(peer, entries),
            Msg::CatalogDigest(d) => self.on_catalog_digest(peer, d),
            Msg::CatalogRecon(ranges) => self.on_catalog_recon(peer, ranges)?,
            Msg::Holdings { seq, held, more } => {
                use crate::mesh::holdings_pages::Fed;
                let mut guard = self.state();
                let st = &mut *guard;
                if st.holdings_seen.get(&peer).is_some_and(|s| seq < *s) {
                    return Ok(());
                }
                // A peer holds blobs of the catalog's entries and covers, and some not yet
                // dropped: far more is a peer making us keep what it likes.
                let cap = 2 * st.catalog.entry_count() + 65_536;
                match st
                    .holdings_pages
                    .entry(peer)
                    .or_default()
                    .feed((seq, held, more), cap)
                {
                    Fed::Partial => {}
                    Fed::Complete(seq, set) => {
                        st.holdings_pages.remove(&peer);
                        st.holdings.replace(peer, set);
                        st.holdings_seen.insert(peer, seq);
                    }
                    Fed::TooMany => {
                        st.holdings_pages.remove(&peer);
                        drop(guard);
                        bail!("holdings of more blobs than the catalog has");
                    }
                }
            }
            Msg::HoldingsDelta {
                seq,
                added,
                removed,
            } => {
                let gap = {
                    let mut guard = self.state();
                    let st = &mut *guard;
                    match st.holdings_seen.get(&peer).copied() {
                        Some(s) if Some(seq) == s.checked_add(1) => {
                            for h in removed {
                                st.holdings.remove(peer, &h);
                            }
                            for h in added {
                                st.holdings.add(peer, h);
                            }
                            st.holdings_seen.insert(peer, seq);
                            // The same bound as on a whole set (see `Holdings`).
                            let cap = 2 * st.catalog.entry_count() + 65_536;
                            if st
                                .holdings
                                .of_peer(&peer)
                                .is_some_and(|set| set.len() > cap)
                            {
                                st.holdings.forget(&peer);
                                st.holdings_seen.remove(&peer);
                                drop(guard);
                                bail!("holdings of more blobs than the catalog has");
                            }
                            false
                        }
                        Some(s) if seq <= s => false,
                        // A change we cannot place (its predecessor is missing, or we never
                        // had the whole set): the whole set puts us right.
                        _ => true,
                    }
                };
                if gap {
                    self.ask_holdings(peer);
                }
            }
            Msg::HoldingsDigest { seq, digest } => {
                let stale = {
                    let st = self.state();
                    match st.holdings_seen.get(&peer) {
                        Some(s) if *s == seq => {
                            st.holdings.digest_of(&peer).is_none_or(|d| d != digest)
                        }
                        Some(s) => *s < seq,
                        None => true,
                    }
                };
                if stale {
                    self.ask_holdings(peer);
                }
            }
            Msg::HoldingsAsk => self.send_holdings(peer),
            Msg::Playlists(items) => self.apply_playlists(items, Some(peer)),
            Msg::PlaylistDigest(d) => {
                // Digests come every few seconds; more often, they would make us copy every
                // playlist for each one.
                let mut st = self.state();
                let now = Instant::now();
                let answered = st.links.get(&peer).map(|l| l.playlists_answered);
                let Some(answered) = answered else {
                    return Ok(());
                };
                if answered.is_some_and(|t| now.duration_since(t) < PLAYLISTS_ANSWER_GAP)
                    || st.playlists.digest() == d
                {
                    return Ok(());
                }
                let Some(link) = st.links.get_mut(&peer) else {
                    return Ok(());
                };
                link.playlists_answered = Some(now);
                let control = link.control.clone();
                let all = st.playlists.all().cloned().collect::<Vec<_>>();
                drop(st);
                control.send_whole_set(Msg::Playlists(all));
            }
            other => bail!("unexpected {} on the control stream", other.name()),
        }
        Ok(())
    }
}

/// Merges one entry from a peer; what changed (and the tombstones we now ack) is collected.
fn merge_one(
    catalog: &mut crate::store::catalog::Catalog,
    hlc: &mut crate::store::hlc::Hlc,
    e: CatalogEntry,
    wall: u64,
    me: PeerId,
    changed: &mut Vec<CatalogEntry>,
    acked: &mut Vec<CatalogEntry>,
) {
    if let Err(why) = validate_entry(&e) {
        warn!("ignoring catalog entry {:?}: {why}", e.name);
        return;
    }
    // A clock far ahead of ours would pin our clock; such entries are refused.
    if e.version.ts.ms() > wall + MAX_CLOCK_SKEW_MS {
        warn!(
            "ignoring catalog entry {:?}: its clock is far in the future",
            e.name
        );
        return;
    }
    hlc.observe(e.version.ts, wall);
    let key = e.key();
    let mut did = catalog.apply(e);
    let mut ack = false;
    if catalog.by_key(&key).is_some_and(|x| x.tombstone) {
        ack = catalog.ack_tombstone(&key, me);
        did |= ack;
    }
    if did && let Some(x) = catalog.by_key(&key) {
        if ack {
            acked.push(x.clone());
        }
        changed.push(x.clone());
    }
}
