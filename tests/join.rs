//! Joining: a peer that just joined answers from the network's catalog at once, and one
//! restarted while all its friends are offline answers too, after a bounded wait.

mod common;

use common::process::*;
use serde_json::Value;
use std::time::{Duration, Instant};

fn listed(dir: &std::path::Path) -> (usize, String) {
    let (code, out, err) = meff(dir, &["ls", "--json"]);
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    (v.as_array().unwrap().len(), err)
}

#[test]
fn a_peer_that_just_joined_sees_the_whole_catalog_at_once() {
    let base = tempfile::tempdir().unwrap();
    let a = up("a", &base.path().join("a"), None);
    assert_eq!(
        a.wait_line("joined: ", Duration::from_secs(5)).as_deref(),
        Some("joined: 0 tracks"),
        "a new network is joined at once"
    );
    for (name, file) in [
        ("one", "tone.ogg"),
        ("two", "tone.mp3"),
        ("three", "tone.flac"),
    ] {
        let f = fixture(file);
        let (code, _, err) = meff(&a.dir, &["push", name, f.to_str().unwrap()]);
        assert_eq!(code, 0, "{err}");
    }
    let ticket = a.invite.clone().unwrap();
    for round in 0..3 {
        let dir = base.path().join(format!("b{round}"));
        let b = up_with(&format!("b{round}"), &dir, Some(&ticket), false);
        // Straight after the start lines, as a script would.
        let (n, err) = listed(&b.dir);
        assert_eq!(n, 3, "round {round}: a fresh joiner listed {n} of 3 tracks");
        assert!(!err.contains("still syncing"), "{err}");
        let f = base.path().join(format!("got{round}.ogg"));
        let (code, _, err) = meff(&b.dir, &["get", "one", "-o", f.to_str().unwrap()]);
        assert_eq!(code, 0, "{err}");
        assert_eq!(
            b.wait_line("joined: ", Duration::from_secs(5)).as_deref(),
            Some("joined: 3 tracks")
        );
    }
}

#[test]
fn a_peer_restarted_while_its_friends_are_offline_answers_after_a_bounded_wait() {
    let base = tempfile::tempdir().unwrap();
    let a = up("a", &base.path().join("a"), None);
    let ticket = a.invite.clone().unwrap();
    let b = up_with("b", &base.path().join("b"), Some(&ticket), false);
    let f = fixture("tone.ogg");
    let (code, _, err) = meff(&a.dir, &["push", "one", f.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(wait_for(Duration::from_secs(15), || listed(&b.dir).0 == 1).is_some());
    // News from a peer is gathered for 10 ms into one commit, then fsynced; a kill sooner
    // loses it until a friend gives it back. A slow disk's fsync can take a while.
    std::thread::sleep(Duration::from_secs(2));
    let bdir = b.dir.clone();
    drop(b);
    drop(a);
    let b2 = up_with("b", &bdir, None, false);
    let t0 = Instant::now();
    let (n, err) = listed(&b2.dir);
    let took = t0.elapsed();
    assert_eq!(n, 1, "it answers with the catalog it kept");
    assert!(err.contains("still syncing with the network"), "{err}");
    assert!(took < Duration::from_secs(12), "ls took {took:?}");
    // Past the wait, commands answer at once.
    let t0 = Instant::now();
    let (n, _) = listed(&b2.dir);
    assert_eq!(n, 1);
    assert!(t0.elapsed() < Duration::from_secs(2), "{:?}", t0.elapsed());
    assert!(b2.wait_line("joined: ", Duration::ZERO).is_none());
}

/// The Quick start's demo: three in-process peers, a push, a stream from the peer that was
/// not pushed to. It used to lose the race between the push's catalog news and the stream.
#[test]
fn the_demo_streams_every_time() {
    let base = tempfile::tempdir().unwrap();
    for round in 0..3 {
        let wav = base.path().join(format!("demo{round}.wav"));
        let out = std::process::Command::new(BIN)
            .arg("demo")
            .arg("--output")
            .arg(format!("wav:{}", wav.display()))
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(0),
            "round {round}: {stdout}{stderr}"
        );
        assert!(stdout.contains("played 20.0 s"), "{stdout}");
        assert!(std::fs::metadata(&wav).unwrap().len() > 1_000_000);
    }
}

/// The Quick start as a user runs it with no sound card: real time on the null clock, and
/// the streaming path writes nothing to disk (the demo's peers are not counted as the stream).
#[test]
fn the_demo_on_the_null_clock_writes_nothing_to_disk() {
    let out = std::process::Command::new(BIN)
        .args(["demo", "--output", "null"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(
        stdout.contains("0 underruns") && stdout.contains(" 0 bytes written to disk by the stream"),
        "{stdout}"
    );
    assert!(stderr.is_empty(), "the demo printed noise: {stderr}");
}
