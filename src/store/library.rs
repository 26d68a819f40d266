//! Browsing and search over the catalog's tags, as people think of music: words that start
//! words (`cafe del` finds `Café del Mar`, after case and accent folding), artists, and albums
//! keyed by (album artist, else artist; album) so two artists' `Greatest Hits` stay apart.
//! The word index is kept up to date with the catalog's changes and answers each query by
//! prefix ranges.

use super::catalog::CatalogEntry;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

/// Lower case without accents: what searching and grouping compare.
pub fn fold(s: &str) -> String {
    // Decomposition leaves ASCII as it is, and most tags are ASCII: indexing 100,000 tracks
    // as they arrive from a peer spent seconds in the decomposing iterator.
    if s.is_ascii() {
        return s.to_ascii_lowercase();
    }
    fold_unicode(s)
}

fn fold_unicode(s: &str) -> String {
    s.nfkd()
        .filter(|c| !is_combining_mark(*c))
        .flat_map(char::to_lowercase)
        .collect()
}

/// Distinct words of a search query that count; more are ignored.
pub const MAX_QUERY_WORDS: usize = 16;

/// The words of folded text: runs of letters and digits.
fn words(folded: &str) -> impl Iterator<Item = &str> {
    folded
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
}

/// Word → the tracks (by slot in `names`) with a word of that spelling. Kept up to date
/// track by track as the catalog changes: a removed track's slot is emptied (its words point
/// at nothing until the next rebuild), a new or changed one gets a new slot.
#[derive(Clone, Debug, Default)]
pub struct LibraryIndex {
    names: Vec<Option<String>>,
    slots: HashMap<String, u32>,
    /// Slots only grow, so each list stays sorted by pushing; a Vec, since most words belong
    /// to one track and a one-element BTreeSet costs a whole node.
    words: BTreeMap<String, Vec<u32>>,
    /// Slots are in name order (a fresh build); appended ones are not, so answers get sorted.
    appended: bool,
    empty_slots: usize,
}

type TrackWords<'a> = (&'a str, [Option<&'a str>; 4]);

fn track_words(e: &CatalogEntry) -> TrackWords<'_> {
    (
        e.name.as_str(),
        [
            e.tags.title.as_deref(),
            e.tags.artist.as_deref(),
            e.tags.album_artist.as_deref(),
            e.tags.album.as_deref(),
        ],
    )
}

impl LibraryIndex {
    pub fn build<'a>(entries: impl Iterator<Item = &'a CatalogEntry>) -> Self {
        Self::build_from(entries.map(track_words))
    }

    /// The index of tracks given as (name, [title, artist, album artist, album]).
    pub fn build_from<'a>(tracks: impl Iterator<Item = TrackWords<'a>>) -> Self {
        let mut index = LibraryIndex::default();
        for (name, tags) in tracks {
            index.add(name, tags);
        }
        index.appended = false;
        index
    }

    /// Brings the index up to date for shown names that changed: each is taken out, and put
    /// back from `entry_of` if it still exists. False when so many slots are empty that a
    /// rebuild is the better deal.
    pub fn update<'a>(
        &mut self,
        changed: impl Iterator<Item = &'a str>,
        entry_of: impl Fn(&str) -> Option<&'a CatalogEntry>,
    ) -> bool {
        for name in changed {
            if let Some(slot) = self.slots.remove(name) {
                self.names[slot as usize] = None;
                self.empty_slots += 1;
            }
            if let Some(e) = entry_of(name) {
                let (n, tags) = track_words(e);
                self.add(n, tags);
            }
        }
        self.empty_slots * 4 <= self.names.len().max(64)
    }

    fn add(&mut self, name: &str, tags: [Option<&str>; 4]) {
        if let Some(old) = self.slots.remove(name) {
            self.names[old as usize] = None;
            self.empty_slots += 1;
        }
        let i = self.names.len() as u32;
        self.names.push(Some(name.to_string()));
        self.slots.insert(name.to_string(), i);
        self.appended = true;
        for f in std::iter::once(name).chain(tags.into_iter().flatten()) {
            for w in words(&fold(f)) {
                match self.words.get_mut(w) {
                    Some(slots) if slots.last() != Some(&i) => slots.push(i),
                    Some(_) => {}
                    None => {
                        self.words.insert(w.to_string(), vec![i]);
                    }
                }
            }
        }
    }

    /// Names of the tracks where every word of `query` starts a word; all tracks for an
    /// empty query. In catalog (name) order.
    pub fn search(&self, query: &str) -> Vec<&str> {
        let folded = fold(query);
        let mut hits: Option<BTreeSet<u32>> = None;
        // Each word costs a scan of the tracks it starts: a query of a million words (a
        // request may be megabytes) must not hold the lock for minutes.
        let mut seen = BTreeSet::new();
        let query_words = words(&folded)
            .filter(|w| seen.insert(*w))
            .take(MAX_QUERY_WORDS);
        for q in query_words {
            let mut these = BTreeSet::new();
            for (_, ids) in self
                .words
                .range(q.to_string()..)
                .take_while(|(w, _)| w.starts_with(q))
            {
                these.extend(ids.iter().copied());
            }
            hits = Some(match hits {
                None => these,
                Some(h) => h.intersection(&these).copied().collect(),
            });
            if hits.as_ref().is_some_and(BTreeSet::is_empty) {
                break;
            }
        }
        let mut out: Vec<&str> = match hits {
            None => self.names.iter().flatten().map(String::as_str).collect(),
            Some(h) => h
                .iter()
                .filter_map(|i| self.names[*i as usize].as_deref())
                .collect(),
        };
        if self.appended {
            out.sort_unstable();
        }
        out
    }
}

