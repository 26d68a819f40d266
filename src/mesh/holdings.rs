//! Who holds which blob, as the peers said: kept both ways (per peer, and per blob) so "who
//! holds this track" is a lookup, not a pass over every peer's set, and every change names
//! the blobs it touched so repair looks at those only.

use crate::id::PeerId;
use crate::store::recon::RangeFp;
use std::collections::{BTreeSet, HashMap, HashSet};

/// The digest of a holdings set, from its fingerprint (kept up to date blob by blob, so
/// anti-entropy costs nothing however many blobs a peer holds).
pub fn digest(fp: &RangeFp) -> [u8; 32] {
    let mut h = blake3::Hasher::new();
    h.update(b"meff holdings v5\0");
    h.update(&fp.xor);
    h.update(&fp.count.to_le_bytes());
    *h.finalize().as_bytes()
}

/// The fingerprint of a whole set, computed from scratch.
pub fn fingerprint<'a>(set: impl IntoIterator<Item = &'a Hash>) -> RangeFp {
    let mut fp = RangeFp::default();
    for h in set {
        fp.add(h);
    }
    fp
}

pub type Hash = [u8; 32];

#[derive(Debug, Default)]
pub struct HoldingsIndex {
    by_peer: HashMap<PeerId, BTreeSet<Hash>>,
    /// Holders by blob, sorted; a Vec, since a one-element BTreeSet costs a whole node.
    by_hash: HashMap<Hash, Vec<PeerId>>,
    fps: HashMap<PeerId, RangeFp>,
    /// Blobs whose holders changed since [`take_changed`](Self::take_changed).
    changed: HashSet<Hash>,
}

impl HoldingsIndex {
    /// `peer`'s whole set, replacing what we had: only the differences are applied.
    pub fn replace(&mut self, peer: PeerId, set: BTreeSet<Hash>) {
        let old = self.by_peer.remove(&peer).unwrap_or_default();
        for h in old.difference(&set) {
            self.unlink(peer, h);
        }
        for h in set.difference(&old) {
            self.link(peer, *h);
        }
        self.fps.insert(peer, fingerprint(&set));
        self.by_peer.insert(peer, set);
    }

    pub fn add(&mut self, peer: PeerId, h: Hash) {
        if self.by_peer.entry(peer).or_default().insert(h) {
            self.fps.entry(peer).or_default().add(&h);
            self.link(peer, h);
        }
    }

    pub fn remove(&mut self, peer: PeerId, h: &Hash) {
        if self.by_peer.get_mut(&peer).is_some_and(|s| s.remove(h)) {
            self.fps.entry(peer).or_default().remove(h);
            self.unlink(peer, h);
        }
    }

    pub fn forget(&mut self, peer: &PeerId) {
        self.fps.remove(peer);
        if let Some(set) = self.by_peer.remove(peer) {
            for h in &set {
                self.unlink(*peer, h);
            }
        }
    }

    pub fn of_peer(&self, peer: &PeerId) -> Option<&BTreeSet<Hash>> {
        self.by_peer.get(peer)
    }

    /// The digest of what `peer` holds, as we mirror it.
    pub fn digest_of(&self, peer: &PeerId) -> Option<[u8; 32]> {
        self.by_peer
            .contains_key(peer)
            .then(|| digest(&self.fps.get(peer).copied().unwrap_or_default()))
    }

    /// Who holds `h`, in id order.
    pub fn holders(&self, h: &Hash) -> Option<&[PeerId]> {
        self.by_hash.get(h).map(Vec::as_slice)
    }

    /// Every blob and its holders.
    pub fn all(&self) -> impl Iterator<Item = (&Hash, &[PeerId])> {
        self.by_hash.iter().map(|(h, p)| (h, p.as_slice()))
    }

    pub fn take_changed(&mut self) -> HashSet<Hash> {
        std::mem::take(&mut self.changed)
    }

    fn link(&mut self, peer: PeerId, h: Hash) {
        let holders = self.by_hash.entry(h).or_default();
        if let Err(at) = holders.binary_search(&peer) {
            holders.insert(at, peer);
        }
        self.changed.insert(h);
    }

    fn unlink(&mut self, peer: PeerId, h: &Hash) {
        if let Some(s) = self.by_hash.get_mut(h) {
            if let Ok(at) = s.binary_search(&peer) {
                s.remove(at);
            }
            if s.is_empty() {
                self.by_hash.remove(h);
            }
        }
        self.changed.insert(*h);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Whatever the sequence of changes, the index by blob says what the sets by peer say,
        /// and every blob whose holders changed is reported.
        #[test]
        fn both_views_agree(ops in prop::collection::vec((0u8..4, 0u8..3, prop::collection::btree_set(0u8..6, 0..5), 0u8..6), 0..40)) {
            let mut ix = HoldingsIndex::default();
            for (op, p, set, h) in ops {
                let peer = PeerId([p; 32]);
                let before: Vec<(Hash, BTreeSet<PeerId>)> = (0u8..6).map(|x| ([x; 32], ix.holders(&[x; 32]).unwrap_or_default().iter().copied().collect())).collect();
                ix.take_changed();
                match op {
                    0 => ix.replace(peer, set.iter().map(|x| [*x; 32]).collect()),
                    1 => ix.add(peer, [h; 32]),
                    2 => ix.remove(peer, &[h; 32]),
                    _ => ix.forget(&peer),
                }
                let changed = ix.take_changed();
                for (hash, old) in before {
                    let now: BTreeSet<PeerId> = ix.holders(&hash).unwrap_or_default().iter().copied().collect();
                    let expected: BTreeSet<PeerId> = (0u8..3)
                        .map(|q| PeerId([q; 32]))
                        .filter(|q| ix.of_peer(q).is_some_and(|s| s.contains(&hash)))
                        .collect();
                    prop_assert_eq!(&now, &expected);
                    for q in (0u8..3).map(|q| PeerId([q; 32])) {
                        prop_assert_eq!(
                            ix.digest_of(&q),
                            ix.of_peer(&q).map(|s| digest(&fingerprint(s))),
                            "a digest kept up to date is the one computed afresh"
                        );
                    }
                    if now != old {
                        prop_assert!(changed.contains(&hash));
                    }
                }
            }
        }
    }
}
