//! The queue through real peer processes and the `meff` CLI: an album streamed gapless
//! from tracks held by different peers, `queue`, `next`, `queue add`, and a track whose
//! holder died skipped with a warning.

mod common;

use common::process::*;
use lofty::config::WriteOptions;
use lofty::prelude::*;
use lofty::tag::{Tag, TagType};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

fn gapless(name: &str) -> PathBuf {
    fixture(&format!("gapless/{name}"))
}

fn alive_count(dir: &Path) -> usize {
    status(dir)["peers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["state"] == "alive")
        .count()
}

fn mesh3(base: &Path, replicas: &str) -> Vec<Peer> {
    let r = ["--replicas", replicas];
    let a = up_full("a", &base.join("a"), None, true, &[], &r);
    let ticket = a.invite.clone().unwrap();
    let b = up_full("b", &base.join("b"), Some(&ticket), false, &[], &r);
    let c = up_full("c", &base.join("c"), Some(&ticket), false, &[], &r);
    let peers = vec![a, b, c];
    assert!(
        wait_for(Duration::from_secs(10), || peers
            .iter()
            .all(|p| alive_count(&p.dir) == 2))
        .is_some(),
        "the mesh did not form"
    );
    peers
}

/// Copies of the three gapless flac parts tagged as album "Cuts", tracks 1..3.
fn tagged_album(dir: &Path) -> Vec<PathBuf> {
    (1..=3)
        .map(|i| {
            let out = dir.join(format!("cut{i}.flac"));
            std::fs::copy(gapless(&format!("part{i}.flac")), &out).unwrap();
            let mut tag = Tag::new(TagType::VorbisComments);
            tag.set_title(format!("Cut {i}"));
            tag.set_artist("Tester".to_string());
            tag.set_album("Cuts".to_string());
            tag.set_track(i);
            tag.save_to_path(&out, WriteOptions::default()).unwrap();
            out
        })
        .collect()
}

fn holders(dir: &Path) -> Vec<(String, Vec<String>)> {
    let (_, out, _) = meff(dir, &["ls", "--json"]);
    let listing: Value = serde_json::from_str(&out).unwrap();
    listing
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            let hs = t["holders"]
                .as_array()
                .unwrap()
                .iter()
                .map(|h| h.as_str().unwrap().to_string())
                .collect();
            (t["name"].as_str().unwrap().to_string(), hs)
        })
        .collect()
}

