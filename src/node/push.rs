//! Pushing a track: its blob and cover to R peers, then its catalog entry, then a check with
//! every live peer so the pusher knows the name the track ends up shown under.

use super::import::{PreparedFile, changed_since};
use super::storage::utc_minute;
use super::{Node, now_ms};
use crate::id::PeerId;
use crate::mesh::placement;
use crate::net::frame;
use crate::net::msg::Msg;
use crate::store::catalog::{
    CatalogEntry, CoverRef, EntryKey, MAX_COVER_BYTES, Version, validate_entry,
};
use crate::store::track_name::validate_name;
use anyhow::{Result, anyhow, bail};
use std::collections::BTreeSet;
use std::io::Read;
use std::path::Path;
use std::time::Duration;
use tracing::warn;

/// How long a peer has to answer a pusher's check; one that does not is skipped (it is
/// dead or far behind, and it will merge the entry when anti-entropy reaches it).
const CHECK_TIMEOUT: Duration = Duration::from_secs(5);

/// What a push did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pushed {
    /// The peers holding the track.
    pub holders: Vec<PeerId>,
    /// The name the track is shown under: the one pushed, or `NAME (2)` when another peer
    /// pushed the same name at the same time and its push orders first.
    pub name: String,
    /// The same content was pushed under the same name at the same time and that push
    /// orders first: this one was withdrawn and `name` is the other's.
    pub already_there: bool,
}

impl Node {
    /// A push to a name that exists says whose track it would replace.
    pub fn refuse_existing(&self, name: &str) -> Result<()> {
        let Some(e) = self.state().catalog.get(name).cloned() else {
            return Ok(());
        };
        let who = if e.pushed_by.is_empty() {
            self.peer_name(&e.version.peer)
        } else {
            e.pushed_by.clone()
        };
        bail!(
            "a track named '{name}' exists (pushed by {who} on {}); push with --replace to replace it",
            utc_minute(e.version.ts.ms())
        )
    }

    /// Store FILE under a new NAME on R peers; returns the ids that hold it.
    pub async fn push(
        &self,
        name: &str,
        file: &Path,
        progress: impl Fn(u64, u64) + Send + Sync,
    ) -> Result<Vec<PeerId>> {
        Ok(self.push_with(name, file, false, progress).await?.holders)
    }

    /// Store FILE under NAME on R peers; a NAME that exists is refused unless `replace`.
    pub async fn push_with(
        &self,
        name: &str,
        file: &Path,
        replace: bool,
        progress: impl Fn(u64, u64) + Send + Sync,
    ) -> Result<Pushed> {
        validate_name(name).map_err(|e| anyhow!(e))?;
        if !replace {
            self.refuse_existing(name)?;
        }
        let prepared = super::import::prepare_file(file).await?;
        for w in &prepared.tags.warnings {
            warn!("{}: {w}", file.display());
        }
        let mode = if replace {
            PushMode::Replace
        } else {
            PushMode::New
        };
        self.store_prepared(name, prepared, mode, progress).await
    }

