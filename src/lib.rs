//! MEFF: music entertainment for friends. A peer-to-peer, fully meshed, replicated store for
//! music over QUIC. See ARCHITECTURE.md for the layering.

pub mod audio;
pub mod cli;
pub mod demo;
pub mod fuzzing;
pub mod id;
pub mod mesh;
pub mod net;
pub mod node;
pub mod store;
pub mod web;
