//! Streaming end to end over real QUIC on loopback: decoded output equals a direct decode for
//! every format, stats are sane, a killed source fails over with no underrun, and a track with
//! no live holder fails fast.

mod common;

use common::*;
use meff::audio::{OutputKind, decode_all};
use meff::id::PeerId;
use meff::node::Node;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The scrub waits 10 minutes: a copy a test corrupts stays until a reader finds it, however
/// slowly a loaded machine gets there (the counts of corrupt sources are asserted).
async fn mesh(n: usize, base: &Path, replicas: usize) -> Vec<Node> {
    let names: Vec<String> = (0..n).map(|i| format!("p{i}")).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    common::mesh(&names, base, |cfg| {
        cfg.replicas = replicas;
        cfg.scrub_pause = Duration::from_secs(600);
    })
    .await
}

/// Reads a WAV output as f32, whether 16-bit PCM (16-bit sources) or float (the others).
fn read_wav_f32(path: &Path) -> (u32, u16, Vec<f32>) {
    let mut r = hound::WavReader::open(path).unwrap();
    let spec = r.spec();
    let samples: Vec<f32> = match spec.sample_format {
        hound::SampleFormat::Int => r
            .samples::<i16>()
            .map(|s| f32::from(s.unwrap()) / 32768.0)
            .collect(),
        hound::SampleFormat::Float => r.samples::<f32>().map(|s| s.unwrap()).collect(),
    };
    (spec.sample_rate, spec.channels, samples)
}

/// A float WAV of a slowly sweeping tone: `secs` long at `rate` Hz, stereo.
fn synth_wav(path: &Path, secs: u32, rate: u32) {
    let spec = hound::WavSpec {
        channels: 2,
        sample_rate: rate,
        bits_per_sample: 32,
        sample_format: hound::SampleFormat::Float,
    };
    let mut w = hound::WavWriter::create(path, spec).unwrap();
    for i in 0..secs * rate {
        let t = i as f32 / rate as f32;
        let v = 0.3 * (2.0 * std::f32::consts::PI * (220.0 + 20.0 * t) * t).sin();
        w.write_sample(v).unwrap();
        w.write_sample(-v).unwrap();
    }
    w.finalize().unwrap();
}

