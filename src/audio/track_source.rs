//! Where the decode thread gets its tracks: one reader for `play_from_reader`, a queue for
//! the node's `stream` (which fetches and prefetches from the mesh behind this trait).

use std::io::{Read, Seek, SeekFrom};

/// A track's bytes: read in order, and, when random access is possible (a range fetch
/// from the mesh), read from anywhere, which is what seeking needs.
pub trait TrackBytes: Read + Seek + Send + Sync {
    /// The length in bytes if reads may start anywhere; None for a plain stream.
    fn random_access_len(&self) -> Option<u64>;
}

/// A plain stream: reads in order only.
pub struct ForwardOnly<R>(pub R);

impl<R: Read> Read for ForwardOnly<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.0.read(buf)
    }
}

impl<R> Seek for ForwardOnly<R> {
    fn seek(&mut self, _: SeekFrom) -> std::io::Result<u64> {
        Err(std::io::Error::other("this stream cannot seek"))
    }
}

impl<R: Read + Send + Sync> TrackBytes for ForwardOnly<R> {
    fn random_access_len(&self) -> Option<u64> {
        None
    }
}

/// A track ready to decode.
pub struct OpenedTrack {
    pub reader: Box<dyn TrackBytes>,
    /// A file extension hint for the prober ("mp3", "flac", …).
    pub ext: Option<String>,
    /// Its position in the queue.
    pub index: usize,
}

/// Which track the decoder wants next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    First,
    /// The track at this position played to its end.
    After(usize),
    /// The listener chose this position (next, prev).
    Jump(usize),
}

/// How a track's decoding ended.
#[derive(Debug, Clone, PartialEq)]
pub enum TrackEnd {
    /// Decoded to its end, or as far as its bytes went (`ended_early` says why not further).
    Played {
        ended_early: Option<String>,
        skipped_packets: u64,
    },
    /// Not one sample could be decoded.
    Unplayable(String),
    /// The listener jumped away from it, or stopped.
    Left,
}

pub trait TrackSource: Send {
    /// The track to decode next, or None when the queue is over. May block briefly.
    fn open(&mut self, next: Next) -> Option<OpenedTrack>;
    /// Hears how each opened track ended.
    fn ended(&mut self, _index: usize, _end: TrackEnd) {}
}

/// A source of exactly one track.
pub(crate) struct OneTrack(pub Option<OpenedTrack>);

impl TrackSource for OneTrack {
    fn open(&mut self, next: Next) -> Option<OpenedTrack> {
        match next {
            Next::First => self.0.take(),
            _ => None,
        }
    }
}
