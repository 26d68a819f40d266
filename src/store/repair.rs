//! Repair and rebalance planning: what this peer should pull, and what it may let go.
//!
//! Every peer runs the same plan over its own view and acts only on itself: it pulls the
//! tracks placement gives it and drops what placement moved elsewhere. Pulling rather than
//! pushing means no two peers ever coordinate, and a peer that crashes mid-repair leaves
//! nothing half-decided for others to clean up.
//!
//! Safety rests on one rule: a copy is dropped only when R *other* desired holders are
//! confirmed to hold it. Desired holders never drop, so even when several non-desired peers
//! drop at once on the same stale view, the R desired copies remain.

use crate::id::PeerId;
use crate::mesh::placement::{Candidate, rank};
use std::collections::{BTreeMap, BTreeSet};

/// A live track as the planner needs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TrackRef<'a> {
    /// Not used for decisions (placement is by content); kept so callers can say which
    /// track an action is about.
    pub name: &'a str,
    pub hash: [u8; 32],
}

/// Who holds each blob: a sorted list, since a one-element B-tree set costs a whole node
/// (a full pass at 100,000 tracks built 37 MB of them).
pub type KnownHolders = BTreeMap<[u8; 32], Vec<PeerId>>;

/// Everything the planner looks at: one peer's current view of the network.
#[derive(Clone, Copy, Debug)]
pub struct RepairInput<'a> {
    /// Live (non-tombstoned) catalog entries; several names may share one blob.
    pub tracks: &'a [TrackRef<'a>],
    /// Members currently considered alive, with their offered capacity. Include this peer
    /// unless it is leaving: a peer missing from this list is never a desired holder.
    pub alive: &'a [Candidate],
    /// Copies wanted per track (the `--replicas` setting); 0 is treated as 1.
    pub replicas: usize,
    pub me: PeerId,
    /// Blobs this peer has complete on disk.
    pub held: &'a BTreeSet<[u8; 32]>,
    /// Who is known to hold each blob, from gossip. May be stale or incomplete; stale entries
    /// can only delay a drop or cost a failed fetch, never lose a copy, because drops need
    /// R confirmations.
    pub known_holders: &'a KnownHolders,
    /// Blobs that must not be dropped whatever the catalog says: pushes whose catalog entry
    /// has not arrived yet, blobs being served or streamed right now. Without this a freshly
    /// received blob would look unreferenced and be deleted before its entry lands.
    pub protected: &'a BTreeSet<[u8; 32]>,
    /// Members whose disk is full: they keep what they hold but take no new copies, so for
    /// a blob they lack placement passes over them to the next peer.
    pub full: &'a BTreeSet<PeerId>,
}

/// One step for this peer to take.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RepairAction {
    /// Placement gives this blob to us and we lack it: pull it, trying holders in order.
    Fetch { hash: [u8; 32], from: Vec<PeerId> },
    /// We hold a blob placement gave to others, and R of them already have it.
    Drop { hash: [u8; 32] },
    /// No live track refers to this blob any more (removed, or replaced by a newer push).
    DropUnreferenced { hash: [u8; 32] },
}

