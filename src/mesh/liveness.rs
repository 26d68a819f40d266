//! Failure detection from heartbeats, as a state machine fed with events and the current time:
//! no timers or sockets inside, so it is tested deterministically.

use crate::id::PeerId;
use std::collections::HashMap;
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PeerState {
    Alive,
    Suspect,
    Dead,
    Left,
}

impl PeerState {
    pub fn as_str(self) -> &'static str {
        match self {
            PeerState::Alive => "alive",
            PeerState::Suspect => "suspect",
            PeerState::Dead => "dead",
            PeerState::Left => "left",
        }
    }
}

#[derive(Clone, Copy, Debug)]
pub struct LivenessConfig {
    pub suspect_after: Duration,
    pub dead_after: Duration,
}

impl Default for LivenessConfig {
    /// Heartbeats go out every second: two missed make a suspect, four a dead peer, so a
    /// killed peer is declared dead within 5 s.
    fn default() -> Self {
        LivenessConfig {
            suspect_after: Duration::from_millis(2500),
            dead_after: Duration::from_millis(4000),
        }
    }
}

#[derive(Clone, Debug)]
struct Track {
    last_heard: Instant,
    state: PeerState,
    since: Instant,
}

#[derive(Debug, Default)]
pub struct Liveness {
    cfg: LivenessConfig,
    peers: HashMap<PeerId, Track>,
}

impl Liveness {
    pub fn new(cfg: LivenessConfig) -> Self {
        Liveness {
            cfg,
            peers: HashMap::new(),
        }
    }

    /// A heartbeat (or handshake) from `id`. Returns the transition if its state changed.
    pub fn heard(&mut self, id: PeerId, now: Instant) -> Option<PeerState> {
        let t = self.peers.entry(id).or_insert(Track {
            last_heard: now,
            state: PeerState::Suspect,
            since: now,
        });
        t.last_heard = now;
        (t.state != PeerState::Alive).then(|| {
            t.state = PeerState::Alive;
            t.since = now;
            PeerState::Alive
        })
    }

    /// A member we know of but have not heard from yet (learned through gossip or from disk).
    pub fn learned(&mut self, id: PeerId, now: Instant) {
        self.peers.entry(id).or_insert(Track {
            last_heard: now,
            state: PeerState::Suspect,
            since: now,
        });
    }

    pub fn left(&mut self, id: PeerId, now: Instant) -> Option<PeerState> {
        let t = self.peers.entry(id).or_insert(Track {
            last_heard: now,
            state: PeerState::Left,
            since: now,
        });
        (t.state != PeerState::Left).then(|| {
            t.state = PeerState::Left;
            t.since = now;
            PeerState::Left
        })
    }

    /// We could not listen for `gap` (our process was starved of CPU, or suspended): nobody's
    /// silence during it counts against them, so an overloaded peer does not declare its
    /// healthy friends dead (Lifeguard's point: look at your own health first).
    pub fn pause(&mut self, gap: Duration, now: Instant) {
        for t in self.peers.values_mut() {
            if matches!(t.state, PeerState::Alive | PeerState::Suspect) {
                t.last_heard = (t.last_heard + gap).min(now);
            }
        }
    }

    /// Advance time: returns every peer whose state changed.
    pub fn tick(&mut self, now: Instant) -> Vec<(PeerId, PeerState)> {
        self.tick_stretched(now, 1)
    }

    /// As [`tick`](Self::tick), with the silences that make a suspect and a dead peer
    /// `stretch` times longer: what an observer busy with many handshakes at once allows its
    /// peers, since their heartbeats are late for the same reason (Lifeguard's local health).
    pub fn tick_stretched(&mut self, now: Instant, stretch: u32) -> Vec<(PeerId, PeerState)> {
        let stretch = stretch.max(1);
        let (suspect_after, dead_after) = (
            self.cfg.suspect_after * stretch,
            self.cfg.dead_after * stretch,
        );
        let mut out = Vec::new();
        for (id, t) in self.peers.iter_mut() {
            if matches!(t.state, PeerState::Left | PeerState::Dead) {
                continue;
            }
            let silent = now.saturating_duration_since(t.last_heard);
            let next = if silent >= dead_after {
                PeerState::Dead
            } else if silent >= suspect_after {
                PeerState::Suspect
            } else {
                t.state
            };
            if next != t.state {
                t.state = next;
                t.since = now;
                out.push((*id, next));
            }
        }
        out
    }

    pub fn state(&self, id: &PeerId) -> Option<PeerState> {
        self.peers.get(id).map(|t| t.state)
    }

    /// How long `id` has been in its current state.
    pub fn in_state_for(&self, id: &PeerId, now: Instant) -> Option<Duration> {
        self.peers
            .get(id)
            .map(|t| now.saturating_duration_since(t.since))
    }

    /// How long since we last heard from `id`.
    pub fn silent_for(&self, id: &PeerId, now: Instant) -> Option<Duration> {
        self.peers
            .get(id)
            .map(|t| now.saturating_duration_since(t.last_heard))
    }

    pub fn forget(&mut self, id: &PeerId) {
        self.peers.remove(id);
    }
}

#[cfg(test)]
mod pause_tests {
    use super::*;

    #[test]
    fn a_starved_observer_does_not_blame_its_peers() {
        let t0 = Instant::now();
        let id = PeerId([7; 32]);
        let mut l = Liveness::new(LivenessConfig::default());
        l.heard(id, t0);
        // 5 s pass, of which we were starved for 4.5 s: only 0.5 s of silence counts.
        let now = t0 + Duration::from_secs(5);
        l.pause(Duration::from_millis(4500), now);
        assert!(l.tick(now).is_empty());
        assert_eq!(l.state(&id), Some(PeerState::Alive));
        // A busy observer allows more silence.
        let mut busy = Liveness::new(LivenessConfig::default());
        busy.heard(id, t0);
        assert!(
            busy.tick_stretched(now, 2)
                .iter()
                .all(|(_, s)| *s != PeerState::Dead)
        );
        // Without the pause the same silence is a death.
        let mut m = Liveness::new(LivenessConfig::default());
        m.heard(id, t0);
        assert_eq!(m.tick(now), vec![(id, PeerState::Dead)]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn silence_makes_suspect_then_dead_and_a_heartbeat_revives() {
        let mut l = Liveness::new(LivenessConfig::default());
        let t0 = Instant::now();
        let p = PeerId([1; 32]);
        assert_eq!(l.heard(p, t0), Some(PeerState::Alive));
        assert_eq!(l.heard(p, t0 + Duration::from_millis(900)), None);
        assert!(l.tick(t0 + Duration::from_millis(2000)).is_empty());
        assert_eq!(
            l.tick(t0 + Duration::from_millis(3500)),
            vec![(p, PeerState::Suspect)]
        );
        assert_eq!(
            l.tick(t0 + Duration::from_millis(5000)),
            vec![(p, PeerState::Dead)]
        );
        assert!(l.tick(t0 + Duration::from_secs(60)).is_empty());
        assert_eq!(
            l.heard(p, t0 + Duration::from_secs(61)),
            Some(PeerState::Alive)
        );
    }

    #[test]
    fn left_is_final_until_heard_again() {
        let mut l = Liveness::new(LivenessConfig::default());
        let t0 = Instant::now();
        let p = PeerId([2; 32]);
        l.heard(p, t0);
        assert_eq!(l.left(p, t0), Some(PeerState::Left));
        assert!(l.tick(t0 + Duration::from_secs(30)).is_empty());
        assert_eq!(l.state(&p), Some(PeerState::Left));
    }
}
