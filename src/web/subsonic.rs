//! The OpenSubsonic browsing, search, playlist and star calls, answered from the model of the
//! local catalog. Media calls (stream, download, cover art) are in `media`.

use super::Web;
use super::model::{Album, Artist, Model, Song};
use super::params::Params;
use super::reply::ApiError;
use crate::node::now_ms;
use crate::node::storage::extension_for;
use serde_json::{Map, Value, json};

type Answer = Result<Map<String, Value>, ApiError>;

const IGNORED_ARTICLES: &str = "The El La Los Las Le Les";
/// The largest page any list call returns.
const MAX_PAGE: usize = 500;

fn body(key: &str, v: Value) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert(key.into(), v);
    m
}

pub fn content_type(codec: &str) -> &'static str {
    match codec {
        "mp3" => "audio/mpeg",
        "flac" => "audio/flac",
        "vorbis" => "audio/ogg",
        "aac" => "audio/mp4",
        "wav" => "audio/wav",
        _ => "application/octet-stream",
    }
}

fn iso_time(ms: u64) -> String {
    let secs = (ms / 1000) as i64;
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = crate::node::storage::civil_from_days(secs.div_euclid(86_400));
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        ms % 1000
    )
}

fn song_json(web: &Web, m: &Model, s: &Song) -> Value {
    let t = &s.meta.tags;
    let album = s.album.map(|a| &m.albums[a]);
    let ext = extension_for(&s.meta.codec);
    let bitrate = if s.meta.duration_s > 0.0 {
        (s.meta.size as f64 * 8.0 / s.meta.duration_s / 1000.0).round() as u64
    } else {
        0
    };
    let mut o = json!({
        "id": s.id,
        "isDir": false,
        "title": t.title.clone().unwrap_or_else(|| s.meta.name.clone()),
        "size": s.meta.size,
        "contentType": content_type(&s.meta.codec),
        "suffix": ext,
        "duration": s.meta.duration_s.round() as u64,
        "bitRate": bitrate,
        "path": format!(
            "{}/{}/{}.{ext}",
            t.album_key_artist().unwrap_or("Unknown Artist"),
            t.album.as_deref().unwrap_or("Unknown Album"),
            s.meta.name
        ),
        "created": iso_time(s.meta.created_ms),
        "type": "music",
        "mediaType": "song",
        "isVideo": false,
        "samplingRate": s.meta.sample_rate,
        "channelCount": s.meta.channels,
        "meffName": s.meta.name,
    });
    let Value::Object(map) = &mut o else {
        return o;
    };
    let mut put = |k: &str, v: Option<Value>| {
        if let Some(v) = v {
            map.insert(k.into(), v);
        }
    };
    put("artist", t.artist.clone().map(Value::from));
    put("album", t.album.clone().map(Value::from));
    put("track", t.track.map(Value::from));
    put("discNumber", t.disc.map(Value::from));
    put("year", t.year.map(Value::from));
    put("genre", t.genre.clone().map(Value::from));
    put(
        "coverArt",
        s.meta
            .cover
            .as_ref()
            .map(|h| super::model::cover_id(h).into()),
    );
    put("parent", album.map(|a| a.id.clone().into()));
    put("albumId", album.map(|a| a.id.clone().into()));
    put("artistId", s.artist_id.clone().map(Value::from));
    put(
        "starred",
        web.stars.starred(&s.id).map(|ms| iso_time(ms).into()),
    );
    o
}

fn album_json(web: &Web, a: &Album) -> Value {
    let mut o = json!({
        "id": a.id,
        "name": a.name,
        "title": a.name,
        "album": a.name,
        "isDir": true,
        "songCount": a.songs.len(),
        "duration": a.duration_s.round() as u64,
        "created": iso_time(a.created_ms),
    });
    let Value::Object(map) = &mut o else {
        return o;
    };
    let mut put = |k: &str, v: Option<Value>| {
        if let Some(v) = v {
            map.insert(k.into(), v);
        }
    };
    put("artist", a.artist.clone().map(Value::from));
    put("artistId", a.artist_id.clone().map(Value::from));
    put("parent", a.artist_id.clone().map(Value::from));
    put("year", a.year.map(Value::from));
    put("genre", a.genre.clone().map(Value::from));
    put("coverArt", a.cover.clone().map(Value::from));
    put(
        "starred",
        web.stars.starred(&a.id).map(|ms| iso_time(ms).into()),
    );
    o
}

