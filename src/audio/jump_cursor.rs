//! Where the decode thread is and the jumps asked of it, shared with the byte reader under
//! the decoder so that a jump asked for while a read waits for bytes is handled there.

use std::io::{Read, Seek, SeekFrom};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use symphonia::core::io::MediaSource;

use super::control::{PlaybackControl, SeekRequest};
use super::shared::DecodeState;
use super::track_source::TrackBytes;

/// The decode thread's view of where it is, shared with its byte reader so that a jump
/// requested while a read waits for bytes is handled there.
pub(super) struct Cursor {
    pub state: Arc<DecodeState>,
    pub control: PlaybackControl,
}

impl Cursor {
    /// Handles a pending jump or seek. A jump to the track being decoded drops only what
    /// precedes it and decoding goes on (None); a jump to any other, or a seek into a track
    /// other than this one, drops everything buffered and the decoder must leave this
    /// track (Leave); a seek within this track is the decode loop's to do (Seek).
    pub fn poll_jump(&self) -> Option<Action> {
        let epoch = self.control.epoch();
        if self.state.seen_epoch.swap(epoch, Ordering::AcqRel) == epoch {
            return None;
        }
        let current = self.state.current.load(Ordering::Acquire);
        if let Some(target) = self.control.take_jump() {
            // A jump outdates a seek asked for before it.
            let _ = self.control.take_seek();
            if current == target as u64 {
                let start = self.state.current_start.load(Ordering::Acquire);
                self.state.flush_to.fetch_max(start, Ordering::AcqRel);
                return None;
            }
            return Some(self.leave(target, None));
        }
        let req = self.control.take_seek()?;
        if req.index as u64 == current {
            Some(Action::Seek(req))
        } else {
            Some(self.leave(req.index, Some(req)))
        }
    }

    /// Drops everything buffered; the decoder leaves for `target` (and seeks there).
    pub fn leave(&self, target: usize, seek: Option<SeekRequest>) -> Action {
        let pushed = self.state.pushed.load(Ordering::Acquire);
        self.state.flush_to.fetch_max(pushed, Ordering::AcqRel);
        if let Ok(mut p) = self.state.pending_seek.lock() {
            *p = seek;
        }
        if let Ok(mut l) = self.state.leave_to.lock() {
            *l = Some(target);
        }
        Action::Leave(target)
    }

    pub fn leaving(&self) -> Option<usize> {
        self.state.leave_to.lock().ok().and_then(|l| *l)
    }

    pub fn stopped(&self) -> bool {
        self.control.is_stopped() || self.state.is_aborted()
    }
}

/// What a pending request asks of the decoder.
pub(super) enum Action {
    Leave(usize),
    Seek(SeekRequest),
}

/// Wraps a track's bytes to remember their first error (a failed source, not a bad file),
/// to stop reading once playback is abandoned, and to handle a jump requested while a read
/// waits (the inner reader returns `Interrupted` then). Seekable once `seekable` is set:
/// not during the probe, which would otherwise fetch the end of the file for trailing tags
/// before the first audio.
pub(super) struct SourceReader {
    pub inner: Box<dyn TrackBytes>,
    pub cursor: Arc<Cursor>,
    pub seekable: Arc<AtomicBool>,
}

impl Read for SourceReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            if self.cursor.stopped() {
                return Err(std::io::Error::other("playback stopped"));
            }
            if self.cursor.leaving().is_some() {
                return Err(std::io::Error::other("left for another track"));
            }
            match self.cursor.poll_jump() {
                Some(Action::Leave(_)) => {
                    return Err(std::io::Error::other("left for another track"));
                }
                // Mid-read the format reader cannot seek: open the track again and seek.
                Some(Action::Seek(req)) => {
                    let _ = self.cursor.leave(req.index, Some(req));
                    return Err(std::io::Error::other("left to seek"));
                }
                None => {}
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

impl Seek for SourceReader {
    fn seek(&mut self, to: SeekFrom) -> std::io::Result<u64> {
        self.inner.seek(to)
    }
}

impl MediaSource for SourceReader {
    fn is_seekable(&self) -> bool {
        self.seekable.load(Ordering::Relaxed) && self.inner.random_access_len().is_some()
    }

    fn byte_len(&self) -> Option<u64> {
        if self.is_seekable() {
            self.inner.random_access_len()
        } else {
            None
        }
    }
}
