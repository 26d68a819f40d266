//! Data streams, serving side and push side: chain-replicated stores and verified fetches.
//! File bytes travel as raw stream data after one request frame, never inside frames.

use super::Node;
use super::blob_range::{Items, LocalError};
use crate::id::PeerId;
use crate::net::frame;
use crate::net::msg::Msg;
use crate::store::blob_sink::BlobSink;
use crate::store::catalog::{CatalogEntry, validate_blob_entry};
use crate::store::outboard::PIECE_BYTES;
use anyhow::{Result, anyhow, bail};
use std::path::Path;
use std::time::Duration;
use tokio::io::AsyncReadExt;
use tracing::{debug, warn};

const MAX_CHAIN: usize = 16;
/// Uploads under `--upload-limit` go out in pieces this big, so a slow pace is steady
/// rather than a long silence then a burst.
const PACE_PIECE: usize = 8 * 1024;
/// A transfer that makes no progress for this long is given up: a stalled peer must not hold
/// an upload slot, a temp file or a `down` forever.
const IDLE: Duration = Duration::from_secs(10);
/// How a refusal for being busy ends: the refusing peer is not at fault.
pub(crate) const TRY_AGAIN_LATER: &str = "try again later";

async fn with_idle<T, E: std::fmt::Display>(
    f: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T> {
    match tokio::time::timeout(IDLE, f).await {
        Ok(r) => r.map_err(|e| anyhow!("{e}")),
        Err(_) => bail!("no progress for {IDLE:?}"),
    }
}
const IO_BUF: usize = 256 * 1024;
/// How long a reader's claim that a blob is corrupt makes us ignore the next ones for it.
const CLAIM_RECHECK_AFTER: Duration = Duration::from_secs(60);
/// Bytes of encoding gathered before a write to the stream.
const SEND_BATCH: usize = 256 * 1024;
/// Bytes sent piece by piece at the start of a fetch.
const FIRST_PIECES_UNBATCHED: u64 = 64 * 1024;

/// The reader stopped the stream, with its code.
#[derive(Debug)]
struct ReaderStopped(quinn::VarInt);

impl std::fmt::Display for ReaderStopped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the reader stopped the stream (code {})", self.0)
    }
}

impl std::error::Error for ReaderStopped {}

impl Node {
    /// A request opening a data stream. Errors go back to the requester as `Failed`; a
    /// request that breaks the protocol costs the peer its connection.
    pub(crate) async fn handle_stream(
        &self,
        peer: PeerId,
        conn: quinn::Connection,
        msg: Msg,
        mut send: quinn::SendStream,
        recv: quinn::RecvStream,
    ) {
        let result = match msg {
            Msg::Fetch { hash, offset } => self.serve_fetch(peer, hash, offset, &mut send).await,
            Msg::Store { entry, chain } => {
                self.serve_store(peer, *entry, chain, &mut send, recv).await
            }
            Msg::CatalogCheck { entry } => self.serve_catalog_check(peer, *entry, &mut send).await,
            Msg::LoadAsk => {
                let serving = self.serving_now();
                let _ = frame::write_frame(&mut send, &Msg::LoadIs { serving }).await;
                let _ = send.finish();
                return;
            }
            Msg::RelayOpen { target } => {
                // The tunnel owns the streams from here on.
                if let Err(e) = self.serve_relay_open(peer, target, send, recv).await {
                    debug!("relay for {} refused: {e:#}", peer.short());
                }
                return;
            }
            Msg::RelayIncoming { from } => {
                if let Err(e) = self.serve_relay_incoming(peer, from, send, recv).await {
                    debug!("tunnel from {} refused: {e:#}", peer.short());
                }
                return;
            }
            other => {
                let why = format!("unexpected {} opening a stream", other.name());
                self.protocol_violation(peer, &conn, &why);
                return;
            }
        };
        if let Err(e) = result {
            debug!("stream from {} failed: {e:#}", peer.short());
            let _ = frame::write_frame(
                &mut send,
                &Msg::Failed {
                    reason: format!("{e:#}"),
                },
            )
            .await;
            let _ = send.finish();
        }
    }

