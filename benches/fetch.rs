//! Fetch throughput on loopback: `get` of a large track from the other peer of a 2-peer mesh,
//! against a bare-quinn baseline (same TLS and transport settings, same file sink) moving the
//! same bytes over one bidirectional stream.
//!
//! `cargo bench --bench fetch`; size with MEFF_BENCH_MB (default 256).

mod common;

use anyhow::{Context, Result, bail};
use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use meff::net::identity::Identity;
use meff::net::tls;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tokio::io::AsyncReadExt;
use tokio::sync::mpsc;

/// Same chunk size as meff's transfers, so the baseline does the same number of reads.
const CHUNK: usize = 64 << 10;

fn configure<'a>(c: &'a mut Criterion, name: &str, bytes: u64, mb: u64) -> CriterionGroup<'a> {
    let mut g = c.benchmark_group(name);
    g.throughput(Throughput::Bytes(bytes))
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_secs(2))
        // ~10 iterations per group at 256 MiB on loopback: the whole run stays under 2 min.
        .measurement_time(Duration::from_secs_f64((12.0 * mb as f64 / 256.0).max(3.0)));
    g
}

type CriterionGroup<'a> = criterion::BenchmarkGroup<'a, criterion::measurement::WallTime>;

fn fetch(c: &mut Criterion) {
    let mb = common::env_u64("MEFF_BENCH_MB", 256);
    let rt = common::runtime();
    let dir = common::bench_dir();
    let src = dir.path().join("track.wav");
    let size = common::write_wav(&src, 48_000, 2, mb << 20).expect("cannot write the bench track");
    let out_dir = dir.path().join("out");
    std::fs::create_dir_all(&out_dir).expect("cannot create the output dir");
    eprintln!(
        "fetch bench: {:.1} MiB track, temp dir {}",
        common::mib(size),
        dir.path().display()
    );

    // --- meff: 2 peers, 1 replica, get from the peer that does not hold it.
    let (nodes, holders) = rt.block_on(async {
        let nodes = common::start_mesh(&dir.path().join("peers"), 2, 1).await;
        let holders = common::push_and_wait(&nodes, 0, "big", &src).await;
        (nodes, holders)
    });
    assert_eq!(holders.len(), 1, "replicas = 1 must give one holder");
    let reader = common::non_holder(&nodes, &holders).clone();
    let out = out_dir.join("big.wav");
    let mut g = configure(c, "meff_get", size, mb);
    g.bench_function(format!("{mb}MiB"), |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let t = Instant::now();
                    let got = reader
                        .get("big", Some(&out), &out_dir)
                        .await
                        .expect("get from the other peer");
                    total += t.elapsed();
                    let len = std::fs::metadata(&got).map(|m| m.len()).unwrap_or(0);
                    assert_eq!(len, size, "fetched copy has the wrong size");
                    std::fs::remove_file(&got).expect("cannot remove the fetched copy");
                }
                total
            })
        })
    });
    g.finish();
    common::teardown(&nodes);
    drop(nodes);

    // --- bare quinn: one connection, one bidi stream per fetch, same sink.
    let base = rt
        .block_on(Baseline::start(&dir.path().join("quinn"), &src))
        .expect("cannot start the bare-quinn baseline");
    let out = out_dir.join("baseline.wav");
    let mut g = configure(c, "quinn_baseline", size, mb);
    g.bench_function(format!("{mb}MiB"), |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let t = Instant::now();
                    let n = base.fetch(&out).await.expect("bare-quinn fetch");
                    total += t.elapsed();
                    assert_eq!(n, size, "baseline moved the wrong number of bytes");
                    std::fs::remove_file(&out).expect("cannot remove the baseline copy");
                }
                total
            })
        })
    });
    g.finish();
    base.close();
}

