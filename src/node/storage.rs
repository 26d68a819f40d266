//! The key-value store as users see it: ls, get, remove; and which blobs this peer holds.

use super::{Node, now_ms};
use crate::id::PeerId;
use crate::mesh::liveness::PeerState;
use crate::mesh::placement::Candidate;
use crate::store::blobs::{Hash, hex};
use crate::store::catalog::{CatalogEntry, Version};
use crate::store::library;
use anyhow::{Context, Result, anyhow, bail};
use serde::Serialize;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tracing::warn;

/// How long a freshly stored blob is safe from repair while its catalog entry travels.
const PROTECT_FOR: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Serialize)]
pub struct Listing {
    pub name: String,
    pub size: u64,
    pub duration_s: f64,
    pub codec: String,
    pub hash: String,
    pub replicas: usize,
    pub holders: Vec<String>,
    pub pushed_by: Option<String>,
    pub title: Option<String>,
    pub artist: Option<String>,
    pub album_artist: Option<String>,
    pub album: Option<String>,
    pub track: Option<u32>,
    pub disc: Option<u32>,
    pub year: Option<u16>,
    pub genre: Option<String>,
    pub cover: Option<String>,
}

/// What `ls` lists: tracks whose words start with the query's words, of an artist, of an
/// album (each optional).
#[derive(Debug, Clone, Default)]
pub struct LsFilter {
    pub query: String,
    pub artist: Option<String>,
    pub album: Option<String>,
}

/// The digest of a holdings set, as its owner and every peer that mirrors it compute it.
pub fn extension_for(codec: &str) -> &'static str {
    match codec {
        "mp3" => "mp3",
        "flac" => "flac",
        "vorbis" => "ogg",
        "aac" => "m4a",
        "wav" => "wav",
        _ => "bin",
    }
}

impl Node {
    /// Peers that count for placement: alive ones, and those silent for less than
    /// `--repair-after` (a laptop asleep is not a lost disk). Never peers that left.
    pub(crate) fn placement_candidates(&self) -> Vec<Candidate> {
        let st = self.state();
        let now = Instant::now();
        let me = self.id();
        st.table
            .records()
            .filter(|r| !r.left)
            .filter(|r| {
                r.id == me && !st.leaving
                    || match st.live.state(&r.id) {
                        Some(PeerState::Alive) => true,
                        Some(PeerState::Suspect) | Some(PeerState::Dead) => st
                            .live
                            .silent_for(&r.id, now)
                            .is_some_and(|d| d < self.inner.cfg.repair_after),
                        _ => false,
                    }
            })
            .map(|r| Candidate {
                id: r.id,
                capacity: r.capacity,
            })
            .collect()
    }

    pub(crate) fn alive_peers(&self) -> BTreeSet<PeerId> {
        let st = self.state();
        let now = Instant::now();
        let mut out: BTreeSet<PeerId> = st
            .links
            .keys()
            // One we hear only through friends has no link to carry a transfer.
            .filter(|id| st.live.state(id) == Some(PeerState::Alive) && !st.live.indirect(id, now))
            .copied()
            .collect();
        out.insert(self.id());
        out
    }

    /// Who holds each blob, as far as we know (ourselves included): a copy of everything,
    /// for the rare passes that need it all (a full repair pass, a hand-off).
    pub(crate) fn known_holders(&self) -> crate::store::repair::KnownHolders {
        let st = self.state();
        let mut out: crate::store::repair::KnownHolders = st
            .holdings
            .all()
            .map(|(h, peers)| (*h, peers.to_vec()))
            .collect();
        let me = self.id();
        for h in &st.held {
            let peers = out.entry(*h).or_default();
            if let Err(at) = peers.binary_search(&me) {
                peers.insert(at, me);
            }
        }
        out
    }

    /// Who holds `hash`, as far as we know (ourselves included).
    pub(crate) fn holders_of(&self, hash: &Hash) -> BTreeSet<PeerId> {
        let st = self.state();
        let mut out: BTreeSet<PeerId> = st
            .holdings
            .holders(hash)
            .unwrap_or_default()
            .iter()
            .copied()
            .collect();
        if st.held.contains(hash) {
            out.insert(self.id());
        }
        out
    }

    /// Tracks in the catalog (not removed).
    pub fn track_count(&self) -> usize {
        self.state().catalog.live().count()
    }

