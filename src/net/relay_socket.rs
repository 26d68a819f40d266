//! The peer's one UDP socket, plus tunnels through a friend. Packets to a "relay address"
//! (240.0.0.0/4, reserved and never routed) go into a tunnel through a member that reaches
//! both ends, instead of onto the wire; packets arriving through a tunnel come out of
//! `poll_recv` as if sent from that relay address. QUIC and TLS run end to end over the
//! tunnel, so a relayed pair is authenticated by its own identities and the relay sees only
//! ciphertext.

use quinn::udp::{RecvMeta, Transmit};
use quinn::{AsyncUdpSocket, UdpPoller};
use std::collections::HashMap;
use std::fmt;
use std::io::{self, IoSliceMut};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use tokio::sync::mpsc;

/// Packets queued per tunnel before new ones are dropped, as a full UDP buffer would.
const TUNNEL_QUEUE: usize = 1024;
const INBOUND_QUEUE: usize = 4096;

pub fn is_relay_addr(addr: &SocketAddr) -> bool {
    match addr.ip() {
        IpAddr::V4(v4) => v4.octets()[0] >= 240 && !v4.is_broadcast(),
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .is_some_and(|v4| v4.octets()[0] >= 240 && !v4.is_broadcast()),
    }
}

fn canonical(addr: SocketAddr) -> SocketAddr {
    SocketAddr::new(addr.ip().to_canonical(), addr.port())
}

/// Tunnel endpoints known to the socket: relay address → packets to send into that tunnel.
pub struct RelayHub {
    tunnels: Mutex<HashMap<SocketAddr, mpsc::Sender<Vec<u8>>>>,
    inbound_tx: mpsc::Sender<(SocketAddr, Vec<u8>)>,
    inbound_rx: Mutex<mpsc::Receiver<(SocketAddr, Vec<u8>)>>,
    next: AtomicU32,
}

impl RelayHub {
    fn new() -> Self {
        let (inbound_tx, inbound_rx) = mpsc::channel(INBOUND_QUEUE);
        RelayHub {
            tunnels: Mutex::new(HashMap::new()),
            inbound_tx,
            inbound_rx: Mutex::new(inbound_rx),
            next: AtomicU32::new(1),
        }
    }

    /// A fresh relay address for a new tunnel, with the queue its packets go to.
    pub fn open_tunnel(&self) -> (SocketAddr, mpsc::Receiver<Vec<u8>>) {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let ip = Ipv4Addr::new(240, (n >> 16) as u8, (n >> 8) as u8, n as u8);
        let addr = SocketAddr::new(IpAddr::V4(ip), 1 + (n % 60000) as u16);
        let (tx, rx) = mpsc::channel(TUNNEL_QUEUE);
        if let Ok(mut t) = self.tunnels.lock() {
            t.insert(addr, tx);
        }
        (addr, rx)
    }

    pub fn close_tunnel(&self, addr: &SocketAddr) {
        if let Ok(mut t) = self.tunnels.lock() {
            t.remove(addr);
        }
    }

    /// A packet that came out of the tunnel of `addr`: hand it to QUIC.
    pub fn deliver(&self, addr: SocketAddr, packet: Vec<u8>) {
        let _ = self.inbound_tx.try_send((addr, packet));
    }

    fn send(&self, dest: SocketAddr, packet: &[u8]) {
        let tx = self.tunnels.lock().ok().and_then(|t| t.get(&dest).cloned());
        if let Some(tx) = tx {
            let _ = tx.try_send(packet.to_vec());
        }
    }
}

pub struct RelaySocket {
    udp: Arc<dyn AsyncUdpSocket>,
    pub hub: Arc<RelayHub>,
}

impl fmt::Debug for RelaySocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RelaySocket")
            .field("udp", &self.udp)
            .finish()
    }
}

impl RelaySocket {
    pub fn new(udp: Arc<dyn AsyncUdpSocket>) -> Self {
        RelaySocket {
            udp,
            hub: Arc::new(RelayHub::new()),
        }
    }
}

impl AsyncUdpSocket for RelaySocket {
    fn create_io_poller(self: Arc<Self>) -> Pin<Box<dyn UdpPoller>> {
        self.udp.clone().create_io_poller()
    }

    fn try_send(&self, transmit: &Transmit) -> io::Result<()> {
        let dest = canonical(transmit.destination);
        if !is_relay_addr(&dest) {
            return self.udp.try_send(transmit);
        }
        // GSO batches several datagrams into one transmit; the tunnel carries them one by one.
        let seg = transmit
            .segment_size
            .unwrap_or(transmit.contents.len())
            .max(1);
        for packet in transmit.contents.chunks(seg) {
            self.hub.send(dest, packet);
        }
        Ok(())
    }

    fn poll_recv(
        &self,
        cx: &mut Context,
        bufs: &mut [IoSliceMut<'_>],
        meta: &mut [RecvMeta],
    ) -> Poll<io::Result<usize>> {
        if let Poll::Ready(r) = self.udp.poll_recv(cx, bufs, meta) {
            return Poll::Ready(r);
        }
        let Ok(mut rx) = self.hub.inbound_rx.lock() else {
            return Poll::Pending;
        };
        match rx.poll_recv(cx) {
            Poll::Ready(Some((addr, packet))) => {
                let (Some(buf), Some(m)) = (bufs.first_mut(), meta.first_mut()) else {
                    return Poll::Ready(Ok(0));
                };
                let n = packet.len().min(buf.len());
                buf[..n].copy_from_slice(&packet[..n]);
                m.addr = addr;
                m.len = n;
                m.stride = n;
                m.ecn = None;
                m.dst_ip = None;
                Poll::Ready(Ok(1))
            }
            _ => Poll::Pending,
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.udp.local_addr()
    }

    fn max_transmit_segments(&self) -> usize {
        self.udp.max_transmit_segments()
    }

    fn max_receive_segments(&self) -> usize {
        self.udp.max_receive_segments()
    }

    fn may_fragment(&self) -> bool {
        self.udp.may_fragment()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relay_addresses_are_the_reserved_range_only() {
        assert!(is_relay_addr(&"240.0.0.1:5".parse().unwrap()));
        assert!(is_relay_addr(&"[::ffff:240.0.0.1]:5".parse().unwrap()));
        assert!(!is_relay_addr(&"203.0.113.1:5".parse().unwrap()));
        assert!(!is_relay_addr(&"255.255.255.255:5".parse().unwrap()));
        let hub = RelayHub::new();
        let (a, _rx) = hub.open_tunnel();
        let (b, _rx2) = hub.open_tunnel();
        assert!(is_relay_addr(&a) && is_relay_addr(&b) && a != b);
    }
}
