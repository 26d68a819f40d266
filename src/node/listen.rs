//! The queue player: `stream` of several tracks, an album or an artist, with the next
//! track fetched while the current one plays, and `next`/`prev` that jump within it. The
//! decode thread pulls tracks through [`QueueSource`]; nothing is written to disk.

use super::Node;
use super::queue::Queue;
use super::range_reader::{ChunkStream, FailureSlot, Fetcher, RangeReader};
use super::storage::{LsFilter, extension_for};
use crate::audio::{self, Next, OpenedTrack, OutputKind, PlaybackControl, TrackEnd, TrackSource};
use crate::id::PeerId;
use crate::store::catalog::CatalogEntry;
use anyhow::{Result, anyhow, bail};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// What a queue's playback tells its caller as it goes.
#[derive(Debug, Clone)]
pub enum QueueEvent {
    /// The serving peer of the track being fetched changed.
    Source(PeerId),
    /// A track could not be played and was passed over.
    Skipped { name: String, why: String },
    /// A track played, but not all of it (or with undecodable packets).
    Warning { name: String, why: String },
}

/// The playback a peer runs now: its control and the serving peer of each queue position.
#[derive(Clone)]
pub struct Session {
    pub control: PlaybackControl,
    pub sources: Arc<Mutex<HashMap<usize, PeerId>>>,
}

/// What one queue playback fetched, summed over its tracks.
#[derive(Default)]
pub(crate) struct Totals {
    pub sources: Vec<PeerId>,
    pub failovers: u64,
    pub skipped: Vec<String>,
    /// Tracks whose fetch failed part way (they played what arrived).
    pub broken: Vec<String>,
    /// The fetch failure of the last track that could not be played or finished.
    pub failure: Option<String>,
}

/// A track whose bytes are on their way.
struct Fetching {
    index: usize,
    entry: CatalogEntry,
    stream: ChunkStream,
    failure: FailureSlot,
}

/// Hands the decode thread the queue's tracks, fetching each from the mesh and the next one
/// while the current one plays (so a boundary never waits for the network).
pub(crate) struct QueueSource {
    node: Node,
    rt: tokio::runtime::Handle,
    control: PlaybackControl,
    sources: Arc<Mutex<HashMap<usize, PeerId>>>,
    totals: Arc<Mutex<Totals>>,
    bytes: Arc<AtomicU64>,
    on_event: Arc<dyn Fn(QueueEvent) + Send + Sync>,
    prefetched: Option<Fetching>,
    /// A queue of one track fails as `stream NAME` always did: its error is the command's.
    single: bool,
    /// Name and fetch failure slot of each opened track, for `ended`.
    opened: HashMap<usize, (String, FailureSlot)>,
}

impl QueueSource {
    /// Fetches of queue position `index`, which report their sources as that track's.
    fn fetcher(&self, index: usize) -> Fetcher {
        let sources = self.sources.clone();
        let totals = self.totals.clone();
        let on_event = self.on_event.clone();
        let failover_totals = self.totals.clone();
        Fetcher {
            node: self.node.clone(),
            rt: self.rt.clone(),
            on_source: Arc::new(move |p| {
                if let Ok(mut s) = sources.lock() {
                    s.insert(index, p);
                }
                if let Ok(mut t) = totals.lock()
                    && t.sources.last() != Some(&p)
                {
                    t.sources.push(p);
                }
                on_event(QueueEvent::Source(p));
            }),
            on_failovers: Arc::new(move |n| {
                if let Ok(mut t) = failover_totals.lock() {
                    t.failovers += n;
                }
            }),
        }
    }

    fn start_fetch(&self, index: usize, name: &str) -> Result<Fetching> {
        let entry = self.node.entry(name)?;
        let failure: FailureSlot = Arc::new(Mutex::new(None));
        let stream = self.fetcher(index).start(&entry, 0, failure.clone());
        Ok(Fetching {
            index,
            entry,
            stream,
            failure,
        })
    }

    fn skip(&self, name: &str, why: String) {
        if let Ok(mut t) = self.totals.lock() {
            t.skipped.push(name.to_string());
            t.failure = Some(why.clone());
        }
        (self.on_event)(QueueEvent::Skipped {
            name: name.to_string(),
            why,
        });
    }
}

