//! Connections: dialing, accepting, the hello/proof handshake, keeping one connection per pair,
//! and the per-connection tasks (control reader and writer, stream dispatch; heartbeats are in
//! `heartbeat.rs`).

use super::{Node, PeerLink, close_code};
use crate::id::PeerId;
use crate::mesh::liveness::PeerState;
use crate::mesh::membership::MemberRecord;
use crate::net::auth::{self, Role};
use crate::net::frame::{self, FrameError};
use crate::net::msg::{Hello, HelloAck, Msg, PROTOCOL_VERSION, version_mismatch};
use crate::net::relay_socket::is_relay_addr;
use crate::net::tls;
use anyhow::{Result, anyhow, bail};
use futures_util::FutureExt;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tracing::{debug, info, warn};

const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// The other side's version, when the TLS handshake settled on an older protocol than ours.
fn older_protocol(conn: &quinn::Connection) -> Option<u16> {
    tls::negotiated_version(conn).filter(|v| *v < PROTOCOL_VERSION)
}

fn closed_reason(e: &quinn::ConnectionError) -> String {
    match e {
        quinn::ConnectionError::ApplicationClosed(c) => {
            String::from_utf8_lossy(&c.reason).into_owned()
        }
        other => other.to_string(),
    }
}

impl Node {
    /// Dial every address at once and keep the first that completes the handshake.
    pub(crate) async fn dial(
        &self,
        addrs: Vec<SocketAddr>,
        expected: Option<PeerId>,
    ) -> Result<PeerId> {
        if addrs.is_empty() {
            bail!("no address to dial");
        }
        let attempts = addrs
            .into_iter()
            .map(|a| self.dial_one(a, expected).boxed());
        match futures_util::future::select_ok(attempts).await {
            Ok((id, _)) => Ok(id),
            Err(e) => Err(e),
        }
    }

    async fn dial_one(&self, addr: SocketAddr, expected: Option<PeerId>) -> Result<PeerId> {
        let inner = &self.inner;
        let cfg = tls::client_config(&inner.identity, expected)?;
        let connecting = inner
            .endpoint
            .connect_with(cfg, addr, tls::SERVER_NAME)
            .map_err(|e| anyhow!("cannot dial {addr}: {e}"))?;
        let conn = tokio::time::timeout(HANDSHAKE_TIMEOUT, connecting)
            .await
            .map_err(|_| anyhow!("no answer from {addr} within {HANDSHAKE_TIMEOUT:?}"))?
            .map_err(|e| anyhow!("cannot connect to {addr}: {e}"))?;
        let peer =
            tls::remote_peer_id(&conn).ok_or_else(|| anyhow!("peer at {addr} has no identity"))?;
        if peer == self.id() {
            conn.close(0u32.into(), b"self");
            bail!("{addr} is this peer itself");
        }
        if let Some(theirs) = older_protocol(&conn) {
            conn.close(close_code::VERSION.into(), b"protocol version");
            bail!("{}", version_mismatch(&format!("peer at {addr}"), theirs));
        }
        let result =
            tokio::time::timeout(HANDSHAKE_TIMEOUT, self.dialer_handshake(&conn, addr)).await;
        let (ack, send, recv) = match result {
            Ok(Ok(x)) => x,
            Ok(Err(e)) => {
                if let Some(reason) = conn.close_reason() {
                    bail!("{addr} refused us: {}", closed_reason(&reason));
                }
                conn.close(close_code::PROTOCOL.into(), b"handshake failed");
                return Err(e);
            }
            Err(_) => {
                conn.close(close_code::PROTOCOL.into(), b"handshake timeout");
                bail!("handshake with {addr} timed out");
            }
        };
        let incarnation = ack.boot;
        self.merge_members(ack.table, Some(peer));
        let Some(rx) = self.register(peer, conn.clone(), self.id(), incarnation) else {
            conn.close(close_code::DUPLICATE.into(), b"duplicate connection");
            return Ok(peer);
        };
        // The dialer opens the heartbeat stream; both sides beat on it.
        match conn.open_bi().await {
            Ok((s, r)) => {
                let node = self.clone();
                let c = conn.clone();
                self.spawn_task(async move { node.run_heartbeats(peer, c, s, r, None).await });
            }
            Err(e) => {
                conn.close(close_code::PROTOCOL.into(), b"no heartbeat stream");
                bail!("cannot open heartbeat stream to {addr}: {e}");
            }
        }
        self.spawn_link_tasks(peer, conn, send, recv, rx);
        info!("connected to {} at {addr}", self.peer_name(&peer));
        // After registering, so the news of our public address reaches this peer too.
        self.note_observed(ack.observed);
        Ok(peer)
    }

