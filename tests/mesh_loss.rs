//! 16 peer processes in a network namespace whose every link loses 5% of its packets
//! (iptables `statistic` on the namespace's loopback): the mesh forms, nobody alive is ever
//! declared dead, and a SIGKILLed peer is seen dead by all the others within a few seconds.
//! Needs root (a namespace, iptables); elsewhere it skips and says why. In CI it runs.

mod common;

use common::process::{BIN, wait_for};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const PEERS: usize = 16;
/// How long the mesh lives with the loss before the kill (the bench runs 2 minutes).
const HOLD: Duration = Duration::from_secs(30);

fn sh(args: &[&str]) -> Result<(), String> {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .map_err(|e| format!("{}: {e}", args[0]))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// The namespace of one run, deleted (with every process in it) on drop.
struct Lossy(String);

impl Lossy {
    fn make() -> Result<Lossy, String> {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return Err("needs root for a network namespace and iptables".into());
        }
        let ns = format!("meffloss{}", std::process::id());
        sh(&["ip", "netns", "add", &ns])?;
        let net = Lossy(ns);
        net.exec(&["ip", "link", "set", "lo", "up"])?;
        net.exec(&[
            "iptables",
            "-A",
            "INPUT",
            "-i",
            "lo",
            "-m",
            "statistic",
            "--mode",
            "random",
            "--probability",
            "0.05",
            "-j",
            "DROP",
        ])?;
        Ok(net)
    }

    /// Packets the loss rule dropped so far.
    fn dropped(&self) -> u64 {
        Command::new("ip")
            .args(["netns", "exec", &self.0, "iptables", "-nvxL", "INPUT"])
            .output()
            .ok()
            .and_then(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .lines()
                    .find(|l| l.contains("statistic"))
                    .and_then(|l| l.split_whitespace().next().and_then(|n| n.parse().ok()))
            })
            .unwrap_or(0)
    }

    fn exec(&self, args: &[&str]) -> Result<(), String> {
        let mut v = vec!["ip", "netns", "exec", self.0.as_str()];
        v.extend_from_slice(args);
        sh(&v)
    }

    /// Starts a peer inside; returns it and, for the first, its invite.
    fn up(&self, name: &str, dir: &Path, join: Option<&str>) -> (Child, Option<String>) {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.0, BIN, "up", "--name", name])
            .args(["--port", "0", "--bind", "127.0.0.1", "--http", "off"])
            .arg("--data-dir")
            .arg(dir);
        if let Some(j) = join {
            cmd.args(["--join", j]);
        }
        let log = std::fs::File::create(dir.with_extension("log")).unwrap();
        let mut child = cmd
            .env("RUST_LOG", "meff=info")
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let first = lines.next().unwrap().unwrap();
        assert!(first.starts_with("listening: "), "{first}");
        let invite = join
            .is_none()
            .then(|| lines.next().and_then(|l| l.ok()))
            .flatten()
            .and_then(|l| l.strip_prefix("invite: ").map(String::from));
        std::thread::spawn(move || for _ in lines.map_while(Result::ok) {});
        (child, invite)
    }
}

impl Drop for Lossy {
    fn drop(&mut self) {
        if let Ok(o) = Command::new("ip").args(["netns", "pids", &self.0]).output() {
            for pid in String::from_utf8_lossy(&o.stdout).split_whitespace() {
                let _ = Command::new("kill").args(["-9", pid]).status();
            }
        }
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

/// What `dir`'s peer says of each other peer: name → state.
fn states(dir: &Path) -> Option<Vec<(String, String)>> {
    let out = Command::new(BIN)
        .args(["peers", "--json"])
        .env("MEFF_DATA_DIR", dir)
        .output()
        .ok()?;
    let v: Value = serde_json::from_slice(&out.stdout).ok()?;
    Some(
        v.as_array()?
            .iter()
            .filter_map(|p| Some((p["name"].as_str()?.into(), p["state"].as_str()?.into())))
            .collect(),
    )
}

fn deaths_logged(dirs: &[PathBuf]) -> Vec<String> {
    dirs.iter()
        .flat_map(|d| {
            std::fs::read_to_string(d.with_extension("log"))
                .unwrap_or_default()
                .lines()
                .filter(|l| l.contains(" is dead"))
                .map(|l| format!("{}: {l}", d.display()))
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn sixteen_peers_with_5_percent_loss_keep_everyone_alive_and_see_a_kill() {
    let net = match Lossy::make() {
        Ok(n) => n,
        Err(why) => {
            eprintln!("skipped: {why}");
            return;
        }
    };
    let tmp = tempfile::tempdir().unwrap();
    let dirs: Vec<PathBuf> = (0..PEERS)
        .map(|i| tmp.path().join(format!("p{i}")))
        .collect();
    let (first, invite) = net.up("p0", &dirs[0], None);
    let invite = invite.expect("the first peer prints an invite");
    let mut children = vec![first];
    for (i, d) in dirs.iter().enumerate().skip(1) {
        children.push(net.up(&format!("p{i}"), d, Some(&invite)).0);
    }
    let all_alive = |d: &Path| {
        states(d).is_some_and(|s| s.iter().filter(|(_, st)| st == "alive").count() == PEERS - 1)
    };
    let formed = wait_for(Duration::from_secs(60), || {
        dirs.iter().all(|d| all_alive(d))
    });
    assert!(formed.is_some(), "no full mesh of {PEERS} under 5% loss");
    eprintln!("mesh of {PEERS} with 5% loss formed in {formed:?}");
    std::thread::sleep(HOLD);
    let dropped = net.dropped();
    eprintln!("the loss rule dropped {dropped} packets");
    assert!(
        dropped > 100,
        "the loss rule dropped only {dropped} packets: no loss to survive"
    );
    let false_deaths = deaths_logged(&dirs);
    assert!(
        false_deaths.is_empty(),
        "alive peers declared dead under 5% loss: {false_deaths:#?}"
    );
    assert!(dirs.iter().all(|d| all_alive(d)), "someone is not alive");

    let victim = children.pop().unwrap();
    let killed = Instant::now();
    let mut victim = victim;
    let _ = victim.kill();
    let _ = victim.wait();
    let victim_name = format!("p{}", PEERS - 1);
    let seen = wait_for(Duration::from_secs(20), || {
        dirs[..PEERS - 1].iter().all(|d| {
            states(d).is_some_and(|s| {
                s.iter()
                    .any(|(n, st)| *n == victim_name && (st == "dead" || st == "suspect"))
            })
        })
    });
    let dead = wait_for(Duration::from_secs(20), || {
        dirs[..PEERS - 1].iter().all(|d| {
            states(d).is_some_and(|s| s.iter().any(|(n, st)| *n == victim_name && st == "dead"))
        })
    });
    let dead_after = killed.elapsed();
    eprintln!(
        "killed peer suspected by all after {seen:?}, dead for all {dead_after:?} after the kill"
    );
    assert!(
        dead.is_some(),
        "the killed peer was never declared dead by all"
    );
    // Heartbeats every second, dead after 4 s of silence: within 6 s with polling 15 peers.
    assert!(
        dead_after <= Duration::from_secs(6),
        "dead for all only {dead_after:?} after the kill"
    );
    let late_deaths: Vec<String> = deaths_logged(&dirs[..PEERS - 1])
        .into_iter()
        .filter(|l| !l.contains(&format!("{victim_name} is dead")))
        .collect();
    assert!(
        late_deaths.is_empty(),
        "others declared dead: {late_deaths:#?}"
    );
    for mut c in children {
        let _ = c.kill();
        let _ = c.wait();
    }
}
