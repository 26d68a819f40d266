//! The output's end of the ring: drops what a skip flushed, notices track boundaries (for
//! the now-playing line and `gaps_ms`), and tells gaps between tracks from underruns.
//! Lock-free on the hot path: a lock is tried only when a boundary is reached.

use std::sync::atomic::Ordering;

use rtrb::Consumer;

use super::control::PlaybackControl;
use super::shared::{DecodeState, OutputState};

pub(crate) struct RingTap {
    pub consumer: Consumer<f32>,
    /// Samples taken from the ring so far, heard or dropped.
    pos: u64,
    /// Starvation while waiting for the next track's first sample, in microseconds.
    gap_us: u64,
    /// A boundary was reached but its gap is not recorded yet (the lock was busy).
    pending_gap: Option<u64>,
    /// A skip or seek flushed the ring and the audio jumped to is not buffered yet: waiting
    /// for it is the jump's latency, neither an underrun nor a gap.
    jumping: bool,
    /// Samples to have buffered before playing on after a jump (about 50 ms), so a seek
    /// does not stutter while its first bytes arrive.
    rejoin_samples: usize,
}

impl RingTap {
    pub(crate) fn new(consumer: Consumer<f32>, rejoin_samples: usize) -> Self {
        RingTap {
            rejoin_samples,
            consumer,
            pos: 0,
            gap_us: 0,
            pending_gap: None,
            jumping: false,
        }
    }

    /// Drops flushed samples and crosses boundaries at the current position; returns the
    /// samples readable now, up to the next boundary (so a read never spans two tracks).
    pub(crate) fn prepare(
        &mut self,
        dec: &DecodeState,
        out: &OutputState,
        control: &PlaybackControl,
    ) -> usize {
        let flush = dec.flush_to.load(Ordering::Acquire);
        while self.pos < flush {
            let n = usize::try_from(flush - self.pos)
                .unwrap_or(usize::MAX)
                .min(self.consumer.slots());
            if n == 0 {
                break;
            }
            if let Ok(chunk) = self.consumer.read_chunk(n) {
                chunk.commit_all();
            }
            self.pos += n as u64;
            // A skip is no gap: the listener asked for the jump.
            self.gap_us = 0;
            self.jumping = true;
            self.cross(dec, out, control);
        }
        self.cross(dec, out, control);
        let slots = self.consumer.slots();
        if self.jumping {
            let ready = slots >= self.rejoin_samples.min(self.capacity() / 2);
            // What the decoder has pushed since the jump, if it is all there is.
            let all_in = dec.is_done() || dec.between_tracks_at.load(Ordering::Acquire) != u64::MAX;
            if !ready && !all_in {
                return 0;
            }
            self.jumping = false;
        }
        let next = dec.next_boundary.load(Ordering::Acquire);
        if next > self.pos {
            slots.min(usize::try_from(next - self.pos).unwrap_or(usize::MAX))
        } else {
            slots
        }
    }

    /// Records that `n` samples were taken (after a read of what `prepare` allowed).
    pub(crate) fn consumed(&mut self, n: usize) {
        self.pos += n as u64;
    }

    /// The output found too little to play for `us` microseconds: a gap if it waits at the
    /// end of a finished track for the next one, else an underrun (returns true).
    pub(crate) fn starved(&mut self, dec: &DecodeState, us: u64) -> bool {
        if self.jumping {
            return false;
        }
        if dec.between_tracks_at.load(Ordering::Acquire) == self.pos && self.pos > 0 {
            self.gap_us += us;
            false
        } else {
            true
        }
    }

    fn cross(&mut self, dec: &DecodeState, out: &OutputState, control: &PlaybackControl) {
        if let Some(gap) = self.pending_gap
            && let Ok(mut gaps) = out.gaps_us.try_lock()
        {
            gaps.push(gap);
            self.pending_gap = None;
        }
        if dec.next_boundary.load(Ordering::Acquire) > self.pos {
            return;
        }
        let Ok(mut q) = dec.boundaries.try_lock() else {
            return;
        };
        while let Some(b) = q.front().copied().filter(|b| b.start <= self.pos) {
            q.pop_front();
            let frames = out.frames.load(Ordering::Relaxed);
            control.begin_track(b.index, b.duration_s, b.offset_s, frames);
            if let Some((to_s, at)) = b.seek
                && let Ok(mut seeks) = out.seeks.try_lock()
            {
                seeks.push((to_s, at.elapsed().as_secs_f64() * 1000.0));
            }
            if b.continues {
                continue;
            }
            if out.tracks.fetch_add(1, Ordering::Relaxed) > 0 {
                let gap = std::mem::take(&mut self.gap_us);
                match out.gaps_us.try_lock() {
                    Ok(mut gaps) => gaps.push(gap),
                    Err(_) => self.pending_gap = Some(gap),
                }
            }
        }
        let next = q.front().map_or(u64::MAX, |b| b.start);
        dec.next_boundary.store(next, Ordering::Release);
    }

    pub(crate) fn capacity(&self) -> usize {
        self.consumer.buffer().capacity().max(1)
    }
}
