//! Catalog entries as older releases stored them, read from an older data dir on first start
//! and converted, so an upgrade keeps the library: protocol 1 (no tags, no pusher) and
//! protocol 2 (no lineage; a cover was a bare hash that nothing stored).

use super::catalog::{CatalogEntry, KEY_SEPARATOR, Version, db_key};
use super::track_tags::TrackTags;
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

#[derive(Deserialize)]
struct CatalogEntryV2 {
    v1: CatalogEntryV1,
    tags: TrackTags,
    _cover: Option<[u8; 32]>,
    pushed_by: String,
}

/// A catalog row as read at start.
pub enum StoredRow {
    Current(CatalogEntry),
    /// Of an older layout, keyed by name alone: to be rewritten under its new key.
    Old(CatalogEntry),
}

/// Decodes a stored row. The key tells the layout apart: rows of the current layout are keyed
/// by [`db_key`] (name, separator, lineage), older ones by the name alone; postcard has no
/// field names, so guessing from the bytes could misread one layout as another.
pub fn decode_stored(key: &str, bytes: &[u8]) -> Option<StoredRow> {
    if key.contains(KEY_SEPARATOR) {
        let e: CatalogEntry = postcard::from_bytes(bytes).ok()?;
        return (db_key(&e.key()) == key).then_some(StoredRow::Current(e));
    }
    decode_old(bytes).map(StoredRow::Old)
}

fn decode_old(bytes: &[u8]) -> Option<CatalogEntry> {
    // Postcard has no field names, so a v2 row reads as a v1 row followed by its new fields.
    let (v1, tags, pushed_by) = match postcard::from_bytes::<CatalogEntryV2>(bytes) {
        Ok(v2) => (v2.v1, v2.tags, v2.pushed_by),
        Err(_) => (
            postcard::from_bytes::<CatalogEntryV1>(bytes).ok()?,
            TrackTags::default(),
            String::new(),
        ),
    };
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
        head_hashes: Vec::new(),
        version: v1.version,
        // Older releases kept one entry per name: each is its own lineage.
        lineage: v1.version,
        tombstone: v1.tombstone,
        tombstone_acks: v1.tombstone_acks,
        tags,
        cover: None,
        pushed_by,
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

    /// The v2 layout: v1's fields (written as the v1 bytes), then tags, a cover hash and the
    /// pusher.
    #[derive(Serialize)]
    struct WriteV2<'a> {
        #[serde(serialize_with = "raw")]
        old: &'a [u8],
        tags: TrackTags,
        cover: Option<[u8; 32]>,
        pushed_by: &'a str,
    }

    fn raw<S: serde::Serializer>(bytes: &&[u8], s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeTuple;
        let mut t = s.serialize_tuple(bytes.len())?;
        for b in *bytes {
            t.serialize_element(b)?;
        }
        t.end()
    }

    #[test]
    fn reads_entries_of_every_layout() {
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
        let Some(StoredRow::Old(e)) = decode_stored("old song", &old) else {
            panic!("a v1 entry decodes");
        };
        assert_eq!(
            (e.name.as_str(), e.size, e.version),
            ("old song", 70_000, version)
        );
        assert_eq!(e.tags, Default::default());
        assert_eq!(e.lineage, version);
        let v2 = postcard::to_allocvec(&WriteV2 {
            old: &old,
            tags: TrackTags {
                title: Some("Old Song".into()),
                ..Default::default()
            },
            cover: Some([7; 32]),
            pushed_by: "amy",
        })
        .unwrap();
        let Some(StoredRow::Old(e2)) = decode_stored("old song", &v2) else {
            panic!("a v2 entry decodes");
        };
        assert_eq!(e2.tags.title.as_deref(), Some("Old Song"));
        assert_eq!((e2.pushed_by.as_str(), e2.cover), ("amy", None));
        let mut new = e2.clone();
        new.lineage = Version {
            ts: Timestamp::new(1_600_000_000_000, 0),
            ..version
        };
        let row = postcard::to_allocvec(&new).unwrap();
        let Some(StoredRow::Current(back)) = decode_stored(&db_key(&new.key()), &row) else {
            panic!("a current entry decodes");
        };
        assert_eq!(back, new);
        assert!(decode_stored("old song", b"garbage").is_none());
        assert!(
            decode_stored(&db_key(&e.key()), &row).is_none(),
            "a row under another entry's key is not trusted"
        );
    }
}
