//! Playback: `stream` decodes straight from verified chunks arriving over QUIC (nothing is
//! written to disk), `play` fetches into memory first. Both report the stats of SPEC.md.

use super::Node;
use super::listen::{QueueEvent, QueueRequest, Session};
use super::range_reader::READ_AHEAD_CHUNKS;
use super::storage::extension_for;
use crate::audio::{self, OutputKind, PlaybackControl, PlaybackStats};
use crate::id::PeerId;
use anyhow::{Result, anyhow};
use serde::Serialize;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::sync::mpsc;

#[derive(Debug, Clone, Serialize)]
pub struct StreamStats {
    pub ttfa_ms: f64,
    pub underruns: u64,
    pub underrun_ms: f64,
    pub frames: u64,
    pub sample_rate: u32,
    pub channels: u16,
    pub bytes: u64,
    pub sources: Vec<String>,
    pub failovers: u64,
    pub disk_bytes_written: u64,
    pub skipped_packets: u64,
    /// Why the (first) track ended before its end; in the JSON only whether it did.
    #[serde(serialize_with = "is_some")]
    pub ended_early: Option<String>,
    /// Tracks whose first sample reached the output.
    pub tracks: u64,
    /// Silence inserted before each track after the first.
    pub gaps_ms: Vec<f64>,
    pub seeks: Vec<SeekStat>,
    /// Tracks of the queue that could not be played.
    #[serde(skip)]
    pub skipped_tracks: u64,
    /// Why the track could not be played to its end (the command then fails).
    #[serde(skip)]
    pub failed: Option<String>,
}

fn is_some<S: serde::Serializer>(v: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_bool(v.is_some())
}

/// One seek: where to, and how long until audio at the new position.
#[derive(Debug, Clone, Serialize)]
pub struct SeekStat {
    pub to_s: f64,
    pub latency_ms: f64,
}

/// What is playing now, for the shell's now-playing line and pause/resume/stop.
#[derive(Clone)]
pub struct NowPlaying {
    pub name: String,
    pub control: PlaybackControl,
    pub source: Option<PeerId>,
}

/// Bytes this process has caused to be written to storage, as the kernel counts them.
pub fn process_disk_bytes_written() -> u64 {
    std::fs::read_to_string("/proc/self/io")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("write_bytes:"))
                .and_then(|v| v.trim().parse().ok())
        })
        .unwrap_or(0)
}

impl Node {
    /// This peer's playback volume, 0..=100: kept across tracks.
    pub fn volume(&self) -> u8 {
        self.inner.volume.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Sets the volume for what plays now and what plays next; more than 100 is refused.
    pub fn set_volume(&self, volume: u8) -> anyhow::Result<()> {
        if volume > 100 {
            anyhow::bail!("volume {volume} is out of range: 0 to 100");
        }
        self.inner
            .volume
            .store(volume, std::sync::atomic::Ordering::Relaxed);
        if let Some(s) = self.session() {
            s.control.set_volume(volume);
        }
        Ok(())
    }

    /// The track being heard, its control and where its bytes come from.
    pub fn now_playing(&self) -> Option<NowPlaying> {
        let session = self.session()?;
        let q = self.queue();
        let index = session.control.heard_track().unwrap_or(q.position);
        let source = session
            .sources
            .lock()
            .ok()
            .and_then(|s| s.get(&index).copied());
        Some(NowPlaying {
            name: q.name(index).unwrap_or_default().to_string(),
            control: session.control,
            source,
        })
    }

    /// Makes `session` the peer's playback; the one it replaces stops.
    pub(crate) fn set_session(&self, session: Option<Session>) {
        if let Ok(mut g) = self.inner.now_playing.lock() {
            if let Some(old) = g.as_ref()
                && session.is_some()
            {
                old.control.stop();
            }
            *g = session;
        }
    }

    /// Play NAME while its bytes arrive. `on_source` hears of every change of serving peer.
    pub async fn stream(
        &self,
        name: &str,
        output: OutputKind,
        start: Instant,
        on_source: impl Fn(PeerId) + Send + Sync + 'static,
    ) -> Result<StreamStats> {
        self.entry(name)?;
        let req = QueueRequest {
            tracks: vec![name.to_string()],
            shuffle: false,
            repeat: false,
        };
        self.stream_queue(Some(req), output, start, move |e| {
            if let QueueEvent::Source(p) = e {
                on_source(p)
            }
        })
        .await
    }

    pub(crate) fn clear_session(&self, control: &PlaybackControl) {
        if let Ok(mut g) = self.inner.now_playing.lock()
            && g.as_ref().is_some_and(|s| s.control.same_as(control))
        {
            *g = None;
        }
    }

    pub(crate) fn stream_stats(
        &self,
        s: PlaybackStats,
        report: &super::fetch::FetchReport,
        bytes: u64,
        disk_before: u64,
    ) -> StreamStats {
        StreamStats {
            ttfa_ms: s.ttfa_ms,
            underruns: s.underruns,
            underrun_ms: s.underrun_ms,
            frames: s.frames,
            sample_rate: s.sample_rate,
            channels: s.channels,
            bytes,
            sources: report.sources.iter().map(|p| p.to_string()).collect(),
            failovers: report.failovers,
            disk_bytes_written: process_disk_bytes_written().saturating_sub(disk_before),
            skipped_packets: s.skipped_packets,
            ended_early: s.ended_early,
            tracks: s.tracks,
            gaps_ms: s.gaps_ms,
            seeks: s
                .seeks
                .iter()
                .map(|&(to_s, latency_ms)| SeekStat { to_s, latency_ms })
                .collect(),
            skipped_tracks: 0,
            failed: None,
        }
    }

    /// Fetch NAME into memory, then play it.
    pub async fn play(
        &self,
        name: &str,
        output: OutputKind,
        start: Instant,
    ) -> Result<StreamStats> {
        let entry = self.entry(name)?;
        let disk_before = process_disk_bytes_written();
        let (tx, mut rx) = mpsc::channel::<Vec<u8>>(READ_AHEAD_CHUNKS);
        let node = self.clone();
        let e = entry.clone();
        let fetch = self
            .inner
            .tasks
            .spawn(async move { node.fetch_verified(&e, tx, true, |_| {}).await });
        // The size is the catalog's word until the bytes are checked: reserve a bounded part.
        let mut data = Vec::with_capacity(entry.size.min(64 << 20) as usize);
        while let Some(c) = rx.recv().await {
            data.extend_from_slice(&c);
        }
        let report = fetch.await.map_err(|e| anyhow!("fetch failed: {e}"))??;
        let bytes = data.len() as u64;
        let control = PlaybackControl::new();
        control.set_volume(self.volume());
        if let Ok(mut q) = self.inner.queue.lock() {
            *q = super::queue::Queue::new(vec![name.to_string()], false, false, 0);
        }
        let sources = report.sources.last().map(|&p| (0, p)).into_iter().collect();
        self.set_session(Some(Session {
            control: control.clone(),
            sources: Arc::new(Mutex::new(sources)),
        }));
        let ext = extension_for(&entry.codec).to_string();
        let ctl = control.clone();
        let played = tokio::task::spawn_blocking(move || {
            audio::play_from_reader(std::io::Cursor::new(data), Some(&ext), output, start, ctl)
        })
        .await
        .map_err(|e| anyhow!("playback thread failed: {e}"));
        self.clear_session(&control);
        Ok(self.stream_stats(played??, &report, bytes, disk_before))
    }
}
