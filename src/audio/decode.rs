//! One demuxer plus one decoder for the first audio track of a stream.
//!
//! [`PacketSource`] hides the symphonia 0.6 plumbing (probe, track selection, decoder
//! creation, error classification) behind a single `next()` that either fills a buffer with
//! interleaved `f32` samples or says why it could not. Probing, whole-file decoding and the
//! streaming player all go through it, so they agree sample for sample.

use symphonia::core::codecs::audio::well_known as codec_ids;
use symphonia::core::codecs::audio::{AudioDecoder, AudioDecoderOptions};
use symphonia::core::errors::Error as SymError;
use symphonia::core::formats::probe::Hint;
use symphonia::core::formats::{FormatOptions, FormatReader, TrackType};
use symphonia::core::io::{MediaSource, MediaSourceStream};
use symphonia::core::meta::MetadataOptions;

use super::read_budget::{PACKET_BYTES, PROBE_BYTES, ReadBudget};

/// Undecodable packets in a row after which a stream is considered garbage, not damaged.
pub(crate) const MAX_CONSECUTIVE_BAD_PACKETS: u32 = 64;

/// Beyond these a header is lying (a WAV may claim any 32-bit rate), and believing it would
/// size the output ring and the resampler from it: gigabytes, or an abort. (Resampling 1 Hz
/// to 48 kHz would want about 1 GB too.)
pub(crate) const MIN_SAMPLE_RATE: u32 = 1_000;
pub(crate) const MAX_SAMPLE_RATE: u32 = 768_000;
pub(crate) const MAX_CHANNELS: u16 = 32;

/// What one call to [`PacketSource::next`] produced.
#[derive(Debug)]
pub(crate) enum Step {
    /// The buffer now holds this many frames of interleaved samples (possibly 0).
    Frames(usize),
    /// A packet of our track failed to decode and was skipped.
    Skipped(String),
    /// The container ended cleanly.
    End,
    /// The demuxer or decoder failed for good (an I/O error included).
    Failed(SymError),
}

/// A demuxer and decoder over one audio track.
pub(crate) struct PacketSource<'s> {
    format: Box<dyn FormatReader + 's>,
    decoder: Box<dyn AudioDecoder>,
    track_id: u32,
    codec: &'static str,
    sample_rate: u32,
    channels: u16,
    duration_s: Option<f64>,
    pcm16: bool,
    time_base: Option<symphonia::core::units::TimeBase>,
    /// Sum of the durations of the packets of our track read so far, in `time_base` units
    /// (delay and padding excluded): the duration that cannot lie, unlike a header.
    counted: u64,
    /// What the demuxer may still read in this step.
    budget: ReadBudget,
}

impl<'s> PacketSource<'s> {
    /// Probes the container and sets up a decoder for its default audio track.
    /// The error is a short reason, meant to go inside "not a decodable audio file (…)".
    pub(crate) fn open(
        source: Box<dyn MediaSource + 's>,
        ext_hint: Option<&str>,
    ) -> Result<Self, OpenError> {
        let budget = ReadBudget::default();
        budget.refill(PROBE_BYTES);
        let mss = MediaSourceStream::new(Box::new(budget.wrap(source)), Default::default());
        let mut hint = Hint::new();
        if let Some(ext) = ext_hint {
            let ext = ext.trim_start_matches('.').to_ascii_lowercase();
            if !ext.is_empty() {
                hint.with_extension(&ext);
            }
        }
        let format = symphonia::default::get_probe()
            .probe(
                &hint,
                mss,
                FormatOptions::default(),
                MetadataOptions::default(),
            )
            .map_err(|e| {
                if budget.overspent() {
                    OpenError::Reason("more than 64 MiB of tags and pictures before the audio")
                } else {
                    OpenError::Probe(e)
                }
            })?;
        let track = format
            .default_track(TrackType::Audio)
            .ok_or(OpenError::Reason("no audio track"))?;
        let params = track
            .codec_params
            .as_ref()
            .and_then(|p| p.audio())
            .ok_or(OpenError::Reason("no audio track"))?;
        let sample_rate = params.sample_rate.unwrap_or(0);
        let channels = params
            .channels
            .as_ref()
            .map(|c| u16::try_from(c.count()).unwrap_or(u16::MAX))
            .unwrap_or(0);
        if sample_rate > MAX_SAMPLE_RATE
            || (sample_rate > 0 && sample_rate < MIN_SAMPLE_RATE)
            || channels > MAX_CHANNELS
        {
            return Err(OpenError::Reason(
                "sample rate or channel count out of range",
            ));
        }
        // After the bounds: the decoder sizes its buffer from the parameters.
        let decoder = symphonia::default::get_codecs()
            .make_audio_decoder(params, &AudioDecoderOptions::default())
            .map_err(|_| OpenError::Reason("unsupported codec"))?;
        let duration_s = match (track.num_frames, sample_rate) {
            (Some(n), r) if r > 0 && n > 0 => Some(n as f64 / f64::from(r)),
            _ => match (track.duration, track.time_base) {
                (Some(d), Some(tb)) if d.get() > 0 => tb.calc_duration(d).map(|t| t.as_secs_f64()),
                _ => None,
            },
        };
        // Integer PCM of at most 16 bits (wav, flac, alac at 16): a WAV output of it is 16-bit
        // PCM, lossless and readable by every tool; lossy and float sources stay float.
        let pcm16 = params.bits_per_sample.is_some_and(|b| b <= 16)
            && !matches!(codec_name(params.codec), "mp3" | "vorbis" | "aac");
        let time_base = track.time_base;
        let track_id = track.id;
        Ok(PacketSource {
            pcm16,
            codec: codec_name(params.codec),
            track_id,
            format,
            decoder,
            sample_rate,
            channels,
            duration_s,
            time_base,
            counted: 0,
            budget,
        })
    }

