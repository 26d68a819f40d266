//! Every message peers exchange, with a hard size limit per kind.

use crate::id::PeerId;
use crate::mesh::membership::MemberRecord;
use crate::store::catalog::{CatalogEntry, EntryKey};
use crate::store::playlists::PlaylistItem;
use crate::store::recon::Range;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;

/// 2: member records say whether the peer's disk is full.
/// 3: catalog entries carry a lineage (concurrent pushes of one name both stay) and a stored
/// cover; a pusher checks its new entry against every peer's (`CatalogCheck`); playlists.
/// 4: membership and holdings travel as deltas with digests.
/// 5: catalogs reconcile by ranges (`CatalogRecon`); the catalog digest is an XOR of entry
/// hashes; entries a round found missing travel as `CatalogItems`, in frames of about 1 MiB;
/// heartbeats carry the sender's load, and `LoadAsk` asks for it.
/// 6: indirect probes (`ProbeAsk`, `ProbeSeen`): a silent peer's friends are asked whether
/// they hear it before it is declared dead.
/// 7: chunk hashes leave the catalog; blobs are fetched as BLAKE3/bao range encodings.
/// 8: only a link's dialer beats; its acceptor answers a beat to tell a new load (and every
/// 5 s), and is heard alive by the QUIC ACKs of the beats (a protocol 7 dialer would declare
/// it dead).
pub const PROTOCOL_VERSION: u16 = 8;

/// The one line both sides of a version mismatch print: both versions, and who must upgrade.
pub fn version_mismatch(who: &str, theirs: u16) -> String {
    let upgrade = if theirs < PROTOCOL_VERSION {
        format!("{who} must upgrade MEFF")
    } else {
        "this peer must upgrade MEFF".to_string()
    };
    format!("{who} speaks protocol {theirs}, this peer speaks {PROTOCOL_VERSION}: {upgrade}")
}

