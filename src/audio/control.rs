//! Playback control shared between the player and the shell: pause, resume, stop and a
//! now-playing line. Everything is a relaxed atomic, so the output callback can update it
//! per buffer without locks.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

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
    /// The queue position of the track being heard (None before the first sample).
    pub track: Option<usize>,
}

/// A listener's seek: to `to_s` seconds into queue position `index`.
#[derive(Debug, Clone, Copy)]
pub struct SeekRequest {
    pub id: u64,
    pub index: usize,
    pub to_s: f64,
    pub at: std::time::Instant,
}

/// How a seek ended.
#[derive(Debug, Clone, PartialEq)]
pub enum SeekOutcome {
    /// Playing from this many seconds into the track.
    Landed(f64),
    /// The target was past the end: the next track plays.
    NextTrack,
    Failed(String),
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
    /// Queue position of the track being heard, plus one (0 = none yet).
    heard: AtomicU64,
    /// Output frames played when the heard track began.
    heard_base: AtomicU64,
    /// Bumped by every jump request, so readers and the decoder notice one promptly.
    epoch: AtomicU64,
    jump: Mutex<Option<usize>>,
    seek: Mutex<Option<SeekRequest>>,
    /// The last finished seek: its id and where it landed, or why it could not.
    seek_done: Mutex<Option<(u64, SeekOutcome)>>,
    seek_ids: AtomicU64,
    /// Track time of the heard track's first sample after its start or a seek.
    heard_offset_bits: AtomicU64,
    /// Wakes a decoder that waits for bytes of a track it is to abandon.
    interrupt: tokio::sync::Notify,
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
        // A decoder waiting for bytes hears of it now, not when the next chunk comes.
        self.inner.epoch.fetch_add(1, Ordering::AcqRel);
        self.inner.interrupt.notify_waiters();
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

    /// Where playback is: elapsed counts from the start of the track being heard.
    pub fn status(&self) -> NowPlaying {
        let rate = self.inner.sample_rate.load(Ordering::Relaxed);
        let frames = self
            .inner
            .frames
            .load(Ordering::Relaxed)
            .saturating_sub(self.inner.heard_base.load(Ordering::Relaxed));
        let offset = f64::from_bits(self.inner.heard_offset_bits.load(Ordering::Relaxed));
        NowPlaying {
            elapsed_s: offset
                + if rate == 0 {
                    0.0
                } else {
                    frames as f64 / f64::from(rate)
                },
            duration_s: f64::from_bits(self.inner.duration_bits.load(Ordering::Relaxed)),
            buffer_fill: f32::from_bits(self.inner.fill_bits.load(Ordering::Relaxed)),
            sample_rate: rate,
            track: self.heard_track(),
        }
    }

    /// The queue position of the track being heard.
    pub fn heard_track(&self) -> Option<usize> {
        match self.inner.heard.load(Ordering::Relaxed) {
            0 => None,
            n => usize::try_from(n - 1).ok(),
        }
    }

    /// Asks the decoder to go to queue position `index` (next, prev, a chosen track).
    pub fn request_jump(&self, index: usize) {
        if let Ok(mut j) = self.inner.jump.lock() {
            *j = Some(index);
        }
        self.inner.epoch.fetch_add(1, Ordering::AcqRel);
        self.inner.interrupt.notify_waiters();
    }

    /// Changes with every jump request.
    pub fn epoch(&self) -> u64 {
        self.inner.epoch.load(Ordering::Acquire)
    }

    /// Resolves once a jump is requested after the caller looked at `epoch()`.
    pub fn interrupted(&self) -> tokio::sync::futures::Notified<'_> {
        self.inner.interrupt.notified()
    }

    /// Asks the decoder to seek; returns the id `seek_outcome` answers for.
    pub fn request_seek(&self, index: usize, to_s: f64) -> u64 {
        let id = self.inner.seek_ids.fetch_add(1, Ordering::Relaxed) + 1;
        if let Ok(mut s) = self.inner.seek.lock() {
            *s = Some(SeekRequest {
                id,
                index,
                to_s: to_s.max(0.0),
                at: std::time::Instant::now(),
            });
        }
        self.inner.epoch.fetch_add(1, Ordering::AcqRel);
        self.inner.interrupt.notify_waiters();
        id
    }

    /// How seek `id` ended; None while it is pending.
    pub fn seek_outcome(&self, id: u64) -> Option<SeekOutcome> {
        let done = self.inner.seek_done.lock().ok()?;
        match done.as_ref() {
            Some((done_id, r)) if *done_id >= id => Some(r.clone()),
            _ => None,
        }
    }

    pub(crate) fn take_seek(&self) -> Option<SeekRequest> {
        self.inner.seek.lock().ok().and_then(|mut s| s.take())
    }

    pub(crate) fn finish_seek(&self, id: u64, result: SeekOutcome) {
        if let Ok(mut d) = self.inner.seek_done.lock() {
            *d = Some((id, result));
        }
    }

    pub(crate) fn take_jump(&self) -> Option<usize> {
        self.inner.jump.lock().ok().and_then(|mut j| j.take())
    }

    /// Called once the output format is known.
    pub(crate) fn set_rate(&self, sample_rate: u32) {
        self.inner.sample_rate.store(sample_rate, Ordering::Relaxed);
        self.inner.frames.store(0, Ordering::Relaxed);
        self.inner
            .fill_bits
            .store(0f32.to_bits(), Ordering::Relaxed);
    }

    /// Called by the output when the first sample of queue position `index` is reached.
    pub(crate) fn begin_track(
        &self,
        index: usize,
        duration_s: f64,
        offset_s: f64,
        frames_played: u64,
    ) {
        self.inner
            .heard_offset_bits
            .store(offset_s.to_bits(), Ordering::Relaxed);
        self.inner
            .duration_bits
            .store(duration_s.to_bits(), Ordering::Relaxed);
        self.inner
            .heard_base
            .store(frames_played, Ordering::Relaxed);
        self.inner.heard.store(index as u64 + 1, Ordering::Relaxed);
    }

    /// Called by outputs as they consume (allocation- and lock-free).
    pub(crate) fn set_progress(&self, frames: u64, buffer_fill: f32) {
        self.inner.frames.store(frames, Ordering::Relaxed);
        self.inner
            .fill_bits
            .store(buffer_fill.to_bits(), Ordering::Relaxed);
    }
}
