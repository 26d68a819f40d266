//! The library as a user sees it, through the CLI of real peer processes: tags in `ls`,
//! search by word starts, artists and albums, overwrite protection, removing another's track.

mod common;

use common::process::{fixture, meff, up, up_with, wait_for};
use serde_json::Value;
use std::time::Duration;

fn json(dir: &std::path::Path, args: &[&str]) -> Value {
    let (code, out, err) = meff(dir, args);
    assert_eq!(code, 0, "{args:?}: {err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?}: {e}: {out}"))
}

fn names(v: &Value) -> Vec<String> {
    let mut n: Vec<String> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_string())
        .collect();
    n.sort();
    n
}

#[test]
fn tags_search_albums_and_overwrite_protection() {
    let base = tempfile::tempdir().unwrap();
    let a = up("amy", &base.path().join("a"), None);
    let ticket = a.invite.clone().unwrap();
    let b = up_with("ben", &base.path().join("b"), Some(&ticket), false);
    let push = |dir: &std::path::Path, name: &str, file: &str| {
        let f = fixture(file);
        let (code, _, err) = meff(dir, &["push", name, f.to_str().unwrap()]);
        assert_eq!(code, 0, "push {name}: {err}");
    };
    push(&b.dir, "cafe", "tagged.mp3");
    push(&a.dir, "sunrise", "tagged.flac");
    push(&a.dir, "tide", "tagged.ogg");
    push(&a.dir, "harbour", "tagged.m4a");
    push(&a.dir, "wave", "tagged.wav");
    assert!(
        wait_for(Duration::from_secs(15), || names(&json(
            &b.dir,
            &["ls", "--json"]
        ))
        .len()
            == 5)
        .is_some()
    );

    // Tags are catalog fields, seen on every peer.
    let all = json(&b.dir, &["ls", "--json"]);
    let cafe = all
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "cafe")
        .unwrap();
    assert_eq!(cafe["title"], "Café del Mar");
    assert_eq!(cafe["artist"], "José Padilla");
    assert_eq!(cafe["album"], "Café del Mar Vol. 1");
    assert_eq!(cafe["track"], 1);
    assert_eq!(cafe["year"], 1994);
    assert_eq!(cafe["genre"], "Ambient");
    assert_eq!(cafe["pushed_by"], "ben");
    assert!(cafe["album_artist"].is_null());
    let wave = all
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "wave")
        .unwrap();
    assert_eq!(wave["title"], "Plain Wave");
    assert_eq!(wave["pushed_by"], "amy");

    // Search: word starts, case and accents folded, every word must match.
    assert_eq!(
        names(&json(&a.dir, &["ls", "cafe", "del", "--json"])),
        ["cafe"]
    );
    assert_eq!(
        names(&json(&a.dir, &["ls", "MAREE", "--json"])),
        ["harbour", "tide"]
    );
    assert_eq!(
        names(&json(&a.dir, &["ls", "afe", "--json"])),
        Vec::<String>::new()
    );
    assert_eq!(
        names(&json(&a.dir, &["ls", "--artist", "maree basse", "--json"])),
        ["harbour", "tide"]
    );
    assert_eq!(
        names(&json(&a.dir, &["ls", "--album", "Greatest Hits", "--json"])),
        ["sunrise", "tide"]
    );
    let (code, out, _) = meff(&a.dir, &["ls", "cafe"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("cafe") && out.contains("0:02") && out.contains("José Padilla"),
        "{out}"
    );
    assert!(!out.contains("2.0 s"), "{out}");
    let (_, out, _) = meff(&a.dir, &["ls", "nothing-like-this"]);
    assert_eq!(out.trim(), "no track matches");

    // Two artists' "Greatest Hits" are two albums.
    let albums = json(&a.dir, &["albums", "--json"]);
    let hits: Vec<&Value> = albums
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| x["album"] == "Greatest Hits")
        .collect();
    assert_eq!(hits.len(), 2, "{albums}");
    let mut who: Vec<&str> = hits.iter().map(|x| x["artist"].as_str().unwrap()).collect();
    who.sort();
    assert_eq!(who, ["Ambient Friends", "Marée Basse"]);
    let of = json(&a.dir, &["albums", "--artist", "Marée Basse", "--json"]);
    assert_eq!(of.as_array().unwrap().len(), 2, "{of}");
    let artists = json(&a.dir, &["artists", "--json"]);
    let m = artists
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["name"] == "Marée Basse")
        .unwrap();
    assert_eq!(
        (m["albums"].as_u64(), m["tracks"].as_u64()),
        (Some(2), Some(2))
    );

    // A name that exists is not overwritten: the error says whose it is.
    let other = fixture("tone.wav");
    let (code, _, err) = meff(&a.dir, &["push", "cafe", other.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(err.contains("pushed by ben on 20"), "{err}");
    assert!(err.contains("--replace"), "{err}");
    let still = json(&a.dir, &["ls", "cafe", "--json"]);
    assert_eq!(
        still[0]["codec"], "mp3",
        "the refused push replaced the track"
    );

    // Removing another peer's track needs --force.
    let (code, _, err) = meff(&a.dir, &["remove", "cafe"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("was pushed by ben") && err.contains("--force"),
        "{err}"
    );
    let (code, _, err) = meff(
        &a.dir,
        &["push", "cafe", other.to_str().unwrap(), "--replace"],
    );
    assert_eq!(code, 0, "{err}");
    let now = json(&b.dir, &["ls", "--json"]);
    assert!(
        wait_for(Duration::from_secs(15), || json(
            &b.dir,
            &["ls", "cafe", "--json"]
        )[0]["codec"]
            == "wav")
        .is_some(),
        "{now}"
    );
    // amy replaced it, so now it is amy's; ben needs --force.
    let (code, _, _) = meff(&b.dir, &["remove", "cafe"]);
    assert_eq!(code, 1);
    let (code, _, err) = meff(&b.dir, &["remove", "cafe", "--force"]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = meff(&a.dir, &["remove", "wave"]);
    assert_eq!(code, 0, "own track: {err}");
}

#[test]
fn import_names_from_tags_skips_duplicates_suffixes_clashes_and_lists_what_is_not_audio() {
    let base = tempfile::tempdir().unwrap();
    let a = up("amy", &base.path().join("a"), None);
    let music = base.path().join("music");
    std::fs::create_dir_all(music.join("sub/deeper")).unwrap();
    for (from, to) in [
        ("tagged.mp3", "01.mp3"),
        ("tagged.flac", "sub/02.flac"),
        ("tagged.mp3", "sub/copy of 01.mp3"),
        ("tone.ogg", "sub/deeper/plain tone.ogg"),
        ("not-audio.txt", "notes.txt"),
    ] {
        std::fs::copy(fixture(from), music.join(to)).unwrap();
    }
    std::fs::write(music.join("empty.mp3"), b"").unwrap();
    std::os::unix::fs::symlink(&music, music.join("sub/loop")).unwrap();
    // Another track already holds the name the mp3's tags give.
    let wav = fixture("tone.wav");
    let (code, _, err) = meff(
        &a.dir,
        &["push", "José Padilla - Café del Mar", wav.to_str().unwrap()],
    );
    assert_eq!(code, 0, "{err}");

    let m = music.to_str().unwrap();
    let (code, out, err) = meff(&a.dir, &["import", m, "--dry-run"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("would import"), "{out}");
    assert_eq!(
        names(&json(&a.dir, &["ls", "--json"])).len(),
        1,
        "a dry run stored tracks"
    );

    let (code, out, err) = meff(&a.dir, &["import", m]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("as 'José Padilla - Café del Mar (2)'"),
        "{out}"
    );
    assert!(out.contains("as 'Various - Sunrise'"), "{out}");
    assert!(out.contains("as 'plain tone'"), "{out}");
    assert!(
        out.contains("skipped") && out.contains("copy of 01.mp3"),
        "{out}"
    );
    assert!(
        out.contains("not audio: ") && out.contains("notes.txt"),
        "{out}"
    );
    assert!(out.contains("empty.mp3"), "{out}");
    assert!(
        out.contains("imported 3 of 6 files (1 already in the network, 2 not audio, 0 failed)"),
        "{out}"
    );
    assert_eq!(
        names(&json(&a.dir, &["ls", "--json"])),
        [
            "José Padilla - Café del Mar",
            "José Padilla - Café del Mar (2)",
            "Various - Sunrise",
            "plain tone"
        ]
    );
    // Importing again finds everything in the network already: one blob per content.
    let (code, out, _) = meff(&a.dir, &["import", m]);
    assert_eq!(code, 0);
    assert!(
        out.contains("imported 0 of 6 files (4 already in the network"),
        "{out}"
    );
    let blobs = std::fs::read_dir(a.dir.join("blobs"))
        .unwrap()
        .flatten()
        .filter(|e| e.path().is_file())
        .count();
    // The mp3 and the flac carry the same picture: it is stored once, beside 4 tracks.
    let listed = json(&a.dir, &["ls", "--json"]);
    let covers: std::collections::BTreeSet<String> = listed
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["cover"].as_str().map(str::to_string))
        .collect();
    let with_cover = listed
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["cover"].is_string())
        .count();
    assert_eq!((with_cover, covers.len()), (2, 1), "{listed}");
    assert_eq!(blobs, 4 + 1);
}
