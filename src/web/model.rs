//! The library as Subsonic clients see it: songs, albums and artists with ids that every peer
//! derives alike from content and tags (never a local row number), so a phone's saved album
//! still opens after a restart or from another friend's peer. Built once per catalog change.

use crate::store::library::{LibraryIndex, fold};
use crate::store::track_tags::TrackTags;
use std::collections::{BTreeMap, HashMap};

/// What the model needs of a catalog entry (not its chunk hashes).
#[derive(Clone, Debug)]
pub struct SongMeta {
    pub name: String,
    pub hash: [u8; 32],
    pub size: u64,
    pub duration_s: f64,
    pub codec: String,
    pub sample_rate: u32,
    pub channels: u16,
    pub tags: TrackTags,
    pub cover: Option<[u8; 32]>,
    /// When the track was first pushed (ms since the epoch).
    pub created_ms: u64,
}

#[derive(Debug)]
pub struct Song {
    pub id: String,
    pub meta: SongMeta,
    pub album: Option<usize>,
    pub artist_id: Option<String>,
}

#[derive(Debug)]
pub struct Album {
    pub id: String,
    pub name: String,
    pub artist: Option<String>,
    pub artist_id: Option<String>,
    pub year: Option<u16>,
    pub genre: Option<String>,
    /// In disc, track and name order.
    pub songs: Vec<usize>,
    pub duration_s: f64,
    pub created_ms: u64,
    pub cover: Option<String>,
    /// The folded words of its title and artist, for search.
    words: Vec<String>,
}

#[derive(Debug)]
pub struct Artist {
    pub id: String,
    pub name: String,
    pub albums: Vec<usize>,
    pub cover: Option<String>,
    words: Vec<String>,
}

#[derive(Default)]
pub struct Model {
    pub generation: u64,
    pub songs: Vec<Song>,
    pub albums: Vec<Album>,
    pub artists: Vec<Artist>,
    /// Genre → its songs.
    pub genres: BTreeMap<String, Vec<usize>>,
    song_by_id: HashMap<String, usize>,
    song_by_name: HashMap<String, usize>,
    album_by_id: HashMap<String, usize>,
    artist_by_id: HashMap<String, usize>,
    index: LibraryIndex,
}

fn short_hash(parts: &[&str]) -> String {
    let mut h = blake3::Hasher::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update(&[0x1f]);
    }
    data_encoding::HEXLOWER.encode(&h.finalize().as_bytes()[..10])
}

pub fn artist_id(name: &str) -> String {
    format!("ar-{}", short_hash(&[&fold(name)]))
}

pub fn album_id(artist: Option<&str>, album: &str) -> String {
    format!(
        "al-{}",
        short_hash(&[&fold(artist.unwrap_or("")), &fold(album)])
    )
}

/// A song's id: its content and the name it is shown under.
pub fn song_id(hash: &[u8; 32], name: &str) -> String {
    format!(
        "tr-{}",
        short_hash(&[&data_encoding::HEXLOWER.encode(hash), name])
    )
}

pub fn cover_id(hash: &[u8; 32]) -> String {
    format!("co-{}", data_encoding::HEXLOWER.encode(hash))
}

