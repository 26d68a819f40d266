//! The small things a newcomer meets first, each through the binary as a user runs it.

mod common;

use common::process::*;
use serde_json::Value;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

fn meff_env(args: &[&str], root: &Path) -> (i32, String, String) {
    let out = Command::new(BIN)
        .args(args)
        .env("XDG_DATA_HOME", root)
        .env_remove("MEFF_DATA_DIR")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn peers_are_picked_by_name_and_an_ambiguous_pick_lists_them() {
    let root = tempfile::tempdir().unwrap();
    let base = root.path().join("meff");
    std::fs::create_dir(&base).unwrap();
    let a = up("alice", &base.join("alice"), None);
    let ticket = a.invite.clone().unwrap();
    let _b = up_with("bob", &base.join("bob"), Some(&ticket), false);
    let (code, _, err) = meff_env(&["ls"], root.path());
    assert_eq!(code, 1);
    assert!(
        err.contains("alice, bob") && err.contains("--peer NAME"),
        "{err}"
    );
    let (code, out, err) = meff_env(&["--peer", "bob", "status", "--json"], root.path());
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["name"], "bob");
    // Every listing takes --json.
    let (code, out, err) = meff_env(&["--peer", "alice", "peers", "--json"], root.path());
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v[0]["name"], "bob");
    assert!(v[0]["rtt_ms"].is_number() || v[0]["rtt_ms"].is_null());
}

#[test]
fn a_failed_first_start_leaves_no_data_dir() {
    let base = tempfile::tempdir().unwrap();
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = sock.local_addr().unwrap().port().to_string();
    let dir = base.path().join("p");
    let out = Command::new(BIN)
        .args([
            "up",
            "--name",
            "p",
            "--bind",
            "127.0.0.1",
            "--port",
            &port,
            "--data-dir",
        ])
        .arg(&dir)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(!dir.exists(), "a failed first start left {}", dir.display());
    // A host name that does not resolve is said to be one.
    let out = Command::new(BIN)
        .args([
            "up",
            "--name",
            "q",
            "--port",
            "0",
            "--join",
            "nosuchhost.invalid:4000",
        ])
        .arg("--data-dir")
        .arg(base.path().join("q"))
        .env("MEFF_NETWORK_KEY", "00".repeat(32))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot resolve the host name"), "{err}");
    assert!(!base.path().join("q").exists());
}