/// Whether a track is by the artist whose folded name is `folded` (as its artist or album
/// artist). The caller folds the wanted name once, not once per track.
pub fn by_artist(e: &CatalogEntry, folded: &str) -> bool {
    [e.tags.artist.as_deref(), e.tags.album_artist.as_deref()]
        .into_iter()
        .flatten()
        .any(|a| fold(a) == folded)
}

/// Whether a track is on the album whose folded title is `folded`.
pub fn on_album(e: &CatalogEntry, folded: &str) -> bool {
    e.tags.album.as_deref().is_some_and(|a| fold(a) == folded)
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ArtistSummary {
    pub name: String,
    pub albums: usize,
    pub tracks: usize,
    pub duration_s: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AlbumSummary {
    pub album: String,
    /// The album artist, else the artist.
    pub artist: Option<String>,
    pub year: Option<u16>,
    pub tracks: usize,
    pub duration_s: f64,
    pub cover: Option<String>,
}

/// Artists (by track artist, else album artist), with their albums and tracks.
pub fn artists<'a>(entries: impl Iterator<Item = &'a CatalogEntry>) -> Vec<ArtistSummary> {
    let mut by: BTreeMap<String, (String, BTreeSet<String>, usize, f64)> = BTreeMap::new();
    for e in entries {
        let Some(name) = e.tags.artist.as_deref().or(e.tags.album_artist.as_deref()) else {
            continue;
        };
        let slot = by
            .entry(fold(name))
            .or_insert_with(|| (name.to_string(), BTreeSet::new(), 0, 0.0));
        if let Some(a) = &e.tags.album {
            slot.1.insert(fold(a));
        }
        slot.2 += 1;
        slot.3 += e.duration_s;
    }
    by.into_values()
        .map(|(name, albums, tracks, duration_s)| ArtistSummary {
            name,
            albums: albums.len(),
            tracks,
            duration_s,
        })
        .collect()
}

/// Albums keyed by (album artist, else artist; album), optionally of one artist.
pub fn albums<'a>(
    entries: impl Iterator<Item = &'a CatalogEntry>,
    artist: Option<&str>,
) -> Vec<AlbumSummary> {
    let mut by: BTreeMap<(String, String), AlbumSummary> = BTreeMap::new();
    let artist = artist.map(fold);
    for e in entries {
        let Some(album) = e.tags.album.as_deref() else {
            continue;
        };
        if artist.as_deref().is_some_and(|a| !by_artist(e, a)) {
            continue;
        }
        let who = e.tags.album_key_artist();
        let key = (fold(who.unwrap_or("")), fold(album));
        let slot = by.entry(key).or_insert_with(|| AlbumSummary {
            album: album.to_string(),
            artist: who.map(str::to_string),
            year: None,
            tracks: 0,
            duration_s: 0.0,
            cover: None,
        });
        slot.tracks += 1;
        slot.duration_s += e.duration_s;
        slot.year = slot.year.or(e.tags.year);
        if slot.cover.is_none() {
            slot.cover = e.cover.map(|c| super::blobs::hex(&c.hash));
        }
    }
    by.into_values().collect()
}

