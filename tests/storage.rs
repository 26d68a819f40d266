//! Replicated storage over real QUIC on loopback: push/get of every format, placement, bad
//! input, remove, repair, rebalance, corruption and concurrent writers.

mod common;

use common::*;
use meff::mesh::placement::{self, Candidate};
use meff::node::Node;
use std::path::Path;
use std::time::{Duration, Instant};

async fn mesh(names: &[&str], base: &Path, replicas: usize, repair_after: Duration) -> Vec<Node> {
    common::mesh(names, base, |cfg| {
        cfg.replicas = replicas;
        cfg.repair_after = repair_after;
    })
    .await
}

/// Placement candidates as every peer sees them: all peers, the default capacity.
fn equal_candidates(nodes: &[Node]) -> Vec<Candidate> {
    nodes
        .iter()
        .map(|n| Candidate {
            id: n.id(),
            capacity: 10 << 30,
        })
        .collect()
}

fn replicas_everywhere(nodes: &[Node], name: &str) -> Vec<usize> {
    nodes
        .iter()
        .map(|n| {
            n.ls()
                .iter()
                .find(|t| t.name == name)
                .map(|t| t.replicas)
                .unwrap_or(0)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_format_round_trips_byte_identical_on_r_peers() {
    let dir = tempfile::tempdir().unwrap();
    let nodes = mesh(
        &["a", "b", "c", "d"],
        dir.path(),
        3,
        Duration::from_secs(600),
    )
    .await;
    let out = tempfile::tempdir().unwrap();
    for file in ["tone.mp3", "tone.flac", "tone.ogg", "tone.wav", "tone.m4a"] {
        let name = format!("song-{file}");
        let holders = nodes[0]
            .push(&name, &fixture(file), |_, _| {})
            .await
            .unwrap();
        assert_eq!(holders.len(), 3, "{file}");
        // Placement: exactly the rendezvous choice over the four peers.
        let original = std::fs::read(fixture(file)).unwrap();
        let hash = *blake3::hash(&original).as_bytes();
        let cands = equal_candidates(&nodes);
        let mut want = placement::holders(&hash, &cands, 3);
        let mut got = holders.clone();
        want.sort();
        got.sort();
        assert_eq!(got, want, "{file} placed off the rendezvous choice");
        // Every peer lists it with 3 live replicas, with no round trip.
        assert!(
            wait_for(Duration::from_secs(15), || replicas_everywhere(
                &nodes, &name
            ) == vec![3; 4])
            .await
            .is_some()
        );
        for (i, n) in nodes.iter().enumerate() {
            let p = n
                .get(
                    &name,
                    Some(&out.path().join(format!("{i}-{file}"))),
                    out.path(),
                )
                .await
                .unwrap();
            assert_eq!(
                std::fs::read(p).unwrap(),
                original,
                "{file} differs at peer {i}"
            );
        }
    }
    let listing = nodes[2].ls();
    assert_eq!(listing.len(), 5);
    let mp3 = listing.iter().find(|t| t.name == "song-tone.mp3").unwrap();
    assert_eq!(mp3.codec, "mp3");
    assert!((mp3.duration_s - 2.0).abs() < 0.2);
    // No temp files left next to the downloads.
    assert!(
        std::fs::read_dir(out.path()).unwrap().all(|e| !e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .starts_with('.'))
    );
    leave_all(&nodes).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_and_nothing_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let nodes = mesh(&["a", "b"], dir.path(), 3, Duration::from_secs(600)).await;
    let empty = dir.path().join("empty.mp3");
    std::fs::write(&empty, b"").unwrap();
    let random = dir.path().join("random.mp3");
    std::fs::write(
        &random,
        (0..50_000u32)
            .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
            .collect::<Vec<_>>(),
    )
    .unwrap();
    for (file, why) in [
        (fixture("not-audio.txt"), "text"),
        (empty.clone(), "empty"),
        (random.clone(), "random bytes"),
        (dir.path().join("missing.mp3"), "missing"),
        (dir.path().to_path_buf(), "a directory"),
    ] {
        let r = nodes[0].push("x", &file, |_, _| {}).await;
        assert!(r.is_err(), "{why} was accepted");
    }
    let long = "x".repeat(201);
    for bad in [
        "",
        long.as_str(),
        "\u{202e}gnp.exe",
        "zero\u{200b}width",
        ".",
        "..",
        "a/b",
        "a\\b",
        "a\0b",
        "a\nb",
        "tab\there",
    ] {
        assert!(
            nodes[0]
                .push(bad, &fixture("tone.mp3"), |_, _| {})
                .await
                .is_err(),
            "name {bad:?} accepted"
        );
    }
    assert!(
        nodes[0]
            .push(&"y".repeat(200), &fixture("tone.mp3"), |_, _| {})
            .await
            .is_ok()
    );
    let err = nodes[1].get("nope", None, dir.path()).await.unwrap_err();
    assert!(format!("{err:#}").contains("no track named"));
    // The good track reaches everyone, and nothing else ever does.
    let everywhere = wait_for(Duration::from_secs(15), || {
        nodes.iter().all(|n| n.ls().len() == 1)
    })
    .await;
    assert!(
        everywhere.is_some(),
        "{:?}",
        nodes.iter().map(|n| n.ls().len()).collect::<Vec<_>>()
    );
    // The longest name also downloads to its default path (NAME.mp3 plus a temp name).
    let got = nodes[1]
        .get(&"y".repeat(200), None, dir.path())
        .await
        .unwrap();
    assert!(got.is_file());
    leave_all(&nodes).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remove_deletes_everywhere_within_two_seconds() {
    let dir = tempfile::tempdir().unwrap();
    let nodes = mesh(&["a", "b", "c"], dir.path(), 3, Duration::from_secs(600)).await;
    nodes[0]
        .push("gone", &fixture("tone.ogg"), |_, _| {})
        .await
        .unwrap();
    assert!(
        wait_for(Duration::from_secs(15), || replicas_everywhere(
            &nodes, "gone"
        ) == vec![3; 3])
        .await
        .is_some()
    );
    let t0 = Instant::now();
    nodes[1].remove("gone").await.unwrap();
    let took = wait_for(Duration::from_secs(5), || {
        nodes
            .iter()
            .all(|n| n.ls().is_empty() && n.stored_bytes() == 0)
    })
    .await;
    assert!(took.is_some(), "remove not complete within 5 s");
    eprintln!("remove gone everywhere in {} ms", t0.elapsed().as_millis());
    assert!(nodes[2].remove("gone").await.is_err());
    leave_all(&nodes).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repair_restores_r_copies_after_a_holder_dies() {
    let dir = tempfile::tempdir().unwrap();
    let nodes = mesh(&["a", "b", "c", "d"], dir.path(), 2, Duration::from_secs(1)).await;
    let holders = nodes[0]
        .push("t", &fixture("tone.flac"), |_, _| {})
        .await
        .unwrap();
    assert_eq!(holders.len(), 2);
    let victim = nodes
        .iter()
        .find(|n| holders.contains(&n.id()) && n.id() != nodes[0].id())
        .unwrap()
        .clone();
    let rest: Vec<Node> = nodes
        .iter()
        .filter(|n| n.id() != victim.id())
        .cloned()
        .collect();
    assert!(
        wait_for(Duration::from_secs(15), || replicas_everywhere(&rest, "t")
            == vec![2; 3])
        .await
        .is_some()
    );
    let t0 = Instant::now();
    victim.abort();
    // Dead after ~4 s of silence, plus the 1 s grace, then a copy is pulled.
    let took = wait_for(Duration::from_secs(15), || {
        replicas_everywhere(&rest, "t") == vec![2; 3] && {
            let l = rest[0].ls();
            !l[0].holders.contains(&victim.id().to_string())
        }
    })
    .await;
    assert!(took.is_some(), "R copies not restored");
    eprintln!(
        "repair: R=2 live copies again {} ms after the holder died (repair-after 1 s)",
        t0.elapsed().as_millis()
    );
    let out = dir.path().join("t.flac");
    let p = rest[2].get("t", Some(&out), dir.path()).await.unwrap();
    assert_eq!(
        std::fs::read(p).unwrap(),
        std::fs::read(fixture("tone.flac")).unwrap()
    );
    leave_all(&rest).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_joining_peer_receives_its_share_and_extra_copies_are_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let mut nodes = mesh(&["a", "b", "c"], dir.path(), 2, Duration::from_secs(600)).await;
    for i in 0..6 {
        // Distinct content per track: the same tone with a different trailing byte pattern is
        // not audio any more, so use the fixtures in turn with distinct names instead.
        let file = [
            "tone.mp3",
            "tone.flac",
            "tone.ogg",
            "tone.wav",
            "tone.m4a",
            "tone.mp3",
        ][i];
        nodes[i % 3]
            .push(&format!("t{i}"), &fixture(file), |_, _| {})
            .await
            .unwrap();
    }
    let mut cfg = config("d", dir.path());
    cfg.replicas = 2;
    cfg.join = Some(meff::node::JoinTarget::Ticket(nodes[0].ticket()));
    nodes.push(Node::start(cfg).await.unwrap());
    assert!(
        wait_for(Duration::from_secs(10), || full_mesh(&nodes))
            .await
            .is_some()
    );
    let cands = equal_candidates(&nodes);
    let placed = |n: &Node| {
        n.ls().iter().all(|t| {
            let hash: [u8; 32] = data_encoding::HEXLOWER
                .decode(t.hash.as_bytes())
                .unwrap()
                .try_into()
                .unwrap();
            let mut want: Vec<String> = placement::holders(&hash, &cands, 2)
                .iter()
                .map(|p| p.to_string())
                .collect();
            let mut got = t.holders.clone();
            want.sort();
            got.sort();
            want == got
        })
    };
    let took = wait_for(Duration::from_secs(15), || {
        nodes.iter().all(|n| n.ls().len() == 6 && placed(n))
    })
    .await;
    assert!(
        took.is_some(),
        "holders did not settle on the placement over 4 peers"
    );
    leave_all(&nodes).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_holder_is_detected_and_the_fetch_goes_elsewhere() {
    let dir = tempfile::tempdir().unwrap();
    let nodes = mesh(
        &["a", "b", "c", "d"],
        dir.path(),
        2,
        Duration::from_secs(600),
    )
    .await;
    // One in the second 16 KiB piece of the first chunk too, which a stream checks alone.
    let (original, _, _) = push_and_rot_a_copy(&nodes, "c", &[70_000, 20_000]).await;
    for n in nodes.iter() {
        let out = dir.path().join(format!("{}.wav", n.name()));
        let p = n.get("c", Some(&out), dir.path()).await.unwrap();
        assert_eq!(
            std::fs::read(p).unwrap(),
            original,
            "peer {} got bad bytes",
            n.name()
        );
    }
    leave_all(&nodes).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scrub_finds_a_rotten_copy_nobody_read_and_repair_puts_a_good_one_back() {
    let dir = tempfile::tempdir().unwrap();
    let nodes = mesh(&["a", "b", "c"], dir.path(), 2, Duration::from_secs(1)).await;
    let (original, bad, blob) = push_and_rot_a_copy(&nodes, "t", &[1_000]).await;
    // Its scrub passes come every 10 s; nothing else reads the blob meanwhile.
    let healed = wait_for(Duration::from_secs(30), || {
        std::fs::read(&blob).is_ok_and(|b| b == original)
    })
    .await;
    assert!(
        healed.is_some(),
        "the rotten copy on {} was neither dropped nor replaced",
        nodes[bad].name()
    );
    leave_all(&nodes).await;
}

/// Pushes tone.wav as `name` from the first node and flips the bytes at `at` in its first
/// holder's copy; gives the file's bytes, that holder's index and the rotten blob's path.
async fn push_and_rot_a_copy(
    nodes: &[Node],
    name: &str,
    at: &[usize],
) -> (Vec<u8>, usize, std::path::PathBuf) {
    let holders = nodes[0]
        .push(name, &fixture("tone.wav"), |_, _| {})
        .await
        .unwrap();
    let original = std::fs::read(fixture("tone.wav")).unwrap();
    let hash = blake3::hash(&original).to_hex().to_string();
    let bad = nodes.iter().position(|n| n.id() == holders[0]).unwrap();
    let blob = nodes[bad].data_dir().join("blobs").join(&hash);
    let mut bytes = std::fs::read(&blob).unwrap();
    for &i in at {
        bytes[i] ^= 0xff;
    }
    std::fs::write(&blob, &bytes).unwrap();
    (original, bad, blob)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_pushes_of_one_name_both_survive_and_the_later_is_renamed() {
    let dir = tempfile::tempdir().unwrap();
    let nodes = mesh(&["a", "b", "c"], dir.path(), 2, Duration::from_secs(600)).await;
    let (f1, f2) = (fixture("tone.mp3"), fixture("tone.flac"));
    let hash_of = |f: &std::path::Path| {
        blake3::hash(&std::fs::read(f).unwrap())
            .to_hex()
            .to_string()
    };
    let (h1, h2) = (hash_of(&f1), hash_of(&f2));
    // Several rounds, so the pushes meet at different points of each other's work.
    for round in 0..4 {
        let name = format!("same {round}");
        let (r1, r2) = tokio::join!(
            nodes[0].push_with(&name, &f1, false, |_, _| {}),
            nodes[1].push_with(&name, &f2, false, |_, _| {}),
        );
        let (p1, p2) = (r1.unwrap(), r2.unwrap());
        let mut told = [p1.name.clone(), p2.name.clone()];
        told.sort();
        assert_eq!(
            told,
            [name.clone(), format!("{name} (2)")],
            "each pusher is told a different final name"
        );
        // Every peer shows both tracks, each under the name its pusher was told.
        let want = [(p1.name.clone(), h1.clone()), (p2.name.clone(), h2.clone())];
        let agreed = wait_for(Duration::from_secs(15), || {
            nodes.iter().all(|n| {
                want.iter()
                    .all(|(shown, hash)| n.ls().iter().any(|t| t.name == *shown && t.hash == *hash))
            })
        })
        .await;
        assert!(
            agreed.is_some(),
            "round {round}: peers do not all show {want:?}"
        );
        for n in &nodes {
            assert_eq!(
                n.ls().len(),
                2 * (round + 1),
                "nothing else appears on {}",
                n.name()
            );
        }
    }
    // Both blobs stay, each on R = 2 peers.
    let total: usize = nodes.iter().map(blob_files).sum();
    assert_eq!(total, 4);
    // The renamed one is a track like any other: it plays back byte for byte and can go.
    let second = nodes[2]
        .ls()
        .into_iter()
        .find(|t| t.name == "same 0 (2)")
        .unwrap();
    let got = nodes[2]
        .get("same 0 (2)", Some(&dir.path().join("x")), dir.path())
        .await
        .unwrap();
    assert_eq!(
        blake3::hash(&std::fs::read(got).unwrap())
            .to_hex()
            .to_string(),
        second.hash
    );
    // The suffix is the renamed track's own name now: removing the other one leaves it be.
    nodes[2].remove("same 0").await.unwrap();
    assert!(
        wait_for(Duration::from_secs(15), || nodes.iter().all(|n| {
            let ls = n.ls();
            !ls.iter().any(|t| t.name == "same 0")
                && ls
                    .iter()
                    .any(|t| t.name == "same 0 (2)" && t.hash == second.hash)
        }))
        .await
        .is_some(),
        "the renamed track kept the name its pusher was told"
    );
    leave_all(&nodes).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leaving_holder_hands_off_its_copies() {
    let dir = tempfile::tempdir().unwrap();
    let nodes = mesh(&["a", "b", "c"], dir.path(), 1, Duration::from_secs(600)).await;
    let holders = nodes[0]
        .push("solo", &fixture("tone.mp3"), |_, _| {})
        .await
        .unwrap();
    assert_eq!(holders.len(), 1);
    let holder = nodes.iter().find(|n| n.id() == holders[0]).unwrap();
    let rest: Vec<Node> = nodes
        .iter()
        .filter(|n| n.id() != holder.id())
        .cloned()
        .collect();
    assert!(
        wait_for(Duration::from_secs(15), || rest
            .iter()
            .all(|n| n.ls().len() == 1))
        .await
        .is_some()
    );
    // The only copy leaves with `down`: it is handed to the next peer placement picks.
    holder.leave().await;
    let took = wait_for(Duration::from_secs(15), || {
        replicas_everywhere(&rest, "solo") == vec![1, 1]
    })
    .await;
    assert!(took.is_some(), "the only copy left with its holder");
    let out = dir.path().join("solo.mp3");
    let p = rest[0].get("solo", Some(&out), dir.path()).await.unwrap();
    assert_eq!(
        std::fs::read(p).unwrap(),
        std::fs::read(fixture("tone.mp3")).unwrap()
    );
    leave_all(&rest).await;
}

/// Unmounts on drop, also when the test fails.
struct Mount(std::path::PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_on_a_holder_sends_the_copy_to_the_next_peer() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        assert!(
            std::env::var_os("CI").is_none(),
            "the full-disk test must run in CI (as root)"
        );
        eprintln!("skipping the full-disk test: mounting a tiny tmpfs needs root");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let nodes = mesh(
        &["a", "b", "c", "d"],
        dir.path(),
        2,
        Duration::from_secs(600),
    )
    .await;
    let file = fixture("tone.wav");
    let hash = *blake3::hash(&std::fs::read(&file).unwrap()).as_bytes();
    let cands = equal_candidates(&nodes);
    let ranked = placement::rank(&hash, &cands);
    // The first choice that is not the uploader gets a 16 KiB disk: the 88 KB track cannot fit.
    let uploader = nodes
        .iter()
        .find(|n| n.id() != ranked[0] && n.id() != ranked[1])
        .unwrap();
    let full = nodes.iter().find(|n| n.id() == ranked[0]).unwrap();
    let blobs = full.data_dir().join("blobs");
    let ok = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=16k", "tmpfs"])
        .arg(&blobs)
        .status()
        .unwrap();
    if !ok.success() {
        leave_all(&nodes).await;
        assert!(
            std::env::var_os("CI").is_none(),
            "the full-disk test must run in CI, and this machine refuses tmpfs mounts"
        );
        eprintln!("skipping the full-disk test: this machine refuses tmpfs mounts");
        return;
    }
    let _mount = Mount(blobs.clone());
    std::fs::create_dir_all(blobs.join("tmp")).unwrap();

    let holders = uploader
        .push("big-for-a-small-disk", &file, |_, _| {})
        .await
        .unwrap();
    assert_eq!(holders.len(), 2, "the push did not reach R holders");
    assert!(
        !holders.contains(&full.id()),
        "the full holder claims a copy"
    );
    assert_eq!(
        holders,
        vec![ranked[1], ranked[2]],
        "the next peers in rank order hold it"
    );
    assert!(
        std::fs::read_dir(blobs.join("tmp"))
            .unwrap()
            .next()
            .is_none(),
        "a half blob was left"
    );
    assert!(
        wait_for(Duration::from_secs(15), || full
            .entry("big-for-a-small-disk")
            .is_ok())
        .await
        .is_some()
    );
    let out = dir.path().join("x.wav");
    let p = full
        .get("big-for-a-small-disk", Some(&out), dir.path())
        .await
        .unwrap();
    assert_eq!(std::fs::read(p).unwrap(), std::fs::read(&file).unwrap());

    // The full peer says so, everyone sees it, and nobody keeps trying to give it the copy.
    assert!(
        full.is_disk_full(),
        "the full peer does not know it is full"
    );
    assert!(
        wait_for(Duration::from_secs(15), || nodes
            .iter()
            .filter(|n| n.id() != full.id())
            .all(|n| n
                .status()
                .peers
                .iter()
                .any(|p| p.id == full.id().to_string() && p.disk_full)))
        .await
        .is_some(),
        "the others do not see the full disk"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        full.pulls_backing_off(),
        0,
        "the full peer still tries to pull copies"
    );
    assert!(!full.status().peers.iter().any(|p| p.disk_full));

    // Room again: the peer takes its copy after all.
    let ok = std::process::Command::new("mount")
        .args(["-o", "remount,size=64m"])
        .arg(&blobs)
        .status()
        .unwrap();
    assert!(ok.success(), "cannot grow the tmpfs");
    let blob = blobs.join(meff::store::blobs::hex(&hash));
    assert!(
        wait_for(Duration::from_secs(10), || !full.is_disk_full()
            && blob.exists())
        .await
        .is_some(),
        "the peer with room again did not take its copy"
    );
    leave_all(&nodes).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_capacity_larger_than_the_disk_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config("huge", dir.path());
    cfg.capacity = 1 << 62;
    cfg.capacity_given = true;
    let err = format!("{:#}", Node::start(cfg).await.err().expect("started"));
    assert!(err.contains("is more than the disk holding"), "{err}");
    // Not asked for, the default is cut to the disk's size.
    let mut cfg = config("default", dir.path());
    cfg.capacity = 1 << 62;
    let node = Node::start(cfg).await.unwrap();
    let disk = meff::store::disk::filesystem_size(dir.path()).unwrap();
    assert!(node.status().peers.is_empty());
    assert!(node.capacity() <= disk);
    node.leave().await;
}

/// Files in a peer's blob store.
fn blob_files(n: &Node) -> usize {
    std::fs::read_dir(n.data_dir().join("blobs"))
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().is_file())
        .count()
}

fn holders_of_blob(nodes: &[Node], hex: &str) -> usize {
    nodes
        .iter()
        .filter(|n| n.data_dir().join("blobs").join(hex).is_file())
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cover_is_stored_once_on_r_peers_and_follows_a_leaving_holder() {
    let dir = tempfile::tempdir().unwrap();
    let nodes = mesh(
        &["a", "b", "c", "d"],
        dir.path(),
        2,
        Duration::from_secs(600),
    )
    .await;
    // Two tracks with the same picture (the tagged mp3 and flac fixtures).
    nodes[0]
        .push("one", &fixture("tagged.mp3"), |_, _| {})
        .await
        .unwrap();
    nodes[1]
        .push("two", &fixture("tagged.flac"), |_, _| {})
        .await
        .unwrap();
    let listed = nodes[3].ls();
    let covers: Vec<Option<String>> = listed.iter().map(|t| t.cover.clone()).collect();
    assert!(
        covers.len() == 2 && covers[0].is_some() && covers[0] == covers[1],
        "both tracks name one cover: {covers:?}"
    );
    let hex = covers[0].clone().unwrap();
    assert_eq!(
        holders_of_blob(&nodes, &hex),
        2,
        "the cover is on R peers, once"
    );
    for n in &nodes {
        let picture = n.cover("one").await.unwrap().expect("a cover");
        assert_eq!(blake3::hash(&picture).to_hex().to_string(), hex);
        assert!(picture.starts_with(b"\x89PNG"), "{}", n.name());
    }
    assert_eq!(nodes[0].cover("no such").await.ok(), None);
    // A holder of the cover leaves: its copy goes to another peer, as a track's would.
    let holder = nodes
        .iter()
        .find(|n| n.data_dir().join("blobs").join(&hex).is_file())
        .unwrap()
        .clone();
    holder.leave().await;
    let rest: Vec<Node> = nodes
        .iter()
        .filter(|n| n.id() != holder.id())
        .cloned()
        .collect();
    let took = wait_for(Duration::from_secs(15), || {
        holders_of_blob(&rest, &hex) >= 2
    })
    .await;
    assert!(took.is_some(), "the cover fell below R copies");
    let picture = rest[0].cover("two").await.unwrap().unwrap();
    assert_eq!(blake3::hash(&picture).to_hex().to_string(), hex);
    leave_all(&rest).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_peers_importing_one_folder_at_once_store_each_track_once() {
    use meff::node::ImportOutcome;
    let dir = tempfile::tempdir().unwrap();
    let nodes = mesh(&["a", "b", "c"], dir.path(), 2, Duration::from_secs(600)).await;
    let music = dir.path().join("music");
    std::fs::create_dir_all(&music).unwrap();
    let files = [
        "tone.mp3",
        "tone.flac",
        "tone.ogg",
        "tone.wav",
        "tagged.mp3",
    ];
    for f in files {
        std::fs::copy(fixture(f), music.join(f)).unwrap();
    }
    let roots = vec![music.clone()];
    let (r0, r1) = tokio::join!(
        nodes[0].import(&roots, false, |_, _| {}, |_| {}),
        nodes[1].import(&roots, false, |_, _| {}, |_| {}),
    );
    let (r0, r1) = (r0.unwrap(), r1.unwrap());
    // Per file: imported by exactly one of the two, already in the network for the other.
    for f in files {
        let outcome = |r: &meff::node::ImportReport| {
            r.files
                .iter()
                .find(|(p, _)| p.file_name().unwrap() == f)
                .map(|(_, o)| o.clone())
                .unwrap()
        };
        let both = [outcome(&r0), outcome(&r1)];
        let imported = both
            .iter()
            .filter(|o| matches!(o, ImportOutcome::Imported { .. }))
            .count();
        let duplicate = both
            .iter()
            .filter(|o| matches!(o, ImportOutcome::Duplicate { .. }))
            .count();
        assert_eq!((imported, duplicate), (1, 1), "{f}: {both:?}");
    }
    // Every peer lists each content once, under one name, on R peers; no blob twice.
    let converged = wait_for(Duration::from_secs(10), || {
        nodes.iter().all(|n| {
            let ls = n.ls();
            let hashes: std::collections::BTreeSet<_> = ls.iter().map(|t| &t.hash).collect();
            ls.len() == files.len()
                && hashes.len() == files.len()
                && ls.iter().all(|t| t.replicas == 2)
        })
    })
    .await;
    assert!(converged.is_some(), "{:#?}", nodes[2].ls());
    let blobs: usize = nodes.iter().map(blob_files).sum();
    assert_eq!(
        blobs,
        (files.len() + 1) * 2,
        "5 tracks and one cover, R = 2 each"
    );
    leave_all(&nodes).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_changed_after_it_was_read_is_refused_everywhere_and_nothing_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let nodes = mesh(&["a", "b"], dir.path(), 2, Duration::from_secs(600)).await;
    let file = dir.path().join("edited.wav");
    std::fs::copy(fixture("tone.wav"), &file).unwrap();
    let prepared = meff::node::prepare_file(&file).await.unwrap();
    // Edited in place after it was hashed: same size, other samples.
    let mut bytes = std::fs::read(&file).unwrap();
    let n = bytes.len();
    for b in &mut bytes[n - 4000..] {
        *b ^= 0x55;
    }
    std::fs::write(&file, &bytes).unwrap();
    let err = nodes[0]
        .store_prepared("edited", prepared, meff::node::PushMode::New, |_, _| {})
        .await
        .unwrap_err();
    assert!(
        format!("{err:#}").contains("changed while it was being stored"),
        "{err:#}"
    );
    for n in &nodes {
        assert!(n.ls().is_empty(), "{}", n.name());
        assert_eq!(
            blob_files(n),
            0,
            "{} kept a blob that is not what its name says",
            n.name()
        );
    }
    // An import goes on past unreadable and empty files, with an outcome for each.
    let music = dir.path().join("music");
    std::fs::create_dir_all(&music).unwrap();
    std::fs::copy(fixture("tone.ogg"), music.join("ok.ogg")).unwrap();
    std::fs::write(music.join("empty.flac"), b"").unwrap();
    std::os::unix::fs::symlink(music.join("gone.mp3"), music.join("dangling.mp3")).unwrap();
    let report = nodes[1]
        .import(&[music], false, |_, _| {}, |_| {})
        .await
        .unwrap();
    let outcome = |f: &str| {
        report
            .files
            .iter()
            .find(|(p, _)| p.file_name().unwrap() == f)
            .map(|(_, o)| o.clone())
            .unwrap_or_else(|| panic!("no outcome for {f}: {report:?}"))
    };
    use meff::node::ImportOutcome;
    assert!(matches!(outcome("ok.ogg"), ImportOutcome::Imported { .. }));
    assert!(matches!(
        outcome("empty.flac"),
        ImportOutcome::NotAudio { .. }
    ));
    assert!(matches!(
        outcome("dangling.mp3"),
        ImportOutcome::Failed { .. }
    ));
    assert!(report.stopped.is_none());
    leave_all(&nodes).await;
}