    /// Stores a file [`prepare_file`](super::prepare_file) read under NAME on R peers, as
    /// `mode` says.
    pub async fn store_prepared(
        &self,
        name: &str,
        prepared: PreparedFile,
        mode: PushMode,
        progress: impl Fn(u64, u64) + Send + Sync,
    ) -> Result<Pushed> {
        let me = self.id();
        let replaced = (mode == PushMode::Replace)
            .then(|| self.state().catalog.stored(name).map(|e| e.key()))
            .flatten();
        // The version is set again when the entry is applied; this one only marks the
        // transfer so holders can tell when the catalog has caught up with it.
        let provisional = Version {
            ts: self.state().hlc.now(now_ms()),
            peer: me,
        };
        let PreparedFile {
            path,
            info,
            digest,
            tags,
            modified,
        } = prepared;
        let mut entry = CatalogEntry {
            name: replaced.as_ref().map_or(name, |k| k.0.as_str()).to_string(),
            hash: digest.hash,
            size: digest.size,
            codec: info.codec.clone(),
            sample_rate: info.sample_rate,
            channels: info.channels,
            duration_s: info.duration_s,
            version: provisional,
            lineage: replaced.as_ref().map_or(provisional, |k| k.1),
            tombstone: false,
            tombstone_acks: BTreeSet::new(),
            tags: tags.tags,
            cover: None,
            pushed_by: self.name().to_string(),
        };
        let confirmed = match self
            .store_blob(&entry, BlobSource::File(&path), &progress)
            .await
        {
            Ok(c) => c,
            // Every copy is checked against the hash, so a file edited since it was read is
            // refused everywhere; say so rather than blame the peers.
            Err(_) if changed_since(&path, entry.size, modified) => bail!(
                "{} changed while it was being stored; nothing was kept, push it again",
                path.display()
            ),
            Err(e) => return Err(e),
        };
        if let Some(cover) = tags.cover.filter(|c| !c.data.is_empty()) {
            match self.store_cover(&cover.data).await {
                Ok(c) => entry.cover = Some(c),
                Err(e) => warn!("{name}: cover not stored: {e:#}"),
            }
        }
        {
            let mut st = self.state();
            for p in &confirmed {
                if *p != me {
                    st.holdings.add(*p, entry.hash);
                }
            }
        }
        let mut key = self.apply_own_write(entry, replaced.is_none())?;
        let mut shown = self.settle_name(&key).await;
        // Rarely more than one round (only if the suffixed name is itself pushed meanwhile).
        for _ in 0..4 {
            // The same content pushed at the same time under the same name (two friends
            // importing one folder), or for an import under any name: one track, not two;
            // ours goes, the earlier stays. The check's answers carry such entries.
            let any_name = mode == PushMode::Import;
            if (any_name || shown != key.0)
                && let Some(earlier) = self.earlier_same_content(&key, any_name)
            {
                self.withdraw_own(&key);
                return Ok(Pushed {
                    holders: confirmed,
                    name: earlier,
                    already_there: true,
                });
            }
            if shown == key.0 {
                break;
            }
            // Pushed at the same time as an earlier push of the name: make the suffix this
            // track's own name, so it stays what its pusher was told even after the other
            // goes.
            key = self.rename_own(&key, &shown)?;
            shown = self.settle_name(&key).await;
        }
        Ok(Pushed {
            holders: confirmed,
            name: shown,
            already_there: false,
        })
    }

    /// Sends a blob to the R peers placement ranks first (this one included when it is among
    /// them); returns the peers that confirmed it. Fewer than R is a warning, none an error.
    async fn store_blob(
        &self,
        entry: &CatalogEntry,
        source: BlobSource<'_>,
        progress: &(impl Fn(u64, u64) + Send + Sync),
    ) -> Result<Vec<PeerId>> {
        let name = &entry.name;
        let me = self.id();
        let r = self.inner.cfg.replicas.max(1);
        let candidates = self.placement_candidates();
        let alive = self.alive_peers();
        let full = self.full_peers();
        let ranked: Vec<PeerId> = placement::rank(&entry.hash, &candidates)
            .into_iter()
            .filter(|p| alive.contains(p) && !full.contains(p))
            .collect();
        let mut confirmed: Vec<PeerId> = Vec::new();
        let mut errors: Vec<String> = Vec::new();
        let mut next = 0;
        while confirmed.len() < r && next < ranked.len() {
            let want = r - confirmed.len();
            let batch: Vec<PeerId> = ranked[next..(next + want).min(ranked.len())].to_vec();
            next += batch.len();
            let (remote, local): (Vec<PeerId>, Vec<PeerId>) =
                batch.into_iter().partition(|p| *p != me);
            if !local.is_empty() {
                match self.store_local(entry, source).await {
                    Ok(()) => confirmed.push(me),
                    Err(e) => errors.push(format!("{}: {e:#}", self.name())),
                }
            }
            if !remote.is_empty() {
                let (stored, failed) = match source {
                    BlobSource::File(file) => self.send_chain(entry, remote, file, progress).await,
                    BlobSource::Bytes(bytes) => {
                        self.send_chain_from(entry, remote, bytes, progress).await
                    }
                };
                confirmed.extend(stored);
                errors.extend(
                    failed
                        .into_iter()
                        .map(|(p, e)| format!("{}: {e}", self.peer_name(&p))),
                );
            }
        }
        if confirmed.is_empty() {
            bail!("no peer could store {name}: {}", errors.join("; "));
        }
        if confirmed.len() < r {
            warn!(
                "{name} stored on {} of {r} peers: {}",
                confirmed.len(),
                errors.join("; ")
            );
        }
        Ok(confirmed)
    }

