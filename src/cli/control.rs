//! The control socket: a Unix socket in the data dir through which `meff <command>` reaches
//! its running peer (from any network namespace, since it is a file).

use super::args::PeerCmd;
use super::commands::{self, Line, Output};
use crate::node::Node;
use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tracing::debug;

pub const SOCKET_NAME: &str = "control.sock";
const MAX_REQUEST: usize = 64 * 1024;

#[derive(Debug, Serialize, Deserialize)]
pub struct Request {
    pub cmd: PeerCmd,
    pub cwd: PathBuf,
}

pub fn socket_path(data_dir: &Path) -> PathBuf {
    data_dir.join(SOCKET_NAME)
}

/// Serve commands until the node stops. Only this peer holds the data-dir lock, so a socket
/// file left by a crashed run is stale and safe to replace.
pub fn serve(node: Node) -> Result<()> {
    let path = socket_path(node.data_dir());
    let _ = std::fs::remove_file(&path);
    let listener = UnixListener::bind(&path)
        .with_context(|| format!("cannot create control socket {}", path.display()))?;
    tokio::spawn(async move {
        loop {
            let stream = tokio::select! {
                _ = node.stopped() => break,
                s = listener.accept() => s,
            };
            let Ok((stream, _)) = stream else { continue };
            let n = node.clone();
            tokio::spawn(async move {
                if let Err(e) = handle(n, stream).await {
                    debug!("control client: {e:#}");
                }
            });
        }
        let _ = std::fs::remove_file(&path);
    });
    Ok(())
}

async fn handle(node: Node, stream: UnixStream) -> Result<()> {
    let (rd, mut wr) = stream.into_split();
    let mut rd = BufReader::new(rd.take(MAX_REQUEST as u64));
    let mut line = String::new();
    rd.read_line(&mut line).await?;
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
    let is_down = matches!(req.cmd, PeerCmd::Down);
    let n = node.clone();
    let task = tokio::spawn(async move { commands::execute(&n, req.cmd, &req.cwd, &out).await });
    while let Some(l) = rx.recv().await {
        if let Err(e) = write_line(&mut wr, &l).await {
            // The client went away (Ctrl-C on `meff stream`): nobody is listening any more.
            if let Some(np) = node.now_playing() {
                np.control.stop();
            }
            task.abort();
            return Err(e);
        }
    }
    let code = match task.await {
        Ok(code) => code,
        Err(e) => {
            write_line(&mut wr, &Line::Err(format!("error: internal error: {e}"))).await?;
            1
        }
    };
    write_line(&mut wr, &Line::Exit(code)).await?;
    wr.shutdown().await.ok();
    if is_down {
        node.leave().await;
    }
    Ok(())
}

async fn write_line(wr: &mut tokio::net::unix::OwnedWriteHalf, l: &Line) -> Result<()> {
    let mut s = serde_json::to_string(l)?;
    s.push('\n');
    wr.write_all(s.as_bytes()).await?;
    Ok(())
}

/// Client side: send one command, print what comes back, return the exit status.
pub async fn run_client(data_dir: &Path, cmd: PeerCmd) -> Result<i32> {
    let path = socket_path(data_dir);
    let stream = UnixStream::connect(&path).await.map_err(|e| {
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
    while let Some(l) = lines.next_line().await? {
        match serde_json::from_str::<Line>(&l) {
            Ok(Line::Out(s)) => {
                progress.clear();
                println!("{s}")
            }
            Ok(Line::Err(s)) => {
                progress.clear();
                eprintln!("{s}")
            }
            Ok(Line::Progress(done, total)) => progress.update(done, total),
            Ok(Line::Exit(code)) => {
                progress.clear();
                return Ok(code);
            }
            Err(_) => bail!("the peer sent an unreadable reply"),
        }
    }
    bail!("the peer closed the control connection without finishing")
}
