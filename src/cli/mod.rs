//! Front ends: argument parsing, starting a peer, the shell, the control socket. Prints and
//! parses; every decision is the node's.

pub mod args;
pub mod commands;
pub mod control;
pub mod progress;
pub mod shell;

use crate::net::ticket::Ticket;
use crate::node::{JoinTarget, Node, NodeConfig};
use anyhow::{Context, Result, anyhow, bail};
use args::{Cli, PeerOpts, TopCmd};
use std::io::IsTerminal;
use std::path::PathBuf;

pub async fn run(cli: Cli) -> Result<i32> {
    match cli.cmd {
        TopCmd::Up {
            name,
            port,
            join,
            opts,
        } => {
            let node = start_peer(&name, port, join.as_deref(), &opts, cli.data_dir).await?;
            control::serve(node.clone())?;
            wait_for_signal_or_stop(&node).await;
            Ok(0)
        }
        TopCmd::Demo { output } => crate::demo::run(output.as_deref()).await,
        TopCmd::Peer(cmd) => {
            let dir = resolve_client_data_dir(cli.data_dir)?;
            control::run_client(&dir, cmd).await
        }
        TopCmd::Start {
            name,
            port,
            peer,
            opts,
        } => {
            let node = start_peer(&name, port, peer.as_deref(), &opts, cli.data_dir).await?;
            control::serve(node.clone())?;
            let n = node.clone();
            tokio::spawn(async move {
                wait_for_signal_or_stop(&n).await;
            });
            shell::run(node.clone()).await;
            Ok(0)
        }
    }
}

async fn wait_for_signal_or_stop(node: &Node) {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => {
            node.stopped().await;
            return;
        }
    };
    tokio::select! {
        _ = node.stopped() => {}
        _ = tokio::signal::ctrl_c() => node.leave().await,
        _ = term.recv() => node.leave().await,
    }
}

fn default_base_dir() -> PathBuf {
    if let Some(x) = std::env::var_os("XDG_DATA_HOME") {
        return PathBuf::from(x).join("meff");
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."));
    home.join(".local/share/meff")
}

/// A command without --data-dir talks to the only peer under the default base dir.
fn resolve_client_data_dir(given: Option<PathBuf>) -> Result<PathBuf> {
    if let Some(d) = given {
        return Ok(d);
    }
    let base = default_base_dir();
    let running: Vec<PathBuf> = std::fs::read_dir(&base)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| control::socket_path(p).exists())
                .collect()
        })
        .unwrap_or_default();
    match running.as_slice() {
        [one] => Ok(one.clone()),
        [] => bail!(
            "no running peer found under {}; pass --data-dir",
            base.display()
        ),
        _ => bail!(
            "several peers under {}; pass --data-dir to pick one",
            base.display()
        ),
    }
}

pub fn parse_network_key(s: &str) -> Result<[u8; 32]> {
    let bytes = data_encoding::HEXLOWER_PERMISSIVE
        .decode(s.trim().as_bytes())
        .map_err(|_| anyhow!("network key must be 64 hex characters"))?;
    bytes
        .try_into()
        .map_err(|_| anyhow!("network key must be 64 hex characters (32 bytes)"))
}

async fn parse_join(peer: &str, opts: &PeerOpts) -> Result<JoinTarget> {
    if peer.starts_with("meff1") {
        return Ticket::decode(peer)
            .map(JoinTarget::Ticket)
            .map_err(|e| anyhow!(e));
    }
    let addr = tokio::net::lookup_host(peer)
        .await
        .map_err(|_| anyhow!("'{peer}' is neither an invite ticket (meff1…) nor host:port"))?
        .next()
        .ok_or_else(|| anyhow!("'{peer}' resolves to no address"))?;
    let key = match &opts.network_key {
        Some(k) => parse_network_key(k)?,
        None if std::io::stdin().is_terminal() => {
            eprint!("network key: ");
            let mut line = String::new();
            std::io::stdin().read_line(&mut line)?;
            parse_network_key(&line)?
        }
        None => bail!(
            "joining through host:port needs the network key: pass --network-key or set MEFF_NETWORK_KEY, or use an invite ticket"
        ),
    };
    Ok(JoinTarget::Addr { addr, key })
}

pub async fn start_peer(
    name: &str,
    port: u16,
    join: Option<&str>,
    opts: &PeerOpts,
    data_dir: Option<PathBuf>,
) -> Result<Node> {
    if name.is_empty() || name.len() > 64 || name.chars().any(|c| c.is_control() || c == '/') {
        bail!("peer name must be 1-64 characters, without '/' or control characters");
    }
    let data_dir = data_dir.unwrap_or_else(|| default_base_dir().join(name));
    let mut cfg = NodeConfig::new(name, data_dir);
    cfg.port = port;
    cfg.bind_ip = opts.bind;
    cfg.replicas = opts.replicas.max(1);
    cfg.capacity = args::parse_size(&opts.capacity).map_err(|e| anyhow!(e))?;
    cfg.repair_after = args::parse_duration(&opts.repair_after).map_err(|e| anyhow!(e))?;
    cfg.upload_limit = match &opts.upload_limit {
        Some(s) => Some(args::parse_size(s).map_err(|e| anyhow!(e))?),
        None => None,
    };
    cfg.join = match join {
        Some(p) => Some(parse_join(p, opts).await?),
        None => None,
    };
    let node = Node::start(cfg).await.context("cannot start peer")?;
    println!("listening: {}", node.local_addr());
    if node.created_network() {
        println!("invite: {}", node.ticket().encode());
    }
    eprintln!(
        "peer {} ({}) data dir {}",
        node.name(),
        node.id().short(),
        node.data_dir().display()
    );
    Ok(node)
}
