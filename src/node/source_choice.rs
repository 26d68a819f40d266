//! Which holder to fetch from, and when to move: holders say how many transfers they serve
//! (in heartbeats, and when asked), a fetch starts at the least loaded, looks again every
//! half second or so and moves when another holder has at least two fewer (so holders end
//! within one of each other, however many fetches started at the same instant), and leaves
//! a holder that delivers slower than the track plays when another can serve.
//! The decisions are plain functions; the node asks and moves.

use super::Node;
use crate::id::PeerId;
use crate::net::frame;
use crate::net::msg::Msg;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

/// How long a load question may take before the holder counts as not answering.
const PROBE_WAIT: Duration = Duration::from_millis(300);
/// Network time a source gets before its rate is judged.
const RATE_WINDOW: Duration = Duration::from_secs(2);
/// Moves one fetch may make for balance, so two fetches can never chase each other forever.
const MAX_MOVES: u32 = 6;

/// The holder to move to, if any: one not known slow with at least two transfers fewer than
/// ours (our own counted in `current_load`), fewest first.
pub(crate) fn better_holder(
    current: PeerId,
    current_load: u32,
    others: &[(PeerId, u32)],
    slow: &BTreeSet<PeerId>,
) -> Option<PeerId> {
    others
        .iter()
        .filter(|(p, l)| *p != current && !slow.contains(p) && l.saturating_add(1) < current_load)
        .min_by_key(|(p, l)| (*l, *p))
        .map(|(p, _)| *p)
}

/// Bytes received against time spent waiting on the network (not on our own consumer, which
/// paces a stream at playback speed): too few for the track's bitrate means a slow source.
#[derive(Debug, Default)]
pub(crate) struct RateWatch {
    waited: Duration,
    bytes: u64,
}

impl RateWatch {
    pub(crate) fn add(&mut self, bytes: usize, waited: Duration) {
        self.bytes += bytes as u64;
        self.waited += waited;
    }

    /// True once [`RATE_WINDOW`] of waiting brought less than the track needs in that time.
    pub(crate) fn too_slow(&self, bytes_per_s: f64) -> bool {
        self.waited >= RATE_WINDOW
            && bytes_per_s > 0.0
            && (self.bytes as f64) < bytes_per_s * self.waited.as_secs_f64()
    }
}

/// The state of one fetch's choices.
#[derive(Debug)]
pub(crate) struct Balance {
    /// Holders that delivered slower than the track plays: tried last, never moved to.
    pub slow: BTreeSet<PeerId>,
    pub moves: u32,
    pub next_check: Instant,
    /// What the track needs, bytes per second (0 when its duration is unknown).
    pub bytes_per_s: f64,
}

impl Balance {
    pub(crate) fn new(size: u64, duration_s: f64) -> Self {
        Balance {
            slow: BTreeSet::new(),
            moves: 0,
            next_check: Instant::now() + check_interval(),
            bytes_per_s: if duration_s > 0.0 {
                size as f64 / duration_s
            } else {
                0.0
            },
        }
    }

    pub(crate) fn may_move(&self) -> bool {
        self.moves < MAX_MOVES
    }
}

/// Between 300 and 700 ms, at random: fetches that started together look at different times,
/// so they do not all move to the same holder at once.
pub(crate) fn check_interval() -> Duration {
    Duration::from_millis(300 + u64::from(rand::random::<u16>() % 400))
}

impl Node {
    /// Transfers this peer is serving now.
    pub fn serving_now(&self) -> u32 {
        self.inner
            .serving
            .load(std::sync::atomic::Ordering::Relaxed) as u32
    }

    /// The load `peer` last reported (in a heartbeat or an answer to a probe).
    pub fn known_load(&self, peer: &PeerId) -> Option<u32> {
        self.state().peer_load.get(peer).copied()
    }

