//! The interactive shell. Reads commands line by line, from a terminal or a script.

use super::args::{PeerCmd, ShellLine};
use super::commands::{self, HELP, Line, Output};
use super::progress::Progress;
use crate::node::Node;
use clap::Parser;
use std::io::{IsTerminal, Write};
use tokio::io::{AsyncBufReadExt, BufReader};

/// Runs until `down`/`exit`, end of input, or the node stopping; leaves gracefully.
pub async fn run(node: Node) {
    let interactive = std::io::stdin().is_terminal();
    let cwd = std::env::current_dir().unwrap_or_default();
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    loop {
        if interactive {
            print!("meff> ");
            let _ = std::io::stdout().flush();
        }
        let line = tokio::select! {
            _ = node.stopped() => return,
            l = lines.next_line() => l,
        };
        let line = match line {
            Ok(Some(l)) => l,
            _ => break,
        };
        let words = match shell_words::split(&line) {
            Ok(w) => w.into_iter().map(expand_tilde).collect::<Vec<_>>(),
            Err(e) => {
                eprintln!("error: {e}");
                continue;
            }
        };
        if words.is_empty() {
            continue;
        }
        if words[0] == "help" || words[0] == "?" {
            println!("{HELP}");
            continue;
        }
        let cmd = match ShellLine::try_parse_from(&words) {
            Ok(l) => l.cmd,
            Err(e) => {
                let text = e.to_string();
                eprintln!("{}", text.trim_end());
                continue;
            }
        };
        if matches!(cmd, PeerCmd::Down) {
            run_one(&node, cmd, &cwd).await;
            return;
        }
        // On a terminal playback runs in the background so pause/resume/stop can be typed
        // meanwhile; a script waits for it, so its stats come out before the next line.
        if interactive && matches!(cmd, PeerCmd::Stream { .. } | PeerCmd::Play { .. }) {
            let n = node.clone();
            let c = cwd.clone();
            tokio::spawn(async move { run_one(&n, cmd, &c).await });
            tokio::spawn(now_playing_line(node.clone()));
            continue;
        }
        run_one(&node, cmd, &cwd).await;
    }
    // End of input (Ctrl-D, or the end of a script).
    run_one(&node, PeerCmd::Down, &cwd).await;
}

async fn run_one(node: &Node, cmd: PeerCmd, cwd: &std::path::Path) {
    let (out, mut rx) = Output::new();
    let n = node.clone();
    let cwd = cwd.to_path_buf();
    let task = tokio::spawn(async move { commands::execute(&n, cmd, &cwd, &out).await });
    let mut progress = Progress::default();
    while let Some(l) = rx.recv().await {
        match l {
            Line::Out(s) => {
                progress.clear();
                println!("{s}");
            }
            Line::Err(s) => {
                progress.clear();
                eprintln!("{s}");
            }
            Line::Data(b64) => {
                if let Ok(bytes) = data_encoding::BASE64.decode(b64.as_bytes()) {
                    let _ = std::io::stdout().write_all(&bytes);
                }
            }
            Line::Progress(d, t) => progress.update(d, t),
            Line::Exit(_) => {}
        }
    }
    progress.clear();
    let _ = task.await;
}

/// While something plays, keep one status line updated in place: track, elapsed/duration,
/// buffer health, source peer.
async fn now_playing_line(node: Node) {
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let mut shown = false;
    while let Some(np) = node.now_playing() {
        let st = np.control.status();
        let source = np
            .source
            .lock()
            .ok()
            .and_then(|s| *s)
            .map(|p| node.peer_name(&p))
            .unwrap_or_else(|| "-".into());
        let state = if np.control.is_paused() {
            "paused"
        } else {
            "playing"
        };
        eprint!(
            "\r\x1b[2K{state} {}  {}/{}  buffer {:>3.0}%  from {source}",
            np.name,
            clock(st.elapsed_s),
            clock(st.duration_s),
            st.buffer_fill * 100.0
        );
        shown = true;
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    if shown {
        eprint!("\r\x1b[2K");
    }
}

/// `~` and `~/…` mean the home directory, as in any shell.
fn expand_tilde(word: String) -> String {
    let home = std::env::var("HOME").unwrap_or_default();
    if home.is_empty() {
        return word;
    }
    if word == "~" {
        home
    } else if let Some(rest) = word.strip_prefix("~/") {
        format!("{}/{rest}", home.trim_end_matches('/'))
    } else {
        word
    }
}

fn clock(s: f64) -> String {
    let s = s.max(0.0) as u64;
    format!("{}:{:02}", s / 60, s % 60)
}