impl TrackSource for QueueSource {
    fn open(&mut self, next: Next) -> Option<OpenedTrack> {
        let mut next = next;
        // Bounded: a queue of removed tracks ends instead of spinning with repeat.
        let len = self.node.queue().tracks.len();
        for _ in 0..=len {
            let (index, name, after) = {
                let mut q = self.node.inner.queue.lock().ok()?;
                let index = match next {
                    Next::First => Some(q.position),
                    Next::After(i) => q.after(i),
                    Next::Jump(t) => Some(t),
                }
                .filter(|&i| i < q.tracks.len())?;
                q.position = index;
                let after = q.after(index).filter(|&a| a != index);
                let after = after.and_then(|a| q.name(a).map(|n| (a, n.to_string())));
                (index, q.name(index)?.to_string(), after)
            };
            let fetching = match self.prefetched.take() {
                Some(f) if f.index == index && f.entry.name == name => Ok(f),
                _ => self.start_fetch(index, &name),
            };
            let f = match fetching {
                Ok(f) => f,
                Err(e) => {
                    self.skip(&name, format!("{e:#}"));
                    next = Next::After(index);
                    continue;
                }
            };
            if let Some((a, an)) = after {
                self.prefetched = self.start_fetch(a, &an).ok();
            }
            self.opened.insert(index, (name, f.failure.clone()));
            let ext = extension_for(&f.entry.codec).to_string();
            let reader = RangeReader::new(
                self.fetcher(index),
                f.entry,
                Some(f.stream),
                f.failure,
                self.control.clone(),
                self.bytes.clone(),
            );
            return Some(OpenedTrack {
                reader: Box::new(reader),
                ext: Some(ext),
                index,
            });
        }
        None
    }

    fn ended(&mut self, index: usize, end: TrackEnd) {
        let Some((name, failure)) = self.opened.remove(&index) else {
            return;
        };
        let fetch_failure = failure.lock().ok().and_then(|f| f.clone());
        match end {
            TrackEnd::Unplayable(why) => self.skip(&name, fetch_failure.unwrap_or(why)),
            TrackEnd::Played {
                ended_early,
                skipped_packets,
            } => {
                let warning = match fetch_failure {
                    Some(f) => {
                        if let Ok(mut t) = self.totals.lock() {
                            t.failure = Some(f.clone());
                            t.broken.push(name.clone());
                        }
                        (!self.single).then_some(f)
                    }
                    None => ended_early,
                };
                if let Some(why) = warning {
                    (self.on_event)(QueueEvent::Warning {
                        name: name.clone(),
                        why,
                    });
                }
                if skipped_packets > 0 {
                    (self.on_event)(QueueEvent::Warning {
                        name,
                        why: format!("skipped {skipped_packets} undecodable packets"),
                    });
                }
            }
            TrackEnd::Left => {}
        }
    }
}

/// What `stream` is asked to play: a new queue, or (None) the current one from its position.
pub struct QueueRequest {
    pub tracks: Vec<String>,
    pub shuffle: bool,
    pub repeat: bool,
}

impl Node {
    /// A copy of this peer's queue.
    pub fn queue(&self) -> Queue {
        self.inner
            .queue
            .lock()
            .map(|q| q.clone())
            .unwrap_or_default()
    }

    /// Appends tracks to the queue (they must exist); playback, if any, reaches them.
    pub fn queue_add(&self, names: &[String]) -> Result<usize> {
        for n in names {
            self.entry(n)?;
        }
        let mut q = self
            .inner
            .queue
            .lock()
            .map_err(|_| anyhow!("queue unavailable"))?;
        q.tracks.extend(names.iter().cloned());
        Ok(q.tracks.len())
    }

    /// Empties the queue and stops what plays.
    pub fn queue_clear(&self) {
        if let Ok(mut q) = self.inner.queue.lock() {
            *q = Queue::default();
        }
        if let Some(s) = self.session() {
            s.control.stop();
        }
    }

    /// Jumps to the next track (`forward`) or the previous one, relative to what is heard.
    pub fn skip(&self, forward: bool) -> Result<String> {
        let s = self
            .session()
            .ok_or_else(|| anyhow!("nothing is playing"))?;
        let q = self.queue();
        let heard = s.control.heard_track().unwrap_or(q.position);
        let target = if forward {
            q.after(heard)
        } else {
            q.before(heard)
        };
        let Some(target) = target else {
            bail!("no next track in the queue");
        };
        let name = q.name(target).unwrap_or_default().to_string();
        s.control.request_jump(target);
        Ok(name)
    }

    /// Seeks what is heard: to `to` seconds, or by `to` seconds from where it is
    /// (`relative`). Waits for the decoder to say where it landed.
    pub async fn seek(&self, to: f64, relative: bool) -> Result<audio::SeekOutcome> {
        let s = self
            .session()
            .ok_or_else(|| anyhow!("nothing is playing"))?;
        let st = s.control.status();
        let index = st.track.ok_or_else(|| anyhow!("nothing is playing yet"))?;
        let target = if relative { st.elapsed_s + to } else { to };
        let id = s.control.request_seek(index, target.max(0.0));
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
        while tokio::time::Instant::now() < deadline {
            if let Some(outcome) = s.control.seek_outcome(id) {
                // Answer once the output plays from there, so `status` agrees at once.
                if let audio::SeekOutcome::Landed(at) = outcome {
                    let until = tokio::time::Instant::now() + std::time::Duration::from_millis(500);
                    while (s.control.status().elapsed_s - at).abs() > 0.5
                        && tokio::time::Instant::now() < until
                        && !s.control.is_stopped()
                    {
                        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
                    }
                }
                return Ok(outcome);
            }
            if s.control.is_stopped() {
                bail!("playback ended before the seek");
            }
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        }
        bail!("the seek did not finish within 10 s")
    }

