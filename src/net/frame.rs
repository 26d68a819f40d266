//! Wire frames: `[kind: u8][len: u32 BE][postcard body]`. The kind comes first so a frame larger
//! than its kind allows is refused from its 5-byte header, before any of it is buffered.

use super::msg::Msg;
use thiserror::Error;

pub const HEADER_LEN: usize = 5;

#[derive(Debug, Error)]
pub enum FrameError {
    #[error("stream closed")]
    Closed,
    #[error("stream error: {0}")]
    Io(String),
    #[error("unknown frame kind {0}")]
    UnknownKind(u8),
    #[error("frame of kind {kind} is {len} bytes, over its limit of {max}")]
    TooLarge { kind: u8, len: usize, max: usize },
    #[error("undecodable frame of kind {0}")]
    Decode(u8),
    #[error("frame header says kind {header} but body is kind {body}")]
    KindMismatch { header: u8, body: u8 },
    #[error("frame kind {0} is not allowed here")]
    NotAllowed(u8),
    /// A handshake frame of another protocol version (whose layout we cannot decode).
    #[error("protocol version {0}")]
    Version(u16),
}

pub fn encode(msg: &Msg) -> Vec<u8> {
    let body = postcard::to_allocvec(msg).unwrap_or_default();
    let mut out = Vec::with_capacity(HEADER_LEN + body.len());
    out.push(msg.kind());
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    out.extend_from_slice(&body);
    out
}

/// Checks a header against the per-kind limits; returns (kind, body length).
pub fn decode_header(h: &[u8; HEADER_LEN]) -> Result<(u8, usize), FrameError> {
    let kind = h[0];
    let len = u32::from_be_bytes([h[1], h[2], h[3], h[4]]) as usize;
    let max = Msg::max_len(kind).ok_or(FrameError::UnknownKind(kind))?;
    if len > max {
        return Err(FrameError::TooLarge { kind, len, max });
    }
    Ok((kind, len))
}

pub fn decode_body(kind: u8, body: &[u8]) -> Result<Msg, FrameError> {
    let msg: Msg = postcard::from_bytes(body).map_err(|_| {
        handshake_version(kind, body)
            .filter(|v| *v != super::msg::PROTOCOL_VERSION)
            .map_or(FrameError::Decode(kind), FrameError::Version)
    })?;
    if msg.kind() != kind {
        return Err(FrameError::KindMismatch {
            header: kind,
            body: msg.kind(),
        });
    }
    Ok(msg)
}

/// The version in a Hello or HelloAck of any protocol version: every version keeps it as the
/// first field, right after the variant index.
fn handshake_version(kind: u8, body: &[u8]) -> Option<u16> {
    if kind > 1 {
        return None;
    }
    let (variant, rest) = postcard::take_from_bytes::<u32>(body).ok()?;
    if variant != u32::from(kind) {
        return None;
    }
    postcard::take_from_bytes::<u16>(rest).ok().map(|(v, _)| v)
}

pub async fn read_frame(recv: &mut quinn::RecvStream) -> Result<Msg, FrameError> {
    read_frame_of(recv, None).await
}

/// Reads one frame, refusing from its header any kind not in `allowed`: a peer that has not
/// proven the network key cannot make us buffer a large frame of another kind.
pub async fn read_frame_of(
    recv: &mut quinn::RecvStream,
    allowed: Option<&[u8]>,
) -> Result<Msg, FrameError> {
    let mut header = [0u8; HEADER_LEN];
    match recv.read_exact(&mut header).await {
        Ok(()) => {}
        Err(quinn::ReadExactError::FinishedEarly(0)) => return Err(FrameError::Closed),
        Err(e) => return Err(FrameError::Io(e.to_string())),
    }
    let (kind, len) = decode_header(&header)?;
    if let Some(allowed) = allowed
        && !allowed.contains(&kind)
    {
        return Err(FrameError::NotAllowed(kind));
    }
    let mut body = vec![0u8; len];
    recv.read_exact(&mut body)
        .await
        .map_err(|e| FrameError::Io(e.to_string()))?;
    decode_body(kind, &body)
}

