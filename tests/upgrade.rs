//! Upgrading: a data dir written by the last release before outboards (protocol 6; made by
//! `tests/fixtures/upgrade/make.sh` with that release's binary) starts with this one. Its
//! catalog is converted once, its blobs get outboards, and a peer of this release fetches and
//! streams its tracks, every piece verified through them.

mod common;

use common::process::*;
use serde_json::Value;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

fn unpack(into: &Path) {
    let archive = fixture("upgrade/datadir-protocol6.tar.gz");
    let ok = Command::new("tar")
        .arg("-xzf")
        .arg(&archive)
        .arg("-C")
        .arg(into)
        .arg("--no-same-owner")
        .status()
        .unwrap()
        .success();
    assert!(ok, "cannot unpack {}", archive.display());
}

fn names(dir: &Path) -> Vec<String> {
    let (code, out, err) = meff(dir, &["ls", "--json"]);
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    let mut names: Vec<String> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap().to_string())
        .collect();
    names.sort();
    names
}

fn hex_of(path: &Path) -> String {
    blake3::hash(&std::fs::read(path).unwrap())
        .to_hex()
        .to_string()
}

#[test]
fn a_data_dir_of_protocol_6_is_migrated_and_served() {
    let base = tempfile::tempdir().unwrap();
    unpack(base.path());
    let dir = base.path().join("amy");
    let tone = hex_of(&fixture("tone.wav"));
    let outboard = dir.join("blobs/outboards").join(&tone);
    assert!(dir.join("blobs").join(&tone).is_file());
    assert!(!outboard.exists(), "the old release stored no outboards");

    let amy = up_with("amy", &dir, None, false);
    assert_eq!(names(&dir), ["song", "tone"]);
    let (code, out, err) = meff(&dir, &["playlist", "ls", "trip"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("tone") && out.contains("song"), "{out}");
    assert!(
        wait_for(Duration::from_secs(10), || outboard.is_file()).is_some(),
        "no outboard built for the old blob"
    );
    // 88,244 bytes are 6 pieces of 16 KiB: 5 hash pairs.
    assert_eq!(std::fs::metadata(&outboard).unwrap().len(), 5 * 64);

    // A peer of this release joins and fetches both tracks from amy, the only holder.
    let (code, ticket, err) = meff(&dir, &["invite"]);
    assert_eq!(code, 0, "{err}");
    let bo = up("bo", &base.path().join("bo"), Some(ticket.trim()));
    assert!(
        wait_for(Duration::from_secs(10), || names(&bo.dir).len() == 2).is_some(),
        "bo never saw the old catalog"
    );
    for (name, file) in [("tone", "tone.wav"), ("song", "tagged.flac")] {
        let out = base.path().join(format!("{name}.out"));
        let (code, _, err) = meff(&bo.dir, &["get", name, "-o", out.to_str().unwrap()]);
        assert_eq!(code, 0, "get {name}: {err}");
        assert_eq!(
            std::fs::read(&out).unwrap(),
            std::fs::read(fixture(file)).unwrap(),
            "{name} differs"
        );
    }
    let (code, out, err) = meff(
        &bo.dir,
        &["stream", "tone", "--output", "null", "--stats", "json"],
    );
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["underruns"], 0, "{out}");
    assert_eq!(v["bytes"], 88_244, "{out}");
    drop(bo);
    drop(amy);

    // The conversion was written back: a second start converts nothing.
    let amy = up_with("amy", &dir, None, false);
    assert_eq!(names(&dir), ["song", "tone"]);
    drop(amy);
    let log = std::fs::read_to_string(dir.with_extension("log")).unwrap();
    assert_eq!(
        log.matches("entries converted to this release's layout")
            .count(),
        1,
        "{log}"
    );
}
