//! `meff demo`: a self-contained run of the product on loopback.

use crate::node::{JoinTarget, Node, NodeConfig};
use anyhow::Result;
use std::time::{Duration, Instant};

pub async fn run(_output: Option<&str>) -> Result<i32> {
    let base = tempfile::tempdir()?;
    let t0 = Instant::now();
    let first = Node::start(NodeConfig::new("amy", base.path().join("amy"))).await?;
    println!(
        "started amy ({}) on {}",
        first.id().short(),
        first.local_addr()
    );
    let mut nodes = vec![first.clone()];
    for name in ["bob", "cat"] {
        let mut cfg = NodeConfig::new(name, base.path().join(name));
        cfg.join = Some(JoinTarget::Ticket(first.ticket()));
        let n = Node::start(cfg).await?;
        println!("started {name} ({}) on {}", n.id().short(), n.local_addr());
        nodes.push(n);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if nodes.iter().all(|n| {
            n.status()
                .peers
                .iter()
                .filter(|p| p.state == "alive")
                .count()
                == nodes.len() - 1
        }) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    println!(
        "mesh of {} formed in {} ms",
        nodes.len(),
        t0.elapsed().as_millis()
    );
    for n in &nodes {
        let s = n.status();
        let peers: Vec<String> = s
            .peers
            .iter()
            .map(|p| format!("{} {} {:.2} ms", p.name, p.state, p.rtt_ms.unwrap_or(0.0)))
            .collect();
        println!("{}: {}", s.name, peers.join(", "));
    }
    for n in &nodes {
        n.leave().await;
    }
    Ok(0)
}