    /// Sends our copy's range encoding from `offset` (a piece start) to the end: each piece
    /// after the hash pairs that check it. The reader checks every piece, so we hash only the
    /// last few MiB (blob_range's `READER_REPORTS_BEFORE_END`); a reader that finds a rotten
    /// one before those says so when it stops the stream, and we check our whole copy then.
    async fn serve_fetch(
        &self,
        peer: PeerId,
        hash: [u8; 32],
        offset: u64,
        send: &mut quinn::SendStream,
    ) -> Result<()> {
        if !offset.is_multiple_of(PIECE_BYTES) {
            bail!("offset {offset} is not at a piece boundary");
        }
        let _slot = self
            .inner
            .upload_slots
            .acquire(peer)
            .await
            .ok_or_else(|| anyhow!("shutting down"))?;
        let _serving = super::source_choice::Serving::start(&self.inner.serving);
        let (mut range, size) = match self.open_range(&hash, offset).await {
            Ok(r) => r,
            Err(_) if self.state().corrupt_dropped.contains(&hash) => {
                bail!("{}", super::fetch::REASON_CORRUPT)
            }
            Err(LocalError::Corrupt(why)) => {
                self.serving_corrupt(&hash, &why, send);
                bail!("corrupt blob");
            }
            Err(LocalError::Io(_)) => bail!("blob not held here"),
        };
        if offset > size {
            bail!("offset {offset} past the end ({size})");
        }
        frame::write_frame(send, &Msg::FetchOk { size }).await?;
        let mut sent = 0u64;
        loop {
            // The first pieces go out one by one (a stream on a thin uplink starts after
            // one); then in batches, fewer writes per byte.
            let want = if sent < FIRST_PIECES_UNBATCHED {
                1
            } else {
                SEND_BATCH
            };
            // Handed to quinn as is, not copied into its send buffer.
            let (out, more) = match range.next_batch(want, Items::PairsAndPieces).await {
                Ok(batch) => batch,
                Err(LocalError::Corrupt(why)) => {
                    self.serving_corrupt(&hash, &why, send);
                    bail!("corrupt blob");
                }
                Err(LocalError::Io(e)) => {
                    let _ = send.reset(2u32.into());
                    bail!("{e}");
                }
            };
            if !out.is_empty() {
                sent += out.len() as u64;
                if let Err(e) = self.send_paced(send, bytes::Bytes::from(out)).await {
                    if let Some(ReaderStopped(code)) = e.downcast_ref::<ReaderStopped>() {
                        self.reader_stopped(&hash, *code);
                    }
                    return Err(e);
                }
            }
            if !more {
                break;
            }
        }
        send.finish()?;
        // Wait for the reader to take everything before the slot frees up.
        if let Ok(Ok(Some(code))) =
            tokio::time::timeout(Duration::from_secs(30), send.stopped()).await
        {
            self.reader_stopped(&hash, code);
        }
        Ok(())
    }

    /// A reader that found one of our pieces rotten stops the stream saying so: we check the
    /// whole copy then, not taking its word, at the scrub's pace, one blob at a time and each
    /// at most once a minute; so a peer crying corrupt cannot keep our disk or CPU busy.
    fn reader_stopped(&self, hash: &[u8; 32], code: quinn::VarInt) {
        if code.into_inner() != u64::from(super::fetch::RESET_CORRUPT) {
            return;
        }
        let now = std::time::Instant::now();
        {
            let mut st = self.state();
            st.corrupt_claims
                .retain(|_, at| now.duration_since(*at) < CLAIM_RECHECK_AFTER);
            if st.claim_check_running || st.corrupt_claims.contains_key(hash) {
                return;
            }
            st.corrupt_claims.insert(*hash, now);
            st.claim_check_running = true;
        }
        debug!(
            "a reader found {} corrupt; checking our copy",
            self.blob_label(hash)
        );
        let node = self.clone();
        let hash = *hash;
        self.spawn_task(async move {
            let n = node.clone();
            let rotten = tokio::task::spawn_blocking(move || {
                let path = n.inner.blobs.path(&hash);
                super::scrub::check_paced(&path, &hash, &n.inner.shutdown)
                    .is_some_and(|v| v.is_err())
            })
            .await
            .unwrap_or(false);
            // Not if it was removed meanwhile: it was not corrupt, only gone.
            if rotten && node.state().held.contains(&hash) {
                node.drop_corrupt_blob(&hash);
            }
            node.state().claim_check_running = false;
        });
    }

    fn serving_corrupt(&self, hash: &[u8; 32], why: &str, send: &mut quinn::SendStream) {
        warn!("our copy of {} is corrupt: {why}", self.blob_label(hash));
        self.drop_blob_if_corrupt(hash);
        let _ = send.reset(super::fetch::RESET_CORRUPT.into());
    }