#[test]
fn an_album_streams_gapless_from_several_peers_and_the_queue_is_driven_by_commands() {
    let base = tempfile::tempdir().unwrap();
    let peers = mesh3(base.path(), "1");
    let files = tagged_album(base.path());
    // Pushed out of order under names that sort the wrong way: the album's order is its
    // track numbers.
    for (name, file) in [
        ("z first", &files[0]),
        ("y second", &files[1]),
        ("x third", &files[2]),
    ] {
        let (code, _, err) = meff(&peers[0].dir, &["push", name, file.to_str().unwrap()]);
        assert_eq!(code, 0, "{err}");
    }
    let spread: std::collections::BTreeSet<_> = holders(&peers[0].dir)
        .into_iter()
        .flat_map(|(_, h)| h)
        .collect();
    eprintln!("the album is held by {} peers", spread.len());

    // To a WAV file: the recording, sample for sample.
    let wav = base.path().join("album.wav");
    let out_arg = format!("wav:{}", wav.display());
    let (code, out, err) = meff(
        &peers[1].dir,
        &[
            "stream", "--album", "cuts", "--output", &out_arg, "--stats", "json",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let stats: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(stats["tracks"], 3, "{stats}");
    assert_eq!(stats["gaps_ms"], serde_json::json!([0.0, 0.0]), "{stats}");
    let mut want = Vec::new();
    for i in 1..=3 {
        let data = std::fs::read(gapless(&format!("part{i}.flac"))).unwrap();
        want.extend(meff::audio::decode_all(&data, Some("flac")).unwrap().2);
    }
    let mut r = hound::WavReader::open(&wav).unwrap();
    let got: Vec<f32> = r
        .samples::<i16>()
        .map(|s| f32::from(s.unwrap()) / 32768.0)
        .collect();
    assert_eq!(got.len(), want.len());
    assert!(got == want, "the streamed album differs from the recording");

    // At real time on the null clock, with the queue driven from other commands. The cuts
    // last 1.5 s, too short for a slow machine to run the commands below within one, so
    // this half plays 4 s tracks.
    for name in ["z first", "y second", "x third"] {
        let wav = base.path().join(format!("{name}.wav"));
        tone_wav(&wav, 4);
        let name = format!("{name} long");
        let (code, _, err) = meff(&peers[0].dir, &["push", &name, wav.to_str().unwrap()]);
        assert_eq!(code, 0, "{err}");
    }
    let listener = peers[2].dir.clone();
    let player = std::thread::spawn(move || {
        meff(
            &listener,
            &[
                "stream",
                "z first long",
                "y second long",
                "x third long",
                "--output",
                "null",
                "--stats",
                "json",
            ],
        )
    });
    let dir = &peers[2].dir;
    let playing = |name: &str| status(dir)["playing"]["name"] == name;
    assert!(wait_for(Duration::from_secs(15), || playing("z first long")).is_some());
    let (_, q, _) = meff(dir, &["queue", "--json"]);
    let q: Value = serde_json::from_str(&q).unwrap();
    assert_eq!(
        q,
        serde_json::json!({"position": 0,
            "tracks": ["z first long", "y second long", "x third long"],
            "shuffle": false, "repeat": false})
    );
    let (code, out, err) = meff(dir, &["next"]);
    assert_eq!((code, out.trim()), (0, "playing y second long"), "{err}");
    assert!(wait_for(Duration::from_secs(4), || playing("y second long")).is_some());
    let (code, _, err) = meff(dir, &["queue", "add", "z first long"]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = meff(dir, &["queue", "add", "no such track"]);
    assert_eq!(code, 1);
    assert!(err.contains("no such track"), "{err}");
    let (code, out, err) = player.join().unwrap();
    assert_eq!(code, 0, "{err}");
    let stats: Value = serde_json::from_str(out.trim()).unwrap();
    // z first (cut short), y second, x third, z first again.
    assert_eq!(stats["tracks"], 4, "{stats}");
    assert_eq!(stats["underruns"], 0, "{stats}");
    let gaps = stats["gaps_ms"].as_array().unwrap();
    assert_eq!(gaps.len(), 3, "{stats}");
    // The boundaries that were not skips are gapless.
    assert!(gaps[1..].iter().all(|g| g == 0.0), "{stats}");
    let (code, _, err) = meff(dir, &["next"]);
    assert_eq!(code, 1);
    assert!(err.contains("nothing is playing"), "{err}");
}

#[test]
fn a_track_no_peer_can_serve_is_skipped_with_a_warning_and_the_queue_goes_on() {
    let base = tempfile::tempdir().unwrap();
    let mut peers = mesh3(base.path(), "1");
    let mut files: Vec<PathBuf> = ["tone.flac", "tone.mp3", "tone.ogg", "tone.wav"]
        .iter()
        .chain(&["tagged.flac", "tagged.mp3", "tagged.ogg", "tagged.wav"])
        .map(|f| fixture(f))
        .collect();
    files.extend((1..=3).map(|i| gapless(&format!("part{i}.ogg"))));
    for (i, f) in files.iter().enumerate() {
        let (code, _, err) = meff(
            &peers[0].dir,
            &["push", &format!("t{i}"), f.to_str().unwrap()],
        );
        assert_eq!(code, 0, "{err}");
    }
    let listing = holders(&peers[0].dir);
    let a_id = status(&peers[0].dir)["id"].as_str().unwrap().to_string();
    // A track held by b or c, and one held by anyone else.
    let (gone, victim) = listing
        .iter()
        .find(|(_, h)| h[0] != a_id)
        .map(|(n, h)| (n.clone(), h[0].clone()))
        .expect("every track landed on a");
    let kept = listing
        .iter()
        .find(|(_, h)| h[0] != victim)
        .map(|(n, _)| n.clone())
        .expect("every track landed on one peer");
    let vi = peers
        .iter()
        .position(|p| status(&p.dir)["id"] == victim.as_str())
        .unwrap();
    let victim_name = ["a", "b", "c"][vi];
    peers[vi].child.kill().unwrap();
    let _ = peers[vi].child.wait();
    assert!(
        wait_for(Duration::from_secs(10), || state_of(
            &peers[0].dir,
            victim_name
        )
        .as_deref()
            == Some("dead"))
        .is_some()
    );
    let (code, out, err) = meff(
        &peers[0].dir,
        &[
            "stream", &gone, &kept, "--output", "null", "--stats", "json",
        ],
    );
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains(&format!("warning: skipped {gone}: ")), "{err}");
    assert!(err.contains("error: "), "{err}");
    let stats: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(stats["tracks"], 1, "{stats}");
    assert!(stats["frames"].as_u64().unwrap() > 0, "{stats}");
}

/// A stereo 44.1 kHz WAV (10 MiB a minute): a tone whose pitch rises with time.
fn tone_wav(path: &Path, seconds: u32) {
    let spec = hound::WavSpec {
        channels: 2,
        sample_rate: 44_100,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).unwrap();
    let mut phase = 0f64;
    for i in 0..seconds * 44_100 {
        let t = f64::from(i) / 44_100.0;
        phase += 2.0 * std::f64::consts::PI * (200.0 + 10.0 * t) / 44_100.0;
        let s = (phase.sin() * 8000.0) as i16;
        w.write_sample(s).unwrap();
        w.write_sample(s).unwrap();
    }
    w.finalize().unwrap();
}

#[test]
fn seek_while_streaming_fetches_only_from_the_target_on() {
    let base = tempfile::tempdir().unwrap();
    let peers = mesh3(base.path(), "1");
    let wav = base.path().join("long.wav");
    tone_wav(&wav, 60);
    let size = std::fs::metadata(&wav).unwrap().len();
    let (code, _, err) = meff(&peers[0].dir, &["push", "long", wav.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let holder = holders(&peers[0].dir)[0].1[0].clone();
    // Listen on a peer that holds no copy, so every byte comes over the network.
    let listener = peers
        .iter()
        .find(|p| status(&p.dir)["id"] != holder.as_str())
        .unwrap()
        .dir
        .clone();
    let dir = listener.clone();
    let player = std::thread::spawn(move || {
        meff(
            &dir,
            &["stream", "long", "--output", "null", "--stats", "json"],
        )
    });
    let position = || status(&listener)["playing"]["position_s"].as_f64();
    assert!(
        wait_for(Duration::from_secs(15), || position()
            .is_some_and(|p| p > 0.5))
        .is_some()
    );
    let (code, out, err) = meff(&listener, &["seek", "0:50"]);
    assert_eq!((code, out.trim()), (0, "at 0:50"), "{err}");
    // Playback goes on in real time meanwhile: the bounds grow with the time the commands
    // take on a loaded machine.
    let sought = Instant::now();
    let p = position().unwrap();
    let played = sought.elapsed().as_secs_f64() + 1.0;
    assert!(
        (50.0..50.0 + played).contains(&p),
        "at {p} s after seeking to 0:50 ({played:.1} s ago at most)"
    );
    // Relative to where playback has got to.
    let (code, out, _) = meff(&listener, &["seek", "-5"]);
    assert_eq!(code, 0);
    let played = sought.elapsed().as_secs_f64() + 1.0;
    let at = out
        .trim()
        .strip_prefix("at 0:")
        .and_then(|s| s.parse::<f64>().ok())
        .unwrap_or_else(|| panic!("{out}"));
    assert!(
        (45.0..45.0 + played).contains(&at),
        "{out} ({played:.1} s after seeking to 0:50)"
    );
    let (code, _, err) = meff(&listener, &["seek", "soon"]);
    assert_eq!(code, 1);
    assert!(err.contains("not a position"), "{err}");
    let (code, out, err) = player.join().unwrap();
    assert_eq!(code, 0, "{err}");
    let stats: Value = serde_json::from_str(out.trim()).unwrap();
    let seeks = stats["seeks"].as_array().unwrap();
    assert_eq!(seeks.len(), 2, "{stats}");
    assert_eq!(seeks[0]["to_s"], 50.0);
    // The latency figure is benches/seek.sh's; here only that it is reported and sane.
    assert!(seeks[0]["latency_ms"].as_f64().unwrap() < 5000.0, "{stats}");
    assert_eq!(stats["tracks"], 1, "{stats}");
    // Less than 1 s, then 5 s, then 15 s of audio: nothing like the whole minute.
    let played = stats["frames"].as_f64().unwrap() / 44_100.0;
    assert!((15.0..22.0).contains(&played), "played {played} s");
    let fetched = stats["bytes"].as_u64().unwrap();
    eprintln!("fetched {fetched} of {size} bytes, seeks {seeks:?}");
    assert!(fetched < size / 2, "fetched {fetched} of {size} bytes");
}

#[test]
fn queue_commands_refuse_bad_input_clearly() {
    let base = tempfile::tempdir().unwrap();
    let a = up_full("a", &base.path().join("a"), None, true, &[], &[]);
    let dir = &a.dir;
    let (code, _, err) = meff(
        dir,
        &["push", "song", fixture("tone.flac").to_str().unwrap()],
    );
    assert_eq!(code, 0, "{err}");
    for (args, want) in [
        (vec!["next"], "nothing is playing"),
        (vec!["prev"], "nothing is playing"),
        (vec!["seek", "0:10"], "nothing is playing"),
        (vec!["seek", "1:75"], "not a position"),
        (
            vec!["stream", "--album", "Nope", "--output", "null"],
            "no album 'Nope'",
        ),
        (
            vec!["stream", "--artist", "Nobody", "--output", "null"],
            "no tracks by 'Nobody'",
        ),
        (vec!["stream", "song", "ghost", "--output", "null"], "ghost"),
        (vec!["stream", "--output", "null"], "the queue is empty"),
        (vec!["volume", "150"], "out of range"),
    ] {
        let (code, _, err) = meff(dir, &args);
        assert_eq!(code, 1, "{args:?}: {err}");
        assert!(
            err.starts_with("error: ") && err.contains(want),
            "{args:?}: {err}"
        );
    }
    // A queue of 10,000 entries is taken, listed and cleared.
    let many: Vec<&str> = std::iter::once("queue")
        .chain(std::iter::once("add"))
        .chain(std::iter::repeat_n("song", 10_000))
        .collect();
    let (code, out, err) = meff(dir, &many);
    assert_eq!(
        (code, out.trim()),
        (0, "queued 10000 (queue: 10000 tracks)"),
        "{err}"
    );
    let (_, q, _) = meff(dir, &["queue", "--json"]);
    let q: Value = serde_json::from_str(&q).unwrap();
    assert_eq!(q["tracks"].as_array().unwrap().len(), 10_000);
    let (code, out, _) = meff(dir, &["queue", "clear"]);
    assert_eq!((code, out.trim()), (0, "queue cleared"));
    let (_, out, _) = meff(dir, &["queue"]);
    assert_eq!(out.trim(), "the queue is empty");
}
