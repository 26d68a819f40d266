//! The baseline `benches/get_vs_quinn.sh` measures `meff get` against: bare quinn, quinn's
//! default transport config, one connection and one stream, moving BYTES from memory to
//! memory between two processes.
//!
//!   bare_quinn serve BYTES          prints `listening: ADDR`, serves BYTES to each client
//!   bare_quinn fetch ADDR           reads everything, prints `BYTES bytes in SECONDS s`

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
                    let buf = vec![7u8; CHUNK];
                    let mut left = bytes;
                    while left > 0 {
                        let n = left.min(CHUNK as u64) as usize;
                        if send.write_all(&buf[..n]).await.is_err() {
                            return;
                        }
                        left -= n as u64;
                    }
                    let _ = send.finish();
                    let _ = send.stopped().await;
                });
            }
        });
    }
    Ok(())
}

async fn fetch(addr: SocketAddr) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let id = Identity::load_or_create(dir.path())?;
    let mut cfg = tls::client_config(&id, None)?;
    cfg.transport_config(Arc::new(quinn::TransportConfig::default()));
    let mut ep = quinn::Endpoint::client(([127, 0, 0, 1], 0).into())?;
    ep.set_default_client_config(cfg);
    let conn = ep
        .connect(addr, tls::SERVER_NAME)?
        .await
        .context("handshake")?;
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
        _ => bail!("usage: bare_quinn serve BYTES | bare_quinn fetch ADDR"),
    }
}
