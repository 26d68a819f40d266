//! Failure detection from heartbeats, as a state machine fed with events and the current time:
//! no timers or sockets inside, so it is tested deterministically.
//!
//! A peer we stop hearing is first a suspect. While it is silent we ask a few other members
//! whether *they* hear it (SWIM's indirect probe: every member heartbeats every other, so a
//! friend's answer is how fresh its own news is). One fresh answer keeps the peer alive: a
//! broken path between two peers is not a dead peer. A suspect nobody has fresh news of is dead
//! after `dead_after`. Asks that go unanswered mean we are the slow one (Lifeguard's local
//! health): every silence we allow grows with them, and shrinks back as answers come.

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
    /// How often the friends of a silent peer are asked about it again.
    pub ask_every: Duration,
    /// A friend's news counts when it heard the peer at most this long ago: a heartbeat
    /// period and a margin, so news from before a crash soon stops counting.
    pub fresh: Duration,
    /// How long one fresh answer keeps a silent peer alive.
    pub vouch_for: Duration,
    /// The most that local health may multiply the allowed silences by.
    pub max_health_stretch: u32,
    /// How many times longer a silence is allowed on a link that has not carried its first
    /// heartbeat yet: in a join storm the other side may still be busy finishing the
    /// handshake it just made with us, and that is load, not death.
    pub new_link_grace: u32,
}

impl Default for LivenessConfig {
    /// Heartbeats go out every second. After 1.5 s of silence a peer is a suspect and its
    /// friends are asked; with no fresh news of it, it is dead after 2.5 s, so a killed peer is
    /// dead for everyone within 3 s (a tick of 250 ms included).
    fn default() -> Self {
        LivenessConfig {
            suspect_after: Duration::from_millis(1500),
            dead_after: Duration::from_millis(2500),
            ask_every: Duration::from_millis(500),
            fresh: Duration::from_millis(1250),
            vouch_for: Duration::from_millis(1000),
            max_health_stretch: 8,
            new_link_grace: 4,
        }
    }
}

#[derive(Clone, Debug)]
struct Track {
    last_heard: Instant,
    state: PeerState,
    since: Instant,
    /// Until when a friend's fresh news keeps this peer alive though we do not hear it.
    vouched_until: Option<Instant>,
    /// When we last asked about it, and how many answers to that ask are still due.
    asked_at: Option<Instant>,
    answers_due: u32,
    /// Linked or learned of, and no heartbeat yet.
    first_beat_due: bool,
}

impl Track {
    fn new(now: Instant, state: PeerState) -> Track {
        Track {
            last_heard: now,
            state,
            since: now,
            vouched_until: None,
            asked_at: None,
            answers_due: 0,
            first_beat_due: false,
        }
    }

    /// The factor on allowed silences for this peer alone.
    fn grace(&self, cfg: &LivenessConfig) -> u32 {
        if self.first_beat_due {
            cfg.new_link_grace.max(1)
        } else {
            1
        }
    }

    fn vouched(&self, now: Instant) -> bool {
        self.vouched_until.is_some_and(|t| t > now)
    }
}

#[derive(Debug, Default)]
pub struct Liveness {
    cfg: LivenessConfig,
    peers: HashMap<PeerId, Track>,
    /// Lifeguard's local health multiplier: grows with asks nobody answered in time, shrinks
    /// with every answer. 0 is healthy.
    health: u32,
}

impl Liveness {
    pub fn new(cfg: LivenessConfig) -> Self {
        Liveness {
            cfg,
            peers: HashMap::new(),
            health: 0,
        }
    }

    /// A heartbeat (or handshake) from `id`. Returns the transition if its state changed.
    pub fn heard(&mut self, id: PeerId, now: Instant) -> Option<PeerState> {
        let t = self
            .peers
            .entry(id)
            .or_insert_with(|| Track::new(now, PeerState::Suspect));
        // Evidence can be older than what was heard last (an ACK noted at the next check).
        t.last_heard = t.last_heard.max(now);
        t.vouched_until = None;
        t.asked_at = None;
        t.answers_due = 0;
        t.first_beat_due = false;
        (t.state != PeerState::Alive).then(|| {
            t.state = PeerState::Alive;
            t.since = now;
            PeerState::Alive
        })
    }

    /// A link to `id` was just made (a handshake): heard, and its first heartbeat is due.
    pub fn linked(&mut self, id: PeerId, now: Instant) -> Option<PeerState> {
        let change = self.heard(id, now);
        if let Some(t) = self.peers.get_mut(&id) {
            t.first_beat_due = true;
        }
        change
    }