pub async fn write_frame(send: &mut quinn::SendStream, msg: &Msg) -> Result<(), FrameError> {
    send.write_all(&encode(msg))
        .await
        .map_err(|e| FrameError::Io(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::msg::Heartbeat;

    #[test]
    fn a_hello_of_another_version_is_told_apart_from_garbage() {
        // Another version's hello: the variant, its version, then a layout we do not know.
        let newer = crate::net::msg::PROTOCOL_VERSION + 1;
        let mut body = postcard::to_allocvec(&(0u32, newer)).unwrap();
        body.extend_from_slice(&[0xff; 40]);
        assert!(matches!(decode_body(0, &body), Err(FrameError::Version(v)) if v == newer));
        let mut ack = postcard::to_allocvec(&(1u32, 1u16)).unwrap();
        ack.extend_from_slice(&[0xff; 3]);
        assert!(matches!(decode_body(1, &ack), Err(FrameError::Version(1))));
        // Garbage in any other frame stays garbage.
        assert!(matches!(decode_body(3, &body), Err(FrameError::Decode(3))));
        assert!(matches!(
            decode_body(0, &[0xff; 8]),
            Err(FrameError::Decode(0))
        ));
    }

    /// The largest entry a valid peer can make (the longest name, every tag at its limit, a
    /// cover, a tombstone acked by 1,024 peers) fits the frames that carry one entry, and a
    /// batch of them fits the catalog frames: the limits are sized by the entry, not the catalog.
    #[test]
    fn the_largest_entry_fits_its_frames() {
        use crate::id::PeerId;
        use crate::store::catalog::{CoverRef, validate_entry};
        use crate::store::track_name::MAX_NAME_BYTES;
        use crate::store::track_tags::MAX_TAG_BYTES;
        let tag = || Some("é".repeat(MAX_TAG_BYTES / 2));
        let mut e = crate::store::catalog::sample_entry(&"n".repeat(MAX_NAME_BYTES));
        e.tags.title = tag();
        e.tags.artist = tag();
        e.tags.album = tag();
        e.tags.album_artist = tag();
        e.tags.genre = tag();
        e.tags.track = Some(u32::MAX);
        e.tags.disc = Some(u32::MAX);
        e.tags.year = Some(u16::MAX);
        e.pushed_by = "p".repeat(64);
        e.cover = Some(CoverRef {
            hash: [9; 32],
            size: crate::store::catalog::MAX_COVER_BYTES,
        });
        e.tombstone = true;
        e.tombstone_acks = (0..1024u32)
            .map(|i| PeerId(*blake3::hash(&i.to_le_bytes()).as_bytes()))
            .collect();
        assert_eq!(validate_entry(&e), Ok(()));
        let fits = |m: &Msg| {
            let f = encode(m);
            let (kind, len) = decode_header(&f[..HEADER_LEN].try_into().unwrap()).unwrap();
            assert_eq!(len, f.len() - HEADER_LEN);
            assert!(decode_body(kind, &f[HEADER_LEN..]).is_ok());
        };
        fits(&Msg::Store {
            entry: Box::new(e.clone()),
            chain: vec![PeerId([1; 32]); 16],
        });
        fits(&Msg::CatalogCheck {
            entry: Box::new(e.clone()),
        });
        let batches = crate::node::catalog_batches(vec![e; 1000]);
        assert!(batches.len() > 1);
        for b in batches {
            fits(&Msg::Catalog(b.clone()));
            fits(&Msg::CatalogItems(b));
        }
    }

    #[test]
    fn roundtrip() {
        let m = Msg::Heartbeat(Heartbeat {
            seq: 7,
            rtt_us: 300,
            load: 2,
        });
        let bytes = encode(&m);
        let header: [u8; HEADER_LEN] = bytes[..HEADER_LEN].try_into().unwrap();
        let (kind, len) = decode_header(&header).unwrap();
        assert_eq!(len, bytes.len() - HEADER_LEN);
        let back = decode_body(kind, &bytes[HEADER_LEN..]).unwrap();
        assert_eq!(back.kind(), m.kind());
    }

    #[test]
    fn oversized_refused_from_header() {
        let m = Msg::Heartbeat(Heartbeat {
            seq: 1,
            rtt_us: 1,
            load: 0,
        });
        let kind = m.kind();
        let max = Msg::max_len(kind).unwrap();
        let mut h = [kind, 0, 0, 0, 0];
        h[1..].copy_from_slice(&((max + 1) as u32).to_be_bytes());
        assert!(matches!(
            decode_header(&h),
            Err(FrameError::TooLarge { .. })
        ));
        h[1..].copy_from_slice(&(max as u32).to_be_bytes());
        assert!(decode_header(&h).is_ok());
    }

    #[test]
    fn unknown_kind_and_garbage_refused() {
        assert!(matches!(
            decode_header(&[250, 0, 0, 0, 1]),
            Err(FrameError::UnknownKind(250))
        ));
        let hb = Msg::Heartbeat(Heartbeat {
            seq: 1,
            rtt_us: 1,
            load: 0,
        });
        assert!(decode_body(hb.kind(), &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff]).is_err());
    }

    #[test]
    fn kind_mismatch_refused() {
        let m = Msg::Heartbeat(Heartbeat {
            seq: 1,
            rtt_us: 1,
            load: 0,
        });
        let bytes = encode(&m);
        let other = Msg::Leave { incarnation: 1 }.kind();
        assert!(decode_body(other, &bytes[HEADER_LEN..]).is_err());
    }
}
