//! The WAV output: the decoded PCM at the track's own rate and channel count, written as
//! fast as it is decoded. Samples are 32-bit IEEE float, so the file holds exactly what the
//! decoder produced (handy for comparing outputs).

use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::{Result, anyhow};
use rtrb::Consumer;

use super::shared::Ctx;

/// Drains the ring into `path` until the decoder is done (or the control is stopped).
pub(crate) fn run(
    path: &Path,
    mut consumer: Consumer<f32>,
    rate: u32,
    channels: u16,
    ctx: &Ctx<'_>,
) -> Result<()> {
    let Ctx {
        dec,
        out,
        control,
        start,
    } = *ctx;
    let spec = hound::WavSpec {
        channels,
        sample_rate: rate,
        bits_per_sample: 32,
        sample_format: hound::SampleFormat::Float,
    };
    let fail = |e: hound::Error| anyhow!("cannot write {}: {e}", path.display());
    let mut writer = hound::WavWriter::create(path, spec).map_err(fail)?;
    let ch = usize::from(channels.max(1));
    let capacity = consumer.buffer().capacity().max(1);
    let mut frames = 0u64;
    loop {
        if control.is_stopped() || dec.is_aborted() {
            break;
        }
        if control.is_paused() {
            std::thread::sleep(Duration::from_millis(5));
            continue;
        }
        let done = dec.is_done();
        let n = consumer.slots() / ch * ch;
        if n == 0 {
            if done {
                out.drained.store(true, Ordering::Relaxed);
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
            continue;
        }
        if let Ok(chunk) = consumer.read_chunk(n) {
            let (a, b) = chunk.as_slices();
            for &s in a.iter().chain(b) {
                writer.write_sample(s).map_err(fail)?;
            }
            chunk.commit_all();
        }
        out.mark_first_sample(start);
        frames += (n / ch) as u64;
        out.frames.store(frames, Ordering::Relaxed);
        control.set_progress(frames, consumer.slots() as f32 / capacity as f32);
    }
    writer.finalize().map_err(fail)?;
    Ok(())
}
