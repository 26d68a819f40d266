//! `meff stream` through real peer processes: the stats JSON of SPEC.md, `source:` lines, no
//! byte written to disk by the streaming peer, and the cpal path on an ALSA null device.

mod common;

use common::process::*;
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

/// Every file under `dir`, by path.
fn files(dir: &Path) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.insert(p.display().to_string());
            }
        }
    }
    out
}

#[test]
fn stream_writes_nothing_to_disk_and_reports_spec_stats() {
    let base = tempfile::tempdir().unwrap();
    // The listener's HOME says the default ALSA device is a null sink, so `--output device`
    // runs the real cpal path with no sound card (the null plugin is not paced).
    let home = base.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    std::fs::write(
        home.join(".asoundrc"),
        "pcm.!default { type null }\nctl.!default { type hw card 0 }\n",
    )
    .unwrap();
    let env = [("HOME", home.as_path())];
    let r2 = ["--replicas", "2"];
    let a = up_full("a", &base.path().join("a"), None, true, &env, &r2);
    let ticket = a.invite.clone().unwrap();
    let b = up_full("b", &base.path().join("b"), Some(&ticket), false, &env, &r2);
    let c = up_full("c", &base.path().join("c"), Some(&ticket), false, &env, &r2);
    let peers = [&a, &b, &c];
    assert!(
        wait_for(Duration::from_secs(10), || {
            status(&a.dir)["peers"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|p| p["state"] == "alive")
                .count()
                == 2
                && status(&c.dir)["peers"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|p| p["state"] == "alive")
                    .count()
                    == 2
        })
        .is_some()
    );
    let ogg = fixture("tone.ogg");
    let (code, _, err) = meff(&a.dir, &["push", "song", ogg.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    // Stream from the one peer that holds no copy.
    let (_, out, _) = meff(&a.dir, &["ls", "--json"]);
    let listing: Value = serde_json::from_str(&out).unwrap();
    let holders: Vec<String> = listing[0]["holders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h.as_str().unwrap().to_string())
        .collect();
    assert_eq!(holders.len(), 2);
    let listener = peers
        .iter()
        .find(|p| !holders.contains(&status(&p.dir)["id"].as_str().unwrap().to_string()))
        .unwrap();
    let c = *listener;
    assert!(
        wait_for(Duration::from_secs(15), || meff(&c.dir, &["ls"])
            .1
            .contains("song"))
        .is_some()
    );

    let before = files(base.path());
    let (code, out, err) = meff(
        &c.dir,
        &["stream", "song", "--output", "null", "--stats", "json"],
    );
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(out.trim()).unwrap();
    for key in [
        "ttfa_ms",
        "underruns",
        "underrun_ms",
        "frames",
        "sample_rate",
        "channels",
        "bytes",
        "sources",
        "failovers",
        "disk_bytes_written",
    ] {
        assert!(v.get(key).is_some(), "stats lack {key}: {out}");
    }
    assert_eq!(v["disk_bytes_written"], 0, "{out}");
    assert_eq!(v["underruns"], 0, "{out}");
    assert_eq!(v["sample_rate"], 44100);
    assert!(v["ttfa_ms"].as_f64().unwrap() > 0.0);
    assert!(v["frames"].as_u64().unwrap() > 80_000);
    assert_eq!(
        v["bytes"].as_u64().unwrap(),
        std::fs::metadata(&ogg).unwrap().len()
    );
    let source_lines: Vec<&str> = err.lines().filter(|l| l.starts_with("source: ")).collect();
    assert!(!source_lines.is_empty(), "{err}");
    let src = v["sources"][0].as_str().unwrap().to_string();
    // `source: NAME (ID)`: the name the now-playing line shows, and the id the stats hold.
    assert!(
        source_lines[0].ends_with(&format!(" ({src})")),
        "{}",
        source_lines[0]
    );
    let shown = source_lines[0]
        .strip_prefix("source: ")
        .and_then(|l| l.strip_suffix(&format!(" ({src})")))
        .unwrap_or("");
    assert!(["a", "b", "c"].contains(&shown), "{}", source_lines[0]);
    assert!(holders.contains(&src), "served by a non-holder: {src}");
    let after = files(base.path());
    let new: Vec<_> = after.difference(&before).collect();
    assert!(new.is_empty(), "streaming created files: {new:?}");

    // The cpal path, on the ALSA null device.
    let (code, out, err) = meff(
        &c.dir,
        &["stream", "song", "--output", "device", "--stats", "json"],
    );
    assert_eq!(code, 0, "device output failed: {err}");
    let v: Value = serde_json::from_str(out.trim()).unwrap();
    assert!(v["frames"].as_u64().unwrap() > 0);

    // Bad input.
    let (code, _, err) = meff(&c.dir, &["stream", "nothing", "--output", "null"]);
    assert_eq!(code, 1);
    assert!(err.contains("no track named"), "{err}");
    let (code, _, err) = meff(&c.dir, &["stream", "song", "--output", "speakers"]);
    assert_eq!(code, 2, "a wrong --output is a usage error");
    assert!(err.contains("device, null or wav:PATH"), "{err}");
    let (code, _, _) = meff(&c.dir, &["pause"]);
    assert_eq!(code, 1, "pause with nothing playing");
}
