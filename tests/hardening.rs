//! A shared machine and a careless user: private data dirs, a control socket only its owner
//! may use, files named by the user written honestly, closed pipes, damaged databases, long
//! paths, and secrets kept out of the process list.

mod common;

use common::process::*;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Tests that need root skip elsewhere, but never in CI (which runs as root).
fn need_root(what: &str) -> bool {
    if is_root() {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "{what} must run as root in CI"
    );
    eprintln!("skipping {what}: not root");
    false
}

fn modes_under(dir: &Path, out: &mut Vec<(String, u32, bool)>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let m = std::fs::symlink_metadata(e.path()).unwrap();
        out.push((e.path().display().to_string(), m.mode() & 0o777, m.is_dir()));
        if m.is_dir() {
            modes_under(&e.path(), out);
        }
    }
}

#[test]
fn a_data_dir_is_private_whatever_the_umask() {
    let base = tempfile::tempdir().unwrap();
    let dir = base.path().join("a");
    // SAFETY: umask in the child between fork and exec.
    let mut cmd = Command::new(BIN);
    unsafe {
        cmd.pre_exec(|| {
            libc::umask(0);
            Ok(())
        });
    }
    let mut child = cmd
        .env("MEFF_TICKET", "")
        .args([
            "up",
            "--name",
            "a",
            "--port",
            "0",
            "--bind",
            "127.0.0.1",
            "--data-dir",
        ])
        .arg(&dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _guard = KillOnDrop(&mut child);
    assert!(
        wait_for(Duration::from_secs(10), || dir
            .join("control.sock")
            .exists())
        .is_some()
    );
    let f = fixture("tone.ogg");
    let (code, _, err) = meff(&dir, &["push", "one", f.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(std::fs::metadata(&dir).unwrap().mode() & 0o777, 0o700);
    let mut all = Vec::new();
    modes_under(&dir, &mut all);
    assert!(all.len() >= 5, "{all:?}");
    for (path, mode, is_dir) in all {
        let ok = if is_dir {
            mode == 0o700
        } else {
            mode & 0o077 == 0
        };
        assert!(ok, "{path} has mode {mode:o}");
    }
}

struct KillOnDrop<'a>(&'a mut std::process::Child);
impl Drop for KillOnDrop<'_> {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn loose_damaged_or_overlong_data_dirs_are_refused_before_anything_starts() {
    let base = tempfile::tempdir().unwrap();
    let start = |dir: &Path| {
        Command::new(BIN)
            .args([
                "up",
                "--name",
                "x",
                "--port",
                "0",
                "--bind",
                "127.0.0.1",
                "--data-dir",
            ])
            .arg(dir)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let open = base.path().join("open");
    std::fs::create_dir(&open).unwrap();
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
    let out = start(&open);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("writable by other users"), "{err}");
    assert!(out.stdout.is_empty());

    // A database that lost its contents is not a new network.
    let damaged = base.path().join("damaged");
    std::fs::create_dir(&damaged).unwrap();
    std::fs::set_permissions(&damaged, std::fs::Permissions::from_mode(0o700)).unwrap();
    std::fs::write(damaged.join("meff.redb"), b"").unwrap();
    let out = start(&damaged);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("is damaged") && err.contains("meff.redb"),
        "{err}"
    );
    assert_eq!(
        std::fs::metadata(damaged.join("meff.redb")).unwrap().len(),
        0
    );

    // A path too long for the control socket fails before `listening:`.
    let long = base.path().join("d".repeat(120));
    let out = start(&long);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("too long for its control socket"), "{err}");
    assert!(
        out.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    if need_root("the foreign-owner check") {
        let foreign = base.path().join("foreign");
        std::fs::create_dir(&foreign).unwrap();
        std::os::unix::fs::chown(&foreign, Some(65534), Some(65534)).unwrap();
        let out = start(&foreign);
        assert_eq!(out.status.code(), Some(1));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("belongs to another user"), "{err}");
    }
}

