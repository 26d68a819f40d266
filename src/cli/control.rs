//! The control socket: a Unix socket in the data dir through which `meff <command>` reaches
//! its running peer (from any network namespace, since it is a file).

use super::args::PeerCmd;
use super::commands::{self, Line, Output};
use crate::node::Node;
use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tracing::debug;

pub const SOCKET_NAME: &str = "control.sock";
/// A request is one JSON line: room for a queue of 10,000 names of 200 bytes.
pub const MAX_REQUEST: usize = 4 * 1024 * 1024;

#[derive(Debug, Serialize, Deserialize)]
pub struct Request {
    pub cmd: PeerCmd,
    pub cwd: PathBuf,
}

pub fn socket_path(data_dir: &Path) -> PathBuf {
    data_dir.join(SOCKET_NAME)
}

/// The longest socket path a Unix socket address holds (sun_path is 108 bytes with its NUL).
const MAX_SOCKET_PATH: usize = 107;
/// Control clients served at once; more wait in the kernel's backlog.
const MAX_CLIENTS: usize = 64;

/// Checked before a peer starts, so a long data dir fails with a reason instead of after
/// `listening:`.
pub fn check_socket_path(data_dir: &Path) -> Result<()> {
    let path = socket_path(data_dir);
    let len = path.as_os_str().len();
    if len > MAX_SOCKET_PATH {
        bail!(
            "data dir path {} is too long for its control socket ({len} bytes with the socket name; at most {MAX_SOCKET_PATH}); use a shorter --data-dir",
            data_dir.display()
        );
    }
    Ok(())
}

/// Only the data dir's owner (this process's user) or root may drive the peer: the peer
/// writes files where a command says and can tell the network key.
fn caller_allowed(stream: &UnixStream) -> bool {
    // SAFETY: geteuid has no preconditions.
    let me = unsafe { libc::geteuid() };
    stream
        .peer_cred()
        .is_ok_and(|c| c.uid() == me || c.uid() == 0)
}

/// Serve commands until the node stops. Only this peer holds the data-dir lock, so a socket
/// file left by a crashed run is stale and safe to replace.
pub fn serve(node: Node) -> Result<ControlServer> {
    use std::os::unix::fs::PermissionsExt;
    let path = socket_path(node.data_dir());
    let _ = std::fs::remove_file(&path);
    let listener = UnixListener::bind(&path)
        .with_context(|| format!("cannot create control socket {}", path.display()))?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
        .with_context(|| format!("cannot make {} private", path.display()))?;
    let slots = std::sync::Arc::new(tokio::sync::Semaphore::new(MAX_CLIENTS));
    let server = ControlServer {
        slots: slots.clone(),
    };
    tokio::spawn(async move {
        let mut backoff = std::time::Duration::from_millis(10);
        loop {
            let Ok(permit) = slots.clone().acquire_owned().await else {
                break;
            };
            let stream = tokio::select! {
                _ = node.stopped() => break,
                s = listener.accept() => s,
            };
            let stream = match stream {
                Ok((s, _)) => {
                    backoff = std::time::Duration::from_millis(10);
                    s
                }
                Err(e) => {
                    // Out of file descriptors (EMFILE): retrying at once would spin a core.
                    tracing::warn!("control socket: {e}; backing off {backoff:?}");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(std::time::Duration::from_secs(1));
                    continue;
                }
            };
            if !caller_allowed(&stream) {
                tracing::warn!("control socket: refused a client of another user");
                tokio::spawn(refuse(stream));
                drop(permit);
                continue;
            }
            let n = node.clone();
            tokio::spawn(async move {
                if let Err(e) = handle(n, stream).await {
                    debug!("control client: {e:#}");
                }
                drop(permit);
            });
        }
        let _ = std::fs::remove_file(&path);
    });
    Ok(server)
}

/// The running control server: lets the process finish the replies in flight (`down`'s own
/// answer among them) before it exits.
pub struct ControlServer {
    slots: std::sync::Arc<tokio::sync::Semaphore>,
}

