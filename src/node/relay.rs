//! Relaying through a friend when two peers cannot reach each other directly (a symmetric
//! NAT): the relay pipes an opaque tunnel between two authenticated members; the pair runs
//! its own QUIC connection inside it. A relay never carries traffic for non-members (only
//! authenticated links can ask) and caps tunnels per peer.

use super::Node;
use crate::id::PeerId;
use crate::net::frame;
use crate::net::msg::Msg;
use crate::net::relay_socket::is_relay_addr;
use anyhow::{Result, anyhow, bail};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

const MAX_TUNNELS_PER_PEER: usize = 8;
const MAX_PACKET: usize = 64 * 1024;
const OPEN_TIMEOUT: Duration = Duration::from_secs(3);

impl Node {
    /// Members we reach directly that could relay to `target`, best (lowest rtt) first.
    pub(crate) fn relay_candidates(&self, target: PeerId) -> Vec<PeerId> {
        let st = self.state();
        let mut v: Vec<(Duration, PeerId)> = st
            .links
            .iter()
            .filter(|(id, l)| {
                **id != target
                    && l.conn.close_reason().is_none()
                    && !is_relay_addr(&l.conn.remote_address())
            })
            .map(|(id, l)| (l.conn.rtt(), *id))
            .collect();
        v.sort();
        v.into_iter().map(|(_, id)| id).collect()
    }

