//! Every message peers exchange, with a hard size limit per kind.

use crate::id::PeerId;
use crate::mesh::membership::MemberRecord;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;

pub const PROTOCOL_VERSION: u16 = 1;

/// First frame on a connection's control stream, from the dialer. `version` comes first so any
/// future layout can still be told apart by it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Hello {
    pub version: u16,
    pub record: MemberRecord,
    pub proof: [u8; 32],
    /// The address the dialer sees the acceptor at.
    pub observed: SocketAddr,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct HelloAck {
    pub version: u16,
    pub proof: [u8; 32],
    pub table: Vec<MemberRecord>,
    /// The address the acceptor sees the dialer at: how a NATed peer learns its public address.
    pub observed: SocketAddr,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Heartbeat {
    pub seq: u64,
    pub rtt_us: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Msg {
    Hello(Hello),
    HelloAck(HelloAck),
    Reject { reason: String },
    Heartbeat(Heartbeat),
    Members(Vec<MemberRecord>),
    Leave { incarnation: u64 },
    Introduce { peer: PeerId },
}

const KB: usize = 1024;

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
            _ => return None,
        })
    }
}
