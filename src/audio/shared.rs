//! State shared between the decode thread, the output and the caller of `play_from_reader`.
//! The hot path touches only atomics; the mutexes hold end-of-playback messages.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use super::control::PlaybackControl;

/// What every output needs besides its ring.
#[derive(Clone, Copy)]
pub(crate) struct Ctx<'a> {
    pub dec: &'a DecodeState,
    pub out: &'a OutputState,
    pub control: &'a PlaybackControl,
    /// The command's start, for time-to-first-audio.
    pub start: Instant,
}

/// Decoder side: written by the decode thread.
#[derive(Default)]
pub(crate) struct DecodeState {
    /// Set (Release) once every sample has been pushed into the ring.
    pub done: AtomicBool,
    /// Set by the player when playback ends early (stop, output failure): the decoder quits.
    pub abort: AtomicBool,
    pub skipped_packets: AtomicU64,
    /// Why the track ended before its end, set before `done`.
    pub ended_early: Mutex<Option<String>>,
    /// The first error the byte source returned.
    pub source_error: Mutex<Option<String>>,
    /// Where each track begins in the ring's sample stream, in order; the output pops them
    /// as it reaches them.
    pub boundaries: Mutex<VecDeque<Boundary>>,
    /// The start of the first boundary not yet popped (`u64::MAX`: none), so the output
    /// checks a number, not a lock, per buffer.
    pub next_boundary: AtomicU64,
    /// Samples before this stream position are to be dropped unheard (a skip).
    pub flush_to: AtomicU64,
    /// Stream position where the last finished track ended while the next has not begun
    /// (`u64::MAX`: a track is being decoded): starving there is a gap, not an underrun.
    pub between_tracks_at: AtomicU64,
    /// Samples pushed into the ring so far.
    pub pushed: AtomicU64,
    /// The queue position being decoded (`u64::MAX`: none yet) and where it starts.
    pub current: AtomicU64,
    pub current_start: AtomicU64,
    /// The control's jump epoch the decoder has handled.
    pub seen_epoch: AtomicU64,
    /// Set when a jump means leaving the track being decoded.
    pub leave_to: Mutex<Option<usize>>,
    /// Set by the player once its output has finished.
    pub playback_over: AtomicBool,
    /// Open the next track seekable from the start (a seek needs it).
    pub reopen_seekable: AtomicBool,
    /// A seek to apply once the track being left for is open again.
    pub pending_seek: Mutex<Option<super::control::SeekRequest>>,
}

/// The first sample of a track in the ring's sample stream.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Boundary {
    /// Samples (not frames) pushed before it.
    pub start: u64,
    /// Its queue position.
    pub index: usize,
    pub duration_s: f64,
    /// Track time of its first sample (after a seek, where the seek landed).
    pub offset_s: f64,
    /// The seek that made it, with when it was asked for.
    pub seek: Option<(f64, std::time::Instant)>,
    /// It goes on with the track before it (a seek within a track): not a new track.
    pub continues: bool,
}

impl DecodeState {
    pub(crate) fn is_done(&self) -> bool {
        self.done.load(Ordering::Acquire)
    }

    pub(crate) fn is_aborted(&self) -> bool {
        self.abort.load(Ordering::Relaxed)
    }

    pub(crate) fn set_ended_early(&self, why: String) {
        if let Ok(mut slot) = self.ended_early.lock()
            && slot.is_none()
        {
            *slot = Some(why);
        }
    }

    pub(crate) fn ended_early(&self) -> Option<String> {
        self.ended_early.lock().ok().and_then(|s| s.clone())
    }

    pub(crate) fn source_error(&self) -> Option<String> {
        self.source_error.lock().ok().and_then(|s| s.clone())
    }

    pub(crate) fn new() -> Self {
        DecodeState {
            next_boundary: AtomicU64::new(u64::MAX),
            between_tracks_at: AtomicU64::new(u64::MAX),
            current: AtomicU64::new(u64::MAX),
            ..Default::default()
        }
    }

    pub(crate) fn add_boundary(&self, b: Boundary) {
        if let Ok(mut q) = self.boundaries.lock() {
            if q.is_empty() {
                self.next_boundary.store(b.start, Ordering::Release);
            }
            q.push_back(b);
        }
    }
}

/// Output side: written by the output (null clock, wav writer or device callback).
#[derive(Default)]
pub(crate) struct OutputState {
    /// Nanoseconds from `start` to the first sample handed over, plus one (0 = not yet).
    pub first_sample_ns: AtomicU64,
    pub frames: AtomicU64,
    pub underruns: AtomicU64,
    pub underrun_us: AtomicU64,
    /// The ring was found empty after the decoder finished.
    pub drained: AtomicBool,
    /// Set by a device error callback.
    pub failure: Mutex<Option<String>>,
    /// Tracks whose first sample the output reached.
    pub tracks: AtomicU64,
    /// Silence inserted before each track after the first, in microseconds.
    pub gaps_us: Mutex<Vec<u64>>,
    /// Each seek: where to, and milliseconds from its request to its first sample out.
    pub seeks: Mutex<Vec<(f64, f64)>>,
}

impl OutputState {
    /// Records the time of the first sample handed to the output (first call wins).
    pub(crate) fn mark_first_sample(&self, start: Instant) {
        if self.first_sample_ns.load(Ordering::Relaxed) == 0 {
            let ns = u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX - 1);
            let _ = self.first_sample_ns.compare_exchange(
                0,
                ns.saturating_add(1),
                Ordering::Relaxed,
                Ordering::Relaxed,
            );
        }
    }

    pub(crate) fn ttfa_ms(&self) -> f64 {
        match self.first_sample_ns.load(Ordering::Relaxed) {
            0 => 0.0,
            n => (n - 1) as f64 / 1e6,
        }
    }

    pub(crate) fn fail(&self, why: String) {
        if let Ok(mut slot) = self.failure.lock()
            && slot.is_none()
        {
            *slot = Some(why);
        }
    }

    pub(crate) fn failure(&self) -> Option<String> {
        self.failure.lock().ok().and_then(|s| s.clone())
    }
}
