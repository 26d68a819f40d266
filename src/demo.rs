//! `meff demo`: the product end to end on loopback with nothing else needed: three peers form
//! a mesh, an embedded track (synthesized by assets/make-fixtures.sh) is pushed to two of
//! them and streamed by the third, on the sound card when there is one, else on the null
//! clock.

use crate::audio::OutputKind;
use crate::node::{JoinTarget, Node, NodeConfig};
use anyhow::{Result, anyhow};
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

const DEMO_TRACK: &[u8] = include_bytes!("../assets/demo.ogg");

pub async fn run(output: Option<&str>) -> Result<i32> {
    // The demo's peers keep their data in memory (/dev/shm, a tmpfs, where there is one):
    // their database writes then never count as disk writes, and what the stream reports as
    // written to disk is what the stream itself wrote.
    let base = tempfile::Builder::new()
        .prefix("meff-demo-")
        .tempdir_in("/dev/shm")
        .or_else(|_| tempfile::tempdir())?;
    let t0 = Instant::now();
    let mut nodes: Vec<Node> = Vec::new();
    for name in ["amy", "bob", "cat"] {
        let mut cfg = NodeConfig::new(name, base.path().join(name));
        cfg.bind_ip = IpAddr::V4(Ipv4Addr::LOCALHOST);
        cfg.replicas = 2;
        cfg.join = nodes.first().map(|n| JoinTarget::Ticket(n.ticket()));
        let n = Node::start(cfg).await?;
        println!("started {name} ({}) on {}", n.id().short(), n.local_addr());
        nodes.push(n);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    let meshed = |nodes: &[Node]| {
        nodes.iter().all(|n| {
            n.status()
                .peers
                .iter()
                .filter(|p| p.state == "alive")
                .count()
                == nodes.len() - 1
        })
    };
    while !meshed(&nodes) {
        if Instant::now() > deadline {
            return Err(anyhow!("the demo mesh did not form within 10 s"));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    println!(
        "mesh of {} formed in {} ms",
        nodes.len(),
        t0.elapsed().as_millis()
    );

    // Every peer has caught up with the (empty) catalog before the push, so the track's
    // entry reaches the listener as news, not as part of a late first sync.
    for n in &nodes {
        if !n.wait_synced().await {
            return Err(anyhow!("{} did not sync with the demo mesh", n.name()));
        }
    }

    let file = base.path().join("demo.ogg");
    std::fs::write(&file, DEMO_TRACK)?;
    let holders = nodes[0].push("demo", &file, |_, _| {}).await?;
    let names: Vec<String> = holders.iter().map(|p| nodes[0].peer_name(p)).collect();
    println!(
        "pushed 'demo' ({} KiB, vorbis) to {}",
        DEMO_TRACK.len() / 1024,
        names.join(" and ")
    );
    let listener = nodes
        .iter()
        .find(|n| !holders.contains(&n.id()))
        .unwrap_or(&nodes[0])
        .clone();
    // The listener learns of the track by gossip, a moment after the push returns.
    let seen_by = Instant::now() + Duration::from_secs(10);
    while listener.entry("demo").is_err() {
        if Instant::now() > seen_by {
            return Err(anyhow!(
                "{} did not learn of 'demo' within 10 s of the push",
                listener.name()
            ));
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let wanted: OutputKind = match output {
        Some(o) => o.parse()?,
        None => match crate::audio::check_device() {
            Ok(()) => OutputKind::Device,
            Err(e) => {
                tracing::debug!("no sound card: {e:#}");
                println!("no usable sound card here; playing on the null clock instead");
                OutputKind::Null
            }
        },
    };
    println!(
        "{} streams 'demo' (it holds no copy) to {wanted}",
        listener.name()
    );
    let l = listener.clone();
    let on_source = move |p| println!("source: {}", l.peer_name(&p));
    let stats = listener
        .stream("demo", wanted, Instant::now(), on_source)
        .await?;
    println!(
        "played {:.1} s: first audio after {:.1} ms, {} underruns, {} bytes from {} source(s), {} failover(s), {} bytes written to disk by the stream",
        stats.frames as f64 / stats.sample_rate.max(1) as f64,
        stats.ttfa_ms,
        stats.underruns,
        stats.bytes,
        stats.sources.len(),
        stats.failovers,
        stats.disk_bytes_written
    );
    for n in &nodes {
        n.leave().await;
    }
    Ok(0)
}
