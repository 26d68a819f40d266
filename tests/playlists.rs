//! Playlists through real peer processes and the `meff` CLI: made on one peer, edited on
//! another, seen by both, played as a queue that skips an entry whose track is gone.

mod common;

use common::process::*;
use serde_json::Value;
use std::path::Path;
use std::time::Duration;

fn view(dir: &Path, playlist: &str) -> Value {
    let (code, out, err) = meff(dir, &["playlist", "ls", playlist, "--json"]);
    assert_eq!(code, 0, "{err}");
    let all: Value = serde_json::from_str(&out).unwrap();
    all[0].clone()
}

fn tracks(v: &Value) -> Vec<String> {
    v["tracks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn playlists_are_shared_edited_anywhere_and_played_skipping_what_is_gone() {
    let base = tempfile::tempdir().unwrap();
    let a = up("a", &base.path().join("a"), None);
    let b = up("b", &base.path().join("b"), a.invite.as_deref());
    for (name, file) in [
        ("one", "tone.mp3"),
        ("two", "tone.flac"),
        ("three", "tone.ogg"),
    ] {
        let f = fixture(file);
        let (code, _, err) = meff(&a.dir, &["push", name, f.to_str().unwrap()]);
        assert_eq!(code, 0, "{err}");
    }
    let ok = |dir: &Path, args: &[&str]| {
        let (code, out, err) = meff(dir, args);
        assert_eq!(code, 0, "{args:?}: {out}{err}");
        out
    };
    assert!(ok(&a.dir, &["playlist", "create", "mix"]).contains("created playlist 'mix'"));
    let (code, _, err) = meff(&a.dir, &["playlist", "create", "mix"]);
    assert_eq!(code, 1);
    assert!(err.contains("a playlist named 'mix' exists"), "{err}");
    ok(&a.dir, &["playlist", "add", "mix", "one", "two"]);
    // b edits what a made, once it has heard of it.
    assert!(
        wait_for(Duration::from_secs(15), || meff(
            &b.dir,
            &["playlist", "ls", "mix"]
        )
        .0 == 0)
        .is_some()
    );
    ok(&b.dir, &["playlist", "add", "mix", "three"]);
    ok(&b.dir, &["playlist", "mv", "mix", "3", "1"]);
    let want = ["three", "one", "two"].map(String::from).to_vec();
    assert!(
        wait_for(Duration::from_secs(15), || tracks(&view(&a.dir, "mix"))
            == want)
        .is_some(),
        "a sees b's edits: {}",
        view(&a.dir, "mix")
    );
    let text = ok(&a.dir, &["playlist", "ls", "mix"]);
    assert!(
        text.contains("   1. three") && text.contains("   3. two"),
        "{text}"
    );
    // A playlist named like a track is a playlist; the track is still a track.
    ok(&a.dir, &["playlist", "create", "one"]);
    assert!(ok(&a.dir, &["playlist", "ls"]).contains("mix  (3 tracks)"));

    // A track removed from the network shows as missing and is skipped when played.
    ok(&a.dir, &["remove", "one"]);
    assert!(
        wait_for(Duration::from_secs(15), || view(&b.dir, "mix")["missing"]
            == serde_json::json!(["one"]))
        .is_some(),
        "{}",
        view(&b.dir, "mix")
    );
    assert!(ok(&b.dir, &["playlist", "ls", "mix"]).contains("one  (missing)"));
    let (code, out, err) = meff(
        &b.dir,
        &[
            "stream",
            "--playlist",
            "mix",
            "--output",
            "null",
            "--stats",
            "json",
        ],
    );
    assert_eq!(
        code, 1,
        "a skipped track makes the exit status 1: {out}{err}"
    );
    assert!(err.contains("warning: skipped one: "), "{err}");
    let stats: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(stats["tracks"], 2, "{stats}");

    // Bad input: clear errors, nothing changes.
    for (args, why) in [
        (
            &["playlist", "add", "mix", "nosuch"][..],
            "no track named 'nosuch'",
        ),
        (&["playlist", "ls", "nope"][..], "no playlist named 'nope'"),
        (
            &["playlist", "mv", "mix", "1", "9"][..],
            "positions go from 1 to 3",
        ),
        (
            &["playlist", "rm", "mix", "nosuch"][..],
            "'mix' has no entry 'nosuch'",
        ),
        (&["playlist", "create", "a/b"][..], "playlist"),
        (
            &["stream", "--playlist", "nope", "--output", "null"][..],
            "no playlist named",
        ),
    ] {
        let (code, _, err) = meff(&b.dir, args);
        assert_eq!(code, 1, "{args:?}: {err}");
        assert!(err.contains(why), "{args:?}: {err}");
    }
    assert_eq!(tracks(&view(&a.dir, "mix")).len(), 3);

    // Removing entries, then the playlist.
    assert!(ok(&b.dir, &["playlist", "rm", "mix", "one"]).contains("removed 1 from 'mix'"));
    assert!(ok(&a.dir, &["playlist", "rm", "mix"]).contains("deleted playlist 'mix'"));
    ok(&a.dir, &["playlist", "rm", "one"]);
    assert!(
        wait_for(Duration::from_secs(15), || ok(&b.dir, &["playlist", "ls"])
            .contains("no playlists"))
        .is_some()
    );
    // Playlists survive a restart.
    ok(&a.dir, &["playlist", "add", "kept", "two"]);
    drop(a);
    let a = up_with("a", &base.path().join("a"), None, false);
    assert_eq!(tracks(&view(&a.dir, "kept")), ["two"]);
}
