//! A track's bytes from the mesh for the decoder: read in order as a stream, and from any
//! offset when a seek asks (a new verified fetch from the piece that holds it; nothing
//! before it is fetched). Nothing is written to disk.

use super::Node;
use crate::audio::{PlaybackControl, TrackBytes};
use crate::id::PeerId;
use crate::store::catalog::CatalogEntry;
use crate::store::outboard::piece_start;
use std::collections::VecDeque;
use std::io::{Read, Seek, SeekFrom};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;

/// Verified chunks buffered between the network and the decoder: enough compressed audio to
/// ride out a failover, small enough that memory stays flat for any track.
pub(crate) const READ_AHEAD_CHUNKS: usize = 16;

/// Chunks kept after they were read, for the short backward reads of format readers.
const KEPT_CHUNKS: usize = 4;

/// A forward gap this short is read through rather than fetched anew.
const READ_THROUGH: u64 = 128 * 1024;

/// Where a fetch task leaves why it failed for good.
pub(crate) type FailureSlot = Arc<Mutex<Option<String>>>;

/// Starts verified fetches of one track, telling whoever listens which peer serves it.
#[derive(Clone)]
pub(crate) struct Fetcher {
    pub node: Node,
    pub rt: tokio::runtime::Handle,
    pub on_source: Arc<dyn Fn(PeerId) + Send + Sync>,
    pub on_failovers: Arc<dyn Fn(u64) + Send + Sync>,
}

/// One running fetch: chunks from `next` on.
pub(crate) struct ChunkStream {
    rx: mpsc::Receiver<Vec<u8>>,
    next: u64,
    task: tokio::task::AbortHandle,
}

impl ChunkStream {
    pub(crate) fn abort(&self) {
        self.task.abort();
    }
}

impl Drop for ChunkStream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Fetcher {
    /// Fetches `entry` from the piece that holds `from` on; a failure lands in `failure`.
    pub(crate) fn start(
        &self,
        entry: &CatalogEntry,
        from: u64,
        failure: FailureSlot,
    ) -> ChunkStream {
        let next = piece_start(from.min(entry.size));
        let (tx, rx) = mpsc::channel(READ_AHEAD_CHUNKS);
        let node = self.node.clone();
        let e = entry.clone();
        let on_source = self.on_source.clone();
        let on_failovers = self.on_failovers.clone();
        let _guard = self.rt.enter();
        let task = self.node.inner.tasks.spawn(async move {
            // Hold a sender until the failure is recorded, so the reader never sees the end
            // of the channel before it can tell a failure from the end of the track.
            let keep = tx.clone();
            let r = node
                .fetch_verified_from(&e, next, tx, true, |p| on_source(p))
                .await;
            let report = match &r {
                Ok(report) => report,
                Err(failed) => &failed.report,
            };
            on_failovers(report.failovers);
            if let Err(err) = &r
                && let Ok(mut f) = failure.lock()
            {
                *f = Some(err.msg.clone());
            }
            drop(keep);
        });
        ChunkStream {
            rx,
            next,
            task: task.abort_handle(),
        }
    }
}

/// The decoder's view of a track: `Read + Seek` over verified chunks. A jump requested
/// while a read waits surfaces as `Interrupted`, so the decoder can leave a track whose
/// bytes are slow to come.
pub(crate) struct RangeReader {
    fetcher: Fetcher,
    entry: Arc<CatalogEntry>,
    control: PlaybackControl,
    seen_epoch: u64,
    pos: u64,
    kept: VecDeque<(u64, Vec<u8>)>,
    stream: Option<ChunkStream>,
    failure: FailureSlot,
    bytes: Arc<AtomicU64>,
}

impl RangeReader {
    pub(crate) fn new(
        fetcher: Fetcher,
        entry: CatalogEntry,
        stream: Option<ChunkStream>,
        failure: FailureSlot,
        control: PlaybackControl,
        bytes: Arc<AtomicU64>,
    ) -> Self {
        RangeReader {
            fetcher,
            entry: Arc::new(entry),
            seen_epoch: control.epoch(),
            control,
            pos: 0,
            kept: VecDeque::new(),
            stream,
            failure,
            bytes,
        }
    }

    /// The next chunk of the running stream; None at its end.
    fn receive(&mut self) -> std::io::Result<Option<Vec<u8>>> {
        loop {
            let epoch = self.control.epoch();
            if epoch != self.seen_epoch {
                self.seen_epoch = epoch;
                return Err(std::io::ErrorKind::Interrupted.into());
            }
            let Some(stream) = self.stream.as_mut() else {
                return Ok(None);
            };
            let control = &self.control;
            let rx = &mut stream.rx;
            let got = self.fetcher.rt.block_on(async {
                let woken = control.interrupted();
                tokio::pin!(woken);
                woken.as_mut().enable();
                if control.epoch() != epoch {
                    return None;
                }
                tokio::select! {
                    c = rx.recv() => Some(c),
                    _ = woken => None,
                }
            });
            match got {
                None => continue,
                Some(c) => return Ok(c),
            }
        }
    }
}

impl Read for RangeReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let size = self.entry.size;
        loop {
            if self.pos >= size || buf.is_empty() {
                return Ok(0);
            }
            let pos = self.pos;
            if let Some((off, data)) = self
                .kept
                .iter()
                .find(|(off, d)| pos >= *off && pos < off + d.len() as u64)
            {
                let from = (pos - off) as usize;
                let n = buf.len().min(data.len() - from);
                buf[..n].copy_from_slice(&data[from..from + n]);
                self.pos += n as u64;
                return Ok(n);
            }
            let want = piece_start(pos);
            let next = self.stream.as_ref().map(|s| s.next);
            let reads_through = next.is_some_and(|n| pos >= n && pos - n <= READ_THROUGH);
            if !reads_through {
                if let Some(old) = self.stream.take() {
                    old.abort();
                }
                if let Ok(mut f) = self.failure.lock() {
                    *f = None;
                }
                let stream = self.fetcher.start(&self.entry, want, self.failure.clone());
                self.stream = Some(stream);
            }
            match self.receive()? {
                Some(data) => {
                    self.bytes.fetch_add(data.len() as u64, Ordering::Relaxed);
                    let Some(stream) = self.stream.as_mut() else {
                        continue;
                    };
                    let off = stream.next;
                    stream.next += data.len() as u64;
                    if self.kept.len() >= KEPT_CHUNKS {
                        self.kept.pop_front();
                    }
                    self.kept.push_back((off, data));
                }
                None => {
                    self.stream = None;
                    let failure = self.failure.lock().map(|f| f.clone()).unwrap_or(None);
                    return Err(std::io::Error::other(
                        failure.unwrap_or_else(|| "the source ended early".to_string()),
                    ));
                }
            }
        }
    }
}

impl Seek for RangeReader {
    fn seek(&mut self, to: SeekFrom) -> std::io::Result<u64> {
        let size = self.entry.size as i128;
        let target = match to {
            SeekFrom::Start(p) => p as i128,
            SeekFrom::End(d) => size + i128::from(d),
            SeekFrom::Current(d) => self.pos as i128 + i128::from(d),
        };
        if target < 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "seek before the start",
            ));
        }
        self.pos = u64::try_from(target).unwrap_or(u64::MAX);
        Ok(self.pos)
    }
}

impl TrackBytes for RangeReader {
    fn random_access_len(&self) -> Option<u64> {
        Some(self.entry.size)
    }
}
