//! `play_source`: streaming playback of a queue of non-seekable byte sources into one
//! output, and `play_from_reader` for a single one.

use std::io::Read;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::RecvTimeoutError;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Result, anyhow};

use super::ring_tap::RingTap;
use super::track_source::{OneTrack, OpenedTrack, TrackSource};
use serde::Serialize;

use super::control::PlaybackControl;
use super::device_out::DeviceTarget;
use super::feed::{self, TrackSpec};
use super::output::OutputKind;
use super::shared::{Ctx, DecodeState, OutputState};
use super::{null_out, wav_out};

/// Audio buffered before the output starts.
const PREBUFFER: Duration = Duration::from_millis(200);

/// What happened during one playback (the audio part of `stream --stats json`).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PlaybackStats {
    /// From `start` to the first decoded sample handed to the output.
    pub ttfa_ms: f64,
    /// Starvation episodes after playback started (one per episode).
    pub underruns: u64,
    /// Total time the output was starved.
    pub underrun_ms: f64,
    /// Frames handed to the output, at the output rate.
    pub frames: u64,
    /// The output rate (the device's for `device`, the track's otherwise).
    pub sample_rate: u32,
    /// The output channel count.
    pub channels: u16,
    /// Undecodable packets skipped.
    pub skipped_packets: u64,
    /// Why the track ended before its end ("track truncated: …", "source failed: …"), if so.
    pub ended_early: Option<String>,
    /// Tracks whose first sample reached the output.
    pub tracks: u64,
    /// Silence inserted before each track after the first, in milliseconds.
    pub gaps_ms: Vec<f64>,
    /// Each seek: where to (s) and its latency to the first sample out (ms).
    pub seeks: Vec<(f64, f64)>,
}

/// Plays audio arriving through a blocking, non-seekable reader.
///
/// Decoding runs on its own thread into a lock-free ring (about one second of audio); the
/// output starts once ~200 ms are buffered (or the whole track, if shorter) and drains it:
/// a real-time clock for [`OutputKind::Null`], a 32-bit float WAV writer for
/// [`OutputKind::Wav`] (track rate and channels), the default sound card for
/// [`OutputKind::Device`] (resampled to the device rate and mapped to its channels).
///
/// Blocks until the track has played out, the control is stopped, or the output fails.
/// A source error or truncated stream plays what arrived and reports it in `ended_early`;
/// an unplayable stream (not audio, or a source failing before any audio) is an error.
pub fn play_from_reader<R: Read + Send + Sync + 'static>(
    reader: R,
    ext_hint: Option<&str>,
    output: OutputKind,
    start: Instant,
    control: PlaybackControl,
) -> Result<PlaybackStats> {
    let track = OpenedTrack {
        reader: Box::new(super::track_source::ForwardOnly(reader)),
        ext: ext_hint.map(str::to_string),
        index: 0,
    };
    play_source(Box::new(OneTrack(Some(track))), output, start, control)
}

