//! The replicated catalog: track name → content facts, merged so every peer converges.
//!
//! Each name holds one entry; concurrent writes are settled by last writer wins on a hybrid
//! logical clock, ties broken by peer id. The merge is a join on a semilattice (commutative,
//! associative, idempotent), so peers may exchange entries in any order, any number of times,
//! and still end with identical catalogs. Removal writes a tombstone rather than deleting,
//! otherwise a peer that missed the removal would resurrect the track on its next exchange.

use super::hlc::Timestamp;
use super::library::LibraryIndex;
use super::recon::{ItemHash, RangeFp, ReconSet};
use super::track_name::{is_invisible_format, shown_names, suffix_parent, validate_name};
use super::track_tags::TrackTags;
use crate::id::PeerId;
use serde::{Deserialize, Serialize};
use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

/// Who wrote an entry and when; the derived order (ts, then peer) decides last writer wins.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Version {
    pub ts: Timestamp,
    pub peer: PeerId,
}

/// An embedded cover picture, stored as a blob of its own and checked like any blob.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct CoverRef {
    pub hash: [u8; 32],
    pub size: u32,
}

/// The largest cover stored; a bigger one is left out (the track is stored without it).
pub const MAX_COVER_BYTES: u32 = 4 << 20;

impl CoverRef {
    /// The cover as a blob to store or fetch.
    pub fn as_blob_entry(&self) -> CatalogEntry {
        let version = Version {
            ts: Timestamp(0),
            peer: PeerId([0; 32]),
        };
        CatalogEntry {
            name: format!("cover {}", short_hex(&self.hash)),
            hash: self.hash,
            size: self.size as u64,
            codec: "cover".into(),
            sample_rate: 0,
            channels: 0,
            duration_s: 0.0,
            version,
            lineage: version,
            tombstone: false,
            tombstone_acks: BTreeSet::new(),
            tags: TrackTags::default(),
            cover: None,
            pushed_by: String::new(),
        }
    }
}

fn short_hex(h: &[u8; 32]) -> String {
    h[..6].iter().map(|b| format!("{b:02x}")).collect()
}

/// One track as every peer knows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CatalogEntry {
    /// The name it was pushed under. Of two pushes of one name that did not see each other,
    /// the later is *shown* as `NAME (2)` (see [`Catalog`]); this field keeps what was pushed.
    pub name: String,
    /// BLAKE3 of the whole file: the blob's address.
    pub hash: [u8; 32],
    pub size: u64,
    pub codec: String,
    pub sample_rate: u32,
    pub channels: u16,
    pub duration_s: f64,
    pub version: Version,
    /// The version of the push that created this track; a `--replace` or a removal keeps it.
    /// Writes of one lineage settle by last writer wins; different lineages under one name
    /// are concurrent pushes that did not see each other, and all of them stay.
    pub lineage: Version,
    pub tombstone: bool,
    /// Peers known to have stored this tombstone; once every member has, nobody can bring the
    /// old entry back and the tombstone can go.
    pub tombstone_acks: BTreeSet<PeerId>,
    pub tags: TrackTags,
    /// The embedded cover picture, when the file has one of at most [`MAX_COVER_BYTES`].
    pub cover: Option<CoverRef>,
    /// Name of the peer that pushed it, as it was then (peers are forgotten, names stay).
    pub pushed_by: String,
}

/// Where an entry lives in the catalog: its pushed name and its lineage.
pub type EntryKey = (String, Version);

impl CatalogEntry {
    pub fn key(&self) -> EntryKey {
        (self.name.clone(), self.lineage)
    }

    /// The tombstone that removes this entry, written by `version.peer` at `version`.
    pub fn removed(self, version: Version) -> CatalogEntry {
        CatalogEntry {
            version,
            tombstone: true,
            tombstone_acks: BTreeSet::from([version.peer]),
            ..self
        }
    }
}

/// Keys by blob, sorted, in a Vec: nearly always one key, and a one-element BTreeSet costs a
/// whole B-tree node (about 700 bytes) per track.
type BlobIndex = HashMap<[u8; 32], Vec<EntryKey>>;

fn index(ix: &mut BlobIndex, h: [u8; 32], key: &EntryKey) {
    let keys = ix.entry(h).or_default();
    if let Err(at) = keys.binary_search(key) {
        // Most blobs belong to one entry: room for four (the default growth) cost 190 bytes
        // a track.
        keys.reserve_exact(1);
        keys.insert(at, key.clone());
    }
}

fn unindex(ix: &mut BlobIndex, h: &[u8; 32], key: &EntryKey) {
    if let Some(keys) = ix.get_mut(h) {
        if let Ok(at) = keys.binary_search(key) {
            keys.remove(at);
        }
        if keys.is_empty() {
            ix.remove(h);
        }
    }
}

