//! Adapting decoded audio to what a device wants: channel mapping and a streaming
//! resampler (rubato's synchronous FFT resampler, fed in fixed-size input chunks).

use anyhow::{Result, anyhow};
use rubato::audioadapter_buffers::direct::InterleavedSlice;
use rubato::{Fft, FixedSync, Indexing, Resampler};

/// Input frames per resampler chunk (~23 ms at 44.1 kHz).
const CHUNK_FRAMES: usize = 1024;

/// Maps interleaved `input` with `in_ch` channels to `out_ch` channels into `out`.
/// Mono is copied to every output channel; many-to-mono averages; otherwise channels are
/// copied by index and missing ones are silent.
pub(crate) fn map_channels(input: &[f32], in_ch: usize, out_ch: usize, out: &mut Vec<f32>) {
    out.clear();
    if in_ch == 0 || out_ch == 0 {
        return;
    }
    let frames = input.len() / in_ch;
    out.reserve(frames * out_ch);
    for frame in input.chunks_exact(in_ch) {
        if in_ch == 1 {
            out.extend(std::iter::repeat_n(frame[0], out_ch));
        } else if out_ch == 1 {
            out.push(frame.iter().sum::<f32>() / in_ch as f32);
        } else {
            out.extend((0..out_ch).map(|c| frame.get(c).copied().unwrap_or(0.0)));
        }
    }
}

/// A resampler fed with arbitrary-length interleaved input, returning whatever output is
/// ready. The resampler's own delay is trimmed, and [`flush`](Self::flush) emits the tail so
/// that the output length is `input frames * ratio`.
pub(crate) struct StreamResampler {
    inner: Fft<f32>,
    channels: usize,
    pending: Vec<f32>,
    chunk_out: Vec<f32>,
    ready: Vec<f32>,
    delay_left: usize,
    in_frames: u64,
    out_frames: u64,
    ratio: f64,
}

impl StreamResampler {
    pub(crate) fn new(in_rate: u32, out_rate: u32, channels: usize) -> Result<Self> {
        let inner = Fft::<f32>::new(
            in_rate as usize,
            out_rate as usize,
            CHUNK_FRAMES,
            channels,
            FixedSync::Input,
        )
        .map_err(|e| anyhow!("cannot resample {in_rate} Hz to {out_rate} Hz: {e}"))?;
        let chunk_out = vec![0.0; inner.output_frames_max() * channels];
        let delay_left = inner.output_delay();
        Ok(StreamResampler {
            inner,
            channels,
            pending: Vec::with_capacity(CHUNK_FRAMES * channels * 2),
            chunk_out,
            ready: Vec::new(),
            delay_left,
            in_frames: 0,
            out_frames: 0,
            ratio: f64::from(out_rate) / f64::from(in_rate),
        })
    }

    /// Adds input; returns the output that became ready.
    pub(crate) fn process(&mut self, input: &[f32]) -> Result<&[f32]> {
        self.ready.clear();
        self.pending.extend_from_slice(input);
        self.in_frames += (input.len() / self.channels) as u64;
        let mut offset = 0;
        loop {
            let need = self.inner.input_frames_next();
            let have = self.pending.len() / self.channels - offset;
            if have < need {
                break;
            }
            let indexing = Indexing::new().input_offset(offset);
            let used = self.run_chunk(&indexing)?;
            offset += used;
        }
        self.pending.drain(..offset * self.channels);
        Ok(&self.ready)
    }

    /// Ends the stream: returns the remaining output.
    pub(crate) fn flush(&mut self) -> Result<&[f32]> {
        self.ready.clear();
        let expected = (self.in_frames as f64 * self.ratio).round() as u64;
        let rest = self.pending.len() / self.channels;
        let indexing = Indexing::new().partial_len(rest);
        self.run_chunk(&indexing)?;
        self.pending.clear();
        // Push silence through until the delayed tail is out (bounded, in case of a bug).
        let mut guard = 0;
        while self.out_frames < expected && guard < 64 {
            self.run_chunk(&Indexing::new().partial_len(0))?;
            guard += 1;
        }
        if self.out_frames > expected {
            let extra = (self.out_frames - expected) as usize * self.channels;
            let keep = self.ready.len().saturating_sub(extra);
            self.ready.truncate(keep);
            self.out_frames = expected;
        }
        Ok(&self.ready)
    }

    /// Runs one chunk; appends its output (minus any delay still to trim) to `ready`.
    fn run_chunk(&mut self, indexing: &Indexing) -> Result<usize> {
        let in_frames = self.pending.len() / self.channels;
        let input = InterleavedSlice::new(&self.pending[..], self.channels, in_frames)
            .map_err(|e| anyhow!("resampler input: {e}"))?;
        let out_cap = self.chunk_out.len() / self.channels;
        let mut output = InterleavedSlice::new_mut(&mut self.chunk_out[..], self.channels, out_cap)
            .map_err(|e| anyhow!("resampler output: {e}"))?;
        let (used, produced) = self
            .inner
            .process_into_buffer(&input, &mut output, Some(indexing))
            .map_err(|e| anyhow!("resampling failed: {e}"))?;
        let skip = self.delay_left.min(produced);
        self.delay_left -= skip;
        let fresh = &self.chunk_out[skip * self.channels..produced * self.channels];
        self.ready.extend_from_slice(fresh);
        self.out_frames += (produced - skip) as u64;
        Ok(used)
    }
}