    async fn dialer_handshake(
        &self,
        conn: &quinn::Connection,
        addr: SocketAddr,
    ) -> Result<(HelloAck, quinn::SendStream, quinn::RecvStream)> {
        let proof = auth::proof(conn, &self.inner.key, Role::Dialer)
            .ok_or_else(|| anyhow!("no keying material"))?;
        let record = self.own_record();
        let (mut send, mut recv) = conn.open_bi().await?;
        let hello = Msg::Hello(Hello {
            version: PROTOCOL_VERSION,
            record,
            proof,
            observed: addr,
            boot: self.inner.boot,
        });
        frame::write_frame(&mut send, &hello).await?;
        match frame::read_frame_of(&mut recv, Some(&[1, 2])).await {
            Ok(Msg::HelloAck(ack)) => {
                let want = auth::proof(conn, &self.inner.key, Role::Acceptor)
                    .ok_or_else(|| anyhow!("no keying material"))?;
                if !auth::proofs_equal(&want, &ack.proof) {
                    conn.close(close_code::AUTH.into(), b"wrong network key");
                    bail!("peer at {addr} does not hold this network's key");
                }
                if ack.version != PROTOCOL_VERSION {
                    bail!(
                        "{}",
                        version_mismatch(&format!("peer at {addr}"), ack.version)
                    );
                }
                Ok((ack, send, recv))
            }
            Ok(Msg::Reject { reason }) => bail!("{addr} refused us: {reason}"),
            Ok(other) => bail!("unexpected {} from {addr}", other.name()),
            Err(e) => {
                // The acceptor closes the connection with a reason when it refuses us.
                let _ = tokio::time::timeout(Duration::from_millis(500), conn.closed()).await;
                match conn.close_reason() {
                    Some(r) => bail!("{addr} refused us: {}", closed_reason(&r)),
                    None => bail!("handshake with {addr} failed: {e}"),
                }
            }
        }
    }

    pub(crate) fn spawn_accept_loop(&self) {
        let node = self.clone();
        self.spawn_task(async move {
            loop {
                let incoming = tokio::select! {
                    _ = node.inner.shutdown.cancelled() => break,
                    i = node.inner.endpoint.accept() => i,
                };
                let Some(incoming) = incoming else { break };
                let n = node.clone();
                node.spawn_task(async move {
                    if let Err(e) = n.accept_one(incoming).await {
                        debug!("incoming connection failed: {e:#}");
                    }
                });
            }
        });
    }

