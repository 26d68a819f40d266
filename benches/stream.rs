//! Streaming figures, printed one per line as `label: value`:
//!  a. time to first audio (3 peers, 2 replicas, streamed from the non-holder), WAV and MP3;
//!  b. underruns when the serving peer dies 5 s into a real-time (null output) stream;
//!  c. memory growth of this process while streaming a large track.
//!
//! `cargo bench --bench stream`. Knobs: MEFF_BENCH_RUNS (40), MEFF_BENCH_SECS (30),
//! MEFF_BENCH_MB (256), MEFF_BENCH_ONLY (comma list of ttfa, failover, memory).

mod common;

use meff::audio::OutputKind;
use meff::id::PeerId;
use meff::node::Node;
use meff::node::stream::StreamStats;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Per-stream buffering between a holder and the decoder, from src/net/tls.rs and
/// src/node/stream.rs: the QUIC stream receive window plus the verified-chunk read-ahead.
const STREAM_WINDOW: u64 = 4 << 20;
const READ_AHEAD: u64 = 16 * 65536;

/// When the failover test kills the serving peer.
const ABORT_AFTER: Duration = Duration::from_secs(5);

fn main() {
    let only = std::env::var("MEFF_BENCH_ONLY").unwrap_or_default();
    let wanted = |what: &str| only.is_empty() || only.split(',').any(|w| w.trim() == what);
    let rt = common::runtime();
    let dir = common::bench_dir();
    println!("temp dir: {}", dir.path().display());
    // Memory first, so the earlier phases' allocations do not hide its growth.
    if wanted("memory") {
        rt.block_on(memory(&dir.path().join("memory")));
    }
    if wanted("ttfa") {
        rt.block_on(ttfa(&dir.path().join("ttfa")));
    }
    if wanted("failover") {
        rt.block_on(failover(&dir.path().join("failover")));
    }
}

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

async fn ttfa(base: &Path) {
    let runs = common::env_u64("MEFF_BENCH_RUNS", 40);
    std::fs::create_dir_all(base).expect("cannot create the ttfa dir");
    let wav = base.join("short.wav");
    common::write_wav_secs(&wav, 44_100, 2, 3.0).expect("cannot write the short WAV");
    let mp3 = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tone.mp3");
    let nodes = common::start_mesh(&base.join("peers"), 3, 2).await;
    let out = base.join("out.wav");
    println!("ttfa peers: 3, replicas: 2, runs per format: {runs}");
    for (format, name, file) in [("wav", "short-wav", &wav), ("mp3", "tone-mp3", &mp3)] {
        let size = std::fs::metadata(file).map(|m| m.len()).unwrap_or(0);
        let holders = common::push_and_wait(&nodes, 0, name, file).await;
        let reader = common::non_holder(&nodes, &holders);
        let mut ttfa = Vec::with_capacity(runs as usize);
        let mut failures = 0u64;
        for _ in 0..runs {
            let start = Instant::now();
            match reader
                .stream(name, OutputKind::Wav(out.clone()), start, |_| {})
                .await
            {
                Ok(s) if s.frames > 0 && s.ended_early.is_none() => ttfa.push(s.ttfa_ms),
                Ok(s) => {
                    failures += 1;
                    eprintln!("ttfa {format}: incomplete stream: {s:?}");
                }
                Err(e) => {
                    failures += 1;
                    eprintln!("ttfa {format}: stream failed: {e:#}");
                }
            }
            let _ = std::fs::remove_file(&out);
        }
        ttfa.sort_by(f64::total_cmp);
        println!("ttfa {format} track bytes: {size}");
        println!("ttfa {format} ok runs: {}", ttfa.len());
        println!("ttfa {format} failed runs: {failures}");
        println!("ttfa {format} p50 ms: {:.2}", percentile(&ttfa, 0.50));
        println!("ttfa {format} p95 ms: {:.2}", percentile(&ttfa, 0.95));
        println!(
            "ttfa {format} max ms: {:.2}",
            ttfa.last().copied().unwrap_or(f64::NAN)
        );
    }
    common::teardown(&nodes);
}