    pub fn ls(&self) -> Vec<Listing> {
        self.ls_filtered(&LsFilter::default())
    }

    /// The tracks `filter` selects, answered from the word index of the local catalog.
    pub fn ls_filtered(&self, filter: &LsFilter) -> Vec<Listing> {
        let alive = self.alive_peers();
        let me = self.id();
        let st = self.state();
        let names = st.catalog.search(&filter.query);
        // The wanted artist and album are folded once, not once per track.
        let artist = filter.artist.as_deref().map(library::fold);
        let album = filter.album.as_deref().map(library::fold);
        names
            .iter()
            .filter_map(|n| st.catalog.get(n))
            .filter(|e| !e.tombstone)
            .filter(|e| artist.as_deref().is_none_or(|a| library::by_artist(e, a)))
            .filter(|e| album.as_deref().is_none_or(|a| library::on_album(e, a)))
            .map(|e| {
                let mut live: BTreeSet<PeerId> = st
                    .holdings
                    .holders(&e.hash)
                    .into_iter()
                    .flatten()
                    .filter(|p| alive.contains(p))
                    .copied()
                    .collect();
                if st.held.contains(&e.hash) {
                    live.insert(me);
                }
                let hs: Vec<String> = live.iter().map(|p| p.to_string()).collect();
                Listing {
                    name: e.name.clone(),
                    size: e.size,
                    duration_s: e.duration_s,
                    codec: e.codec.clone(),
                    hash: hex(&e.hash),
                    replicas: hs.len(),
                    holders: hs,
                    pushed_by: (!e.pushed_by.is_empty()).then(|| e.pushed_by.clone()),
                    title: e.tags.title.clone(),
                    artist: e.tags.artist.clone(),
                    album_artist: e.tags.album_artist.clone(),
                    album: e.tags.album.clone(),
                    track: e.tags.track,
                    disc: e.tags.disc,
                    year: e.tags.year,
                    genre: e.tags.genre.clone(),
                    cover: e.cover.map(|c| hex(&c.hash)),
                }
            })
            .collect()
    }

    /// The catalog's generation: it changes whenever the catalog does.
    pub fn catalog_generation(&self) -> u64 {
        self.state().catalog.generation()
    }

    /// `f` of every live track (under its shown name), with the generation they are of.
    pub fn map_live<T>(&self, f: impl FnMut(&CatalogEntry) -> T) -> (u64, Vec<T>) {
        let st = self.state();
        (st.catalog.generation(), st.catalog.live().map(f).collect())
    }

    /// Artists of the local catalog.
    pub fn artists(&self) -> Vec<library::ArtistSummary> {
        library::artists(self.state().catalog.live())
    }

    /// Albums of the local catalog, optionally of one artist.
    pub fn albums(&self, artist: Option<&str>) -> Vec<library::AlbumSummary> {
        library::albums(self.state().catalog.live(), artist)
    }

    /// A live track's tags and duration, without copying its chunk hashes (what a
    /// now-playing line asks for several times a second).
    pub fn track_tags(&self, name: &str) -> Option<(crate::store::track_tags::TrackTags, f64)> {
        let st = self.state();
        let e = st.catalog.get(name).filter(|e| !e.tombstone)?;
        Some((e.tags.clone(), e.duration_s))
    }

    /// The live track shown under `name`, carrying that name.
    pub fn entry(&self, name: &str) -> Result<CatalogEntry> {
        self.state()
            .catalog
            .get(name)
            .cloned()
            .ok_or_else(|| no_such_track(name))
    }

    /// The live track shown under `name` as it was pushed: what a write about it starts from.
    fn stored_entry(&self, name: &str) -> Result<CatalogEntry> {
        self.state()
            .catalog
            .stored(name)
            .cloned()
            .ok_or_else(|| no_such_track(name))
    }

    pub(crate) fn note_held(&self, entry: &CatalogEntry) {
        let newly;
        {
            let mut st = self.state();
            newly = st.held.insert(entry.hash);
            if newly {
                st.held_fp.add(&entry.hash);
            }
            st.repair_dirty.insert(entry.hash);
            st.corrupt_dropped.remove(&entry.hash);
            st.protected.insert(
                entry.hash,
                (
                    Instant::now() + PROTECT_FOR,
                    entry.name.clone(),
                    entry.version,
                ),
            );
        }
        if newly {
            self.held_changed(Some(entry.hash), None);
        }
    }

