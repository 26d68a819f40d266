//! Reading a file's tags and cover with lofty (ID3v2/ID3v1 in mp3 and wav, Vorbis comments
//! in flac and ogg, MP4 atoms, RIFF INFO). Tags never decide whether a file is a track:
//! unreadable or absurd tags leave the track untagged, with a warning.

use crate::store::track_tags::{TrackTags, clean_tag};
use lofty::config::ParseOptions;
use lofty::prelude::*;
use lofty::probe::Probe;
use std::path::Path;

/// Covers above this are not stored (the track is, with a warning).
pub const MAX_COVER_BYTES: usize = crate::store::catalog::MAX_COVER_BYTES as usize;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cover {
    pub data: Vec<u8>,
    pub mime: String,
}

#[derive(Clone, Debug, Default)]
pub struct FileTags {
    pub tags: TrackTags,
    pub cover: Option<Cover>,
    /// What could not be read, for the user ("cover of 50 MiB not stored").
    pub warnings: Vec<String>,
}

fn probe(path: &Path, cover: bool) -> Result<lofty::file::TaggedFile, String> {
    let options = ParseOptions::new()
        .read_properties(false)
        .read_cover_art(cover);
    Probe::open(path)
        .map_err(|e| e.to_string())?
        .guess_file_type()
        .map_err(|e| e.to_string())?
        .options(options)
        .read()
        .map_err(|e| e.to_string())
}

/// Reads the tags of the file at `path`. The primary tag of the format wins; fields it
/// lacks come from the file's other tags (an mp3 with both ID3v2 and ID3v1).
pub fn read_file_tags(path: &Path) -> FileTags {
    let mut out = FileTags::default();
    // Text first, without pictures: a huge picture must not cost the title.
    match probe(path, false) {
        Ok(file) => {
            let mut tags: Vec<&lofty::tag::Tag> = file.primary_tag().into_iter().collect();
            tags.extend(
                file.tags()
                    .iter()
                    .filter(|t| Some(t.tag_type()) != file.primary_tag().map(|p| p.tag_type())),
            );
            for tag in tags {
                merge(&mut out.tags, tag);
            }
        }
        Err(e) => {
            out.warnings.push(format!("tags not readable: {e}"));
            return out;
        }
    }
    match probe(path, true) {
        Ok(file) => {
            let picture = file
                .primary_tag()
                .into_iter()
                .chain(file.tags())
                .flat_map(|t| t.pictures())
                .max_by_key(|p| matches!(p.pic_type(), lofty::picture::PictureType::CoverFront));
            if let Some(p) = picture {
                if p.data().len() > MAX_COVER_BYTES {
                    out.warnings.push(format!(
                        "cover of {} MiB not stored (over 4 MiB)",
                        p.data().len() >> 20
                    ));
                } else if !p.data().is_empty() {
                    out.cover = Some(Cover {
                        data: p.data().to_vec(),
                        mime: p
                            .mime_type()
                            .map(|m| m.as_str().to_string())
                            .unwrap_or_else(|| "image/jpeg".into()),
                    });
                }
            }
        }
        Err(e) => out.warnings.push(format!("cover not stored: {e}")),
    }
    out
}

fn merge(into: &mut TrackTags, tag: &lofty::tag::Tag) {
    let text = |v: Option<std::borrow::Cow<'_, str>>| v.and_then(|s| clean_tag(&s));
    if into.title.is_none() {
        into.title = text(tag.title());
    }
    if into.artist.is_none() {
        into.artist = text(tag.artist());
    }
    if into.album.is_none() {
        into.album = text(tag.album());
    }
    if into.album_artist.is_none() {
        into.album_artist = tag.get_string(ItemKey::AlbumArtist).and_then(clean_tag);
    }
    if into.genre.is_none() {
        into.genre = text(tag.genre());
    }
    if into.track.is_none() {
        into.track = tag.track().filter(|n| *n > 0);
    }
    if into.disc.is_none() {
        into.disc = tag.disk().filter(|n| *n > 0);
    }
    if into.year.is_none() {
        into.year = tag.date().map(|d| d.year).filter(|y| *y > 0);
    }
}
