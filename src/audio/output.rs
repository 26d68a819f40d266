//! Where decoded audio goes.

use std::path::PathBuf;
use std::str::FromStr;

/// The output of a playback, as given by `--output`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutputKind {
    /// The default sound card through cpal, resampled to the device rate.
    Device,
    /// No sound: samples are consumed at real time on a local clock.
    Null,
    /// A WAV file of the decoded PCM at the track's own rate and channel count
    /// (32-bit IEEE float samples), written as fast as decoding goes.
    Wav(PathBuf),
}

impl FromStr for OutputKind {
    type Err = anyhow::Error;

    /// Parses `device`, `null` or `wav:PATH`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "device" => Ok(OutputKind::Device),
            "null" => Ok(OutputKind::Null),
            _ => match s.strip_prefix("wav:") {
                Some("") => Err(anyhow::anyhow!("--output wav:PATH needs a path")),
                Some(path) => Ok(OutputKind::Wav(PathBuf::from(path))),
                None => Err(anyhow::anyhow!(
                    "unknown output {s:?}: expected device, null or wav:PATH"
                )),
            },
        }
    }
}

impl std::fmt::Display for OutputKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OutputKind::Device => f.write_str("device"),
            OutputKind::Null => f.write_str("null"),
            OutputKind::Wav(p) => write!(f, "wav:{}", p.display()),
        }
    }
}