async fn failover(base: &Path) {
    let secs = common::env_u64("MEFF_BENCH_SECS", 30);
    let (rate, channels) = (96_000u32, 2u16);
    let per_sec = u64::from(rate) * u64::from(channels) * 2;
    std::fs::create_dir_all(base).expect("cannot create the failover dir");
    let track = base.join("long.wav");
    let size = common::write_wav_secs(&track, rate, channels, secs as f64)
        .expect("cannot write the long WAV");
    let nodes = common::start_mesh(&base.join("peers"), 3, 2).await;
    let holders = common::push_and_wait(&nodes, 0, "long", &track).await;
    let reader = common::non_holder(&nodes, &holders).clone();

    let buffers = STREAM_WINDOW + READ_AHEAD;
    println!("failover track seconds: {secs}");
    println!("failover track bytes: {size}");
    println!("failover track bytes per second: {per_sec}");
    println!("failover receive-side buffering bound bytes: {buffers}");
    let played_before_abort = per_sec * ABORT_AFTER.as_secs();
    if size <= buffers + played_before_abort {
        let need = (buffers + played_before_abort).div_ceil(per_sec) + 10;
        println!(
            "failover note: the track fits in the receive-side buffers ({:.1} MiB stream window + read-ahead), so the holder may have sent all of it before the abort; set MEFF_BENCH_SECS>={need} to make the rest come from the second holder",
            common::mib(buffers)
        );
    }

    let sources: Arc<Mutex<Vec<PeerId>>> = Arc::default();
    let seen = sources.clone();
    let r = reader.clone();
    let start = Instant::now();
    let playing = tokio::spawn(async move {
        r.stream("long", OutputKind::Null, start, move |p| {
            if let Ok(mut s) = seen.lock() {
                s.push(p);
            }
        })
        .await
    });
    tokio::time::sleep(ABORT_AFTER.saturating_sub(start.elapsed())).await;
    let current = sources.lock().ok().and_then(|s| s.last().copied());
    let victim = current.and_then(|id| nodes.iter().find(|n| n.id() == id));
    let aborted = match (victim, playing.is_finished()) {
        (_, true) => {
            println!("failover abort: none, the stream ended before {ABORT_AFTER:?}");
            false
        }
        (None, false) => {
            println!("failover abort: none, no source reported yet");
            false
        }
        (Some(v), false) => {
            v.abort();
            println!(
                "failover aborted source: {} at {:.2} s",
                v.id().short(),
                start.elapsed().as_secs_f64()
            );
            true
        }
    };
    match playing.await {
        Ok(Ok(s)) => {
            print_stream("failover", &s, &nodes);
            if aborted && s.failovers == 0 && s.ended_early.is_none() {
                println!(
                    "failover note: no failover was needed: every byte had reached the streaming peer before the abort"
                );
            }
        }
        Ok(Err(e)) => println!("failover stream error: {e:#}"),
        Err(e) => println!("failover stream task failed: {e}"),
    }
    println!(
        "failover wall seconds: {:.2}",
        start.elapsed().as_secs_f64()
    );
    common::teardown(&nodes);
}

fn print_stream(label: &str, s: &StreamStats, nodes: &[Node]) {
    let short = |id: &String| {
        nodes
            .iter()
            .find(|n| n.id().to_string() == *id)
            .map(|n| format!("{} ({})", n.name(), n.id().short()))
            .unwrap_or_else(|| id.chars().take(8).collect())
    };
    println!("{label} ttfa ms: {:.2}", s.ttfa_ms);
    println!("{label} underruns: {}", s.underruns);
    println!("{label} underrun ms: {:.1}", s.underrun_ms);
    println!("{label} failovers: {}", s.failovers);
    println!(
        "{label} sources: {}",
        s.sources.iter().map(short).collect::<Vec<_>>().join(" -> ")
    );
    println!(
        "{label} played seconds: {:.2}",
        s.frames as f64 / f64::from(s.sample_rate.max(1))
    );
    println!("{label} bytes: {}", s.bytes);
    println!("{label} skipped packets: {}", s.skipped_packets);
    println!(
        "{label} ended early: {}",
        s.ended_early.as_deref().unwrap_or("no")
    );
}

/// (VmHWM, VmRSS) of this process in KiB.
fn mem_kib() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmHWM:"), field("VmRSS:"))
}

async fn memory(base: &Path) {
    let mb = common::env_u64("MEFF_BENCH_MB", 256);
    std::fs::create_dir_all(base).expect("cannot create the memory dir");
    let track = base.join("huge.wav");
    let size = common::write_wav(&track, 48_000, 2, mb << 20).expect("cannot write the big WAV");
    let nodes = common::start_mesh(&base.join("peers"), 2, 1).await;
    let holders = common::push_and_wait(&nodes, 0, "huge", &track).await;
    let reader = common::non_holder(&nodes, &holders).clone();
    // The track file is on tmpfs: page cache, not our RSS; drop it anyway, it is not needed.
    let _ = std::fs::remove_file(&track);

    let (hwm0, rss0) = mem_kib();
    // Reset the peak to the current RSS (Linux >= 4.0), so the push's peak does not count.
    let reset = std::fs::write("/proc/self/clear_refs", "5").is_ok();
    let (hwm_reset, _) = mem_kib();
    let start = Instant::now();
    let r = reader
        .stream("huge", OutputKind::Wav("/dev/null".into()), start, |_| {})
        .await;
    let secs = start.elapsed().as_secs_f64();
    let (hwm1, rss1) = mem_kib();
    println!("memory peers in this process: 2 (streamer + holder), replicas: 1");
    println!("memory track bytes: {size}");
    println!("memory rss before kib: {rss0}");
    println!("memory peak before kib: {hwm0}");
    println!("memory peak reset before streaming: {reset}");
    let base_peak = if reset { hwm_reset } else { hwm0 };
    println!("memory peak after kib: {hwm1}");
    println!(
        "memory peak growth kib: {}",
        hwm1.saturating_sub(base_peak.max(rss0))
    );
    println!("memory rss after kib: {rss1}");
    println!("memory rss growth kib: {}", rss1 as i64 - rss0 as i64);
    match r {
        Ok(s) => {
            println!("memory disk bytes written: {}", s.disk_bytes_written);
            println!("memory streamed bytes: {}", s.bytes);
            println!("memory stream seconds: {secs:.2}");
            println!(
                "memory stream MiB per second: {:.1}",
                common::mib(s.bytes) / secs.max(1e-9)
            );
            println!(
                "memory ended early: {}",
                s.ended_early.as_deref().unwrap_or("no")
            );
        }
        Err(e) => println!("memory stream error: {e:#}"),
    }
    common::teardown(&nodes);
}
