//! The baselines `benches/get_vs_quinn.sh` and `benches/push_chain.sh` measure meff against:
//! bare quinn, quinn's default transport config, one connection and one stream per transfer,
//! moving bytes from memory to memory between processes.
//!
//!   bare_quinn serve BYTES          prints `listening: ADDR`, serves BYTES to each client
//!   bare_quinn fetch ADDR           reads everything, prints `BYTES bytes in SECONDS s`
//!   bare_quinn sink                 prints `listening: ADDR`; reads each upload, then answers
//!   bare_quinn relay NEXT           prints `listening: ADDR`; passes each upload on to NEXT
//!                                   while it arrives, answers once NEXT answered
//!   bare_quinn push ADDR BYTES      uploads BYTES, waits for the answer (the end of the chain),
//!                                   prints `BYTES bytes in SECONDS s`

use anyhow::{Context, Result, bail};
use meff::net::identity::Identity;
use meff::net::tls;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

const CHUNK: usize = 64 << 10;

fn default_transport(mut cfg: quinn::ServerConfig) -> quinn::ServerConfig {
    cfg.transport_config(Arc::new(quinn::TransportConfig::default()));
    cfg
}

/// Writes `bytes` bytes from memory, a chunk at a time.
async fn send_bytes(send: &mut quinn::SendStream, bytes: u64) -> Result<()> {
    let buf = vec![7u8; CHUNK];
    let mut left = bytes;
    while left > 0 {
        let n = left.min(CHUNK as u64) as usize;
        send.write_all(&buf[..n]).await?;
        left -= n as u64;
    }
    Ok(())
}

async fn serve(bytes: u64) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let id = Identity::load_or_create(dir.path())?;
    let cfg = default_transport(tls::server_config(&id)?);
    let ep = quinn::Endpoint::server(cfg, ([127, 0, 0, 1], 0).into())?;
    println!("listening: {}", ep.local_addr()?);
    while let Some(incoming) = ep.accept().await {
        tokio::spawn(async move {
            let Ok(conn) = incoming.await else { return };
            while let Ok((mut send, _recv)) = conn.accept_bi().await {
                tokio::spawn(async move {
                    if send_bytes(&mut send, bytes).await.is_err() {
                        return;
                    }
                    let _ = send.finish();
                    let _ = send.stopped().await;
                });
            }
        });
    }
    Ok(())
}

async fn connect(addr: SocketAddr) -> Result<(quinn::Endpoint, quinn::Connection)> {
    connect_with(addr, quinn::TransportConfig::default()).await
}

async fn connect_with(
    addr: SocketAddr,
    transport: quinn::TransportConfig,
) -> Result<(quinn::Endpoint, quinn::Connection)> {
    let dir = tempfile::tempdir()?;
    let id = Identity::load_or_create(dir.path())?;
    let mut cfg = tls::client_config(&id, None)?;
    cfg.transport_config(Arc::new(transport));
    let mut ep = quinn::Endpoint::client(([127, 0, 0, 1], 0).into())?;
    ep.set_default_client_config(cfg);
    let conn = ep
        .connect(addr, tls::SERVER_NAME)?
        .await
        .context("handshake")?;
    Ok((ep, conn))
}