impl ControlServer {
    pub async fn drain(&self) {
        let all = self.slots.acquire_many(MAX_CLIENTS as u32);
        let _ = tokio::time::timeout(std::time::Duration::from_secs(3), all).await;
    }
}

/// Answers a client of another user with one error line, after reading its request so it
/// is not cut off mid-write (it would see a broken pipe instead of the reason).
async fn refuse(stream: UnixStream) {
    let (rd, mut wr) = stream.into_split();
    let mut rd = BufReader::new(rd.take(MAX_REQUEST as u64));
    let mut line = String::new();
    let _ = tokio::time::timeout(std::time::Duration::from_secs(2), rd.read_line(&mut line)).await;
    let msg = Line::Err(
        "error: this peer belongs to another user; only its owner (or root) may control it".into(),
    );
    let _ = write_line(&mut wr, &msg).await;
    let _ = write_line(&mut wr, &Line::Exit(1)).await;
}

async fn handle(node: Node, stream: UnixStream) -> Result<()> {
    let (rd, mut wr) = stream.into_split();
    let mut rd = BufReader::new(rd.take(MAX_REQUEST as u64));
    let mut line = String::new();
    let read =
        tokio::time::timeout(std::time::Duration::from_secs(10), rd.read_line(&mut line)).await;
    if !matches!(read, Ok(Ok(n)) if n > 0) {
        return Ok(());
    }
    let req: Request = match serde_json::from_str(&line) {
        Ok(r) => r,
        Err(e) => {
            let msg = Line::Err(format!("error: malformed control request: {e}"));
            write_line(&mut wr, &msg).await?;
            write_line(&mut wr, &Line::Exit(2)).await?;
            return Ok(());
        }
    };
    let (out, mut rx) = Output::new();
    let plays = matches!(req.cmd, PeerCmd::Stream { .. } | PeerCmd::Play { .. });
    let n = node.clone();
    let mut task =
        tokio::spawn(async move { commands::execute(&n, req.cmd, &req.cwd, &out).await });
    // The client sends nothing after its request: anything on the read half (its end, most
    // often) means it is gone, and so is the reason to go on.
    let mut gone = [0u8; 1];
    let client_gone = async {
        let _ = rd.read(&mut gone).await;
    };
    tokio::pin!(client_gone);
    let mut finished = false;
    let code = loop {
        tokio::select! {
            l = rx.recv(), if !finished => match l {
                Some(l) => {
                    if let Err(e) = write_line(&mut wr, &l).await {
                        stop_for_gone_client(&node, plays, &task);
                        return Err(e);
                    }
                }
                None => finished = true,
            },
            r = &mut task, if finished => break match r {
                Ok(code) => code,
                Err(e) => {
                    write_line(&mut wr, &Line::Err(format!("error: internal error: {e}"))).await?;
                    1
                }
            },
            _ = &mut client_gone => {
                stop_for_gone_client(&node, plays, &task);
                return Ok(());
            }
        }
    };
    write_line(&mut wr, &Line::Exit(code)).await?;
    wr.shutdown().await.ok();
    Ok(())
}

/// The client went away (Ctrl-C on `meff get` or `meff stream`): stop what it started.
fn stop_for_gone_client(node: &Node, plays: bool, task: &tokio::task::JoinHandle<i32>) {
    if plays && let Some(np) = node.now_playing() {
        np.control.stop();
    }
    task.abort();
}

async fn write_line(wr: &mut tokio::net::unix::OwnedWriteHalf, l: &Line) -> Result<()> {
    let mut s = serde_json::to_string(l)?;
    s.push('\n');
    wr.write_all(s.as_bytes()).await?;
    Ok(())
}

/// Client side: send one command, print what comes back, return the exit status. A closed
/// stdout (`| head`) ends it quietly; any other failure to print is one error line.
pub async fn run_client(data_dir: &Path, cmd: PeerCmd) -> Result<i32> {
    let path = socket_path(data_dir);
    // On a terminal, playback shows the shell's now-playing line, drawn from a second
    // connection that asks for the status while the first one plays.
    let line = (matches!(cmd, PeerCmd::Stream { .. } | PeerCmd::Play { .. })
        && std::io::stderr().is_terminal())
    .then(|| tokio::spawn(now_playing_line(path.clone())));
    let result = run_request(&path, data_dir, cmd, line.is_some()).await;
    if let Some(task) = line {
        task.abort();
        eprint!("\r\x1b[2K");
    }
    result
}