    /// Short codec name: "mp3", "flac", "vorbis", "wav", "aac", …
    pub(crate) fn codec(&self) -> &'static str {
        self.codec
    }

    /// Whether the source is integer PCM of at most 16 bits.
    pub(crate) fn pcm16(&self) -> bool {
        self.pcm16
    }

    /// Sample rate; 0 until known (some containers only say after the first packet).
    pub(crate) fn sample_rate(&self) -> u32 {
        self.sample_rate
    }

    /// Channel count; 0 until known.
    pub(crate) fn channels(&self) -> u16 {
        self.channels
    }

    /// The duration the container declares, if it does.
    pub(crate) fn declared_duration_s(&self) -> Option<f64> {
        self.duration_s
    }

    /// The duration of the packets read so far (decoded or only demuxed), in seconds.
    pub(crate) fn counted_duration_s(&self) -> f64 {
        let dur = symphonia::core::units::Duration::new(self.counted);
        match self.time_base {
            Some(tb) => tb
                .calc_duration(dur)
                .map(|t| t.as_secs_f64())
                .unwrap_or(0.0),
            None if self.sample_rate > 0 => self.counted as f64 / f64::from(self.sample_rate),
            None => 0.0,
        }
    }

    /// Seeks to `to_s` seconds; returns where it landed (at or before `to_s` for an
    /// accurate seek; mp3 seeks coarsely, by its bitrate or TOC, so as not to read every
    /// frame up to the target). The decoder is reset.
    pub(crate) fn seek(&mut self, to_s: f64) -> Result<f64, String> {
        use symphonia::core::formats::{SeekMode, SeekTo};
        let secs = to_s.max(0.0);
        let time =
            symphonia::core::units::Time::try_new(secs.trunc() as i64, (secs.fract() * 1e9) as u32)
                .ok_or_else(|| format!("cannot seek to {to_s} s"))?;
        let mode = if self.codec == "mp3" {
            SeekMode::Coarse
        } else {
            SeekMode::Accurate
        };
        // A seek keeps nothing it reads; an Ogg one bisects the whole stream.
        self.budget.refill(u64::MAX);
        let seeked = self
            .format
            .seek(
                mode,
                SeekTo::Time {
                    time,
                    track_id: Some(self.track_id),
                },
            )
            .map_err(|e| match e {
                SymError::SeekError(kind) => format!("cannot seek in this track ({kind:?})"),
                other => format!("seek failed: {other}"),
            })?;
        self.decoder.reset();
        let ts = seeked.actual_ts;
        Ok(match self.time_base {
            Some(tb) => tb.calc_time(ts).map(|t| t.as_secs_f64()).unwrap_or(secs),
            None if self.sample_rate > 0 => ts.get() as f64 / f64::from(self.sample_rate),
            None => secs,
        })
    }

    /// The next packet of our track, counted but not decoded.
    fn next_packet(&mut self) -> Result<Option<symphonia::core::packet::Packet>, SymError> {
        loop {
            self.budget.refill(PACKET_BYTES);
            let packet = match self.format.next_packet() {
                Ok(Some(p)) => p,
                Ok(None) => return Ok(None),
                // A new chained stream (e.g. chained Ogg): we play the first one only.
                Err(SymError::ResetRequired) => return Ok(None),
                Err(e) => return Err(e),
            };
            if packet.track_id != self.track_id {
                continue;
            }
            self.counted = self.counted.saturating_add(packet.dur.get());
            return Ok(Some(packet));
        }
    }

    /// Reads the next packet of our track without decoding it: `Frames(0)` for a packet.
    pub(crate) fn skip(&mut self) -> Step {
        match self.next_packet() {
            Ok(Some(_)) => Step::Frames(0),
            Ok(None) => Step::End,
            Err(e) => Step::Failed(e),
        }
    }

    /// Reads and decodes the next packet of our track into `out` (interleaved, resized to fit).
    pub(crate) fn next(&mut self, out: &mut Vec<f32>) -> Step {
        let packet = match self.next_packet() {
            Ok(Some(p)) => p,
            Ok(None) => return Step::End,
            Err(e) => return Step::Failed(e),
        };
        match self.decoder.decode(&packet) {
            Ok(buf) => {
                let spec = buf.spec();
                let ch = u16::try_from(spec.channels().count()).unwrap_or(u16::MAX);
                if spec.rate() > MAX_SAMPLE_RATE
                    || (spec.rate() > 0 && spec.rate() < MIN_SAMPLE_RATE)
                    || ch > MAX_CHANNELS
                {
                    return Step::Skipped(format!(
                        "{} Hz, {ch} channels is out of range",
                        spec.rate()
                    ));
                }
                if spec.rate() > 0 {
                    self.sample_rate = spec.rate();
                }
                if ch > 0 {
                    self.channels = ch;
                }
                buf.copy_to_vec_interleaved(out);
                Step::Frames(buf.frames())
            }
            Err(SymError::DecodeError(msg)) => Step::Skipped(msg.to_string()),
            Err(SymError::IoError(e)) => Step::Skipped(e.to_string()),
            Err(e) => Step::Failed(e),
        }
    }
}

