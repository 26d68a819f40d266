//! Runs one peer command against a node. The same code serves the shell and the control
//! socket; output goes through `Output` so each front end prints it its own way.

use super::args::{PeerCmd, QueueAction};
use super::library_view;
use crate::audio::{OutputKind, SeekOutcome};
use crate::node::status::Status;
use crate::node::storage::LsFilter;
use crate::node::stream::StreamStats;
use crate::node::{Node, QueueEvent, QueueRequest};
use std::path::Path;
use tokio::sync::mpsc;

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub enum Line {
    Out(String),
    Err(String),
    /// Progress of a long command: done, total bytes (a terminal shows a bar).
    Progress(u64, u64),
    /// Progress of an import: files done, files, bytes done, bytes.
    ImportProgress(u64, u64, u64, u64),
    /// Raw bytes for the client's stdout (`get -o -`), base64 on the wire.
    Data(String),
    Exit(i32),
}

/// Data lines a command may have in flight to its front end: memory stays bounded when the
/// reader of `get -o -` is slow.
const DATA_IN_FLIGHT: usize = 8;

#[derive(Clone)]
pub struct Output {
    tx: mpsc::UnboundedSender<Line>,
    credit: std::sync::Arc<tokio::sync::Semaphore>,
}

/// The front end's side of an `Output`.
pub struct OutputRx {
    rx: mpsc::UnboundedReceiver<Line>,
    credit: std::sync::Arc<tokio::sync::Semaphore>,
}

impl OutputRx {
    pub async fn recv(&mut self) -> Option<Line> {
        let l = self.rx.recv().await?;
        if matches!(l, Line::Data(_)) {
            self.credit.add_permits(1);
        }
        Some(l)
    }
}

impl Output {
    pub fn new() -> (Output, OutputRx) {
        let (tx, rx) = mpsc::unbounded_channel();
        let credit = std::sync::Arc::new(tokio::sync::Semaphore::new(DATA_IN_FLIGHT));
        (
            Output {
                tx,
                credit: credit.clone(),
            },
            OutputRx { rx, credit },
        )
    }
    pub fn out(&self, s: impl Into<String>) {
        let _ = self.tx.send(Line::Out(s.into()));
    }
    pub fn err(&self, s: impl Into<String>) {
        let _ = self.tx.send(Line::Err(s.into()));
    }
    pub fn progress(&self, done: u64, total: u64) {
        let _ = self.tx.send(Line::Progress(done, total));
    }
    pub async fn data(&self, bytes: &[u8]) {
        if let Ok(p) = self.credit.acquire().await {
            p.forget();
        }
        let _ = self
            .tx
            .send(Line::Data(data_encoding::BASE64.encode(bytes)));
    }
}

/// A failed command: its message becomes the one `error: …` line.
pub struct CmdError(pub String, pub i32);

impl CmdError {
    fn failed(msg: impl Into<String>) -> Self {
        CmdError(msg.into(), 1)
    }

    /// The command was given wrong arguments: exit status 2, as for clap's usage errors.
    fn usage(msg: impl Into<String>) -> Self {
        CmdError(msg.into(), 2)
    }
}

impl<E: std::fmt::Display> From<E> for CmdError {
    fn from(e: E) -> Self {
        CmdError(format!("{e:#}"), 1)
    }
}

