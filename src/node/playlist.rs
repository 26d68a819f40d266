//! Playlists on a peer: edits become items applied here, stored, and sent to every peer.

use super::{Node, now_ms};
use crate::id::PeerId;
use crate::net::msg::Msg;
use crate::store::catalog::Version;
use crate::store::playlists::{PlaylistItem, PlaylistView, Playlists};
use crate::store::track_name::validate_name;
use anyhow::{Result, anyhow, bail};
use tracing::warn;

/// Tracks one `playlist add` may append: a whole library, not a request of megabytes whose
/// keys would hold the state lock.
const MAX_TRACKS_PER_ADD: usize = 100_000;

impl Node {
    /// Every playlist, by name.
    pub fn playlists(&self) -> Vec<PlaylistView> {
        let st = self.state();
        st.playlists
            .names()
            .iter()
            .map(|n| st.playlists.view(n, |t| st.catalog.get(t).is_some()))
            .collect()
    }

    /// One playlist, its entries in order.
    pub fn playlist(&self, name: &str) -> Result<PlaylistView> {
        let st = self.state();
        if !st.playlists.exists(name) {
            return Err(no_such_playlist(name));
        }
        Ok(st.playlists.view(name, |t| st.catalog.get(t).is_some()))
    }

    /// The names of the tracks `name` plays, in order (missing ones too: the queue skips
    /// them with a warning).
    pub fn playlist_tracks(&self, name: &str) -> Result<Vec<String>> {
        Ok(self.playlist(name)?.tracks)
    }

    pub fn playlist_create(&self, name: &str) -> Result<()> {
        validate_name(name).map_err(|e| anyhow!(e.replace("track", "playlist")))?;
        let item = {
            let mut st = self.state();
            if st.playlists.exists(name) {
                bail!("a playlist named '{name}' exists");
            }
            let id = self.next_version(&mut st);
            Playlists::header(name, id)
        };
        self.apply_playlists(vec![item], None);
        Ok(())
    }

    /// Appends tracks (each must exist) to `name`, which is made if need be; returns the
    /// playlist's length.
    pub fn playlist_add(&self, name: &str, tracks: &[String]) -> Result<usize> {
        validate_name(name).map_err(|e| anyhow!(e.replace("track", "playlist")))?;
        if tracks.len() > MAX_TRACKS_PER_ADD {
            bail!(
                "{} tracks at once is too many (at most {MAX_TRACKS_PER_ADD})",
                tracks.len()
            );
        }
        for t in tracks {
            self.entry(t)?;
        }
        let me = self.id();
        let items = {
            let mut guard = self.state();
            let st = &mut *guard;
            st.playlists.append(name, tracks, || Version {
                ts: st.hlc.now(now_ms()),
                peer: me,
            })
        };
        if items
            .last()
            .is_some_and(|i| i.order.len() > crate::store::playlists::MAX_ORDER_BYTES)
        {
            bail!("playlist '{name}' cannot grow further");
        }
        self.apply_playlists(items, None);
        Ok(self.playlist(name)?.tracks.len())
    }

    /// Removes the entries naming `tracks` from `name`, or with none the whole playlist;
    /// returns how many entries went.
    pub fn playlist_rm(&self, name: &str, tracks: &[String]) -> Result<usize> {
        let items = {
            let st = self.state();
            if !st.playlists.exists(name) {
                return Err(no_such_playlist(name));
            }
            let items = st.playlists.remove(name, tracks);
            let entries = items.iter().filter(|i| i.track.is_some()).count();
            if !tracks.is_empty() && entries == 0 {
                bail!("'{name}' has no entry {}", quoted(tracks));
            }
            items
        };
        let entries = items.iter().filter(|i| i.track.is_some()).count();
        self.apply_playlists(items, None);
        Ok(entries)
    }

    /// Removes the entries at `positions` (0-based) from `name`; returns how many went.
    pub fn playlist_rm_at(&self, name: &str, positions: &[usize]) -> Result<usize> {
        let items = {
            let st = self.state();
            if !st.playlists.exists(name) {
                return Err(no_such_playlist(name));
            }
            st.playlists.remove_at(name, positions)
        };
        let n = items.len();
        self.apply_playlists(items, None);
        Ok(n)
    }

    /// Moves the entry at position `from` to position `to` (1-based).
    pub fn playlist_mv(&self, name: &str, from: usize, to: usize) -> Result<()> {
        let item = {
            let mut st = self.state();
            if !st.playlists.exists(name) {
                return Err(no_such_playlist(name));
            }
            let now = self.next_version(&mut st);
            st.playlists
                .move_entry(name, from, to, now)
                .map_err(|e| anyhow!(e))?
        };
        self.apply_playlists(vec![item], None);
        Ok(())
    }

    /// Merges items (ours or from `from`), stores what changed and passes it on.
    pub(crate) fn apply_playlists(&self, items: Vec<PlaylistItem>, from: Option<PeerId>) {
        let changed: Vec<PlaylistItem> = {
            let mut st = self.state();
            let wall = now_ms();
            let mut changed = Vec::new();
            for item in items {
                if item.moved.ts.ms() > wall + super::catalog_news::MAX_CLOCK_SKEW_MS {
                    warn!("ignoring a playlist edit from the far future");
                    continue;
                }
                st.hlc.observe(item.moved.ts, wall);
                if let Some(stored) = st.playlists.apply(item) {
                    changed.push(stored.clone());
                }
            }
            changed
        };
        if changed.is_empty() {
            return;
        }
        let rows: Vec<(Vec<u8>, PlaylistItem)> = changed
            .iter()
            .map(|i| (item_db_key(i), i.clone()))
            .collect();
        let write = crate::store::db::Write::playlists(&rows);
        match from {
            None => self.inner.db_writes.submit_now(write),
            Some(_) => self.inner.db_writes.submit(write),
        }
        self.broadcast(Msg::Playlists(changed), from);
    }

    fn next_version(&self, st: &mut super::State) -> Version {
        Version {
            ts: st.hlc.now(now_ms()),
            peer: self.id(),
        }
    }
}

fn item_db_key(i: &PlaylistItem) -> Vec<u8> {
    let mut k = i.playlist.as_bytes().to_vec();
    k.push(0);
    k.extend_from_slice(&i.id.ts.0.to_be_bytes());
    k.extend_from_slice(&i.id.peer.0);
    k
}

fn no_such_playlist(name: &str) -> anyhow::Error {
    anyhow!("no playlist named '{name}' (see `playlist ls`)")
}

fn quoted(names: &[String]) -> String {
    names
        .iter()
        .map(|n| format!("'{n}'"))
        .collect::<Vec<_>>()
        .join(", ")
}
