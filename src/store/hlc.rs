//! Hybrid logical clock timestamps: the versions last-writer-wins compares.

use serde::{Deserialize, Serialize};

/// A hybrid logical clock reading: 48 bits of Unix milliseconds, then a 16-bit counter.
///
/// Packing both into one integer keeps comparisons and the wire form trivial, and 48 bits of
/// milliseconds last until the year 10889.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Timestamp(pub u64);

const MS_MASK: u64 = (1 << 48) - 1;

impl Timestamp {
    pub fn new(ms: u64, counter: u16) -> Self {
        Timestamp(((ms & MS_MASK) << 16) | counter as u64)
    }

    pub fn ms(self) -> u64 {
        self.0 >> 16
    }

    pub fn counter(self) -> u16 {
        self.0 as u16
    }
}

/// Hybrid logical clock (Kulkarni et al., 2014).
///
/// Wall clocks alone would let a peer whose clock runs slow lose every write it makes after
/// seeing a newer one; a pure logical counter would lose the "roughly when" that makes last
/// writer wins match what users expect. An HLC stays close to wall time yet never goes
/// backwards and always orders a write after every write its peer has seen.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Hlc {
    last: Timestamp,
}

impl Hlc {
    /// Resume after a restart: pass the newest timestamp this peer issued or observed, so a
    /// wall clock that stepped back cannot make new writes lose to old ones.
    pub fn resume(last: Timestamp) -> Self {
        Hlc { last }
    }

    pub fn last(&self) -> Timestamp {
        self.last
    }

    /// A timestamp for a local write, strictly greater than any issued or observed so far.
    pub fn now(&mut self, wall_ms: u64) -> Timestamp {
        let wall = wall_ms & MS_MASK;
        self.last = if wall > self.last.ms() {
            Timestamp::new(wall, 0)
        } else {
            bump(self.last)
        };
        self.last
    }

    /// Fold in a timestamp seen on a remote write, so our next write orders after it.
    pub fn observe(&mut self, remote: Timestamp, wall_ms: u64) {
        let wall = wall_ms & MS_MASK;
        let (l, r) = (self.last, remote);
        let ms = l.ms().max(r.ms()).max(wall);
        self.last = match (ms == l.ms(), ms == r.ms()) {
            (true, true) => bump(l.max(r)),
            (true, false) => bump(l),
            (false, true) => bump(r),
            (false, false) => Timestamp::new(ms, 0),
        };
    }
}

/// The next reading: the packing makes a full counter carry into the milliseconds (never
/// wrapping, which would break monotonicity), and the end of time saturates.
fn bump(t: Timestamp) -> Timestamp {
    Timestamp(t.0.saturating_add(1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn timestamp_packing() {
        let t = Timestamp::new(1_700_000_000_000, 7);
        assert_eq!((t.ms(), t.counter()), (1_700_000_000_000, 7));
        assert!(Timestamp::new(5, 0) > Timestamp::new(4, u16::MAX));
        let bytes = postcard::to_allocvec(&t).unwrap();
        assert_eq!(postcard::from_bytes::<Timestamp>(&bytes).unwrap(), t);
    }

    #[test]
    fn hlc_survives_clock_going_back_and_counter_overflow() {
        let mut c = Hlc::default();
        let a = c.now(1000);
        let b = c.now(900);
        assert!(b > a && b.ms() == 1000);
        c.observe(Timestamp::new(5000, 3), 1000);
        let d = c.now(1000);
        assert_eq!((d.ms(), d.counter()), (5000, 5));
        let mut full = Hlc::resume(Timestamp::new(10, u16::MAX));
        assert_eq!(full.now(0), Timestamp::new(11, 0));
        assert_eq!(c.now(6000), Timestamp::new(6000, 0));
        let mut end = Hlc::default();
        end.observe(Timestamp(u64::MAX), 0);
        assert_eq!(end.now(0), Timestamp(u64::MAX));
    }

    proptest! {
        #[test]
        fn hlc_is_monotonic_and_causal(ops in prop::collection::vec((any::<bool>(), 0u64..50, 0u64..50, any::<u16>()), 1..60)) {
            let mut c = Hlc::default();
            let mut floor = Timestamp::default();
            for (local, wall, rms, rc) in ops {
                if local {
                    let t = c.now(wall);
                    prop_assert!(t > floor);
                    prop_assert!(t.ms() >= wall);
                    floor = t;
                } else {
                    let r = Timestamp::new(rms, rc);
                    c.observe(r, wall);
                    prop_assert!(c.last() >= r.max(floor));
                    floor = c.last();
                }
            }
        }
    }
}
