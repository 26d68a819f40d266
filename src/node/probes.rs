//! Indirect probes, the shell around `Liveness`'s asks: a silent peer's friends are asked
//! whether they hear it, and their answers keep it alive or let it die.

use super::Node;
use crate::id::PeerId;
use crate::mesh::liveness::PeerState;
use crate::net::msg::Msg;
use rand::seq::IteratorRandom;
use std::time::{Duration, Instant};
use tracing::info;

/// Friends asked about each silent peer (SWIM's k).
const PROBE_HELPERS: usize = 3;

impl Node {
    /// Asks a few friends we hear well about each peer that has gone silent.
    pub(super) fn ask_about_silent_peers(&self, now: Instant, stretch: u32) {
        let mut st = self.state();
        let helpers: Vec<PeerId> = st
            .links
            .keys()
            .filter(|id| st.live.state(id) == Some(PeerState::Alive) && !st.live.indirect(id, now))
            .copied()
            .collect();
        let k = helpers.len().min(PROBE_HELPERS) as u32;
        for target in st.live.asks_due(now, stretch, k) {
            let chosen = helpers
                .iter()
                .filter(|h| **h != target)
                .choose_multiple(&mut rand::rng(), PROBE_HELPERS);
            for h in chosen {
                if let Some(link) = st.links.get(h) {
                    let _ = link.control.send(Msg::ProbeAsk { target });
                }
            }
        }
    }

    /// A friend asks whether we hear `target`: how long since we did, on our own link.
    pub(super) fn answer_probe(&self, from: PeerId, target: PeerId) {
        let st = self.state();
        let now = Instant::now();
        let silent_ms = if target == self.id() {
            Some(0)
        } else if st.links.contains_key(&target)
            && st.live.state(&target) == Some(PeerState::Alive)
            && !st.live.indirect(&target, now)
        {
            st.live
                .silent_for(&target, now)
                .map(|d| d.as_millis().min(u32::MAX as u128) as u32)
        } else {
            None
        };
        if let Some(link) = st.links.get(&from) {
            let _ = link.control.send(Msg::ProbeSeen { target, silent_ms });
        }
    }

    pub(super) fn on_probe_seen(&self, target: PeerId, silent_ms: Option<u32>) {
        let mut st = self.state();
        let silence = silent_ms.map(|ms| Duration::from_millis(ms.into()));
        if st.live.answer(target, silence, Instant::now()).is_some() {
            info!(
                "{} is alive (heard through others)",
                st.table.display_name(&target)
            );
        }
    }
}
