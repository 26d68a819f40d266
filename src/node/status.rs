//! What `status` and `peers` report.

use super::Node;
use crate::mesh::liveness::PeerState;
use crate::net::relay_socket::is_relay_addr;
use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct PeerStatus {
    pub id: String,
    pub name: String,
    pub state: &'static str,
    pub rtt_ms: Option<f64>,
    pub path: &'static str,
    pub addr: Option<String>,
    /// Its disk is full: it takes no new copies.
    pub disk_full: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Status {
    pub id: String,
    pub name: String,
    pub addrs: Vec<String>,
    pub stored_bytes: u64,
    pub disk_full: bool,
    /// What this peer plays now, if anything.
    pub playing: Option<Playing>,
    pub peers: Vec<PeerStatus>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Playing {
    pub name: String,
    pub title: Option<String>,
    pub artist: Option<String>,
    pub position_s: f64,
    pub duration_s: f64,
    pub paused: bool,
    pub volume: u8,
    /// The name of the peer the bytes come from.
    pub source: Option<String>,
}

impl Node {
    /// What plays now: the track, its tags, where playback is, and its source.
    pub fn playing(&self) -> Option<Playing> {
        let np = self.now_playing()?;
        let st = np.control.status();
        let source = np.source;
        let (tags, duration) = self
            .track_tags(&np.name)
            .unwrap_or((Default::default(), st.duration_s));
        Some(Playing {
            name: np.name.clone(),
            title: tags.title,
            artist: tags.artist,
            position_s: st.elapsed_s,
            duration_s: duration,
            paused: np.control.is_paused(),
            volume: np.control.volume(),
            source: source.map(|p| self.peer_name(&p)),
        })
    }

    pub fn status(&self) -> Status {
        let stored_bytes = self.stored_bytes();
        let playing = self.playing();
        let st = self.state();
        let me = self.id();
        let now = std::time::Instant::now();
        let peers = st
            .table
            .records()
            .filter(|r| r.id != me)
            .map(|r| {
                let link = st
                    .links
                    .get(&r.id)
                    .filter(|l| l.conn.close_reason().is_none());
                let state = if r.left {
                    PeerState::Left
                } else {
                    st.live.state(&r.id).unwrap_or(PeerState::Suspect)
                };
                PeerStatus {
                    id: r.id.to_string(),
                    name: st.table.display_name(&r.id),
                    state: state.as_str(),
                    rtt_ms: link.map(|l| l.conn.rtt().as_secs_f64() * 1000.0),
                    path: if st.live.indirect(&r.id, now) {
                        "indirect"
                    } else if link.is_some_and(|l| is_relay_addr(&l.conn.remote_address())) {
                        "relayed"
                    } else {
                        "direct"
                    },
                    // A relayed link's address is a local tunnel handle; show where the peer
                    // says it is instead.
                    addr: link
                        .map(|l| l.conn.remote_address())
                        .filter(|a| !is_relay_addr(a))
                        .or_else(|| r.addrs.first().copied())
                        .map(|a| a.to_string()),
                    disk_full: r.disk_full && !r.left,
                }
            })
            .collect();
        let addrs = st
            .table
            .get(&me)
            .map(|r| r.addrs.iter().map(|a| a.to_string()).collect())
            .unwrap_or_default();
        Status {
            id: me.to_string(),
            name: self.name().to_string(),
            addrs,
            stored_bytes,
            disk_full: st.disk_full,
            playing,
            peers,
        }
    }

    /// The addresses this peer advertises (local ones, and the public one once a peer saw it).
    pub fn addrs(&self) -> Vec<String> {
        self.state()
            .table
            .get(&self.id())
            .map(|r| r.addrs.iter().map(|a| a.to_string()).collect())
            .unwrap_or_default()
    }

    /// QUIC connections open on this peer's endpoint (one per linked peer once duplicates
    /// from simultaneous dials are closed).
    pub fn open_connections(&self) -> usize {
        self.inner.endpoint.open_connections()
    }

    /// The storage this peer offers (its placement weight).
    pub fn capacity(&self) -> u64 {
        self.own_record().capacity
    }

    pub fn replicas(&self) -> usize {
        self.inner.cfg.replicas.max(1)
    }

    /// Peers alive right now, this one included.
    pub fn alive_count(&self) -> usize {
        self.alive_peers().len()
    }

    pub fn peer_name(&self, id: &crate::id::PeerId) -> String {
        if *id == self.id() {
            return self.name().to_string();
        }
        self.state().table.display_name(id)
    }

    pub fn stored_bytes(&self) -> u64 {
        self.inner.blobs.total_bytes()
    }
}
