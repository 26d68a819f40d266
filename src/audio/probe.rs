//! Checking that bytes are audio we can play, and decoding whole files.

use std::io::Cursor;
use std::path::Path;

use anyhow::{Result, anyhow, bail};
use serde::Serialize;
use symphonia::core::io::{MediaSourceStream, ReadOnlySource};

use super::decode::{MAX_CONSECUTIVE_BAD_PACKETS, PacketSource, Step};

/// Facts about a track, as stored in the catalog.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrackInfo {
    /// "mp3", "flac", "vorbis", "wav" (any PCM/ADPCM) or "aac" (also "alac", "mp2", … if met).
    pub codec: String,
    pub sample_rate: u32,
    pub channels: u16,
    pub duration_s: f64,
}

/// How many leading packets must decode for a probe to accept a file: random bytes can
/// contain something that looks like an MP3 frame header, real files decode cleanly.
const PROBE_PACKETS: usize = 4;

fn not_audio(reason: impl std::fmt::Display) -> anyhow::Error {
    anyhow!("not a decodable audio file ({reason})")
}

fn open_bytes<'a>(data: &'a [u8], ext_hint: Option<&str>) -> Result<PacketSource<'a>> {
    if data.is_empty() {
        bail!("file is empty");
    }
    let mss = MediaSourceStream::new(Box::new(Cursor::new(data)), Default::default());
    PacketSource::open(mss, ext_hint).map_err(|e| not_audio(e.reason()))
}

/// Opens the bytes the way `play_from_reader` will see them: not seekable.
fn open_streaming<'a>(data: &'a [u8], ext_hint: Option<&str>) -> Result<PacketSource<'a>> {
    let src = ReadOnlySource::new(Cursor::new(data));
    let mss = MediaSourceStream::new(Box::new(src), Default::default());
    PacketSource::open(mss, ext_hint).map_err(|e| not_audio(e.reason()))
}

/// Probes the bytes of a whole file.
///
/// Refuses empty input, anything symphonia does not recognize, files in which the first
/// packets do not actually decode, and files that decode only when seekable (an MP4 with its
/// index at the end), since every track must be streamable. When the container does not
/// declare a duration (e.g. an MP3 without a Xing header) the whole file is decoded to
/// measure it.
pub fn probe_bytes(data: &[u8], ext_hint: Option<&str>) -> Result<TrackInfo> {
    guarded(|| probe_inner(data, ext_hint))
}

/// Runs `f`, turning a panic inside a demuxer or decoder (hostile input) into an error.
fn guarded<T>(f: impl FnOnce() -> Result<T>) -> Result<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))
        .unwrap_or_else(|_| Err(not_audio("the decoder crashed on it")))
}

fn probe_inner(data: &[u8], ext_hint: Option<&str>) -> Result<TrackInfo> {
    // Seekable, the readers find the declared duration (e.g. the last Ogg page).
    let seekable = open_bytes(data, ext_hint)?;
    let declared = seekable.declared_duration_s();
    let mut src = match open_streaming(data, ext_hint) {
        Ok(src) => src,
        Err(_) if data.get(4..8) == Some(b"ftyp") => bail!(
            "not streamable: the MP4 index (moov atom) is at the end of the file; \
             remux it with `ffmpeg -i IN -c copy -movflags +faststart OUT`"
        ),
        Err(e) => bail!("{e} when read as a stream"),
    };
    drop(seekable);
    let mut buf = Vec::new();
    let mut good = 0usize;
    let mut bad = 0u32;
    let mut frames = 0u64;
    let mut ended = false;
    while good < PROBE_PACKETS {
        match src.next(&mut buf) {
            Step::Frames(n) => {
                good += 1;
                frames += n as u64;
            }
            Step::Skipped(why) => {
                bad += 1;
                if good == 0 && bad >= 8 {
                    return Err(not_audio(format!("no packet decodes: {why}")));
                }
            }
            Step::End => {
                ended = true;
                break;
            }
            Step::Failed(e) if good == 0 => return Err(not_audio(e)),
            Step::Failed(_) => {
                ended = true;
                break;
            }
        }
    }
    // Random bytes that happen to hold a frame sync decode as a lone packet between errors.
    if good == 0 || (bad > 0 && good < PROBE_PACKETS && !ended) || (bad as usize) >= good {
        return Err(not_audio("no packet decodes"));
    }
    if frames == 0 && ended {
        return Err(not_audio("no audio frames"));
    }
    let duration_s = match declared.or(src.declared_duration_s()) {
        Some(d) => d,
        None => {
            if !ended {
                frames += count_remaining_frames(&mut src, &mut buf);
            }
            let rate = src.sample_rate();
            if rate == 0 {
                0.0
            } else {
                frames as f64 / f64::from(rate)
            }
        }
    };
    if src.sample_rate() == 0 || src.channels() == 0 {
        return Err(not_audio("unknown sample rate or channel count"));
    }
    Ok(TrackInfo {
        codec: src.codec().to_string(),
        sample_rate: src.sample_rate(),
        channels: src.channels(),
        duration_s,
    })
}

fn count_remaining_frames(src: &mut PacketSource<'_>, buf: &mut Vec<f32>) -> u64 {
    let mut frames = 0u64;
    let mut bad_run = 0u32;
    loop {
        match src.next(buf) {
            Step::Frames(n) => {
                frames += n as u64;
                bad_run = 0;
            }
            Step::Skipped(_) => {
                bad_run += 1;
                if bad_run >= MAX_CONSECUTIVE_BAD_PACKETS {
                    return frames;
                }
            }
            Step::End | Step::Failed(_) => return frames,
        }
    }
}

/// Probes a file on disk; the extension is used as a hint.
pub fn probe_file(path: &Path) -> Result<TrackInfo> {
    let data = std::fs::read(path).map_err(|e| anyhow!("cannot read {}: {e}", path.display()))?;
    let ext = path.extension().and_then(|e| e.to_str());
    // One flat message ("x.mp3: file is empty"), readable whatever way the caller prints it.
    probe_bytes(&data, ext).map_err(|e| anyhow!("{}: {e}", path.display()))
}

/// Decodes a whole file to interleaved `f32` PCM: `(sample_rate, channels, samples)`.
/// Undecodable packets are skipped, as the player does.
pub fn decode_all(data: &[u8], ext_hint: Option<&str>) -> Result<(u32, u16, Vec<f32>)> {
    guarded(|| decode_all_inner(data, ext_hint))
}

fn decode_all_inner(data: &[u8], ext_hint: Option<&str>) -> Result<(u32, u16, Vec<f32>)> {
    let mut src = open_bytes(data, ext_hint)?;
    let mut buf = Vec::new();
    let mut all = Vec::new();
    let mut bad_run = 0u32;
    loop {
        match src.next(&mut buf) {
            Step::Frames(_) => {
                all.extend_from_slice(&buf);
                bad_run = 0;
            }
            Step::Skipped(why) => {
                bad_run += 1;
                if bad_run >= MAX_CONSECUTIVE_BAD_PACKETS {
                    if all.is_empty() {
                        return Err(not_audio(format!("no packet decodes: {why}")));
                    }
                    break;
                }
            }
            Step::End => break,
            Step::Failed(e) => {
                if all.is_empty() {
                    return Err(not_audio(e));
                }
                break;
            }
        }
    }
    if all.is_empty() || src.sample_rate() == 0 || src.channels() == 0 {
        return Err(not_audio("no audio frames"));
    }
    Ok((src.sample_rate(), src.channels(), all))
}
