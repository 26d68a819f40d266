//! The replicated membership table. Each record is asserted only by the member it describes
//! (its name, addresses, incarnation, whether it left); others only pass it on. Merging keeps
//! the highest (incarnation, left) so tables converge in any order. Whether a member is alive
//! right now is each peer's own observation (see `liveness`), not gossip.

use crate::id::PeerId;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::SocketAddr;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberRecord {
    pub id: PeerId,
    pub name: String,
    pub addrs: Vec<SocketAddr>,
    /// Start time in ms (bumped on every change), so a restarted peer always outranks its past.
    pub incarnation: u64,
    pub left: bool,
    pub capacity: u64,
    /// The peer's disk is full: it takes no new copies until it has room again.
    pub disk_full: bool,
}

impl MemberRecord {
    fn rank(&self) -> (u64, bool) {
        (self.incarnation, self.left)
    }

    /// Total order used to merge: rank first; on an exact tie the encoded bytes decide, so the
    /// result never depends on arrival order.
    fn supersedes(&self, other: &MemberRecord) -> bool {
        match self.rank().cmp(&other.rank()) {
            std::cmp::Ordering::Greater => true,
            std::cmp::Ordering::Less => false,
            std::cmp::Ordering::Equal => {
                postcard::to_allocvec(self).unwrap_or_default()
                    > postcard::to_allocvec(other).unwrap_or_default()
            }
        }
    }
}