/// The hash of what anti-entropy must agree on for one entry: all of it, acks included (acks
/// change without a new version, and if they were left out a lost ack would never be resent
/// and the tombstone never pruned).
pub fn entry_hash(e: &CatalogEntry) -> ItemHash {
    // The whole entry: two peers holding one version with different contents (one lost its
    // clock state) must see the difference, or the merge that settles it never runs.
    let bytes = postcard::to_allocvec(e).unwrap_or_default();
    *blake3::Hasher::new_derive_key("meff catalog entry v5")
        .update(&bytes)
        .finalize()
        .as_bytes()
}

/// Catalogs reconcile entry by entry, in key order.
impl ReconSet for Catalog {
    type Key = EntryKey;

    fn scan(
        &self,
        lower: Option<&EntryKey>,
        upper: Option<&EntryKey>,
        f: &mut dyn FnMut(&EntryKey, &ItemHash) -> bool,
    ) {
        use std::ops::Bound::{Excluded, Included, Unbounded};
        let lo = lower.map_or(Unbounded, Included);
        let hi = upper.map_or(Unbounded, Excluded);
        if lower.zip(upper).is_some_and(|(l, u)| l >= u) {
            return;
        }
        for (k, e) in self.entries.range::<EntryKey, _>((lo, hi)) {
            let h = self.hashes.get(k).copied().unwrap_or_else(|| entry_hash(e));
            if !f(k, &h) {
                break;
            }
        }
    }

    fn key_bytes(key: &EntryKey) -> usize {
        key.0.len() + 44
    }

    fn total(&self) -> Option<RangeFp> {
        Some(self.total)
    }
}

/// What [`merge`] decided.
#[derive(Clone, Debug, PartialEq)]
pub struct MergeOutcome {
    /// The entry to keep under this key.
    pub winner: CatalogEntry,
    /// Whether `winner` differs from the local entry (so it must be stored and passed on).
    pub changed: bool,
}

/// Combine the local entry for a key with one received from a peer.
///
/// The higher version wins outright. Equal versions normally mean the same write arriving
/// twice, with possibly different tombstone acks, which are unioned. Equal versions with
/// different content can only come from a peer that lost its clock state; a fixed order on
/// the content still picks the same winner everywhere, keeping the merge a semilattice join.
pub fn merge(local: Option<&CatalogEntry>, remote: &CatalogEntry) -> MergeOutcome {
    let Some(local) = local else {
        return MergeOutcome {
            winner: remote.clone(),
            changed: true,
        };
    };
    let order = local
        .version
        .cmp(&remote.version)
        .then_with(|| content_cmp(local, remote));
    match order {
        Ordering::Greater => MergeOutcome {
            winner: local.clone(),
            changed: false,
        },
        Ordering::Less => MergeOutcome {
            winner: remote.clone(),
            changed: true,
        },
        Ordering::Equal => {
            let mut winner = local.clone();
            winner
                .tombstone_acks
                .extend(remote.tombstone_acks.iter().copied());
            let changed = winner.tombstone_acks.len() != local.tombstone_acks.len();
            MergeOutcome { winner, changed }
        }
    }
}

/// A total order on everything but the acks (floats by bit pattern, so even NaN is ordered).
fn content_cmp(a: &CatalogEntry, b: &CatalogEntry) -> Ordering {
    a.name
        .cmp(&b.name)
        .then_with(|| a.lineage.cmp(&b.lineage))
        .then_with(|| a.hash.cmp(&b.hash))
        .then_with(|| a.size.cmp(&b.size))
        .then_with(|| a.codec.cmp(&b.codec))
        .then_with(|| a.sample_rate.cmp(&b.sample_rate))
        .then_with(|| a.channels.cmp(&b.channels))
        .then_with(|| a.duration_s.total_cmp(&b.duration_s))
        .then_with(|| a.tombstone.cmp(&b.tombstone))
        .then_with(|| a.cover.cmp(&b.cover))
}