fn artist_json(web: &Web, a: &Artist) -> Value {
    let mut o = json!({"id": a.id, "name": a.name, "albumCount": a.albums.len()});
    if let Value::Object(map) = &mut o {
        if let Some(c) = &a.cover {
            map.insert("coverArt".into(), c.clone().into());
        }
        if let Some(ms) = web.stars.starred(&a.id) {
            map.insert("starred".into(), iso_time(ms).into());
        }
    }
    o
}

/// The letter an artist is filed under, after the ignored articles.
fn index_letter(name: &str) -> String {
    let mut n = name.trim();
    for art in IGNORED_ARTICLES.split(' ') {
        if let Some(rest) = n.strip_prefix(art).and_then(|r| r.strip_prefix(' ')) {
            n = rest.trim_start();
            break;
        }
    }
    match n.chars().next() {
        Some(c) if c.is_alphabetic() => c.to_uppercase().collect(),
        _ => "#".into(),
    }
}

fn artist_index(web: &Web, m: &Model) -> Vec<Value> {
    let mut by: std::collections::BTreeMap<String, Vec<&Artist>> = Default::default();
    for a in &m.artists {
        by.entry(index_letter(&a.name)).or_default().push(a);
    }
    by.into_iter()
        .map(|(letter, mut artists)| {
            artists.sort_by_key(|a| crate::store::library::fold(&a.name));
            json!({"name": letter, "artist": artists.iter().map(|a| artist_json(web, a)).collect::<Vec<_>>()})
        })
        .collect()
}

fn page<T: Copy>(items: &[T], offset: usize, size: usize) -> Vec<T> {
    items.iter().skip(offset).take(size).copied().collect()
}

pub fn playlist_id(name: &str) -> String {
    format!("pl-{}", data_encoding::HEXLOWER.encode(name.as_bytes()))
}

fn playlist_name(id: &str) -> Result<String, ApiError> {
    id.strip_prefix("pl-")
        .and_then(|h| data_encoding::HEXLOWER_PERMISSIVE.decode(h.as_bytes()).ok())
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| ApiError::not_found("playlist"))
}

fn playlist_json(web: &Web, m: &Model, name: &str, with_entries: bool) -> Result<Value, ApiError> {
    let view = web
        .node
        .playlist(name)
        .map_err(|e| ApiError::new(70, format!("{e:#}")))?;
    let songs: Vec<&Song> = view.tracks.iter().filter_map(|t| m.song_named(t)).collect();
    let duration: f64 = songs.iter().map(|s| s.meta.duration_s).sum();
    let mut o = json!({
        "id": playlist_id(name),
        "name": name,
        "owner": web.creds.user(),
        "public": true,
        "songCount": songs.len(),
        "duration": duration.round() as u64,
        "created": iso_time(0),
        "changed": iso_time(0),
    });
    if let Value::Object(map) = &mut o {
        if let Some(c) = songs.iter().find_map(|s| s.meta.cover.as_ref()) {
            map.insert("coverArt".into(), super::model::cover_id(c).into());
        }
        if with_entries {
            map.insert(
                "entry".into(),
                songs.iter().map(|s| song_json(web, m, s)).collect(),
            );
        }
    }
    Ok(o)
}

/// Song ids given as `param`, as the names of the songs.
fn song_names(m: &Model, p: &Params, param: &str) -> Result<Vec<String>, ApiError> {
    p.all(param)
        .into_iter()
        .map(|id| {
            m.song(id)
                .map(|s| s.meta.name.clone())
                .ok_or_else(|| ApiError::not_found(&format!("song {id}")))
        })
        .collect()
}

/// Answers the non-media call `method`; None when there is no such call.
pub async fn answer(web: &Web, method: &str, p: &Params) -> Option<Answer> {
    let answer = answer_unsaved(web, method, p).await;
    if matches!(
        method,
        "createPlaylist" | "updatePlaylist" | "deletePlaylist"
    ) {
        // A client told "ok" keeps its change even if the peer is killed right after.
        web.node.saved().await;
    }
    answer
}

