//! The decode thread: tracks from a [`TrackSource`], output-ready samples into one ring.
//!
//! ```text
//! Read (blocking) → symphonia demux+decode → channel map → rubato → rtrb ring
//! ```
//! The ring is bounded (about a second of audio) and the thread sleeps while it is full, so
//! memory stays flat and back-pressure reaches the byte source. Tracks follow each other in
//! the same ring with nothing between them (gapless: the decoders trim encoder delay and
//! padding); the output format is the first track's (or the device's), later tracks are
//! mapped and resampled to it. A jump (next, prev) either drops what is buffered of the
//! track being left or, when the decoder is already on the wanted track, only what comes
//! before it.

use std::io::Read;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{Result, anyhow};
use rtrb::{Consumer, Producer, RingBuffer};
use symphonia::core::errors::Error as SymError;
use symphonia::core::io::{MediaSourceStream, ReadOnlySource};

use super::control::PlaybackControl;
use super::decode::{MAX_CONSECUTIVE_BAD_PACKETS, PacketSource, Step};
use super::resample::{StreamResampler, map_channels};
use super::shared::{Boundary, DecodeState};
use super::track_source::{Next, OpenedTrack, TrackEnd, TrackSource};

/// Seconds of output audio the ring holds.
const RING_SECONDS: f64 = 1.0;

/// What the decode thread found out about the first track, and how the ring is laid out.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TrackSpec {
    pub rate: u32,
    pub channels: u16,
    pub out_rate: u32,
    pub out_channels: u16,
    /// The source is integer PCM of at most 16 bits (a WAV output is then 16-bit too).
    pub pcm16: bool,
}

pub(crate) type Ready = Result<(TrackSpec, Consumer<f32>)>;

/// Starts the decode thread. The receiver yields once: the spec and the ring's consumer,
/// or why not one track of the source can be played.
pub(crate) fn spawn(
    source: Box<dyn TrackSource>,
    target: Option<(u32, u16)>,
    state: Arc<DecodeState>,
    control: PlaybackControl,
) -> Result<(JoinHandle<()>, Receiver<Ready>)> {
    let (tx, rx) = mpsc::sync_channel(1);
    let handle = std::thread::Builder::new()
        .name("meff-decode".into())
        .spawn(move || run(source, target, state, control, tx))
        .map_err(|e| anyhow!("cannot start the decode thread: {e}"))?;
    Ok((handle, rx))
}

/// The decode thread's view of where it is, shared with its byte reader so that a jump
/// requested while a read waits for bytes is handled there.
struct Cursor {
    state: Arc<DecodeState>,
    control: PlaybackControl,
}

impl Cursor {
    /// Handles a pending jump: to the track being decoded, only what precedes it is
    /// dropped and decoding goes on (None); to any other, everything buffered is dropped
    /// and the decoder must leave this track (Some(target)).
    fn poll_jump(&self) -> Option<usize> {
        let epoch = self.control.epoch();
        if self.state.seen_epoch.swap(epoch, Ordering::AcqRel) == epoch {
            return None;
        }
        let target = self.control.take_jump()?;
        let current = self.state.current.load(Ordering::Acquire);
        if current == target as u64 {
            let start = self.state.current_start.load(Ordering::Acquire);
            self.state.flush_to.fetch_max(start, Ordering::AcqRel);
            return None;
        }
        let pushed = self.state.pushed.load(Ordering::Acquire);
        self.state.flush_to.fetch_max(pushed, Ordering::AcqRel);
        if let Ok(mut l) = self.state.leave_to.lock() {
            *l = Some(target);
        }
        Some(target)
    }

    fn leaving(&self) -> Option<usize> {
        self.state.leave_to.lock().ok().and_then(|l| *l)
    }

    fn stopped(&self) -> bool {
        self.control.is_stopped() || self.state.is_aborted()
    }
}

/// Wraps a track's byte source to remember its first error (a failed source, not a bad
/// file), to stop reading once playback is abandoned, and to handle a jump requested while
/// it waits (the inner reader returns `Interrupted` then).
struct SourceReader<R> {
    inner: R,
    cursor: Arc<Cursor>,
}

