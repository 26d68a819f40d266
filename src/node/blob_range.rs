//! A held blob read as a range: its pieces from an offset on, with the hash pairs a remote
//! reader needs to check them (the pairs are checked here against the blob's address), or
//! the pieces alone, each checked here, for a peer reading its own copy.

use super::Node;
use crate::store::blobs::Hash;
use crate::store::outboard::{Expect, PIECE_BYTES, RangeVerifier, outboard_pair, piece_start};
use std::os::unix::fs::FileExt;

#[derive(Debug)]
pub(crate) enum LocalError {
    /// Our copy (or its outboard) is not what its address says.
    Corrupt(String),
    Io(String),
}

impl std::fmt::Display for LocalError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LocalError::Corrupt(m) | LocalError::Io(m) => f.write_str(m),
        }
    }
}

/// What a batch holds: a remote reader needs the hash pairs, a local one only the bytes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Items {
    /// For a remote reader, which checks every piece against the pairs as it arrives. The
    /// pairs are checked here; the pieces only near the end (see [`READER_REPORTS_BEFORE_END`]).
    PairsAndPieces,
    /// For ourselves: every piece is checked here, nobody else will.
    PiecesOnly,
}

/// A reader that finds a rotten piece stops the stream with a code saying so, and we check
/// our copy then; so the pieces before this many bytes from the end are not hashed for it a
/// second time. Flow control keeps us from finishing the stream until the reader has read
/// all but a window of it, so its stop still finds the stream open; the last window and a
/// margin (once finished and acknowledged, the stream is gone and a stop is lost) we check.
pub(crate) const READER_REPORTS_BEFORE_END: u64 = crate::net::tls::STREAM_WINDOW as u64 + (1 << 20);

pub(crate) struct LocalRange {
    /// Lent to a blocking thread while a batch is read; None only if that thread died.
    state: Option<RangeState>,
}

struct RangeState {
    file: std::fs::File,
    outboard: Vec<u8>,
    size: u64,
    verifier: RangeVerifier,
}

impl Node {
    /// The outboard of a held blob of `size` bytes; built and stored first for a blob an
    /// older release stored without one.
    pub(crate) async fn outboard_for(&self, hash: &Hash, size: u64) -> Result<Vec<u8>, LocalError> {
        let node = self.clone();
        let hash = *hash;
        let r = tokio::task::spawn_blocking(move || {
            match node.inner.blobs.read_outboard(&hash, size) {
                Some(o) => Ok(Some(o)),
                None => node.inner.blobs.build_outboard(&hash),
            }
        })
        .await;
        match r {
            Ok(Ok(Some(o))) => Ok(o),
            Ok(Ok(None)) => Err(LocalError::Corrupt(
                "our copy does not match its hash".into(),
            )),
            Ok(Err(e)) => Err(LocalError::Io(format!("{e:#}"))),
            Err(e) => Err(LocalError::Io(e.to_string())),
        }
    }

    /// Opens our copy of `hash` for reading from the piece that holds `offset`; also gives
    /// the blob's size.
    pub(crate) async fn open_range(
        &self,
        hash: &Hash,
        offset: u64,
    ) -> Result<(LocalRange, u64), LocalError> {
        let path = self.inner.blobs.path(hash);
        let opened = tokio::task::spawn_blocking(move || {
            let file = std::fs::File::open(path)?;
            let size = file.metadata()?.len();
            Ok::<_, std::io::Error>((file, size))
        })
        .await;
        let (file, size) = match opened {
            Ok(Ok(f)) => f,
            Ok(Err(e)) => return Err(LocalError::Io(e.to_string())),
            Err(e) => return Err(LocalError::Io(e.to_string())),
        };
        let outboard = self.outboard_for(hash, size).await?;
        let start = piece_start(offset.min(size));
        let state = RangeState {
            file,
            outboard,
            size,
            verifier: RangeVerifier::new(*hash, size, start),
        };
        Ok((LocalRange { state: Some(state) }, size))
    }
}

impl LocalRange {
    /// The range's next items (hash pairs and pieces, or pieces only), at least `want` bytes
    /// unless the range ends, checked as [`Items`] says; and whether more follow.
    /// One blocking hop per batch, and each piece is read straight into the batch: no buffer
    /// between the page cache and the bytes sent.
    pub(crate) async fn next_batch(
        &mut self,
        want: usize,
        items: Items,
    ) -> Result<(Vec<u8>, bool), LocalError> {
        let Some(mut state) = self.state.take() else {
            return Err(LocalError::Io("the range was lost".into()));
        };
        let joined = tokio::task::spawn_blocking(move || {
            let mut batch = Vec::with_capacity(want + PIECE_BYTES as usize);
            let more = state.fill(&mut batch, want, items);
            (state, more.map(|more| (batch, more)))
        })
        .await;
        let (state, r) = joined.map_err(|e| LocalError::Io(e.to_string()))?;
        self.state = Some(state);
        r
    }
}

impl RangeState {
    fn fill(&mut self, out: &mut Vec<u8>, want: usize, items: Items) -> Result<bool, LocalError> {
        loop {
            let Some(e) = self.verifier.expect() else {
                return Ok(false);
            };
            let start = out.len();
            match e {
                Expect::Parent { node } => {
                    // The outboard was read at its exact length: a missing pair is our bug.
                    let pair = outboard_pair(self.size, &self.outboard, node).ok_or_else(|| {
                        LocalError::Io("no hash pair for a node of the range".into())
                    })?;
                    out.extend_from_slice(&pair);
                }
                Expect::Piece { offset, len } => {
                    out.resize(start + len, 0);
                    if let Err(e) = self.file.read_exact_at(&mut out[start..], offset) {
                        out.truncate(start);
                        return Err(LocalError::Io(e.to_string()));
                    }
                }
            }
            let checked = match (items, e) {
                (Items::PairsAndPieces, Expect::Piece { offset, len })
                    if offset + len as u64 + READER_REPORTS_BEFORE_END <= self.size =>
                {
                    self.verifier.pass_piece()
                }
                _ => self.verifier.check(&out[start..]),
            };
            if let Err(m) = checked {
                out.truncate(start);
                return Err(LocalError::Corrupt(m.0));
            }
            if items == Items::PiecesOnly && matches!(e, Expect::Parent { .. }) {
                out.truncate(start);
            }
            if out.len() >= want {
                return Ok(self.verifier.expect().is_some());
            }
        }
    }
}