/// Two quinn endpoints on 127.0.0.1 with meff's TLS configs and transport settings. The server
/// answers each stream with an 8-byte size then the file, read in 64 KiB chunks (as a meff
/// holder serves); the client writes what it receives through a blocking writer thread with a
/// 1 MiB buffer and an fsync at the end (as `get` does).
struct Baseline {
    server: quinn::Endpoint,
    client: quinn::Endpoint,
    conn: quinn::Connection,
}

impl Baseline {
    async fn start(dir: &Path, file: &Path) -> Result<Baseline> {
        let sdir = dir.join("server");
        let cdir = dir.join("client");
        std::fs::create_dir_all(&sdir)?;
        std::fs::create_dir_all(&cdir)?;
        let sid = Identity::load_or_create(&sdir)?;
        let cid = Identity::load_or_create(&cdir)?;
        let localhost: SocketAddr = ([127, 0, 0, 1], 0).into();
        let server = quinn::Endpoint::server(tls::server_config(&sid)?, localhost)?;
        let addr = server.local_addr()?;
        let ep = server.clone();
        let file = file.to_path_buf();
        tokio::spawn(async move {
            while let Some(incoming) = ep.accept().await {
                let file = file.clone();
                tokio::spawn(async move {
                    let Ok(conn) = incoming.await else { return };
                    while let Ok((send, recv)) = conn.accept_bi().await {
                        let file = file.clone();
                        tokio::spawn(async move {
                            if let Err(e) = serve(send, recv, file).await {
                                eprintln!("baseline server: {e:#}");
                            }
                        });
                    }
                });
            }
        });
        let mut client = quinn::Endpoint::client(localhost)?;
        client.set_default_client_config(tls::client_config(&cid, Some(sid.id))?);
        let conn = client
            .connect(addr, tls::SERVER_NAME)?
            .await
            .context("baseline handshake")?;
        Ok(Baseline {
            server,
            client,
            conn,
        })
    }

    async fn fetch(&self, out: &Path) -> Result<u64> {
        let (mut send, mut recv) = self.conn.open_bi().await?;
        send.write_all(b"GET").await?;
        send.finish()?;
        let mut size = [0u8; 8];
        recv.read_exact(&mut size).await?;
        let size = u64::from_le_bytes(size);
        let file = std::fs::File::create(out)?;
        let (tx, mut rx) = mpsc::channel::<Vec<u8>>(16);
        let writer = tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            let mut w = std::io::BufWriter::with_capacity(1 << 20, file);
            while let Some(chunk) = rx.blocking_recv() {
                w.write_all(&chunk)?;
            }
            w.into_inner().map_err(|e| e.into_error())?.sync_all()
        });
        let mut got = 0u64;
        while got < size {
            let want = (size - got).min(CHUNK as u64) as usize;
            let mut buf = vec![0u8; want];
            recv.read_exact(&mut buf).await?;
            got += want as u64;
            if tx.send(buf).await.is_err() {
                break;
            }
        }
        drop(tx);
        writer.await??;
        if got != size {
            bail!("baseline writer stopped after {got} of {size} bytes");
        }
        Ok(got)
    }

    fn close(&self) {
        self.conn.close(0u32.into(), b"done");
        self.client.close(0u32.into(), b"done");
        self.server.close(0u32.into(), b"done");
    }
}

async fn serve(
    mut send: quinn::SendStream,
    mut recv: quinn::RecvStream,
    file: PathBuf,
) -> Result<()> {
    recv.read_to_end(64).await?;
    let mut f = tokio::fs::File::open(&file).await?;
    let size = f.metadata().await?.len();
    send.write_all(&size.to_le_bytes()).await?;
    let mut buf = vec![0u8; CHUNK];
    let mut pos = 0u64;
    while pos < size {
        let want = (size - pos).min(CHUNK as u64) as usize;
        f.read_exact(&mut buf[..want]).await?;
        send.write_all(&buf[..want]).await?;
        pos += want as u64;
    }
    send.finish()?;
    // Keep the stream until the client has everything, so finish is not cut short.
    let _ = send.stopped().await;
    Ok(())
}

criterion_group!(benches, fetch);
criterion_main!(benches);