impl<R: Read> Read for SourceReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            if self.cursor.stopped() {
                return Err(std::io::Error::other("playback stopped"));
            }
            if self.cursor.leaving().is_some() || self.cursor.poll_jump().is_some() {
                return Err(std::io::Error::other("left for another track"));
            }
            match self.inner.read(buf) {
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    let state = &self.cursor.state;
                    if let Ok(mut slot) = state.source_error.lock()
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

/// How one track's decoding ended, for the loop over the queue.
enum Outcome {
    Ended,
    Jump(usize),
    Stop,
}

/// The ring and its format, made when the first track is known.
struct Ring {
    producer: Producer<f32>,
    out_rate: u32,
    out_channels: u16,
}

struct Session {
    cursor: Arc<Cursor>,
    target: Option<(u32, u16)>,
    ready: Option<SyncSender<Ready>>,
    ring: Option<Ring>,
    last_error: Option<anyhow::Error>,
}

fn run(
    mut source: Box<dyn TrackSource>,
    target: Option<(u32, u16)>,
    state: Arc<DecodeState>,
    control: PlaybackControl,
    tx: SyncSender<Ready>,
) {
    // Declared first, dropped last: `done` is set however this thread ends, a panic in a
    // decoder included, so the output never waits for a thread that is gone.
    let _done = DoneOnDrop(state.clone());
    state.seen_epoch.store(control.epoch(), Ordering::Release);
    let mut session = Session {
        cursor: Arc::new(Cursor { state, control }),
        target,
        ready: Some(tx),
        ring: None,
        last_error: None,
    };
    let mut next = Next::First;
    while !session.cursor.stopped() {
        let Some(track) = source.open(next) else {
            break;
        };
        let index = track.index;
        let (outcome, end) = session.play_track(track);
        source.ended(index, end);
        next = match outcome {
            Outcome::Ended => Next::After(index),
            Outcome::Jump(t) => Next::Jump(t),
            Outcome::Stop => break,
        };
    }
    if let Some(tx) = session.ready.take() {
        let err = session
            .last_error
            .take()
            .unwrap_or_else(|| anyhow!("nothing to play"));
        let _ = tx.send(Err(err));
    }
}

impl Session {
    fn play_track(&mut self, track: OpenedTrack) -> (Outcome, TrackEnd) {
        let state = self.cursor.state.clone();
        if let Ok(mut slot) = state.source_error.lock() {
            *slot = None;
        }
        if let Ok(mut l) = state.leave_to.lock() {
            *l = None;
        }
        let pushed = state.pushed.load(Ordering::Acquire);
        state.current_start.store(pushed, Ordering::Release);
        state.current.store(track.index as u64, Ordering::Release);
        let skipped_before = state.skipped_packets.load(Ordering::Relaxed);
        let src = SourceReader {
            inner: track.reader,
            cursor: self.cursor.clone(),
        };
        let mss = MediaSourceStream::new(Box::new(ReadOnlySource::new(src)), Default::default());
        let opened = PacketSource::open(mss, track.ext.as_deref());
        if let Some(outcome) = self.left() {
            return (outcome, TrackEnd::Left);
        }
        let mut packets = match opened {
            Ok(p) => p,
            Err(e) => {
                let why = match state.source_error() {
                    Some(msg) => format!("source failed: {msg}"),
                    None => format!("not a decodable audio file ({})", e.reason()),
                };
                return self.unplayable(why);
            }
        };
        let mut buf = Vec::new();
        let first = first_frames(&mut packets, &mut buf, &state);
        if let Some(outcome) = self.left() {
            return (outcome, TrackEnd::Left);
        }
        if let Err(e) = first {
            return self.unplayable(format!("{e:#}"));
        }
        let rate = packets.sample_rate();
        let channels = packets.channels();
        let duration_s = packets.declared_duration_s().unwrap_or(0.0);
        if self.ring.is_none() {
            let (out_rate, out_channels) = self.target.unwrap_or((rate, channels));
            let spec = TrackSpec {
                rate,
                channels,
                out_rate,
                out_channels,
                pcm16: packets.pcm16(),
            };
            let cap = (f64::from(out_rate) * f64::from(out_channels) * RING_SECONDS) as usize;
            let (producer, consumer) = RingBuffer::new(cap.max(4096));
            self.ring = Some(Ring {
                producer,
                out_rate,
                out_channels,
            });
            if let Some(tx) = self.ready.take()
                && tx.send(Ok((spec, consumer))).is_err()
            {
                return (Outcome::Stop, TrackEnd::Left);
            }
        }
        let Some(ring) = self.ring.as_mut() else {
            return (Outcome::Stop, TrackEnd::Left);
        };
        let mut resampler = if ring.out_rate != rate {
            match StreamResampler::new(rate, ring.out_rate, usize::from(ring.out_channels)) {
                Ok(r) => Some(r),
                Err(e) => return self.unplayable(format!("{e:#}")),
            }
        } else {
            None
        };
        // A jump to this track while it was being opened dropped what came before it.
        let start = state
            .pushed
            .load(Ordering::Acquire)
            .max(state.flush_to.load(Ordering::Acquire));
        state.add_boundary(Boundary {
            start,
            index: track.index,
            duration_s,
        });
        let mut pipe = Pipe {
            producer: &mut ring.producer,
            cursor: &self.cursor,
            in_channels: usize::from(channels),
            out_channels: usize::from(ring.out_channels),
            mapped: Vec::new(),
        };
        let mut frames = (buf.len() / usize::from(channels).max(1)) as u64;
        let mut flow = pipe.feed(&buf, resampler.as_mut());
        // Only now: an output that finds the ring empty before this track's first samples
        // are in is still waiting between tracks.
        state.between_tracks_at.store(u64::MAX, Ordering::Release);
        let mut bad_run = 0u32;
        let mut ended_early = None;
        while flow == Flow::Go {
            if let Some(t) = self.cursor.poll_jump() {
                flow = Flow::Jump(t);
                break;
            }
            match packets.next(&mut buf) {
                Step::Frames(n) => {
                    bad_run = 0;
                    frames += n as u64;
                    flow = pipe.feed(&buf, resampler.as_mut());
                }
                Step::Skipped(why) => {
                    if let Some(t) = self.cursor.leaving() {
                        flow = Flow::Jump(t);
                        break;
                    }
                    state.skipped_packets.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!("skipped an undecodable packet: {why}");
                    bad_run += 1;
                    if bad_run >= MAX_CONSECUTIVE_BAD_PACKETS {
                        ended_early = Some(format!(
                            "track damaged: {bad_run} undecodable packets in a row ({why})"
                        ));
                        break;
                    }
                }
                Step::End => {
                    ended_early = shortfall(frames, rate, duration_s);
                    break;
                }
                Step::Failed(e) => {
                    if let Some(t) = self.cursor.leaving() {
                        flow = Flow::Jump(t);
                    } else if !self.cursor.stopped() {
                        ended_early = Some(failure_reason(&e, &state, frames, rate, duration_s));
                    }
                    break;
                }
            }
        }
        match flow {
            Flow::Jump(t) => return (Outcome::Jump(t), TrackEnd::Left),
            Flow::Stop => return (Outcome::Stop, TrackEnd::Left),
            Flow::Go => {}
        }
        if self.cursor.stopped() {
            return (Outcome::Stop, TrackEnd::Left);
        }
        if let Some(r) = resampler.as_mut() {
            match r.flush() {
                Ok(tail) => {
                    if let Flow::Jump(t) = pipe.push(tail) {
                        return (Outcome::Jump(t), TrackEnd::Left);
                    }
                }
                Err(e) => tracing::warn!("resampler flush failed: {e}"),
            }
        }
        if let Some(why) = &ended_early {
            state.set_ended_early(why.clone());
        }
        state
            .between_tracks_at
            .store(state.pushed.load(Ordering::Acquire), Ordering::Release);
        let end = TrackEnd::Played {
            ended_early,
            skipped_packets: state.skipped_packets.load(Ordering::Relaxed) - skipped_before,
        };
        (Outcome::Ended, end)
    }

    /// The track could not be opened because the listener jumped or stopped.
    fn left(&self) -> Option<Outcome> {
        if self.cursor.stopped() {
            return Some(Outcome::Stop);
        }
        self.cursor.leaving().map(Outcome::Jump)
    }

    fn unplayable(&mut self, why: String) -> (Outcome, TrackEnd) {
        self.last_error = Some(anyhow!("{why}"));
        (Outcome::Ended, TrackEnd::Unplayable(why))
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
    declared_s: f64,
) -> String {
    if let Some(msg) = state.source_error() {
        return format!("source failed: {msg}");
    }
    match e {
        SymError::IoError(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
            shortfall(frames, rate, declared_s)
                .unwrap_or_else(|| "track truncated: stream ended mid-packet".to_string())
        }
        other => format!("track damaged: {other}"),
    }
}

/// What the decoder does after pushing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flow {
    Go,
    Jump(usize),
    Stop,
}

/// Channel mapping, optional resampling, and blocking pushes into the ring.
struct Pipe<'a> {
    producer: &'a mut Producer<f32>,
    cursor: &'a Cursor,
    in_channels: usize,
    out_channels: usize,
    mapped: Vec<f32>,
}