/// Redraws one status line on stderr while something plays.
async fn now_playing_line(path: PathBuf) {
    loop {
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        let Some(status) = ask_status(&path).await else {
            continue;
        };
        let p = &status["playing"];
        if p.is_null() {
            continue;
        }
        let what = match (p["title"].as_str(), p["artist"].as_str()) {
            (Some(t), Some(a)) => format!("{t} — {a}"),
            _ => p["name"].as_str().unwrap_or("").to_string(),
        };
        let clock = |v: &serde_json::Value| crate::store::library::clock(v.as_f64().unwrap_or(0.0));
        eprint!(
            "\r\x1b[2K{} {what}  {}/{}  volume {}  from {}",
            if p["paused"] == true {
                "paused"
            } else {
                "playing"
            },
            clock(&p["position_s"]),
            clock(&p["duration_s"]),
            p["volume"],
            p["source"].as_str().unwrap_or("-")
        );
    }
}

async fn ask_status(path: &Path) -> Option<serde_json::Value> {
    let stream = UnixStream::connect(path).await.ok()?;
    let (rd, mut wr) = stream.into_split();
    let req = Request {
        cmd: PeerCmd::Status { json: true },
        cwd: PathBuf::from("/"),
    };
    let mut s = serde_json::to_string(&req).ok()?;
    s.push('\n');
    wr.write_all(s.as_bytes()).await.ok()?;
    let mut lines = BufReader::new(rd).lines();
    while let Ok(Some(l)) = lines.next_line().await {
        if let Ok(Line::Out(json)) = serde_json::from_str::<Line>(&l) {
            return serde_json::from_str(&json).ok();
        }
    }
    None
}

async fn run_request(path: &Path, data_dir: &Path, cmd: PeerCmd, status_line: bool) -> Result<i32> {
    let stream = UnixStream::connect(path).await.map_err(|e| {
        anyhow::anyhow!(
            "no peer is running on data dir {} ({e}); start one with `meff up`",
            data_dir.display()
        )
    })?;
    let (rd, mut wr) = stream.into_split();
    let req = Request {
        cmd,
        cwd: std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/")),
    };
    let mut s = serde_json::to_string(&req)?;
    s.push('\n');
    wr.write_all(s.as_bytes()).await?;
    let mut lines = BufReader::new(rd).lines();
    let mut progress = super::progress::Progress::default();
    let mut stdout = std::io::stdout().lock();
    while let Some(l) = lines.next_line().await? {
        let line = serde_json::from_str::<Line>(&l)
            .map_err(|_| anyhow::anyhow!("the peer sent an unreadable reply"))?;
        let printed = match line {
            Line::Out(s) => progress.above(|| writeln!(stdout, "{s}")),
            Line::Data(b64) => {
                let bytes = data_encoding::BASE64
                    .decode(b64.as_bytes())
                    .map_err(|_| anyhow::anyhow!("the peer sent unreadable data"))?;
                stdout.write_all(&bytes)
            }
            Line::Err(s) => progress.above(|| {
                if status_line {
                    eprint!("\r\x1b[2K");
                }
                eprintln!("{s}");
                Ok(())
            }),
            Line::Progress(done, total) => {
                progress.update(done, total);
                Ok(())
            }
            Line::ImportProgress(files_done, files, done, total) => {
                progress.update_files(files_done, files, done, total);
                Ok(())
            }
            Line::Exit(code) => {
                progress.clear();
                stdout.flush().map_err(print_failure)?;
                return Ok(code);
            }
        };
        printed.map_err(print_failure)?;
    }
    bail!("the peer closed the control connection without finishing")
}

/// A write to stdout failed. A reader that closed the pipe wanted no more: exit quietly;
/// anything else (a full disk) is an error.
pub fn print_failure(e: std::io::Error) -> anyhow::Error {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        std::process::exit(0);
    }
    anyhow::anyhow!("cannot write output: {e}")
}
