//! Playback control shared between the player and the shell: pause, resume, stop and a
//! now-playing line. Everything is a relaxed atomic, so the output callback can update it
//! per buffer without locks.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use serde::Serialize;

/// A snapshot for a now-playing line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct NowPlaying {
    /// Seconds of audio handed to the output so far.
    pub elapsed_s: f64,
    /// Track length as the container declares it (0 when unknown).
    pub duration_s: f64,
    /// How full the playback ring buffer is, 0..=1.
    pub buffer_fill: f32,
    /// The rate the output runs at (the device rate for `device`).
    pub sample_rate: u32,
}

/// Handle on one playback. Clones share the same state.
///
/// A stopped control stays stopped: use a fresh `PlaybackControl` for each track.
#[derive(Clone, Default)]
pub struct PlaybackControl {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    paused: AtomicBool,
    stopped: AtomicBool,
    frames: AtomicU64,
    sample_rate: AtomicU32,
    duration_bits: AtomicU64,
    fill_bits: AtomicU32,
    /// 100 minus the volume, so the default (0) is full volume.
    quieter: std::sync::atomic::AtomicU8,
}

impl std::fmt::Debug for PlaybackControl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlaybackControl")
            .field("paused", &self.is_paused())
            .field("stopped", &self.is_stopped())
            .field("status", &self.status())
            .finish()
    }
}

impl PlaybackControl {
    /// Creates a control in the playing (not paused, not stopped) state.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether two handles control the same playback.
    pub fn same_as(&self, other: &PlaybackControl) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }

    /// Holds playback: the output plays silence and consumes nothing.
    pub fn pause(&self) {
        self.inner.paused.store(true, Ordering::Relaxed);
    }

    /// Continues after [`pause`](Self::pause).
    pub fn resume(&self) {
        self.inner.paused.store(false, Ordering::Relaxed);
    }

    /// Ends playback; `play_from_reader` returns soon after.
    pub fn stop(&self) {
        self.inner.stopped.store(true, Ordering::Relaxed);
    }

    pub fn is_paused(&self) -> bool {
        self.inner.paused.load(Ordering::Relaxed)
    }

    pub fn is_stopped(&self) -> bool {
        self.inner.stopped.load(Ordering::Relaxed)
    }

    /// Sets the volume, 0..=100 (more is 100); outputs glide to it.
    pub fn set_volume(&self, volume: u8) {
        self.inner
            .quieter
            .store(100 - volume.min(100), Ordering::Relaxed);
    }

    pub fn volume(&self) -> u8 {
        100 - self.inner.quieter.load(Ordering::Relaxed).min(100)
    }

    /// Where playback is.
    pub fn status(&self) -> NowPlaying {
        let rate = self.inner.sample_rate.load(Ordering::Relaxed);
        let frames = self.inner.frames.load(Ordering::Relaxed);
        NowPlaying {
            elapsed_s: if rate == 0 {
                0.0
            } else {
                frames as f64 / f64::from(rate)
            },
            duration_s: f64::from_bits(self.inner.duration_bits.load(Ordering::Relaxed)),
            buffer_fill: f32::from_bits(self.inner.fill_bits.load(Ordering::Relaxed)),
            sample_rate: rate,
        }
    }

    /// Called once the track is known.
    pub(crate) fn set_track(&self, sample_rate: u32, duration_s: f64) {
        self.inner.sample_rate.store(sample_rate, Ordering::Relaxed);
        self.inner
            .duration_bits
            .store(duration_s.to_bits(), Ordering::Relaxed);
        self.inner.frames.store(0, Ordering::Relaxed);
        self.inner
            .fill_bits
            .store(0f32.to_bits(), Ordering::Relaxed);
    }

    /// Called by outputs as they consume (allocation- and lock-free).
    pub(crate) fn set_progress(&self, frames: u64, buffer_fill: f32) {
        self.inner.frames.store(frames, Ordering::Relaxed);
        self.inner
            .fill_bits
            .store(buffer_fill.to_bits(), Ordering::Relaxed);
    }
}
