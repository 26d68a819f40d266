//! Which holder serves: fetches that start together spread across the holders within one of
//! even, and a holder slower than the track plays is left for one that keeps up.

mod common;

use common::*;
use meff::audio::OutputKind;
use meff::id::PeerId;
use meff::node::{Node, NodeConfig};
use std::path::Path;
use std::time::{Duration, Instant};

/// A float WAV tone, `secs` long at `rate` Hz, stereo.
fn synth_wav(path: &Path, secs: u32, rate: u32) {
    let spec = hound::WavSpec {
        channels: 2,
        sample_rate: rate,
        bits_per_sample: 32,
        sample_format: hound::SampleFormat::Float,
    };
    let mut w = hound::WavWriter::create(path, spec).unwrap();
    for i in 0..secs * rate {
        let v = 0.3 * (i as f32 * 0.01).sin();
        w.write_sample(v).unwrap();
        w.write_sample(-v).unwrap();
    }
    w.finalize().unwrap();
}

/// Peers named `holder*` offer space; the others offer none, so placement gives every track
/// to the holders and the rest only listen.
fn roles(cfg: &mut NodeConfig, replicas: usize) {
    cfg.replicas = replicas;
    if !cfg.name.starts_with("holder") {
        cfg.capacity = 0;
    }
    if cfg.name == "holder-slow" {
        cfg.upload_limit = Some(32_000);
    }
}

async fn wait_replicas(n: &Node, name: &str, r: usize) {
    assert!(
        wait_for(Duration::from_secs(15), || n
            .ls()
            .iter()
            .any(|l| l.name == name && l.replicas == r))
        .await
        .is_some(),
        "{} never saw {name} on {r} live holders",
        n.name()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_streams_from_eight_non_holders_split_within_one_of_even() {
    let dir = tempfile::tempdir().unwrap();
    let mut names: Vec<String> = (0..3).map(|i| format!("holder{i}")).collect();
    names.extend((0..8).map(|i| format!("listener{i}")));
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let nodes = mesh(&names, dir.path(), |c| roles(c, 3)).await;
    // 20 s at 96 kHz stereo float: 15 MB, far more than read-ahead and QUIC windows hold, so
    // every stream keeps its holder busy for as long as we look.
    let track = dir.path().join("long.wav");
    synth_wav(&track, 20, 96_000);
    let stored = nodes[0].push("long", &track, |_, _| {}).await.unwrap();
    let holders: Vec<&Node> = nodes.iter().filter(|n| stored.contains(&n.id())).collect();
    assert_eq!(holders.len(), 3);
    assert!(holders.iter().all(|h| h.name().starts_with("holder")));
    let listeners: Vec<Node> = nodes
        .iter()
        .filter(|n| n.name().starts_with("listener"))
        .cloned()
        .collect();
    for l in &listeners {
        wait_replicas(l, "long", 3).await;
    }
    // All eight at the same instant, each with the same view: the worst case for a herd.
    let streams: Vec<_> = listeners
        .iter()
        .map(|l| {
            let l = l.clone();
            tokio::spawn(async move {
                l.stream("long", OutputKind::Null, Instant::now(), |_: PeerId| {})
                    .await
            })
        })
        .collect();
    let loads = || {
        let mut v: Vec<u32> = holders.iter().map(|h| h.serving_now()).collect();
        v.sort();
        v
    };
    let balanced = wait_for(Duration::from_secs(10), || loads() == [2, 3, 3]).await;
    let seen = loads();
    // Held for a while, not a moment passing through.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let later = loads();
    eprintln!("holder loads: {seen:?}, 2 s later {later:?}, balanced after {balanced:?}");
    assert!(
        balanced.is_some(),
        "8 streams over 3 holders never split 3/3/2: {seen:?}"
    );
    assert_eq!(later, [2, 3, 3], "the split did not hold");
    for s in &streams {
        s.abort();
    }
    leave_all(&nodes).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_holder_slower_than_the_track_is_left_for_one_that_keeps_up() {
    let dir = tempfile::tempdir().unwrap();
    let nodes = mesh(
        &["holder-slow", "holder-fast", "busy", "listener"],
        dir.path(),
        |c| roles(c, 2),
    )
    .await;
    let (slow, fast, busy, listener) = (&nodes[0], &nodes[1], &nodes[2], &nodes[3]);
    // The busy peer's track keeps a holder serving: 768 KB/s for 20 s.
    let big = dir.path().join("big.wav");
    synth_wav(&big, 20, 96_000);
    // The listener's needs 64 KB/s; the slow holder serves 32 KB/s.
    let small = dir.path().join("small.wav");
    synth_wav(&small, 8, 8_000);
    slow.push("big", &big, |_, _| {}).await.unwrap();
    slow.push("small", &small, |_, _| {}).await.unwrap();
    wait_replicas(busy, "big", 2).await;
    wait_replicas(listener, "small", 2).await;
    let b = busy.clone();
    let busy_stream = tokio::spawn(async move {
        b.stream("big", OutputKind::Null, Instant::now(), |_| {})
            .await
    });
    // Wherever it started, the busy stream ends up at the fast holder (the slow one cannot
    // keep up with it), and the listener hears of that load in a heartbeat.
    assert!(
        wait_for(Duration::from_secs(8), || fast.serving_now() == 1
            && slow.serving_now() == 0)
        .await
        .is_some(),
        "the busy stream never settled on the fast holder"
    );
    assert!(
        wait_for(Duration::from_secs(10), || listener.known_load(&fast.id())
            == Some(1)
            && listener.known_load(&slow.id()).unwrap_or(0) == 0)
        .await
        .is_some(),
        "the listener never heard the fast holder's load"
    );
    let stats = listener
        .stream("small", OutputKind::Null, Instant::now(), |_| {})
        .await
        .unwrap();
    eprintln!("listener stats: {stats:?}");
    assert_eq!(
        stats.sources,
        vec![slow.id().to_string(), fast.id().to_string()],
        "started at the idle slow holder, then left it for the fast one"
    );
    assert_eq!(stats.frames, 8 * 8_000, "the whole track played");
    assert_eq!(stats.bytes, std::fs::metadata(&small).unwrap().len());
    busy_stream.abort();
    leave_all(&nodes).await;
}
