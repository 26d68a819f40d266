//! Playlists shared by the network: each is an add-wins set of entries with order keys.
//!
//! Last writer wins per playlist would drop one of two concurrent edits. Instead every entry
//! added is an item of its own (its id: who added it, when), so concurrent adds both survive;
//! a removal marks only the items its peer had seen (an item added meanwhile stays); a move
//! gives one item a new order key (a fractional index between its new neighbours, last move
//! wins). Removal is final: a removed item never comes back, so a move racing a removal
//! cannot resurrect it. Merging is per item and a join (commutative, associative,
//! idempotent), so peers converge whatever order they hear edits in.

use super::catalog::Version;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One entry of a playlist, or a playlist's header (an empty playlist exists through it).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlaylistItem {
    pub playlist: String,
    /// Who added it and when: unique, and the tie-break between equal order keys.
    pub id: Version,
    /// The track's name; None for the header `playlist create` writes.
    pub track: Option<String>,
    /// A fraction in base 256 (most significant byte first, never a trailing zero), so a key
    /// between any two keys always exists.
    pub order: Vec<u8>,
    /// When `order` was last set; the later move wins.
    pub moved: Version,
    pub removed: bool,
}

/// Where an item lives: its playlist, then its id.
pub type ItemKey = (String, Version);

impl PlaylistItem {
    pub fn key(&self) -> ItemKey {
        (self.playlist.clone(), self.id)
    }
}

/// Combines two states of one item: the later move's order, removed if either is. (The
/// track is compared too only so that a peer sending two items with one id still cannot
/// make peers disagree.)
fn merge(a: &PlaylistItem, b: &PlaylistItem) -> PlaylistItem {
    let mut out = if (b.moved, &b.order, &b.track) > (a.moved, &a.order, &a.track) {
        b.clone()
    } else {
        a.clone()
    };
    out.removed = a.removed || b.removed;
    out
}

/// A playlist as a user sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PlaylistView {
    pub name: String,
    /// Every entry in order, also those whose track is gone.
    pub tracks: Vec<String>,
    /// The entries whose track is not in the catalog (they are skipped when played).
    pub missing: Vec<String>,
}

/// Every playlist item this peer knows, removed ones included.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Playlists {
    items: BTreeMap<ItemKey, PlaylistItem>,
}

impl Playlists {
    pub fn new() -> Self {
        Self::default()
    }

    /// Merges one item in; the stored item when that changed something.
    pub fn apply(&mut self, item: PlaylistItem) -> Option<&PlaylistItem> {
        if super::track_name::validate_name(&item.playlist).is_err()
            || item
                .track
                .as_deref()
                .is_some_and(|t| super::track_name::validate_name(t).is_err())
            || !valid_order(&item.order)
            || item.moved < item.id
        {
            return None;
        }
        let key = item.key();
        let merged = match self.items.get(&key) {
            Some(old) => {
                let m = merge(old, &item);
                if m == *old {
                    return None;
                }
                m
            }
            None => item,
        };
        self.items.insert(key.clone(), merged);
        self.items.get(&key)
    }

    /// Every item, for anti-entropy.
    pub fn all(&self) -> impl Iterator<Item = &PlaylistItem> {
        self.items.values()
    }

    pub fn digest(&self) -> [u8; 32] {
        let mut h = blake3::Hasher::new();
        h.update(b"meff playlists v1\0");
        for item in self.items.values() {
            if let Ok(bytes) = postcard::to_allocvec(item) {
                h.update(&(bytes.len() as u64).to_le_bytes());
                h.update(&bytes);
            }
        }
        *h.finalize().as_bytes()
    }

    /// The live items of `playlist`, in play order.
    pub fn live_items(&self, playlist: &str) -> Vec<&PlaylistItem> {
        let mut items: Vec<&PlaylistItem> = self
            .items
            .range(range_of(playlist))
            .map(|(_, i)| i)
            .filter(|i| !i.removed)
            .collect();
        items.sort_by(|a, b| (&a.order, a.id).cmp(&(&b.order, b.id)));
        items
    }

    /// Whether `playlist` exists: it has a live header or a live entry.
    pub fn exists(&self, playlist: &str) -> bool {
        self.items
            .range(range_of(playlist))
            .any(|(_, i)| !i.removed)
    }

    /// Names of the playlists that exist.
    pub fn names(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for (k, i) in &self.items {
            if !i.removed && out.last() != Some(&k.0) {
                out.push(k.0.clone());
            }
        }
        out
    }