async fn answer_unsaved(web: &Web, method: &str, p: &Params) -> Option<Answer> {
    let m = web.model();
    let m = &*m;
    Some(match method {
        "ping" => Ok(Map::new()),
        "getLicense" => Ok(body(
            "license",
            json!({"valid": true, "email": "", "licenseExpires": "2099-12-31T00:00:00.000Z"}),
        )),
        "getOpenSubsonicExtensions" => Ok(body(
            "openSubsonicExtensions",
            json!([
                {"name": "formPost", "versions": [1]},
                {"name": "apiKeyAuthentication", "versions": [1]},
            ]),
        )),
        "getMusicFolders" => Ok(body(
            "musicFolders",
            json!({"musicFolder": [{"id": 1, "name": "MEFF"}]}),
        )),
        "getUser" => Ok(body(
            "user",
            json!({
                "username": web.creds.user(), "scrobblingEnabled": false, "adminRole": true,
                "settingsRole": true, "downloadRole": true, "uploadRole": true,
                "playlistRole": true, "coverArtRole": true, "commentRole": false,
                "podcastRole": false, "streamRole": true, "jukeboxRole": false,
                "shareRole": false, "videoConversionRole": false, "folder": [1],
            }),
        )),
        "getScanStatus" => Ok(body(
            "scanStatus",
            json!({"scanning": false, "count": m.songs.len()}),
        )),
        "getIndexes" => Ok(body(
            "indexes",
            json!({"lastModified": m.generation, "ignoredArticles": IGNORED_ARTICLES, "index": artist_index(web, m)}),
        )),
        "getArtists" => Ok(body(
            "artists",
            json!({"ignoredArticles": IGNORED_ARTICLES, "index": artist_index(web, m)}),
        )),
        "getArtist" => get_artist(web, m, p),
        "getAlbum" => get_album(web, m, p),
        "getMusicDirectory" => music_directory(web, m, p),
        "getSong" => p.require("id").and_then(|id| {
            m.song(id)
                .map(|s| body("song", song_json(web, m, s)))
                .ok_or_else(|| ApiError::not_found("song"))
        }),
        "getAlbumList2" => album_list(web, m, p).map(|l| body("albumList2", json!({"album": l}))),
        "getAlbumList" => album_list(web, m, p).map(|l| body("albumList", json!({"album": l}))),
        "getRandomSongs" => random_songs(web, m, p),
        "getSongsByGenre" => songs_by_genre(web, m, p),
        "getGenres" => Ok(genres(m)),
        "search3" => search(web, m, p).map(|r| body("searchResult3", r)),
        "search2" => search(web, m, p).map(|r| body("searchResult2", r)),
        "getPlaylists" => web
            .node
            .playlists()
            .iter()
            .map(|v| playlist_json(web, m, &v.name, false))
            .collect::<Result<Vec<_>, _>>()
            .map(|l| body("playlists", json!({"playlist": l}))),
        "getPlaylist" => p
            .require("id")
            .and_then(playlist_name)
            .and_then(|n| playlist_json(web, m, &n, true))
            .map(|v| body("playlist", v)),
        "createPlaylist" => create_playlist(web, m, p),
        "updatePlaylist" => update_playlist(web, m, p).map(|_| Map::new()),
        "deletePlaylist" => p
            .require("id")
            .and_then(playlist_name)
            .and_then(|n| {
                web.node
                    .playlist_rm(&n, &[])
                    .map_err(|e| ApiError::new(70, format!("{e:#}")))
            })
            .map(|_| Map::new()),
        "scrobble" => p.require("id").map(|_| Map::new()),
        "star" | "unstar" => {
            let ids: Vec<&str> = ["id", "albumId", "artistId"]
                .iter()
                .flat_map(|k| p.all(k))
                .collect();
            // Only what the library holds: a star is not a place to store arbitrary strings.
            let unknown = ids
                .iter()
                .find(|id| m.song(id).is_none() && m.album(id).is_none() && m.artist(id).is_none());
            if ids.is_empty() {
                Err(ApiError::missing("id"))
            } else if let Some(id) = unknown.filter(|_| method == "star") {
                Err(ApiError::not_found(&format!("'{id}'")))
            } else {
                web.stars
                    .set(&ids, method == "star", now_ms())
                    .map(|_| Map::new())
                    .map_err(ApiError::from)
            }
        }
        "getStarred2" => Ok(body("starred2", starred(web, m))),
        "getStarred" => Ok(body("starred", starred(web, m))),
        "getNowPlaying" => Ok(now_playing(web, m)),
        "getArtistInfo2" | "getArtistInfo" | "getAlbumInfo2" | "getAlbumInfo" => {
            let key = match method {
                "getArtistInfo2" => "artistInfo2",
                "getArtistInfo" => "artistInfo",
                "getAlbumInfo2" => "albumInfo2",
                _ => "albumInfo",
            };
            p.require("id").map(|_| body(key, json!({})))
        }
        _ => return None,
    })
}