/// `m:ss` (or `h:mm:ss`) for a listing.
pub fn clock(seconds: f64) -> String {
    let s = seconds.max(0.0).round() as u64;
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
    } else {
        format!("{}:{:02}", s / 60, s % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::track_tags::TrackTags;

    fn track(name: &str, title: &str, artist: &str, aa: Option<&str>, album: &str) -> CatalogEntry {
        let mut e: CatalogEntry = crate::store::catalog::sample_entry(name);
        e.tags = TrackTags {
            title: Some(title.into()),
            artist: Some(artist.into()),
            album_artist: aa.map(Into::into),
            album: Some(album.into()),
            ..Default::default()
        };
        e.duration_s = 100.0;
        e
    }

    fn library() -> Vec<CatalogEntry> {
        vec![
            track(
                "a",
                "Café del Mar",
                "José Padilla",
                None,
                "Café del Mar Vol. 1",
            ),
            track(
                "b",
                "Sunrise",
                "Various",
                Some("Ambient Friends"),
                "Greatest Hits",
            ),
            track("c", "Evening Tide", "Marée Basse", None, "Greatest Hits"),
            track("d", "Delmar Road", "Marée Basse", None, "Greatest Hits"),
        ]
    }

    /// The catalog's index, kept up to date change by change, answers as one built afresh.
    #[test]
    fn an_index_kept_up_to_date_answers_as_a_fresh_one() {
        use crate::store::catalog::{Catalog, Version};
        use crate::store::hlc::Timestamp;
        use proptest::prelude::*;
        let names = ["a", "b", "c", "a (2)", "d"];
        let titles = ["Café del Mar", "Sunrise", "Evening Tide", "Delmar Road"];
        let mut runner = proptest::test_runner::TestRunner::default();
        runner
            .run(
                &prop::collection::vec((0usize..5, 0usize..4, 0u64..3, any::<bool>()), 1..30),
                |ops| {
                    let mut cat = Catalog::new();
                    for (i, (n, t, lineage, dead)) in ops.into_iter().enumerate() {
                        let mut e = track(names[n], titles[t], "Artist", None, "Album");
                        let peer = crate::id::PeerId([lineage as u8; 32]);
                        e.lineage = Version {
                            ts: Timestamp::new(lineage, 0),
                            peer,
                        };
                        e.version = Version {
                            ts: Timestamp::new(10 + i as u64, 0),
                            peer,
                        };
                        cat.apply(if dead {
                            e.clone().removed(e.version)
                        } else {
                            e
                        });
                        let fresh = LibraryIndex::build(cat.live());
                        for q in ["", "  ", "-", "cafe", "del", "a", "sunrise tide", "artist"] {
                            prop_assert_eq!(cat.search(q), fresh.search(q), "query {:?}", q);
                        }
                    }
                    Ok(())
                },
            )
            .unwrap();
    }

    proptest::proptest! {
        #[test]
        fn ascii_folds_as_unicode_does(s in "[ -~]{0,40}") {
            proptest::prop_assert_eq!(fold(&s), fold_unicode(&s));
        }
    }

    #[test]
    fn words_match_word_starts_after_folding() {
        let lib = library();
        let idx = LibraryIndex::build(lib.iter());
        assert_eq!(idx.search("cafe del"), vec!["a"]);
        assert_eq!(idx.search("CAFÉ"), vec!["a"]);
        assert_eq!(idx.search("del"), vec!["a", "d"]);
        // A word must start a word: "mar" is not in "Delmar" but starts "Mar" and "Marée".
        assert_eq!(idx.search("mar"), vec!["a", "c", "d"]);
        assert_eq!(idx.search("elmar"), Vec::<&str>::new());
        assert_eq!(idx.search("greatest marée"), vec!["c", "d"]);
        // Repeated words count once; past the first 16 distinct ones, words are ignored.
        assert_eq!(idx.search(&"del ".repeat(100_000)), vec!["a", "d"]);
        let sixteen = "d de del delm delma delmar r ro roa road m ma mar g gr gre";
        assert_eq!(idx.search(sixteen), vec!["d"]);
        assert_eq!(idx.search(&format!("{sixteen} zzz")), vec!["d"]);
        assert_eq!(idx.search(&format!("zzz {sixteen}")), Vec::<&str>::new());
        assert_eq!(idx.search("  "), vec!["a", "b", "c", "d"]);
        assert_eq!(idx.search("zzz"), Vec::<&str>::new());
    }

    #[test]
    fn albums_of_two_artists_with_one_title_stay_apart() {
        let lib = library();
        let albums = albums(lib.iter(), None);
        let hits: Vec<_> = albums
            .iter()
            .filter(|a| a.album == "Greatest Hits")
            .map(|a| (a.artist.as_deref().unwrap(), a.tracks))
            .collect();
        assert_eq!(hits, vec![("Ambient Friends", 1), ("Marée Basse", 2)]);
        let of = super::albums(lib.iter(), Some("maree basse"));
        assert_eq!(of.len(), 1);
        let artists = artists(lib.iter());
        let m = artists.iter().find(|a| a.name == "Marée Basse").unwrap();
        assert_eq!((m.albums, m.tracks, m.duration_s), (1, 2, 200.0));
        assert_eq!(clock(65.4), "1:05");
        assert_eq!(clock(1203.9), "20:04");
        assert_eq!(clock(3725.0), "1:02:05");
    }
}