/// Plays every track `source` hands out, one after the other in one output with nothing
/// between them; the output format is the first playable track's (the device's for
/// `device`). A track that cannot be played is reported to the source and passed over; an
/// error only if none can.
pub fn play_source(
    source: Box<dyn TrackSource>,
    output: OutputKind,
    start: Instant,
    control: PlaybackControl,
) -> Result<PlaybackStats> {
    let device = match output {
        OutputKind::Device => Some(DeviceTarget::open()?),
        _ => None,
    };
    let target = device.as_ref().map(|d| (d.rate(), d.channels()));
    let dec = Arc::new(DecodeState::new());
    let out = Arc::new(OutputState::default());
    let (handle, ready) = feed::spawn(source, target, dec.clone(), control.clone())?;

    let (spec, consumer) = loop {
        match ready.recv_timeout(Duration::from_millis(20)) {
            Ok(Ok(x)) => break x,
            Ok(Err(e)) => {
                let _ = handle.join();
                return Err(e);
            }
            Err(RecvTimeoutError::Timeout) => {
                if control.is_stopped() {
                    dec.abort.store(true, Ordering::Relaxed);
                    return Ok(PlaybackStats::default());
                }
            }
            Err(RecvTimeoutError::Disconnected) => {
                return Err(anyhow!("the decode thread ended unexpectedly"));
            }
        }
    };
    tracing::debug!(
        rate = spec.rate,
        channels = spec.channels,
        out_rate = spec.out_rate,
        out_channels = spec.out_channels,
        "playback starting"
    );
    control.set_rate(spec.out_rate);
    let rejoin =
        frames_for(Duration::from_millis(50), spec.out_rate) * usize::from(spec.out_channels);
    let tap = RingTap::new(consumer, rejoin);
    let ctx = Ctx {
        dec: &dec,
        out: &out,
        control: &control,
        start,
    };

    let result = match output {
        OutputKind::Wav(path) => {
            let format = wav_out::WavFormat {
                rate: spec.out_rate,
                channels: spec.out_channels,
                pcm16: spec.pcm16,
            };
            wav_out::run(&path, tap, format, &ctx)
        }
        OutputKind::Null => {
            let tap = prebuffer(tap, &spec, &ctx);
            let resume = frames_for(PREBUFFER / 2, spec.out_rate);
            null_out::run(tap, spec.out_rate, spec.out_channels, resume, &ctx);
            Ok(())
        }
        OutputKind::Device => match device {
            Some(device) => {
                let tap = prebuffer(tap, &spec, &ctx);
                device.run(tap, dec.clone(), out.clone(), control.clone(), start)
            }
            None => Err(anyhow!("no usable sound card; use --output null")),
        },
    };
    dec.playback_over.store(true, Ordering::Release);
    finish(handle, &dec);
    result?;

    Ok(PlaybackStats {
        ttfa_ms: out.ttfa_ms(),
        underruns: out.underruns.load(Ordering::Relaxed),
        underrun_ms: out.underrun_us.load(Ordering::Relaxed) as f64 / 1000.0,
        frames: out.frames.load(Ordering::Relaxed),
        sample_rate: spec.out_rate,
        channels: spec.out_channels,
        skipped_packets: dec.skipped_packets.load(Ordering::Relaxed),
        ended_early: out.failure().or_else(|| dec.ended_early()),
        tracks: out.tracks.load(Ordering::Relaxed),
        seeks: out.seeks.lock().map(|s| s.clone()).unwrap_or_default(),
        gaps_ms: out
            .gaps_us
            .lock()
            .map(|g| g.iter().map(|&us| us as f64 / 1000.0).collect())
            .unwrap_or_default(),
    })
}

fn frames_for(d: Duration, rate: u32) -> usize {
    (d.as_secs_f64() * f64::from(rate)) as usize
}

/// Waits until ~200 ms of audio are buffered, the decoder is done, or playback is stopped.
fn prebuffer(tap: RingTap, spec: &TrackSpec, ctx: &Ctx<'_>) -> RingTap {
    let want = frames_for(PREBUFFER, spec.out_rate) * usize::from(spec.out_channels);
    let want = want.min(tap.capacity());
    while tap.consumer.slots() < want
        && !ctx.dec.is_done()
        && !ctx.control.is_stopped()
        && !ctx.dec.is_aborted()
    {
        std::thread::sleep(Duration::from_millis(1));
    }
    tap
}

/// Ends the decode thread: joined if it finished, otherwise told to quit and left to do so
/// on its own (it may be blocked in a read of a source that has stalled).
fn finish(handle: JoinHandle<()>, dec: &DecodeState) {
    if !dec.is_done() {
        dec.abort.store(true, Ordering::Relaxed);
    }
    let deadline = Instant::now() + Duration::from_millis(100);
    while !handle.is_finished() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(2));
    }
    if handle.is_finished() {
        let _ = handle.join();
    }
}
