//! Catalog entries as older releases stored them, read from an older data dir on first start
//! and converted, so an upgrade keeps the library: protocol 1 (no tags, no pusher) and
//! protocol 2 (no lineage; a cover was a bare hash that nothing stored); protocols 3 to 6
//! (chunk hashes in every entry, before outboards took them out of the catalog).

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
    _chunk_size: u32,
    _chunk_hashes: Vec<[u8; 32]>,
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

/// Protocols 3–6: today's entry with the chunk hashes a reader checked pieces with, after
/// `duration_s`: the chunk size and hashes, then (since a later protocol 3 build) the head
/// piece hashes. Postcard reads a tuple field by field, so `C` is either shape.
#[derive(Deserialize)]
struct CatalogEntryV3<C> {
    name: String,
    hash: [u8; 32],
    size: u64,
    codec: String,
    sample_rate: u32,
    channels: u16,
    duration_s: f64,
    _chunks: C,
    version: Version,
    lineage: Version,
    tombstone: bool,
    tombstone_acks: BTreeSet<PeerId>,
    tags: TrackTags,
    cover: Option<super::catalog::CoverRef>,
    pushed_by: String,
}

type Chunks = (u32, Vec<[u8; 32]>);
type ChunksAndHead = (u32, Vec<[u8; 32]>, Vec<[u8; 32]>);

impl<C> From<CatalogEntryV3<C>> for CatalogEntry {
    fn from(v: CatalogEntryV3<C>) -> Self {
        CatalogEntry {
            name: v.name,
            hash: v.hash,
            size: v.size,
            codec: v.codec,
            sample_rate: v.sample_rate,
            channels: v.channels,
            duration_s: v.duration_s,
            version: v.version,
            lineage: v.lineage,
            tombstone: v.tombstone,
            tombstone_acks: v.tombstone_acks,
            tags: v.tags,
            cover: v.cover,
            pushed_by: v.pushed_by,
        }
    }
}

/// A catalog row as read at start.
pub enum StoredRow {
    Current(CatalogEntry),
    /// Of an older layout: to be rewritten in this one, under its key (older rows were keyed
    /// by name alone).
    Old(CatalogEntry),
}

/// Decodes a stored row. The key tells the layout apart: rows of the current layout are keyed
/// by [`db_key`] (name, separator, lineage), older ones by the name alone; postcard has no
/// field names, so guessing from the bytes could misread one layout as another. Under such a
/// key, a row read in the wrong layout would have to spell its own key's name and lineage
/// (32 bytes of peer id) by chance, so both layouts are tried, today's first.
pub fn decode_stored(key: &str, bytes: &[u8]) -> Option<StoredRow> {
    if key.contains(KEY_SEPARATOR) {
        let matches = |e: &CatalogEntry| db_key(&e.key()) == key;
        if let Ok(e) = postcard::from_bytes::<CatalogEntry>(bytes)
            && matches(&e)
        {
            return Some(StoredRow::Current(e));
        }
        let with_head = postcard::from_bytes::<CatalogEntryV3<ChunksAndHead>>(bytes)
            .ok()
            .map(CatalogEntry::from)
            .filter(matches);
        let e = with_head.or_else(|| {
            postcard::from_bytes::<CatalogEntryV3<Chunks>>(bytes)
                .ok()
                .map(CatalogEntry::from)
                .filter(matches)
        })?;
        return Some(StoredRow::Old(e));
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
    use crate::store::catalog::CoverRef;
    use crate::store::hlc::Timestamp;

    const CHUNK_SIZE: u32 = 65536;

    fn chunk_hashes(data: &[u8]) -> Vec<[u8; 32]> {
        data.chunks(CHUNK_SIZE as usize)
            .map(|c| *blake3::hash(c).as_bytes())
            .collect()
    }
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
            chunk_hashes: chunk_hashes(&data),
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

    /// Protocols 3–6 wrote today's fields with the chunk hashes after `duration_s`.
    #[derive(Serialize)]
    struct WriteV3<'a, C> {
        name: &'a str,
        hash: [u8; 32],
        size: u64,
        codec: &'a str,
        sample_rate: u32,
        channels: u16,
        duration_s: f64,
        chunks: C,
        version: Version,
        lineage: Version,
        tombstone: bool,
        tombstone_acks: BTreeSet<PeerId>,
        tags: TrackTags,
        cover: Option<CoverRef>,
        pushed_by: &'a str,
    }

    #[test]
    fn reads_entries_with_chunk_hashes_under_their_key() {
        let data = vec![5u8; 140_000];
        let version = Version {
            ts: Timestamp::new(1_760_000_000_000, 1),
            peer: PeerId([8; 32]),
        };
        let lineage = Version {
            ts: Timestamp::new(1_750_000_000_000, 0),
            ..version
        };
        let cover = Some(CoverRef {
            hash: [9; 32],
            size: 1000,
        });
        let tags = TrackTags {
            artist: Some("Ana".into()),
            ..Default::default()
        };
        fn row<C: Serialize>(
            chunks: C,
            v: Version,
            l: Version,
            c: Option<CoverRef>,
            t: &TrackTags,
        ) -> Vec<u8> {
            let data = vec![5u8; 140_000];
            postcard::to_allocvec(&WriteV3 {
                name: "song",
                hash: *blake3::hash(&data).as_bytes(),
                size: data.len() as u64,
                codec: "flac",
                sample_rate: 48000,
                channels: 2,
                duration_s: 3.5,
                chunks,
                version: v,
                lineage: l,
                tombstone: false,
                tombstone_acks: BTreeSet::new(),
                tags: t.clone(),
                cover: c,
                pushed_by: "bo",
            })
            .unwrap()
        }
        let key = db_key(&("song".to_string(), lineage));
        let other_key = db_key(&("song".to_string(), version));
        // Later protocol 3 builds and on wrote head piece hashes; the first ones did not.
        let with_head = (CHUNK_SIZE, chunk_hashes(&data), vec![[1u8; 32]; 4]);
        let without_head = (CHUNK_SIZE, chunk_hashes(&data));
        for row in [
            row(with_head, version, lineage, cover, &tags),
            row(without_head, version, lineage, cover, &tags),
        ] {
            let Some(StoredRow::Old(e)) = decode_stored(&key, &row) else {
                panic!("an entry with chunk hashes decodes, to be rewritten");
            };
            assert_eq!(
                (
                    e.name.as_str(),
                    e.size,
                    e.version,
                    e.lineage,
                    e.cover,
                    e.tags,
                    e.pushed_by.as_str()
                ),
                ("song", 140_000, version, lineage, cover, tags.clone(), "bo")
            );
            assert!(
                decode_stored(&other_key, &row).is_none(),
                "under another key it is not trusted"
            );
        }
    }
}
