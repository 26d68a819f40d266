//! Checking that bytes are audio we can play, and decoding whole files.

use std::io::{Cursor, Read};
use std::path::Path;

use anyhow::{Result, anyhow, bail};
use serde::Serialize;
use symphonia::core::io::ReadOnlySource;

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
    PacketSource::open(Box::new(Cursor::new(data)), ext_hint).map_err(|e| not_audio(e.reason()))
}

/// Probes the bytes of a whole file held in memory (see [`probe_reader`]).
pub fn probe_bytes(data: &[u8], ext_hint: Option<&str>) -> Result<TrackInfo> {
    if data.is_empty() {
        bail!("file is empty");
    }
    if is_mp4(data) {
        return guarded(|| probe_source(Box::new(Cursor::new(data.to_vec())), ext_hint));
    }
    guarded(|| probe_reader(Cursor::new(data), ext_hint, data))
}

/// An MP4 (m4a) file: its index may follow the audio (ffmpeg's default), so it is probed
/// seekable, as a stream of it is read (the reader fetches the index from the end first).
fn is_mp4(head: &[u8]) -> bool {
    head.get(4..8) == Some(b"ftyp")
}

/// Runs `f`, turning a panic inside a demuxer or decoder (hostile input) into an error.
fn guarded<T>(f: impl FnOnce() -> Result<T>) -> Result<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))
        .unwrap_or_else(|_| Err(not_audio("the decoder crashed on it")))
}

/// Probes a track read front to back, the way `play_from_reader` will see it (not seekable),
/// in bounded memory whatever its length. `head` is the file's first bytes (for the error
/// about MP4s that cannot stream).
///
/// Refuses anything symphonia does not recognize, files whose first packets do not actually
/// decode, and files that decode only when seekable (an MP4 with its index at the end). The
/// duration is the sum of the demuxed packets' durations (encoder delay and padding
/// excluded), never a header's claim: a truncated or header-damaged file is listed as long as
/// what it holds. Only the first packets are decoded.
fn probe_reader<R: Read + Send + Sync>(
    reader: R,
    ext_hint: Option<&str>,
    head: &[u8],
) -> Result<TrackInfo> {
    if is_mp4(head) {
        bail!("an MP4 is probed seekable");
    }
    probe_source(Box::new(ReadOnlySource::new(reader)), ext_hint)
}

/// The probe itself, over any source (seekable or not).
fn probe_source<'a>(
    source: Box<dyn symphonia::core::io::MediaSource + 'a>,
    ext_hint: Option<&str>,
) -> Result<TrackInfo> {
    let mut src = match PacketSource::open(source, ext_hint) {
        Ok(src) => src,
        Err(e) => return Err(not_audio(e.reason())),
    };
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
    if src.sample_rate() == 0 || src.channels() == 0 {
        return Err(not_audio("unknown sample rate or channel count"));
    }
    while !ended {
        // A demuxer error past the first packets is damage at the end of the file (a cut
        // download): the track is as long as what came before it.
        ended = matches!(src.skip(), Step::End | Step::Failed(_));
    }
    Ok(TrackInfo {
        codec: src.codec().to_string(),
        sample_rate: src.sample_rate(),
        channels: src.channels(),
        duration_s: src.counted_duration_s(),
    })
}

/// Passes every byte read from `inner` to `observe`, in order: what lets a push probe and
/// hash a file in one pass.
struct ObservedReader<R, F> {
    inner: R,
    observe: F,
}

impl<R: Read, F: FnMut(&[u8])> Read for ObservedReader<R, F> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        (self.observe)(&buf[..n]);
        Ok(n)
    }
}

/// Probes a file on disk (the extension is a hint) in one pass that also hands every byte
/// of it, in order, to `observe` (a hasher): bounded memory for any size. On success the
/// whole file has been observed; on refusal reading stopped where the probe did.
pub fn scan_file(path: &Path, observe: impl FnMut(&[u8]) + Send + Sync) -> Result<TrackInfo> {
    let cannot_read = |e: std::io::Error| anyhow!("cannot read {}: {e}", path.display());
    let file = std::fs::File::open(path).map_err(cannot_read)?;
    let mut head = [0u8; 8];
    let got = std::os::unix::fs::FileExt::read_at(&file, &mut head, 0).map_err(cannot_read)?;
    if got == 0 {
        bail!("{}: file is empty", path.display());
    }
    let ext = path.extension().and_then(|e| e.to_str());
    if is_mp4(&head[..got]) {
        // Probed seekable (its index may be at the end), then read once more for `observe`.
        let probe_file = std::fs::File::open(path).map_err(cannot_read)?;
        let info = guarded(|| probe_source(Box::new(probe_file), ext))
            .map_err(|e| anyhow!("{}: {e}", path.display()))?;
        let mut reader = ObservedReader {
            inner: std::io::BufReader::with_capacity(1 << 20, file),
            observe,
        };
        std::io::copy(&mut reader, &mut std::io::sink()).map_err(cannot_read)?;
        return Ok(info);
    }
    let mut reader = ObservedReader {
        inner: std::io::BufReader::with_capacity(1 << 20, file),
        observe,
    };
    // One flat message ("x.mp3: not a decodable …"), readable whatever way the caller prints it.
    let info = guarded(|| probe_reader(&mut reader, ext, &head[..got]))
        .map_err(|e| anyhow!("{}: {e}", path.display()))?;
    std::io::copy(&mut reader, &mut std::io::sink()).map_err(cannot_read)?;
    Ok(info)
}

/// Probes a file on disk; the extension is used as a hint.
pub fn probe_file(path: &Path) -> Result<TrackInfo> {
    scan_file(path, |_| {})
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
