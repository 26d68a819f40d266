//! What a peer keeps on disk: blobs (content-addressed files) and the catalog database, plus
//! the pure logic of the replicated catalog and of repair.

pub mod blob_sink;
pub mod blobs;
pub mod catalog;
pub mod db;
pub mod db_writer;
pub mod direct_write;
pub mod disk;
pub mod fsutil;
pub mod hlc;
pub mod library;
pub mod old_catalog;
pub mod outboard;
pub mod playlists;
pub mod recon;
pub mod repair;
pub mod track_name;
pub mod track_tags;