/// Plan this peer's repair work; fetches first (they add safety), then drops, each in hash
/// order so the plan is deterministic.
///
/// A track whose holders are all unknown or dead gets no fetch: there is no one to ask, and
/// the next plan after gossip catches up will include it.
pub fn plan(input: &RepairInput<'_>) -> Vec<RepairAction> {
    let r = input.replicas.max(1);
    let referenced: BTreeSet<[u8; 32]> = input.tracks.iter().map(|t| t.hash).collect();
    let none = Vec::new();

    let mut fetches = Vec::new();
    let mut drops = Vec::new();
    for hash in &referenced {
        let ranked = rank(hash, input.alive);
        let known = input.known_holders.get(hash).unwrap_or(&none);
        let i_hold = input.held.contains(hash);
        let holds = |p: &PeerId| {
            if *p == input.me {
                i_hold
            } else {
                known.contains(p)
            }
        };
        let desired: Vec<PeerId> = ranked
            .iter()
            .filter(|p| !input.full.contains(*p) || holds(p))
            .take(r)
            .copied()
            .collect();
        if desired.contains(&input.me) {
            if !i_hold {
                // Rank order puts desired holders first: they keep the blob, so a transfer
                // from them is never cut short by a drop.
                let from: Vec<PeerId> = ranked
                    .iter()
                    .copied()
                    .filter(|p| *p != input.me && known.contains(p))
                    .collect();
                if !from.is_empty() {
                    fetches.push(RepairAction::Fetch { hash: *hash, from });
                }
            }
        } else if i_hold && !input.protected.contains(hash) {
            let confirmed = desired
                .iter()
                .filter(|p| **p != input.me && known.contains(p))
                .count();
            if confirmed >= r {
                drops.push(RepairAction::Drop { hash: *hash });
            }
        }
    }
    let unreferenced = input
        .held
        .iter()
        .filter(|h| !referenced.contains(*h) && !input.protected.contains(*h))
        .map(|h| RepairAction::DropUnreferenced { hash: *h });

    fetches
        .into_iter()
        .chain(drops)
        .chain(unreferenced)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mesh::placement::holders;
    use proptest::prelude::*;

    fn peer(n: u8) -> PeerId {
        PeerId(*blake3::hash(&[n]).as_bytes())
    }

    fn blob(n: u8) -> [u8; 32] {
        *blake3::hash(&[b'b', n]).as_bytes()
    }

    fn cands(ids: &[PeerId]) -> Vec<Candidate> {
        ids.iter()
            .map(|&id| Candidate {
                id,
                capacity: 1 << 30,
            })
            .collect()
    }

    #[derive(Debug)]
    struct World {
        tracks: Vec<[u8; 32]>,
        alive: Vec<Candidate>,
        replicas: usize,
        known: KnownHolders,
        protected: BTreeSet<[u8; 32]>,
        full: BTreeSet<PeerId>,
    }

    impl World {
        fn plan_for(&self, me: PeerId, held: &BTreeSet<[u8; 32]>) -> Vec<RepairAction> {
            let tracks: Vec<TrackRef> = self
                .tracks
                .iter()
                .map(|&hash| TrackRef { name: "t", hash })
                .collect();
            plan(&RepairInput {
                tracks: &tracks,
                alive: &self.alive,
                replicas: self.replicas,
                me,
                held,
                known_holders: &self.known,
                protected: &self.protected,
                full: &self.full,
            })
        }
    }

    fn world(n: u8, replicas: usize, tracks: &[[u8; 32]]) -> World {
        let ids: Vec<_> = (0..n).map(peer).collect();
        World {
            tracks: tracks.to_vec(),
            alive: cands(&ids),
            replicas,
            known: BTreeMap::new(),
            protected: BTreeSet::new(),
            full: BTreeSet::new(),
        }
    }

    fn ranked(w: &World, h: &[u8; 32]) -> Vec<PeerId> {
        rank(h, &w.alive)
    }

    #[test]
    fn desired_holder_fetches_from_known_holders_best_first() {
        let h = blob(1);
        let mut w = world(5, 3, &[h]);
        let order = ranked(&w, &h);
        // Known holders: the 2nd desired and a non-desired peer, plus a dead one.
        w.known.insert(h, [order[4], order[1], peer(99)].into());
        let acts = w.plan_for(order[0], &BTreeSet::new());
        assert_eq!(
            acts,
            vec![RepairAction::Fetch {
                hash: h,
                from: vec![order[1], order[4]]
            }]
        );
        // Non-desired peers do not fetch.
        assert!(w.plan_for(order[3], &BTreeSet::new()).is_empty());
    }

    #[test]
    fn no_fetch_without_a_live_source() {
        let h = blob(1);
        let mut w = world(4, 3, &[h]);
        w.known.insert(h, [peer(99)].into());
        let me = ranked(&w, &h)[0];
        assert!(w.plan_for(me, &BTreeSet::new()).is_empty());
    }

    #[test]
    fn drop_only_after_r_other_desired_copies() {
        let h = blob(2);
        let mut w = world(5, 3, &[h]);
        let order = ranked(&w, &h);
        let me = order[4];
        let held = [h].into();
        // Two desired holders plus a non-desired one: not enough.
        w.known.insert(h, [order[0], order[1], order[3], me].into());
        assert!(w.plan_for(me, &held).is_empty());
        w.known.get_mut(&h).unwrap().push(order[2]);
        assert_eq!(w.plan_for(me, &held), vec![RepairAction::Drop { hash: h }]);
        w.protected.insert(h);
        assert!(w.plan_for(me, &held).is_empty());
    }

    #[test]
    fn fewer_peers_than_replicas_never_drops() {
        let h = blob(3);
        let mut w = world(2, 3, &[h]);
        w.known.insert(h, [peer(0), peer(1)].into());
        // Leaving peer (not in alive): both others hold it, but that is 2 < R copies.
        assert!(w.plan_for(peer(7), &[h].into()).is_empty());
    }

    #[test]
    fn unreferenced_blobs_go_unless_protected() {
        let (live, dead, pending) = (blob(1), blob(2), blob(3));
        let mut w = world(3, 3, &[live, live]);
        w.protected.insert(pending);
        let held = [live, dead, pending].into();
        assert_eq!(
            w.plan_for(peer(0), &held),
            vec![RepairAction::DropUnreferenced { hash: dead }]
        );
    }

    #[test]
    fn zero_replicas_means_one() {
        let h = blob(4);
        let mut w = world(3, 0, &[h]);
        let order = ranked(&w, &h);
        w.known.insert(h, [order[1]].into());
        assert_eq!(w.plan_for(order[0], &BTreeSet::new()).len(), 1);
        assert!(w.plan_for(order[1], &[h].into()).is_empty());
    }

    fn arb_world() -> impl Strategy<Value = (World, PeerId, BTreeSet<[u8; 32]>)> {
        let peers: Vec<PeerId> = (0..8).map(peer).collect();
        let blobs: Vec<[u8; 32]> = (0..6).map(blob).collect();
        (
            prop::sample::subsequence(peers.clone(), 0..8),
            prop::collection::vec(0u64..4, 8),
            0usize..5,
            prop::sample::select(peers.clone()),
            prop::sample::subsequence(blobs.clone(), 0..6),
            prop::sample::subsequence(blobs.clone(), 0..6),
            prop::collection::btree_map(
                prop::sample::select(blobs.clone()),
                prop::sample::subsequence(peers, 0..8),
                0..6,
            ),
            prop::sample::subsequence(blobs, 0..2),
        )
            .prop_map(
                |(alive, caps, replicas, me, tracks, held, known, protected)| {
                    let alive = alive
                        .iter()
                        .zip(caps)
                        .map(|(&id, capacity)| Candidate { id, capacity })
                        .collect();
                    let known = known
                        .into_iter()
                        .map(|(h, ps)| (h, ps.into_iter().collect()))
                        .collect();
                    let w = World {
                        tracks,
                        alive,
                        replicas,
                        known,
                        protected: protected.into_iter().collect(),
                        full: BTreeSet::new(),
                    };
                    (w, me, held.into_iter().collect())
                },
            )
    }

    #[test]
    fn a_full_peer_takes_no_new_copy_and_keeps_the_ones_it_has() {
        let h = blob(3);
        let mut w = world(5, 2, &[h]);
        let order = ranked(&w, &h);
        w.full.insert(order[0]);
        // The first choice is full and lacks the blob: the third in rank pulls it instead.
        w.known.insert(h, [order[1]].into());
        assert!(w.plan_for(order[0], &BTreeSet::new()).is_empty());
        assert!(matches!(
            w.plan_for(order[2], &BTreeSet::new())[..],
            [RepairAction::Fetch { hash, .. }] if hash == h
        ));
        // Once the others hold it, the full peer is not asked for it either.
        w.known.insert(h, [order[1], order[2]].into());
        assert!(w.plan_for(order[2], &[h].into()).is_empty());
        // A full peer that holds a copy keeps it: it is still a desired holder.
        w.known.insert(h, [order[0], order[1], order[2]].into());
        assert!(w.plan_for(order[0], &[h].into()).is_empty());
        // And with the disk full, the peer that stood in may go once R desired hold it.
        assert_eq!(
            w.plan_for(order[2], &[h].into()),
            vec![RepairAction::Drop { hash: h }]
        );
    }

    proptest! {
        #[test]
        fn never_drops_below_r_confirmed_copies((w, me, held) in arb_world()) {
            let r = w.replicas.max(1);
            let alive: BTreeSet<PeerId> = w.alive.iter().map(|c| c.id).collect();
            let none = Vec::new();
            for act in w.plan_for(me, &held) {
                match act {
                    RepairAction::Drop { hash } => {
                        let known = w.known.get(&hash).unwrap_or(&none);
                        let elsewhere = known.iter().filter(|p| **p != me && alive.contains(p)).count();
                        prop_assert!(elsewhere >= r, "dropped with {} copies elsewhere, R={}", elsewhere, r);
                        prop_assert!(held.contains(&hash) && !w.protected.contains(&hash));
                        prop_assert!(!holders(&hash, &w.alive, r).contains(&me));
                    }
                    RepairAction::DropUnreferenced { hash } => {
                        prop_assert!(held.contains(&hash) && !w.protected.contains(&hash));
                        prop_assert!(!w.tracks.contains(&hash));
                    }
                    RepairAction::Fetch { hash, from } => {
                        prop_assert!(!held.contains(&hash) && w.tracks.contains(&hash));
                        prop_assert!(holders(&hash, &w.alive, r).contains(&me));
                        prop_assert!(!from.is_empty() && !from.contains(&me));
                        let distinct: BTreeSet<_> = from.iter().collect();
                        prop_assert_eq!(distinct.len(), from.len());
                        for p in &from {
                            prop_assert!(alive.contains(p) && w.known[&hash].contains(p));
                        }
                    }
                }
            }
        }

        /// All peers plan on the same snapshot and act at once, round after round: copies
        /// never fall below what placement wants, and the network settles on exactly the
        /// desired holders.
        #[test]
        fn concurrent_rounds_converge_safely(
            n in 1u8..7,
            replicas in 1usize..4,
            start in prop::collection::vec(prop::collection::btree_set(0u8..7, 1..4), 1..5),
        ) {
            let ids: Vec<PeerId> = (0..n).map(peer).collect();
            let tracks: Vec<[u8; 32]> = (0..start.len() as u8).map(blob).collect();
            let mut held: BTreeMap<PeerId, BTreeSet<[u8; 32]>> = ids.iter().map(|&p| (p, BTreeSet::new())).collect();
            for (t, owners) in tracks.iter().zip(&start) {
                for o in owners {
                    held.get_mut(&ids[(*o % n) as usize]).unwrap().insert(*t);
                }
            }
            let mut w = world(n, replicas, &tracks);
            let target = replicas.min(n as usize);
            for _round in 0..4 {
                w.known = BTreeMap::new();
                for (p, hs) in &held {
                    for h in hs {
                        w.known.entry(*h).or_default().push(*p);
                    }
                }
                let plans: Vec<_> = ids.iter().map(|&p| (p, w.plan_for(p, &held[&p]))).collect();
                for (p, acts) in plans {
                    for act in acts {
                        match act {
                            RepairAction::Fetch { hash, from } => {
                                prop_assert!(held[&from[0]].contains(&hash));
                                held.get_mut(&p).unwrap().insert(hash);
                            }
                            RepairAction::Drop { hash } | RepairAction::DropUnreferenced { hash } => {
                                held.get_mut(&p).unwrap().remove(&hash);
                            }
                        }
                    }
                }
                for t in &tracks {
                    let copies = held.values().filter(|hs| hs.contains(t)).count();
                    prop_assert!(copies >= 1, "track lost");
                }
            }
            for t in &tracks {
                let want: BTreeSet<PeerId> = holders(t, &w.alive, replicas).into_iter().collect();
                let have: BTreeSet<PeerId> = held.iter().filter(|(_, hs)| hs.contains(t)).map(|(p, _)| *p).collect();
                prop_assert_eq!(have.len(), target);
                prop_assert_eq!(have, want);
            }
        }
    }
}
