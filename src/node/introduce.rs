//! Introductions for hole punching: a member linked directly to two peers that cannot reach
//! each other tells each where it sees the other, and both dial at once from their one
//! socket, so each NAT opens a mapping for the other's packets.

use super::Node;
use crate::id::PeerId;
use crate::net::msg::Msg;
use crate::net::relay_socket::is_relay_addr;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tracing::{debug, warn};

/// Dials after an introduction, spaced by the measured rtt: most succeed on the first.
const PUNCH_ATTEMPTS: u32 = 3;
/// At most one introduction acted on per peer in this interval.
const PUNCH_EVERY: Duration = Duration::from_secs(1);

impl Node {
    /// Ask the member we reach best to introduce us to `peer`.
    pub(crate) fn request_introduction(&self, peer: PeerId) {
        if let Some(via) = self.relay_candidates(peer).first().copied() {
            self.send_to(via, Msg::Introduce { peer });
        }
    }

    /// `from` asks to be introduced to `peer`: tell each where we see the other. Only
    /// addresses we observe ourselves on direct links are passed on.
    pub(crate) fn handle_introduce(&self, from: PeerId, peer: PeerId) {
        let (a, b) = {
            let st = self.state();
            let seen = |id: &PeerId| {
                st.links
                    .get(id)
                    .map(|l| l.conn.remote_address())
                    .filter(|a| !is_relay_addr(a))
            };
            (seen(&from), seen(&peer))
        };
        match (a, b) {
            (Some(a), Some(b)) if from != peer => {
                self.send_to(
                    peer,
                    Msg::PunchNow {
                        peer: from,
                        addr: a,
                    },
                );
                self.send_to(from, Msg::PunchNow { peer, addr: b });
            }
            _ => debug!(
                "cannot introduce {} to {}: not directly linked to both",
                from.short(),
                peer.short()
            ),
        }
    }

    /// `introducer` says `peer` is at `addr` and dialing us: dial back now.
    pub(crate) fn handle_punch(&self, introducer: PeerId, peer: PeerId, addr: SocketAddr) {
        let now = Instant::now();
        let rtt = {
            let mut st = self.state();
            let member = st.table.get(&peer).is_some_and(|r| !r.left);
            if !member || peer == self.id() || is_relay_addr(&addr) || addr.ip().is_unspecified() {
                warn!(
                    "refused an introduction from {} to {} at {addr}: not a member we know",
                    st.table.display_name(&introducer),
                    peer.short()
                );
                return;
            }
            let direct = st
                .links
                .get(&peer)
                .is_some_and(|l| !is_relay_addr(&l.conn.remote_address()));
            if direct
                || st
                    .punched
                    .get(&peer)
                    .is_some_and(|t| now.duration_since(*t) < PUNCH_EVERY)
            {
                return;
            }
            st.punched.insert(peer, now);
            st.links
                .get(&introducer)
                .map(|l| l.conn.rtt())
                .unwrap_or(Duration::from_millis(50))
        };
        let gap = (rtt * 2).max(Duration::from_millis(20));
        for attempt in 0..PUNCH_ATTEMPTS {
            let node = self.clone();
            self.spawn_task(async move {
                tokio::time::sleep(gap * attempt).await;
                if node.is_connected_directly(&peer) {
                    return;
                }
                if let Err(e) = node.dial(vec![addr], Some(peer)).await {
                    debug!(
                        "punch {attempt} to {} at {addr} failed: {e:#}",
                        peer.short()
                    );
                }
            });
        }
    }

    pub(crate) fn is_connected_directly(&self, peer: &PeerId) -> bool {
        self.state().links.get(peer).is_some_and(|l| {
            l.conn.close_reason().is_none() && !is_relay_addr(&l.conn.remote_address())
        })
    }
}
