//! Verified fetching with failover: every 16 KiB piece is checked against the track's address
//! (through the hash pairs the holder sends from its outboard) before anyone sees it; a source
//! that fails, stalls or lies is dropped and the fetch goes on from the same offset at the
//! next best holder.

use super::Node;
use super::blob_range::{Items, LocalError};
use super::source_choice::{Balance, RateWatch, better_holder, check_interval};
use crate::id::PeerId;
use crate::net::frame;
use crate::net::msg::Msg;
use crate::store::catalog::CatalogEntry;
use crate::store::outboard::{Expect, PAIR_BYTES, RangeVerifier, piece_start};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tracing::{info, warn};

/// Verified bytes handed on at a time (after the first, which go piece by piece).
pub(crate) const HAND_ON: usize = 64 * 1024;

/// A source that sends nothing for this long is treated as failed.
const STALL: Duration = Duration::from_millis(1500);
const ROUNDS: usize = 3;

#[derive(Debug, Clone, Default)]
pub struct FetchReport {
    pub sources: Vec<PeerId>,
    pub failovers: u64,
    pub bytes: u64,
}

/// A fetch that could not finish, with what it used on the way (stats count every source).
#[derive(Debug)]
pub struct FetchFailed {
    pub report: FetchReport,
    pub msg: String,
}

impl std::fmt::Display for FetchFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.msg)
    }
}

impl std::error::Error for FetchFailed {}

/// Why one source could not serve: a copy that is not the track's bytes, or a path that
/// failed (gone, stalled, refused).
#[derive(Debug)]
pub(crate) enum SourceError {
    Corrupt(String),
    Unreachable(String),
    /// Delivering slower than the track plays, while another holder could serve.
    Slow,
    /// Another holder serves at least two fewer transfers: go on there.
    Move(PeerId),
}

impl std::fmt::Display for SourceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SourceError::Corrupt(m) | SourceError::Unreachable(m) => f.write_str(m),
            SourceError::Slow => f.write_str("slower than the track plays"),
            SourceError::Move(p) => write!(f, "moving to the less loaded {}", p.short()),
        }
    }
}

impl<E: Into<anyhow::Error>> From<E> for SourceError {
    fn from(e: E) -> Self {
        SourceError::Unreachable(format!("{:#}", e.into()))
    }
}

/// What a holder answers for a blob it deleted because its copy was corrupt.
pub(crate) const REASON_CORRUPT: &str = "its copy was corrupt and is gone";

/// The stream reset code a holder uses when its own copy fails verification, and the stop
/// code a reader uses when a piece from the holder did.
pub(crate) const RESET_CORRUPT: u32 = 1;

fn unreachable(msg: impl Into<String>) -> SourceError {
    SourceError::Unreachable(msg.into())
}

enum Outcome {
    Done,
    /// The consumer went away (playback stopped): not an error.
    Cancelled,
}

impl Node {
    /// Holders to try, best first: fewest transfers (as each reported, plus ours to it), then
    /// lowest rtt (to the millisecond), then at random, so fetches that start together with
    /// the same view do not all pick one holder.
    pub(crate) fn sources_for(&self, entry: &CatalogEntry) -> Vec<PeerId> {
        let holders = self.holders_of(&entry.hash);
        let alive = self.alive_peers();
        let me = self.id();
        let st = self.state();
        let mut v: Vec<(usize, u128, u32, PeerId)> = holders
            .iter()
            .filter(|p| **p != me && alive.contains(p))
            .map(|p| {
                let rtt = st
                    .links
                    .get(p)
                    .map(|l| l.conn.rtt())
                    .unwrap_or(Duration::MAX);
                let load = st.in_flight.get(p).copied().unwrap_or(0)
                    + st.peer_load.get(p).copied().unwrap_or(0) as usize;
                (load, rtt.as_millis(), rand::random::<u32>(), *p)
            })
            .collect();
        v.sort();
        v.into_iter().map(|(_, _, _, p)| p).collect()
    }