    /// A member we know of but have not heard from yet (learned through gossip or from disk).
    /// It gets a new link's grace: in a join storm the dial to it may take a while.
    pub fn learned(&mut self, id: PeerId, now: Instant) {
        self.peers.entry(id).or_insert_with(|| Track {
            first_beat_due: true,
            ..Track::new(now, PeerState::Suspect)
        });
    }

    pub fn left(&mut self, id: PeerId, now: Instant) -> Option<PeerState> {
        let t = self
            .peers
            .entry(id)
            .or_insert_with(|| Track::new(now, PeerState::Left));
        t.vouched_until = None;
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

    /// The factor local health puts on every allowed silence (1 when healthy).
    pub fn health_stretch(&self) -> u32 {
        1 + self.health.min(self.cfg.max_health_stretch - 1)
    }

    /// Silent peers whose friends should be asked about them now (each at most every
    /// `ask_every`), given that `helpers` friends will be asked for each. An ask still
    /// unanswered when the next is due counts against our own health.
    pub fn asks_due(&mut self, now: Instant, stretch: u32, helpers: u32) -> Vec<PeerId> {
        let suspect_after = self.cfg.suspect_after * stretch.max(1) * self.health_stretch();
        let mut out = Vec::new();
        let mut unanswered = 0;
        for (id, t) in self.peers.iter_mut() {
            if !matches!(t.state, PeerState::Alive | PeerState::Suspect)
                || now.saturating_duration_since(t.last_heard) < suspect_after * t.grace(&self.cfg)
                || t.asked_at
                    .is_some_and(|a| now.saturating_duration_since(a) < self.cfg.ask_every)
            {
                continue;
            }
            if t.asked_at.is_some() && t.answers_due > 0 {
                unanswered += 1;
            }
            t.asked_at = Some(now);
            t.answers_due = helpers;
            out.push(*id);
        }
        if unanswered > 0 {
            self.health = (self.health + 1).min(self.cfg.max_health_stretch - 1);
        }
        out
    }

    /// A friend's answer about `id`: it last heard `id` `their_silence` ago (None: it does
    /// not hear it at all). Fresh news keeps `id` alive for `vouch_for`; returns the
    /// transition if that revived a suspect. Answers we did not ask for are ignored.
    pub fn answer(
        &mut self,
        id: PeerId,
        their_silence: Option<Duration>,
        now: Instant,
    ) -> Option<PeerState> {
        let t = self.peers.get_mut(&id)?;
        if t.asked_at.is_none() || t.answers_due == 0 {
            return None;
        }
        t.answers_due -= 1;
        self.health = self.health.saturating_sub(1);
        if !matches!(t.state, PeerState::Alive | PeerState::Suspect)
            || their_silence.is_none_or(|s| s >= self.cfg.fresh)
        {
            return None;
        }
        let until = now + self.cfg.vouch_for;
        t.vouched_until = Some(t.vouched_until.map_or(until, |u| u.max(until)));
        (t.state == PeerState::Suspect).then(|| {
            t.state = PeerState::Alive;
            t.since = now;
            PeerState::Alive
        })
    }

    /// Whether `id` is alive only through friends' news (we do not hear it ourselves).
    pub fn indirect(&self, id: &PeerId, now: Instant) -> bool {
        self.peers.get(id).is_some_and(|t| {
            t.vouched(now) && now.saturating_duration_since(t.last_heard) >= self.cfg.suspect_after
        })
    }

    /// Advance time: returns every peer whose state changed.
    pub fn tick(&mut self, now: Instant) -> Vec<(PeerId, PeerState)> {
        self.tick_stretched(now, 1)
    }

    /// As [`tick`](Self::tick), with the silences that make a suspect and a dead peer
    /// `stretch` times longer: what an observer busy with many handshakes at once allows its
    /// peers, since their heartbeats are late for the same reason. Local health stretches
    /// them further.
    pub fn tick_stretched(&mut self, now: Instant, stretch: u32) -> Vec<(PeerId, PeerState)> {
        let stretch = stretch.max(1) * self.health_stretch();
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
            let grace = t.grace(&self.cfg);
            // Dead only after a round of asks as a suspect: when the stretch falls (the dials
            // in flight end), a silence allowed a moment ago can be past `dead_after` at once,
            // and its friends were never asked.
            let suspected_long_enough = t.state == PeerState::Suspect
                && now.saturating_duration_since(t.since) >= self.cfg.ask_every;
            let next = if t.vouched(now) {
                PeerState::Alive
            } else if silent >= dead_after * grace && suspected_long_enough {
                PeerState::Dead
            } else if silent >= suspect_after * grace {
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
#[path = "liveness_tests.rs"]
mod tests;