/// Why a stream could not be opened.
#[derive(Debug)]
pub(crate) enum OpenError {
    /// symphonia found no format it knows (or the source failed while probing).
    Probe(SymError),
    /// A format was found but it holds nothing we can decode.
    Reason(&'static str),
}

impl OpenError {
    /// The reason in a few words, for "not a decodable audio file (…)".
    pub(crate) fn reason(&self) -> String {
        match self {
            OpenError::Probe(SymError::IoError(e))
                if e.kind() == std::io::ErrorKind::UnexpectedEof =>
            {
                "unrecognized format".to_string()
            }
            OpenError::Probe(SymError::Unsupported(_)) => "unrecognized format".to_string(),
            OpenError::Probe(e) => e.to_string(),
            OpenError::Reason(r) => (*r).to_string(),
        }
    }
}

/// Maps a symphonia codec id to the short name MEFF shows and stores.
pub(crate) fn codec_name(id: symphonia::core::codecs::audio::AudioCodecId) -> &'static str {
    use codec_ids::*;
    match id {
        CODEC_ID_MP3 => "mp3",
        CODEC_ID_MP2 => "mp2",
        CODEC_ID_MP1 => "mp1",
        CODEC_ID_FLAC => "flac",
        CODEC_ID_VORBIS => "vorbis",
        CODEC_ID_AAC => "aac",
        CODEC_ID_ALAC => "alac",
        CODEC_ID_OPUS => "opus",
        _ if is_pcm_like(id) => "wav",
        _ => "unknown",
    }
}

/// PCM and ADPCM codec ids (what WAV files carry) form one contiguous block.
fn is_pcm_like(id: symphonia::core::codecs::audio::AudioCodecId) -> bool {
    (codec_ids::CODEC_ID_PCM_S32LE..=codec_ids::CODEC_ID_ADPCM_IMA_QT).contains(&id)
}
