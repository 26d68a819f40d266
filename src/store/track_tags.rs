//! A track's tags as the catalog carries them: cleaned once when read, checked again when a
//! peer sends them (tags are text from anyone's files, and end up on terminals).

use serde::{Deserialize, Serialize};

/// Longest tag text kept, in bytes (cut at a character boundary): a title is a line, not a
/// 10 MB blob.
pub const MAX_TAG_BYTES: usize = 512;

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrackTags {
    pub title: Option<String>,
    pub artist: Option<String>,
    pub album: Option<String>,
    pub album_artist: Option<String>,
    pub track: Option<u32>,
    pub disc: Option<u32>,
    pub year: Option<u16>,
    pub genre: Option<String>,
}

impl TrackTags {
    /// The artist an album is filed under: the album artist, else the track's artist.
    pub fn album_key_artist(&self) -> Option<&str> {
        self.album_artist.as_deref().or(self.artist.as_deref())
    }

    pub fn text_fields(&self) -> [Option<&str>; 5] {
        [
            self.title.as_deref(),
            self.artist.as_deref(),
            self.album.as_deref(),
            self.album_artist.as_deref(),
            self.genre.as_deref(),
        ]
    }

    /// Whether tags that came from a peer are ones we would have kept ourselves.
    pub fn check(&self) -> Result<(), String> {
        for t in self.text_fields().into_iter().flatten() {
            if clean_tag(t).as_deref() != Some(t) {
                return Err(format!("tag {:?} is not clean text", truncate(t, 40)));
            }
        }
        Ok(())
    }
}

/// Tag text as stored: control, bidirectional and zero-width characters dropped, whitespace
/// runs made one space, at most `MAX_TAG_BYTES`; None when nothing is left.
pub fn clean_tag(raw: &str) -> Option<String> {
    let mut out = String::new();
    let mut space = false;
    for c in raw.chars() {
        if c.is_whitespace() {
            space = !out.is_empty();
            continue;
        }
        if c.is_control() || super::track_name::is_invisible_format(c) {
            continue;
        }
        let extra = if space { 1 } else { 0 };
        if out.len() + extra + c.len_utf8() > MAX_TAG_BYTES {
            break;
        }
        if space {
            out.push(' ');
            space = false;
        }
        out.push(c);
    }
    (!out.is_empty()).then_some(out)
}

fn truncate(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cleans_what_would_corrupt_a_terminal_or_a_listing() {
        assert_eq!(
            clean_tag("  Café \t del\nMar "),
            Some("Café del Mar".into())
        );
        assert_eq!(clean_tag("\u{1b}[31mred\u{7}"), Some("[31mred".into()));
        assert_eq!(clean_tag("\u{202e}gnp.exe"), Some("gnp.exe".into()));
        assert_eq!(clean_tag(" \u{200b} "), None);
        let long = "é".repeat(10_000_000 / 2);
        let cut = clean_tag(&long).unwrap();
        assert!(cut.len() <= MAX_TAG_BYTES && cut.chars().all(|c| c == 'é'));
        let t = TrackTags {
            title: Some("ok".into()),
            ..Default::default()
        };
        assert!(t.check().is_ok());
        let bad = TrackTags {
            artist: Some("a\u{1b}b".into()),
            ..Default::default()
        };
        assert!(bad.check().is_err());
    }
}
