//! The decode thread: non-seekable bytes in, output-ready samples into the ring.
//!
//! ```text
//! Read (blocking) → symphonia demux+decode → channel map → rubato (device only) → rtrb ring
//! ```
//! The ring is bounded (about a second of audio) and the thread sleeps while it is full, so
//! memory stays flat and back-pressure reaches the byte source.

use std::io::Read;
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{Result, anyhow};
use rtrb::{Consumer, Producer, RingBuffer};
use symphonia::core::errors::Error as SymError;
use symphonia::core::io::{MediaSourceStream, ReadOnlySource};

use super::decode::{MAX_CONSECUTIVE_BAD_PACKETS, PacketSource, Step};
use super::resample::{StreamResampler, map_channels};
use super::shared::DecodeState;

/// Seconds of output audio the ring holds.
const RING_SECONDS: f64 = 1.0;

/// What the decode thread found out about the track, and how the ring is laid out.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TrackSpec {
    pub rate: u32,
    pub channels: u16,
    pub duration_s: f64,
    pub out_rate: u32,
    pub out_channels: u16,
    /// The source is integer PCM of at most 16 bits (a WAV output is then 16-bit too).
    pub pcm16: bool,
}

pub(crate) type Ready = Result<(TrackSpec, Consumer<f32>)>;

/// Starts the decode thread. The receiver yields once: the spec and the ring's consumer,
/// or why the stream cannot be played.
pub(crate) fn spawn<R: Read + Send + Sync + 'static>(
    reader: R,
    ext_hint: Option<String>,
    target: Option<(u32, u16)>,
    state: Arc<DecodeState>,
) -> Result<(JoinHandle<()>, Receiver<Ready>)> {
    let (tx, rx) = mpsc::sync_channel(1);
    let handle = std::thread::Builder::new()
        .name("meff-decode".into())
        .spawn(move || run(reader, ext_hint, target, state, tx))
        .map_err(|e| anyhow!("cannot start the decode thread: {e}"))?;
    Ok((handle, rx))
}

/// Wraps the byte source to remember its first error (a failed source, not a bad file),
/// and to stop reading once playback is abandoned.
struct SourceReader<R> {
    inner: R,
    state: Arc<DecodeState>,
}

impl<R: Read> Read for SourceReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.state.is_aborted() {
            return Err(std::io::Error::other("playback stopped"));
        }
        loop {
            match self.inner.read(buf) {
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    if let Ok(mut slot) = self.state.source_error.lock()
                        && slot.is_none()
                    {
                        *slot = Some(e.to_string());
                    }
                    return Err(e);
                }
                ok => return ok,
            }
        }
    }
}

fn run<R: Read + Send + Sync + 'static>(
    reader: R,
    ext_hint: Option<String>,
    target: Option<(u32, u16)>,
    state: Arc<DecodeState>,
    tx: SyncSender<Ready>,
) {
    // Declared first, dropped last: `done` is set however this thread ends, a panic in a
    // decoder included, so the output never waits for a thread that is gone.
    let _done = DoneOnDrop(state.clone());
    let src = SourceReader {
        inner: reader,
        state: state.clone(),
    };
    let mss = MediaSourceStream::new(Box::new(ReadOnlySource::new(src)), Default::default());
    let mut packets = match PacketSource::open(mss, ext_hint.as_deref()) {
        Ok(p) => p,
        Err(e) => {
            let err = match state.source_error() {
                Some(msg) => anyhow!("source failed: {msg}"),
                None => anyhow!("not a decodable audio file ({})", e.reason()),
            };
            let _ = tx.send(Err(err));
            return;
        }
    };
    let mut buf = Vec::new();
    if let Err(e) = first_frames(&mut packets, &mut buf, &state) {
        let _ = tx.send(Err(e));
        return;
    }
    let rate = packets.sample_rate();
    let channels = packets.channels();
    let (out_rate, out_channels) = target.unwrap_or((rate, channels));
    let spec = TrackSpec {
        rate,
        channels,
        duration_s: packets.declared_duration_s().unwrap_or(0.0),
        out_rate,
        out_channels,
        pcm16: packets.pcm16(),
    };
    let mut resampler = if out_rate != rate {
        match StreamResampler::new(rate, out_rate, usize::from(out_channels)) {
            Ok(r) => Some(r),
            Err(e) => {
                let _ = tx.send(Err(e));
                return;
            }
        }
    } else {
        None
    };
    let cap = (f64::from(out_rate) * f64::from(out_channels) * RING_SECONDS) as usize;
    let (mut producer, consumer) = RingBuffer::new(cap.max(4096));
    if tx.send(Ok((spec, consumer))).is_err() {
        return;
    }

    let mut pipe = Pipe {
        producer: &mut producer,
        state: &state,
        in_channels: usize::from(channels),
        out_channels: usize::from(out_channels),
        mapped: Vec::new(),
    };
    let mut frames = (buf.len() / usize::from(channels).max(1)) as u64;
    let mut alive = pipe.feed(&buf, resampler.as_mut());
    let mut bad_run = 0u32;
    while alive {
        match packets.next(&mut buf) {
            Step::Frames(n) => {
                bad_run = 0;
                frames += n as u64;
                alive = pipe.feed(&buf, resampler.as_mut());
            }
            Step::Skipped(why) => {
                state
                    .skipped_packets
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                tracing::debug!("skipped an undecodable packet: {why}");
                bad_run += 1;
                if bad_run >= MAX_CONSECUTIVE_BAD_PACKETS {
                    state.set_ended_early(format!(
                        "track damaged: {bad_run} undecodable packets in a row ({why})"
                    ));
                    break;
                }
            }
            Step::End => {
                if let Some(why) = shortfall(frames, rate, spec.duration_s) {
                    state.set_ended_early(why);
                }
                break;
            }
            Step::Failed(e) => {
                if !state.is_aborted() {
                    state.set_ended_early(failure_reason(&e, &state, frames, rate, &spec));
                }
                break;
            }
        }
    }
    if alive && let Some(r) = resampler.as_mut() {
        match r.flush() {
            Ok(tail) => {
                pipe.push(tail);
            }
            Err(e) => tracing::warn!("resampler flush failed: {e}"),
        }
    }
}