    /// `playlist` as shown: its tracks in order; `present` says which names exist.
    pub fn view(&self, playlist: &str, present: impl Fn(&str) -> bool) -> PlaylistView {
        let tracks: Vec<String> = self
            .live_items(playlist)
            .into_iter()
            .filter_map(|i| i.track.clone())
            .collect();
        let missing = tracks.iter().filter(|t| !present(t)).cloned().collect();
        PlaylistView {
            name: playlist.to_string(),
            tracks,
            missing,
        }
    }

    /// The header an empty playlist exists through.
    pub fn header(playlist: &str, id: Version) -> PlaylistItem {
        PlaylistItem {
            playlist: playlist.to_string(),
            id,
            track: None,
            order: vec![0x80],
            moved: id,
            removed: false,
        }
    }

    /// Items appending `tracks` to the end of `playlist`, ids from `ids`.
    pub fn append(
        &self,
        playlist: &str,
        tracks: &[String],
        mut ids: impl FnMut() -> Version,
    ) -> Vec<PlaylistItem> {
        let mut last = self
            .live_items(playlist)
            .last()
            .map(|i| i.order.clone())
            .unwrap_or_default();
        tracks
            .iter()
            .map(|t| {
                let id = ids();
                last = key_between(&last, None);
                PlaylistItem {
                    playlist: playlist.to_string(),
                    id,
                    track: Some(t.clone()),
                    order: last.clone(),
                    moved: id,
                    removed: false,
                }
            })
            .collect()
    }

    /// The items a removal marks: the live entries of `playlist` naming one of `tracks`, or
    /// with no tracks every live item (the header too: the playlist goes).
    pub fn remove(&self, playlist: &str, tracks: &[String]) -> Vec<PlaylistItem> {
        self.live_items(playlist)
            .into_iter()
            .filter(|i| tracks.is_empty() || i.track.as_ref().is_some_and(|t| tracks.contains(t)))
            .map(|i| PlaylistItem {
                removed: true,
                ..i.clone()
            })
            .collect()
    }

    /// The items removing the entries at `positions` (0-based, among the entries) writes.
    pub fn remove_at(&self, playlist: &str, positions: &[usize]) -> Vec<PlaylistItem> {
        self.live_items(playlist)
            .into_iter()
            .filter(|i| i.track.is_some())
            .enumerate()
            .filter(|(n, _)| positions.contains(n))
            .map(|(_, i)| PlaylistItem {
                removed: true,
                ..i.clone()
            })
            .collect()
    }

    /// The item a move of the entry at position `from` to position `to` (1-based, among the
    /// entries) writes, or why it cannot.
    pub fn move_entry(
        &self,
        playlist: &str,
        from: usize,
        to: usize,
        now: Version,
    ) -> Result<PlaylistItem, String> {
        let entries: Vec<&PlaylistItem> = self
            .live_items(playlist)
            .into_iter()
            .filter(|i| i.track.is_some())
            .collect();
        let n = entries.len();
        if from == 0 || to == 0 || from > n || to > n {
            return Err(format!(
                "positions go from 1 to {n} in '{playlist}' (got {from} and {to})"
            ));
        }
        let moving = entries[from - 1];
        let rest: Vec<&PlaylistItem> = entries
            .iter()
            .copied()
            .filter(|i| i.id != moving.id)
            .collect();
        // Its new neighbours: the entries that will be before and after it at `to`.
        let before = (to >= 2).then(|| rest[to - 2].order.as_slice());
        let after = rest.get(to - 1).map(|i| i.order.as_slice());
        let lo = before.unwrap_or(&[]);
        let order = match after {
            Some(hi) if hi <= lo => key_between(lo, None),
            hi => key_between(lo, hi),
        };
        Ok(PlaylistItem {
            order,
            moved: now.max(moving.moved),
            ..moving.clone()
        })
    }
}

fn range_of(playlist: &str) -> std::ops::RangeInclusive<ItemKey> {
    (playlist.to_string(), super::catalog::VERSION_MIN)
        ..=(playlist.to_string(), super::catalog::VERSION_MAX)
}

/// The longest order key kept.
pub const MAX_ORDER_BYTES: usize = 1024;

fn valid_order(order: &[u8]) -> bool {
    !order.is_empty() && order.len() <= MAX_ORDER_BYTES && order.last() != Some(&0)
}

