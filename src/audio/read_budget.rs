//! A bound on the bytes the demuxer may read for one step: the probe, or one packet.
//!
//! symphonia keeps what it reads while probing (tags and every embedded picture, whatever
//! `MetadataOptions` say in 0.6) and allocates a packet's claimed size before filling it. A
//! FLAC of 40 picture blocks of 16 MiB held 660 MB while it played; a peer's copy of a track
//! is read that way by every listener. Counting the bytes read per step bounds both: what is
//! kept can be no more than what was read.

use std::io::{self, Read, Seek, SeekFrom};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use symphonia::core::io::MediaSource;

/// Bytes the probe may read: tags, pictures and indexes before the first packet. A real
/// album's cover scan is a few MiB.
pub(crate) const PROBE_BYTES: u64 = 64 << 20;

/// Bytes one packet may take to read. The largest real frame (FLAC, 32 channels of 65,535
/// 32-bit samples) is 8 MiB; the rest is room for a demuxer to scan past damage to the next
/// frame (which keeps nothing).
pub(crate) const PACKET_BYTES: u64 = 64 << 20;

/// The budget shared between the reader (spends) and the demuxer's owner (refills per step).
#[derive(Clone, Default)]
pub(crate) struct ReadBudget {
    left: Arc<AtomicU64>,
    overspent: Arc<AtomicBool>,
}

impl ReadBudget {
    /// Allows `bytes` more reads until the next refill.
    pub(crate) fn refill(&self, bytes: u64) {
        self.left.store(bytes, Ordering::Relaxed);
        self.overspent.store(false, Ordering::Relaxed);
    }

    /// Whether a read was refused for want of budget since the last refill.
    pub(crate) fn overspent(&self) -> bool {
        self.overspent.load(Ordering::Relaxed)
    }

    /// `source`, its reads counted against this budget.
    pub(crate) fn wrap<'s>(&self, source: Box<dyn MediaSource + 's>) -> BudgetedSource<'s> {
        BudgetedSource {
            inner: source,
            budget: self.clone(),
        }
    }
}

/// A source that refuses to read past its budget.
pub(crate) struct BudgetedSource<'s> {
    inner: Box<dyn MediaSource + 's>,
    budget: ReadBudget,
}

impl Read for BudgetedSource<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let left = self.budget.left.load(Ordering::Relaxed);
        if left == 0 {
            self.budget.overspent.store(true, Ordering::Relaxed);
            return Err(io::Error::other("over the read bound of one demuxer step"));
        }
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        self.budget
            .left
            .store(left.saturating_sub(n as u64), Ordering::Relaxed);
        Ok(n)
    }
}

impl Seek for BudgetedSource<'_> {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        self.inner.seek(pos)
    }
}

impl MediaSource for BudgetedSource<'_> {
    fn is_seekable(&self) -> bool {
        self.inner.is_seekable()
    }

    fn byte_len(&self) -> Option<u64> {
        self.inner.byte_len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    #[test]
    fn reads_stop_at_the_budget_and_resume_after_a_refill() {
        let budget = ReadBudget::default();
        let mut src = budget.wrap(Box::new(Cursor::new(vec![7u8; 100])));
        budget.refill(30);
        let mut buf = [0u8; 64];
        assert_eq!(src.read(&mut buf).unwrap(), 30);
        assert!(src.read(&mut buf).is_err());
        assert!(budget.overspent());
        budget.refill(1000);
        assert!(!budget.overspent());
        assert_eq!(src.read(&mut buf).unwrap(), 64);
        assert_eq!(src.read(&mut buf).unwrap(), 6);
        assert_eq!(src.read(&mut buf).unwrap(), 0);
    }
}
