//! Across NATs, in a small internet built from network namespaces: a public peer, two peers
//! behind port-preserving NATs, one behind a symmetric NAT (`MASQUERADE --random`), and
//! routers that drop unsolicited inbound traffic. Addresses come from the ranges reserved for
//! documentation (203.0.113.0/24, the WAN) and benchmarking (198.18.0.0/15, the homes).
//! Needs root (namespaces, iptables); elsewhere it skips and says why.

mod common;

use common::process::{BIN, fixture, meff, status, wait_for};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

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

fn can_run() -> Result<(), String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Err("needs root for network namespaces and iptables".into());
    }
    sh(&["ip", "netns", "list"]).map_err(|e| format!("iproute2 unusable: {e}"))?;
    sh(&["iptables", "--version"]).map_err(|e| format!("iptables unusable: {e}"))?;
    Ok(())
}

/// The namespaces of one test run; all are deleted on drop, also when the test fails.
struct Internet {
    suffix: String,
    made: Vec<String>,
}

impl Drop for Internet {
    fn drop(&mut self) {
        for ns in &self.made {
            // Processes inside die with their namespace's last reference; kill them first.
            let _ = Command::new("ip")
                .args(["netns", "pids", ns])
                .output()
                .map(|o| {
                    for pid in String::from_utf8_lossy(&o.stdout).split_whitespace() {
                        let _ = Command::new("kill").args(["-9", pid]).status();
                    }
                });
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

impl Internet {
    fn ns(&self, name: &str) -> String {
        format!("{name}{}", self.suffix)
    }

    fn exec(&self, ns: &str, args: &[&str]) -> Result<(), String> {
        let ns = self.ns(ns);
        let mut v = vec!["ip", "netns", "exec", ns.as_str()];
        v.extend_from_slice(args);
        sh(&v)
    }

    fn build() -> Result<Internet, String> {
        let mut net = Internet {
            suffix: format!("m{}", std::process::id()),
            made: vec![],
        };
        for n in ["wan", "pub", "r1", "r2", "r3", "h1", "h2", "h3"] {
            let ns = net.ns(n);
            sh(&["ip", "netns", "add", &ns])?;
            net.made.push(ns);
        }
        let (wan, publ) = (net.ns("wan"), net.ns("pub"));
        sh(&["ip", "-n", &wan, "link", "add", "br0", "type", "bridge"])?;
        sh(&["ip", "-n", &wan, "link", "set", "br0", "up"])?;
        let attach = |outer: &str, inner_ns: &str, inner: &str| -> Result<(), String> {
            sh(&[
                "ip", "link", "add", outer, "type", "veth", "peer", "name", inner, "netns",
                inner_ns,
            ])?;
            sh(&["ip", "link", "set", outer, "netns", &wan])?;
            sh(&[
                "ip", "-n", &wan, "link", "set", outer, "master", "br0", "up",
            ])
        };
        let pw = format!("pw{}", net.suffix);
        attach(&pw, &publ, "eth0")?;
        sh(&[
            "ip",
            "-n",
            &publ,
            "addr",
            "add",
            "203.0.113.10/24",
            "dev",
            "eth0",
        ])?;
        sh(&["ip", "-n", &publ, "link", "set", "eth0", "up"])?;
        sh(&["ip", "-n", &publ, "link", "set", "lo", "up"])?;
        for i in 1..=3 {
            let (r, h) = (net.ns(&format!("r{i}")), net.ns(&format!("h{i}")));
            attach(&format!("rw{i}{}", net.suffix), &r, "wan0")?;
            sh(&[
                "ip",
                "-n",
                &r,
                "addr",
                "add",
                &format!("203.0.113.{i}/24"),
                "dev",
                "wan0",
            ])?;
            sh(&["ip", "-n", &r, "link", "set", "wan0", "up"])?;
            sh(&["ip", "-n", &r, "link", "set", "lo", "up"])?;
            let hl = format!("hl{i}{}", net.suffix);
            sh(&[
                "ip", "link", "add", &hl, "type", "veth", "peer", "name", "eth0", "netns", &h,
            ])?;
            sh(&["ip", "link", "set", &hl, "netns", &r])?;
            sh(&["ip", "-n", &r, "link", "set", &hl, "name", "lan0"])?;
            sh(&[
                "ip",
                "-n",
                &r,
                "addr",
                "add",
                &format!("198.18.{i}.1/24"),
                "dev",
                "lan0",
            ])?;
            sh(&["ip", "-n", &r, "link", "set", "lan0", "up"])?;
            sh(&[
                "ip",
                "-n",
                &h,
                "addr",
                "add",
                &format!("198.18.{i}.2/24"),
                "dev",
                "eth0",
            ])?;
            sh(&["ip", "-n", &h, "link", "set", "eth0", "up"])?;
            sh(&["ip", "-n", &h, "link", "set", "lo", "up"])?;
            sh(&[
                "ip",
                "-n",
                &h,
                "route",
                "add",
                "default",
                "via",
                &format!("198.18.{i}.1"),
            ])?;
            let rn = format!("r{i}");
            net.exec(&rn, &["sysctl", "-qw", "net.ipv4.ip_forward=1"])?;
            let mut masq = vec![
                "iptables",
                "-t",
                "nat",
                "-A",
                "POSTROUTING",
                "-o",
                "wan0",
                "-j",
                "MASQUERADE",
            ];
            if i == 3 {
                masq.push("--random");
            }
            net.exec(&rn, &masq)?;
            // A home router: only replies come in, to the home or to the router itself.
            for chain in ["FORWARD", "INPUT"] {
                net.exec(
                    &rn,
                    &[
                        "iptables",
                        "-A",
                        chain,
                        "-i",
                        "wan0",
                        "-m",
                        "conntrack",
                        "--ctstate",
                        "ESTABLISHED,RELATED",
                        "-j",
                        "ACCEPT",
                    ],
                )?;
                net.exec(&rn, &["iptables", "-A", chain, "-i", "wan0", "-j", "DROP"])?;
            }
        }
        Ok(net)
    }

    fn up(
        &self,
        ns: &str,
        name: &str,
        dir: &Path,
        port: u16,
        join: Option<&str>,
    ) -> (Child, Option<String>) {
        let ns = self.ns(ns);
        let mut cmd = Command::new("ip");
        cmd.args([
            "netns",
            "exec",
            &ns,
            BIN,
            "up",
            "--name",
            name,
            "--port",
            &port.to_string(),
            "--data-dir",
        ])
        .arg(dir)
        .args(["--repair-after", "1h"]);
        if let Some(j) = join {
            cmd.args(["--join", j]);
        }
        let log = std::fs::File::create(dir.with_extension("log")).unwrap();
        let mut child = cmd
            .env("RUST_LOG", "meff=debug")
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let first = lines.next().unwrap().unwrap();
        assert!(first.starts_with("listening: "), "{first}");
        let invite = if join.is_none() {
            lines
                .next()
                .and_then(|l| l.ok())
                .and_then(|l| l.strip_prefix("invite: ").map(String::from))
        } else {
            None
        };
        // The rest of stdout goes beside the data dir (`public address:` lines, `joined:`).
        let out = dir.with_extension("stdout");
        let first_line = first.clone();
        std::thread::spawn(move || {
            use std::io::Write;
            let mut f = std::fs::File::create(out).unwrap();
            let _ = writeln!(f, "{first_line}");
            for l in lines.by_ref().map_while(Result::ok) {
                let _ = writeln!(f, "{l}");
            }
        });
        (child, invite)
    }
}

/// Push `file` as `name` on `from`, wait until `to` lists it, get it there byte-identical.
fn push_then_get(from: &Path, to: &Path, name: &str, file: &Path, out: &Path) {
    let (code, _, err) = meff(from, &["push", name, file.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let listed = wait_for(Duration::from_secs(15), || {
        meff(to, &["ls"]).1.contains(name)
    });
    assert!(listed.is_some(), "{name} never listed");
    let (code, _, err) = meff(to, &["get", name, "-o", out.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(std::fs::read(out).unwrap(), std::fs::read(file).unwrap());
}

/// A WAV of `bytes` of 16-bit stereo noise shaped by `seed` (distinct content per seed).
fn write_wav(path: &Path, bytes: usize, seed: u32) {
    let spec = hound::WavSpec {
        channels: 2,
        sample_rate: 44_100,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).unwrap();
    let mut x = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    for _ in 0..bytes / 2 {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        w.write_sample((x >> 20) as i16).unwrap();
    }
    w.finalize().unwrap();
}

fn peer_view(dir: &Path, name: &str) -> Option<(String, String)> {
    let s: Value = status(dir);
    s["peers"]
        .as_array()?
        .iter()
        .find(|p| p["name"] == name)
        .map(|p| {
            (
                p["state"].as_str().unwrap_or("").to_string(),
                p["path"].as_str().unwrap_or("").to_string(),
            )
        })
}

#[test]
fn mesh_forms_across_nats_with_punching_and_relay() {
    if let Err(why) = can_run() {
        assert!(
            std::env::var_os("CI").is_none(),
            "the NAT test must run in CI (as root): {why}"
        );
        eprintln!("skipping the NAT test: {why}");
        return;
    }
    let net = Internet::build().expect("namespace topology");
    let base = tempfile::tempdir().unwrap();
    let dir = |n: &str| -> PathBuf { base.path().join(n) };
    let (mut public, invite) = net.up("pub", "pub", &dir("pub"), 7000, None);
    let ticket = invite.expect("invite");
    let t0 = Instant::now();
    let (_h1, _) = net.up("h1", "h1", &dir("h1"), 7001, Some(&ticket));
    let (_h2, _) = net.up("h2", "h2", &dir("h2"), 7001, Some(&ticket));
    let (_h3, _) = net.up("h3", "h3", &dir("h3"), 7001, Some(&ticket));
    let names = ["pub", "h1", "h2", "h3"];

    // The two behind port-preserving NATs punch through to a direct path.
    let direct = wait_for(Duration::from_secs(15), || {
        peer_view(&dir("h1"), "h2") == Some(("alive".into(), "direct".into()))
            && peer_view(&dir("h2"), "h1") == Some(("alive".into(), "direct".into()))
    });
    assert!(direct.is_some(), "h1 and h2 never went direct");
    // A peer behind a NAT says where friends elsewhere can reach it once a peer has seen it:
    // its router's WAN address (203.0.113.0/24), not only its home address. Joining through
    // the public peer, it knows before its start lines, so `listening:` names it.
    let said = wait_for(Duration::from_secs(15), || {
        std::fs::read_to_string(dir("h1").with_extension("stdout")).is_ok_and(|o| {
            o.lines().any(|l| {
                (l.starts_with("listening: ") || l.starts_with("public address: "))
                    && l.contains("203.0.113.")
            })
        })
    });
    assert!(
        said.is_some(),
        "h1 never printed its public address: {:?}",
        std::fs::read_to_string(dir("h1").with_extension("stdout"))
    );
    eprintln!(
        "h1<->h2 direct through their NATs {} ms after the first join",
        t0.elapsed().as_millis()
    );
    // Full mesh: the symmetric one is relayed (or direct).
    let full = wait_for(Duration::from_secs(25), || {
        names.iter().all(|a| {
            names
                .iter()
                .filter(|b| *b != a)
                .all(|b| peer_view(&dir(a), b).is_some_and(|(s, _)| s == "alive"))
        })
    });
    assert!(full.is_some(), "no full mesh");
    eprintln!(
        "full mesh of 4 across NATs after {} ms",
        t0.elapsed().as_millis()
    );
    let (_, path13) = peer_view(&dir("h1"), "h3").unwrap();
    assert!(path13 == "relayed" || path13 == "direct");
    let direct_pairs = names
        .iter()
        .flat_map(|a| names.iter().filter(move |b| a < *b).map(move |b| (*a, *b)))
        .filter(|(a, b)| peer_view(&dir(a), b).is_some_and(|(_, p)| p == "direct"))
        .count();
    eprintln!("direct pairs: {direct_pairs} of 6; h1<->h3 is {path13}");

    // The symmetric-NAT peer can push, get and stream.
    let mp3 = fixture("tone.mp3");
    push_then_get(
        &dir("h3"),
        &dir("h1"),
        "from-h3",
        &mp3,
        &base.path().join("got.mp3"),
    );
    let ogg = fixture("tone.ogg");
    push_then_get(
        &dir("h1"),
        &dir("h3"),
        "from-h1",
        &ogg,
        &base.path().join("got.ogg"),
    );
    let (code, stats, err) = meff(
        &dir("h3"),
        &["stream", "from-h1", "--output", "null", "--stats", "json"],
    );
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(stats.trim()).unwrap();
    assert_eq!(v["underruns"], 0);

    // Throughput through the relay against a direct path: a track placed on h1 and h2 only
    // is fetched by pub (direct) and by h3 (relayed through pub).
    let ids: Vec<(String, meff::id::PeerId)> = names
        .iter()
        .map(|n| {
            let id = status(&dir(n))["id"].as_str().unwrap().to_string();
            (n.to_string(), meff::id::PeerId::parse(&id).unwrap())
        })
        .collect();
    let id_of = |n: &str| ids.iter().find(|(m, _)| m == n).unwrap().1;
    let cands: Vec<meff::mesh::placement::Candidate> = ids
        .iter()
        .map(|(_, id)| meff::mesh::placement::Candidate {
            id: *id,
            capacity: 10 << 30,
        })
        .collect();
    let big = base.path().join("big.wav");
    let want: std::collections::BTreeSet<_> = [id_of("h1"), id_of("h2")].into();
    let mut seed = 0u32;
    loop {
        write_wav(&big, 32 << 20, seed);
        let hash = *blake3::hash(&std::fs::read(&big).unwrap()).as_bytes();
        let placed: std::collections::BTreeSet<_> =
            meff::mesh::placement::holders(&hash, &cands, 2)
                .into_iter()
                .collect();
        if placed == want {
            break;
        }
        seed += 1;
    }
    let (code, _, err) = meff(&dir("h1"), &["push", "big", big.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(
        wait_for(Duration::from_secs(15), || meff(&dir("h3"), &["ls"])
            .1
            .contains("big"))
        .is_some()
    );
    let mut rates = Vec::new();
    for who in ["pub", "h3"] {
        // wav:/dev/null decodes as fast as bytes come and writes nothing: the path is the
        // bottleneck, not the disk.
        let t = Instant::now();
        let (code, out, err) = meff(
            &dir(who),
            &[
                "stream",
                "big",
                "--output",
                "wav:/dev/null",
                "--stats",
                "json",
            ],
        );
        assert_eq!(code, 0, "{err}");
        let secs = t.elapsed().as_secs_f64();
        let v: Value = serde_json::from_str(out.trim()).unwrap();
        assert_eq!(
            v["bytes"].as_u64(),
            Some(std::fs::metadata(&big).unwrap().len())
        );
        rates.push(32.0 / secs);
    }
    eprintln!(
        "32 MiB stream to wav:/dev/null: direct {:.1} MiB/s, relayed {:.1} MiB/s (relayed/direct = {:.2})",
        rates[0],
        rates[1],
        rates[1] / rates[0]
    );

    // The public peer dies: the direct pair stays connected and working.
    public.kill().unwrap();
    public.wait().unwrap();
    assert!(
        wait_for(Duration::from_secs(20), || peer_view(&dir("h1"), "pub")
            .map(|v| v.0)
            .as_deref()
            == Some("dead"))
        .is_some(),
        "the dead public peer is not seen dead"
    );
    assert_eq!(
        peer_view(&dir("h1"), "h2"),
        Some(("alive".into(), "direct".into()))
    );
    let flac = fixture("tone.flac");
    push_then_get(
        &dir("h1"),
        &dir("h2"),
        "after",
        &flac,
        &base.path().join("after.flac"),
    );
    drop(net);
    if let Some(keep) = std::env::var_os("MEFF_KEEP_LOGS") {
        for n in names {
            let _ = std::fs::copy(
                dir(n).with_extension("log"),
                Path::new(&keep).join(format!("{n}.log")),
            );
        }
    }
}