/// Listens and hands each upload stream to `handle`, with the connection to `next` if any.
async fn accept_uploads<F, Fut>(next: Option<SocketAddr>, handle: F) -> Result<()>
where
    F: Fn(quinn::SendStream, quinn::RecvStream, Option<quinn::Connection>) -> Fut
        + Send
        + Sync
        + Copy
        + 'static,
    Fut: std::future::Future<Output = Result<()>> + Send,
{
    let dir = tempfile::tempdir()?;
    let id = Identity::load_or_create(dir.path())?;
    let cfg = default_transport(tls::server_config(&id)?);
    let ep = quinn::Endpoint::server(cfg, ([127, 0, 0, 1], 0).into())?;
    // A relay's link to its next hop lives across pushes: kept alive between them.
    let downstream = match next {
        Some(addr) => {
            let mut transport = quinn::TransportConfig::default();
            transport.keep_alive_interval(Some(std::time::Duration::from_secs(5)));
            Some(connect_with(addr, transport).await?)
        }
        None => None,
    };
    let next_conn = downstream.as_ref().map(|(_, c)| c.clone());
    println!("listening: {}", ep.local_addr()?);
    while let Some(incoming) = ep.accept().await {
        let next_conn = next_conn.clone();
        tokio::spawn(async move {
            let Ok(conn) = incoming.await else { return };
            while let Ok((send, recv)) = conn.accept_bi().await {
                let next_conn = next_conn.clone();
                tokio::spawn(async move {
                    if let Err(e) = handle(send, recv, next_conn).await {
                        eprintln!("upload failed: {e:#}");
                    }
                });
            }
        });
    }
    Ok(())
}

async fn sink_upload(
    mut send: quinn::SendStream,
    mut recv: quinn::RecvStream,
    _next: Option<quinn::Connection>,
) -> Result<()> {
    while recv.read_chunk(CHUNK, true).await?.is_some() {}
    send.write_all(b"ok").await?;
    send.finish()?;
    let _ = send.stopped().await;
    Ok(())
}

async fn relay_upload(
    mut send: quinn::SendStream,
    mut recv: quinn::RecvStream,
    next: Option<quinn::Connection>,
) -> Result<()> {
    let next = next.context("no next hop")?;
    let (mut down_send, mut down_recv) = next.open_bi().await?;
    while let Some(chunk) = recv.read_chunk(CHUNK, true).await? {
        down_send.write_chunk(chunk.bytes).await?;
    }
    down_send.finish()?;
    let answer = down_recv.read_to_end(16).await?;
    send.write_all(&answer).await?;
    send.finish()?;
    let _ = send.stopped().await;
    Ok(())
}

async fn push(addr: SocketAddr, bytes: u64) -> Result<()> {
    let (ep, conn) = connect(addr).await?;
    let t0 = Instant::now();
    let (mut send, mut recv) = conn.open_bi().await?;
    send_bytes(&mut send, bytes).await?;
    send.finish()?;
    let answer = recv.read_to_end(16).await?;
    if answer != b"ok" {
        bail!("the chain did not answer ok");
    }
    let secs = t0.elapsed().as_secs_f64();
    println!("{bytes} bytes in {secs:.4} s");
    conn.close(0u32.into(), b"done");
    ep.wait_idle().await;
    Ok(())
}

async fn fetch(addr: SocketAddr) -> Result<()> {
    let (ep, conn) = connect(addr).await?;
    let t0 = Instant::now();
    let (mut send, mut recv) = conn.open_bi().await?;
    send.write_all(b"GET").await?;
    let mut buf = vec![0u8; CHUNK];
    let mut got = 0u64;
    while let Some(n) = recv.read(&mut buf).await? {
        got += n as u64;
    }
    let secs = t0.elapsed().as_secs_f64();
    println!("{got} bytes in {secs:.4} s");
    conn.close(0u32.into(), b"done");
    ep.wait_idle().await;
    Ok(())
}

#[tokio::main]
async fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("serve") => serve(args.get(2).context("BYTES")?.parse()?).await,
        Some("fetch") => fetch(args.get(2).context("ADDR")?.parse()?).await,
        Some("sink") => accept_uploads(None, sink_upload).await,
        Some("relay") => {
            let next = args.get(2).context("NEXT")?.parse()?;
            accept_uploads(Some(next), relay_upload).await
        }
        Some("push") => {
            let addr = args.get(2).context("ADDR")?.parse()?;
            push(addr, args.get(3).context("BYTES")?.parse()?).await
        }
        _ => bail!(
            "usage: bare_quinn serve BYTES | fetch ADDR | sink | relay NEXT | push ADDR BYTES"
        ),
    }
}