pub const HELP: &str = "commands:
  status [--json]                 this peer and every known peer
  peers                           known peers: state, rtt, path
  invite [--show-key]             the invite ticket for this network
  push NAME FILE [--replace]      store an audio file under a new NAME on R peers
  import PATH... [--dry-run]      import files and folders, named from their tags
  get NAME [-o PATH]              download NAME (default ./NAME.<ext>)
  play NAME                       fetch into memory, then play
  stream NAME... [--album B] [--artist A] [--shuffle] [--repeat]
         [--output device|null|wav:PATH] [--stats json]
                                  play while the bytes arrive (never touches disk);
                                  the tracks form a queue that replaces the current one
  queue [--json] | queue add NAME... | queue clear
                                  show, extend or empty the queue
  next | prev                     jump within the queue
  seek M:SS | SECONDS | +S | -S   seek in what plays (no whole-file download)
  pause | resume | stop           control playback
  volume [0-100]                  show or set the volume (applied in the pipeline)
  remove NAME [--force]           delete NAME network-wide (--force: another peer's)
  ls [QUERY] [--artist A] [--album B] [--json]
                                  tracks; QUERY words start words of name/tags
  artists [--json]                artists with their albums and tracks
  albums [--artist A] [--json]    albums by album artist, else artist
  help                            this text
  down | exit                     leave gracefully and stop";

/// Runs `cmd`; returns the exit status (0 done, 1 failed).
pub async fn execute(node: &Node, cmd: PeerCmd, cwd: &Path, out: &Output) -> i32 {
    let saves = saves_something(&cmd);
    let result = run(node, cmd, cwd, out).await;
    if saves {
        // The user is told a change is done only once it is on disk: a crash or a kill right
        // after the command keeps it (a failed import may still have saved part of its work).
        node.saved().await;
    }
    match result {
        Ok(()) => 0,
        Err(CmdError(msg, code)) => {
            out.err(format!("error: {msg}"));
            code
        }
    }
}

fn resolve_output(cwd: &Path, s: &str) -> Result<OutputKind, CmdError> {
    Ok(
        match s
            .parse::<OutputKind>()
            .map_err(|e| CmdError::usage(e.to_string()))?
        {
            OutputKind::Wav(p) => OutputKind::Wav(resolve(cwd, &p)),
            other => other,
        },
    )
}

fn stats_format(s: Option<&str>) -> Result<bool, CmdError> {
    match s {
        None => Ok(false),
        Some("json") => Ok(true),
        Some(other) => Err(CmdError::usage(format!(
            "unknown stats format '{other}' (use --stats json)"
        ))),
    }
}

/// Ends a playback command: its stats, and its failure as the command's. `warn`: print the
/// track's warnings here (a queue printed them as they happened).
fn report_playback(
    name: &str,
    s: &StreamStats,
    json: bool,
    warn: bool,
    out: &Output,
) -> Result<(), CmdError> {
    if let Some(why) = s
        .ended_early
        .as_ref()
        .filter(|_| warn && s.failed.is_none())
    {
        out.err(format!("warning: {name}: {why}"));
    }
    if warn && s.skipped_packets > 0 {
        out.err(format!(
            "warning: {name}: skipped {} undecodable packets",
            s.skipped_packets
        ));
    }
    if json {
        out.out(serde_json::to_string(s)?);
    } else {
        out.out(format!(
            "played {name}: {:.1} s, first audio after {:.1} ms, {} underruns, {} source(s), {} failover(s)",
            s.frames as f64 / s.sample_rate.max(1) as f64,
            s.ttfa_ms,
            s.underruns,
            s.sources.len(),
            s.failovers
        ));
    }
    match &s.failed {
        Some(why) => Err(CmdError::failed(why.clone())),
        None => Ok(()),
    }
}

/// `1:30`, `90`, `+10`, `-10`: seconds, and whether they are relative to where playback is.
fn parse_seek(s: &str) -> Option<(f64, bool)> {
    let s = s.trim();
    let (sign, rest) = match s.as_bytes().first()? {
        b'+' => (1.0, &s[1..]),
        b'-' => (-1.0, &s[1..]),
        _ => (0.0, s),
    };
    let secs = match rest.split_once(':') {
        Some((m, sec)) => {
            let m: u32 = m.parse().ok()?;
            let sec: f64 = sec.parse().ok()?;
            (0.0..60.0)
                .contains(&sec)
                .then_some(f64::from(m) * 60.0 + sec)?
        }
        None => rest.parse::<f64>().ok()?,
    };
    if !secs.is_finite() || secs < 0.0 {
        return None;
    }
    Some(if sign == 0.0 {
        (secs, false)
    } else {
        (sign * secs, true)
    })
}

fn resolve(cwd: &Path, p: &Path) -> std::path::PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        cwd.join(p)
    }
}

/// Commands that read the catalog: they wait for the first sync with the network, so a peer
/// that just joined never answers from an empty catalog.
fn reads_catalog(cmd: &PeerCmd) -> bool {
    matches!(
        cmd,
        PeerCmd::Ls { .. }
            | PeerCmd::Artists { .. }
            | PeerCmd::Albums { .. }
            | PeerCmd::Get { .. }
            | PeerCmd::Push { .. }
            | PeerCmd::Import { .. }
            | PeerCmd::Remove { .. }
            | PeerCmd::Stream { .. }
            | PeerCmd::Play { .. }
            | PeerCmd::Playlist { .. }
    )
}