/// A record of a peer that left more than `max_age_ms` ago: forgotten, and not taken back
/// from a peer that still remembers it (every peer applies the same rule, so it converges).
pub fn departed_long_ago(r: &MemberRecord, now_ms: u64, max_age_ms: u64) -> bool {
    r.left && now_ms.saturating_sub(r.incarnation) > max_age_ms
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Table {
    members: BTreeMap<PeerId, MemberRecord>,
}

impl Table {
    /// Returns true when the table changed.
    pub fn merge(&mut self, rec: MemberRecord) -> bool {
        match self.members.get(&rec.id) {
            Some(cur) if !rec.supersedes(cur) => false,
            _ => {
                self.members.insert(rec.id, rec);
                true
            }
        }
    }

    pub fn merge_all(&mut self, recs: impl IntoIterator<Item = MemberRecord>) -> Vec<PeerId> {
        recs.into_iter()
            .filter_map(|r| {
                let id = r.id;
                self.merge(r).then_some(id)
            })
            .collect()
    }

    /// Drops members that left more than `max_age_ms` before `now_ms` (a leave stamps the
    /// record's incarnation with its time); returns who was forgotten.
    pub fn forget_departed(&mut self, now_ms: u64, max_age_ms: u64) -> Vec<PeerId> {
        let gone: Vec<PeerId> = self
            .members
            .values()
            .filter(|r| departed_long_ago(r, now_ms, max_age_ms))
            .map(|r| r.id)
            .collect();
        for id in &gone {
            self.members.remove(id);
        }
        gone
    }

    pub fn get(&self, id: &PeerId) -> Option<&MemberRecord> {
        self.members.get(id)
    }

    pub fn records(&self) -> impl Iterator<Item = &MemberRecord> {
        self.members.values()
    }

    /// A digest of every record: equal tables, equal digests, whatever order they merged in.
    pub fn digest(&self) -> [u8; 32] {
        let mut h = blake3::Hasher::new();
        for r in self.members.values() {
            h.update(&postcard::to_allocvec(r).unwrap_or_default());
        }
        *h.finalize().as_bytes()
    }

    pub fn to_vec(&self) -> Vec<MemberRecord> {
        self.members.values().cloned().collect()
    }

    /// A member other than `except` that is not gone and already uses `name`.
    pub fn name_holder(&self, name: &str, except: &PeerId) -> Option<&MemberRecord> {
        self.members
            .values()
            .find(|r| r.name == name && r.id != *except && !r.left)
    }

    /// The name to show for a member: when two live members claim one name (concurrent joins),
    /// the one with the higher id shows a suffix, so no two peers ever display the same name.
    pub fn display_name(&self, id: &PeerId) -> String {
        let Some(rec) = self.members.get(id) else {
            return id.short();
        };
        let clash = self
            .members
            .values()
            .any(|r| r.name == rec.name && r.id < rec.id && !r.left);
        if clash {
            format!("{}~{}", rec.name, id.short())
        } else {
            rec.name.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn rec(id: u8, inc: u64, left: bool, port: u16) -> MemberRecord {
        MemberRecord {
            id: PeerId([id; 32]),
            name: format!("p{id}"),
            addrs: vec![SocketAddr::from(([127, 0, 0, 1], port))],
            incarnation: inc,
            left,
            capacity: 1,
            disk_full: false,
        }
    }

    #[test]
    fn departed_peers_are_forgotten_after_the_age_and_not_before() {
        let mut t = Table::default();
        t.merge(rec(1, 1_000, true, 1));
        t.merge(rec(2, 1_000, false, 2));
        t.merge(rec(3, 90_000, true, 3));
        assert!(t.forget_departed(50_000, 60_000).is_empty());
        let gone = t.forget_departed(100_000, 60_000);
        assert_eq!(gone, vec![rec(1, 0, false, 0).id]);
        assert!(
            t.get(&rec(2, 0, false, 0).id).is_some(),
            "a live member stays"
        );
        assert!(
            t.get(&rec(3, 0, false, 0).id).is_some(),
            "a recent leave stays"
        );
    }

    fn arb_rec() -> impl Strategy<Value = MemberRecord> {
        (0u8..4, 0u64..4, any::<bool>(), 0u16..3).prop_map(|(i, n, l, p)| rec(i, n, l, p))
    }

    proptest! {
        #[test]
        fn merge_is_order_independent(recs in proptest::collection::vec(arb_rec(), 0..20), seed in any::<u64>()) {
            let mut a = Table::default();
            a.merge_all(recs.clone());
            let mut shuffled = recs.clone();
            // A deterministic shuffle driven by the seed.
            let n = shuffled.len();
            for i in 0..n {
                let j = ((seed.wrapping_mul(6364136223846793005).wrapping_add(i as u64)) % n as u64) as usize;
                shuffled.swap(i, j);
            }
            let mut b = Table::default();
            b.merge_all(shuffled);
            prop_assert_eq!(&a, &b);
            // Idempotent: merging everything again changes nothing.
            let mut c = a.clone();
            prop_assert!(c.merge_all(recs).is_empty());
            prop_assert_eq!(&a, &c);
        }

        #[test]
        fn merging_tables_commutes(x in proptest::collection::vec(arb_rec(), 0..10), y in proptest::collection::vec(arb_rec(), 0..10)) {
            let (mut ta, mut tb) = (Table::default(), Table::default());
            ta.merge_all(x.clone());
            tb.merge_all(y.clone());
            let mut ab = ta.clone();
            ab.merge_all(tb.to_vec());
            let mut ba = tb.clone();
            ba.merge_all(ta.to_vec());
            prop_assert_eq!(ab, ba);
        }
    }

    #[test]
    fn newer_incarnation_and_leave_win() {
        let mut t = Table::default();
        assert!(t.merge(rec(1, 5, false, 1)));
        assert!(!t.merge(rec(1, 4, false, 2)));
        assert!(t.merge(rec(1, 5, true, 1)));
        assert!(!t.merge(rec(1, 5, false, 1)));
        assert!(t.merge(rec(1, 6, false, 1)));
        assert!(!t.get(&PeerId([1; 32])).unwrap().left);
    }

    #[test]
    fn clashing_names_get_a_suffix() {
        let mut t = Table::default();
        let mut a = rec(1, 1, false, 1);
        let mut b = rec(2, 1, false, 2);
        a.name = "amy".into();
        b.name = "amy".into();
        t.merge(a);
        t.merge(b);
        assert_eq!(t.display_name(&PeerId([1; 32])), "amy");
        assert!(t.display_name(&PeerId([2; 32])).starts_with("amy~"));
    }
}