    /// Unpaced, the bytes go out in one write; paced, in small steady pieces.
    async fn send_paced(
        &self,
        send: &mut quinn::SendStream,
        mut bytes: bytes::Bytes,
    ) -> Result<()> {
        let piece_len = if self.inner.upload_pacer.is_some() {
            PACE_PIECE
        } else {
            bytes.len().max(1)
        };
        while !bytes.is_empty() {
            let piece = bytes.split_to(piece_len.min(bytes.len()));
            if let Some(p) = &self.inner.upload_pacer {
                p.take(piece.len()).await;
            }
            match tokio::time::timeout(IDLE, send.write_chunk(piece)).await {
                Ok(Ok(())) => {}
                Ok(Err(quinn::WriteError::Stopped(code))) => return Err(ReaderStopped(code).into()),
                Ok(Err(e)) => {
                    let _ = send.reset(2u32.into());
                    return Err(e.into());
                }
                Err(_) => {
                    let _ = send.reset(2u32.into());
                    bail!("no progress for {IDLE:?}");
                }
            }
        }
        Ok(())
    }

    async fn serve_store(
        &self,
        from: PeerId,
        entry: CatalogEntry,
        chain: Vec<PeerId>,
        send: &mut quinn::SendStream,
        mut recv: quinn::RecvStream,
    ) -> Result<()> {
        validate_blob_entry(&entry).map_err(|e| anyhow!(e))?;
        let Some(_slot) = self.inner.store_slots.try_acquire(from) else {
            bail!("too many uploads at once; {TRY_AGAIN_LATER}");
        };
        let me = self.id();
        if chain.len() > MAX_CHAIN || chain.contains(&me) || chain.contains(&from) {
            bail!("invalid replication chain");
        }
        // Pass the bytes on while we receive them: the uploader sends the file once.
        let mut downstream = None;
        let mut failed: Vec<(PeerId, String)> = Vec::new();
        if let Some(next) = chain.first().copied() {
            match self.open_store(next, &entry, chain[1..].to_vec()).await {
                Ok(s) => downstream = Some((next, s)),
                Err(e) => {
                    failed.extend(chain.iter().map(|p| {
                        (
                            *p,
                            format!("chain broken at {}: {e:#}", self.peer_name(&next)),
                        )
                    }));
                }
            }
        }
        let mut local_err: Option<String> = None;
        let mut writer = if self.inner.blobs.has(&entry.hash) {
            None
        } else if self.is_disk_full() {
            local_err = Some("disk full".to_string());
            None
        } else {
            match self.inner.blobs.begin(&entry.hash, entry.size) {
                Ok(w) => Some(BlobSink::new(w)),
                Err(e) => {
                    local_err = Some(format!("{e:#}"));
                    None
                }
            }
        };
        // The writer builds the outboard from these bytes and checks its root, the blob's
        // address, before the blob is stored; each holder down the chain checks its own.
        let mut remaining = entry.size;
        while remaining > 0 {
            let want = (remaining as usize).min(IO_BUF);
            let piece = match tokio::time::timeout(IDLE, recv.read_chunk(want, true)).await {
                Ok(r) => match r? {
                    Some(c) => c.bytes,
                    None => bail!("upload ended {remaining} bytes early"),
                },
                Err(_) => bail!("upload stalled for {IDLE:?}"),
            };
            let n = piece.len();
            if let Some((next, (s, _))) = downstream.as_mut()
                && let Err(e) = with_idle(s.write_chunk(piece.clone())).await
            {
                let next = *next;
                failed.extend(chain.iter().map(|p| {
                    (
                        *p,
                        format!("forwarding via {} failed: {e}", self.peer_name(&next)),
                    )
                }));
                downstream = None;
            }
            if let Some(w) = writer.as_mut()
                && let Err(e) = w.write(piece).await
            {
                self.note_write_error(&e);
                local_err = Some(format!("{e:#}"));
                writer = None;
            }
            remaining -= n as u64;
        }
        if let Some(w) = writer {
            if let Err(e) = w.commit().await {
                self.note_write_error(&e);
                local_err = Some(format!("{e:#}"));
            }
            if local_err.is_none() {
                self.note_held(&entry);
            }
        } else if local_err.is_none() {
            self.note_held(&entry);
        }
        let mut stored = Vec::new();
        match local_err {
            None => stored.push(me),
            Some(e) => {
                warn!("could not store {}: {e}", entry.name);
                failed.push((me, e));
            }
        }
        if let Some((next, (mut s, mut r))) = downstream {
            let _ = s.finish();
            match tokio::time::timeout(Duration::from_secs(120), frame::read_frame(&mut r)).await {
                Ok(Ok(Msg::StoreResult {
                    stored: st,
                    failed: fl,
                })) => {
                    stored.extend(st.into_iter().filter(|p| chain.contains(p)));
                    failed.extend(fl.into_iter().filter(|(p, _)| chain.contains(p)));
                }
                other => {
                    let why = match other {
                        Ok(Ok(Msg::Failed { reason })) => reason,
                        _ => "no result".to_string(),
                    };
                    failed.extend(
                        chain
                            .iter()
                            .map(|p| (*p, format!("via {}: {why}", self.peer_name(&next)))),
                    );
                }
            }
        }
        frame::write_frame(send, &Msg::StoreResult { stored, failed }).await?;
        send.finish()?;
        Ok(())
    }