/// Commands whose effect the peer writes to its database.
fn saves_something(cmd: &PeerCmd) -> bool {
    use super::args::PlaylistAction;
    match cmd {
        PeerCmd::Push { .. } | PeerCmd::Import { .. } | PeerCmd::Remove { .. } => true,
        PeerCmd::Playlist { action } => !matches!(action, PlaylistAction::Ls { .. }),
        _ => false,
    }
}

async fn run(node: &Node, cmd: PeerCmd, cwd: &Path, out: &Output) -> Result<(), CmdError> {
    if reads_catalog(&cmd) && !node.wait_synced().await {
        out.err("warning: still syncing with the network; answering with what this peer has");
    }
    match cmd {
        PeerCmd::Status { json } => {
            let s = node.status();
            if json {
                out.out(serde_json::to_string(&s)?);
            } else {
                print_status(&s, out);
            }
        }
        PeerCmd::Peers { json } => {
            let s = node.status();
            if json {
                out.out(serde_json::to_string(&s.peers)?);
            } else if s.peers.is_empty() {
                out.out("no other peers yet; share `invite` with a friend");
            } else {
                for line in peer_lines(&s) {
                    out.out(line);
                }
            }
        }
        PeerCmd::Invite { show_key } => {
            // Bare, so that `$(meff invite)` is a ticket.
            out.out(node.ticket().encode());
            if show_key {
                out.out(format!("network key: {}", node.network_key_hex()));
            }
        }
        PeerCmd::Volume { level } => match level {
            None => out.out(format!("volume {}", node.volume())),
            Some(l) => {
                let v: u8 = l
                    .trim()
                    .parse()
                    .map_err(|_| CmdError::failed(format!("volume {l:?} is not 0 to 100")))?;
                node.set_volume(v)?;
                out.out(format!("volume {v}"));
            }
        },
        PeerCmd::Down => {
            if let Some(n) = node.leave().await {
                out.out(left_line(n));
            }
        }
        PeerCmd::Push {
            name,
            file,
            replace,
        } => {
            let file = resolve(cwd, &file);
            let o = out.clone();
            let pushed = node
                .push_with(&name, &file, replace, move |d, t| o.progress(d, t))
                .await?;
            let holders = pushed.holders;
            if pushed.name != name {
                out.err(format!(
                    "warning: another peer pushed '{name}' at the same time; this track is '{}'",
                    pushed.name
                ));
            }
            let name = pushed.name;
            let names: Vec<String> = holders.iter().map(|p| node.peer_name(p)).collect();
            let want = node.replicas().min(node.alive_count());
            if holders.len() < want {
                out.err(format!(
                    "warning: {name} is on {} of the {want} peers it should be on; repair will add the rest",
                    holders.len()
                ));
            }
            out.out(format!(
                "pushed {name} to {} peers: {}",
                holders.len(),
                names.join(", ")
            ));
        }
        PeerCmd::Get { name, output } if output.as_deref() == Some(Path::new("-")) => {
            let (tx, mut rx) = mpsc::channel::<Vec<u8>>(4);
            let o = out.clone();
            let relay = tokio::spawn(async move {
                while let Some(chunk) = rx.recv().await {
                    o.data(&chunk).await;
                }
            });
            let got = node.get_into(&name, tx).await;
            let _ = relay.await;
            got?;
        }
        PeerCmd::Get { name, output } => {
            let path = node.get(&name, output.as_deref(), cwd).await?;
            out.out(format!("saved {name} to {}", path.display()));
        }
        PeerCmd::Import { paths, dry_run } => {
            let paths: Vec<_> = paths.iter().map(|p| resolve(cwd, p)).collect();
            let o = out.clone();
            let bar = out.clone();
            let report = node
                .import(
                    &paths,
                    dry_run,
                    move |path, outcome| {
                        if let Some(line) = library_view::import_line(path, outcome, dry_run) {
                            o.out(line);
                        }
                    },
                    move |p| {
                        let _ = bar.tx.send(Line::ImportProgress(
                            p.files_done,
                            p.files,
                            p.bytes_done,
                            p.bytes,
                        ));
                    },
                )
                .await?;
            out.out(library_view::import_summary(&report, dry_run));
            if let Some(why) = report.stopped {
                return Err(CmdError::failed(why));
            }
        }
        PeerCmd::Remove { name, force } => {
            node.remove_with(&name, force).await?;
            out.out(format!("removed {name}"));
        }
        PeerCmd::Ls {
            query,
            artist,
            album,
            json,
        } => {
            let filter = LsFilter {
                query: query.join(" "),
                artist,
                album,
            };
            let filtered = !filter.query.trim().is_empty()
                || filter.artist.is_some()
                || filter.album.is_some();
            let tracks = node.ls_filtered(&filter);
            if json {
                out.out(serde_json::to_string(&tracks)?);
            } else if tracks.is_empty() && filtered {
                out.out("no track matches");
            } else if tracks.is_empty() {
                out.out("no tracks yet; add one with `push NAME FILE`");
            } else {
                // One message for the whole listing: thousands of lines cost one write.
                out.out(library_view::track_lines(&tracks).join("\n"));
            }
        }
        PeerCmd::Artists { json } => {
            let artists = node.artists();
            if json {
                out.out(serde_json::to_string(&artists)?);
            } else if artists.is_empty() {
                out.out("no tagged artists yet");
            } else {
                // One message for the whole listing: thousands of lines cost one write.
                out.out(library_view::artist_lines(&artists).join("\n"));
            }
        }
        PeerCmd::Albums { artist, json } => {
            let albums = node.albums(artist.as_deref());
            if json {
                out.out(serde_json::to_string(&albums)?);
            } else if albums.is_empty() {
                out.out("no albums");
            } else {
                // One message for the whole listing: thousands of lines cost one write.
                out.out(library_view::album_lines(&albums).join("\n"));
            }
        }
        PeerCmd::Playlist { action } => super::playlist_view::run(node, action, out)?,
        PeerCmd::Stream {
            names,
            album,
            artist,
            playlist,
            shuffle,
            repeat,
            output,
            stats,
        } => {
            let start = std::time::Instant::now();
            let output = resolve_output(cwd, &output)?;
            let json = stats_format(stats.as_deref())?;
            let tracks = if let Some(p) = &playlist {
                let found = node.playlist_tracks(p)?;
                if found.is_empty() {
                    return Err(CmdError::failed(format!("playlist '{p}' is empty")));
                }
                names.into_iter().chain(found).collect()
            } else if album.is_some() || artist.is_some() {
                let found = node.tracks_for(album.as_deref(), artist.as_deref());
                if found.is_empty() {
                    return Err(CmdError::failed(match (&album, &artist) {
                        (Some(b), Some(a)) => format!("no album '{b}' by '{a}'"),
                        (Some(b), None) => format!("no album '{b}'"),
                        (None, a) => format!("no tracks by '{}'", a.as_deref().unwrap_or("")),
                    }));
                }
                names.into_iter().chain(found).collect()
            } else {
                for n in &names {
                    node.entry(n)?;
                }
                names
            };
            let label = match tracks.as_slice() {
                [] => "the queue".to_string(),
                [one] => one.clone(),
                many => format!("{} tracks", many.len()),
            };
            let req = (!tracks.is_empty()).then_some(QueueRequest {
                tracks,
                shuffle,
                repeat,
            });
            let o = out.clone();
            let n = node.clone();
            let s = node
                .stream_queue(req, output, start, move |e| match e {
                    QueueEvent::Source(p) => o.err(format!("source: {} ({p})", n.peer_name(&p))),
                    QueueEvent::Skipped { name, why } => {
                        o.err(format!("warning: skipped {name}: {why}"))
                    }
                    QueueEvent::Warning { name, why } => o.err(format!("warning: {name}: {why}")),
                })
                .await?;
            report_playback(&label, &s, json, false, out)?;
        }
        PeerCmd::Queue { action, json } => match action {
            None => {
                let q = node.queue();
                if json {
                    out.out(serde_json::to_string(&q)?);
                } else if q.tracks.is_empty() {
                    out.out("the queue is empty");
                } else {
                    let heard = node.now_playing().and_then(|np| np.control.heard_track());
                    let lines: Vec<String> = q
                        .tracks
                        .iter()
                        .enumerate()
                        .map(|(i, t)| {
                            let mark = if heard.unwrap_or(q.position) == i {
                                '>'
                            } else {
                                ' '
                            };
                            format!("{mark} {:>3}. {t}", i + 1)
                        })
                        .collect();
                    out.out(lines.join("\n"));
                }
            }
            Some(QueueAction::Add { names }) => {
                let len = node.queue_add(&names)?;
                out.out(format!("queued {} (queue: {len} tracks)", names.len()));
            }
            Some(QueueAction::Clear) => {
                node.queue_clear();
                out.out("queue cleared");
            }
        },
        PeerCmd::Seek { position } => {
            let (to, relative) = parse_seek(&position).ok_or_else(|| {
                CmdError::failed(format!(
                    "'{position}' is not a position: use M:SS, SECONDS, +SECONDS or -SECONDS"
                ))
            })?;
            match node.seek(to, relative).await? {
                SeekOutcome::Landed(at) => {
                    out.out(format!("at {}", crate::store::library::clock(at)))
                }
                SeekOutcome::NextTrack => out.out("past the end: playing the next track"),
                SeekOutcome::Failed(why) => return Err(CmdError::failed(why)),
            }
        }
        PeerCmd::Next | PeerCmd::Prev => {
            let to = node.skip(matches!(cmd, PeerCmd::Next))?;
            out.out(format!("playing {to}"));
        }
        PeerCmd::Play { name, output } => {
            let start = std::time::Instant::now();
            let output = resolve_output(cwd, &output)?;
            let s = node.play(&name, output, start).await?;
            report_playback(&name, &s, false, true, out)?;
        }
        PeerCmd::Pause | PeerCmd::Resume | PeerCmd::Stop => {
            let np = node
                .now_playing()
                .ok_or_else(|| CmdError::failed("nothing is playing"))?;
            match cmd {
                PeerCmd::Pause => np.control.pause(),
                PeerCmd::Resume => np.control.resume(),
                _ => np.control.stop(),
            }
        }
    }
    Ok(())
}