fn get_artist(web: &Web, m: &Model, p: &Params) -> Answer {
    let id = p.require("id")?;
    let a = m.artist(id).ok_or_else(|| ApiError::not_found("artist"))?;
    let mut v = artist_json(web, a);
    if let Value::Object(map) = &mut v {
        map.insert(
            "album".into(),
            a.albums
                .iter()
                .map(|i| album_json(web, &m.albums[*i]))
                .collect(),
        );
    }
    Ok(body("artist", v))
}

fn get_album(web: &Web, m: &Model, p: &Params) -> Answer {
    let id = p.require("id")?;
    let a = m.album(id).ok_or_else(|| ApiError::not_found("album"))?;
    let mut v = album_json(web, a);
    if let Value::Object(map) = &mut v {
        map.insert(
            "song".into(),
            a.songs
                .iter()
                .map(|i| song_json(web, m, &m.songs[*i]))
                .collect(),
        );
    }
    Ok(body("album", v))
}

/// The folder view: an artist holds its albums, an album its songs.
fn music_directory(web: &Web, m: &Model, p: &Params) -> Answer {
    let id = p.require("id")?;
    let (name, parent, children): (String, Option<String>, Vec<Value>) =
        if let Some(a) = m.artist(id) {
            let albums = a.albums.iter().map(|i| album_json(web, &m.albums[*i]));
            (a.name.clone(), None, albums.collect())
        } else if let Some(a) = m.album(id) {
            let songs = a.songs.iter().map(|i| song_json(web, m, &m.songs[*i]));
            (a.name.clone(), a.artist_id.clone(), songs.collect())
        } else {
            return Err(ApiError::not_found("directory"));
        };
    let mut v = json!({"id": id, "name": name, "child": children});
    if let (Value::Object(map), Some(parent)) = (&mut v, parent) {
        map.insert("parent".into(), parent.into());
    }
    Ok(body("directory", v))
}

fn album_list(web: &Web, m: &Model, p: &Params) -> Result<Vec<Value>, ApiError> {
    let kind = p.require("type")?;
    let size = p.number("size", 10, MAX_PAGE)?;
    let offset = p.number("offset", 0, usize::MAX)?;
    let mut order: Vec<usize> = (0..m.albums.len()).collect();
    let fold = crate::store::library::fold;
    match kind {
        "random" => {
            use rand::seq::SliceRandom;
            order.shuffle(&mut rand::rng());
        }
        "newest" | "recent" | "frequent" | "highest" => {
            order.sort_by_key(|i| std::cmp::Reverse(m.albums[*i].created_ms));
        }
        "alphabeticalByName" => order.sort_by_key(|i| fold(&m.albums[*i].name)),
        "alphabeticalByArtist" => order.sort_by_key(|i| {
            let a = &m.albums[*i];
            (fold(a.artist.as_deref().unwrap_or("")), fold(&a.name))
        }),
        "starred" => order.retain(|i| web.stars.starred(&m.albums[*i].id).is_some()),
        "byYear" => {
            let from = p
                .year("fromYear")?
                .ok_or_else(|| ApiError::missing("fromYear"))?;
            let to = p
                .year("toYear")?
                .ok_or_else(|| ApiError::missing("toYear"))?;
            let (lo, hi) = (from.min(to), from.max(to));
            order.retain(|i| m.albums[*i].year.is_some_and(|y| (lo..=hi).contains(&y)));
            order.sort_by_key(|i| m.albums[*i].year);
            if from > to {
                order.reverse();
            }
        }
        "byGenre" => {
            let g = fold(p.require("genre")?);
            order.retain(|i| m.albums[*i].genre.as_deref().is_some_and(|x| fold(x) == g));
        }
        other => {
            return Err(ApiError::bad(
                "type",
                &format!("'{other}' is not a list type"),
            ));
        }
    }
    Ok(page(&order, offset, size)
        .into_iter()
        .map(|i| album_json(web, &m.albums[i]))
        .collect())
}

