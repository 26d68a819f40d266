//! Where a track lives: weighted rendezvous (highest random weight) hashing.
//!
//! Every peer ranks the live members for a content hash on its own and gets the same answer,
//! so finding a track's holders costs no lookup traffic. Rendezvous hashing also moves as
//! little as possible when membership changes: a peer's score for a key depends only on the
//! key and that peer, so a join or a departure only touches the slots it takes or frees.
//!
//! Weights use the logarithmic method (Schindelhauer & Schomaker, "Weighted distributed hash
//! tables", 2005; also Resch's "New Hashing Algorithms for Data Storage"): with `u` uniform in
//! (0, 1), `score = w / -ln(u)` makes the chance of ranking first exactly proportional to `w`.

use crate::id::PeerId;
use std::cmp::Ordering;
use std::collections::BTreeSet;

/// A member that may hold tracks, with the storage it offers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Candidate {
    pub id: PeerId,
    /// Offered capacity in bytes, used as the weight.
    ///
    /// Zero means "only if nobody else can": such a peer ranks after every peer that offers
    /// space. It is not excluded outright, because the contract is "R copies, or all peers if
    /// fewer", and a peer whose capacity has not been gossiped yet must not make a track
    /// homeless.
    pub capacity: u64,
}

/// The `r` peers that should hold `content_hash`, best first (min(r, distinct peers) of them).
///
/// The order matters beyond membership: the first holder is where a push starts its chain,
/// and readers try holders in this order.
pub fn holders(content_hash: &[u8; 32], candidates: &[Candidate], r: usize) -> Vec<PeerId> {
    let mut ranked = rank(content_hash, candidates);
    ranked.truncate(r);
    ranked
}

/// Every distinct candidate, best first.
///
/// Beyond the first R, the order says who takes over a slot when a holder leaves, so repair
/// and failover pick the same fallback on every peer. Duplicate ids count once, with their
/// largest capacity, so the result does not depend on the input order.
pub fn rank(content_hash: &[u8; 32], candidates: &[Candidate]) -> Vec<PeerId> {
    let mut scored: Vec<(Key, PeerId)> = candidates
        .iter()
        .map(|c| (Key::new(content_hash, c), c.id))
        .collect();
    // Best first; equal scores (never seen in practice) fall back to the smaller id so the
    // order stays total and identical everywhere.
    scored.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    let mut seen = BTreeSet::new();
    scored
        .into_iter()
        .filter(|(_, id)| seen.insert(*id))
        .map(|(_, id)| id)
        .collect()
}

/// A peer's standing for one key: offering space beats everything, then the weighted score.
#[derive(Clone, Copy, Debug)]
struct Key {
    offers_space: bool,
    score: f64,
}

impl Key {
    fn new(content_hash: &[u8; 32], c: &Candidate) -> Self {
        let weight = c.capacity.max(1) as f64;
        Key {
            offers_space: c.capacity > 0,
            score: weight / -det_ln(unit(content_hash, &c.id)),
        }
    }

    fn cmp(&self, other: &Self) -> Ordering {
        self.offers_space
            .cmp(&other.offers_space)
            .then_with(|| self.score.total_cmp(&other.score))
    }
}

/// A value uniform in the open interval (0, 1), fixed by the key and the peer.
///
/// The domain-separation prefix keeps these bits from ever coinciding with another use of
/// BLAKE3 over the same bytes. The +0.5 keeps the value away from both 0 (where -ln is
/// infinite) and 1 (where it is 0).
fn unit(content_hash: &[u8; 32], peer: &PeerId) -> f64 {
    let mut h = blake3::Hasher::new();
    h.update(b"meff placement v1\0");
    h.update(content_hash);
    h.update(&peer.0);
    let bytes = h.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&bytes.as_bytes()[..8]);
    // 52 bits, not 53: k + 0.5 must stay exactly representable, or the top value rounds to 1.
    let top52 = u64::from_be_bytes(first) >> 12;
    (top52 as f64 + 0.5) / (1u64 << 52) as f64
}

