//! The scrub: a slow background pass that re-reads every stored blob and checks it against
//! its hash, so a copy that rotted on disk is found (and dropped, so repair copies a good one
//! here again) before anyone needs it, not when a friend's stream hits it.

use super::Node;
use crate::store::blobs::Hash;
use std::io::Read;
use std::time::Duration;

/// Bytes per second the scrub reads: BLAKE3 at this rate is well under 1% of a core.
const SCRUB_RATE: u64 = 8 << 20;
const PIECE: usize = 1 << 20;
/// Pause between passes, and when nothing is held.
const IDLE: Duration = Duration::from_secs(10);
/// At least this long per blob: opening and reading a file costs something however small it
/// is, and 100,000 tiny blobs checked back to back would keep a core busy.
const PER_BLOB: Duration = Duration::from_millis(20);

impl Node {
    pub(crate) fn spawn_scrub(&self) {
        let node = self.clone();
        self.spawn_task(async move {
            let mut after: Option<Hash> = None;
            loop {
                let next = {
                    let st = node.state();
                    match after {
                        Some(h) => st
                            .held
                            .range((std::ops::Bound::Excluded(h), std::ops::Bound::Unbounded))
                            .next()
                            .copied(),
                        None => st.held.iter().next().copied(),
                    }
                };
                let Some(hash) = next else {
                    after = None;
                    tokio::select! {
                        _ = node.stopped() => return,
                        _ = tokio::time::sleep(IDLE) => continue,
                    }
                };
                after = Some(hash);
                let started = tokio::time::Instant::now();
                let path = node.inner.blobs.path(&hash);
                let stop = node.inner.shutdown.clone();
                let verdict =
                    tokio::task::spawn_blocking(move || check_paced(&path, &hash, &stop)).await;
                if let Ok(Some(false)) = verdict
                    && node.state().held.contains(&hash)
                {
                    node.drop_corrupt_blob(&hash);
                }
                tokio::select! {
                    _ = node.stopped() => return,
                    _ = tokio::time::sleep_until(started + PER_BLOB) => {}
                }
            }
        });
    }
}

/// Reads the blob at `SCRUB_RATE` and tells whether it matches `hash` (None: could not
/// tell — gone meanwhile, or the peer is stopping).
fn check_paced(
    path: &std::path::Path,
    hash: &Hash,
    stop: &tokio_util::sync::CancellationToken,
) -> Option<bool> {
    let mut f = std::fs::File::open(path).ok()?;
    let mut hasher = blake3::Hasher::new();
    // Sized to the blob: zeroing a 1 MiB buffer for each of 50 tiny blobs a second was
    // most of an idle peer's CPU.
    let len = f.metadata().ok()?.len();
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
    Some(hasher.finalize().as_bytes() == hash)
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
        assert_eq!(check_paced(&p, &h, &stop), Some(true));
        std::fs::write(&p, b"good bytez").unwrap();
        assert_eq!(check_paced(&p, &h, &stop), Some(false));
        std::fs::remove_file(&p).unwrap();
        assert_eq!(check_paced(&p, &h, &stop), None);
    }
}