fn random_songs(web: &Web, m: &Model, p: &Params) -> Answer {
    use rand::seq::IteratorRandom;
    let size = p.number("size", 10, MAX_PAGE)?;
    let genre = p
        .get("genre")
        .filter(|g| !g.is_empty())
        .map(crate::store::library::fold);
    let (from, to) = (p.year("fromYear")?, p.year("toYear")?);
    let picked = m
        .songs
        .iter()
        .filter(|s| {
            genre.as_deref().is_none_or(|g| {
                s.meta
                    .tags
                    .genre
                    .as_deref()
                    .is_some_and(|x| crate::store::library::fold(x) == g)
            })
        })
        .filter(|s| from.is_none_or(|f| s.meta.tags.year.is_some_and(|y| y >= f)))
        .filter(|s| to.is_none_or(|t| s.meta.tags.year.is_some_and(|y| y <= t)))
        .choose_multiple(&mut rand::rng(), size);
    Ok(body(
        "randomSongs",
        json!({"song": picked.iter().map(|s| song_json(web, m, s)).collect::<Vec<_>>()}),
    ))
}

fn songs_by_genre(web: &Web, m: &Model, p: &Params) -> Answer {
    let g = p.require("genre")?;
    let size = p.number("count", 10, MAX_PAGE)?;
    let offset = p.number("offset", 0, usize::MAX)?;
    let songs = m.genres.get(g).map(Vec::as_slice).unwrap_or_default();
    Ok(body(
        "songsByGenre",
        json!({"song": page(songs, offset, size).iter().map(|i| song_json(web, m, &m.songs[*i])).collect::<Vec<_>>()}),
    ))
}

fn genres(m: &Model) -> Map<String, Value> {
    let list: Vec<Value> = m
        .genres
        .iter()
        .map(|(g, songs)| {
            let albums: std::collections::BTreeSet<usize> =
                songs.iter().filter_map(|i| m.songs[*i].album).collect();
            json!({"value": g, "songCount": songs.len(), "albumCount": albums.len()})
        })
        .collect();
    body("genres", json!({"genre": list}))
}

fn search(web: &Web, m: &Model, p: &Params) -> Result<Value, ApiError> {
    // Clients list everything with an empty query, some with `""`.
    let q = p.get("query").unwrap_or("").trim().trim_matches('"');
    let counts = |k: &str, o: &str| -> Result<(usize, usize), ApiError> {
        Ok((p.number(k, 20, MAX_PAGE)?, p.number(o, 0, usize::MAX)?))
    };
    let (ac, ao) = counts("artistCount", "artistOffset")?;
    let (lc, lo) = counts("albumCount", "albumOffset")?;
    let (sc, so) = counts("songCount", "songOffset")?;
    let artists = m.search_artists(q);
    let albums = m.search_albums(q);
    let songs = m.search_songs(q);
    Ok(json!({
        "artist": page(&artists, ao, ac).iter().map(|i| artist_json(web, &m.artists[*i])).collect::<Vec<_>>(),
        "album": page(&albums, lo, lc).iter().map(|i| album_json(web, &m.albums[*i])).collect::<Vec<_>>(),
        "song": page(&songs, so, sc).iter().map(|i| song_json(web, m, &m.songs[*i])).collect::<Vec<_>>(),
    }))
}

fn starred(web: &Web, m: &Model) -> Value {
    let (mut artists, mut albums, mut songs) = (Vec::new(), Vec::new(), Vec::new());
    for (id, _) in web.stars.all() {
        if let Some(s) = m.song(&id) {
            songs.push(song_json(web, m, s));
        } else if let Some(a) = m.album(&id) {
            albums.push(album_json(web, a));
        } else if let Some(a) = m.artist(&id) {
            artists.push(artist_json(web, a));
        }
    }
    json!({"artist": artists, "album": albums, "song": songs})
}

