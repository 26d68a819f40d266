//! The null output: a software clock that consumes the ring at real time, as a sound card
//! would, with no sound. Used for headless peers and for measuring underruns.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::ring_tap::RingTap;
use super::shared::Ctx;

/// How often the clock wakes up.
const TICK: Duration = Duration::from_millis(5);

/// Underrun bookkeeping with hysteresis: an episode starts when the ring cannot supply what
/// the clock needs and ends only once the ring holds `resume_frames` again (or the decoder is
/// done), so one starvation counts once, however many ticks it lasts.
pub(crate) struct Starvation {
    starved: bool,
    resume_frames: usize,
}

impl Starvation {
    pub(crate) fn new(resume_frames: usize) -> Self {
        Starvation {
            starved: false,
            resume_frames,
        }
    }

    /// Whether to stay silent this tick (still rebuffering).
    pub(crate) fn holding(&mut self, available_frames: usize, decoder_done: bool) -> bool {
        if self.starved && (decoder_done || available_frames >= self.resume_frames) {
            self.starved = false;
        }
        self.starved
    }

    /// Starts an episode; returns true if this is a new one.
    pub(crate) fn starve(&mut self) -> bool {
        !std::mem::replace(&mut self.starved, true)
    }
}

/// Plays the ring on the null clock until it is drained after the decoder finished, or the
/// control is stopped, or the decoder was abandoned.
pub(crate) fn run(mut tap: RingTap, rate: u32, channels: u16, resume_frames: usize, ctx: &Ctx<'_>) {
    let Ctx {
        dec,
        out,
        control,
        start,
    } = *ctx;
    let ch = usize::from(channels.max(1));
    let capacity = tap.capacity();
    let rate_f = f64::from(rate);
    let mut starvation = Starvation::new(resume_frames);
    let mut frames_played = 0u64;
    let mut underrun_us = 0f64;
    // Like a device pulling its first buffer, the first tick is taken at once.
    let mut owed = TICK.as_secs_f64() * rate_f;
    let mut last = Instant::now();
    loop {
        if control.is_stopped() || dec.is_aborted() {
            break;
        }
        let now = Instant::now();
        let dt = now.duration_since(last);
        last = now;
        if control.is_paused() {
            owed = 0.0;
            std::thread::sleep(TICK);
            continue;
        }
        owed += dt.as_secs_f64() * rate_f;
        let need = owed.floor() as usize;
        owed -= need as f64;
        // Read `done` before the fill level: once done is seen, every sample is visible.
        let done = dec.is_done();
        let mut need = need;
        let mut available = tap.prepare(dec, out, control) / ch;
        if starvation.holding(available, done) {
            underrun_us += dt.as_secs_f64() * 1e6;
        } else {
            // A read stops at a track boundary: take the rest from the next track.
            while need > 0 && available > 0 {
                let take = need.min(available);
                if let Ok(chunk) = tap.consumer.read_chunk(take * ch) {
                    chunk.commit_all();
                }
                tap.consumed(take * ch);
                out.mark_first_sample(start);
                frames_played += take as u64;
                out.frames.store(frames_played, Ordering::Relaxed);
                need -= take;
                available = tap.prepare(dec, out, control) / ch;
            }
            if need > 0 {
                if done {
                    if available == 0 && tap.consumer.slots() == 0 {
                        out.drained.store(true, Ordering::Relaxed);
                        break;
                    }
                } else {
                    let us = (need as f64 / rate_f * 1e6) as u64;
                    if tap.starved(dec, us) {
                        if starvation.starve() {
                            out.underruns.fetch_add(1, Ordering::Relaxed);
                        }
                        underrun_us += us as f64;
                    }
                }
            }
        }
        out.frames.store(frames_played, Ordering::Relaxed);
        out.underrun_us.store(underrun_us as u64, Ordering::Relaxed);
        control.set_progress(frames_played, tap.consumer.slots() as f32 / capacity as f32);
        std::thread::sleep(TICK);
    }
    out.frames.store(frames_played, Ordering::Relaxed);
    out.underrun_us.store(underrun_us as u64, Ordering::Relaxed);
}
