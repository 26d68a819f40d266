//! Tag reading on every format. The tagged fixtures are made from the tone fixtures by
//! `cargo test --lib write_tagged_fixtures -- --ignored` (below), which writes these tags with
//! lofty; the tests read them back through MEFF's reader.

use super::read_file_tags;
use super::tests::fixture_path;
use crate::store::track_tags::TrackTags;
use lofty::config::WriteOptions;
use lofty::prelude::*;
use lofty::tag::{Tag, TagType};

/// A 1×1 PNG: the embedded cover.
pub(super) const COVER_PNG: &[u8] = &[
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1f, 0x15, 0xc4,
    0x89, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0xf8, 0xcf, 0xc0, 0xf0,
    0x1f, 0x00, 0x05, 0x00, 0x01, 0xff, 0x89, 0x99, 0x3d, 0x1d, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45,
    0x4e, 0x44, 0xae, 0x42, 0x60, 0x82,
];

/// (source fixture, tagged fixture, tag type written, has a cover, the tags)
fn tagged_fixtures() -> Vec<(&'static str, &'static str, TagType, bool, TrackTags)> {
    let t =
        |title: &str, artist: &str, album: &str, aa: Option<&str>, n: u32, year: u16| TrackTags {
            title: Some(title.into()),
            artist: Some(artist.into()),
            album: Some(album.into()),
            album_artist: aa.map(Into::into),
            track: Some(n),
            disc: Some(1),
            year: Some(year),
            genre: Some("Ambient".into()),
        };
    vec![
        (
            "tone.mp3",
            "tagged.mp3",
            TagType::Id3v2,
            true,
            t(
                "Café del Mar",
                "José Padilla",
                "Café del Mar Vol. 1",
                None,
                1,
                1994,
            ),
        ),
        (
            "tone.flac",
            "tagged.flac",
            TagType::VorbisComments,
            true,
            t(
                "Sunrise",
                "Various",
                "Greatest Hits",
                Some("Ambient Friends"),
                2,
                2001,
            ),
        ),
        (
            "tone.ogg",
            "tagged.ogg",
            TagType::VorbisComments,
            false,
            t(
                "Evening Tide",
                "Marée Basse",
                "Greatest Hits",
                None,
                3,
                2010,
            ),
        ),
        (
            "tone.m4a",
            "tagged.m4a",
            TagType::Mp4Ilst,
            true,
            t("Harbour Lights", "Marée Basse", "Quai Ouest", None, 4, 2012),
        ),
        (
            "tone.wav",
            "tagged.wav",
            TagType::RiffInfo,
            false,
            TrackTags {
                title: Some("Plain Wave".into()),
                artist: Some("Test Signal".into()),
                album: Some("Fixtures".into()),
                album_artist: None,
                track: Some(5),
                disc: None,
                year: Some(2026),
                genre: Some("Test".into()),
            },
        ),
    ]
}

#[test]
#[ignore = "writes tests/fixtures/tagged.*; run by hand to regenerate them"]
fn write_tagged_fixtures() {
    for (src, dst, tag_type, cover, tags) in tagged_fixtures() {
        let out = fixture_path(dst);
        std::fs::copy(fixture_path(src), &out).unwrap();
        let mut tag = Tag::new(tag_type);
        tag.set_title(tags.title.clone().unwrap());
        tag.set_artist(tags.artist.clone().unwrap());
        tag.set_album(tags.album.clone().unwrap());
        if let Some(aa) = &tags.album_artist {
            tag.insert_text(ItemKey::AlbumArtist, aa.clone());
        }
        tag.set_track(tags.track.unwrap());
        if let Some(d) = tags.disc {
            tag.set_disk(d);
        }
        tag.insert_text(ItemKey::Year, tags.year.unwrap().to_string());
        tag.insert_text(ItemKey::RecordingDate, tags.year.unwrap().to_string());
        tag.set_genre(tags.genre.clone().unwrap());
        if cover {
            tag.push_picture(
                lofty::picture::Picture::unchecked(COVER_PNG.to_vec())
                    .pic_type(lofty::picture::PictureType::CoverFront)
                    .mime_type(lofty::picture::MimeType::Png)
                    .build(),
            );
        }
        tag.save_to_path(&out, WriteOptions::default())
            .unwrap_or_else(|e| panic!("{dst}: {e}"));
    }
}

#[test]
fn reads_the_tags_of_every_format() {
    for (_, name, _, cover, want) in tagged_fixtures() {
        let got = read_file_tags(&fixture_path(name));
        assert_eq!(got.tags, want, "{name}: {:?}", got.warnings);
        assert_eq!(
            got.cover.as_ref().map(|c| c.data.as_slice()),
            cover.then_some(COVER_PNG),
            "{name}"
        );
        if cover {
            assert_eq!(got.cover.unwrap().mime, "image/png", "{name}");
        }
        // The tagged file is still the same audio.
        let info = super::probe_file(&fixture_path(name)).unwrap();
        assert!((info.duration_s - 2.0).abs() < 0.1, "{name}");
    }
}

#[test]
fn untagged_and_unreadable_files_have_no_tags_and_never_fail() {
    let plain = read_file_tags(&fixture_path("tone.wav"));
    assert_eq!(plain.tags, TrackTags::default());
    assert!(plain.cover.is_none());
    let text = read_file_tags(&fixture_path("not-audio.txt"));
    assert_eq!(text.tags, TrackTags::default());
    assert!(!text.warnings.is_empty());
    let missing = read_file_tags(&fixture_path("no-such-file.mp3"));
    assert_eq!(missing.tags, TrackTags::default());
}

#[test]
fn absurd_tags_are_cut_and_a_huge_cover_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("huge.mp3");
    std::fs::copy(fixture_path("tone.mp3"), &out).unwrap();
    let mut tag = Tag::new(TagType::Id3v2);
    tag.set_title(format!("\u{1b}[2J{}", "x".repeat(10 << 20)));
    tag.set_artist("bad\u{7}\u{202e}name".into());
    tag.push_picture(
        lofty::picture::Picture::unchecked(vec![0u8; 6 << 20])
            .pic_type(lofty::picture::PictureType::CoverFront)
            .mime_type(lofty::picture::MimeType::Jpeg)
            .build(),
    );
    tag.save_to_path(&out, WriteOptions::default()).unwrap();
    let got = read_file_tags(&out);
    let title = got.tags.title.unwrap_or_default();
    assert!(
        title.len() <= 512 && !title.contains('\u{1b}'),
        "{}",
        title.len()
    );
    assert_eq!(got.tags.artist.as_deref(), Some("badname"));
    assert!(got.cover.is_none());
    assert!(
        got.warnings.iter().any(|w| w.contains("cover")),
        "{:?}",
        got.warnings
    );
}
