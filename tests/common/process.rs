//! Peers as real `meff` processes, driven through their control sockets.
#![allow(dead_code)]

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_meff");

pub struct Peer {
    pub child: Child,
    pub dir: std::path::PathBuf,
    pub invite: Option<String>,
    /// Lines the peer printed on stdout after its start lines.
    pub stdout: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Peer {
    /// Waits for a stdout line that starts with `prefix`; returns it.
    pub fn wait_line(&self, prefix: &str, timeout: Duration) -> Option<String> {
        let mut found = None;
        wait_for(timeout, || {
            found = self
                .stdout
                .lock()
                .unwrap()
                .iter()
                .find(|l| l.starts_with(prefix))
                .cloned();
            found.is_some()
        });
        found
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn up(name: &str, dir: &Path, join: Option<&str>) -> Peer {
    up_with(name, dir, join, join.is_none())
}

/// `creates`: whether this start creates a network (and so prints an invite line).
pub fn up_with(name: &str, dir: &Path, join: Option<&str>, creates: bool) -> Peer {
    up_env(name, dir, join, creates, &[])
}

/// As `up_with`, with extra environment variables for the peer process.
pub fn up_env(
    name: &str,
    dir: &Path,
    join: Option<&str>,
    creates: bool,
    env: &[(&str, &Path)],
) -> Peer {
    up_full(name, dir, join, creates, env, &[])
}

/// As `up_env`, with extra arguments for `meff up`.
pub fn up_full(
    name: &str,
    dir: &Path,
    join: Option<&str>,
    creates: bool,
    env: &[(&str, &Path)],
    args: &[&str],
) -> Peer {
    let mut cmd = Command::new(BIN);
    cmd.args([
        "up",
        "--name",
        name,
        "--port",
        "0",
        "--bind",
        "127.0.0.1",
        "--data-dir",
    ])
    .arg(dir);
    if let Some(j) = join {
        cmd.args(["--join", j]);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.args(args);
    // Each peer's log goes beside its data dir, for post-mortems of failed tests.
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.with_extension("log"))
        .unwrap();
    let mut child = cmd
        .env("RUST_LOG", "meff=debug")
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let first = lines.next().unwrap().unwrap();
    assert!(first.starts_with("listening: "), "got {first}");
    let invite = if creates {
        let l = lines.next().unwrap().unwrap();
        Some(l.strip_prefix("invite: ").unwrap().to_string())
    } else {
        None
    };
    // Keep draining stdout so the peer never blocks on a full pipe.
    let stdout = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = stdout.clone();
    std::thread::spawn(move || {
        for l in lines.by_ref().map_while(Result::ok) {
            sink.lock().unwrap().push(l);
        }
    });
    Peer {
        child,
        dir: dir.to_path_buf(),
        invite,
        stdout,
    }
}

pub fn meff(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(BIN)
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

pub fn status(dir: &Path) -> Value {
    let (code, out, err) = meff(dir, &["status", "--json"]);
    assert_eq!(code, 0, "status failed: {err}");
    serde_json::from_str(&out).unwrap()
}

pub fn state_of(observer: &Path, peer_name: &str) -> Option<String> {
    let s = status(observer);
    s["peers"]
        .as_array()?
        .iter()
        .find(|p| p["name"] == peer_name)
        .map(|p| p["state"].as_str().unwrap_or("").to_string())
}

pub fn wait_for(timeout: Duration, mut cond: impl FnMut() -> bool) -> Option<Duration> {
    let t0 = Instant::now();
    while t0.elapsed() < timeout {
        if cond() {
            return Some(t0.elapsed());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

pub fn fixture(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}