#[test]
fn only_the_owner_may_use_the_control_socket() {
    if !need_root("the second-user test") {
        return;
    }
    let base = tempfile::tempdir().unwrap();
    // Let the other user reach the socket at all, so the peer's own check is what refuses.
    std::fs::set_permissions(base.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let a = up("a", &base.path().join("a"), None);
    std::fs::set_permissions(&a.dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let sock = a.dir.join("control.sock");
    assert_eq!(std::fs::metadata(&sock).unwrap().mode() & 0o777, 0o600);
    std::fs::set_permissions(&sock, std::fs::Permissions::from_mode(0o777)).unwrap();
    let out = Command::new(BIN)
        .arg("--data-dir")
        .arg(&a.dir)
        .args(["invite", "--show-key"])
        .uid(65534)
        .gid(65534)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(
        !stdout.contains("meff1") && !stdout.contains("network key"),
        "{stdout}"
    );
    assert!(stderr.contains("belongs to another user"), "{stderr}");
    // The owner still can.
    let (code, out, _) = meff(&a.dir, &["invite"]);
    assert_eq!(code, 0);
    assert!(out.starts_with("meff1"));
}

#[test]
fn get_writes_into_devices_directories_and_stdout_and_leaves_nothing_on_failure() {
    let base = tempfile::tempdir().unwrap();
    let a = up("a", &base.path().join("a"), None);
    let f = fixture("tone.flac");
    let want = std::fs::read(&f).unwrap();
    let (code, _, err) = meff(&a.dir, &["push", "song", f.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");

    // A directory means DIR/NAME.<ext>.
    let out_dir = base.path().join("out");
    std::fs::create_dir(&out_dir).unwrap();
    let (code, _, err) = meff(&a.dir, &["get", "song", "-o", out_dir.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(std::fs::read(out_dir.join("song.flac")).unwrap(), want);

    // A FIFO is written into, not replaced.
    let fifo = base.path().join("fifo");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::read(fifo).unwrap())
    };
    let (code, _, err) = meff(&a.dir, &["get", "song", "-o", fifo.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(reader.join().unwrap(), want);
    assert!(
        std::fs::symlink_metadata(&fifo)
            .unwrap()
            .file_type()
            .is_fifo_like()
    );

    // /dev/null stays a device.
    let (code, _, err) = meff(&a.dir, &["get", "song", "-o", "/dev/null"]);
    assert_eq!(code, 0, "{err}");
    assert!(!std::fs::metadata("/dev/null").unwrap().is_file());

    // `-` is stdout, byte for byte.
    let out = Command::new(BIN)
        .arg("--data-dir")
        .arg(&a.dir)
        .args(["get", "song", "-o", "-"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(out.stdout == want, "stdout has {} bytes", out.stdout.len());

    // A target in a directory that does not exist fails and leaves no temp file anywhere.
    let missing = base.path().join("nope/x.flac");
    let (code, _, err) = meff(&a.dir, &["get", "song", "-o", missing.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(err.starts_with("error: "), "{err}");
    let leftovers: Vec<_> = std::fs::read_dir(base.path())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains(".meff-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

trait FifoLike {
    fn is_fifo_like(&self) -> bool;
}
impl FifoLike for std::fs::FileType {
    fn is_fifo_like(&self) -> bool {
        use std::os::unix::fs::FileTypeExt;
        self.is_fifo()
    }
}

#[test]
fn closed_and_full_stdouts_end_commands_cleanly() {
    let base = tempfile::tempdir().unwrap();
    let a = up("a", &base.path().join("a"), None);
    // A full disk: one error line, exit 1, no panic.
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let out = Command::new(BIN)
        .arg("--data-dir")
        .arg(&a.dir)
        .args(["status"])
        .stdout(full)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.starts_with("error: cannot write output"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    // A reader that closes the pipe after the first line: quiet, no panic.
    let mut child = Command::new(BIN)
        .arg("--data-dir")
        .arg(&a.dir)
        .args(["status"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn a_cancelled_get_stops_and_leaves_nothing() {
    let base = tempfile::tempdir().unwrap();
    // A slow source, so the get is still running when its client is killed.
    let a = up_full(
        "a",
        &base.path().join("a"),
        None,
        true,
        &[],
        &["--upload-limit", "24K"],
    );
    let ticket = a.invite.clone().unwrap();
    let b = up_with("b", &base.path().join("b"), Some(&ticket), false);
    let f = fixture("tone.wav");
    let (code, _, err) = meff(&a.dir, &["push", "song", f.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    // b holds a copy too with R=3 and two peers; remove it so b must fetch from a.
    assert!(
        wait_for(Duration::from_secs(15), || {
            let (_, out, _) = meff(&b.dir, &["ls", "--json"]);
            out.contains("\"song\"")
        })
        .is_some()
    );
    let out_dir = base.path().join("out");
    std::fs::create_dir(&out_dir).unwrap();
    let target = out_dir.join("song.wav");
    let blob_dir = b.dir.join("blobs");
    for e in std::fs::read_dir(&blob_dir).unwrap().flatten() {
        if e.path().is_file() {
            std::fs::remove_file(e.path()).unwrap();
        }
    }
    let mut client = Command::new(BIN)
        .arg("--data-dir")
        .arg(&b.dir)
        .args(["get", "song", "-o"])
        .arg(&target)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    assert!(
        wait_for(Duration::from_secs(15), || {
            std::fs::read_dir(&out_dir).unwrap().count() > 0
        })
        .is_some(),
        "the download never started"
    );
    client.kill().unwrap();
    client.wait().unwrap();
    // The peer notices, stops, and removes its temp file; the file never appears.
    assert!(
        wait_for(Duration::from_secs(15), || {
            std::fs::read_dir(&out_dir).unwrap().count() == 0
        })
        .is_some(),
        "temp file left behind"
    );
    std::thread::sleep(Duration::from_secs(4));
    assert!(!target.exists(), "the cancelled get still wrote its file");
}

#[test]
fn tickets_come_from_files_or_the_environment_and_typos_say_so() {
    let base = tempfile::tempdir().unwrap();
    let a = up("a", &base.path().join("a"), None);
    let ticket = a.invite.clone().unwrap();
    let file = base.path().join("ticket");
    std::fs::write(&file, format!("{ticket}\n")).unwrap();
    let b = up_full(
        "b",
        &base.path().join("b"),
        None,
        false,
        &[],
        &["--join-file", file.to_str().unwrap()],
    );
    let c = up_env(
        "c",
        &base.path().join("c"),
        None,
        false,
        &[("MEFF_TICKET", Path::new(&ticket))],
    );
    for p in [&b, &c] {
        assert!(
            wait_for(Duration::from_secs(10), || state_of(&p.dir, "a").as_deref()
                == Some("alive"))
            .is_some()
        );
        // Upper case works too (tickets read aloud or retyped).
    }
    let up_case = Command::new(BIN)
        .args([
            "up",
            "--name",
            "d",
            "--port",
            "0",
            "--bind",
            "127.0.0.1",
            "--data-dir",
        ])
        .arg(base.path().join("d"))
        .env("MEFF_TICKET", ticket.to_ascii_uppercase())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut up_case = up_case;
    let _g = KillOnDrop(&mut up_case);
    assert!(
        wait_for(Duration::from_secs(10), || state_of(&a.dir, "d").as_deref()
            == Some("alive"))
        .is_some()
    );
    // One character off: a clear word, at once, and nothing left behind.
    let mut typo = ticket.clone().into_bytes();
    let i = typo.len() / 2;
    typo[i] = if typo[i] == b'a' { b'b' } else { b'a' };
    let typo = String::from_utf8(typo).unwrap();
    let out = Command::new(BIN)
        .args([
            "up",
            "--name",
            "e",
            "--port",
            "0",
            "--join",
            &typo,
            "--data-dir",
        ])
        .arg(base.path().join("e"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        "error: ticket is corrupt (mistyped?)"
    );
}
