//! A raw QUIC client that completes TLS and then misbehaves is cut off, while the mesh keeps
//! serving everyone else.

mod common;

use common::*;
use meff::mesh::membership::MemberRecord;
use meff::net::auth::{self, Role};
use meff::net::frame;
use meff::net::identity::Identity;
use meff::net::msg::{Heartbeat, Hello, Msg};
use meff::net::tls;
use meff::node::{Node, close_code};
use meff::store::catalog::CatalogEntry;
use std::time::Duration;

async fn raw_connect(
    target: &Node,
    dir: &std::path::Path,
) -> (quinn::Endpoint, quinn::Connection, Identity) {
    std::fs::create_dir_all(dir).unwrap();
    let id = Identity::load_or_create(dir).unwrap();
    let mut ep = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
    ep.set_default_client_config(tls::client_config(&id, Some(target.id())).unwrap());
    let conn = ep
        .connect(target.local_addr(), tls::SERVER_NAME)
        .unwrap()
        .await
        .expect("TLS handshake with a real identity succeeds");
    (ep, conn, id)
}

/// Sends `bytes` on a fresh stream and returns the close code the peer answered with.
async fn send_and_expect_close(conn: &quinn::Connection, bytes: &[u8]) -> u64 {
    let (mut send, _recv) = conn.open_bi().await.unwrap();
    let _ = send.write_all(bytes).await;
    let _ = send.finish();
    match tokio::time::timeout(Duration::from_secs(7), conn.closed()).await {
        Ok(quinn::ConnectionError::ApplicationClosed(c)) => c.error_code.into_inner(),
        Ok(other) => panic!("closed for another reason: {other}"),
        Err(_) => panic!("misbehaving client was not cut off"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_oversized_wrong_kind_and_wrong_version_are_cut_off() {
    let dir = tempfile::tempdir().unwrap();
    let nodes = mesh(&["a", "b"], dir.path(), |_| {}).await;
    let (a, b) = (nodes[0].clone(), nodes[1].clone());

    // Garbage bytes.
    let (_ep, conn, _) = raw_connect(&a, &dir.path().join("raw1")).await;
    let code = send_and_expect_close(&conn, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert_eq!(code, close_code::PROTOCOL as u64);

    // An oversized frame: a hello header announcing 4 GiB.
    let (_ep, conn, _) = raw_connect(&a, &dir.path().join("raw2")).await;
    let code = send_and_expect_close(&conn, &[0, 0xff, 0xff, 0xff, 0xff]).await;
    assert_eq!(code, close_code::PROTOCOL as u64);

    // A frame of the wrong kind first.
    let (_ep, conn, _) = raw_connect(&a, &dir.path().join("raw3")).await;
    let hb = frame::encode(&Msg::Heartbeat(Heartbeat {
        seq: 1,
        rtt_us: 1,
        load: 0,
    }));
    let code = send_and_expect_close(&conn, &hb).await;
    assert_eq!(code, close_code::PROTOCOL as u64);

    // A hello without the key.
    let (_ep, conn, id) = raw_connect(&a, &dir.path().join("raw4")).await;
    let hello = |version: u16, proof: [u8; 32]| {
        frame::encode(&Msg::Hello(Hello {
            version,
            record: MemberRecord {
                id: id.id,
                name: "raw".into(),
                addrs: vec![],
                incarnation: 1,
                left: false,
                capacity: 1,
                disk_full: false,
            },
            proof,
            observed: a.local_addr(),
            boot: 1,
        }))
    };
    let code = send_and_expect_close(&conn, &hello(1, [0; 32])).await;
    assert_eq!(code, close_code::AUTH as u64);

    // A hello with the key but a protocol version from the future.
    let (_ep, conn, id2) = raw_connect(&a, &dir.path().join("raw5")).await;
    let key = meff::cli::parse_network_key(&a.network_key_hex()).unwrap();
    let proof = auth::proof(&conn, &key, Role::Dialer).unwrap();
    let mut bytes = hello(99, proof);
    // Re-encode with the right identity for this connection.
    if let Msg::Hello(mut h) = frame::decode_body(0, &bytes[frame::HEADER_LEN..]).unwrap() {
        h.record.id = id2.id;
        bytes = frame::encode(&Msg::Hello(h));
    }
    let code = send_and_expect_close(&conn, &bytes).await;
    assert_eq!(code, close_code::VERSION as u64);

    // Silence: a client that never says hello is dropped after the handshake timeout.
    let (_ep, conn, _) = raw_connect(&a, &dir.path().join("raw6")).await;
    let (_send, _recv) = conn.open_bi().await.unwrap();
    let closed = tokio::time::timeout(Duration::from_secs(8), conn.closed()).await;
    assert!(closed.is_ok(), "silent client kept its connection");

    // The mesh is untouched and nobody lists the raw clients.
    assert_eq!(state_of(&a, &b).as_deref(), Some("alive"));
    assert_eq!(state_of(&b, &a).as_deref(), Some("alive"));
    assert_eq!(a.status().peers.len(), 1);
    a.leave().await;
    b.leave().await;
}

/// A raw client that completes the whole handshake with the network key: a member that
/// then misbehaves within the rules of framing.
async fn join_raw(
    target: &Node,
    dir: &std::path::Path,
) -> (
    quinn::Endpoint,
    quinn::Connection,
    quinn::SendStream,
    quinn::RecvStream,
    meff::id::PeerId,
) {
    let (ep, conn, id) = raw_connect(target, dir).await;
    let key = meff::cli::parse_network_key(&target.network_key_hex()).unwrap();
    let proof = auth::proof(&conn, &key, Role::Dialer).unwrap();
    let (mut send, mut recv) = conn.open_bi().await.unwrap();
    let hello = Msg::Hello(Hello {
        version: meff::net::msg::PROTOCOL_VERSION,
        record: MemberRecord {
            id: id.id,
            // One name per raw member: names are unique in a network.
            name: format!(
                "raw-{}",
                dir.file_name().and_then(|n| n.to_str()).unwrap_or("member")
            ),
            addrs: vec![],
            incarnation: 1,
            left: false,
            capacity: 1,
            disk_full: false,
        },
        proof,
        observed: target.local_addr(),
        boot: 1,
    });
    send.write_all(&frame::encode(&hello)).await.unwrap();
    match frame::read_frame(&mut recv)
        .await
        .unwrap_or_else(|e| panic!("{e:?}: {:?}", conn.close_reason()))
    {
        Msg::HelloAck(_) => {}
        other => panic!("no hello-ack: {}", other.name()),
    }
    // It beats like a member, so it stays linked for as long as the test needs it.
    let (mut beats, _) = conn.open_bi().await.unwrap();
    tokio::spawn(async move {
        for seq in 0.. {
            let hb = Msg::Heartbeat(meff::net::msg::Heartbeat {
                seq,
                rtt_us: 100,
                load: 0,
            });
            if beats.write_all(&frame::encode(&hb)).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    });
    (ep, conn, send, recv, id.id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_introductions_and_relay_abuse_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let nodes = mesh(&["a", "b"], dir.path(), |_| {}).await;
    let (a, b) = (nodes[0].clone(), nodes[1].clone());
    let (_ep, conn, mut control, mut control_in, _me) = join_raw(&a, &dir.path().join("raw")).await;

    // An introduction to a peer nobody knows, at an address we listen on: refused, so nothing
    // is ever dialed there.
    let trap = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let stranger = meff::id::PeerId([7; 32]);
    let forged = Msg::PunchNow {
        peer: stranger,
        addr: trap.local_addr().unwrap(),
    };
    control.write_all(&frame::encode(&forged)).await.unwrap();
    // Asking to be introduced to a stranger: no PunchNow comes back.
    control
        .write_all(&frame::encode(&Msg::Introduce { peer: stranger }))
        .await
        .unwrap();
    let mut buf = [0u8; 2048];
    let dialed = tokio::time::timeout(Duration::from_secs(2), trap.recv_from(&mut buf)).await;
    assert!(dialed.is_err(), "a forged introduction made the peer dial");
    let punch_back = tokio::time::timeout(Duration::from_secs(1), async {
        loop {
            match frame::read_frame(&mut control_in).await {
                Ok(Msg::PunchNow { .. }) => return true,
                Ok(_) => continue,
                Err(_) => return false,
            }
        }
    })
    .await;
    assert!(
        !matches!(punch_back, Ok(true)),
        "an introduction to a stranger was answered"
    );

    // A relay to a non-member is refused.
    let refused = |msg: Msg| {
        let conn = conn.clone();
        async move {
            let (mut s, mut r) = conn.open_bi().await.unwrap();
            s.write_all(&frame::encode(&msg)).await.unwrap();
            matches!(
                tokio::time::timeout(Duration::from_secs(5), frame::read_frame(&mut r)).await,
                Ok(Ok(Msg::Failed { .. }))
            )
        }
    };
    assert!(refused(Msg::RelayOpen { target: stranger }).await);
    // Within limits a member may relay to another member; beyond them it is refused.
    let mut tunnels = Vec::new();
    for _ in 0..8 {
        let (mut s, mut r) = conn.open_bi().await.unwrap();
        s.write_all(&frame::encode(&Msg::RelayOpen { target: b.id() }))
            .await
            .unwrap();
        let answer = tokio::time::timeout(Duration::from_secs(5), frame::read_frame(&mut r)).await;
        assert!(
            matches!(answer, Ok(Ok(Msg::RelayReady))),
            "a tunnel within limits was refused"
        );
        tunnels.push((s, r));
    }
    assert!(
        refused(Msg::RelayOpen { target: b.id() }).await,
        "the ninth tunnel was accepted"
    );

    // Nothing else is disturbed: the raw member is still connected, a and b still meshed.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        conn.close_reason().is_none(),
        "refusals must not cost the connection"
    );
    assert_eq!(state_of(&a, &b).as_deref(), Some("alive"));
    assert_eq!(state_of(&b, &a).as_deref(), Some("alive"));
    assert!(
        a.status()
            .peers
            .iter()
            .all(|p| p.id != stranger.to_string())
    );
    drop(tunnels);
    a.leave().await;
    b.leave().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peers_of_another_protocol_version_are_told_which_side_must_upgrade() {
    let dir = tempfile::tempdir().unwrap();
    let a = start("a", dir.path(), None).await;
    let v1 = vec![tls::alpn(1)];

    // An older peer dials us: refused with a reason it prints after "refused us:".
    std::fs::create_dir_all(dir.path().join("old-dialer")).unwrap();
    let id = Identity::load_or_create(&dir.path().join("old-dialer")).unwrap();
    let mut ep = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
    ep.set_default_client_config(tls::client_config_speaking(&id, Some(a.id()), &v1).unwrap());
    let conn = ep
        .connect(a.local_addr(), tls::SERVER_NAME)
        .unwrap()
        .await
        .expect("TLS completes between versions");
    match tokio::time::timeout(Duration::from_secs(5), conn.closed()).await {
        Ok(quinn::ConnectionError::ApplicationClosed(c)) => {
            assert_eq!(c.error_code.into_inner(), close_code::VERSION as u64);
            let reason = String::from_utf8_lossy(&c.reason).into_owned();
            assert!(
                reason.contains("you speak 1: you must upgrade MEFF"),
                "{reason}"
            );
        }
        other => panic!("an old dialer was not refused: {other:?}"),
    }

    // We dial an older peer: one line naming both versions and who must upgrade.
    std::fs::create_dir_all(dir.path().join("old-acceptor")).unwrap();
    let old = Identity::load_or_create(&dir.path().join("old-acceptor")).unwrap();
    let server = quinn::Endpoint::server(
        tls::server_config_speaking(&old, &v1).unwrap(),
        "127.0.0.1:0".parse().unwrap(),
    )
    .unwrap();
    let old_addr = server.local_addr().unwrap();
    let accept = tokio::spawn(async move {
        let conn = server.accept().await.unwrap().await.unwrap();
        let _ = conn.closed().await;
        server
    });
    let mut cfg = config("b", dir.path());
    cfg.join = Some(meff::node::JoinTarget::Addr {
        addr: old_addr,
        key: [0u8; 32],
    });
    let err = format!(
        "{:#}",
        Node::start(cfg).await.err().expect("joined an old peer")
    );
    let line = format!(
        "peer at {old_addr} speaks protocol 1, this peer speaks {}: peer at {old_addr} must upgrade MEFF",
        meff::net::msg::PROTOCOL_VERSION
    );
    assert!(err.contains(&line), "{err}");
    let _ = accept.await;
    a.leave().await;
}

/// A holder does not hash what it sends; a reader that finds a piece rotten says so when it
/// stops the stream. A member that says so of a good copy makes the holder check it, and
/// nothing more: the copy stays, the member stays connected, others still get the track.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_crying_corrupt_over_a_good_copy_costs_the_holder_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (nodes, track, entry, holder, other) = one_copy_of_a_big_track(dir.path()).await;
    let held = holder.stored_bytes();
    let (_ep, conn, _control, _control_in, _me) = join_raw(&holder, &dir.path().join("raw")).await;

    for _ in 0..3 {
        let (mut s, mut r) = conn.open_bi().await.unwrap();
        let fetch = Msg::Fetch {
            hash: entry.hash,
            offset: 0,
        };
        s.write_all(&frame::encode(&fetch)).await.unwrap();
        let _ = s.finish();
        match tokio::time::timeout(Duration::from_secs(5), frame::read_frame(&mut r)).await {
            Ok(Ok(Msg::FetchOk { size })) => assert_eq!(size, entry.size),
            other => panic!("no FetchOk: {other:?}"),
        }
        let mut some = [0u8; 4096];
        r.read_exact(&mut some).await.unwrap();
        // The code a reader stops with when a piece failed its check.
        r.stop(1u32.into()).unwrap();
    }
    // The check reads the whole copy in the background.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(holder.stored_bytes(), held, "a good copy was dropped");
    assert_eq!(other.ls()[0].replicas, 1);
    assert!(
        conn.close_reason().is_none(),
        "the claim cost the connection"
    );
    assert!(get_whole(&other, "t").await == std::fs::read(&track).unwrap());
    for n in &nodes {
        n.leave().await;
    }
}

/// Two peers and a track "t" of 6 MiB (more than a stream's window, so a holder is still
/// sending when its reader stops reading) on one of them: (nodes, its file, its entry, the
/// holder, the other).
async fn one_copy_of_a_big_track(
    dir: &std::path::Path,
) -> (Vec<Node>, std::path::PathBuf, CatalogEntry, Node, Node) {
    let nodes = mesh(&["a", "b"], dir, |c| c.replicas = 1).await;
    let track = dir.join("t.wav");
    tone_wav(&track, 48_000, 33, 0.05);
    nodes[0].push("t", &track, |_, _| {}).await.unwrap();
    let entry = nodes[0].entry("t").unwrap();
    let holder = nodes.iter().find(|n| n.stored_bytes() > 0).unwrap().clone();
    let other = nodes
        .iter()
        .find(|n| n.id() != holder.id())
        .unwrap()
        .clone();
    (nodes, track, entry, holder, other)
}

/// The bytes of `name` as `node` gets them.
async fn get_whole(node: &Node, name: &str) -> Vec<u8> {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<u8>>(64);
    let got = tokio::spawn(async move {
        let mut all = Vec::new();
        while let Some(chunk) = rx.recv().await {
            all.extend_from_slice(&chunk);
        }
        all
    });
    node.get_into(name, tx).await.unwrap();
    got.await.unwrap()
}

/// Reads control frames until one `pick` accepts, for up to 10 s.
async fn wait_for_frame<T>(
    recv: &mut quinn::RecvStream,
    mut pick: impl FnMut(Msg) -> Option<T>,
) -> Option<T> {
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match frame::read_frame(recv).await {
                Ok(m) => {
                    if let Some(t) = pick(m) {
                        return Some(t);
                    }
                }
                Err(_) => return None,
            }
        }
    })
    .await
    .ok()
    .flatten()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn holdings_at_the_end_of_the_sequence_or_past_any_bound_cost_the_member_its_link() {
    let dir = tempfile::tempdir().unwrap();
    let nodes = mesh(&["a", "b"], dir.path(), |_| {}).await;
    let (a, b) = (nodes[0].clone(), nodes[1].clone());

    // A whole set at the last sequence number, then a change after it: the number cannot
    // grow, and the control stream goes on being served (it answers an ask).
    let (_ep1, _conn1, mut control, mut control_in, _) =
        join_raw(&a, &dir.path().join("raw1")).await;
    let whole_set = |m: Msg| matches!(m, Msg::Holdings { more: false, .. }).then_some(());
    // A new link starts with the peer's whole set; the answer to the ask is a second one.
    assert!(wait_for_frame(&mut control_in, whole_set).await.is_some());
    for msg in [
        Msg::Holdings {
            seq: u64::MAX,
            held: vec![],
            more: false,
        },
        Msg::HoldingsDelta {
            seq: 3,
            added: vec![[9; 32]],
            removed: vec![],
        },
        Msg::HoldingsAsk,
    ] {
        control.write_all(&frame::encode(&msg)).await.unwrap();
    }
    let answered = wait_for_frame(&mut control_in, whole_set).await;
    assert!(
        answered.is_some(),
        "the control stream died on the sequence number"
    );

    // Changes claiming more blobs than any member can hold of this catalog: the link goes,
    // the claims with it.
    let (_ep2, conn2, mut control2, _control2_in, _) = join_raw(&a, &dir.path().join("raw2")).await;
    let whole = Msg::Holdings {
        seq: 1,
        held: vec![],
        more: false,
    };
    control2.write_all(&frame::encode(&whole)).await.unwrap();
    let mut n = 0u32;
    let mut seq = 2;
    let closed = loop {
        let added: Vec<[u8; 32]> = (0..1800)
            .map(|_| {
                n += 1;
                *blake3::hash(&n.to_le_bytes()).as_bytes()
            })
            .collect();
        let delta = Msg::HoldingsDelta {
            seq,
            added,
            removed: vec![],
        };
        seq += 1;
        if control2.write_all(&frame::encode(&delta)).await.is_err() || seq > 60 {
            break tokio::time::timeout(Duration::from_secs(10), conn2.closed()).await;
        }
    };
    match closed {
        Ok(quinn::ConnectionError::ApplicationClosed(c)) => {
            assert_eq!(c.error_code.into_inner(), u64::from(close_code::PROTOCOL));
        }
        other => panic!("a member claiming {n} blobs kept its link: {other:?}"),
    }
    // The mesh is untouched.
    assert_eq!(state_of(&a, &b).as_deref(), Some("alive"));
    a.leave().await;
    b.leave().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_playlist_digests_gets_one_answer_a_second() {
    let dir = tempfile::tempdir().unwrap();
    let nodes = mesh(&["a", "b"], dir.path(), |_| {}).await;
    let (a, b) = (nodes[0].clone(), nodes[1].clone());
    let (_ep, _conn, mut control, mut control_in, _) = join_raw(&a, &dir.path().join("raw")).await;
    let answers = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = answers.clone();
    tokio::spawn(async move {
        while let Ok(m) = frame::read_frame(&mut control_in).await {
            if matches!(m, Msg::Playlists(_)) {
                counted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        }
    });
    let started = std::time::Instant::now();
    for i in 0..200u32 {
        let digest = *blake3::hash(&i.to_le_bytes()).as_bytes();
        control
            .write_all(&frame::encode(&Msg::PlaylistDigest(digest)))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let seconds = started.elapsed().as_secs_f64();
    let got = answers.load(std::sync::atomic::Ordering::Relaxed);
    assert!(got >= 1, "a digest that differs is answered");
    assert!(
        got as f64 <= seconds + 1.0,
        "{got} answers in {seconds:.1} s to 200 digests"
    );
    assert_eq!(state_of(&a, &b).as_deref(), Some("alive"));
    a.leave().await;
    b.leave().await;
}

/// A stereo 16-bit WAV of `secs` seconds at `rate` at `path`, a sine of `pitch` per sample.
fn tone_wav(path: &std::path::Path, rate: u32, secs: u32, pitch: f32) {
    let spec = hound::WavSpec {
        channels: 2,
        sample_rate: rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).unwrap();
    for i in 0..rate * secs {
        let s = ((i as f32 * pitch).sin() * 8000.0) as i16;
        w.write_sample(s).unwrap();
        w.write_sample(s).unwrap();
    }
    w.finalize().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_holding_stores_open_takes_only_its_share_of_store_slots() {
    let dir = tempfile::tempdir().unwrap();
    let nodes = mesh(&["a", "b"], dir.path(), |c| c.replicas = 2).await;
    let (a, b) = (nodes[0].clone(), nodes[1].clone());
    let first = dir.path().join("first.wav");
    tone_wav(&first, 8_000, 1, 0.05);
    a.push("first", &first, |_, _| {}).await.unwrap();
    let template = a.entry("first").unwrap();
    let (_ep, conn, _control, _control_in, _) = join_raw(&a, &dir.path().join("raw")).await;

    // Stores that send a few bytes of 10 MiB and then nothing: each would hold a writer.
    let mut answers = Vec::new();
    for i in 0..72u32 {
        let mut entry = template.clone();
        entry.hash = *blake3::hash(&i.to_le_bytes()).as_bytes();
        entry.size = 10 << 20;
        let (mut s, r) = conn.open_bi().await.unwrap();
        let store = Msg::Store {
            entry: Box::new(entry),
            chain: vec![],
        };
        s.write_all(&frame::encode(&store)).await.unwrap();
        s.write_all(&[0u8; 1000]).await.unwrap();
        answers.push((s, r));
    }
    // Every answer that comes within 5 s (the held stores give up after 10 s of silence).
    let mut waiting = tokio::task::JoinSet::new();
    let mut held = Vec::new();
    for (s, mut r) in answers {
        held.push(s);
        waiting.spawn(async move {
            match tokio::time::timeout(Duration::from_secs(5), frame::read_frame(&mut r)).await {
                Ok(Ok(Msg::Failed { reason })) => Some(reason),
                _ => None,
            }
        });
    }
    let mut refused = 0;
    while let Some(answer) = waiting.join_next().await {
        if let Some(reason) = answer.unwrap() {
            assert!(reason.contains("too many uploads"), "{reason}");
            refused += 1;
        }
    }
    assert_eq!(refused, 72 - 64, "one peer holds at most 64 stores");

    // Another peer's push still lands on a while those hang.
    let second = dir.path().join("second.wav");
    tone_wav(&second, 8_000, 1, 0.07);
    let before = a.stored_bytes();
    b.push("second", &second, |_, _| {}).await.unwrap();
    assert!(a.stored_bytes() > before, "a stored nothing of b's push");
    // Gone before a leaves, or a would hand its copies to a member that never answers.
    conn.close(0u32.into(), b"done");
    for n in &nodes {
        n.leave().await;
    }
}

/// A member that asks a holder for a track 30 times at once and reads nothing holds 6 of its
/// 8 upload slots and waits behind everyone else for more: another peer's get is served at
/// once, not after the held uploads time out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_asking_for_every_upload_slot_gets_only_its_share() {
    let dir = tempfile::tempdir().unwrap();
    let (nodes, track, entry, holder, other) = one_copy_of_a_big_track(dir.path()).await;
    let (_ep, conn, _control, _control_in, _me) = join_raw(&holder, &dir.path().join("raw")).await;

    let mut asks = Vec::new();
    for _ in 0..30 {
        let (mut s, r) = conn.open_bi().await.unwrap();
        let fetch = Msg::Fetch {
            hash: entry.hash,
            offset: 0,
        };
        s.write_all(&frame::encode(&fetch)).await.unwrap();
        let _ = s.finish();
        asks.push((s, r));
    }
    // Every answer within 2 s (held uploads give up after 10 s without progress). The streams
    // come back unread: dropping one would free its slot.
    let mut answers = tokio::task::JoinSet::new();
    let mut held = Vec::new();
    for (s, mut r) in asks {
        held.push(s);
        answers.spawn(async move {
            let answer =
                tokio::time::timeout(Duration::from_secs(2), frame::read_frame(&mut r)).await;
            (matches!(answer, Ok(Ok(Msg::FetchOk { .. }))), r)
        });
    }
    let mut served = 0;
    let mut unread = Vec::new();
    while let Some(answer) = answers.join_next().await {
        let (ok, r) = answer.unwrap();
        served += usize::from(ok);
        unread.push(r);
    }
    assert_eq!(served, 6, "uploads the member holds");

    let started = std::time::Instant::now();
    assert!(get_whole(&other, "t").await == std::fs::read(&track).unwrap());
    // The held uploads give up after 10 s without progress; the get did not wait for that.
    let took = started.elapsed();
    eprintln!("the get took {took:?}");
    assert!(took < Duration::from_secs(5), "the get took {took:?}");
    conn.close(0u32.into(), b"done");
    for n in &nodes {
        n.leave().await;
    }
}

/// A member that takes stores and never reads them costs a leaving peer one timeout, not one
/// per track: the hand-off gives it nothing more once it failed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leaving_past_a_member_that_never_answers_costs_one_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let nodes = mesh(&["a", "b"], dir.path(), |c| c.replicas = 2).await;
    let (a, b) = (nodes[0].clone(), nodes[1].clone());
    // 6 MiB each: more than a stream's window, so a store nobody reads stalls.
    for i in 0..5 {
        let track = dir.path().join(format!("t{i}.wav"));
        tone_wav(&track, 48_000, 33, 0.05 + 0.01 * i as f32);
        a.push(&format!("t{i}"), &track, |_, _| {}).await.unwrap();
    }
    assert_eq!(b.stored_bytes(), a.stored_bytes(), "both hold all five");
    // Linked to b, so b counts it alive and a place for what it hands off; it accepts
    // streams (quinn does) and reads none.
    let (_ep, conn, _control, _control_in, raw) = join_raw(&b, &dir.path().join("raw")).await;
    let raw = raw.to_string();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !b
        .status()
        .peers
        .iter()
        .any(|p| p.id == raw && p.state == "alive")
    {
        assert!(std::time::Instant::now() < deadline, "b never saw it alive");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let started = std::time::Instant::now();
    b.leave().await;
    let took = started.elapsed();
    eprintln!("leaving took {took:?}");
    // One stalled store gives up after 10 s without progress (so it was tried); five would
    // take 50.
    assert!(
        took > Duration::from_secs(5) && took < Duration::from_secs(30),
        "leaving took {took:?}"
    );
    conn.close(0u32.into(), b"done");
    a.leave().await;
}
