//! The `meff` binary as real processes: start forms, control-socket commands, SIGKILL
//! detection, restart and rejoin, and the one-line errors of bad input.

mod common;

use common::process::*;
use serde_json::Value;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn kill_is_detected_leave_is_seen_and_a_restarted_peer_rejoins() {
    let base = tempfile::tempdir().unwrap();
    let a = up("a", &base.path().join("a"), None);
    let ticket = a.invite.clone().unwrap();
    let mut b = up("b", &base.path().join("b"), Some(&ticket));
    let c = up("c", &base.path().join("c"), Some(&ticket));
    assert!(
        wait_for(Duration::from_secs(10), || {
            state_of(&a.dir, "b").as_deref() == Some("alive")
                && state_of(&a.dir, "c").as_deref() == Some("alive")
                && state_of(&c.dir, "b").as_deref() == Some("alive")
        })
        .is_some()
    );
    let s = status(&a.dir);
    assert_eq!(s["name"], "a");
    assert_eq!(s["peers"].as_array().unwrap().len(), 2);
    assert_eq!(s["peers"][0]["path"], "direct");

    // SIGKILL: no goodbye, detected by heartbeats alone.
    b.child.kill().unwrap();
    b.child.wait().unwrap();
    let took = wait_for(Duration::from_secs(8), || {
        state_of(&a.dir, "b").as_deref() == Some("dead")
            && state_of(&c.dir, "b").as_deref() == Some("dead")
    });
    let took = took.expect("killed peer not marked dead");
    eprintln!("kill detected by all in {} ms", took.as_millis());
    assert!(took < Duration::from_secs(10), "took {took:?}");

    // Restart b on its data dir with no --join: it rejoins by itself.
    let b2 = up_with("b", &b.dir, None, false);
    let took = wait_for(Duration::from_secs(10), || {
        state_of(&a.dir, "b").as_deref() == Some("alive")
            && state_of(&b2.dir, "c").as_deref() == Some("alive")
    });
    eprintln!(
        "restarted peer rejoined in {:?}",
        took.expect("restarted peer did not rejoin")
    );

    // A graceful leave through the control socket.
    let t0 = Instant::now();
    let (code, _, err) = meff(&c.dir, &["down"]);
    assert_eq!(code, 0, "{err}");
    let took = wait_for(Duration::from_secs(15), || {
        state_of(&a.dir, "c").as_deref() == Some("left")
    });
    assert!(took.is_some(), "leave not seen");
    eprintln!("leave (meff down) seen in {} ms", t0.elapsed().as_millis());
}