/// The whole catalog: one last-writer-wins entry per (name, lineage), tombstones included,
/// and the name each live entry is shown under.
///
/// Concurrent pushes of one name are different lineages, so both survive the merge. Which
/// one is shown as `NAME` and which as `NAME (2)` is a function of the set of entries alone
/// (earliest lineage first, see [`shown_names`]), so every peer that holds the same entries
/// shows the same names, whatever order they arrived in. Renaming inside the merge instead
/// would depend on that order (a removal seen first would hide the conflict).
#[derive(Clone, Debug, Default)]
pub struct Catalog {
    /// Boxed: a B-tree node holds eleven values inline and is often half full, and an entry
    /// is ~500 bytes (40 MB of empty slots at 100,000 tracks).
    entries: BTreeMap<EntryKey, Box<CatalogEntry>>,
    /// Shown name → the live entry shown under it.
    shown: BTreeMap<String, EntryKey>,
    /// Live entries shown under another name than their own, as copies carrying the shown
    /// name (rare: only the later of concurrent pushes).
    renamed: BTreeMap<EntryKey, CatalogEntry>,
    /// Live entries by content, so "is this file in the network already" is no scan.
    by_hash: BlobIndex,
    /// Live entries by cover picture.
    by_cover: BlobIndex,
    /// Blobs (tracks and covers) whose referencing entries changed since
    /// [`take_changed_blobs`](Self::take_changed_blobs): what repair has to look at again.
    changed_blobs: HashSet<[u8; 32]>,
    /// Bumped on every change: what tells a cached index it is stale.
    generation: u64,
    /// Fingerprint of every entry's [`entry_hash`], kept up to date so the digest costs
    /// nothing however large the catalog.
    total: RangeFp,
    /// Each entry's [`entry_hash`], kept so a reconciliation pass does not rehash the catalog.
    hashes: HashMap<EntryKey, ItemHash>,
    /// Keys of the tombstones, so pruning looks at them only.
    tombstones: BTreeSet<EntryKey>,
    /// The word index of the shown tracks, kept current change by change: rebuilt on a
    /// user's `ls` it cost 0.8 s at 100,000 tracks, under the lock heartbeats need.
    words: LibraryIndex,
    /// Shown names changed by the merge in progress, for `words`.
    reindex: Vec<String>,
    /// Names whose shown names wait for the end of the [`batch`](Self::batch) in progress.
    deferred: Option<BTreeSet<String>>,
}

/// Two catalogs are equal when they hold the same entries, however they got there.
impl PartialEq for Catalog {
    fn eq(&self, other: &Self) -> bool {
        self.entries == other.entries
    }
}

pub(crate) const VERSION_MIN: Version = Version {
    ts: Timestamp(0),
    peer: PeerId([0; 32]),
};
pub(crate) const VERSION_MAX: Version = Version {
    ts: Timestamp(u64::MAX),
    peer: PeerId([u8::MAX; 32]),
};

impl Catalog {
    pub fn new() -> Self {
        Self::default()
    }

    /// Merge in one entry (local write or received); true if the catalog changed.
    ///
    /// Entries with invalid names are refused here, not only at the command line, because a
    /// misbehaving peer must not plant a name that later becomes a path on someone's disk.
    pub fn apply(&mut self, e: CatalogEntry) -> bool {
        if validate_name(&e.name).is_err() || e.lineage > e.version {
            return false;
        }
        let key = e.key();
        let outcome = merge(self.by_key(&key), &e);
        if outcome.changed {
            if let Some(old) = self.entries.get(&key).filter(|o| !o.tombstone) {
                let (hash, cover) = (old.hash, old.cover.map(|c| c.hash));
                unindex(&mut self.by_hash, &hash, &key);
                self.changed_blobs.insert(hash);
                if let Some(c) = cover {
                    unindex(&mut self.by_cover, &c, &key);
                    self.changed_blobs.insert(c);
                }
            }
            if !outcome.winner.tombstone {
                let w = &outcome.winner;
                index(&mut self.by_hash, w.hash, &key);
                self.changed_blobs.insert(w.hash);
                if let Some(c) = w.cover {
                    index(&mut self.by_cover, c.hash, &key);
                    self.changed_blobs.insert(c.hash);
                }
            }
            if let Some(old) = self.hashes.get(&key) {
                self.total.remove(old);
            }
            let h = entry_hash(&outcome.winner);
            self.total.add(&h);
            self.hashes.insert(key.clone(), h);
            if outcome.winner.tombstone {
                self.tombstones.insert(key.clone());
            } else {
                self.tombstones.remove(&key);
            }
            self.entries.insert(key.clone(), Box::new(outcome.winner));
            self.generation += 1;
            self.reshow(&key.0);
        }
        outcome.changed
    }

    /// Changes every time an entry does.
    /// Entries held, tombstones included.
    pub fn entry_count(&self) -> usize {
        self.entries.len()
    }

    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Names of the live tracks where every word of `query` starts a word of the name, title,
    /// artist, album artist or album; every track for an empty query. In name order.
    pub fn search(&self, query: &str) -> Vec<&str> {
        // Everything is the shown names, already in order: no sort of 100,000 names.
        if query.trim().is_empty() {
            return self.shown.keys().map(String::as_str).collect();
        }
        self.words.search(query)
    }

    fn mark_for_reindex(&mut self, name: &str) {
        self.reindex.push(name.to_string());
    }

    /// Record that `peer` has stored the tombstone at `key`; true if that is news.
    pub fn ack_tombstone(&mut self, key: &EntryKey, peer: PeerId) -> bool {
        match self.entries.get_mut(key) {
            Some(e) if e.tombstone && !e.tombstone_acks.contains(&peer) => {
                e.tombstone_acks.insert(peer);
                let h = entry_hash(e);
                if let Some(old) = self.hashes.insert(key.clone(), h) {
                    self.total.remove(&old);
                }
                self.total.add(&h);
                true
            }
            _ => false,
        }
    }

