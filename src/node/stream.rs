//! Playback: `stream` decodes straight from verified chunks arriving over QUIC (nothing is
//! written to disk), `play` fetches into memory first. Both report the stats of SPEC.md.

use super::Node;
use super::storage::extension_for;
use crate::audio::{self, OutputKind, PlaybackControl, PlaybackStats};
use crate::id::PeerId;
use anyhow::{Result, anyhow};
use serde::Serialize;
use std::io::Read;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::sync::mpsc;

/// Verified chunks buffered between the network and the decoder: enough compressed audio to
/// ride out a failover, small enough that memory stays flat for any track.
const READ_AHEAD_CHUNKS: usize = 16;

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
    /// Reported on stderr, not in the JSON, which is exactly SPEC.md's.
    #[serde(skip)]
    pub skipped_packets: u64,
    #[serde(skip)]
    pub ended_early: Option<String>,
    /// Why the track could not be played to its end (the command then fails).
    #[serde(skip)]
    pub failed: Option<String>,
}

/// What is playing now, for the shell's now-playing line and pause/resume/stop.
#[derive(Clone)]
pub struct NowPlaying {
    pub name: String,
    pub control: PlaybackControl,
    pub source: Arc<Mutex<Option<PeerId>>>,
}

/// A blocking `Read` over the chunks the fetch task delivers. A fetch that failed for good
/// surfaces as a read error, so the decoder ends with a clear message instead of waiting.
struct ChunkReader {
    rx: mpsc::Receiver<Vec<u8>>,
    cur: Vec<u8>,
    pos: usize,
    failure: Arc<Mutex<Option<String>>>,
    bytes: Arc<std::sync::atomic::AtomicU64>,
}

impl Read for ChunkReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.pos >= self.cur.len() {
            match self.rx.blocking_recv() {
                Some(c) => {
                    self.bytes
                        .fetch_add(c.len() as u64, std::sync::atomic::Ordering::Relaxed);
                    self.cur = c;
                    self.pos = 0;
                }
                None => {
                    let failure = self.failure.lock().map(|f| f.clone()).unwrap_or(None);
                    return match failure {
                        Some(e) => Err(std::io::Error::other(e)),
                        None => Ok(0),
                    };
                }
            }
        }
        let n = buf.len().min(self.cur.len() - self.pos);
        buf[..n].copy_from_slice(&self.cur[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
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
        if let Some(np) = self.now_playing() {
            np.control.set_volume(volume);
        }
        Ok(())
    }

    pub fn now_playing(&self) -> Option<NowPlaying> {
        self.inner.now_playing.lock().ok().and_then(|g| g.clone())
    }

    fn set_now_playing(&self, np: Option<NowPlaying>) {
        if let Ok(mut g) = self.inner.now_playing.lock() {
            if let Some(old) = g.as_ref()
                && np.is_some()
            {
                old.control.stop();
            }
            *g = np;
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
        let entry = self.entry(name)?;
        let disk_before = process_disk_bytes_written();
        let control = PlaybackControl::new();
        control.set_volume(self.volume());
        let source = Arc::new(Mutex::new(None));
        self.set_now_playing(Some(NowPlaying {
            name: name.to_string(),
            control: control.clone(),
            source: source.clone(),
        }));
        let (tx, rx) = mpsc::channel(READ_AHEAD_CHUNKS);
        let failure = Arc::new(Mutex::new(None));
        let bytes = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let node = self.clone();
        let e = entry.clone();
        let fail_slot = failure.clone();
        let fetch = self.inner.tasks.spawn(async move {
            // Hold a sender until the failure is recorded, so the reader never sees the end
            // of the channel before it can tell a failure from the end of the track.
            let keep = tx.clone();
            let r = node
                .fetch_verified(&e, tx, true, move |p| {
                    if let Ok(mut s) = source.lock() {
                        *s = Some(p);
                    }
                    on_source(p);
                })
                .await;
            if let Err(err) = &r
                && let Ok(mut f) = fail_slot.lock()
            {
                *f = Some(format!("{err:#}"));
            }
            drop(keep);
            r
        });
        let reader = ChunkReader {
            rx,
            cur: Vec::new(),
            pos: 0,
            failure,
            bytes: bytes.clone(),
        };
        let ext = extension_for(&entry.codec).to_string();
        let ctl = control.clone();
        let played = tokio::task::spawn_blocking(move || {
            audio::play_from_reader(reader, Some(&ext), output, start, ctl)
        })
        .await
        .map_err(|e| anyhow!("playback thread failed: {e}"));
        // Whatever happened to playback, the fetch has no reader any more.
        control.stop();
        let (report, failed) = match fetch.await {
            Ok(Ok(r)) => (r, None),
            Ok(Err(f)) => (f.report, Some(f.msg)),
            Err(e) => (Default::default(), Some(format!("fetch failed: {e}"))),
        };
        self.clear_now_playing(&control);
        let played = match (played?, &failed) {
            // The decoder gave up because its source did, maybe before the first sample: the
            // source's failure is the reason, and the stats still say what was tried.
            (Err(_), Some(_)) => PlaybackStats::default(),
            (played, _) => played?,
        };
        let mut stats = self.stream_stats(
            played,
            &report,
            bytes.load(std::sync::atomic::Ordering::Relaxed),
            disk_before,
        );
        stats.failed = failed;
        Ok(stats)
    }

    fn clear_now_playing(&self, control: &PlaybackControl) {
        if let Ok(mut g) = self.inner.now_playing.lock()
            && g.as_ref().is_some_and(|np| np.control.same_as(control))
        {
            *g = None;
        }
    }

    fn stream_stats(
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
        let mut data = Vec::with_capacity(entry.size as usize);
        while let Some(c) = rx.recv().await {
            data.extend_from_slice(&c);
        }
        let report = fetch.await.map_err(|e| anyhow!("fetch failed: {e}"))??;
        let bytes = data.len() as u64;
        let control = PlaybackControl::new();
        control.set_volume(self.volume());
        self.set_now_playing(Some(NowPlaying {
            name: name.to_string(),
            control: control.clone(),
            source: Arc::new(Mutex::new(report.sources.last().copied())),
        }));
        let ext = extension_for(&entry.codec).to_string();
        let ctl = control.clone();
        let played = tokio::task::spawn_blocking(move || {
            audio::play_from_reader(std::io::Cursor::new(data), Some(&ext), output, start, ctl)
        })
        .await
        .map_err(|e| anyhow!("playback thread failed: {e}"));
        self.clear_now_playing(&control);
        Ok(self.stream_stats(played??, &report, bytes, disk_before))
    }
}