#[test]
fn leaving_says_so_and_left_peers_are_shown_apart() {
    let base = tempfile::tempdir().unwrap();
    let a = up("a", &base.path().join("a"), None);
    let ticket = a.invite.clone().unwrap();
    let b = up_with("b", &base.path().join("b"), Some(&ticket), false);
    let f = fixture("tone.ogg");
    let (code, _, err) = meff(&b.dir, &["push", "one", f.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = meff(&b.dir, &["down"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.trim().starts_with("left the network (handed off"),
        "{out}"
    );
    assert!(
        wait_for(Duration::from_secs(15), || state_of(&a.dir, "b").as_deref()
            == Some("left"))
        .is_some()
    );
    let (_, out, _) = meff(&a.dir, &["status"]);
    assert!(out.contains("peers:  0 (and 1 that left)"), "{out}");
    assert!(out.contains("left:"), "{out}");
    // The `up` process says it too when it ends on a signal.
    // SAFETY: sending SIGTERM to our own child.
    unsafe { libc::kill(a.child.id() as i32, libc::SIGTERM) };
    assert!(
        a.wait_line("left the network", Duration::from_secs(5))
            .is_some()
    );
}

#[test]
fn pause_and_stop_share_one_rule_when_nothing_plays() {
    let base = tempfile::tempdir().unwrap();
    let a = up("a", &base.path().join("a"), None);
    for cmd in ["pause", "resume", "stop"] {
        let (code, _, err) = meff(&a.dir, &[cmd]);
        assert_eq!(code, 1, "{cmd}");
        assert_eq!(err.trim(), "error: nothing is playing", "{cmd}");
    }
}

#[test]
fn the_shell_expands_tilde_and_says_goodbye_at_the_end_of_input() {
    let base = tempfile::tempdir().unwrap();
    let home = base.path().join("home");
    std::fs::create_dir(&home).unwrap();
    std::fs::copy(fixture("tone.ogg"), home.join("song.ogg")).unwrap();
    let mut child = Command::new(BIN)
        .arg("--data-dir")
        .arg(base.path().join("s"))
        .args(["--bind", "127.0.0.1", "s", "0"])
        .env("HOME", &home)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        let mut stdin = child.stdin.take().unwrap();
        writeln!(stdin, "push tilde ~/song.ogg").unwrap();
        writeln!(stdin, "ls").unwrap();
    }
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stdout.contains("pushed tilde"), "{stdout}{stderr}");
    assert!(
        stdout.contains("left the network (handed off 0 tracks)"),
        "{stdout}"
    );
}

#[test]
fn listening_names_addresses_a_friend_can_dial_and_help_documents_every_argument() {
    let base = tempfile::tempdir().unwrap();
    let mut child = Command::new(BIN)
        .args(["up", "--name", "w", "--port", "0", "--data-dir"])
        .arg(base.path().join("w"))
        .env_remove("MEFF_TICKET")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut first = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut first,
    )
    .unwrap();
    let _ = child.kill();
    let _ = child.wait();
    let addrs = first.trim().strip_prefix("listening: ").unwrap();
    for a in addrs.split(", ") {
        let a: std::net::SocketAddr = a.parse().unwrap_or_else(|_| panic!("{first}"));
        assert!(!a.ip().is_unspecified(), "{first}");
        assert_ne!(a.port(), 0, "{first}");
    }
    // Help says what a user needs, in the form they typed.
    let out = Command::new(BIN)
        .args(["alice", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(
        help.contains("Usage: meff [OPTIONS] NAME PORT [PEER]"),
        "{help}"
    );
    assert!(!help.contains("meff start"), "{help}");
    for cmd in [
        "push", "get", "up", "stream", "ls", "peers", "status", "remove",
    ] {
        let out = Command::new(BIN).args([cmd, "--help"]).output().unwrap();
        let help = String::from_utf8_lossy(&out.stdout).into_owned();
        let args_and_flags = help
            .lines()
            .skip_while(|l| !l.starts_with("Arguments:") && !l.starts_with("Options:"))
            .filter(|l| l.starts_with("  ") && !l.trim_start().starts_with("[env"))
            .filter(|l| !l.contains("--help") && !l.contains("--verbose"));
        for l in args_and_flags {
            let parts: Vec<&str> = l.trim().splitn(2, "  ").collect();
            assert!(
                parts.len() == 2 && !parts[1].trim().is_empty(),
                "`meff {cmd} --help` leaves undocumented: {l}"
            );
        }
    }
}

/// On a terminal, the network key is asked for without echo, and a malformed one is asked
/// for again instead of ending the start.
#[test]
fn the_key_prompt_does_not_echo_and_asks_again() {
    let base = tempfile::tempdir().unwrap();
    let a = up("a", &base.path().join("a"), None);
    let (code, out, _) = meff(&a.dir, &["invite", "--show-key"]);
    assert_eq!(code, 0);
    let key = out
        .lines()
        .find_map(|l| l.strip_prefix("network key: "))
        .unwrap()
        .to_string();
    let addr = status(&a.dir)["addrs"][0].as_str().unwrap().to_string();
    let mut cmd = Command::new(BIN);
    cmd.args([
        "up",
        "--name",
        "k",
        "--port",
        "0",
        "--bind",
        "127.0.0.1",
        "--join",
        &addr,
    ])
    .arg("--data-dir")
    .arg(base.path().join("k"))
    .env_remove("MEFF_NETWORK_KEY")
    .env_remove("MEFF_TICKET");
    let mut pty = common::pty::Pty::spawn(cmd);
    let screen = pty.screen.clone();
    let seen = |what: &str| {
        wait_for(Duration::from_secs(10), || {
            screen.lock().unwrap().contains(what)
        })
        .is_some()
    };
    assert!(seen("network key"), "{}", screen.lock().unwrap());
    pty.type_keys("nothexatall\n");
    assert!(seen("try again"), "{}", screen.lock().unwrap());
    pty.type_keys(&format!("{key}\n"));
    assert!(seen("listening: "), "{}", screen.lock().unwrap());
    let shown = pty.text();
    drop(pty);
    assert!(!shown.contains("nothexatall"), "the prompt echoed: {shown}");
    assert!(!shown.contains(&key), "the prompt echoed the key: {shown}");
    assert!(
        wait_for(Duration::from_secs(15), || state_of(&a.dir, "k").is_some()).is_some(),
        "the peer that typed the key never joined"
    );
}

#[test]
fn log_lines_name_peers_not_ids() {
    let base = tempfile::tempdir().unwrap();
    let a = up("amber", &base.path().join("a"), None);
    let ticket = a.invite.clone().unwrap();
    let mut b = up_with("basil", &base.path().join("b"), Some(&ticket), false);
    assert!(
        wait_for(Duration::from_secs(15), || state_of(&a.dir, "basil")
            .as_deref()
            == Some("alive"))
        .is_some()
    );
    let _ = b.child.kill();
    let _ = b.child.wait();
    assert!(
        wait_for(Duration::from_secs(15), || state_of(&a.dir, "basil")
            .as_deref()
            == Some("dead"))
        .is_some(),
        "basil never seen dead"
    );
    let log = std::fs::read_to_string(a.dir.with_extension("log")).unwrap();
    let dead: Vec<&str> = log.lines().filter(|l| l.contains(" is dead")).collect();
    assert!(!dead.is_empty(), "no 'is dead' line in:\n{log}");
    assert!(
        dead.iter().all(|l| l.ends_with("basil is dead")),
        "{dead:?}"
    );
    let connected: Vec<&str> = log.lines().filter(|l| l.contains("connected")).collect();
    assert!(
        connected.iter().all(|l| l.contains("basil")),
        "{connected:?}"
    );
}

#[test]
fn volume_is_kept_and_out_of_range_values_are_refused() {
    let base = tempfile::tempdir().unwrap();
    let a = up("a", &base.path().join("a"), None);
    let (code, out, _) = meff(&a.dir, &["volume"]);
    assert_eq!((code, out.trim()), (0, "volume 100"));
    let (code, out, _) = meff(&a.dir, &["volume", "30"]);
    assert_eq!((code, out.trim()), (0, "volume 30"));
    let (_, out, _) = meff(&a.dir, &["volume"]);
    assert_eq!(out.trim(), "volume 30");
    for bad in ["150", "loud", "1e3"] {
        let (code, _, err) = meff(&a.dir, &["volume", bad]);
        assert_eq!(code, 1, "volume {bad}");
        assert!(err.starts_with("error: volume"), "{err}");
    }
    let (_, out, _) = meff(&a.dir, &["volume"]);
    assert_eq!(out.trim(), "volume 30");
}

/// A mono 8 kHz tone of `seconds`, with a title and an artist in an ID3v2 tag.
fn tagged_wav(path: &Path, seconds: u32, title: &str, artist: &str) {
    use lofty::prelude::*;
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 8_000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).unwrap();
    for i in 0..seconds * 8_000 {
        let s = (f64::from(i) * 2.0 * std::f64::consts::PI * 440.0 / 8_000.0).sin() * 8000.0;
        w.write_sample(s as i16).unwrap();
    }
    w.finalize().unwrap();
    let mut tag = lofty::tag::Tag::new(lofty::tag::TagType::Id3v2);
    tag.set_title(title.to_string());
    tag.set_artist(artist.to_string());
    tag.save_to_path(path, lofty::config::WriteOptions::default())
        .unwrap();
}

#[test]
fn status_says_what_is_playing() {
    let base = tempfile::tempdir().unwrap();
    let a = up("a", &base.path().join("a"), None);
    // 20 s, tagged: it cannot end while a slow machine runs the commands below.
    let f = base.path().join("cafe.wav");
    tagged_wav(&f, 20, "Café del Mar", "José Padilla");
    let (code, _, err) = meff(&a.dir, &["push", "cafe", f.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(status(&a.dir)["playing"].is_null());
    let mut player = Command::new(BIN)
        .arg("--data-dir")
        .arg(&a.dir)
        .args(["stream", "cafe", "--output", "null"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut playing = Value::Null;
    assert!(
        wait_for(Duration::from_secs(15), || {
            playing = status(&a.dir)["playing"].clone();
            !playing.is_null()
        })
        .is_some(),
        "status never said what plays"
    );
    assert_eq!(playing["name"], "cafe");
    assert_eq!(playing["title"], "Café del Mar");
    assert_eq!(playing["artist"], "José Padilla");
    assert_eq!(playing["volume"], 100);
    assert_eq!(playing["paused"], false);
    assert!(playing["duration_s"].as_f64().unwrap() > 19.9);
    let (code, _, _) = meff(&a.dir, &["volume", "40"]);
    assert_eq!(code, 0);
    let (_, out, _) = meff(&a.dir, &["status"]);
    assert!(
        out.contains("playing: Café del Mar — José Padilla (cafe)") && out.contains("volume 40"),
        "{out}"
    );
    let (code, _, err) = meff(&a.dir, &["stop"]);
    assert_eq!(code, 0, "{err}");
    assert!(player.wait().unwrap().success());
    assert!(status(&a.dir)["playing"].is_null());
}

#[test]
fn a_script_with_binary_and_huge_lines_goes_on() {
    let base = tempfile::tempdir().unwrap();
    let mut child = Command::new(BIN)
        .args(["--data-dir"])
        .arg(base.path().join("s"))
        .args(["--bind", "127.0.0.1", "s", "0"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(b"ls\n\xff\xfe\x00garbage\n").unwrap();
        stdin.write_all(&vec![b'x'; 1 << 20]).unwrap();
        stdin
            .write_all(b"\nvolume 150\nstatus --json\nexit\n")
            .unwrap();
    }
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("error: the line is not UTF-8 text; ignored"),
        "{stderr}"
    );
    assert!(stderr.contains("is too long"), "{stderr}");
    assert!(
        stderr.contains("error: volume 150 is out of range"),
        "{stderr}"
    );
    let json_line = stdout.lines().find(|l| l.starts_with('{')).unwrap();
    let v: Value = serde_json::from_str(json_line).unwrap();
    assert_eq!(v["name"], "s");
    assert!(stdout.contains("left the network"), "{stdout}");
}