    /// Stores a cover picture as its own blob, once, on the R peers its hash places it on.
    async fn store_cover(&self, data: &[u8]) -> Result<CoverRef> {
        if data.len() > MAX_COVER_BYTES as usize {
            bail!("cover of {} bytes is over the limit", data.len());
        }
        let cover = CoverRef {
            hash: *blake3::hash(data).as_bytes(),
            size: data.len() as u32,
        };
        let entry = cover.as_blob_entry();
        let r = self.inner.cfg.replicas.max(1);
        if self.holders_of(&cover.hash).len() >= r {
            return Ok(cover);
        }
        self.store_blob(&entry, BlobSource::Bytes(data), &|_, _| {})
            .await?;
        Ok(cover)
    }

    async fn store_local(&self, entry: &CatalogEntry, source: BlobSource<'_>) -> Result<()> {
        let (hash, size) = (entry.hash, entry.size);
        if !self.inner.blobs.has(&hash) {
            let node = self.clone();
            let source = source.owned();
            tokio::task::spawn_blocking(move || -> Result<()> {
                let mut w = node.inner.blobs.begin(&hash, size)?;
                match source {
                    OwnedSource::File(path) => {
                        // The writer's commit checks the bytes against `hash`: a file
                        // changed since it was hashed is refused here too.
                        let mut f = std::fs::File::open(&path)?;
                        let mut buf = vec![0u8; 1 << 20];
                        loop {
                            let n = f.read(&mut buf)?;
                            if n == 0 {
                                break;
                            }
                            w.write(&buf[..n])?;
                        }
                    }
                    OwnedSource::Bytes(bytes) => w.write(&bytes)?,
                }
                w.commit()
            })
            .await??;
        }
        self.note_held(entry);
        Ok(())
    }

    /// Applies a write of this peer's, its version taken under the same lock that applies
    /// it: a peer's check answered in between would otherwise miss a push that orders before
    /// the checker's (the basis of [`Node::settle_name`]). A fresh push starts its lineage.
    fn apply_own_write(&self, mut entry: CatalogEntry, fresh: bool) -> Result<EntryKey> {
        let (key, stored) = {
            let mut st = self.state();
            entry.version = Version {
                ts: st.hlc.now(now_ms()),
                peer: self.id(),
            };
            if fresh {
                entry.lineage = entry.version;
            }
            let key = entry.key();
            st.catalog.apply(entry);
            let stored = st.catalog.by_key(&key).cloned();
            (key, stored)
        };
        let stored = stored.ok_or_else(|| anyhow!("the catalog refused '{}'", key.0))?;
        self.publish_own(vec![stored]);
        Ok(key)
    }

    /// The shown name of an earlier live push of our entry's content, under our entry's
    /// name or, with `any_name`, under any.
    fn earlier_same_content(&self, key: &EntryKey, any_name: bool) -> Option<String> {
        let st = self.state();
        let ours = st.catalog.by_key(key)?;
        let earlier = |(k, e): &(&EntryKey, &CatalogEntry)| {
            k.1 < key.1 && !e.tombstone && e.hash == ours.hash
        };
        let found = if any_name {
            st.catalog
                .live_with_hash(&ours.hash)
                .filter(|k| k.1 < key.1)
                .min_by_key(|k| k.1)?
        } else {
            st.catalog.lineages(&key.0).find(earlier)?.0
        };
        st.catalog.shown_name(found).map(str::to_string)
    }

    /// Removes our own entry at `key`.
    fn withdraw_own(&self, key: &EntryKey) {
        let me = self.id();
        let gone = {
            let mut st = self.state();
            let Some(old) = st.catalog.by_key(key).cloned() else {
                return;
            };
            let gone = old.removed(Version {
                ts: st.hlc.now(now_ms()),
                peer: me,
            });
            st.catalog.apply(gone);
            st.catalog.by_key(key).cloned()
        };
        self.publish_own(gone.into_iter().collect());
    }

    /// Moves our entry at `key` to a new lineage under `to`, and removes it at `key`, in one
    /// step under the lock.
    fn rename_own(&self, key: &EntryKey, to: &str) -> Result<EntryKey> {
        let me = self.id();
        let (new_key, writes) = {
            let mut st = self.state();
            let Some(old) = st.catalog.by_key(key).cloned() else {
                bail!("'{}' vanished while it was being renamed", key.0);
            };
            let version = Version {
                ts: st.hlc.now(now_ms()),
                peer: me,
            };
            let moved = CatalogEntry {
                name: to.to_string(),
                version,
                lineage: version,
                ..old.clone()
            };
            let gone = old.removed(Version {
                ts: st.hlc.now(now_ms()),
                peer: me,
            });
            let new_key = moved.key();
            st.catalog.apply(moved);
            st.catalog.apply(gone);
            let writes: Vec<CatalogEntry> = [&new_key, key]
                .into_iter()
                .filter_map(|k| st.catalog.by_key(k).cloned())
                .collect();
            (new_key, writes)
        };
        self.publish_own(writes);
        Ok(new_key)
    }