    async fn accept_one(&self, incoming: quinn::Incoming) -> Result<()> {
        if self.state().leaving {
            incoming.refuse();
            return Ok(());
        }
        let conn = tokio::time::timeout(HANDSHAKE_TIMEOUT, incoming)
            .await
            .map_err(|_| anyhow!("TLS handshake timed out"))??;
        let remote = conn.remote_address();
        let peer = tls::remote_peer_id(&conn).ok_or_else(|| anyhow!("no identity"))?;
        if let Some(theirs) = older_protocol(&conn) {
            warn!("{}; refused", version_mismatch(&remote.to_string(), theirs));
            // What an older dialer prints after "refused us:".
            let reason = format!(
                "this peer speaks protocol {PROTOCOL_VERSION}, you speak {theirs}: you must upgrade MEFF"
            );
            conn.close(close_code::VERSION.into(), reason.as_bytes());
            return Ok(());
        }
        let first = tokio::time::timeout(HANDSHAKE_TIMEOUT, async {
            let (send, mut recv) = conn.accept_bi().await?;
            let msg = frame::read_frame_of(&mut recv, Some(crate::net::msg::HELLO)).await?;
            Ok::<_, anyhow::Error>((send, recv, msg))
        })
        .await;
        let (mut send, recv, hello) = match first {
            Ok(Ok((s, r, Msg::Hello(h)))) => (s, r, h),
            Ok(Ok((_, _, other))) => {
                warn!("{remote} sent {} before hello; closing", other.name());
                conn.close(close_code::PROTOCOL.into(), b"expected hello");
                return Ok(());
            }
            Ok(Err(e)) => {
                if conn.close_reason().is_some() {
                    debug!("{remote} went away during the handshake: {e:#}");
                    return Ok(());
                }
                if let Some(frame::FrameError::Version(theirs)) = e.downcast_ref() {
                    warn!(
                        "{}; refused",
                        version_mismatch(&remote.to_string(), *theirs)
                    );
                    conn.close(close_code::VERSION.into(), b"protocol version");
                    return Ok(());
                }
                warn!("{remote}: bad handshake ({e:#}); closing");
                conn.close(close_code::PROTOCOL.into(), b"bad handshake");
                return Ok(());
            }
            Err(_) => {
                warn!("{remote}: no hello within {HANDSHAKE_TIMEOUT:?}; closing");
                conn.close(close_code::PROTOCOL.into(), b"no hello");
                return Ok(());
            }
        };
        let want = auth::proof(&conn, &self.inner.key, Role::Dialer)
            .ok_or_else(|| anyhow!("no keying material"))?;
        if !auth::proofs_equal(&want, &hello.proof) {
            warn!(
                "{remote} ({}) does not hold the network key; refused",
                peer.short()
            );
            conn.close(close_code::AUTH.into(), b"wrong network key");
            return Ok(());
        }
        if hello.version != PROTOCOL_VERSION {
            warn!(
                "{}; refused",
                version_mismatch(&remote.to_string(), hello.version)
            );
            conn.close(close_code::VERSION.into(), b"protocol version");
            return Ok(());
        }
        if hello.record.id != peer {
            warn!(
                "{remote} claims to be {} but its certificate says {}",
                hello.record.id.short(),
                peer.short()
            );
            conn.close(
                close_code::PROTOCOL.into(),
                b"record id does not match certificate",
            );
            return Ok(());
        }
        let clash = self
            .state()
            .table
            .name_holder(&hello.record.name, &peer)
            .map(|r| r.id);
        if let Some(holder) = clash {
            let holder_alive = holder == self.id() || self.is_connected(&holder);
            if holder_alive {
                let reason = format!(
                    "name '{}' is already taken in this network; pick another",
                    hello.record.name
                );
                warn!("{remote}: {reason}");
                conn.close(close_code::NAME_TAKEN.into(), reason.as_bytes());
                return Ok(());
            }
        }
        let proof = auth::proof(&conn, &self.inner.key, Role::Acceptor)
            .ok_or_else(|| anyhow!("no keying material"))?;
        let incarnation = hello.boot;
        self.merge_members(vec![hello.record], Some(peer));
        self.note_observed(hello.observed);
        let ack = Msg::HelloAck(HelloAck {
            version: PROTOCOL_VERSION,
            proof,
            table: self.state().table.to_vec(),
            observed: remote,
            boot: self.inner.boot,
        });
        frame::write_frame(&mut send, &ack).await?;
        let Some(rx) = self.register(peer, conn.clone(), peer, incarnation) else {
            conn.close(close_code::DUPLICATE.into(), b"duplicate connection");
            return Ok(());
        };
        info!("{} connected from {remote}", self.peer_name(&peer));
        self.spawn_link_tasks(peer, conn, send, recv, rx);
        Ok(())
    }

    /// Keep one connection per pair. When both sides dialed at once, both keep the one dialed
    /// by the lower id; a newer incarnation (a restarted peer) always replaces an old link.
    fn register(
        &self,
        peer: PeerId,
        conn: quinn::Connection,
        dialer: PeerId,
        incarnation: u64,
    ) -> Option<super::control_queue::ControlRx> {
        let closer = conn.clone();
        let (tx, rx) = super::control_queue::control_queue(move || {
            warn!("a peer does not read its control stream; closing the link");
            closer.close(close_code::PROTOCOL.into(), b"control stream not read");
        });
        let mut st = self.state();
        if let Some(cur) = st.links.get(&peer) {
            let cur_open = cur.conn.close_reason().is_none();
            let cur_relayed = is_relay_addr(&cur.conn.remote_address());
            let new_relayed = is_relay_addr(&conn.remote_address());
            // A direct path beats a relayed one; between equals, the lower id's dial wins.
            let replace = !cur_open
                || incarnation > cur.incarnation
                || (cur_relayed && !new_relayed)
                || (cur_relayed == new_relayed
                    && incarnation == cur.incarnation
                    && cur.dialer != dialer
                    && dialer == self.id().min(peer));
            if !replace {
                return None;
            }
            cur.conn
                .close(close_code::DUPLICATE.into(), b"duplicate connection");
        }
        st.links.insert(
            peer,
            PeerLink {
                conn: conn.clone(),
                dialer,
                incarnation,
                control: tx,
                // The handshake's ACKs are not news of a first beat.
                acks_heard: conn.stats().frame_rx.acks,
                playlists_answered: None,
            },
        );
        let was_dead = st.live.state(&peer) == Some(PeerState::Dead);
        st.live.linked(peer, Instant::now());
        st.dialing.remove(&peer);
        if was_dead {
            // A dead member is back: a network that healed may have brought back others too,
            // so try every other dead member now rather than at its next slow redial.
            let dead: Vec<PeerId> = st
                .last_dial
                .keys()
                .filter(|id| st.live.state(id) == Some(PeerState::Dead))
                .copied()
                .collect();
            for id in dead {
                st.last_dial.remove(&id);
            }
        }
        Some(rx)
    }