    /// Reach `target` through some member: open a tunnel, then dial through it.
    pub(crate) async fn dial_via_relay(&self, target: PeerId) -> Result<PeerId> {
        let mut last = anyhow!("no member to relay through");
        for via in self.relay_candidates(target) {
            match self.open_tunnel(via, target).await {
                Ok(addr) => match self.dial(vec![addr], Some(target)).await {
                    Ok(id) => {
                        info!(
                            "reached {} through {}",
                            self.peer_name(&target),
                            self.peer_name(&via)
                        );
                        return Ok(id);
                    }
                    Err(e) => {
                        self.inner.relay_hub.close_tunnel(&addr);
                        last = e;
                    }
                },
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    async fn open_tunnel(&self, via: PeerId, target: PeerId) -> Result<SocketAddr> {
        let conn = self.link_conn(&via)?;
        let (mut send, mut recv) = conn.open_bi().await?;
        frame::write_frame(&mut send, &Msg::RelayOpen { target }).await?;
        match tokio::time::timeout(OPEN_TIMEOUT, frame::read_frame(&mut recv)).await {
            Ok(Ok(Msg::RelayReady)) => {}
            Ok(Ok(Msg::Failed { reason })) => bail!("{} will not relay: {reason}", via.short()),
            Ok(Ok(other)) => bail!("unexpected {}", other.name()),
            Ok(Err(e)) => bail!("{e}"),
            Err(_) => bail!("relay {} did not answer", via.short()),
        }
        let (addr, rx) = self.inner.relay_hub.open_tunnel();
        self.spawn_tunnel_pump(addr, send, recv, rx);
        Ok(addr)
    }

    /// Move packets between a tunnel stream and the socket: `[u16 len][packet]` each way.
    fn spawn_tunnel_pump(
        &self,
        addr: SocketAddr,
        mut send: quinn::SendStream,
        mut recv: quinn::RecvStream,
        mut rx: mpsc::Receiver<Vec<u8>>,
    ) {
        let hub = self.inner.relay_hub.clone();
        let writer = self.inner.tasks.spawn(async move {
            while let Some(p) = rx.recv().await {
                let mut framed = Vec::with_capacity(p.len() + 2);
                framed.extend_from_slice(&(p.len() as u16).to_be_bytes());
                framed.extend_from_slice(&p);
                if send.write_all(&framed).await.is_err() {
                    break;
                }
            }
        });
        let hub2 = Arc::clone(&hub);
        self.spawn_task(async move {
            let mut len = [0u8; 2];
            loop {
                if recv.read_exact(&mut len).await.is_err() {
                    break;
                }
                let n = u16::from_be_bytes(len) as usize;
                let mut p = vec![0u8; n];
                if recv.read_exact(&mut p).await.is_err() {
                    break;
                }
                hub2.deliver(addr, p);
            }
            hub.close_tunnel(&addr);
            writer.abort();
        });
    }

    /// We are asked to relay between `from` and `target`.
    pub(crate) async fn serve_relay_open(
        &self,
        from: PeerId,
        target: PeerId,
        mut send: quinn::SendStream,
        recv: quinn::RecvStream,
    ) -> Result<()> {
        if let Err(why) = self.admit_relay(from, target) {
            // Said in so many words: the asker tells a refusal from a broken stream.
            let _ = frame::write_frame(
                &mut send,
                &Msg::Failed {
                    reason: why.to_string(),
                },
            )
            .await;
            let _ = send.finish();
            bail!("{why}");
        }
        let result = self.relay_between(from, target, &mut send, recv).await;
        if let Some(n) = self.state().relayed_for.get_mut(&from) {
            *n = n.saturating_sub(1);
        }
        result
    }

    /// Takes a tunnel slot for `from`, or says why not.
    fn admit_relay(&self, from: PeerId, target: PeerId) -> Result<(), &'static str> {
        if target == from || target == self.id() {
            return Err("nonsense relay target");
        }
        let mut st = self.state();
        if st.table.get(&target).is_none_or(|r| r.left) {
            warn!(
                "{} asked to relay to a non-member; refused",
                st.table.display_name(&from)
            );
            return Err("not a member");
        }
        let n = st.relayed_for.entry(from).or_default();
        if *n >= MAX_TUNNELS_PER_PEER {
            let name = st.table.display_name(&from);
            warn!("{name} asked for more than {MAX_TUNNELS_PER_PEER} tunnels; refused");
            return Err("relay limit reached");
        }
        *n += 1;
        Ok(())
    }

    async fn relay_between(
        &self,
        from: PeerId,
        target: PeerId,
        send_a: &mut quinn::SendStream,
        mut recv_a: quinn::RecvStream,
    ) -> Result<()> {
        let conn_b = self.link_conn(&target)?;
        if is_relay_addr(&conn_b.remote_address()) {
            bail!("no direct path to the target either");
        }
        let (mut send_b, mut recv_b) = conn_b.open_bi().await?;
        frame::write_frame(&mut send_b, &Msg::RelayIncoming { from }).await?;
        match tokio::time::timeout(OPEN_TIMEOUT, frame::read_frame(&mut recv_b)).await {
            Ok(Ok(Msg::RelayReady)) => {}
            _ => bail!("target refused the tunnel"),
        }
        frame::write_frame(send_a, &Msg::RelayReady).await?;
        debug!("relaying between {} and {}", from.short(), target.short());
        // Both directions carry the same `[u16 len][packet]` framing; the relay passes bytes
        // through without needing to understand them.
        let a_to_b = async {
            let _ = copy_framed(&mut recv_a, &mut send_b).await;
            let _ = send_b.finish();
        };
        let b_to_a = async {
            let _ = copy_framed(&mut recv_b, send_a).await;
            let _ = send_a.finish();
        };
        tokio::join!(a_to_b, b_to_a);
        debug!(
            "relay between {} and {} ended",
            from.short(),
            target.short()
        );
        Ok(())
    }

    /// A relay brings us a tunnel from `from`.
    pub(crate) async fn serve_relay_incoming(
        &self,
        via: PeerId,
        from: PeerId,
        mut send: quinn::SendStream,
        recv: quinn::RecvStream,
    ) -> Result<()> {
        let known = self.state().table.get(&from).is_some_and(|r| !r.left);
        if !known {
            warn!(
                "{} offered a tunnel from a non-member; refused",
                via.short()
            );
            bail!("not a member");
        }
        frame::write_frame(&mut send, &Msg::RelayReady).await?;
        let (addr, rx) = self.inner.relay_hub.open_tunnel();
        self.spawn_tunnel_pump(addr, send, recv, rx);
        Ok(())
    }
}

/// Copy `[u16 len][packet]` frames, refusing oversized ones.
async fn copy_framed(from: &mut quinn::RecvStream, to: &mut quinn::SendStream) -> Result<()> {
    let mut len = [0u8; 2];
    loop {
        from.read_exact(&mut len).await?;
        let n = u16::from_be_bytes(len) as usize;
        if n > MAX_PACKET {
            bail!("oversized packet");
        }
        let mut p = vec![0u8; n + 2];
        p[..2].copy_from_slice(&len);
        from.read_exact(&mut p[2..]).await?;
        to.write_all(&p).await?;
    }
}
