//! The WAV output: the decoded PCM at the track's own rate and channel count, written as
//! fast as it is decoded. A source of 16-bit (or narrower) integer PCM is written as 16-bit
//! PCM, which every tool reads and which holds its samples exactly; other sources (lossy
//! codecs, float or 24-bit PCM) as 32-bit IEEE float, which holds what the decoder produced.

use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::gain::Gain;
use super::ring_tap::RingTap;
use super::shared::Ctx;
use anyhow::{Result, anyhow};

#[derive(Debug, Clone, Copy)]
pub(crate) struct WavFormat {
    pub rate: u32,
    pub channels: u16,
    pub pcm16: bool,
}

/// Drains the ring into `path` until the decoder is done (or the control is stopped).
pub(crate) fn run(path: &Path, mut tap: RingTap, format: WavFormat, ctx: &Ctx<'_>) -> Result<()> {
    let WavFormat {
        rate,
        channels,
        pcm16,
    } = format;
    let Ctx {
        dec,
        out,
        control,
        start,
    } = *ctx;
    let spec = hound::WavSpec {
        channels,
        sample_rate: rate,
        bits_per_sample: if pcm16 { 16 } else { 32 },
        sample_format: if pcm16 {
            hound::SampleFormat::Int
        } else {
            hound::SampleFormat::Float
        },
    };
    let fail = |e: hound::Error| anyhow!("cannot write {}: {e}", path.display());
    let mut writer = hound::WavWriter::create(path, spec).map_err(fail)?;
    let ch = usize::from(channels.max(1));
    let capacity = tap.capacity();
    let mut frames = 0u64;
    let mut gain = Gain::new(control, rate);
    let mut scratch: Vec<f32> = Vec::new();
    loop {
        if control.is_stopped() || dec.is_aborted() {
            break;
        }
        if control.is_paused() {
            std::thread::sleep(Duration::from_millis(5));
            continue;
        }
        let done = dec.is_done();
        let n = tap.prepare(dec, out, control) / ch * ch;
        if n == 0 {
            if done && tap.consumer.slots() == 0 {
                out.drained.store(true, Ordering::Relaxed);
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
            continue;
        }
        if let Ok(chunk) = tap.consumer.read_chunk(n) {
            let (a, b) = chunk.as_slices();
            let (a, b): (&[f32], &[f32]) = if gain.is_unity(control) {
                (a, b)
            } else {
                scratch.clear();
                scratch.extend(a.iter().chain(b));
                gain.apply(control, &mut scratch, ch);
                (&scratch, &[])
            };
            if pcm16 {
                // Decoded 16-bit samples are k/32768 exactly: this gives k back.
                for &s in a.iter().chain(b) {
                    let k = (s * 32768.0).round().clamp(-32768.0, 32767.0) as i16;
                    writer.write_sample(k).map_err(fail)?;
                }
            } else {
                for &s in a.iter().chain(b) {
                    writer.write_sample(s).map_err(fail)?;
                }
            }
            chunk.commit_all();
            tap.consumed(n);
        }
        out.mark_first_sample(start);
        frames += (n / ch) as u64;
        out.frames.store(frames, Ordering::Relaxed);
        control.set_progress(frames, tap.consumer.slots() as f32 / capacity as f32);
    }
    writer.finalize().map_err(fail)?;
    Ok(())
}