struct DoneOnDrop(Arc<DecodeState>);

impl Drop for DoneOnDrop {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0
                .set_ended_early("track damaged: the decoder crashed".to_string());
        }
        self.0
            .done
            .store(true, std::sync::atomic::Ordering::Release);
    }
}

/// Decodes until the first packet with audio, so rate and channel count are known.
fn first_frames(
    packets: &mut PacketSource<'_>,
    buf: &mut Vec<f32>,
    state: &DecodeState,
) -> Result<()> {
    let mut bad = 0u32;
    loop {
        match packets.next(buf) {
            Step::Frames(n) if n > 0 && packets.sample_rate() > 0 && packets.channels() > 0 => {
                return Ok(());
            }
            Step::Frames(_) => {}
            Step::Skipped(why) => {
                state
                    .skipped_packets
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                bad += 1;
                if bad >= MAX_CONSECUTIVE_BAD_PACKETS {
                    return Err(anyhow!(
                        "not a decodable audio file (no packet decodes: {why})"
                    ));
                }
            }
            Step::End | Step::Failed(_) => {
                return Err(match state.source_error() {
                    Some(msg) => anyhow!("source failed: {msg}"),
                    None => anyhow!("not a decodable audio file (no audio frames)"),
                });
            }
        }
    }
}

/// A clean end well short of the declared length means the bytes stopped early.
fn shortfall(frames: u64, rate: u32, declared_s: f64) -> Option<String> {
    if rate == 0 || declared_s <= 0.0 {
        return None;
    }
    let got = frames as f64 / f64::from(rate);
    let tolerance = (declared_s * 0.02).max(0.25);
    (got + tolerance < declared_s)
        .then(|| format!("track truncated: played {got:.1} s of {declared_s:.1} s"))
}

fn failure_reason(
    e: &SymError,
    state: &DecodeState,
    frames: u64,
    rate: u32,
    spec: &TrackSpec,
) -> String {
    if let Some(msg) = state.source_error() {
        return format!("source failed: {msg}");
    }
    match e {
        SymError::IoError(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
            shortfall(frames, rate, spec.duration_s)
                .unwrap_or_else(|| "track truncated: stream ended mid-packet".to_string())
        }
        other => format!("track damaged: {other}"),
    }
}

/// Channel mapping, optional resampling, and blocking pushes into the ring.
struct Pipe<'a> {
    producer: &'a mut Producer<f32>,
    state: &'a DecodeState,
    in_channels: usize,
    out_channels: usize,
    mapped: Vec<f32>,
}

impl Pipe<'_> {
    /// Returns false when playback was abandoned.
    fn feed(&mut self, samples: &[f32], resampler: Option<&mut StreamResampler>) -> bool {
        let mapped = if self.in_channels == self.out_channels {
            samples
        } else {
            map_channels(
                samples,
                self.in_channels,
                self.out_channels,
                &mut self.mapped,
            );
            &self.mapped[..]
        };
        match resampler {
            None => push_blocking(self.producer, mapped, self.state),
            Some(r) => match r.process(mapped) {
                Ok(out) => push_blocking(self.producer, out, self.state),
                Err(e) => {
                    self.state
                        .set_ended_early(format!("resampling failed: {e}"));
                    false
                }
            },
        }
    }

    fn push(&mut self, samples: &[f32]) -> bool {
        push_blocking(self.producer, samples, self.state)
    }
}

/// Pushes all of `samples`, sleeping while the ring is full.
fn push_blocking(producer: &mut Producer<f32>, mut samples: &[f32], state: &DecodeState) -> bool {
    while !samples.is_empty() {
        let (_, rest) = producer.push_partial_slice(samples);
        samples = rest;
        if !samples.is_empty() {
            if state.is_aborted() || producer.is_abandoned() {
                return false;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    true
}