    /// The names an album (in disc and track order) or an artist (by album, then disc and
    /// track) stands for.
    pub fn tracks_for(&self, album: Option<&str>, artist: Option<&str>) -> Vec<String> {
        let mut found = self.ls_filtered(&LsFilter {
            query: String::new(),
            artist: artist.map(str::to_string),
            album: album.map(str::to_string),
        });
        found.sort_by(|a, b| {
            let key = |l: &super::storage::Listing| {
                (
                    l.album.clone().unwrap_or_default(),
                    l.disc.unwrap_or(0),
                    l.track.unwrap_or(0),
                    l.name.clone(),
                )
            };
            key(a).cmp(&key(b))
        });
        found.into_iter().map(|l| l.name).collect()
    }

    pub(crate) fn session(&self) -> Option<Session> {
        self.inner.now_playing.lock().ok().and_then(|g| g.clone())
    }

    /// Plays the queue `req` makes (or the current queue) while its bytes arrive.
    pub async fn stream_queue(
        &self,
        req: Option<QueueRequest>,
        output: OutputKind,
        start: std::time::Instant,
        on_event: impl Fn(QueueEvent) + Send + Sync + 'static,
    ) -> Result<super::stream::StreamStats> {
        if let Some(r) = req {
            if r.tracks.is_empty() {
                bail!("nothing to play");
            }
            let seed = start.elapsed().as_nanos() as u64 ^ rand::random::<u64>();
            let q = Queue::new(r.tracks, r.shuffle, r.repeat, seed);
            if let Ok(mut g) = self.inner.queue.lock() {
                *g = q;
            }
        } else if self.queue().tracks.is_empty() {
            bail!("the queue is empty; add tracks with `queue add NAME...`");
        }
        let single = self.queue().tracks.len() == 1;
        let disk_before = super::stream::process_disk_bytes_written();
        let control = PlaybackControl::new();
        control.set_volume(self.volume());
        let session = Session {
            control: control.clone(),
            sources: Arc::new(Mutex::new(HashMap::new())),
        };
        self.set_session(Some(session.clone()));
        let totals = Arc::new(Mutex::new(Totals::default()));
        let bytes = Arc::new(AtomicU64::new(0));
        let source = QueueSource {
            node: self.clone(),
            rt: tokio::runtime::Handle::current(),
            control: control.clone(),
            sources: session.sources.clone(),
            totals: totals.clone(),
            bytes: bytes.clone(),
            on_event: Arc::new(on_event),
            prefetched: None,
            single,
            opened: HashMap::new(),
        };
        let ctl = control.clone();
        let played = tokio::task::spawn_blocking(move || {
            audio::play_source(Box::new(source), output, start, ctl)
        })
        .await
        .map_err(|e| anyhow!("playback thread failed: {e}"));
        control.stop();
        self.clear_session(&control);
        let (report, failure, skipped, broken) = match totals.lock() {
            Ok(mut t) => (
                super::fetch::FetchReport {
                    sources: std::mem::take(&mut t.sources),
                    failovers: t.failovers,
                    bytes: 0,
                },
                t.failure.take(),
                std::mem::take(&mut t.skipped),
                std::mem::take(&mut t.broken),
            ),
            Err(_) => Default::default(),
        };
        let played = match played? {
            Ok(p) => p,
            // Not one track could be played: the stats still say what was tried.
            Err(e) if failure.is_some() || !skipped.is_empty() => {
                tracing::debug!("nothing played: {e:#}");
                audio::PlaybackStats::default()
            }
            Err(e) => return Err(e),
        };
        let mut stats =
            self.stream_stats(played, &report, bytes.load(Ordering::Relaxed), disk_before);
        stats.skipped_tracks = skipped.len() as u64;
        stats.failed = if single {
            failure
        } else if skipped.is_empty() && broken.is_empty() {
            None
        } else {
            let mut parts = Vec::new();
            if !skipped.is_empty() {
                parts.push(format!("skipped {}", skipped.join(", ")));
            }
            if !broken.is_empty() {
                parts.push(format!("could not finish {}", broken.join(", ")));
            }
            Some(parts.join("; "))
        };
        Ok(stats)
    }
}
