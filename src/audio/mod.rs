//! Audio: probing and decoding (symphonia), resampling (rubato), a lock-free ring (rtrb)
//! and three outputs (cpal device, real-time null clock, WAV file).
//!
//! ```text
//! bytes (blocking Read) → decode thread: demux + decode → channel map → resample (device)
//!   → rtrb ring (~1 s) → output: cpal callback | null clock | wav writer
//! ```
//! Nothing here buffers a whole track: memory is flat for any length, and what the demuxer
//! keeps of a file's tags and pictures is bounded too.
//!
//! Files: `probe` (TrackInfo, probe_bytes/probe_file, decode_all), `decode` (one demuxer and
//! decoder), `read_budget` (what one demuxer step may read), `feed` (the decode thread), `resample`, `player` (play_from_reader and stats),
//! `null_out`, `wav_out`, `device_out`, `control` (pause/resume/stop, now playing),
//! `output` (OutputKind), `shared` (atomics shared by the threads).

mod control;
mod decode;
mod device_out;
mod feed;
mod gain;
mod jump_cursor;
mod null_out;
mod output;
mod player;
mod probe;
mod read_budget;
mod resample;
mod ring_tap;
mod shared;
mod tag_reader;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_gapless;
#[cfg(test)]
mod tests_play;
#[cfg(test)]
mod tests_seek;
#[cfg(test)]
mod tests_tags;
mod track_source;
mod wav_out;

pub use control::{NowPlaying, PlaybackControl, SeekOutcome};
pub use output::OutputKind;
pub use player::{PlaybackStats, play_from_reader, play_source};
pub use probe::{TrackInfo, decode_all, probe_bytes, probe_file, scan_file};
pub use tag_reader::{Cover, FileTags, MAX_COVER_BYTES, read_file_tags};
pub use track_source::{ForwardOnly, Next, OpenedTrack, TrackBytes, TrackEnd, TrackSource};

/// Whether the default sound card can be opened: the error names `--output null`.
pub fn check_device() -> anyhow::Result<()> {
    device_out::DeviceTarget::open().map(|_| ())
}