/// A key strictly between `lo` and `hi` (None: above every key), both read as base-256
/// fractions; `lo` may be empty (zero). Never ends in a zero byte, so byte order is the
/// fractions' order. Above every key it steps by one, not to the middle: appending is the
/// common case, and halving grew the key a byte every 8 appends (past 1,024 bytes, at
/// 8,192 entries, an order is refused); stepping grows it a byte every 255.
pub fn key_between(lo: &[u8], hi: Option<&[u8]>) -> Vec<u8> {
    let mut out = Vec::new();
    let mut hi = hi;
    let mut i = 0;
    loop {
        let l = lo.get(i).copied().unwrap_or(0) as u16;
        if hi.is_none() && l < 255 {
            out.push((l + 1) as u8);
            return out;
        }
        let h = hi.map_or(256, |h| h.get(i).copied().unwrap_or(0) as u16);
        if h > l + 1 {
            out.push(((l + h) / 2) as u8);
            return out;
        }
        out.push(l as u8);
        if h == l + 1 {
            // Below `hi` from here on, whatever follows: only `lo` still bounds us.
            hi = None;
        }
        i += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::id::PeerId;
    use crate::store::hlc::Timestamp;
    use proptest::prelude::*;

    fn v(ms: u64, by: u8) -> Version {
        Version {
            ts: Timestamp::new(ms, 0),
            peer: PeerId([by; 32]),
        }
    }

    fn names(p: &Playlists, name: &str) -> Vec<String> {
        p.view(name, |_| true).tracks
    }

    fn ids(start: u64, by: u8) -> impl FnMut() -> Version {
        let mut n = start;
        move || {
            n += 1;
            v(n, by)
        }
    }

    fn strings(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn keys_between_are_strictly_between() {
        let a = key_between(&[], None);
        let b = key_between(&a, None);
        let mid = key_between(&a, Some(&b));
        assert!(a < mid && mid < b, "{a:?} {mid:?} {b:?}");
        let tight = key_between(&[5], Some(&[6]));
        assert!(tight.as_slice() > [5u8].as_slice() && tight.as_slice() < [6u8].as_slice());
        assert!(key_between(&[255, 255], None).as_slice() > [255u8, 255].as_slice());
        // Appending 100,000 entries one after another keeps keys short and ordered.
        let mut last = Vec::new();
        for _ in 0..100_000 {
            let next = key_between(&last, None);
            assert!(next > last && next.last() != Some(&0));
            last = next;
        }
        assert!(last.len() <= 400, "{} bytes", last.len());
        let first = key_between(&[], Some(&[1]));
        assert!(first.as_slice() < [1u8].as_slice() && !first.is_empty());
        assert_ne!(first.last(), Some(&0));
    }

    proptest! {
        #[test]
        fn a_key_between_any_two_exists(mut a in prop::collection::vec(any::<u8>(), 1..6),
                                        mut b in prop::collection::vec(any::<u8>(), 1..6)) {
            for k in [&mut a, &mut b] {
                while k.last() == Some(&0) { k.pop(); }
                if k.is_empty() { k.push(1); }
            }
            prop_assume!(a != b);
            let (lo, hi) = if a < b { (a, b) } else { (b, a) };
            let m = key_between(&lo, Some(&hi));
            prop_assert!(lo < m && m < hi, "{:?} {:?} {:?}", lo, m, hi);
            prop_assert!(valid_order(&m));
            let up = key_between(&hi, None);
            prop_assert!(up > hi && valid_order(&up));
        }
    }

    #[test]
    fn concurrent_adds_both_survive_and_a_removal_takes_only_what_it_saw() {
        let mut a = Playlists::new();
        for i in a.append("mix", &strings(&["one", "two"]), ids(0, 1)) {
            a.apply(i);
        }
        let mut b = a.clone();
        // Concurrently: a adds "three", b adds "four" and removes "one" and "three"(unseen).
        let from_a = a.append("mix", &strings(&["three"]), ids(10, 1));
        let mut from_b = b.append("mix", &strings(&["four"]), ids(10, 2));
        for i in &from_b {
            b.apply(i.clone());
        }
        from_b.extend(b.remove("mix", &strings(&["one", "three"])));
        for i in from_a.iter().chain(&from_b) {
            a.apply(i.clone());
            b.apply(i.clone());
        }
        assert_eq!(a, b);
        let got = names(&a, "mix");
        assert_eq!(got.len(), 3, "{got:?}");
        assert!(
            got.contains(&"three".to_string()),
            "an unseen add survives a removal"
        );
        assert!(got.contains(&"four".to_string()) && !got.contains(&"one".to_string()));
    }

    #[test]
    fn moves_reorder_and_a_removed_entry_stays_removed() {
        let mut p = Playlists::new();
        for i in p.append("mix", &strings(&["a", "b", "c", "d"]), ids(0, 1)) {
            p.apply(i);
        }
        let m = p.move_entry("mix", 4, 1, v(20, 1)).unwrap();
        p.apply(m);
        assert_eq!(names(&p, "mix"), strings(&["d", "a", "b", "c"]));
        let m = p.move_entry("mix", 1, 3, v(21, 1)).unwrap();
        p.apply(m);
        assert_eq!(names(&p, "mix"), strings(&["a", "b", "d", "c"]));
        let m = p.move_entry("mix", 2, 4, v(22, 1)).unwrap();
        p.apply(m);
        assert_eq!(names(&p, "mix"), strings(&["a", "d", "c", "b"]));
        assert!(p.move_entry("mix", 0, 1, v(23, 1)).is_err());
        assert!(p.move_entry("mix", 1, 5, v(23, 1)).is_err());
        // A move that races a removal does not bring the entry back.
        let moved = p.move_entry("mix", 1, 2, v(30, 2)).unwrap();
        for r in p.remove("mix", &strings(&["a"])) {
            p.apply(r);
        }
        p.apply(moved);
        assert_eq!(names(&p, "mix"), strings(&["d", "c", "b"]));
    }

    #[test]
    fn a_playlist_exists_by_its_header_or_its_entries_and_goes_whole() {
        let mut p = Playlists::new();
        p.apply(Playlists::header("empty", v(1, 1)));
        assert!(p.exists("empty"));
        assert_eq!(p.names(), strings(&["empty"]));
        assert_eq!(names(&p, "empty"), Vec::<String>::new());
        for i in p.append("empty", &strings(&["x"]), ids(5, 1)) {
            p.apply(i);
        }
        let view = p.view("empty", |t| t != "x");
        assert_eq!(view.missing, strings(&["x"]));
        for r in p.remove("empty", &[]) {
            p.apply(r);
        }
        assert!(!p.exists("empty") && p.names().is_empty());
        assert!(p.apply(Playlists::header("../x", v(1, 1))).is_none());
        let mut bad = Playlists::header("ok", v(1, 1));
        bad.order = vec![1, 0];
        assert!(p.apply(bad).is_none(), "a key ending in zero is refused");
    }

    fn arb_op() -> impl Strategy<Value = (u8, u8, u8, u8)> {
        (0u8..4, 0u8..3, 0u8..4, 0u8..4)
    }

    proptest! {
        #[test]
        fn peers_converge_whatever_order_they_hear_edits_in(
            ops in prop::collection::vec(arb_op(), 1..20),
            seed in any::<u64>(),
        ) {
            // Three peers edit their own copies, then everything is delivered to a fresh
            // copy in two different orders.
            let mut peers = [Playlists::new(), Playlists::new(), Playlists::new()];
            let mut log: Vec<PlaylistItem> = Vec::new();
            for (n, (kind, who, x, y)) in ops.into_iter().enumerate() {
                let p = &mut peers[who as usize];
                let now = v(100 + n as u64, who);
                let items = match kind {
                    0 => p.append("l", &[format!("t{x}")], || now),
                    1 => p.remove("l", &[format!("t{x}")]),
                    2 => p.move_entry("l", x as usize + 1, y as usize + 1, now).into_iter().collect(),
                    _ => {
                        // Hear some of the others' edits.
                        let heard: Vec<PlaylistItem> = log.iter().step_by(2).cloned().collect();
                        heard
                    }
                };
                for i in items {
                    p.apply(i.clone());
                    log.push(i);
                }
            }
            let mut forward = Playlists::new();
            for i in &log { forward.apply(i.clone()); }
            let mut shuffled = log.clone();
            let len = shuffled.len();
            let mut s = seed | 1;
            for i in (1..len).rev() {
                s ^= s << 13; s ^= s >> 7; s ^= s << 17;
                shuffled.swap(i, (s % (i as u64 + 1)) as usize);
            }
            let mut other = Playlists::new();
            for i in &shuffled { other.apply(i.clone()); }
            for i in &log { other.apply(i.clone()); }
            prop_assert_eq!(&forward, &other);
            prop_assert_eq!(names(&forward, "l"), names(&other, "l"));
        }
    }
}
