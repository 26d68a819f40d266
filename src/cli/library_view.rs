//! How `ls`, `artists` and `albums` print: aligned columns, `m:ss` durations, tag text shown
//! as stored (already free of control characters) and cut to its column.

use crate::node::storage::Listing;
use crate::node::{ImportOutcome, ImportReport};
use crate::store::library::{AlbumSummary, ArtistSummary, clock};
use std::path::Path;

/// `s` cut to `width` characters (with `…` when cut), padded to it.
fn col(s: &str, width: usize) -> String {
    let n = s.chars().count();
    if n <= width {
        format!("{s}{}", " ".repeat(width - n))
    } else {
        let cut: String = s.chars().take(width.saturating_sub(1)).collect();
        format!("{cut}…")
    }
}

pub fn track_lines(tracks: &[Listing]) -> Vec<String> {
    let mut lines = vec![format!(
        "{} {:>6}  {} {}  {:<6} {:>9}  replicas",
        col("NAME", 32),
        "TIME",
        col("ARTIST", 20),
        col("ALBUM", 24),
        "CODEC",
        "SIZE"
    )];
    lines.extend(tracks.iter().map(|t| {
        format!(
            "{} {:>6}  {} {}  {:<6} {:>9}  {}",
            col(&t.name, 32),
            clock(t.duration_s),
            col(t.artist.as_deref().unwrap_or("-"), 20),
            col(t.album.as_deref().unwrap_or("-"), 24),
            t.codec,
            super::commands::human_bytes(t.size),
            t.replicas
        )
    }));
    lines
}

pub fn artist_lines(artists: &[ArtistSummary]) -> Vec<String> {
    let mut lines = vec![format!(
        "{} {:>6} {:>6} {:>9}",
        col("ARTIST", 32),
        "ALBUMS",
        "TRACKS",
        "TIME"
    )];
    lines.extend(artists.iter().map(|a| {
        format!(
            "{} {:>6} {:>6} {:>9}",
            col(&a.name, 32),
            a.albums,
            a.tracks,
            clock(a.duration_s)
        )
    }));
    lines
}

pub fn album_lines(albums: &[AlbumSummary]) -> Vec<String> {
    let mut lines = vec![format!(
        "{} {} {:>4} {:>6} {:>9}",
        col("ALBUM", 32),
        col("ARTIST", 24),
        "YEAR",
        "TRACKS",
        "TIME"
    )];
    lines.extend(albums.iter().map(|a| {
        format!(
            "{} {} {:>4} {:>6} {:>9}",
            col(&a.album, 32),
            col(a.artist.as_deref().unwrap_or("-"), 24),
            a.year.map(|y| y.to_string()).unwrap_or_else(|| "-".into()),
            a.tracks,
            clock(a.duration_s)
        )
    }));
    lines
}

/// One line per file of an import (what became of it).
pub fn import_line(path: &Path, outcome: &ImportOutcome, dry_run: bool) -> Option<String> {
    let p = path.display();
    let line = match outcome {
        ImportOutcome::Imported { name, warnings } => {
            let verb = if dry_run { "would import" } else { "imported" };
            let mut line = format!("{verb} {p} as '{name}'");
            for w in warnings {
                line.push_str(&format!(" (warning: {w})"));
            }
            line
        }
        ImportOutcome::Duplicate { existing } => {
            format!("skipped {p}: already in the network as '{existing}'")
        }
        ImportOutcome::NotAudio { why } => format!("not audio: {p} ({why})"),
        ImportOutcome::Failed { why } => format!("failed: {p}: {why}"),
    };
    Some(escape_controls(&line))
}

/// File names (and the errors quoting them) may hold any byte but `/`: control characters
/// are shown escaped, so a file name cannot drive the terminal it is printed on.
fn escape_controls(line: &str) -> String {
    if !line.chars().any(char::is_control) {
        return line.to_string();
    }
    line.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

pub fn import_summary(report: &ImportReport, dry_run: bool) -> String {
    let count = |f: fn(&ImportOutcome) -> bool| report.files.iter().filter(|(_, o)| f(o)).count();
    let imported = count(|o| matches!(o, ImportOutcome::Imported { .. }));
    let dup = count(|o| matches!(o, ImportOutcome::Duplicate { .. }));
    let not_audio = count(|o| matches!(o, ImportOutcome::NotAudio { .. }));
    let failed = count(|o| matches!(o, ImportOutcome::Failed { .. }));
    let verb = if dry_run { "would import" } else { "imported" };
    format!(
        "{verb} {imported} of {} files ({dup} already in the network, {not_audio} not audio, {failed} failed)",
        report.files.len()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_name_cannot_drive_the_terminal() {
        let path = Path::new("/music/\u{1b}]52;c;ZXZpbA==\u{7}\u{1b}[2Jsong.flac");
        let why = "cannot read /music/\u{1b}[2J: denied".to_string();
        let line = import_line(path, &ImportOutcome::Failed { why }, false).unwrap();
        assert!(!line.chars().any(char::is_control), "{line:?}");
        assert!(line.contains("\\u{1b}]52;c;ZXZpbA==\\u{7}"), "{line}");
        let plain = import_line(
            Path::new("/music/é song.flac"),
            &ImportOutcome::NotAudio { why: "x".into() },
            false,
        )
        .unwrap();
        assert_eq!(plain, "not audio: /music/é song.flac (x)");
    }
}