    /// The live track shown under `name`, carrying that name.
    pub fn get(&self, name: &str) -> Option<&CatalogEntry> {
        self.shown.get(name).and_then(|k| self.shown_entry(k))
    }

    /// The live track shown under `name` as it was pushed (its own name, its lineage): what a
    /// replace or a removal of it starts from.
    pub fn stored(&self, name: &str) -> Option<&CatalogEntry> {
        self.shown.get(name).and_then(|k| self.by_key(k))
    }

    /// The entry at `key` as it was pushed, tombstone or not.
    pub fn by_key(&self, key: &EntryKey) -> Option<&CatalogEntry> {
        self.entries.get(key).map(|e| &**e)
    }

    /// The name the live entry at `key` is shown under.
    pub fn shown_name(&self, key: &EntryKey) -> Option<&str> {
        self.shown_entry(key).map(|e| e.name.as_str())
    }

    /// The newest write under a pushed name, of any lineage, removals included.
    pub fn newest_version_at(&self, name: &str) -> Option<Version> {
        self.lineages(name).map(|(_, e)| e.version).max()
    }

    /// Every entry (tombstones too) pushed under `name`, earliest lineage first.
    pub fn lineages<'a>(
        &'a self,
        name: &str,
    ) -> impl Iterator<Item = (&'a EntryKey, &'a CatalogEntry)> + 'a {
        self.entries
            .range((name.to_string(), VERSION_MIN)..=(name.to_string(), VERSION_MAX))
            .map(|(k, e)| (k, &**e))
    }

    /// Tracks that exist, in shown-name order, each carrying its shown name.
    pub fn live(&self) -> impl Iterator<Item = &CatalogEntry> {
        self.shown.values().filter_map(|k| self.shown_entry(k))
    }

    /// The keys of the live entries holding the blob `hash`, earliest name and lineage first.
    /// A live entry holding the blob `hash` (the earliest by name and lineage).
    pub fn entry_with_hash(&self, hash: &[u8; 32]) -> Option<&CatalogEntry> {
        self.live_with_hash(hash)
            .next()
            .and_then(|k| self.by_key(k))
    }

    pub fn live_with_hash(&self, hash: &[u8; 32]) -> impl Iterator<Item = &EntryKey> {
        self.by_hash.get(hash).into_iter().flatten()
    }

    /// The keys of the live entries whose cover is the blob `hash`.
    pub fn live_with_cover(&self, hash: &[u8; 32]) -> impl Iterator<Item = &EntryKey> {
        self.by_cover.get(hash).into_iter().flatten()
    }

    /// Blobs whose referencing entries changed since the last call.
    pub fn take_changed_blobs(&mut self) -> HashSet<[u8; 32]> {
        std::mem::take(&mut self.changed_blobs)
    }

    /// Every entry including tombstones, as pushed: what anti-entropy sends.
    pub fn all(&self) -> impl Iterator<Item = &CatalogEntry> {
        self.entries.values().map(|e| &**e)
    }

    /// The newest version in the catalog, to resume the [`Hlc`] from after a restart.
    pub fn max_version(&self) -> Option<Version> {
        self.entries.values().map(|e| e.version).max()
    }

    /// A fingerprint two peers compare before reconciling (see [`recon`](super::recon)): of
    /// every entry's [`entry_hash`], so it costs nothing to compute whatever the catalog's size.
    pub fn digest(&self) -> [u8; 32] {
        let mut h = blake3::Hasher::new();
        h.update(b"meff catalog digest v5\0");
        h.update(&self.total.xor);
        h.update(&self.total.count.to_le_bytes());
        *h.finalize().as_bytes()
    }

    /// Drop tombstones every member has acked; returns their keys.
    ///
    /// `members` must be every peer that has not left for good, dead or suspect ones included:
    /// a peer away during the removal would otherwise bring the track back when it returns.
    /// An empty set prunes nothing, since "everyone acked" would then be vacuously true.
    pub fn prune_tombstones(&mut self, members: &BTreeSet<PeerId>) -> Vec<EntryKey> {
        if members.is_empty() {
            return Vec::new();
        }
        let done: Vec<EntryKey> = self
            .tombstones
            .iter()
            .filter(|k| {
                self.entries
                    .get(*k)
                    .is_some_and(|e| members.is_subset(&e.tombstone_acks))
            })
            .cloned()
            .collect();
        for key in &done {
            self.tombstones.remove(key);
            self.entries.remove(key);
            if let Some(h) = self.hashes.remove(key) {
                self.total.remove(&h);
            }
        }
        done
    }

    /// Blobs some live track still needs, its cover included; a blob can be shared by several
    /// names, so a blob may only be deleted when no live entry at all refers to it.
    pub fn referenced_hashes(&self) -> BTreeSet<[u8; 32]> {
        self.live()
            .flat_map(|e| std::iter::once(e.hash).chain(e.cover.map(|c| c.hash)))
            .collect()
    }

    fn shown_entry(&self, key: &EntryKey) -> Option<&CatalogEntry> {
        self.renamed.get(key).or_else(|| self.by_key(key))
    }

    fn has_live(&self, name: &str) -> bool {
        self.lineages(name).any(|(_, e)| !e.tombstone)
    }

    /// Applies entries through `f` and works out the shown names of each name they touched
    /// once, at the end: a frame of k lineages of one name costs k, not k² (each apply would
    /// otherwise redo all of that name's lineages). Shown names are a function of the
    /// entries, so doing it once at the end gives what doing it after each would.
    pub fn batch<R>(&mut self, f: impl FnOnce(&mut Self) -> R) -> R {
        if self.deferred.is_some() {
            return f(self);
        }
        self.deferred = Some(BTreeSet::new());
        // Finished even if `f` panics: a catalog left deferring would never show new names.
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(self)));
        if let Some(names) = self.deferred.take() {
            self.reshow_names(names);
        }
        r.unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    }

    /// Recompute the shown names of `name`'s entries, and of the name it may be a suffixed
    /// form of: whether `X (2)` exists decides what `X`'s later push is shown as.
    fn reshow(&mut self, name: &str) {
        match self.deferred.as_mut() {
            Some(names) => {
                names.insert(name.to_string());
            }
            None => self.reshow_names([name.to_string()]),
        }
    }

    fn reshow_names(&mut self, names: impl IntoIterator<Item = String>) {
        for name in names {
            self.reshow_one(&name);
            if let Some(parent) = suffix_parent(&name) {
                let parent = parent.to_string();
                self.reshow_one(&parent);
            }
        }
        let changed = std::mem::take(&mut self.reindex);
        let mut words = std::mem::take(&mut self.words);
        // Only after many removals is a rebuild the better deal (amortized over them).
        if !words.update(changed.iter().map(String::as_str), |n| self.get(n)) {
            words = LibraryIndex::build(self.live());
        }
        self.words = words;
    }

    fn reshow_one(&mut self, name: &str) {
        let keys: Vec<EntryKey> = self.lineages(name).map(|(k, _)| k.clone()).collect();
        for k in &keys {
            let was = match self.renamed.remove(k) {
                Some(copy) => copy.name,
                None => name.to_string(),
            };
            if self.shown.get(&was) == Some(k) {
                self.shown.remove(&was);
                self.mark_for_reindex(&was);
            }
        }
        let live: Vec<&EntryKey> = keys
            .iter()
            .filter(|k| self.entries.get(*k).is_some_and(|e| !e.tombstone))
            .collect();
        let names = shown_names(name, live.len(), |n| self.has_live(n));
        for (key, shown) in live.into_iter().zip(names) {
            if shown != name
                && let Some(e) = self.by_key(key)
            {
                let mut copy = e.clone();
                copy.name = shown.clone();
                self.renamed.insert(key.clone(), copy);
            }
            self.mark_for_reindex(&shown);
            self.shown.insert(shown, key.clone());
        }
    }
}