    /// A chunk did not match: drop the blob only if the whole file is wrong too, so a peer's
    /// bogus chunk list cannot make us delete a good copy.
    pub(crate) fn drop_blob_if_corrupt(&self, hash: &Hash) {
        let node = self.clone();
        let hash = *hash;
        tokio::task::spawn_blocking(move || {
            // Building the outboard anew reads the whole blob against its address: a good
            // blob whose outboard rotted gets a good one back and stays.
            if let Ok(None) = node.inner.blobs.build_outboard(&hash) {
                node.drop_corrupt_blob(&hash);
            }
        });
    }

    /// What a blob is to a user: the tracks that use it (`'song'`), else its hash.
    pub(crate) fn blob_label(&self, hash: &Hash) -> String {
        let names: Vec<String> = self
            .state()
            .catalog
            .live()
            .filter(|e| e.hash == *hash)
            .map(|e| format!("'{}'", e.name))
            .collect();
        if names.is_empty() {
            format!("blob {}", &hex(hash)[..16])
        } else {
            names.join(", ")
        }
    }

    /// Our copy does not match its hash: delete it, and tell askers it was corrupt.
    pub(crate) fn drop_corrupt_blob(&self, hash: &Hash) {
        warn!(
            "our copy of {} is corrupt; deleting it",
            self.blob_label(hash)
        );
        self.state().corrupt_dropped.insert(*hash);
        self.drop_blob(hash);
    }

    pub(crate) fn drop_blob(&self, hash: &Hash) {
        self.inner.blobs.remove(hash);
        let removed = {
            let mut st = self.state();
            st.repair_dirty.insert(*hash);
            let removed = st.held.remove(hash);
            if removed {
                st.held_fp.remove(hash);
            }
            removed
        };
        if removed {
            self.held_changed(None, Some(*hash));
        }
    }

    /// Download NAME into `out` (or ./NAME.<ext> under `cwd`; a directory means
    /// DIR/NAME.<ext>); byte-identical, verified. A regular file is replaced atomically (temp
    /// file, fsync, rename; the temp file is removed on every failure, and when the caller is
    /// cancelled); a device or FIFO is written into.
    pub async fn get(&self, name: &str, out: Option<&Path>, cwd: &Path) -> Result<PathBuf> {
        let entry = self.entry(name)?;
        let default_name = format!("{name}.{}", extension_for(&entry.codec));
        let mut target = match out {
            Some(p) if p.is_absolute() => p.to_path_buf(),
            Some(p) => cwd.join(p),
            None => cwd.join(&default_name),
        };
        if target.is_dir() {
            target = target.join(&default_name);
        }
        let special = std::fs::metadata(&target).is_ok_and(|m| !m.is_file() && !m.is_dir());
        let (file, tmp) = if special {
            // Opening a FIFO waits for its reader: not on a runtime thread.
            let path = target.clone();
            let f = tokio::task::spawn_blocking(move || {
                std::fs::OpenOptions::new().write(true).open(&path)
            })
            .await
            .map_err(|e| anyhow!("cannot open {}: {e}", target.display()))?
            .with_context(|| format!("cannot write {}", target.display()))?;
            (f, None)
        } else {
            let tmp = crate::store::fsutil::temp_beside(&target);
            let f = crate::store::fsutil::create_new_private(&tmp)?;
            (f, Some(TempFile(Some(tmp))))
        };
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<u8>>(16);
        let writer = tokio::task::spawn_blocking(move || -> Result<()> {
            use std::io::Write;
            if special {
                let mut f = file;
                while let Some(chunk) = rx.blocking_recv() {
                    f.write_all(&chunk)?;
                }
                return Ok(());
            }
            // Around the page cache: the closing fsync does not wait for the whole file.
            let mut f = crate::store::direct_write::DirectWriter::new(file);
            while let Some(chunk) = rx.blocking_recv() {
                f.write_all(&chunk)?;
            }
            f.finish()?.sync_all()?;
            Ok(())
        });
        let fetched = self.fetch_verified(&entry, tx, true, |_| {}).await;
        let written = writer
            .await
            .map_err(|e| anyhow!("writer failed: {e}"))
            .and_then(|r| r.with_context(|| format!("cannot write {}", target.display())));
        fetched?;
        written?;
        if let Some(tmp) = tmp {
            tmp.persist(&target)?;
        }
        Ok(target)
    }