    /// Asks each of `peers` how many transfers it serves, all at once; the answers also update
    /// what we know. A peer that does not answer in time is left out.
    pub(crate) async fn probe_loads(&self, peers: &[PeerId]) -> Vec<(PeerId, u32)> {
        let asks = peers.iter().map(|p| async move {
            let conn = self.link_conn(p).ok()?;
            let ask = async {
                let (mut send, mut recv) = conn.open_bi().await.ok()?;
                frame::write_frame(&mut send, &Msg::LoadAsk).await.ok()?;
                let _ = send.finish();
                match frame::read_frame(&mut recv).await.ok()? {
                    Msg::LoadIs { serving } => Some(serving),
                    _ => None,
                }
            };
            let load = tokio::time::timeout(PROBE_WAIT, ask).await.ok()??;
            Some((*p, load))
        });
        let out: Vec<(PeerId, u32)> = futures_util::future::join_all(asks)
            .await
            .into_iter()
            .flatten()
            .collect();
        let mut st = self.state();
        for (p, l) in &out {
            st.peer_load.insert(*p, *l);
        }
        out
    }

    /// Holders of `hash` we could move a fetch to, besides `current`.
    pub(crate) fn other_holders(&self, hash: &[u8; 32], current: PeerId) -> Vec<PeerId> {
        let alive = self.alive_peers();
        let me = self.id();
        self.holders_of(hash)
            .iter()
            .filter(|p| **p != me && **p != current && alive.contains(p))
            .copied()
            .collect()
    }
}

/// Counts a transfer this peer serves for as long as it lives.
pub(crate) struct Serving<'a>(&'a std::sync::atomic::AtomicUsize);

impl<'a> Serving<'a> {
    pub(crate) fn start(counter: &'a std::sync::atomic::AtomicUsize) -> Self {
        counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Serving(counter)
    }
}

impl Drop for Serving<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(i: u8) -> PeerId {
        PeerId([i; 32])
    }

    #[test]
    fn moves_only_for_a_gain_of_two_and_never_to_a_slow_holder() {
        let none = BTreeSet::new();
        assert_eq!(
            better_holder(p(1), 3, &[(p(2), 1), (p(3), 2)], &none),
            Some(p(2))
        );
        assert_eq!(better_holder(p(1), 2, &[(p(2), 1), (p(3), 1)], &none), None);
        assert_eq!(better_holder(p(1), 2, &[(p(2), 0)], &none), Some(p(2)));
        let slow = BTreeSet::from([p(2)]);
        assert_eq!(better_holder(p(1), 3, &[(p(2), 0), (p(3), 2)], &slow), None);
        assert_eq!(better_holder(p(1), 3, &[(p(1), 0)], &none), None);
    }

    /// Fetches that each move when another holder has two fewer end within one of each other,
    /// from any start: the property the spread goal needs.
    #[test]
    fn repeated_moves_end_balanced() {
        for start in [[8u32, 0, 0], [5, 3, 0], [4, 4, 0], [7, 1, 0]] {
            let mut loads = start;
            let holders = [p(0), p(1), p(2)];
            for _ in 0..64 {
                let mut moved = false;
                for h in 0..3 {
                    let others: Vec<(PeerId, u32)> =
                        (0..3).map(|j| (holders[j], loads[j])).collect();
                    if loads[h] > 0
                        && let Some(to) =
                            better_holder(holders[h], loads[h], &others, &BTreeSet::new())
                    {
                        let j = holders.iter().position(|x| *x == to).unwrap();
                        loads[h] -= 1;
                        loads[j] += 1;
                        moved = true;
                    }
                }
                if !moved {
                    break;
                }
            }
            let (max, min) = (loads.iter().max().unwrap(), loads.iter().min().unwrap());
            assert!(max - min <= 1, "{start:?} ended at {loads:?}");
            assert_eq!(loads.iter().sum::<u32>(), start.iter().sum::<u32>());
        }
    }

    #[test]
    fn a_rate_is_judged_on_network_time_only() {
        let mut w = RateWatch::default();
        w.add(100_000, Duration::from_millis(500));
        assert!(!w.too_slow(1_000_000.0), "too early to judge");
        w.add(100_000, Duration::from_millis(1600));
        assert!(w.too_slow(1_000_000.0));
        assert!(!w.too_slow(50_000.0));
        assert!(!w.too_slow(0.0), "no bitrate, no judgement");
    }
}
