//! A held blob read as a verified range: its pieces from an offset on, each checked against
//! the blob's address through its outboard as it leaves the disk, with the hash pairs a
//! remote reader needs to check them again. A holder serves with it; a peer reading its own
//! copy uses it too.

use super::Node;
use crate::store::blobs::Hash;
use crate::store::outboard::{Expect, RangeVerifier, outboard_pair, piece_start};
use tokio::io::{AsyncReadExt, AsyncSeekExt};

/// Disk reads this big: one blocking hop per 256 KiB, not per 16 KiB piece.
const READ_BUF: usize = 256 * 1024;

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

pub(crate) struct LocalRange {
    reader: tokio::io::BufReader<tokio::fs::File>,
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
        let io = |e: std::io::Error| LocalError::Io(e.to_string());
        let mut file = tokio::fs::File::open(self.inner.blobs.path(hash))
            .await
            .map_err(io)?;
        let size = file.metadata().await.map_err(io)?.len();
        let outboard = self.outboard_for(hash, size).await?;
        let start = piece_start(offset.min(size));
        file.seek(std::io::SeekFrom::Start(start))
            .await
            .map_err(io)?;
        let range = LocalRange {
            reader: tokio::io::BufReader::with_capacity(READ_BUF, file),
            outboard,
            size,
            verifier: RangeVerifier::new(*hash, size, start),
        };
        Ok((range, size))
    }
}

impl LocalRange {
    /// Appends the next item of the range's encoding (a hash pair or a piece) to `out`,
    /// checked; None at the end.
    pub(crate) async fn next_into(
        &mut self,
        out: &mut Vec<u8>,
    ) -> Result<Option<Expect>, LocalError> {
        let Some(e) = self.verifier.expect() else {
            return Ok(None);
        };
        let start = out.len();
        match e {
            Expect::Parent { node } => {
                // The outboard was read at its exact length: a missing pair is our bug, not rot.
                let pair = outboard_pair(self.size, &self.outboard, node)
                    .ok_or_else(|| LocalError::Io("no hash pair for a node of the range".into()))?;
                out.extend_from_slice(&pair);
            }
            Expect::Piece { len, .. } => {
                out.resize(start + len, 0);
                self.reader
                    .read_exact(&mut out[start..])
                    .await
                    .map_err(|e| LocalError::Io(e.to_string()))?;
            }
        }
        if let Err(m) = self.verifier.check(&out[start..]) {
            out.truncate(start);
            return Err(LocalError::Corrupt(m.0));
        }
        Ok(Some(e))
    }
}