    /// Sends the verified bytes of `entry`, in order and in pieces of up to [`HAND_ON`], into
    /// `tx`. `local_first`: read our own
    /// blob when we hold one.
    pub(crate) async fn fetch_verified(
        &self,
        entry: &CatalogEntry,
        tx: mpsc::Sender<Vec<u8>>,
        local_first: bool,
        on_source: impl Fn(PeerId),
    ) -> Result<FetchReport, FetchFailed> {
        self.fetch_verified_from(entry, 0, tx, local_first, on_source)
            .await
    }

    /// Like [`fetch_verified`](Self::fetch_verified), from the piece that holds byte
    /// `start` on (what a seek needs: nothing before it is fetched).
    pub(crate) async fn fetch_verified_from(
        &self,
        entry: &CatalogEntry,
        start: u64,
        tx: mpsc::Sender<Vec<u8>>,
        local_first: bool,
        on_source: impl Fn(PeerId),
    ) -> Result<FetchReport, FetchFailed> {
        let mut report = FetchReport::default();
        let mut offset = piece_start(start.min(entry.size));
        if entry.size == 0 || offset >= entry.size {
            return Ok(report);
        }
        let mut corrupt: BTreeSet<PeerId> = BTreeSet::new();
        let mut failed: BTreeSet<PeerId> = BTreeSet::new();
        if local_first && self.inner.blobs.has(&entry.hash) {
            on_source(self.id());
            report.sources.push(self.id());
            match self.read_local(entry, &tx, &mut offset).await {
                Ok(Outcome::Done) | Ok(Outcome::Cancelled) => {
                    report.bytes = offset;
                    return Ok(report);
                }
                Err(e) => {
                    warn!("local copy of {} unusable: {e}", entry.name);
                    if matches!(e, SourceError::Corrupt(_)) {
                        corrupt.insert(self.id());
                    }
                }
            }
        }
        let mut balance = Balance::new(entry.size, entry.duration_s);
        let mut planned: Option<PeerId> = None;
        let mut round = 0;
        while round < ROUNDS {
            let mut sources = self.sources_for(entry);
            // A planned move goes first; holders found slow go last.
            sources.sort_by_key(|p| (Some(*p) != planned, balance.slow.contains(p)));
            let mut moved = false;
            for src in sources {
                if report.sources.last() != Some(&src) {
                    if !report.sources.is_empty() && planned != Some(src) {
                        report.failovers += 1;
                    }
                    report.sources.push(src);
                    on_source(src);
                }
                planned = None;
                *self.state().in_flight.entry(src).or_default() += 1;
                let r = self
                    .fetch_from(src, entry, &tx, &mut offset, &mut balance)
                    .await;
                if let Some(n) = self.state().in_flight.get_mut(&src) {
                    *n = n.saturating_sub(1);
                }
                match r {
                    Ok(Outcome::Done) | Ok(Outcome::Cancelled) => {
                        report.bytes = offset;
                        return Ok(report);
                    }
                    Err(SourceError::Move(to)) => {
                        balance.moves += 1;
                        planned = Some(to);
                        moved = true;
                        break;
                    }
                    Err(e) => {
                        info!(
                            "source {} failed at byte {offset}: {e}",
                            self.peer_name(&src)
                        );
                        match e {
                            SourceError::Corrupt(_) => {
                                corrupt.insert(src);
                            }
                            SourceError::Slow => {
                                balance.slow.insert(src);
                            }
                            _ => {
                                failed.insert(src);
                            }
                        }
                    }
                }
            }
            if moved {
                continue;
            }
            round += 1;
            // Every holder left is one whose copy is known bad: another round cannot help.
            // With no holder known yet (a track listed before the news of where it landed),
            // the next round may know one.
            let left = self.sources_for(entry);
            if !left.is_empty() && left.iter().all(|p| corrupt.contains(p)) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        report.bytes = offset;
        // Holders we know of and sources that failed us, less the ones found corrupt.
        let mut holders: BTreeSet<PeerId> = self.holders_of(&entry.hash);
        holders.remove(&self.id());
        holders.extend(failed);
        let unreachable = holders.iter().filter(|p| !corrupt.contains(p)).count();
        Err(FetchFailed {
            report,
            msg: format!(
                "no intact copy of '{}' reachable ({} corrupt, {unreachable} unreachable)",
                entry.name,
                corrupt.len()
            ),
        })
    }

    async fn read_local(
        &self,
        entry: &CatalogEntry,
        tx: &mpsc::Sender<Vec<u8>>,
        offset: &mut u64,
    ) -> Result<Outcome, SourceError> {
        let local = |e: LocalError| match e {
            LocalError::Corrupt(m) => {
                self.drop_blob_if_corrupt(&entry.hash);
                SourceError::Corrupt(m)
            }
            LocalError::Io(m) => SourceError::Unreachable(m),
        };
        let (mut range, size) = self.open_range(&entry.hash, *offset).await.map_err(local)?;
        if size != entry.size {
            return Err(SourceError::Corrupt(format!(
                "our copy has {size} bytes, the catalog says {}",
                entry.size
            )));
        }
        loop {
            let (out, more) = range
                .next_batch(HAND_ON, Items::PiecesOnly)
                .await
                .map_err(local)?;
            if !out.is_empty() {
                *offset += out.len() as u64;
                if tx.send(out).await.is_err() {
                    return Ok(Outcome::Cancelled);
                }
            }
            if !more {
                return Ok(Outcome::Done);
            }
        }
    }

    async fn fetch_from(
        &self,
        src: PeerId,
        entry: &CatalogEntry,
        tx: &mpsc::Sender<Vec<u8>>,
        offset: &mut u64,
        balance: &mut Balance,
    ) -> Result<Outcome, SourceError> {
        let conn = self.link_conn(&src)?;
        let (mut send, mut recv) = tokio::time::timeout(STALL, conn.open_bi())
            .await
            .map_err(|_| unreachable(format!("no stream within {STALL:?}")))??;
        frame::write_frame(
            &mut send,
            &Msg::Fetch {
                hash: entry.hash,
                offset: *offset,
            },
        )
        .await?;
        let _ = send.finish();
        match tokio::time::timeout(STALL * 2, frame::read_frame(&mut recv)).await {
            Ok(Ok(Msg::FetchOk { size })) if size == entry.size => {}
            Ok(Ok(Msg::FetchOk { size })) => {
                let _ = recv.stop(RESET_CORRUPT.into());
                return Err(SourceError::Corrupt(format!(
                    "holder has {size} bytes, catalog says {}",
                    entry.size
                )));
            }
            Ok(Ok(Msg::Failed { reason })) if reason.contains(REASON_CORRUPT) => {
                return Err(SourceError::Corrupt(reason));
            }
            Ok(Ok(Msg::Failed { reason })) => {
                return Err(unreachable(format!("holder refused: {reason}")));
            }
            Ok(Ok(other)) => return Err(unreachable(format!("unexpected {}", other.name()))),
            Ok(Err(e)) => {
                // A holder that finds its copy corrupt resets the stream, which can reach us
                // before its FetchOk does.
                let reset = tokio::time::timeout(Duration::from_millis(200), recv.received_reset());
                if let Ok(Ok(Some(code))) = reset.await
                    && code.into_inner() == u64::from(RESET_CORRUPT)
                {
                    return Err(SourceError::Corrupt(
                        "the holder found its copy corrupt".into(),
                    ));
                }
                return Err(unreachable(e.to_string()));
            }
            Err(_) => return Err(unreachable(format!("no answer within {:?}", STALL * 2))),
        }
        let mut verifier = RangeVerifier::new(entry.hash, entry.size, *offset);
        let started_at = *offset;
        let mut rate = RateWatch::default();
        let mut out = Vec::with_capacity(HAND_ON);
        let mut pair = [0u8; PAIR_BYTES];
        while let Some(item) = verifier.expect() {
            let waiting = Instant::now();
            let checked = match item {
                Expect::Parent { .. } => {
                    read_exact_within(&mut recv, &mut pair).await?;
                    verifier.check(&pair)
                }
                Expect::Piece { len, .. } => {
                    let mark = out.len();
                    out.resize(mark + len, 0);
                    read_exact_within(&mut recv, &mut out[mark..]).await?;
                    rate.add(len, waiting.elapsed());
                    verifier.check(&out[mark..])
                }
            };
            if let Err(m) = checked {
                // The holder does not hash what it sends (we do): this code tells it to check.
                let _ = recv.stop(RESET_CORRUPT.into());
                return Err(SourceError::Corrupt(m.0));
            }
            // The first 64 KiB go on piece by piece: on an 80 KB/s uplink the decoder starts
            // after 0.2 s instead of 0.8 s. Then in bigger steps, fewer hand-offs per byte.
            let hand_on = if *offset - started_at < HAND_ON as u64 {
                1
            } else {
                HAND_ON
            };
            let last = verifier.expect().is_none();
            let hand_on_now = out.len() >= hand_on || (last && !out.is_empty());
            if !hand_on_now {
                continue;
            }
            *offset += out.len() as u64;
            if tx
                .send(std::mem::replace(&mut out, Vec::with_capacity(HAND_ON)))
                .await
                .is_err()
            {
                let _ = recv.stop(0u32.into());
                return Ok(Outcome::Cancelled);
            }
            if *offset < entry.size
                && Instant::now() >= balance.next_check
                && let Some(why) = self.consider_move(src, entry, balance, &rate).await
            {
                let _ = recv.stop(0u32.into());
                return Err(why);
            }
        }
        if *offset != entry.size {
            return Err(SourceError::Corrupt(format!(
                "the range ended at byte {}, the track has {}",
                *offset, entry.size
            )));
        }
        Ok(Outcome::Done)
    }

    /// Whether to leave `src` now: for being slower than the track plays, or for a holder
    /// serving at least two fewer transfers. Only when another holder could take over.
    async fn consider_move(
        &self,
        src: PeerId,
        entry: &CatalogEntry,
        balance: &mut Balance,
        rate: &RateWatch,
    ) -> Option<SourceError> {
        balance.next_check = Instant::now() + check_interval();
        let others: Vec<PeerId> = self
            .other_holders(&entry.hash, src)
            .into_iter()
            .filter(|p| !balance.slow.contains(p))
            .collect();
        if others.is_empty() {
            return None;
        }
        if rate.too_slow(balance.bytes_per_s) {
            return Some(SourceError::Slow);
        }
        if !balance.may_move() {
            return None;
        }
        let mut ask = others;
        ask.push(src);
        let loads = self.probe_loads(&ask).await;
        let current = loads.iter().find(|(p, _)| *p == src)?.1;
        better_holder(src, current, &loads, &balance.slow).map(SourceError::Move)
    }
}

/// Fills `buf` from the stream. A stall is no progress at all, not a slow read: a friend on a
/// thin uplink still counts as a source.
async fn read_exact_within(
    recv: &mut quinn::RecvStream,
    buf: &mut [u8],
) -> Result<(), SourceError> {
    let mut filled = 0;
    while filled < buf.len() {
        match tokio::time::timeout(STALL, recv.read(&mut buf[filled..])).await {
            Ok(Ok(Some(n))) => filled += n,
            Ok(Ok(None)) => return Err(unreachable("source ended the stream early")),
            Ok(Err(quinn::ReadError::Reset(code)))
                if code.into_inner() == u64::from(RESET_CORRUPT) =>
            {
                return Err(SourceError::Corrupt(
                    "the holder found its copy corrupt".into(),
                ));
            }
            Ok(Err(e)) => return Err(unreachable(e.to_string())),
            Err(_) => return Err(unreachable(format!("stalled for {STALL:?}"))),
        }
    }
    Ok(())
}
