//! Sockets and bytes on the wire: QUIC endpoint configuration, identities, the network-key proof,
//! tickets and frames.

pub mod auth;
pub mod frame;
pub mod identity;
pub mod msg;
pub mod relay_socket;
pub mod ticket;
pub mod tls;
