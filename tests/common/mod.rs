//! Shared helpers for the integration tests: start peers on loopback, wait for conditions.
#![allow(dead_code)]

use meff::node::{JoinTarget, Node, NodeConfig};
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::path::PathBuf;
use std::time::{Duration, Instant};

pub fn config(name: &str, base: &Path) -> NodeConfig {
    let mut cfg = NodeConfig::new(name, base.join(name));
    cfg.bind_ip = IpAddr::V4(Ipv4Addr::LOCALHOST);
    cfg
}

pub async fn start(name: &str, base: &Path, join: Option<&Node>) -> Node {
    let mut cfg = config(name, base);
    cfg.join = join.map(|n| JoinTarget::Ticket(n.ticket()));
    Node::start(cfg).await.expect("peer starts")
}

/// Starts peers named `names` on loopback, each joining through the first, with `tweak`
/// applied to every config; returns once they form a full mesh.
pub async fn mesh(names: &[&str], base: &Path, tweak: impl Fn(&mut NodeConfig)) -> Vec<Node> {
    let mut nodes: Vec<Node> = Vec::new();
    for name in names {
        let mut cfg = config(name, base);
        tweak(&mut cfg);
        cfg.join = nodes.first().map(|n| JoinTarget::Ticket(n.ticket()));
        nodes.push(Node::start(cfg).await.expect("peer starts"));
    }
    assert!(
        wait_for(Duration::from_secs(30), || full_mesh(&nodes))
            .await
            .is_some(),
        "no full mesh"
    );
    nodes
}

pub async fn leave_all(nodes: &[Node]) {
    for n in nodes {
        n.leave().await;
    }
}

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// Polls `cond` every 10 ms until it holds; returns how long that took, or None on timeout.
pub async fn wait_for(timeout: Duration, mut cond: impl FnMut() -> bool) -> Option<Duration> {
    let t0 = Instant::now();
    while t0.elapsed() < timeout {
        if cond() {
            return Some(t0.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    None
}

pub async fn wait_for_async<F: Future<Output = bool>>(
    timeout: Duration,
    mut cond: impl FnMut() -> F,
) -> Option<Duration> {
    let t0 = Instant::now();
    while t0.elapsed() < timeout {
        if cond().await {
            return Some(t0.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    None
}

/// How `observer` currently sees `peer`: alive, suspect, dead, left, or None if unknown.
pub fn state_of(observer: &Node, peer: &Node) -> Option<String> {
    let id = peer.id().to_string();
    observer
        .status()
        .peers
        .into_iter()
        .find(|p| p.id == id)
        .map(|p| p.state.to_string())
}

/// Every node sees every other node alive.
pub fn full_mesh(nodes: &[Node]) -> bool {
    nodes.iter().all(|a| {
        nodes
            .iter()
            .filter(|b| b.id() != a.id())
            .all(|b| state_of(a, b).as_deref() == Some("alive"))
    })
}
pub mod http;
pub mod process;
pub mod pty;