    pub(crate) fn link_conn(&self, peer: &PeerId) -> Result<quinn::Connection> {
        self.state()
            .links
            .get(peer)
            .filter(|l| l.conn.close_reason().is_none())
            .map(|l| l.conn.clone())
            .ok_or_else(|| anyhow!("not connected to {}", peer.short()))
    }

    async fn open_store(
        &self,
        to: PeerId,
        entry: &CatalogEntry,
        chain: Vec<PeerId>,
    ) -> Result<(quinn::SendStream, quinn::RecvStream)> {
        let conn = self.link_conn(&to)?;
        let (mut s, r) = conn.open_bi().await?;
        frame::write_frame(
            &mut s,
            &Msg::Store {
                entry: Box::new(entry.clone()),
                chain,
            },
        )
        .await?;
        Ok((s, r))
    }

    /// Upload `file` to chain[0], which passes it down the rest of the chain.
    pub(crate) async fn send_chain(
        &self,
        entry: &CatalogEntry,
        chain: Vec<PeerId>,
        file: &Path,
        progress: &(impl Fn(u64, u64) + Send + Sync),
    ) -> (Vec<PeerId>, Vec<(PeerId, String)>) {
        match tokio::fs::File::open(file).await {
            Ok(f) => self.send_chain_from(entry, chain, f, progress).await,
            Err(e) => (
                Vec::new(),
                chain.iter().map(|p| (*p, e.to_string())).collect(),
            ),
        }
    }

    /// Sends `entry.size` bytes read from `source` down a replication chain.
    pub(crate) async fn send_chain_from(
        &self,
        entry: &CatalogEntry,
        chain: Vec<PeerId>,
        mut source: impl tokio::io::AsyncRead + Unpin,
        progress: &(impl Fn(u64, u64) + Send + Sync),
    ) -> (Vec<PeerId>, Vec<(PeerId, String)>) {
        let all_failed = |why: String| -> (Vec<PeerId>, Vec<(PeerId, String)>) {
            (
                Vec::new(),
                chain.iter().map(|p| (*p, why.clone())).collect(),
            )
        };
        let Some(first) = chain.first().copied() else {
            return (Vec::new(), Vec::new());
        };
        let (mut s, mut r) = match self.open_store(first, entry, chain[1..].to_vec()).await {
            Ok(x) => x,
            Err(e) => return all_failed(format!("{e:#}")),
        };
        let mut buf = bytes::BytesMut::new();
        let mut sent = 0u64;
        loop {
            // Each read gets its own buffer, handed to quinn without a copy.
            buf.reserve(IO_BUF);
            let n = match source.read_buf(&mut buf).await {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) => return all_failed(e.to_string()),
            };
            if let Err(e) = with_idle(s.write_chunk(buf.split().freeze())).await {
                return all_failed(format!("upload failed: {e}"));
            }
            sent += n as u64;
            progress(sent, entry.size);
        }
        let _ = s.finish();
        // Holders down the chain answer after their own downstream (120 s at most each).
        let answer =
            tokio::time::timeout(Duration::from_secs(150), frame::read_frame(&mut r)).await;
        let Ok(answer) = answer else {
            return all_failed("no answer from the chain".into());
        };
        match answer {
            Ok(Msg::StoreResult { stored, failed }) => (stored, failed),
            Ok(Msg::Failed { reason }) => all_failed(reason),
            Ok(other) => all_failed(format!("unexpected {}", other.name())),
            Err(e) => all_failed(e.to_string()),
        }
    }
}