fn print_status(s: &Status, out: &Output) {
    out.out(format!("id:     {}", s.id));
    out.out(format!("name:   {}", s.name));
    out.out(format!("addrs:  {}", s.addrs.join(", ")));
    if s.disk_full {
        out.out(format!(
            "stored: {} (disk full: taking no new copies)",
            human_bytes(s.stored_bytes)
        ));
    } else {
        out.out(format!("stored: {}", human_bytes(s.stored_bytes)));
    }
    if let Some(p) = &s.playing {
        let what = match (&p.title, &p.artist) {
            (Some(t), Some(a)) => format!("{t} — {a} ({})", p.name),
            _ => p.name.clone(),
        };
        out.out(format!(
            "{}: {what}  {}/{}  volume {}  from {}",
            if p.paused { "paused" } else { "playing" },
            crate::store::library::clock(p.position_s),
            crate::store::library::clock(p.duration_s),
            p.volume,
            p.source.as_deref().unwrap_or("-")
        ));
    }
    let left = s.peers.iter().filter(|p| p.state == "left").count();
    let members = s.peers.len() - left;
    if left > 0 {
        out.out(format!("peers:  {members} (and {left} that left)"));
    } else {
        out.out(format!("peers:  {members}"));
    }
    for line in peer_lines(s) {
        out.out(format!("  {line}"));
    }
}

/// Members first; peers that left under their own heading (they are forgotten after a day).
fn peer_lines(s: &Status) -> Vec<String> {
    let (left, members): (Vec<_>, Vec<_>) = s.peers.iter().partition(|p| p.state == "left");
    let mut lines: Vec<String> = members.into_iter().map(peer_line).collect();
    if !left.is_empty() {
        lines.push("left:".to_string());
        lines.extend(left.into_iter().map(|p| format!("  {}", peer_line(p))));
    }
    lines
}

fn peer_line(p: &crate::node::status::PeerStatus) -> String {
    let rtt = p
        .rtt_ms
        .map(|r| format!("{r:.1} ms"))
        .unwrap_or_else(|| "-".into());
    format!(
        "{:<16} {}  {:<7} rtt {:>8}  {:<7} {}{}",
        p.name,
        p.id.get(..8).unwrap_or(&p.id),
        p.state,
        rtt,
        p.path,
        p.addr.as_deref().unwrap_or("-"),
        if p.disk_full { "  disk full" } else { "" }
    )
}

/// What a peer says when it has left gracefully.
pub fn left_line(handed_off: usize) -> String {
    let s = if handed_off == 1 { "" } else { "s" };
    format!("left the network (handed off {handed_off} track{s})")
}

pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}
