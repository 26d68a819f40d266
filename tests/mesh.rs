//! The mesh over real QUIC on loopback: convergence, failure detection, leaving, refusal of
//! wrong keys and of peers that speak garbage.

mod common;

use common::*;
use meff::node::{JoinTarget, Node};
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_peers_converge_to_a_full_mesh() {
    let dir = tempfile::tempdir().unwrap();
    let t0 = Instant::now();
    let a = start("a", dir.path(), None).await;
    let mut nodes = vec![a.clone()];
    for name in ["b", "c", "d", "e"] {
        nodes.push(start(name, dir.path(), Some(&a)).await);
    }
    let took = wait_for(Duration::from_secs(10), || full_mesh(&nodes)).await;
    assert!(took.is_some(), "no full mesh within 10 s");
    eprintln!(
        "mesh of 5 converged in {} ms (from first start)",
        t0.elapsed().as_millis()
    );
    // Each pair shares exactly one connection: every endpoint ends with 4 open QUIC
    // connections (duplicates from simultaneous dials closed), and lists 4 others.
    let one_each = wait_for(Duration::from_secs(15), || {
        nodes.iter().all(|n| n.open_connections() == 4)
    })
    .await;
    let counts: Vec<usize> = nodes.iter().map(|n| n.open_connections()).collect();
    assert!(one_each.is_some(), "open connections per peer: {counts:?}");
    for n in &nodes {
        assert_eq!(n.status().peers.len(), 4);
    }
    for n in &nodes {
        n.leave().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_joins_through_different_members_converge() {
    let dir = tempfile::tempdir().unwrap();
    let a = start("a", dir.path(), None).await;
    let b = start("b", dir.path(), Some(&a)).await;
    let c = start("c", dir.path(), Some(&b)).await;
    assert!(
        wait_for(Duration::from_secs(10), || full_mesh(&[
            a.clone(),
            b.clone(),
            c.clone()
        ]))
        .await
        .is_some()
    );
    // Three newcomers join at once, each through a different member.
    let t0 = Instant::now();
    let (d, e, f) = tokio::join!(
        start("d", dir.path(), Some(&a)),
        start("e", dir.path(), Some(&b)),
        start("f", dir.path(), Some(&c)),
    );
    let nodes = vec![a, b, c, d, e, f];
    let took = wait_for(Duration::from_secs(10), || full_mesh(&nodes)).await;
    assert!(took.is_some(), "concurrent joins did not converge");
    eprintln!(
        "concurrent joins converged in {} ms",
        t0.elapsed().as_millis()
    );
    for n in &nodes {
        n.leave().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leaving_peer_is_seen_leaving_within_a_second() {
    let dir = tempfile::tempdir().unwrap();
    let a = start("a", dir.path(), None).await;
    let b = start("b", dir.path(), Some(&a)).await;
    let c = start("c", dir.path(), Some(&a)).await;
    assert!(
        wait_for(Duration::from_secs(10), || full_mesh(&[
            a.clone(),
            b.clone(),
            c.clone()
        ]))
        .await
        .is_some()
    );
    let t0 = Instant::now();
    c.leave().await;
    let took = wait_for(Duration::from_secs(5), || {
        state_of(&a, &c).as_deref() == Some("left") && state_of(&b, &c).as_deref() == Some("left")
    })
    .await;
    assert!(took.is_some(), "leave not seen within 5 s");
    eprintln!("leave seen by all in {} ms", t0.elapsed().as_millis());
    // The others stay connected to each other.
    assert_eq!(state_of(&a, &b).as_deref(), Some("alive"));
    a.leave().await;
    b.leave().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_network_key_is_refused_and_never_listed() {
    let dir = tempfile::tempdir().unwrap();
    let a = start("a", dir.path(), None).await;
    let b = start("b", dir.path(), Some(&a)).await;
    let mut cfg = config("intruder", dir.path());
    cfg.join = Some(JoinTarget::Addr {
        addr: a.local_addr(),
        key: [0x42; 32],
    });
    let t0 = Instant::now();
    let err = match Node::start(cfg).await {
        Ok(_) => panic!("intruder was let in"),
        Err(e) => format!("{e:#}"),
    };
    assert!(t0.elapsed() < Duration::from_secs(5));
    assert!(err.contains("wrong network key"), "unclear error: {err}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    for n in [&a, &b] {
        assert!(n.status().peers.iter().all(|p| p.name != "intruder"));
    }
    a.leave().await;
    b.leave().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clashing_name_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let a = start("a", dir.path(), None).await;
    let mut cfg = config("a", &dir.path().join("other"));
    cfg.join = Some(JoinTarget::Ticket(a.ticket()));
    let err = match Node::start(cfg).await {
        Ok(_) => panic!("two peers named a"),
        Err(e) => format!("{e:#}"),
    };
    assert!(err.contains("already taken"), "unclear error: {err}");
    a.leave().await;
}

/// One lifecycle: after `leave` returns, nothing of the node keeps running, so its data dir
/// (lock and database) is free for a new start at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_left_frees_its_data_dir_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let nodes = mesh(&["a", "b", "c"], dir.path(), |_| {}).await;
    let f = fixture("tone.ogg");
    nodes[1].push("t", &f, |_, _| {}).await.unwrap();
    let mut nodes = nodes;
    let b = nodes.remove(1);
    b.leave().await;
    assert_eq!(b.running_tasks(), 0, "tasks outlived leave()");
    drop(b);
    let again = Node::start(config("b", dir.path())).await;
    assert!(
        again.is_ok(),
        "restart on the data dir right after leave: {:#}",
        again.err().unwrap()
    );
    let again = again.unwrap();
    again.leave().await;
    leave_all(&nodes).await;
}
