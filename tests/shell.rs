//! The shell on a terminal, driven through a pty: line editing, history kept in the data
//! dir, Tab completion of commands and track names, Ctrl-C clears the line, Ctrl-D leaves.

mod common;

use common::process::{BIN, fixture, meff, up, wait_for};
use common::pty::Pty;
use std::process::Command;
use std::time::Duration;

fn names_on(dir: &std::path::Path) -> Vec<String> {
    let (_, out, _) = meff(dir, &["ls", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn the_shell_edits_completes_remembers_and_leaves_on_ctrl_d() {
    let base = tempfile::tempdir().unwrap();
    let a = up("a", &base.path().join("a"), None);
    let ticket = a.invite.clone().unwrap();
    let song = fixture("tagged.mp3");
    let (code, _, err) = meff(&a.dir, &["push", "Café del Mar", song.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let dir = base.path().join("s");
    let start = |dir: &std::path::Path| {
        let mut cmd = Command::new(BIN);
        cmd.arg("--data-dir")
            .arg(dir)
            .args(["--bind", "127.0.0.1", "s", "0", &ticket])
            .env("TERM", "xterm");
        Pty::spawn(cmd)
    };
    let mut sh = start(&dir);
    let at = sh
        .wait_for("meff> ", 0)
        .unwrap_or_else(|| panic!("{}", sh.text()));

    // Tab completes a command, then a track name (quoted, it has spaces).
    sh.type_keys("sta\t");
    let at = sh
        .wait_for("status ", at)
        .unwrap_or_else(|| panic!("{}", sh.text()));
    sh.type_keys("\r");
    let at = sh
        .wait_for("name:   s", at)
        .unwrap_or_else(|| panic!("{}", sh.text()));
    let at = sh.wait_for("meff> ", at).unwrap();
    sh.type_keys("ls caf\r");
    let at = sh
        .wait_for("José Padilla", at)
        .unwrap_or_else(|| panic!("{}", sh.text()));
    let at = sh.wait_for("meff> ", at).unwrap();
    sh.type_keys("get Caf\t");
    let at = sh
        .wait_for("get 'Café del Mar' ", at)
        .unwrap_or_else(|| panic!("{}", sh.text()));

    // Ctrl-C clears the line and says how to leave; the peer stays.
    sh.type_keys("\x03");
    let at = sh
        .wait_for("type `exit` or press Ctrl-D", at)
        .unwrap_or_else(|| panic!("{}", sh.text()));
    let at = sh.wait_for("meff> ", at).unwrap();
    assert!(
        sh.child.try_wait().unwrap().is_none(),
        "Ctrl-C ended the peer"
    );

    // Arrow up recalls the last command, not `^[[A`.
    sh.type_keys("\x1b[A");
    let at = sh
        .wait_for("ls caf", at)
        .unwrap_or_else(|| panic!("{}", sh.text()));
    sh.type_keys("\r");
    let at = sh
        .wait_for("José Padilla", at)
        .unwrap_or_else(|| panic!("{}", sh.text()));
    assert!(!sh.text().contains("^[[A"), "{}", sh.text());

    // Removing a friend's track asks first; anything but yes keeps it.
    sh.type_keys("remove 'Café del Mar'\r");
    let at = sh
        .wait_for("was pushed by a; remove it for everyone? [y/N]", at)
        .unwrap_or_else(|| panic!("{}", sh.text()));
    sh.type_keys("n\r");
    let at = sh
        .wait_for("kept Café del Mar", at)
        .unwrap_or_else(|| panic!("{}", sh.text()));
    assert_eq!(names_on(&a.dir), ["Café del Mar"]);
    sh.type_keys("remove 'Café del Mar'\r");
    let at = sh
        .wait_for("[y/N]", at)
        .unwrap_or_else(|| panic!("{}", sh.text()));
    sh.type_keys("y\r");
    let at = sh
        .wait_for("removed Café del Mar", at)
        .unwrap_or_else(|| panic!("{}", sh.text()));

    // Ctrl-D leaves gracefully.
    sh.type_keys("\x04");
    sh.wait_for("left the network", at)
        .unwrap_or_else(|| panic!("{}", sh.text()));
    let status = sh.child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    drop(sh);

    // History lives in the data dir and comes back after a restart.
    let history = std::fs::read_to_string(dir.join("shell_history")).unwrap();
    assert!(history.contains("ls caf"), "{history}");
    let mut sh = start(&dir);
    let at = sh
        .wait_for("meff> ", 0)
        .unwrap_or_else(|| panic!("{}", sh.text()));
    // The last command typed comes back first, then the one before it.
    sh.type_keys("\x1b[A");
    let at = sh
        .wait_for("remove 'Café del Mar'", at)
        .unwrap_or_else(|| panic!("{}", sh.text()));
    sh.type_keys("\x1b[A\x1b[A");
    sh.wait_for("ls caf", at)
        .unwrap_or_else(|| panic!("{}", sh.text()));
}

#[test]
fn a_stream_subcommand_on_a_terminal_shows_the_now_playing_line() {
    let base = tempfile::tempdir().unwrap();
    let a = up("a", &base.path().join("a"), None);
    let song = fixture("tagged.mp3");
    let (code, _, err) = meff(&a.dir, &["push", "cafe", song.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let mut cmd = Command::new(BIN);
    cmd.arg("--data-dir")
        .arg(&a.dir)
        .args(["stream", "cafe", "--output", "null"]);
    let mut p = Pty::spawn(cmd);
    p.wait_for("playing Café del Mar — José Padilla", 0)
        .unwrap_or_else(|| panic!("{}", p.text()));
    assert!(p.child.wait().unwrap().success(), "{}", p.text());
    assert!(p.text().contains("from a"), "{}", p.text());
}

#[test]
fn import_on_a_terminal_shows_one_bar_of_files_and_bytes() {
    let base = tempfile::tempdir().unwrap();
    let a = up("a", &base.path().join("a"), None);
    let music = base.path().join("music");
    std::fs::create_dir_all(&music).unwrap();
    for f in ["tone.wav", "tone.flac", "tagged.ogg"] {
        std::fs::copy(fixture(f), music.join(f)).unwrap();
    }
    let mut cmd = Command::new(BIN);
    cmd.arg("--data-dir").arg(&a.dir).arg("import").arg(&music);
    let mut p = Pty::spawn(cmd);
    p.wait_for("imported 3 of 3 files", 0)
        .unwrap_or_else(|| panic!("{}", p.text()));
    assert!(p.child.wait().unwrap().success(), "{}", p.text());
    let text = p.text();
    assert!(text.contains("imported 3 of 3 files"), "{text}");
    assert!(
        text.contains("files 1/3") || text.contains("files 2/3"),
        "{text}"
    );
    assert!(text.contains("KiB/"), "the bar counts bytes too: {text}");
    assert!(
        !text.contains(" 0 B/"),
        "the bar does not start over after each file's line: {text}"
    );
}

#[test]
fn the_now_playing_line_updates_in_place_above_what_is_being_typed() {
    let base = tempfile::tempdir().unwrap();
    let a = up("a", &base.path().join("a"), None);
    // A 20 s tone, so it is still playing while we type.
    let long = base.path().join("long.wav");
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 8000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(&long, spec).unwrap();
    for i in 0..8000 * 20 {
        let v = (i as f32 * 440.0 * std::f32::consts::TAU / 8000.0).sin();
        w.write_sample((v * 8000.0) as i16).unwrap();
    }
    w.finalize().unwrap();
    let (code, _, err) = meff(&a.dir, &["push", "long", long.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let mut cmd = Command::new(BIN);
    cmd.arg("--data-dir")
        .arg(base.path().join("s"))
        .args([
            "--bind",
            "127.0.0.1",
            "s",
            "0",
            a.invite.as_deref().unwrap(),
        ])
        .env("TERM", "xterm");
    let mut sh = Pty::spawn(cmd);
    let at = sh
        .wait_for("meff> ", 0)
        .unwrap_or_else(|| panic!("{}", sh.text()));
    sh.type_keys("stream long --output null\r");
    let at = sh
        .wait_for("playing long  0:0", at)
        .unwrap_or_else(|| panic!("{}", sh.text()));
    // Type half a command and leave it there while the line ticks.
    sh.type_keys("vol");
    let typed_at = sh
        .wait_for("vol", at)
        .unwrap_or_else(|| panic!("{}", sh.text()));
    // About one redraw a second; wait for two whole ones (line, then the prompt below it)
    // rather than a fixed time a slow machine may not fill.
    let two_redraws = |after: &str| {
        after.matches("\x1b[1A\r\x1b[2Kplaying long").count() >= 2
            && after
                .rfind("playing long")
                .is_some_and(|last| after[last..].contains("meff> vol"))
    };
    wait_for(Duration::from_secs(15), || {
        two_redraws(&sh.text()[typed_at..])
    });
    let text = sh.text();
    let after = &text[typed_at..];
    // At least two redraws, each stepping up over the previous now-playing line.
    let redraws = after.matches("\x1b[1A\r\x1b[2Kplaying long").count();
    assert!(redraws >= 2, "{redraws} redraws in place: {after:?}");
    assert!(
        after.contains("vol 100"),
        "the line shows the volume: {after:?}"
    );
    // After the last redraw the prompt comes back with what was typed, untouched.
    let last = after.rfind("playing long").unwrap();
    assert!(
        after[last..].contains("meff> vol"),
        "the typed input was not redrawn below the line: {after:?}"
    );
    // Finishing the command works: the input was never corrupted.
    sh.type_keys("ume 50\r");
    sh.wait_for("vol 50", typed_at)
        .unwrap_or_else(|| panic!("{}", sh.text()));
    sh.type_keys("stop\r");
}
