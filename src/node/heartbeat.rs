//! Heartbeats: the dialer of a link beats every second, every link of a process on one tick;
//! the acceptor hears it alive by those beats and answers to tell its load. The dialer hears
//! the acceptor by the QUIC ACKs of its beats, so an idle link costs two packets a second.

use super::Node;
use crate::id::PeerId;
use crate::net::frame::{self, FrameError};
use crate::net::msg::{Heartbeat, Msg};
use std::time::{Duration, Instant};
use tracing::info;

const HEARTBEAT_EVERY: Duration = Duration::from_secs(1);
/// An acceptor answers a beat at least this often, its load unchanged or not: a load told
/// in an answer the dialer read on a link since replaced does not stay wrong for long.
const ANSWER_AT_LEAST_EVERY: Duration = Duration::from_secs(5);

/// The next beat of this process's heartbeat clock (whole seconds since its first use).
fn next_beat(now: Instant) -> tokio::time::Instant {
    static EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    let epoch = *EPOCH.get_or_init(|| now);
    let since = now.saturating_duration_since(epoch).as_millis();
    let every = HEARTBEAT_EVERY.as_millis();
    let next = epoch + Duration::from_millis(((since / every + 1) * every) as u64);
    tokio::time::Instant::from_std(next)
}

impl Node {
    pub(super) async fn run_heartbeats(
        &self,
        peer: PeerId,
        conn: quinn::Connection,
        mut send: quinn::SendStream,
        mut recv: quinn::RecvStream,
        first: Option<Heartbeat>,
    ) {
        // The acceptor answers to tell a new load, which source choice reads, and every few
        // seconds in any case; its liveness reaches the dialer by `note_acks_heard`.
        let mut load_told = self.serving_now();
        let mut answered_at = Instant::now();
        let (mut answer_to, writer) = match first {
            Some(hb) => {
                self.heard_load(peer, hb.load, &conn);
                self.heard_from(peer, &conn);
                let answer = self.heartbeat(1, load_told, &conn);
                let answered = frame::write_frame(&mut send, &answer).await;
                (answered.is_ok().then_some(send), None)
            }
            None => {
                let node = self.clone();
                let c = conn.clone();
                let writer = self.inner.tasks.spawn(async move {
                    // The first beat opens the stream at once; after it, every link of this
                    // process beats on the same tick: one wake-up for all of them, not one each.
                    let mut tick =
                        tokio::time::interval_at(next_beat(Instant::now()), HEARTBEAT_EVERY);
                    // Skip, not Delay: a late tick keeps the shared phase.
                    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
                    for seq in 1.. {
                        let hb = node.heartbeat(seq, node.serving_now(), &c);
                        if frame::write_frame(&mut send, &hb).await.is_err() || node.is_stopped() {
                            break;
                        }
                        tick.tick().await;
                    }
                });
                (None, Some(writer))
            }
        };
        let mut seq = 1u64;
        loop {
            match frame::read_frame(&mut recv).await {
                Ok(Msg::Heartbeat(hb)) => {
                    self.heard_load(peer, hb.load, &conn);
                    self.heard_from(peer, &conn);
                    // A peer that stopped reading our answers still tells us it is alive.
                    let load = self.serving_now();
                    let due = load != load_told || answered_at.elapsed() >= ANSWER_AT_LEAST_EVERY;
                    if let Some(send) = answer_to.as_mut().filter(|_| due) {
                        load_told = load;
                        answered_at = Instant::now();
                        seq += 1;
                        if frame::write_frame(send, &self.heartbeat(seq, load, &conn))
                            .await
                            .is_err()
                        {
                            answer_to = None;
                        }
                    }
                }
                Ok(other) => {
                    self.protocol_violation(
                        peer,
                        &conn,
                        &format!("{} on the heartbeat stream", other.name()),
                    );
                    break;
                }
                Err(FrameError::Closed) => break,
                Err(e) => {
                    if conn.close_reason().is_none() {
                        self.protocol_violation(peer, &conn, &e.to_string());
                    }
                    break;
                }
            }
        }
        if let Some(w) = writer {
            w.abort();
        }
    }

    fn heartbeat(&self, seq: u64, load: u32, conn: &quinn::Connection) -> Msg {
        Msg::Heartbeat(Heartbeat {
            seq,
            rtt_us: conn.rtt().as_micros() as u64,
            load,
        })
    }

    /// Only from the live link: a late answer on a replaced one would overwrite a newer load.
    fn heard_load(&self, peer: PeerId, load: u32, conn: &quinn::Connection) {
        let mut st = self.state();
        if st
            .links
            .get(&peer)
            .is_some_and(|l| l.conn.stable_id() == conn.stable_id())
        {
            st.peer_load.insert(peer, load);
        }
    }

    fn heard_from(&self, peer: PeerId, conn: &quinn::Connection) {
        let mut st = self.state();
        // Only the live link counts: a stale duplicate must not keep a peer alive.
        if st
            .links
            .get(&peer)
            .is_none_or(|l| l.conn.stable_id() != conn.stable_id())
        {
            return;
        }
        if let Some(change) = st.live.heard(peer, Instant::now()) {
            info!("{} is {}", st.table.display_name(&peer), change.as_str());
        }
    }

    /// A peer that acknowledged anything since the last check (`since`) was alive then: how
    /// the dialer of a link hears its acceptor, which does not answer every heartbeat. Only
    /// on links we dialed: on the others our peer's QUIC stack acknowledges our keep-alives
    /// even when its beats, which are how we hear it, have stopped.
    pub(crate) fn note_acks_heard(st: &mut super::State, me: PeerId, since: Instant) {
        for (id, link) in st.links.iter_mut().filter(|(_, l)| l.dialer == me) {
            let acks = link.conn.stats().frame_rx.acks;
            if acks > link.acks_heard {
                link.acks_heard = acks;
                if let Some(change) = st.live.heard(*id, since) {
                    info!("{} is {}", st.table.display_name(id), change.as_str());
                }
            }
        }
    }
}