    pub(crate) fn is_connected(&self, peer: &PeerId) -> bool {
        self.state()
            .links
            .get(peer)
            .is_some_and(|l| l.conn.close_reason().is_none())
    }

    fn spawn_link_tasks(
        &self,
        peer: PeerId,
        conn: quinn::Connection,
        send: quinn::SendStream,
        recv: quinn::RecvStream,
        rx: super::control_queue::ControlRx,
    ) {
        // Queued before the reader starts, so our digest precedes any reply to theirs.
        self.open_sync(peer);
        self.spawn_task(Self::run_control_writer(send, rx));
        let node = self.clone();
        let c = conn.clone();
        self.spawn_task(async move { node.run_control_reader(peer, c, recv).await });
        let node = self.clone();
        let c = conn.clone();
        self.spawn_task(async move { node.run_stream_dispatch(peer, c).await });
        let node = self.clone();
        self.spawn_task(async move {
            let err = conn.closed().await;
            // A tunnel outliving its connection would keep a relay slot taken for nothing.
            if is_relay_addr(&conn.remote_address()) {
                node.inner.relay_hub.close_tunnel(&conn.remote_address());
            }
            node.on_link_closed(peer, &conn, &err);
        });
    }

    /// The only writer of the control stream after the handshake: frames never interleave.
    async fn run_control_writer(
        mut send: quinn::SendStream,
        mut rx: super::control_queue::ControlRx,
    ) {
        while let Some(msg) = rx.recv().await {
            if frame::write_frame(&mut send, &msg).await.is_err() {
                break;
            }
        }
    }

    async fn run_control_reader(
        &self,
        peer: PeerId,
        conn: quinn::Connection,
        mut recv: quinn::RecvStream,
    ) {
        loop {
            match frame::read_frame(&mut recv).await {
                Ok(msg) => {
                    if let Err(e) = self.handle_control(peer, msg) {
                        self.protocol_violation(peer, &conn, &e.to_string());
                        return;
                    }
                }
                Err(FrameError::Closed) => return,
                Err(e) => {
                    if conn.close_reason().is_none() {
                        self.protocol_violation(peer, &conn, &e.to_string());
                    }
                    return;
                }
            }
        }
    }

    pub(crate) fn protocol_violation(&self, peer: PeerId, conn: &quinn::Connection, why: &str) {
        warn!("closing connection to {}: {why}", self.peer_name(&peer));
        conn.close(
            close_code::PROTOCOL.into(),
            format!("protocol error: {why}").as_bytes(),
        );
    }

    async fn run_stream_dispatch(&self, peer: PeerId, conn: quinn::Connection) {
        loop {
            let (send, mut recv) = match conn.accept_bi().await {
                Ok(s) => s,
                Err(_) => return,
            };
            let node = self.clone();
            let c = conn.clone();
            self.spawn_task(async move {
                let first = tokio::time::timeout(
                    HANDSHAKE_TIMEOUT,
                    frame::read_frame_of(&mut recv, Some(crate::net::msg::STREAM_OPENERS)),
                )
                .await;
                match first {
                    Ok(Ok(Msg::Heartbeat(hb))) => {
                        node.run_heartbeats(peer, c, send, recv, Some(hb)).await
                    }
                    Ok(Ok(msg)) => node.handle_stream(peer, c, msg, send, recv).await,
                    Ok(Err(e)) => node.protocol_violation(peer, &c, &e.to_string()),
                    Err(_) => {
                        debug!("stream from {} sent nothing", peer.short());
                    }
                }
            });
        }
    }

    fn on_link_closed(&self, peer: PeerId, conn: &quinn::Connection, err: &quinn::ConnectionError) {
        let mut st = self.state();
        let ours = st
            .links
            .get(&peer)
            .is_some_and(|l| l.conn.stable_id() == conn.stable_id());
        if !ours {
            return;
        }
        st.links.remove(&peer);
        if let quinn::ConnectionError::ApplicationClosed(c) = err
            && c.error_code == close_code::LEAVE.into()
        {
            if let Some(rec) = st.table.get(&peer).cloned() {
                let left = MemberRecord { left: true, ..rec };
                st.table.merge(left);
                st.members_dirty = true;
            }
            if st.live.left(peer, Instant::now()).is_some() {
                info!("{} left", st.table.display_name(&peer));
            }
            return;
        }
        debug!("link to {} closed: {}", peer.short(), closed_reason(err));
    }
}