fn now_playing(web: &Web, m: &Model) -> Map<String, Value> {
    let entries: Vec<Value> = web
        .node
        .playing()
        .and_then(|p| m.song_named(&p.name))
        .map(|s| {
            let mut v = song_json(web, m, s);
            if let Value::Object(map) = &mut v {
                map.insert("username".into(), web.creds.user().into());
                map.insert("minutesAgo".into(), 0.into());
                map.insert("playerId".into(), 0.into());
            }
            v
        })
        .into_iter()
        .collect();
    body("nowPlaying", json!({"entry": entries}))
}

fn create_playlist(web: &Web, m: &Model, p: &Params) -> Answer {
    let songs = song_names(m, p, "songId")?;
    let name = match (p.get("playlistId"), p.get("name")) {
        (Some(id), _) if !id.is_empty() => {
            // Subsonic's createPlaylist with an id replaces the playlist's songs.
            let name = playlist_name(id)?;
            let old = web
                .node
                .playlist(&name)
                .map_err(|e| ApiError::new(70, format!("{e:#}")))?;
            let positions: Vec<usize> = (0..old.tracks.len()).collect();
            web.node.playlist_rm_at(&name, &positions)?;
            name
        }
        (_, Some(n)) if !n.is_empty() => {
            web.node.playlist_create(n)?;
            n.to_string()
        }
        _ => return Err(ApiError::missing("name")),
    };
    if !songs.is_empty() {
        web.node.playlist_add(&name, &songs)?;
    }
    Ok(body("playlist", playlist_json(web, m, &name, true)?))
}

fn update_playlist(web: &Web, m: &Model, p: &Params) -> Result<(), ApiError> {
    let mut name = playlist_name(p.require("playlistId")?)?;
    let old = web
        .node
        .playlist(&name)
        .map_err(|e| ApiError::new(70, format!("{e:#}")))?;
    let add = song_names(m, p, "songIdToAdd")?;
    // The client counts the entries getPlaylist showed it: those whose track is there.
    let shown: Vec<usize> = (0..old.tracks.len())
        .filter(|i| m.song_named(&old.tracks[*i]).is_some())
        .collect();
    let asked: Vec<usize> = p
        .all("songIndexToRemove")
        .into_iter()
        .map(|s| {
            s.trim()
                .parse::<usize>()
                .ok()
                .filter(|i| *i < shown.len())
                .ok_or_else(|| {
                    ApiError::bad("songIndexToRemove", "is not a position in the playlist")
                })
        })
        .collect::<Result<_, _>>()?;
    // Positions in the playlist as stored (with its missing entries) ...
    let mut remove: Vec<usize> = asked.iter().map(|i| shown[*i]).collect();
    if let Some(new) = p.get("name").filter(|n| !n.is_empty() && *n != name) {
        // A playlist is known by its name: renaming makes the new one and drops the old.
        web.node.playlist_create(new)?;
        if !old.tracks.is_empty() {
            let present: Vec<String> = old
                .tracks
                .iter()
                .filter(|t| m.song_named(t).is_some())
                .cloned()
                .collect();
            if !present.is_empty() {
                web.node.playlist_add(new, &present)?;
            }
        }
        web.node.playlist_rm(&name, &[])?;
        name = new.to_string();
        // ... but the renamed copy holds only the tracks that are there, as the client saw.
        remove = asked;
    }
    if !remove.is_empty() {
        web.node.playlist_rm_at(&name, &remove)?;
    }
    if !add.is_empty() {
        web.node.playlist_add(&name, &add)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_letters_and_playlist_ids() {
        assert_eq!(iso_time(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso_time(1_780_000_000_123), "2026-05-28T20:26:40.123Z");
        assert_eq!(index_letter("The Beatles"), "B");
        assert_eq!(index_letter("Éric"), "É");
        assert_eq!(index_letter("2Pac"), "#");
        assert_eq!(index_letter("Theory"), "T");
        let id = playlist_id("road trip");
        assert_eq!(playlist_name(&id).unwrap(), "road trip");
        assert!(playlist_name("pl-zz").is_err());
        assert!(playlist_name("42").is_err());
    }
}
