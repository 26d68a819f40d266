//! The scrub: a slow background pass that re-reads every stored blob and checks it against
//! its hash, so a copy that rotted on disk is found (and dropped, so repair copies a good one
//! here again) before anyone needs it, not when a friend's stream hits it. It rebuilds the
//! blob's outboard on the way and puts back one that is missing (a data dir of an older
//! release) or rotten, and at the end of each pass removes outboards whose blob is gone.

use super::Node;
use crate::store::blobs::Hash;
use crate::store::outboard::OutboardBuilder;
use std::io::Read;
use std::time::Duration;

/// Bytes per second the scrub reads: BLAKE3 at this rate is well under 1% of a core.
const SCRUB_RATE: u64 = 8 << 20;
const PIECE: usize = 1 << 20;
/// An outboard without its blob is removed at the end of a pass once it is this old (a
/// commit renames its outboard a moment before its blob).
const ORPHAN_GRACE: Duration = Duration::from_secs(600);
/// At least this long per blob: opening and reading a file costs something however small it
/// is, and 100,000 tiny blobs checked back to back would keep a core busy.
const PER_BLOB: Duration = Duration::from_millis(20);
/// Blobs checked per wake-up of the blocking thread: one hop to it and back per blob, 50
/// times a second, cost an idle peer more than the reading did.
const BATCH: usize = 50;

impl Node {
    pub(crate) fn spawn_scrub(&self) {
        let node = self.clone();
        self.spawn_task(async move {
            let mut after: Option<Hash> = None;
            loop {
                let batch: Vec<Hash> = {
                    let st = node.state();
                    let from = match after {
                        Some(h) => std::ops::Bound::Excluded(h),
                        None => std::ops::Bound::Unbounded,
                    };
                    st.held
                        .range((from, std::ops::Bound::Unbounded))
                        .take(BATCH)
                        .copied()
                        .collect()
                };
                let Some(last) = batch.last().copied() else {
                    after = None;
                    let n = node.clone();
                    let orphans = tokio::task::spawn_blocking(move || {
                        n.inner.blobs.remove_orphan_outboards(ORPHAN_GRACE)
                    })
                    .await
                    .unwrap_or(0);
                    if orphans > 0 {
                        tracing::info!("removed {orphans} outboards whose blob was gone");
                    }
                    tokio::select! {
                        _ = node.stopped() => return,
                        _ = tokio::time::sleep(node.inner.cfg.scrub_pause) => continue,
                    }
                };
                after = Some(last);
                let started = tokio::time::Instant::now();
                let floor = PER_BLOB * batch.len() as u32;
                let stop = node.inner.shutdown.clone();
                let n = node.clone();
                let rotten = tokio::task::spawn_blocking(move || {
                    let mut rotten = Vec::new();
                    for hash in batch {
                        let verdict = check_paced(&n.inner.blobs.path(&hash), &hash, &stop);
                        match verdict {
                            Some(Ok((size, outboard)))
                                if n.inner.blobs.read_outboard(&hash, size).as_ref()
                                    != Some(&outboard)
                                    && n.inner.blobs.put_outboard(&hash, &outboard).is_ok() =>
                            {
                                tracing::info!("outboard of {} rebuilt", n.blob_label(&hash));
                            }
                            Some(Ok(_)) => {}
                            Some(Err(())) => rotten.push(hash),
                            None if stop.is_cancelled() => break,
                            None => {}
                        }
                    }
                    rotten
                })
                .await
                .unwrap_or_default();
                for hash in rotten {
                    if node.state().held.contains(&hash) {
                        node.drop_corrupt_blob(&hash);
                    }
                }
                tokio::select! {
                    _ = node.stopped() => return,
                    _ = tokio::time::sleep_until(started + floor) => {}
                }
            }
        });
    }
}

impl Node {
    /// Builds the outboards a data dir of an older release lacks, in the background, one blob
    /// after the other on one blocking thread; a blob asked for before its turn gets its
    /// outboard then. Run at the start that converted the catalog.
    pub(crate) fn spawn_outboard_migration(&self) {
        let node = self.clone();
        let held: Vec<Hash> = self.state().held.iter().copied().collect();
        self.spawn_task(async move {
            let n = node.clone();
            let built = tokio::task::spawn_blocking(move || {
                let mut built = 0usize;
                for hash in held {
                    if n.inner.shutdown.is_cancelled() {
                        break;
                    }
                    let Ok(meta) = std::fs::metadata(n.inner.blobs.path(&hash)) else {
                        continue;
                    };
                    // A blob that does not match its hash is left to the scrub or a reader.
                    if n.inner.blobs.read_outboard(&hash, meta.len()).is_none()
                        && let Ok(Some(_)) = n.inner.blobs.build_outboard(&hash)
                    {
                        built += 1;
                    }
                }
                built
            })
            .await
            .unwrap_or(0);
            if built > 0 {
                tracing::info!("outboards built for {built} blobs stored by an older release");
            }
        });
    }
}

/// What a scrub found in a blob that could be read: its size and outboard when it matches its
/// hash, else `Err`.
type Verdict = Result<(u64, Vec<u8>), ()>;

/// Reads the blob at `SCRUB_RATE` and tells whether it matches `hash` (None: could not
/// tell — gone meanwhile, or the peer is stopping).
pub(super) fn check_paced(
    path: &std::path::Path,
    hash: &Hash,
    stop: &tokio_util::sync::CancellationToken,
) -> Option<Verdict> {
    let mut f = std::fs::File::open(path).ok()?;
    // Sized to the blob: zeroing a 1 MiB buffer for each of 50 tiny blobs a second was
    // most of an idle peer's CPU.
    let len = f.metadata().ok()?.len();
    let mut hasher = OutboardBuilder::new(len);
    let mut buf = vec![0u8; (len as usize).clamp(1, PIECE)];
    let per_piece = Duration::from_secs_f64(PIECE as f64 / SCRUB_RATE as f64);
    loop {
        if stop.is_cancelled() {
            return None;
        }
        let t0 = std::time::Instant::now();
        let n = f.read(&mut buf).ok()?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        if let Some(rest) = per_piece.checked_sub(t0.elapsed()) {
            std::thread::sleep(rest.mul_f64(n as f64 / PIECE as f64));
        }
    }
    Some(match hasher.finish() {
        Some((root, outboard)) if root == *hash => Ok((len, outboard)),
        _ => Err(()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rotten_blob_is_told_from_a_good_one() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("b");
        std::fs::write(&p, b"good bytes").unwrap();
        let h = *blake3::hash(b"good bytes").as_bytes();
        let stop = tokio_util::sync::CancellationToken::new();
        assert_eq!(check_paced(&p, &h, &stop), Some(Ok((10, Vec::new()))));
        std::fs::write(&p, b"good bytez").unwrap();
        assert_eq!(check_paced(&p, &h, &stop), Some(Err(())));
        let big: Vec<u8> = (0..70_000u32).map(|i| (i % 249) as u8).collect();
        std::fs::write(&p, &big).unwrap();
        let (h, outboard) = crate::store::outboard::outboard_of(&big);
        assert_eq!(check_paced(&p, &h, &stop), Some(Ok((70_000, outboard))));
        std::fs::remove_file(&p).unwrap();
        assert_eq!(check_paced(&p, &h, &stop), None);
    }
}