    /// Download NAME into `tx` chunk by chunk, verified (for `get -o -`).
    pub async fn get_into(&self, name: &str, tx: tokio::sync::mpsc::Sender<Vec<u8>>) -> Result<()> {
        let entry = self.entry(name)?;
        self.fetch_verified(&entry, tx, true, |_| {}).await?;
        Ok(())
    }

    /// The cover picture of the track shown under `name`, fetched and checked; None when the
    /// track has none.
    pub async fn cover(&self, name: &str) -> Result<Option<Vec<u8>>> {
        let Some(cover) = self.entry(name)?.cover else {
            return Ok(None);
        };
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<u8>>(4);
        let node = self.clone();
        let fetch = tokio::spawn(async move {
            node.fetch_verified(&cover.as_blob_entry(), tx, true, |_| {})
                .await
        });
        let mut out = Vec::with_capacity(cover.size as usize);
        while let Some(piece) = rx.recv().await {
            out.extend_from_slice(&piece);
        }
        fetch.await??;
        Ok(Some(out))
    }

    pub async fn remove(&self, name: &str) -> Result<()> {
        self.remove_with(name, true).await
    }

    /// The name of the peer that pushed NAME, when it is not this one.
    pub fn pushed_by_another(&self, name: &str) -> Option<String> {
        let entry = self.entry(name).ok()?;
        let mine = entry.version.peer == self.id()
            || (!entry.pushed_by.is_empty() && entry.pushed_by == self.name());
        if mine {
            None
        } else if entry.pushed_by.is_empty() {
            Some(self.peer_name(&entry.version.peer))
        } else {
            Some(entry.pushed_by)
        }
    }

    /// Deletes NAME network-wide; a track another peer pushed only with `force`.
    pub async fn remove_with(&self, name: &str, force: bool) -> Result<()> {
        let entry = self.stored_entry(name)?;
        if !force && let Some(who) = self.pushed_by_another(name) {
            bail!("'{name}' was pushed by {who}; remove it with --force");
        }
        let entry = entry.removed(Version {
            ts: self.state().hlc.now(now_ms()),
            peer: self.id(),
        });
        let hash = entry.hash;
        self.apply_catalog(vec![entry], None);
        let still_used = self.state().catalog.live_with_hash(&hash).next().is_some();
        if !still_used && self.inner.blobs.has(&hash) {
            self.state().protected.remove(&hash);
            self.drop_blob(&hash);
        }
        Ok(())
    }
}

/// A temp file that is removed unless it is renamed into place, also when the future that
/// owns it is dropped (a cancelled `get`).
struct TempFile(Option<PathBuf>);

impl TempFile {
    fn persist(mut self, target: &Path) -> Result<()> {
        if let Some(tmp) = self.0.take() {
            if let Err(e) = std::fs::rename(&tmp, target) {
                let _ = std::fs::remove_file(&tmp);
                return Err(e).with_context(|| format!("cannot write {}", target.display()));
            }
            crate::store::fsutil::sync_dir(target);
        }
        Ok(())
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if let Some(tmp) = self.0.take() {
            let _ = std::fs::remove_file(tmp);
        }
    }
}

/// `2026-12-01 23:10 UTC` for a time in ms since the epoch.
fn no_such_track(name: &str) -> anyhow::Error {
    anyhow!("no track named '{name}' in the network (see `ls`)")
}

pub(super) fn utc_minute(ms: u64) -> String {
    let secs = ms / 1000;
    let (y, mo, d) = civil_from_days((secs / 86_400) as i64);
    let (h, m) = (secs / 3600 % 24, secs / 60 % 60);
    format!("{y:04}-{mo:02}-{d:02} {h:02}:{m:02} UTC")
}

/// (year, month, day) of a day counted from 1970-01-01 (Howard Hinnant's algorithm).
pub fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let mo = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(mo <= 2), mo, d)
}

#[cfg(test)]
mod tests {
    #[test]
    fn formats_utc_minutes() {
        assert_eq!(super::utc_minute(0), "1970-01-01 00:00 UTC");
        assert_eq!(super::utc_minute(1_796_166_600_000), "2026-12-01 23:10 UTC");
        assert_eq!(super::utc_minute(951_782_400_000), "2000-02-29 00:00 UTC");
    }
}