/// The database key of an entry: its name, a unit separator (never in a valid name), then
/// its lineage.
pub fn db_key(key: &EntryKey) -> String {
    format!("{}{KEY_SEPARATOR}{:016x}{}", key.0, key.1.ts.0, key.1.peer)
}

pub const KEY_SEPARATOR: char = '\u{1f}';

/// Largest track accepted from anyone: bounds what a peer's catalog entry can make us
/// allocate or wait for.
pub const MAX_TRACK_BYTES: u64 = 16 << 30;

/// Checks an entry that came from a peer before anything acts on it: its name, its size, its
/// tags and pusher.
pub fn validate_entry(e: &CatalogEntry) -> Result<(), String> {
    validate_name(&e.name)?;
    if e.size > MAX_TRACK_BYTES {
        return Err(format!("track of {} bytes is over the limit", e.size));
    }
    if e.lineage > e.version {
        return Err("its lineage is newer than its version".into());
    }
    if e.cover
        .is_some_and(|c| c.size == 0 || c.size > MAX_COVER_BYTES)
    {
        return Err("cover size out of range".into());
    }
    e.tags.check()?;
    if e.pushed_by.len() > 64
        || e.pushed_by
            .chars()
            .any(|c| c.is_control() || is_invisible_format(c))
    {
        return Err("pusher name is not a peer name".into());
    }
    Ok(())
}

/// Checks a blob a peer asks us to store: a track's (see [`validate_entry`]) or a cover's
/// (of at most [`MAX_COVER_BYTES`], named as [`CoverRef::as_blob_entry`] names it). Either
/// is checked against its address as it arrives.
pub fn validate_blob_entry(e: &CatalogEntry) -> Result<(), String> {
    let cover_form = e.codec == "cover"
        && e.size > 0
        && e.size <= MAX_COVER_BYTES as u64
        && e.name == format!("cover {}", short_hex(&e.hash));
    if cover_form {
        return Ok(());
    }
    validate_entry(e)
}

