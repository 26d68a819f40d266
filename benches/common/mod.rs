//! Shared helpers for the benchmarks: synthesized WAV tracks, temp dirs on tmpfs, meshes of
//! peers on loopback.
#![allow(dead_code)]

use meff::id::PeerId;
use meff::node::{JoinTarget, Node, NodeConfig};
use std::io::{BufWriter, Write};
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::time::{Duration, Instant};

/// A size or count from the environment, else `default`.
pub fn env_u64(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) => v
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not a whole number")),
        Err(_) => default,
    }
}

/// A multi-threaded tokio runtime, as the `meff` binary uses.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("cannot build the tokio runtime")
}

/// A temp dir on tmpfs (/dev/shm) when there is one, so disk speed does not dominate.
pub fn bench_dir() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    let builder = {
        let mut b = tempfile::Builder::new();
        b.prefix("meff-bench-");
        b
    };
    if shm.is_dir()
        && let Ok(d) = builder.tempdir_in(shm)
    {
        return d;
    }
    builder.tempdir().expect("cannot create a temp dir")
}

/// Writes a 16-bit PCM WAV of `data_bytes` (rounded down to whole frames) at `rate` Hz and
/// `channels` channels: a 440 Hz tone plus noise, so it does not compress to nothing.
/// Returns the file size. Streams to disk: memory stays flat for any size.
pub fn write_wav(path: &Path, rate: u32, channels: u16, data_bytes: u64) -> std::io::Result<u64> {
    let frame = 2 * u64::from(channels);
    let data = data_bytes / frame * frame;
    let data32 = u32::try_from(data)
        .ok()
        .filter(|d| *d <= u32::MAX - 36)
        .ok_or_else(|| std::io::Error::other("WAV data over 4 GiB"))?;
    let mut w = BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
    w.write_all(b"RIFF")?;
    w.write_all(&(36 + data32).to_le_bytes())?;
    w.write_all(b"WAVE")?;
    w.write_all(b"fmt ")?;
    w.write_all(&16u32.to_le_bytes())?;
    w.write_all(&1u16.to_le_bytes())?; // PCM
    w.write_all(&channels.to_le_bytes())?;
    w.write_all(&rate.to_le_bytes())?;
    w.write_all(&(rate * u32::from(channels) * 2).to_le_bytes())?; // byte rate
    w.write_all(&(channels * 2).to_le_bytes())?; // block align
    w.write_all(&16u16.to_le_bytes())?;
    w.write_all(b"data")?;
    w.write_all(&data32.to_le_bytes())?;

    // One second of the tone (exactly 440 periods), then index into it.
    let tone: Vec<f32> = (0..rate)
        .map(|i| (i as f32 * 440.0 * std::f32::consts::TAU / rate as f32).sin())
        .collect();
    let mut rng = 0x9E37_79B9_7F4A_7C15u64;
    let frames = data / frame;
    let mut buf = Vec::with_capacity(1 << 16);
    for f in 0..frames {
        let t = tone[(f % u64::from(rate)) as usize] * 0.3;
        for _ in 0..channels {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let noise = ((rng >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 0.2;
            let s = ((t + noise) * f32::from(i16::MAX)) as i16;
            buf.extend_from_slice(&s.to_le_bytes());
        }
        if buf.len() >= (1 << 16) - 64 {
            w.write_all(&buf)?;
            buf.clear();
        }
    }
    w.write_all(&buf)?;
    w.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    Ok(44 + data)
}

/// Same, sized in seconds of audio.
pub fn write_wav_secs(path: &Path, rate: u32, channels: u16, secs: f64) -> std::io::Result<u64> {
    let bytes = (secs * f64::from(rate)).round() as u64 * u64::from(channels) * 2;
    write_wav(path, rate, channels, bytes)
}

/// Polls `cond` every 10 ms until it holds or `timeout` passes.
pub async fn wait_for(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let t0 = Instant::now();
    while t0.elapsed() < timeout {
        if cond() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    cond()
}

/// Every node sees every other node alive.
pub fn full_mesh(nodes: &[Node]) -> bool {
    nodes.iter().all(|a| {
        let st = a.status();
        nodes.iter().filter(|b| b.id() != a.id()).all(|b| {
            let id = b.id().to_string();
            st.peers.iter().any(|p| p.id == id && p.state == "alive")
        })
    })
}

/// Starts `n` peers on 127.0.0.1 under `base` (the first creates the network, the others
/// join through its ticket) and waits for the full mesh.
pub async fn start_mesh(base: &Path, n: usize, replicas: usize) -> Vec<Node> {
    let mut nodes: Vec<Node> = Vec::with_capacity(n);
    for i in 0..n {
        let name = format!("peer{i}");
        let mut cfg = NodeConfig::new(&name, base.join(&name));
        cfg.bind_ip = IpAddr::V4(Ipv4Addr::LOCALHOST);
        cfg.replicas = replicas;
        cfg.join = nodes.first().map(|f| JoinTarget::Ticket(f.ticket()));
        nodes.push(
            Node::start(cfg)
                .await
                .expect("bench peer starts on loopback"),
        );
    }
    assert!(
        wait_for(Duration::from_secs(30), || full_mesh(&nodes)).await,
        "the {n} bench peers did not form a full mesh within 30 s"
    );
    nodes
}

/// Pushes `file` as `name` from `nodes[from]`, then waits until every peer knows all holders.
/// Returns the holders.
pub async fn push_and_wait(nodes: &[Node], from: usize, name: &str, file: &Path) -> Vec<PeerId> {
    let holders = nodes[from]
        .push(name, file, |_, _| {})
        .await
        .expect("push of the bench track");
    let want = holders.len();
    let known = wait_for(Duration::from_secs(30), || {
        nodes.iter().all(|n| {
            n.ls()
                .iter()
                .any(|l| l.name == name && l.holders.len() >= want)
        })
    })
    .await;
    assert!(known, "not every peer learned the holders of {name}");
    holders
}

/// The first node that does not hold the track.
pub fn non_holder<'a>(nodes: &'a [Node], holders: &[PeerId]) -> &'a Node {
    nodes
        .iter()
        .find(|n| !holders.contains(&n.id()))
        .expect("every bench peer holds the track: use more peers than replicas")
}

/// Stops every node at once (no hand-off: the benches' data dirs are thrown away).
pub fn teardown(nodes: &[Node]) {
    for n in nodes {
        n.abort();
    }
}

pub fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1u64 << 20) as f64
}