/// The catalog reaches the other peers a moment after a push returns.
async fn wait_listed(n: &Node, name: &str) {
    assert!(
        wait_for(Duration::from_secs(15), || n.entry(name).is_ok())
            .await
            .is_some(),
        "{name} never listed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streamed_output_equals_a_direct_decode_for_every_format() {
    let dir = tempfile::tempdir().unwrap();
    let nodes = mesh(3, dir.path(), 2).await;
    for file in [
        "tone.mp3",
        "tone.flac",
        "tone.ogg",
        "tone.wav",
        "tone.m4a",
        "tone-moov-at-end.m4a",
    ] {
        let name = format!("s-{file}");
        let holders = nodes[0]
            .push(&name, &fixture(file), |_, _| {})
            .await
            .unwrap();
        let listener = nodes.iter().find(|n| !holders.contains(&n.id())).unwrap();
        wait_listed(listener, &name).await;
        let out = dir.path().join(format!("{file}.wav"));
        let t0 = Instant::now();
        let stats = listener
            .stream(&name, OutputKind::Wav(out.clone()), Instant::now(), |_| {})
            .await
            .unwrap();
        let original = std::fs::read(fixture(file)).unwrap();
        let (rate, channels, want) =
            decode_all(&original, Some(file.rsplit('.').next().unwrap())).unwrap();
        let (got_rate, got_channels, got) = read_wav_f32(&out);
        assert_eq!((got_rate, got_channels), (rate, channels), "{file}");
        assert_eq!(got.len(), want.len(), "{file}: sample count");
        let worst = got
            .iter()
            .zip(&want)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(worst < 1e-6, "{file}: samples differ by {worst}");
        assert_eq!(stats.bytes, original.len() as u64, "{file}");
        assert_eq!(
            stats.frames as usize,
            want.len() / channels as usize,
            "{file}"
        );
        assert!(
            stats.ttfa_ms > 0.0 && stats.ttfa_ms < t0.elapsed().as_secs_f64() * 1000.0,
            "{file}: ttfa {}",
            stats.ttfa_ms
        );
        assert_eq!(stats.sources.len(), 1);
        assert!(holders.iter().any(|h| h.to_string() == stats.sources[0]));
        assert_eq!(stats.failovers, 0);
        assert_eq!(stats.underruns, 0);
    }
    leave_all(&nodes).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_source_mid_stream_fails_over_with_no_underrun() {
    let dir = tempfile::tempdir().unwrap();
    let nodes = mesh(3, dir.path(), 2).await;
    // 10 s at 96 kHz stereo float: 7.7 MB, more than the read-ahead and QUIC windows hold,
    // so the source really is needed after it dies.
    let track = dir.path().join("long.wav");
    synth_wav(&track, 10, 96_000);
    let holders = nodes[0].push("long", &track, |_, _| {}).await.unwrap();
    let listener = nodes
        .iter()
        .find(|n| !holders.contains(&n.id()))
        .unwrap()
        .clone();
    wait_listed(&listener, "long").await;
    let current: Arc<Mutex<Option<PeerId>>> = Arc::default();
    let c = current.clone();
    let l = listener.clone();
    let play = tokio::spawn(async move {
        l.stream("long", OutputKind::Null, Instant::now(), move |p| {
            *c.lock().unwrap() = Some(p);
        })
        .await
    });
    assert!(
        wait_for(Duration::from_secs(10), || current
            .lock()
            .unwrap()
            .is_some())
        .await
        .is_some(),
        "no source was announced"
    );
    // Well into the track, not at its first bytes.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let source = current.lock().unwrap().expect("a source was announced");
    let victim = nodes.iter().find(|n| n.id() == source).unwrap();
    victim.abort();
    let stats = play.await.unwrap().unwrap();
    eprintln!("failover stats: {stats:?}");
    assert_eq!(stats.failovers, 1);
    assert_eq!(stats.sources.len(), 2);
    assert_eq!(stats.sources[0], source.to_string());
    assert_eq!(stats.underruns, 0, "the listener heard a gap");
    assert_eq!(stats.frames, 10 * 96_000);
    assert_eq!(stats.bytes, std::fs::metadata(&track).unwrap().len());
    for n in nodes.iter().filter(|n| n.id() != source) {
        n.leave().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_holder_is_skipped_while_streaming() {
    let dir = tempfile::tempdir().unwrap();
    let nodes = mesh(4, dir.path(), 2).await;
    let holders = nodes[0]
        .push("c", &fixture("tone.flac"), |_, _| {})
        .await
        .unwrap();
    let original = std::fs::read(fixture("tone.flac")).unwrap();
    let hash = blake3::hash(&original).to_hex().to_string();
    for h in &holders[..1] {
        let n = nodes.iter().find(|n| n.id() == *h).unwrap();
        let blob = n.data_dir().join("blobs").join(&hash);
        let mut bytes = std::fs::read(&blob).unwrap();
        bytes[100] ^= 0x55;
        std::fs::write(&blob, &bytes).unwrap();
    }
    let (rate, channels, want) = decode_all(&original, Some("flac")).unwrap();
    for listener in nodes.iter().filter(|n| !holders.contains(&n.id())) {
        wait_listed(listener, "c").await;
        let out = dir.path().join(format!("{}.wav", listener.name()));
        listener
            .stream("c", OutputKind::Wav(out.clone()), Instant::now(), |_| {})
            .await
            .unwrap();
        let (r, c, got) = read_wav_f32(&out);
        assert_eq!((r, c), (rate, channels));
        assert_eq!(got, want);
    }
    leave_all(&nodes).await;
}

fn corrupt_copy(n: &Node, content: &[u8], at: usize) {
    let hash = blake3::hash(content).to_hex().to_string();
    let blob = n.data_dir().join("blobs").join(&hash);
    let mut bytes = std::fs::read(&blob).unwrap();
    bytes[at] ^= 0x55;
    std::fs::write(&blob, &bytes).unwrap();
}

/// A holder hashes only the last few MiB of what it sends: a reader that finds a rotten piece
/// before those says so when it stops the stream, and the holder checks and drops its copy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotten_piece_a_reader_finds_makes_its_holder_drop_the_copy() {
    let dir = tempfile::tempdir().unwrap();
    let nodes = mesh(2, dir.path(), 1).await;
    let track = dir.path().join("r.wav");
    synth_wav(&track, 32, 48_000);
    let content = std::fs::read(&track).unwrap();
    let holders = nodes[0].push("r", &track, |_, _| {}).await.unwrap();
    let holder = nodes.iter().find(|n| n.id() == holders[0]).unwrap();
    let reader = nodes.iter().find(|n| n.id() != holders[0]).unwrap();
    corrupt_copy(holder, &content, 100_000);
    wait_listed(reader, "r").await;
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<u8>>(64);
    let drain = tokio::spawn(async move { while rx.recv().await.is_some() {} });
    let err = reader.get_into("r", tx).await.unwrap_err().to_string();
    drain.await.unwrap();
    assert!(err.contains("(1 corrupt, 0 unreachable)"), "{err}");
    // The check reads 12 MiB at the scrub's 8 MiB/s. The scrub itself waits 10 minutes here.
    assert!(
        wait_for(Duration::from_secs(8), || holder.stored_bytes() == 0)
            .await
            .is_some(),
        "the holder kept its rotten copy"
    );
    leave_all(&nodes).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_copy_corrupt_fails_with_a_count_and_every_source_in_the_stats() {
    let dir = tempfile::tempdir().unwrap();
    let nodes = mesh(4, dir.path(), 3).await;
    // A third 64 KiB chunk that is bad everywhere: playback starts, then every source fails.
    let track = dir.path().join("w-src.wav");
    synth_wav(&track, 3, 8_000);
    let wav = std::fs::read(&track).unwrap();
    let holders = nodes[0].push("w", &track, |_, _| {}).await.unwrap();
    assert_eq!(holders.len(), 3);
    for h in &holders {
        corrupt_copy(nodes.iter().find(|n| n.id() == *h).unwrap(), &wav, 150_000);
    }
    let listener = nodes.iter().find(|n| !holders.contains(&n.id())).unwrap();
    wait_listed(listener, "w").await;
    assert!(
        wait_for(Duration::from_secs(15), || listener.ls()[0].replicas == 3)
            .await
            .is_some()
    );
    let out = dir.path().join("w.wav");
    let stats = listener
        .stream("w", OutputKind::Wav(out), Instant::now(), |_| {})
        .await
        .unwrap();
    assert_eq!(
        stats.failed.as_deref(),
        Some("no intact copy of 'w' reachable (3 corrupt, 0 unreachable)")
    );
    assert_eq!(stats.sources.len(), 3, "{:?}", stats.sources);
    assert_eq!(stats.failovers, 2);
    // The corrupt copies stop counting as replicas.
    assert!(
        wait_for(Duration::from_secs(15), || listener.ls()[0].replicas == 0)
            .await
            .is_some(),
        "replicas: {}",
        listener.ls()[0].replicas
    );

    // Two corrupt copies and a holder that is gone.
    let flac = std::fs::read(fixture("tone.flac")).unwrap();
    let holders = nodes[0]
        .push("g", &fixture("tone.flac"), |_, _| {})
        .await
        .unwrap();
    let listener = nodes.iter().find(|n| !holders.contains(&n.id())).unwrap();
    wait_listed(listener, "g").await;
    assert!(
        wait_for(Duration::from_secs(15), || listener
            .ls()
            .iter()
            .any(|l| l.name == "g" && l.replicas == 3))
        .await
        .is_some()
    );
    for h in &holders[..2] {
        corrupt_copy(nodes.iter().find(|n| n.id() == *h).unwrap(), &flac, 100);
    }
    let gone = nodes.iter().find(|n| n.id() == holders[2]).unwrap();
    gone.abort();
    let err = listener.get("g", None, dir.path()).await.unwrap_err();
    assert_eq!(
        format!("{err:#}"),
        "no intact copy of 'g' reachable (2 corrupt, 1 unreachable)"
    );
    for n in nodes.iter().filter(|n| n.id() != gone.id()) {
        n.leave().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_live_holder_fails_within_a_few_seconds() {
    let dir = tempfile::tempdir().unwrap();
    let nodes = mesh(3, dir.path(), 1).await;
    let holders = nodes[0]
        .push("lonely", &fixture("tone.ogg"), |_, _| {})
        .await
        .unwrap();
    let holder = nodes.iter().find(|n| n.id() == holders[0]).unwrap();
    let listener = nodes.iter().find(|n| n.id() != holders[0]).unwrap();
    assert!(
        wait_for(Duration::from_secs(15), || listener.ls().len() == 1)
            .await
            .is_some()
    );
    holder.abort();
    let t0 = Instant::now();
    let r = listener
        .stream("lonely", OutputKind::Null, Instant::now(), |_| {})
        .await;
    // A failed stream still reports what it tried; the command turns `failed` into its error.
    let err = match r {
        Ok(stats) => stats.failed.expect("a stream with no live holder failed"),
        Err(e) => format!("{e:#}"),
    };
    assert!(
        t0.elapsed() < Duration::from_secs(8),
        "took {:?}",
        t0.elapsed()
    );
    assert!(err.contains("lonely"), "{err}");
    let unknown = listener
        .stream("nope", OutputKind::Null, Instant::now(), |_| {})
        .await;
    assert!(format!("{:#}", unknown.unwrap_err()).contains("no track named"));
    for n in nodes.iter().filter(|n| n.id() != holders[0]) {
        n.leave().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_slower_than_the_bitrate_shows_as_underruns() {
    let dir = tempfile::tempdir().unwrap();
    // Every peer serves at most 32 KB/s; the track needs 64 KB/s (float stereo at 8 kHz).
    let nodes = common::mesh(&["a", "b"], dir.path(), |cfg| {
        cfg.replicas = 1;
        cfg.upload_limit = Some(32_000);
    })
    .await;
    let track = dir.path().join("slow.wav");
    synth_wav(&track, 3, 8_000);
    let holders = nodes[0].push("slow", &track, |_, _| {}).await.unwrap();
    let listener = nodes.iter().find(|n| !holders.contains(&n.id())).unwrap();
    wait_listed(listener, "slow").await;
    // On a loaded machine the holder's holdings can trail its catalog entry: stream once the
    // listener knows a live holder, so the figure is about the slow source, not gossip.
    assert!(
        wait_for(Duration::from_secs(10), || listener
            .ls()
            .iter()
            .any(|l| l.name == "slow" && l.replicas == 1))
        .await
        .is_some(),
        "the listener never saw the holder alive with the track"
    );
    let stats = listener
        .stream("slow", OutputKind::Null, Instant::now(), |_| {})
        .await
        .unwrap();
    eprintln!("throttled stats: {stats:?}");
    assert!(stats.underruns > 0, "a starved output must count underruns");
    assert!(stats.underrun_ms > 100.0);
    assert_eq!(stats.failovers, 0, "a slow source is not a stalled one");
    assert_eq!(stats.bytes, std::fs::metadata(&track).unwrap().len());
    assert_eq!(stats.frames, 3 * 8_000, "the whole track still plays");
    leave_all(&nodes).await;
}