/// Natural log built only from IEEE-754 +, -, *, / (each correctly rounded everywhere).
///
/// `f64::ln` is documented as platform-dependent in its last bits, and two peers on different
/// operating systems must still agree on the ranking, so placement cannot use it. Valid for
/// positive normal inputs, which is all [`unit`] produces.
fn det_ln(x: f64) -> f64 {
    let bits = x.to_bits();
    let mut exp = ((bits >> 52) & 0x7ff) as i64 - 1023;
    // Mantissa in [1, 2), then folded into [sqrt(1/2), sqrt(2)] so the series converges fast.
    let mut m = f64::from_bits((bits & ((1u64 << 52) - 1)) | (1023u64 << 52));
    if m > std::f64::consts::SQRT_2 {
        m /= 2.0;
        exp += 1;
    }
    // ln(m) = 2 atanh(s) = 2 (s + s^3/3 + s^5/5 + ...), |s| <= 0.1716: 13 terms reach 1e-19.
    let s = (m - 1.0) / (m + 1.0);
    let s2 = s * s;
    let mut p = 0.0;
    for k in (0..13).rev() {
        p = p * s2 + 1.0 / (2 * k + 1) as f64;
    }
    exp as f64 * std::f64::consts::LN_2 + 2.0 * s * p
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn peer(n: u8) -> PeerId {
        PeerId(*blake3::hash(&[n]).as_bytes())
    }

    fn key(n: u32) -> [u8; 32] {
        *blake3::hash(&n.to_le_bytes()).as_bytes()
    }

    fn equal(n: u8) -> Vec<Candidate> {
        (0..n)
            .map(|i| Candidate {
                id: peer(i),
                capacity: 1 << 30,
            })
            .collect()
    }

    fn arb_candidates() -> impl Strategy<Value = Vec<Candidate>> {
        prop::collection::btree_map(any::<[u8; 32]>(), 0u64..1 << 40, 1..12).prop_map(|m| {
            m.into_iter()
                .map(|(id, capacity)| Candidate {
                    id: PeerId(id),
                    capacity,
                })
                .collect()
        })
    }

    #[test]
    fn det_ln_matches_std_ln() {
        for x in [
            1e-16,
            2f64.powi(-53),
            0.1,
            0.25,
            0.5,
            std::f64::consts::FRAC_1_SQRT_2,
            std::f64::consts::SQRT_2 / 2.0 + 1e-12,
            0.9,
            0.999_999,
            1.0,
        ] {
            let (a, b) = (det_ln(x), x.ln());
            assert!(
                (a - b).abs() <= 4.0 * f64::EPSILON * b.abs().max(1.0),
                "{x}: {a} vs {b}"
            );
        }
        let top = (((1u64 << 52) - 1) as f64 + 0.5) / (1u64 << 52) as f64;
        assert!(top < 1.0 && det_ln(top) < 0.0);
    }

    #[test]
    fn fewer_candidates_than_r_gives_all() {
        let c = equal(2);
        assert_eq!(holders(&key(1), &c, 3).len(), 2);
        assert!(holders(&key(1), &[], 3).is_empty());
        assert!(holders(&key(1), &c, 0).is_empty());
    }

    #[test]
    fn duplicate_ids_count_once() {
        let mut c = equal(3);
        c.push(Candidate {
            id: c[0].id,
            capacity: 5,
        });
        let r = rank(&key(7), &c);
        assert_eq!(r.len(), 3);
        let mut rev = c.clone();
        rev.reverse();
        assert_eq!(rank(&key(7), &rev), r);
    }

    #[test]
    fn zero_capacity_ranks_last() {
        let mut c = equal(4);
        c[2].capacity = 0;
        for k in 0..200 {
            assert_eq!(rank(&key(k), &c)[3], c[2].id);
        }
        let all_zero: Vec<_> = c.iter().map(|x| Candidate { capacity: 0, ..*x }).collect();
        assert_eq!(holders(&key(1), &all_zero, 3).len(), 3);
    }

    /// Every peer and every future version must compute the same placement, so the function
    /// itself is pinned: changing it is a wire-protocol change.
    #[test]
    fn placement_is_pinned() {
        let c = equal(6);
        let got: Vec<String> = holders(&key(42), &c, 3).iter().map(|p| p.short()).collect();
        assert_eq!(got, PINNED);
    }
    const PINNED: [&str; 3] = ["FU5N5X7R", "BQ4JU5B6", "4HQOQHLO"];

    #[test]
    fn weights_are_proportional() {
        let mut c = equal(5);
        c[0].capacity *= 2;
        let keys = 12_000;
        let mut counts = [0u32; 5];
        for k in 0..keys {
            let top = holders(&key(k), &c, 1)[0];
            counts[c.iter().position(|x| x.id == top).unwrap()] += 1;
        }
        // Expected: 2/6 of the keys for the double peer, 1/6 for each other one.
        let ratio = counts[0] as f64 / (counts[1..].iter().sum::<u32>() as f64 / 4.0);
        assert!((1.8..2.2).contains(&ratio), "{counts:?} ratio {ratio}");
    }

    proptest! {
        #[test]
        fn independent_of_input_order(
            (c, shuffled) in arb_candidates().prop_flat_map(|c| (Just(c.clone()), Just(c).prop_shuffle())),
            h in any::<[u8; 32]>(),
        ) {
            prop_assert_eq!(rank(&h, &c), rank(&h, &shuffled));
            prop_assert_eq!(holders(&h, &c, 3), holders(&h, &shuffled, 3));
        }

        #[test]
        fn stable_and_prefix_of_rank(c in arb_candidates(), h in any::<[u8; 32]>(), r in 0usize..6) {
            let a = holders(&h, &c, r);
            prop_assert_eq!(&a, &holders(&h, &c, r));
            prop_assert_eq!(a.len(), r.min(c.len()));
            prop_assert_eq!(&a[..], &rank(&h, &c)[..a.len()]);
        }

        #[test]
        fn minimal_movement_on_removal(
            c in arb_candidates(),
            h in any::<[u8; 32]>(),
            r in 1usize..5,
            victim in any::<prop::sample::Index>(),
        ) {
            let before = holders(&h, &c, r);
            let gone = c[victim.index(c.len())].id;
            let rest: Vec<_> = c.iter().copied().filter(|x| x.id != gone).collect();
            let after = holders(&h, &rest, r);
            if before.contains(&gone) {
                // The survivors keep their slots in order; only the freed slot is refilled,
                // by the next peer in the full ranking.
                let survivors: Vec<_> = before.iter().copied().filter(|p| *p != gone).collect();
                prop_assert_eq!(&after[..survivors.len()], &survivors[..]);
                let next = rank(&h, &c).into_iter().nth(r);
                prop_assert_eq!(after.get(survivors.len()).copied(), next);
            } else {
                prop_assert_eq!(after, before);
            }
        }

        #[test]
        fn minimal_movement_on_join(c in arb_candidates(), h in any::<[u8; 32]>(), r in 1usize..5, new in any::<[u8; 32]>(), cap in 1u64..1 << 40) {
            prop_assume!(c.iter().all(|x| x.id.0 != new));
            let before = holders(&h, &c, r);
            let mut more = c.clone();
            more.push(Candidate { id: PeerId(new), capacity: cap });
            let after = holders(&h, &more, r);
            // At most one holder changes, and it is the newcomer taking a slot.
            let moved: Vec<_> = after.iter().filter(|p| !before.contains(p)).collect();
            prop_assert!(moved.is_empty() || moved == vec![&PeerId(new)]);
        }

        #[test]
        fn balanced_with_equal_weights(seed in any::<u64>(), r in 1usize..4) {
            let c: Vec<_> = (0..5u64)
                .map(|i| Candidate { id: PeerId(*blake3::hash(&(seed ^ i << 56).to_le_bytes()).as_bytes()), capacity: 1000 })
                .collect();
            let keys = 2000u64;
            let mut counts = [0u32; 5];
            for k in 0..keys {
                let h = *blake3::hash(&[seed.to_le_bytes(), k.to_le_bytes()].concat()).as_bytes();
                for p in holders(&h, &c, r) {
                    counts[c.iter().position(|x| x.id == p).unwrap()] += 1;
                }
            }
            let mean = (r as u64 * keys) as f64 / 5.0;
            for n in counts {
                prop_assert!((n as f64 - mean).abs() <= 0.25 * mean, "{:?} mean {}", counts, mean);
            }
        }
    }
}