#[test]
fn control_commands_and_bad_input() {
    let base = tempfile::tempdir().unwrap();
    let a = up("a", &base.path().join("a"), None);

    let (code, out, _) = meff(&a.dir, &["invite"]);
    assert_eq!(code, 0);
    assert!(out.starts_with("meff1"), "{out}");
    assert_eq!(out.lines().count(), 1, "{out}");
    let (code, out, _) = meff(&a.dir, &["peers"]);
    assert_eq!(code, 0);
    assert!(out.contains("no other peers"));
    let (code, _, err) = meff(&a.dir, &["push", "x", "/nonexistent"]);
    assert_eq!(code, 1);
    assert!(err.starts_with("error: "), "{err}");

    // A second peer on the same data dir.
    let out = Command::new(BIN)
        .args(["up", "--name", "a2", "--port", "0", "--data-dir"])
        .arg(&a.dir)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("already running on data dir"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");

    // A port in use.
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = sock.local_addr().unwrap().port().to_string();
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
        .arg(base.path().join("p"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("already in use"));

    // A malformed ticket.
    let out = Command::new(BIN)
        .args([
            "up",
            "--name",
            "q",
            "--port",
            "0",
            "--join",
            "meff1garbage",
            "--data-dir",
        ])
        .arg(base.path().join("q"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("error: ticket is corrupt (mistyped?)"),
        "{err}"
    );

    // host:port without a key, in a script.
    let out = Command::new(BIN)
        .args([
            "up",
            "--name",
            "r",
            "--port",
            "0",
            "--join",
            "127.0.0.1:9",
            "--data-dir",
        ])
        .arg(base.path().join("r"))
        .stdin(Stdio::null())
        .env_remove("MEFF_NETWORK_KEY")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("network key"));

    // Usage errors exit 2.
    let out = Command::new(BIN)
        .args(["status", "--bogus"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    // A command with no peer running.
    let (code, _, err) = meff(&base.path().join("nobody"), &["status"]);
    assert_eq!(code, 1);
    assert!(err.contains("no peer is running"), "{err}");
}

#[test]
fn the_original_form_runs_a_scripted_shell() {
    let base = tempfile::tempdir().unwrap();
    let a = up("a", &base.path().join("a"), None);
    let ticket = a.invite.clone().unwrap();
    let mut child = Command::new(BIN)
        .args(["--data-dir"])
        .arg(base.path().join("s"))
        .args(["--bind", "127.0.0.1", "s", "0", &ticket])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        let mut stdin = child.stdin.take().unwrap();
        // The shell's peer answers on its control socket too: ask it when a is alive.
        let s_dir = base.path().join("s");
        assert!(
            wait_for(Duration::from_secs(10), || {
                let (code, out, _) = meff(&s_dir, &["peers", "--json"]);
                code == 0 && out.contains("\"alive\"")
            })
            .is_some(),
            "the shell's peer never saw a alive"
        );
        writeln!(stdin, "peers").unwrap();
        writeln!(stdin, "status --json").unwrap();
        writeln!(stdin, "frobnicate").unwrap();
        writeln!(stdin, "exit").unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.starts_with("listening: "), "{stdout}");
    assert!(stdout.contains(" alive "), "{stdout}");
    let json_line = stdout.lines().find(|l| l.starts_with('{')).unwrap();
    let v: Value = serde_json::from_str(json_line).unwrap();
    assert_eq!(v["name"], "s");
    assert!(String::from_utf8_lossy(&out.stderr).contains("frobnicate"));
    assert!(
        wait_for(Duration::from_secs(15), || state_of(&a.dir, "s").as_deref()
            == Some("left"))
        .is_some()
    );
}

#[test]
fn storage_commands_survive_a_crash_and_restart() {
    let base = tempfile::tempdir().unwrap();
    let a = up("a", &base.path().join("a"), None);
    let ticket = a.invite.clone().unwrap();
    let b = up("b", &base.path().join("b"), Some(&ticket));
    assert!(
        wait_for(Duration::from_secs(10), || state_of(&a.dir, "b").as_deref()
            == Some("alive"))
        .is_some()
    );

    let mp3 = fixture("tone.mp3");
    let (code, out, err) = meff(&a.dir, &["push", "song", mp3.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("pushed song to 2 peers"), "{out}");
    // Bad input through the CLI: one error line, exit 1.
    let txt = fixture("not-audio.txt");
    let (code, _, err) = meff(&a.dir, &["push", "text", txt.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(
        err.starts_with("error: ") && err.lines().count() == 1,
        "{err}"
    );
    let (code, _, err) = meff(&a.dir, &["get", "nothing"]);
    assert_eq!(code, 1);
    assert!(err.contains("no track named"), "{err}");

    let (code, out, _) = meff(&b.dir, &["ls", "--json"]);
    assert_eq!(code, 0);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v[0]["name"], "song");
    assert_eq!(v[0]["codec"], "mp3");
    assert_eq!(v[0]["replicas"], 2);

    // Relative output paths resolve against the caller's directory.
    let out_dir = base.path().join("out");
    std::fs::create_dir_all(&out_dir).unwrap();
    let st = Command::new(BIN)
        .arg("--data-dir")
        .arg(&b.dir)
        .args(["get", "song"])
        .current_dir(&out_dir)
        .status()
        .unwrap();
    assert!(st.success());
    assert_eq!(
        std::fs::read(out_dir.join("song.mp3")).unwrap(),
        std::fs::read(&mp3).unwrap()
    );

    // SIGKILL b and restart it: it lists everything it knew and still holds its copy.
    let bdir = b.dir.clone();
    drop(b);
    let b2 = up_with("b", &bdir, None, false);
    let (code, out, _) = meff(&b2.dir, &["ls", "--json"]);
    assert_eq!(code, 0);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v[0]["name"], "song");
    // It catches up on what it missed: a track pushed while it was down... (push now, then check)
    let ogg = fixture("tone.ogg");
    let (code, out, err) = meff(&a.dir, &["push", "later", ogg.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("pushed later"), "{out}");
    assert!(
        wait_for(Duration::from_secs(15), || {
            let (_, out, _) = meff(&b2.dir, &["ls", "--json"]);
            serde_json::from_str::<Value>(&out)
                .map(|v| v.as_array().map(|a| a.len()) == Some(2))
                .unwrap_or(false)
        })
        .is_some()
    );
    // a pushed it: removing it from another peer takes --force.
    let (code, _, err) = meff(&b2.dir, &["remove", "song"]);
    assert_eq!(code, 1);
    assert!(err.contains("--force"), "{err}");
    let (code, _, _) = meff(&b2.dir, &["remove", "song", "--force"]);
    assert_eq!(code, 0);
    assert!(
        wait_for(Duration::from_secs(15), || {
            let (_, out, _) = meff(&a.dir, &["ls", "--json"]);
            !out.contains("\"song\"")
        })
        .is_some()
    );
}