impl Model {
    pub fn build(generation: u64, mut metas: Vec<SongMeta>) -> Model {
        metas.sort_by(|a, b| {
            let key = |m: &SongMeta| {
                (
                    fold(m.tags.album_key_artist().unwrap_or("")),
                    fold(m.tags.album.as_deref().unwrap_or("")),
                    m.tags.disc.unwrap_or(0),
                    m.tags.track.unwrap_or(0),
                )
            };
            key(a).cmp(&key(b)).then_with(|| a.name.cmp(&b.name))
        });
        let index = LibraryIndex::build_from(metas.iter().map(|m| {
            (
                m.name.as_str(),
                [
                    m.tags.title.as_deref(),
                    m.tags.artist.as_deref(),
                    m.tags.album_artist.as_deref(),
                    m.tags.album.as_deref(),
                ],
            )
        }));
        let mut model = Model {
            generation,
            index,
            ..Default::default()
        };
        for meta in metas {
            let i = model.songs.len();
            let album = meta.tags.album.as_deref().map(|title| {
                let who = meta.tags.album_key_artist();
                let id = album_id(who, title);
                *model.album_by_id.entry(id.clone()).or_insert_with(|| {
                    model.albums.push(Album {
                        id,
                        name: title.to_string(),
                        artist: who.map(str::to_string),
                        artist_id: who.map(artist_id),
                        year: None,
                        genre: None,
                        songs: Vec::new(),
                        duration_s: 0.0,
                        created_ms: u64::MAX,
                        cover: None,
                        words: [Some(title), who]
                            .into_iter()
                            .flatten()
                            .flat_map(query_words)
                            .collect(),
                    });
                    model.albums.len() - 1
                })
            });
            if let Some(a) = album.map(|a| &mut model.albums[a]) {
                a.songs.push(i);
                a.duration_s += meta.duration_s;
                a.created_ms = a.created_ms.min(meta.created_ms);
                a.year = a.year.or(meta.tags.year);
                a.genre = a.genre.take().or_else(|| meta.tags.genre.clone());
                if a.cover.is_none() {
                    a.cover = meta.cover.as_ref().map(cover_id);
                }
            }
            if let Some(g) = meta.tags.genre.as_deref().filter(|g| !g.trim().is_empty()) {
                model.genres.entry(g.to_string()).or_default().push(i);
            }
            let id = song_id(&meta.hash, &meta.name);
            model.song_by_id.insert(id.clone(), i);
            model.song_by_name.insert(meta.name.clone(), i);
            model.songs.push(Song {
                id,
                artist_id: meta.tags.artist.as_deref().map(artist_id),
                album,
                meta,
            });
        }
        for (ai, a) in model.albums.iter().enumerate() {
            let Some(name) = a.artist.as_deref() else {
                continue;
            };
            let id = artist_id(name);
            let slot = *model.artist_by_id.entry(id.clone()).or_insert_with(|| {
                model.artists.push(Artist {
                    id,
                    name: name.to_string(),
                    albums: Vec::new(),
                    cover: None,
                    words: query_words(name),
                });
                model.artists.len() - 1
            });
            let artist = &mut model.artists[slot];
            artist.albums.push(ai);
            if artist.cover.is_none() {
                artist.cover = a.cover.clone();
            }
        }
        model
    }

    pub fn song(&self, id: &str) -> Option<&Song> {
        self.song_by_id.get(id).map(|i| &self.songs[*i])
    }

    pub fn song_index(&self, id: &str) -> Option<usize> {
        self.song_by_id.get(id).copied()
    }

    pub fn song_named(&self, name: &str) -> Option<&Song> {
        self.song_by_name.get(name).map(|i| &self.songs[*i])
    }

    pub fn album(&self, id: &str) -> Option<&Album> {
        self.album_by_id.get(id).map(|i| &self.albums[*i])
    }

    pub fn artist(&self, id: &str) -> Option<&Artist> {
        self.artist_by_id.get(id).map(|i| &self.artists[*i])
    }

    /// Songs where every word of `query` starts a word of the name or tags, in library order.
    pub fn search_songs(&self, query: &str) -> Vec<usize> {
        let mut hits: Vec<usize> = self
            .index
            .search(query)
            .into_iter()
            .filter_map(|n| self.song_by_name.get(n).copied())
            .collect();
        hits.sort_unstable();
        hits
    }

    /// Albums, then artists, whose title or name has every word of `query` starting a word.
    pub fn search_albums(&self, query: &str) -> Vec<usize> {
        let q = query_words(query);
        self.albums
            .iter()
            .enumerate()
            .filter(|(_, a)| matches_words(&q, &a.words))
            .map(|(i, _)| i)
            .collect()
    }