    /// Asks every live peer to merge our new entry and answer with what it holds under the
    /// name, then reads our entry's shown name. Any push that orders before ours was applied
    /// by its pusher before that pusher merged ours (its clock would otherwise order it
    /// after), so it is in the answers: the name is final for every peer that answered.
    async fn settle_name(&self, key: &EntryKey) -> String {
        let Some(entry) = self.state().catalog.by_key(key).cloned() else {
            return key.0.clone();
        };
        let me = self.id();
        let mut checks = tokio::task::JoinSet::new();
        for peer in self.alive_peers().into_iter().filter(|p| *p != me) {
            let node = self.clone();
            let entry = entry.clone();
            checks.spawn(async move {
                let answer =
                    tokio::time::timeout(CHECK_TIMEOUT, node.check_entry_with(peer, entry)).await;
                (peer, answer)
            });
        }
        while let Some(done) = checks.join_next().await {
            match done {
                Ok((peer, Ok(Ok(entries)))) => self.apply_catalog(entries, Some(peer)),
                Ok((peer, Ok(Err(e)))) => {
                    warn!("{} did not check {}: {e:#}", self.peer_name(&peer), key.0)
                }
                Ok((peer, Err(_))) => warn!(
                    "{} did not check {} within {CHECK_TIMEOUT:?}",
                    self.peer_name(&peer),
                    key.0
                ),
                Err(_) => {}
            }
        }
        self.state()
            .catalog
            .shown_name(key)
            .unwrap_or(&key.0)
            .to_string()
    }

    async fn check_entry_with(
        &self,
        peer: PeerId,
        entry: CatalogEntry,
    ) -> Result<Vec<CatalogEntry>> {
        let conn = self.link_conn(&peer)?;
        let (mut send, mut recv) = conn.open_bi().await?;
        frame::write_frame(
            &mut send,
            &Msg::CatalogCheck {
                entry: Box::new(entry),
            },
        )
        .await?;
        let _ = send.finish();
        match frame::read_frame(&mut recv).await? {
            Msg::Catalog(entries) => Ok(entries),
            Msg::Failed { reason } => bail!("{reason}"),
            other => bail!("unexpected {}", other.name()),
        }
    }

    /// The other side of [`Node::settle_name`]: merge the pusher's entry, answer with every
    /// entry under its name.
    pub(crate) async fn serve_catalog_check(
        &self,
        peer: PeerId,
        entry: CatalogEntry,
        send: &mut quinn::SendStream,
    ) -> Result<()> {
        validate_entry(&entry).map_err(|e| anyhow!(e))?;
        let (name, hash) = (entry.name.clone(), entry.hash);
        self.apply_catalog(vec![entry], Some(peer));
        // Also what holds the same content under other names, for an import's check.
        let entries: Vec<CatalogEntry> = {
            let st = self.state();
            let same_content = st
                .catalog
                .live_with_hash(&hash)
                .filter(|k| k.0 != name)
                .filter_map(|k| st.catalog.by_key(k));
            st.catalog
                .lineages(&name)
                .map(|(_, e)| e)
                .chain(same_content)
                .cloned()
                .collect()
        };
        // One frame's worth (the name's own entries come first): a content stored under
        // thousands of names must not make an answer the pusher refuses to read.
        let entries = super::catalog_sync::batches(entries)
            .into_iter()
            .next()
            .unwrap_or_default();
        frame::write_frame(send, &Msg::Catalog(entries)).await?;
        let _ = send.finish();
        Ok(())
    }
}

/// What a push does with the name it is given.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PushMode {
    /// A new track (a name already shown is refused before, by the caller).
    New,
    /// Replaces the track shown under the name, which keeps its place and lineage.
    Replace,
    /// A new track from an import: content the network already has is not stored twice.
    Import,
}

/// Where a blob's bytes come from.
#[derive(Clone, Copy)]
enum BlobSource<'a> {
    File(&'a Path),
    Bytes(&'a [u8]),
}

enum OwnedSource {
    File(std::path::PathBuf),
    Bytes(Vec<u8>),
}

impl BlobSource<'_> {
    fn owned(self) -> OwnedSource {
        match self {
            BlobSource::File(p) => OwnedSource::File(p.to_path_buf()),
            BlobSource::Bytes(b) => OwnedSource::Bytes(b.to_vec()),
        }
    }
}