/// What a file hashes to, computed while it streams in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileDigest {
    /// BLAKE3 of the whole file: its address, and the root of its outboard.
    pub hash: [u8; 32],
    pub size: u64,
}

/// Hashes a file fed in arbitrary pieces, so a push can be hashed in the same pass that
/// reads it, without holding the file in memory.
#[derive(Clone, Debug, Default)]
pub struct FileHasher {
    whole: blake3::Hasher,
    size: u64,
}

impl FileHasher {
    pub fn update(&mut self, data: &[u8]) {
        self.whole.update(data);
        self.size += data.len() as u64;
    }

    pub fn finish(self) -> FileDigest {
        FileDigest {
            hash: *self.whole.finalize().as_bytes(),
            size: self.size,
        }
    }
}

/// An entry for tests elsewhere: valid, with no tags.
#[cfg(test)]
pub(crate) fn sample_entry(name: &str) -> CatalogEntry {
    let data = format!("audio of {name}").into_bytes();
    CatalogEntry {
        name: name.into(),
        hash: *blake3::hash(&data).as_bytes(),
        size: data.len() as u64,
        codec: "flac".into(),
        sample_rate: 44100,
        channels: 2,
        duration_s: 1.5,
        version: Version {
            ts: Timestamp::new(1, 0),
            peer: PeerId([1; 32]),
        },
        lineage: Version {
            ts: Timestamp::new(1, 0),
            peer: PeerId([1; 32]),
        },
        tombstone: false,
        tombstone_acks: BTreeSet::new(),
        tags: TrackTags::default(),
        cover: None,
        pushed_by: String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn peer(n: u8) -> PeerId {
        PeerId([n; 32])
    }

    fn v(ms: u64, by: u8) -> Version {
        Version {
            ts: Timestamp::new(ms, 0),
            peer: peer(by),
        }
    }

    /// A fresh push: its own lineage.
    fn entry(name: &str, ms: u64, by: u8) -> CatalogEntry {
        CatalogEntry {
            version: v(ms, by),
            lineage: v(ms, by),
            ..sample_entry(name)
        }
    }

    /// A later write (a replace) in the lineage of the push at `(lms, lby)`.
    fn rewrite(name: &str, (lms, lby): (u64, u8), ms: u64, by: u8) -> CatalogEntry {
        CatalogEntry {
            lineage: v(lms, lby),
            ..entry(name, ms, by)
        }
    }

    /// The removal of the push at `lineage`.
    fn tombstone(name: &str, lineage: (u64, u8), ms: u64, by: u8, acks: &[u8]) -> CatalogEntry {
        CatalogEntry {
            tombstone: true,
            tombstone_acks: acks.iter().map(|&a| peer(a)).collect(),
            ..rewrite(name, lineage, ms, by)
        }
    }

    fn shown_keys(c: &Catalog) -> Vec<(String, Version)> {
        c.live().map(|e| (e.name.clone(), e.lineage)).collect()
    }

    fn shown(c: &Catalog) -> Vec<(String, u64)> {
        c.live()
            .map(|e| (e.name.clone(), e.lineage.ts.ms()))
            .collect()
    }

    #[test]
    fn last_writer_wins_ties_by_peer() {
        let old = entry("song", 10, 1);
        let new = entry("song", 11, 0);
        assert_eq!(merge(Some(&old), &new).winner, new);
        assert!(merge(Some(&old), &new).changed);
        assert!(!merge(Some(&new), &old).changed);
        let tie_hi = entry("song", 10, 2);
        assert_eq!(merge(Some(&old), &tie_hi).winner, tie_hi);
        assert!(merge(None, &old).changed);
    }

    #[test]
    fn equal_versions_union_acks() {
        let a = tombstone("song", (5, 1), 10, 1, &[1, 2]);
        let b = tombstone("song", (5, 1), 10, 1, &[3]);
        let m = merge(Some(&a), &b);
        assert!(m.changed);
        assert_eq!(m.winner.tombstone_acks.len(), 3);
        assert!(!merge(Some(&m.winner), &a).changed);
    }

    #[test]
    fn tombstone_beats_older_write_of_its_lineage_and_a_new_push_lives_beside_it() {
        let mut c = Catalog::new();
        assert!(c.apply(entry("song", 10, 1)));
        assert!(c.apply(tombstone("song", (10, 1), 20, 2, &[])));
        assert_eq!(c.live().count(), 0);
        assert!(c.get("song").is_none());
        assert!(c.referenced_hashes().is_empty());
        assert!(
            !c.apply(rewrite("song", (10, 1), 15, 1)),
            "stale write must not resurrect"
        );
        assert!(c.apply(entry("song", 30, 1)));
        assert_eq!(shown(&c), vec![("song".into(), 30)]);
        assert_eq!(c.newest_version_at("song"), Some(v(30, 1)));
    }

    #[test]
    fn concurrent_pushes_of_one_name_both_stay_the_later_shown_with_a_suffix() {
        let mut c = Catalog::new();
        c.apply(entry("song", 20, 2));
        c.apply(entry("song", 10, 1));
        assert_eq!(
            shown(&c),
            vec![("song".into(), 10), ("song (2)".into(), 20)]
        );
        let later = c.get("song (2)").unwrap();
        assert_eq!((later.name.as_str(), later.version), ("song (2)", v(20, 2)));
        assert_eq!(c.stored("song (2)").unwrap().name, "song");
        assert!(
            c.all().all(|e| e.name == "song"),
            "the wire form keeps the pushed name"
        );
        // A replace of the later keeps its place and its suffix.
        c.apply(rewrite("song", (20, 2), 40, 3));
        assert_eq!(c.get("song (2)").unwrap().version, v(40, 3));
        // A track pushed as "song (2)" itself takes that name; the clash moves on to (3).
        c.apply(entry("song (2)", 50, 1));
        assert_eq!(
            shown(&c),
            vec![
                ("song".into(), 10),
                ("song (2)".into(), 50),
                ("song (3)".into(), 20)
            ]
        );
        // Removing the earlier gives the name to the one left.
        c.apply(tombstone("song", (10, 1), 60, 1, &[]));
        assert_eq!(
            shown(&c),
            vec![("song".into(), 20), ("song (2)".into(), 50)]
        );
        assert_eq!(c.get("song").unwrap().name, "song");
        c.apply(tombstone("song (2)", (50, 1), 70, 1, &[]));
        c.apply(entry("song", 80, 4));
        assert_eq!(
            shown(&c),
            vec![("song".into(), 20), ("song (2)".into(), 80)]
        );
    }

    #[test]
    fn prune_waits_for_every_member() {
        let mut c = Catalog::new();
        c.apply(tombstone("gone", (1, 1), 5, 1, &[1]));
        c.apply(entry("kept", 5, 1));
        let members: BTreeSet<_> = [peer(1), peer(2)].into();
        let gone = ("gone".to_string(), v(1, 1));
        assert!(c.prune_tombstones(&members).is_empty());
        assert!(c.ack_tombstone(&gone, peer(2)));
        assert!(!c.ack_tombstone(&gone, peer(2)));
        assert!(!c.ack_tombstone(&("kept".to_string(), v(5, 1)), peer(2)));
        assert!(c.prune_tombstones(&BTreeSet::new()).is_empty());
        assert_eq!(c.prune_tombstones(&members), vec![gone]);
        assert_eq!(c.all().count(), 1);
    }

    #[test]
    fn digest_tracks_versions_and_acks() {
        let mut a = Catalog::new();
        let mut b = Catalog::new();
        assert_eq!(a.digest(), b.digest());
        a.apply(tombstone("x", (1, 1), 1, 1, &[1]));
        assert_ne!(a.digest(), b.digest());
        b.apply(tombstone("x", (1, 1), 1, 1, &[]));
        assert_ne!(a.digest(), b.digest(), "a missing ack must show");
        b.apply(tombstone("x", (1, 1), 1, 1, &[1]));
        assert_eq!(a.digest(), b.digest());
        assert_eq!(a.max_version(), Some(v(1, 1)));
    }

    #[test]
    fn referenced_hashes_shared_blob_and_covers() {
        let mut c = Catalog::new();
        let a = entry("a", 1, 1);
        c.apply(a.clone());
        let cover = CoverRef {
            hash: [9; 32],
            size: 10,
        };
        c.apply(CatalogEntry {
            name: "b".into(),
            cover: Some(cover),
            ..a.clone()
        });
        c.apply(tombstone("a", (1, 1), 2, 1, &[]));
        assert_eq!(c.referenced_hashes(), [a.hash, cover.hash].into());
    }

    #[test]
    fn apply_refuses_bad_names() {
        let mut c = Catalog::new();
        assert!(!c.apply(entry("../etc/passwd", 1, 1)));
        assert!(c.all().next().is_none());
    }

    /// Small spaces on purpose: few names, clock values and peers make ties and conflicts
    /// common, which is where merge bugs hide.
    fn arb_entry() -> impl Strategy<Value = CatalogEntry> {
        (
            prop::sample::select(vec!["a", "b", "a (2)"]),
            0u64..3,
            0u8..2,
            0u64..3,
            0u8..3,
            any::<bool>(),
            prop::collection::btree_set(0u8..4, 0..3),
            0u8..2,
        )
            .prop_map(|(name, lms, lby, later, by, dead, acks, variant)| {
                let lineage = (lms, lby);
                let ms = lms + later;
                let by = if later == 0 { lby.max(by) } else { by };
                let mut e = if dead {
                    tombstone(name, lineage, ms, by, &acks.into_iter().collect::<Vec<_>>())
                } else {
                    rewrite(name, lineage, ms, by)
                };
                // Same version, different content: a peer that lost its clock state.
                e.size += variant as u64;
                e
            })
    }

    fn fold(entries: &[CatalogEntry]) -> Catalog {
        let mut c = Catalog::new();
        for e in entries {
            let before = c.clone();
            let changed = c.apply(e.clone());
            assert_eq!(
                changed,
                c != before,
                "apply must report exactly whether it changed"
            );
        }
        c
    }

    proptest! {
        #[test]
        fn merge_order_does_not_matter(
            (entries, shuffled) in prop::collection::vec(arb_entry(), 0..12)
                .prop_flat_map(|v| (Just(v.clone()), Just(v).prop_shuffle())),
            split in any::<prop::sample::Index>(),
        ) {
            let a = fold(&entries);
            // Commutativity: any arrival order.
            prop_assert_eq!(&a, &fold(&shuffled));
            // Idempotence: hearing everything again changes nothing.
            let mut again = a.clone();
            for e in &entries {
                prop_assert!(!again.apply(e.clone()));
            }
            prop_assert_eq!(&again, &a);
            // Associativity: two peers each fold a part, then exchange catalogs.
            let at = split.index(entries.len() + 1);
            let (left, right) = (fold(&entries[..at]), fold(&entries[at..]));
            let mut l = left.clone();
            for e in right.all() { l.apply(e.clone()); }
            let mut r = right.clone();
            for e in left.all() { r.apply(e.clone()); }
            prop_assert_eq!(&l, &a);
            prop_assert_eq!(&r, &a);
            prop_assert_eq!(l.digest(), a.digest());
            // The names shown are a function of the entries, not of their arrival order.
            prop_assert_eq!(shown_keys(&l), shown_keys(&a));
            prop_assert_eq!(shown_keys(&fold(&shuffled)), shown_keys(&a));
            // Applied in one batch, the same catalog and the same names shown.
            let mut batched = Catalog::new();
            batched.batch(|c| {
                for e in &shuffled {
                    c.apply(e.clone());
                }
            });
            prop_assert_eq!(&batched, &a);
            prop_assert_eq!(shown_keys(&batched), shown_keys(&a));
            prop_assert_eq!(batched.search("a"), a.search("a"));
        }

        /// Two catalogs reconciled range by range end equal, and the digest kept up to date
        /// entry by entry (applies, acks, prunes) equals the one computed from scratch.
        #[test]
        fn catalogs_converge_by_ranges(
            entries in prop::collection::vec(arb_entry(), 0..16),
            split in any::<prop::sample::Index>(),
            acks in prop::collection::vec((0u8..4, any::<prop::sample::Index>()), 0..4),
        ) {
            let at = split.index(entries.len() + 1);
            let (mut l, mut r) = (fold(&entries[..at]), fold(&entries[at..]));
            let keys: Vec<EntryKey> = l.all().map(|e| e.key()).collect();
            for (p, i) in acks {
                if !keys.is_empty() {
                    l.ack_tombstone(&keys[i.index(keys.len())], PeerId([p; 32]));
                }
            }
            l.prune_tombstones(&BTreeSet::from([PeerId([1; 32]), PeerId([2; 32])]));
            let mut scanned = RangeFp::default();
            l.scan(None, None, &mut |_, h| { scanned.add(h); true });
            prop_assert_eq!(l.total, scanned, "the total kept up to date is the scanned one");
            prop_assert_eq!(
                l.all().map(|e| (e.key(), entry_hash(e))).collect::<Vec<_>>(),
                l.hashes.iter().map(|(k, h)| (k.clone(), *h)).collect::<BTreeMap<_, _>>().into_iter().collect::<Vec<_>>(),
                "the cached entry hashes are the entries' own"
            );
            let lim = super::super::recon::Limits { ids_max: 2, split: 2, ..Default::default() };
            let mut msg = super::super::recon::start(&l);
            let mut to_r = true;
            for _ in 0..64 {
                let (me, other) = if to_r { (&mut r, &mut l) } else { (&mut l, &mut r) };
                let step = super::super::recon::respond(&*me, &msg, &lim).map_err(|e| TestCaseError::fail(e.to_string()))?;
                let mut out: Vec<CatalogEntry> = step.send_keys.iter().filter_map(|k| me.by_key(k).cloned()).collect();
                for (lo, hi) in &step.send_ranges {
                    me.scan(lo.as_ref(), hi.as_ref(), &mut |k, _| { out.extend(me.by_key(k).cloned()); true });
                }
                for e in out { other.apply(e); }
                if step.reply.is_empty() { break; }
                msg = step.reply;
                to_r = !to_r;
            }
            prop_assert_eq!(l.digest(), r.digest());
            prop_assert_eq!(&l, &r);
        }
    }
}
