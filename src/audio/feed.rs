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

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{Result, anyhow};
use rtrb::{Consumer, Producer, RingBuffer};
use symphonia::core::errors::Error as SymError;

use super::control::{PlaybackControl, SeekOutcome, SeekRequest};
use super::decode::{MAX_CONSECUTIVE_BAD_PACKETS, PacketSource, Step};
use super::jump_cursor::{Action, Cursor, SourceReader};
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

/// Where a seek left the decoder.
enum Landing {
    /// Decoding goes on from `offset_s`; the first `discard` frames decoded precede the
    /// target (a seek lands on a packet boundary at or before it).
    At {
        offset_s: f64,
        discard: u64,
    },
    PastEnd,
    Failed(String),
}

fn seek_packets(packets: &mut PacketSource<'_>, req: &SeekRequest, duration_s: f64) -> Landing {
    if duration_s > 0.0 && req.to_s >= duration_s {
        return Landing::PastEnd;
    }
    match packets.seek(req.to_s) {
        Ok(actual) => {
            let rate = f64::from(packets.sample_rate());
            let discard = ((req.to_s - actual).max(0.0) * rate).round() as u64;
            Landing::At {
                offset_s: actual.max(req.to_s),
                discard,
            }
        }
        Err(why) => {
            tracing::debug!("seek to {} s failed: {why}", req.to_s);
            Landing::Failed(why)
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
    /// The queue position of the last boundary registered.
    last_index: Option<usize>,
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
        last_index: None,
        last_error: None,
    };
    let mut next = Next::First;
    while !session.cursor.stopped() {
        let Some(track) = source.open(next) else {
            // The queue is decoded, but its last second still plays: a jump or a seek may
            // still come (`seek -10` near the end), so wait for one until playback is over.
            match session.idle_until_jump() {
                Some(t) => {
                    next = Next::Jump(t);
                    continue;
                }
                None => break,
            }
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
    /// With everything decoded: the decoder is done (the output drains the ring), and waits
    /// for a jump or seek until playback is over. Returns the track to decode again.
    fn idle_until_jump(&self) -> Option<usize> {
        let state = &self.cursor.state;
        let control = &self.cursor.control;
        self.ring.as_ref()?;
        state.done.store(true, Ordering::Release);
        let abandoned = || self.ring.as_ref().is_none_or(|r| r.producer.is_abandoned());
        while !self.cursor.stopped() && !state.playback_over.load(Ordering::Acquire) && !abandoned()
        {
            if control.epoch() != state.seen_epoch.load(Ordering::Acquire) {
                // Not done any more before anything is flushed, so the output waits.
                state.done.store(false, Ordering::Release);
                match self.cursor.poll_jump() {
                    Some(Action::Leave(t)) => return Some(t),
                    // Nothing of the last track is open any more: open it again and seek.
                    Some(Action::Seek(req)) => {
                        let _ = self.cursor.leave(req.index, Some(req));
                        return Some(req.index);
                    }
                    // A jump to the track decoded last: it is all in the ring already.
                    None => {}
                }
                state.done.store(true, Ordering::Release);
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        None
    }

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
        let seekable = Arc::new(AtomicBool::new(false));
        let src = SourceReader {
            inner: track.reader,
            cursor: self.cursor.clone(),
            seekable: seekable.clone(),
        };
        // Seekable during the probe only when a seek needs it (an ogg reader finds the
        // stream's end then, and cannot seek without it), or for an MP4, whose index may
        // follow the audio (its reader then fetches the index from the end first).
        let random_access = src.inner.random_access_len().is_some();
        let mp4 = matches!(track.ext.as_deref(), Some("m4a" | "mp4"));
        let probe_seekable =
            state.reopen_seekable.swap(false, Ordering::AcqRel) || (mp4 && random_access);
        seekable.store(probe_seekable, Ordering::Relaxed);
        let opened = PacketSource::open(Box::new(src), track.ext.as_deref());
        seekable.store(true, Ordering::Relaxed);
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
        let new_resampler = || {
            if ring.out_rate != rate {
                StreamResampler::new(rate, ring.out_rate, usize::from(ring.out_channels)).map(Some)
            } else {
                Ok(None)
            }
        };
        let mut resampler = match new_resampler() {
            Ok(r) => r,
            Err(e) => return self.unplayable(format!("{e:#}")),
        };
        let control = self.cursor.control.clone();
        let mut offset_s = 0.0;
        let mut seek_mark = None;
        let mut discard = 0u64;
        let pending = state.pending_seek.lock().ok().and_then(|mut p| p.take());
        if let Some(req) = pending {
            match seek_packets(&mut packets, &req, duration_s) {
                Landing::At {
                    offset_s: o,
                    discard: d,
                } => {
                    control.finish_seek(req.id, SeekOutcome::Landed(o));
                    (offset_s, discard, seek_mark) = (o, d, Some((req.to_s, req.at)));
                    buf.clear();
                }
                Landing::PastEnd => {
                    control.finish_seek(req.id, SeekOutcome::NextTrack);
                    return (Outcome::Ended, TrackEnd::Left);
                }
                Landing::Failed(why) => control.finish_seek(req.id, SeekOutcome::Failed(why)),
            }
        }
        // A jump to this track while it was being opened dropped what came before it.
        let start = state
            .pushed
            .load(Ordering::Acquire)
            .max(state.flush_to.load(Ordering::Acquire));
        let continues = self.last_index == Some(track.index) && seek_mark.is_some();
        self.last_index = Some(track.index);
        state.add_boundary(Boundary {
            start,
            index: track.index,
            duration_s,
            offset_s,
            seek: seek_mark,
            continues,
        });
        let mut pipe = Pipe {
            producer: &mut ring.producer,
            cursor: &self.cursor,
            in_channels: usize::from(channels),
            out_channels: usize::from(ring.out_channels),
            mapped: Vec::new(),
        };
        let ch = usize::from(channels).max(1);
        let mut frames = (buf.len() / ch) as u64;
        let mut flow = pipe.feed(&buf, resampler.as_mut());
        // Only now: an output that finds the ring empty before this track's first samples
        // are in is still waiting between tracks.
        state.between_tracks_at.store(u64::MAX, Ordering::Release);
        let mut bad_run = 0u32;
        let mut ended_early = None;
        loop {
            let req = match flow {
                Flow::Go => match self.cursor.poll_jump() {
                    Some(Action::Leave(t)) => {
                        flow = Flow::Jump(t);
                        break;
                    }
                    Some(Action::Seek(req)) => Some(req),
                    None => None,
                },
                Flow::Seek(req) => Some(req),
                Flow::Jump(_) | Flow::Stop => break,
            };
            if let Some(req) = req {
                flow = Flow::Go;
                // Everything buffered is from before the seek.
                let pushed = state.pushed.load(Ordering::Acquire);
                state.flush_to.fetch_max(pushed, Ordering::AcqRel);
                match seek_packets(&mut packets, &req, duration_s) {
                    Landing::At {
                        offset_s,
                        discard: d,
                    } => {
                        control.finish_seek(req.id, SeekOutcome::Landed(offset_s));
                        discard = d;
                        seek_mark = Some((req.to_s, req.at));
                        resampler = new_resampler().ok().flatten();
                        state.add_boundary(Boundary {
                            start: pushed,
                            index: track.index,
                            duration_s,
                            offset_s,
                            seek: Some((req.to_s, req.at)),
                            continues: true,
                        });
                    }
                    Landing::PastEnd => {
                        control.finish_seek(req.id, SeekOutcome::NextTrack);
                        break;
                    }
                    Landing::Failed(why) => {
                        tracing::debug!("seek failed ({why}); opening the track again");
                        // Some readers seek only if they saw the whole stream when opened,
                        // and a plain stream cannot go back: open the track again (seekable
                        // from the start if it can be) and seek then, reading forward if
                        // need be. A seek that fails there is reported.
                        state
                            .reopen_seekable
                            .store(random_access && !probe_seekable, Ordering::Release);
                        flow = Flow::Jump(track.index);
                        if let Ok(mut p) = state.pending_seek.lock() {
                            *p = Some(req);
                        }
                        if let Ok(mut l) = state.leave_to.lock() {
                            *l = Some(track.index);
                        }
                        break;
                    }
                }
                continue;
            }
            match packets.next(&mut buf) {
                Step::Frames(n) => {
                    bad_run = 0;
                    frames += n as u64;
                    let mut samples = &buf[..];
                    if discard > 0 {
                        let d = discard.min(n as u64);
                        discard -= d;
                        samples = &buf[(d as usize * ch).min(buf.len())..];
                    }
                    flow = pipe.feed(samples, resampler.as_mut());
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
                    // After a seek the frames counted are not the whole track's.
                    if seek_mark.is_none() {
                        ended_early = shortfall(frames, rate, duration_s);
                    }
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
            Flow::Go | Flow::Seek(_) => {}
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
#[derive(Debug, Clone, Copy)]
enum Flow {
    Go,
    Jump(usize),
    Stop,
    Seek(SeekRequest),
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
            match cursor.poll_jump() {
                Some(Action::Leave(t)) => return Flow::Jump(t),
                // The rest of this packet precedes the seek: dropped with the ring's contents.
                Some(Action::Seek(req)) => return Flow::Seek(req),
                None => {}
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    Flow::Go
}