/// First frame on a connection's control stream, from the dialer. `version` comes first so any
/// future layout can still be told apart by it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Hello {
    pub version: u16,
    pub record: MemberRecord,
    pub proof: [u8; 32],
    /// The address the dialer sees the acceptor at.
    pub observed: SocketAddr,
    /// When the sender's process started: tells a restarted peer from a duplicate dial.
    pub boot: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct HelloAck {
    pub version: u16,
    pub proof: [u8; 32],
    pub table: Vec<MemberRecord>,
    /// The address the acceptor sees the dialer at: how a NATed peer learns its public address.
    pub observed: SocketAddr,
    pub boot: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Heartbeat {
    pub seq: u64,
    pub rtt_us: u64,
    /// Transfers the sender is serving now: what a fetcher chooses its source by.
    pub load: u32,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Msg {
    Hello(Hello),
    HelloAck(HelloAck),
    Reject {
        reason: String,
    },
    Heartbeat(Heartbeat),
    Members(Vec<MemberRecord>),
    Leave {
        incarnation: u64,
    },
    /// To a member linked to both: please introduce me to `peer` (we cannot connect).
    Introduce {
        peer: PeerId,
    },
    /// Catalog entries that changed (passed on to the receiver's other peers).
    Catalog(Vec<CatalogEntry>),
    /// Anti-entropy: the digest of the sender's catalog; a receiver whose own differs starts a
    /// reconciliation round (`CatalogRecon`).
    CatalogDigest([u8; 32]),
    /// A page of every blob the sender holds, as of its change number `seq` (sent when a
    /// link opens and when asked); `more`: pages of the same set follow.
    Holdings {
        seq: u64,
        held: Vec<[u8; 32]>,
        more: bool,
    },
    /// Opens a data stream: send the blob from `offset` (a 16 KiB piece start); the answer is
    /// `FetchOk`, then the range's encoding as raw bytes: each piece after the hash pairs
    /// (from the holder's outboard) that check it against the blob's address.
    Fetch {
        hash: [u8; 32],
        offset: u64,
    },
    FetchOk {
        size: u64,
    },
    /// Opens a data stream: `entry.size` raw bytes follow; store them and pass them down `chain`.
    Store {
        entry: Box<CatalogEntry>,
        chain: Vec<PeerId>,
    },
    StoreResult {
        stored: Vec<PeerId>,
        failed: Vec<(PeerId, String)>,
    },
    Failed {
        reason: String,
    },
    /// Opens a relay stream to a member: carry packets between me and `target`.
    RelayOpen {
        target: PeerId,
    },
    /// From a relay to the target: `from` wants a tunnel to you over this stream.
    RelayIncoming {
        from: PeerId,
    },
    RelayReady,
    /// From an introducer: `peer` is at `addr` as the introducer sees it, dialing you now;
    /// dial it back at once so both NATs open.
    PunchNow {
        peer: PeerId,
        addr: SocketAddr,
    },
    /// Opens a data stream: merge this entry of mine, then answer with `Catalog` holding every
    /// entry you have under its name, so I learn which name it ends up shown under.
    CatalogCheck {
        entry: Box<CatalogEntry>,
    },
    /// Playlist items that changed, or all of them after a digest mismatch.
    Playlists(Vec<PlaylistItem>),
    /// Anti-entropy: the digest of the sender's playlists.
    PlaylistDigest([u8; 32]),
    /// Member records that just changed (a join, a new address, a leave): what changed goes
    /// out, not the whole table.
    MemberUpdates(Vec<MemberRecord>),
    /// Anti-entropy: the digest of the sender's membership table; a receiver whose table
    /// differs answers with its whole table (`Members`).
    MembersDigest([u8; 32]),
    /// The sender's holdings changed (change number `seq`, one after the last).
    HoldingsDelta {
        seq: u64,
        added: Vec<[u8; 32]>,
        removed: Vec<[u8; 32]>,
    },
    /// Anti-entropy: the digest of the sender's holdings as of change `seq`.
    HoldingsDigest {
        seq: u64,
        digest: [u8; 32],
    },
    /// "Send me your whole holdings": a delta went missing or a digest differed.
    HoldingsAsk,
    /// A step of catalog reconciliation: the ranges still open (empty: we are in sync).
    CatalogRecon(Vec<Range<EntryKey>>),
    /// Entries a reconciliation round found the receiver lacking (not passed on).
    CatalogItems(Vec<CatalogEntry>),
    /// Opens a data stream: how many transfers are you serving? Answered with `LoadIs`.
    LoadAsk,
    LoadIs {
        serving: u32,
    },
    /// Do you hear `target`? (We do not.) Answered with `ProbeSeen`.
    ProbeAsk {
        target: PeerId,
    },
    /// How long ago the sender last heard `target` on its own link; None: it does not.
    ProbeSeen {
        target: PeerId,
        silent_ms: Option<u32>,
    },
}

const KB: usize = 1024;
/// A frame that carries one catalog entry: its name and tags are at most a few KiB, its
/// tombstone's acks 33 bytes a peer.
const ENTRY_FRAME: usize = 256 * KB;

/// Kinds that may open a stream after the handshake.
pub const STREAM_OPENERS: &[u8] = &[3, 10, 12, 15, 16, 19, 29];
/// The kind that opens a connection.
pub const HELLO: &[u8] = &[0];

impl Msg {
    pub fn kind(&self) -> u8 {
        match self {
            Msg::Hello(_) => 0,
            Msg::HelloAck(_) => 1,
            Msg::Reject { .. } => 2,
            Msg::Heartbeat(_) => 3,
            Msg::Members(_) => 4,
            Msg::Leave { .. } => 5,
            Msg::Introduce { .. } => 6,
            Msg::Catalog(_) => 7,
            Msg::CatalogDigest(_) => 8,
            Msg::Holdings { .. } => 9,
            Msg::Fetch { .. } => 10,
            Msg::FetchOk { .. } => 11,
            Msg::Store { .. } => 12,
            Msg::StoreResult { .. } => 13,
            Msg::Failed { .. } => 14,
            Msg::RelayOpen { .. } => 15,
            Msg::RelayIncoming { .. } => 16,
            Msg::RelayReady => 17,
            Msg::PunchNow { .. } => 18,
            Msg::CatalogCheck { .. } => 19,
            Msg::Playlists(_) => 20,
            Msg::PlaylistDigest(_) => 21,
            Msg::MemberUpdates(_) => 22,
            Msg::MembersDigest(_) => 23,
            Msg::HoldingsDelta { .. } => 24,
            Msg::HoldingsDigest { .. } => 25,
            Msg::HoldingsAsk => 26,
            Msg::CatalogRecon(_) => 27,
            Msg::CatalogItems(_) => 28,
            Msg::LoadAsk => 29,
            Msg::LoadIs { .. } => 30,
            Msg::ProbeAsk { .. } => 31,
            Msg::ProbeSeen { .. } => 32,
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Msg::Hello(_) => "hello",
            Msg::HelloAck(_) => "hello-ack",
            Msg::Reject { .. } => "reject",
            Msg::Heartbeat(_) => "heartbeat",
            Msg::Members(_) => "members",
            Msg::Leave { .. } => "leave",
            Msg::Introduce { .. } => "introduce",
            Msg::Catalog(_) => "catalog",
            Msg::CatalogDigest(_) => "catalog-digest",
            Msg::Holdings { .. } => "holdings",
            Msg::Fetch { .. } => "fetch",
            Msg::FetchOk { .. } => "fetch-ok",
            Msg::Store { .. } => "store",
            Msg::StoreResult { .. } => "store-result",
            Msg::Failed { .. } => "failed",
            Msg::RelayOpen { .. } => "relay-open",
            Msg::RelayIncoming { .. } => "relay-incoming",
            Msg::RelayReady => "relay-ready",
            Msg::PunchNow { .. } => "punch-now",
            Msg::CatalogCheck { .. } => "catalog-check",
            Msg::Playlists(_) => "playlists",
            Msg::PlaylistDigest(_) => "playlist-digest",
            Msg::MemberUpdates(_) => "member-updates",
            Msg::MembersDigest(_) => "members-digest",
            Msg::HoldingsDelta { .. } => "holdings-delta",
            Msg::HoldingsDigest { .. } => "holdings-digest",
            Msg::HoldingsAsk => "holdings-ask",
            Msg::CatalogRecon(_) => "catalog-recon",
            Msg::CatalogItems(_) => "catalog-items",
            Msg::LoadAsk => "load-ask",
            Msg::LoadIs { .. } => "load-is",
            Msg::ProbeAsk { .. } => "probe-ask",
            Msg::ProbeSeen { .. } => "probe-seen",
        }
    }

    /// Largest body accepted for each kind; None for kinds that do not exist.
    pub fn max_len(kind: u8) -> Option<usize> {
        Some(match kind {
            0 => 4 * KB,
            1 => 256 * KB,
            2 => KB,
            3 => 64,
            4 => 256 * KB,
            5 => 64,
            6 => 64,
            // Batches of about 1 MiB of entries (an entry is a few KiB: no chunk hashes).
            7 => 2 * KB * KB,
            8 => 64,
            // A page of 16,384 blobs.
            9 => 1024 * KB,
            10 => 64,
            11 => 64,
            12 => ENTRY_FRAME,
            13 => 64 * KB,
            14 => 4 * KB,
            15 => 64,
            16 => 64,
            17 => 16,
            18 => 128,
            19 => ENTRY_FRAME,
            20 => 64 * KB * KB,
            21 => 64,
            22 => 256 * KB,
            23 => 64,
            // One blob per delta.
            24 => 64 * KB,
            25 => 64,
            26 => 16,
            27 => KB * KB,
            28 => 2 * KB * KB,
            29 => 16,
            30 => 16,
            31 => 64,
            32 => 64,
            _ => return None,
        })
    }
}
