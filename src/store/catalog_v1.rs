//! Catalog entries as releases before protocol 2 stored them (no tags, no pusher): read from
//! an older data dir on first start and converted, so an upgrade keeps the library.

use super::catalog::{CatalogEntry, Version};
use crate::id::PeerId;
use serde::Deserialize;
use std::collections::BTreeSet;

#[derive(Deserialize)]
struct CatalogEntryV1 {
    name: String,
    hash: [u8; 32],
    size: u64,
    codec: String,
    sample_rate: u32,
    channels: u16,
    duration_s: f64,
    chunk_size: u32,
    chunk_hashes: Vec<[u8; 32]>,
    version: Version,
    tombstone: bool,
    tombstone_acks: BTreeSet<PeerId>,
}

/// Decodes a stored entry of the current layout, else of the first one.
pub fn decode_stored(bytes: &[u8]) -> Option<CatalogEntry> {
    if let Ok(e) = postcard::from_bytes::<CatalogEntry>(bytes) {
        return Some(e);
    }
    let v1: CatalogEntryV1 = postcard::from_bytes(bytes).ok()?;
    Some(CatalogEntry {
        name: v1.name,
        hash: v1.hash,
        size: v1.size,
        codec: v1.codec,
        sample_rate: v1.sample_rate,
        channels: v1.channels,
        duration_s: v1.duration_s,
        chunk_size: v1.chunk_size,
        chunk_hashes: v1.chunk_hashes,
        version: v1.version,
        tombstone: v1.tombstone,
        tombstone_acks: v1.tombstone_acks,
        tags: Default::default(),
        cover: None,
        pushed_by: String::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::catalog::{CHUNK_SIZE, Timestamp, chunk_hashes};
    use serde::Serialize;

    /// The v1 layout, written as a v1 release wrote it.
    #[derive(Serialize)]
    struct WriteV1<'a> {
        name: &'a str,
        hash: [u8; 32],
        size: u64,
        codec: &'a str,
        sample_rate: u32,
        channels: u16,
        duration_s: f64,
        chunk_size: u32,
        chunk_hashes: Vec<[u8; 32]>,
        version: Version,
        tombstone: bool,
        tombstone_acks: BTreeSet<PeerId>,
    }

    #[test]
    fn reads_entries_of_both_layouts() {
        let data = vec![3u8; 70_000];
        let version = Version {
            ts: Timestamp::new(1_700_000_000_000, 2),
            peer: PeerId([4; 32]),
        };
        let old = postcard::to_allocvec(&WriteV1 {
            name: "old song",
            hash: *blake3::hash(&data).as_bytes(),
            size: data.len() as u64,
            codec: "mp3",
            sample_rate: 44100,
            channels: 2,
            duration_s: 1.0,
            chunk_size: CHUNK_SIZE,
            chunk_hashes: chunk_hashes(&data, CHUNK_SIZE),
            version,
            tombstone: false,
            tombstone_acks: BTreeSet::new(),
        })
        .unwrap();
        let e = decode_stored(&old).expect("a v1 entry decodes");
        assert_eq!(
            (e.name.as_str(), e.size, e.version),
            ("old song", 70_000, version)
        );
        assert_eq!(e.tags, Default::default());
        let mut new = e.clone();
        new.tags.title = Some("Old Song".into());
        new.pushed_by = "amy".into();
        let back = decode_stored(&postcard::to_allocvec(&new).unwrap()).unwrap();
        assert_eq!(back, new);
        assert!(decode_stored(b"garbage").is_none());
    }
}