impl Pipe<'_> {
    fn feed(&mut self, samples: &[f32], resampler: Option<&mut StreamResampler>) -> Flow {
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
            None => push_blocking(self.producer, mapped, self.cursor),
            Some(r) => match r.process(mapped) {
                Ok(out) => push_blocking(self.producer, out, self.cursor),
                Err(e) => {
                    self.cursor
                        .state
                        .set_ended_early(format!("resampling failed: {e}"));
                    Flow::Stop
                }
            },
        }
    }

    fn push(&mut self, samples: &[f32]) -> Flow {
        push_blocking(self.producer, samples, self.cursor)
    }
}

/// Pushes all of `samples`, sleeping while the ring is full; a jump away ends the push.
fn push_blocking(producer: &mut Producer<f32>, mut samples: &[f32], cursor: &Cursor) -> Flow {
    while !samples.is_empty() {
        let before = samples.len();
        let (_, rest) = producer.push_partial_slice(samples);
        samples = rest;
        cursor
            .state
            .pushed
            .fetch_add((before - samples.len()) as u64, Ordering::AcqRel);
        if !samples.is_empty() {
            if cursor.stopped() || producer.is_abandoned() {
                return Flow::Stop;
            }
            if let Some(t) = cursor.poll_jump() {
                return Flow::Jump(t);
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    Flow::Go
}
