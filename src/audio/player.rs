//! `play_from_reader`: streaming playback from a non-seekable byte source.

use std::io::Read;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::RecvTimeoutError;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Result, anyhow};
use rtrb::Consumer;
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
    let device = match output {
        OutputKind::Device => Some(DeviceTarget::open()?),
        _ => None,
    };
    let target = device.as_ref().map(|d| (d.rate(), d.channels()));
    let dec = Arc::new(DecodeState::default());
    let out = Arc::new(OutputState::default());
    let (handle, ready) = feed::spawn(reader, ext_hint.map(str::to_string), target, dec.clone())?;

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
    control.set_track(spec.out_rate, spec.duration_s);
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
            wav_out::run(&path, consumer, format, &ctx)
        }
        OutputKind::Null => {
            let consumer = prebuffer(consumer, &spec, &ctx);
            let resume = frames_for(PREBUFFER / 2, spec.out_rate);
            null_out::run(consumer, spec.out_rate, spec.out_channels, resume, &ctx);
            Ok(())
        }
        OutputKind::Device => match device {
            Some(device) => {
                let consumer = prebuffer(consumer, &spec, &ctx);
                device.run(consumer, dec.clone(), out.clone(), control.clone(), start)
            }
            None => Err(anyhow!("no usable sound card; use --output null")),
        },
    };
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
    })
}

fn frames_for(d: Duration, rate: u32) -> usize {
    (d.as_secs_f64() * f64::from(rate)) as usize
}

/// Waits until ~200 ms of audio are buffered, the decoder is done, or playback is stopped.
fn prebuffer(consumer: Consumer<f32>, spec: &TrackSpec, ctx: &Ctx<'_>) -> Consumer<f32> {
    let want = frames_for(PREBUFFER, spec.out_rate) * usize::from(spec.out_channels);
    let want = want.min(consumer.buffer().capacity());
    while consumer.slots() < want
        && !ctx.dec.is_done()
        && !ctx.control.is_stopped()
        && !ctx.dec.is_aborted()
    {
        std::thread::sleep(Duration::from_millis(1));
    }
    consumer
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