    pub fn search_artists(&self, query: &str) -> Vec<usize> {
        let q = query_words(query);
        self.artists
            .iter()
            .enumerate()
            .filter(|(_, a)| matches_words(&q, &a.words))
            .map(|(i, _)| i)
            .collect()
    }

    /// The picture behind a cover id, an album id or a song id.
    pub fn cover_hash(&self, id: &str) -> Option<[u8; 32]> {
        let hex = if let Some(h) = id.strip_prefix("co-") {
            h.to_string()
        } else if let Some(a) = self.album(id) {
            a.cover.as_deref()?.strip_prefix("co-")?.to_string()
        } else if let Some(a) = self.artist(id) {
            a.cover.as_deref()?.strip_prefix("co-")?.to_string()
        } else {
            return self.song(id)?.meta.cover;
        };
        let bytes = data_encoding::HEXLOWER_PERMISSIVE
            .decode(hex.as_bytes())
            .ok()?;
        let hash: [u8; 32] = bytes.try_into().ok()?;
        // Only pictures of this library: an id is not a way to fetch any blob.
        let known = self
            .songs
            .iter()
            .any(|s| s.meta.cover.as_ref() == Some(&hash));
        known.then_some(hash)
    }
}

fn query_words(query: &str) -> Vec<String> {
    fold(query)
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect()
}

fn matches_words(query: &[String], words: &[String]) -> bool {
    query
        .iter()
        .all(|q| words.iter().any(|w| w.starts_with(q.as_str())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(name: &str, artist: &str, album: &str, track: u32, cover: Option<u8>) -> SongMeta {
        SongMeta {
            name: name.into(),
            hash: *blake3::hash(name.as_bytes()).as_bytes(),
            size: 1000,
            duration_s: 10.0,
            codec: "mp3".into(),
            sample_rate: 44100,
            channels: 2,
            tags: TrackTags {
                title: Some(format!("Title {name}")),
                artist: Some(artist.into()),
                album: Some(album.into()),
                track: Some(track),
                genre: Some("Ambient".into()),
                ..Default::default()
            },
            cover: cover.map(|c| [c; 32]),
            created_ms: 5,
        }
    }

    #[test]
    fn ids_are_stable_and_albums_ordered() {
        let metas = vec![
            meta("b2", "Band", "Blue", 2, None),
            meta("b1", "Band", "Blue", 1, Some(7)),
            meta("x", "Other", "Blue", 1, None),
        ];
        let m = Model::build(1, metas.clone());
        let again = Model::build(2, metas.into_iter().rev().collect());
        assert_eq!(
            m.albums.len(),
            2,
            "two artists' albums of one title stay apart"
        );
        let blue = m.album(&album_id(Some("band"), "BLUE")).unwrap();
        let names: Vec<_> = blue
            .songs
            .iter()
            .map(|i| m.songs[*i].meta.name.as_str())
            .collect();
        assert_eq!(names, ["b1", "b2"]);
        assert_eq!(blue.duration_s, 20.0);
        let ids: Vec<_> = m.songs.iter().map(|s| s.id.clone()).collect();
        let ids2: Vec<_> = again.songs.iter().map(|s| s.id.clone()).collect();
        assert_eq!(ids, ids2);
        let cover = blue.cover.clone().unwrap();
        assert_eq!(m.cover_hash(&cover), Some([7; 32]));
        assert_eq!(m.cover_hash(&blue.id), Some([7; 32]));
        assert_eq!(m.cover_hash(&format!("co-{}", "00".repeat(32))), None);
        assert_eq!(m.cover_hash("../../etc/passwd"), None);
        assert_eq!(m.artists.len(), 2);
        assert_eq!(m.search_songs("title b").len(), 3, "b starts Blue too");
        assert_eq!(m.search_songs("title b2").len(), 1);
        assert_eq!(m.search_albums("blu oth").len(), 1);
        assert_eq!(m.search_artists("ba").len(), 1);
        assert_eq!(m.genres["Ambient"].len(), 3);
    }
}
