//! A blob written from async code: the file writes, the fsync and the rename run on a
//! blocking thread, fed through a small bounded queue, so a slow disk slows the sender
//! (backpressure) without ever stalling a runtime thread.

use super::blobs::BlobWriter;
use anyhow::{Result, anyhow};
use bytes::Bytes;
use tokio::sync::mpsc;

/// Pieces queued ahead of the disk: with 64 KiB–1 MiB pieces, a few MiB at most.
const QUEUE: usize = 8;

enum Piece {
    Data(Bytes),
    Commit,
}

pub struct BlobSink {
    tx: Option<mpsc::Sender<Piece>>,
    done: tokio::task::JoinHandle<Result<()>>,
}

impl BlobSink {
    pub fn new(mut writer: BlobWriter) -> BlobSink {
        let (tx, mut rx) = mpsc::channel::<Piece>(QUEUE);
        let done = tokio::task::spawn_blocking(move || {
            while let Some(piece) = rx.blocking_recv() {
                match piece {
                    Piece::Data(b) => writer.write(&b)?,
                    Piece::Commit => return writer.commit(),
                }
            }
            // The sender went away without committing: the writer's drop removes the temp file.
            Err(anyhow!("blob write abandoned"))
        });
        BlobSink { tx: Some(tx), done }
    }

    /// Queues bytes; waits while the disk is behind. An error is the writer's own.
    pub async fn write(&mut self, data: Bytes) -> Result<()> {
        let Some(tx) = self.tx.as_ref() else {
            return Err(anyhow!("blob writer already closed"));
        };
        if tx.send(Piece::Data(data)).await.is_err() {
            self.tx = None;
            return Err(self.failure().await);
        }
        Ok(())
    }

    /// The writer stopped early: its error.
    async fn failure(&mut self) -> anyhow::Error {
        match (&mut self.done).await {
            Ok(Err(e)) => e,
            Ok(Ok(())) => anyhow!("blob writer already closed"),
            Err(e) => anyhow!("blob writer failed: {e}"),
        }
    }

    /// Checks the hash, fsyncs and stores the blob under its name.
    pub async fn commit(mut self) -> Result<()> {
        if let Some(tx) = self.tx.take()
            && tx.send(Piece::Commit).await.is_err()
        {
            return Err(self.failure().await);
        }
        match (&mut self.done).await {
            Ok(r) => r,
            Err(e) => Err(anyhow!("blob writer failed: {e}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::blobs::BlobStore;

    #[tokio::test]
    async fn writes_in_the_background_and_abandons_cleanly() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let h = *blake3::hash(&data).as_bytes();
        let mut sink = BlobSink::new(store.begin(&h, data.len() as u64).unwrap());
        for piece in data.chunks(65_536) {
            sink.write(Bytes::copy_from_slice(piece)).await.unwrap();
        }
        sink.commit().await.unwrap();
        assert_eq!(std::fs::read(store.path(&h)).unwrap(), data);

        let other = [7u8; 32];
        let mut sink = BlobSink::new(store.begin(&other, 3).unwrap());
        sink.write(Bytes::from_static(b"abc")).await.unwrap();
        assert!(sink.commit().await.is_err(), "wrong content committed");
        let mut sink = BlobSink::new(store.begin(&other, 3).unwrap());
        sink.write(Bytes::from_static(b"abc")).await.unwrap();
        drop(sink);
        // The abandoned writer's thread removes its temp file.
        for _ in 0..100 {
            if std::fs::read_dir(dir.path().join("tmp")).unwrap().count() == 0 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert_eq!(
            std::fs::read_dir(dir.path().join("tmp")).unwrap().count(),
            0
        );
        assert!(!store.has(&other));
    }
}
