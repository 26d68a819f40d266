//! The entry points the fuzz targets (under `fuzz/`) and the corpus replay test share: each
//! takes untrusted bytes the way the peer does and must never panic, hang, or allocate past
//! the input's own limit.

use crate::net::frame::{self, HEADER_LEN};
use crate::net::msg::Msg;

/// The largest single allocation decoding may make for an input of `len` bytes: what the
/// input's kind allows, plus serde's cautious preallocation (at most 1 MiB).
pub fn allocation_limit(input_len: usize) -> usize {
    input_len.saturating_mul(8).max(1 << 20) + (1 << 20)
}

/// A wire frame as it comes off a stream: header checked against the kind's limit first,
/// then the body decoded. The body length is what the header claims, capped by the bytes
/// there are (a short stream ends the read).
pub fn frame(data: &[u8]) {
    let Some(header) = data.get(..HEADER_LEN) else {
        return;
    };
    let header: [u8; HEADER_LEN] = match header.try_into() {
        Ok(h) => h,
        Err(_) => return,
    };
    let Ok((kind, len)) = frame::decode_header(&header) else {
        return;
    };
    let body = &data[HEADER_LEN..];
    if body.len() < len {
        return;
    }
    if let Ok(msg) = frame::decode_body(kind, &body[..len]) {
        // What decodes must encode again within the kind's limit.
        let again = frame::encode(&msg);
        assert!(again.len() <= HEADER_LEN + Msg::max_len(kind).unwrap_or(0) + 16);
        if let Msg::Catalog(entries) = &msg {
            for e in entries {
                let _ = crate::store::catalog::validate_entry(e);
            }
        }
    }
}

/// An invite ticket typed or pasted by a user.
pub fn ticket(data: &[u8]) {
    if let Ok(s) = std::str::from_utf8(data)
        && let Ok(t) = crate::net::ticket::Ticket::decode(s)
    {
        assert_eq!(crate::net::ticket::Ticket::decode(&t.encode()), Ok(t));
    }
}

/// A catalog entry from a peer, decoded and validated as gossip does.
pub fn catalog_entry(data: &[u8]) {
    if let Ok(e) = postcard::from_bytes::<crate::store::catalog::CatalogEntry>(data) {
        let _ = crate::store::catalog::validate_entry(&e);
    }
}

/// One control-socket request line, as the peer reads it (at most its size limit).
pub fn control(data: &[u8]) {
    let line = &data[..data.len().min(crate::cli::control::MAX_REQUEST)];
    let _ = serde_json::from_slice::<crate::cli::control::Request>(line);
}

/// A fuzz entry point: untrusted bytes in, a panic only on a bug.
pub type Target = fn(&[u8]);

/// The targets by name, for the replay test.
pub const TARGETS: &[(&str, Target)] = &[
    ("frame", frame),
    ("ticket", ticket),
    ("catalog_entry", catalog_entry),
    ("control", control),
];

#[cfg(test)]
mod seeds {
    use crate::id::PeerId;
    use crate::net::msg::{Heartbeat, Msg};

    /// Writes the starting inputs for fuzzing under fuzz/seeds/ (run by hand:
    /// `cargo test --lib write_fuzz_seeds -- --ignored`).
    #[test]
    #[ignore]
    fn write_fuzz_seeds() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds");
        let put = |target: &str, i: usize, bytes: &[u8]| {
            let d = root.join(target);
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(d.join(format!("seed-{i}")), bytes).unwrap();
        };
        let frames = [
            Msg::Heartbeat(Heartbeat {
                seq: 1,
                rtt_us: 300,
                load: 0,
            }),
            Msg::Leave { incarnation: 7 },
            Msg::CatalogDigest([3; 32]),
            Msg::Holdings {
                seq: 3,
                held: vec![[1; 32], [2; 32]],
                more: false,
            },
            Msg::Fetch {
                hash: [9; 32],
                offset: 65536,
            },
            Msg::FetchOk { size: 1 << 20 },
            Msg::Failed {
                reason: "nope".into(),
            },
            Msg::Introduce {
                peer: PeerId([4; 32]),
            },
            Msg::RelayReady,
        ];
        for (i, m) in frames.iter().enumerate() {
            put("frame", i, &crate::net::frame::encode(m));
        }
        let t = crate::net::ticket::Ticket {
            key: [5; 32],
            id: PeerId([6; 32]),
            addrs: vec!["192.0.2.7:4000".parse().unwrap()],
        };
        put("ticket", 0, t.encode().as_bytes());
        put("ticket", 1, t.encode().to_ascii_uppercase().as_bytes());
        use crate::store::catalog::{CatalogEntry, Version};
        use crate::store::hlc::Timestamp;
        let data = vec![7u8; 100_000];
        let e = CatalogEntry {
            name: "song".into(),
            hash: *blake3::hash(&data).as_bytes(),
            size: data.len() as u64,
            codec: "flac".into(),
            sample_rate: 44100,
            channels: 2,
            duration_s: 1.5,
            version: Version {
                ts: Timestamp::new(1_700_000_000_000, 0),
                peer: PeerId([8; 32]),
            },
            lineage: Version {
                ts: Timestamp::new(1_700_000_000_000, 0),
                peer: PeerId([8; 32]),
            },
            tombstone: false,
            tombstone_acks: Default::default(),
            tags: Default::default(),
            cover: None,
            pushed_by: String::new(),
        };
        put("catalog_entry", 0, &postcard::to_allocvec(&e).unwrap());
        put(
            "frame",
            100,
            &crate::net::frame::encode(&Msg::Catalog(vec![e])),
        );
        for (i, line) in [
            r#"{"cmd":{"Status":{"json":true}},"cwd":"/"}"#,
            r#"{"cmd":{"Get":{"name":"x","output":"-"}},"cwd":"/tmp"}"#,
            r#"{"cmd":{"Push":{"name":"a","file":"b.mp3"}},"cwd":"/"}"#,
            r#"{"cmd":"Down","cwd":"/"}"#,
        ]
        .iter()
        .enumerate()
        {
            put("control", i, line.as_bytes());
        }
    }
}
