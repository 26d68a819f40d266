//! The interactive shell. Reads commands line by line, from a terminal or a script.

use super::args::{PeerCmd, ShellLine};
use super::commands::{self, HELP, Line, Output};
use super::line_editor::{Input, LineEditor};
use super::progress::Progress;
use crate::node::Node;
use clap::Parser;
use rustyline::ExternalPrinter;
use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncBufReadExt, BufReader};

/// Where background output goes: above the prompt on a terminal, else stdout/stderr.
type Printer = Option<Arc<Mutex<Box<dyn ExternalPrinter + Send>>>>;

/// Input lines: from the line editor on a terminal, else plain lines of stdin (a script).
enum Source {
    Editor(LineEditor),
    Plain(BufReader<tokio::io::Stdin>),
}

/// A line of a script longer than this is refused (and skipped), not buffered.
const MAX_LINE: usize = 64 * 1024;

impl Source {
    async fn next(&mut self) -> Input {
        match self {
            Source::Editor(e) => e.next().await,
            Source::Plain(rd) => {
                let mut buf = Vec::new();
                match rd.read_until(b'\n', &mut buf).await {
                    Ok(0) | Err(_) => Input::Eof,
                    Ok(_) if buf.len() > MAX_LINE => Input::Refused(format!(
                        "a line of {} bytes is too long (at most {MAX_LINE}); ignored",
                        buf.len()
                    )),
                    Ok(_) => match String::from_utf8(buf) {
                        Ok(mut l) => {
                            if l.ends_with('\n') {
                                l.pop();
                            }
                            Input::Line(l)
                        }
                        Err(_) => Input::Refused("the line is not UTF-8 text; ignored".into()),
                    },
                }
            }
        }
    }
}

/// Runs until `down`/`exit`, end of input, or the node stopping; leaves gracefully.
pub async fn run(node: Node) {
    let terminal = std::io::stdin().is_terminal() && std::io::stdout().is_terminal();
    let cwd = std::env::current_dir().unwrap_or_default();
    let history = node.data_dir().join("shell_history");
    let mut printer: Printer = None;
    let mut source = match terminal
        .then(|| LineEditor::start(node.clone(), history))
        .flatten()
    {
        Some(mut editor) => {
            printer = editor.printer().map(|p| Arc::new(Mutex::new(p)));
            Source::Editor(editor)
        }
        None => Source::Plain(BufReader::new(tokio::io::stdin())),
    };
    let interactive = matches!(source, Source::Editor(_)) || std::io::stdin().is_terminal();
    loop {
        if interactive && matches!(source, Source::Plain(_)) {
            print!("meff> ");
            let _ = std::io::stdout().flush();
        }
        let input = tokio::select! {
            _ = node.stopped() => return,
            l = source.next() => l,
        };
        // What was typed now stands above the next prompt, not the now-playing line.
        STATUS_ABOVE_PROMPT.store(false, Ordering::SeqCst);
        let line = match input {
            Input::Line(l) => l,
            Input::Refused(why) => {
                if !why.is_empty() {
                    eprintln!("error: {why}");
                }
                continue;
            }
            Input::Interrupted => {
                eprintln!("(line cleared; type `exit` or press Ctrl-D to leave the network)");
                continue;
            }
            Input::Eof => break,
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
            run_one(&node, cmd, &cwd, &None).await;
            return;
        }
        // On a terminal, removing a friend's track is asked about instead of refused.
        let cmd = match (cmd, &mut source) {
            (PeerCmd::Remove { name, force: false }, Source::Editor(editor)) => {
                match node.pushed_by_another(&name) {
                    Some(who) => {
                        let q = format!("'{name}' was pushed by {who}; remove it for everyone?");
                        if !editor.confirm(&q).await {
                            println!("kept {name}");
                            continue;
                        }
                        PeerCmd::Remove { name, force: true }
                    }
                    None => PeerCmd::Remove { name, force: false },
                }
            }
            (cmd, _) => cmd,
        };
        // On a terminal playback runs in the background so pause/resume/stop can be typed
        // meanwhile; a script waits for it, so its stats come out before the next line.
        if interactive && matches!(cmd, PeerCmd::Stream { .. } | PeerCmd::Play { .. }) {
            let n = node.clone();
            let c = cwd.clone();
            let p = printer.clone();
            tokio::spawn(async move { run_one(&n, cmd, &c, &p).await });
            tokio::spawn(now_playing_line(node.clone(), printer.clone()));
            continue;
        }
        run_one(&node, cmd, &cwd, &None).await;
    }
    // End of input (Ctrl-D, or the end of a script).
    run_one(&node, PeerCmd::Down, &cwd, &None).await;
}

/// Whether the line right above the prompt is the now-playing line, so that the next one
/// replaces it in place rather than scrolling a new one out.
static STATUS_ABOVE_PROMPT: AtomicBool = AtomicBool::new(false);

/// Prints a line above the prompt when there is a line editor, else to stdout/stderr.
fn print_line(printer: &Printer, s: String, to_stderr: bool) {
    if let Some(p) = printer
        && let Ok(mut p) = p.lock()
        && p.print(format!("{s}\n")).is_ok()
    {
        STATUS_ABOVE_PROMPT.store(false, Ordering::SeqCst);
        return;
    }
    if to_stderr {
        eprintln!("{s}");
    } else {
        println!("{s}");
    }
}

/// Draws the now-playing line on its own line just above the prompt: the editor clears the
/// prompt, we step up one line and overwrite the last now-playing line (when it is the one
/// there), and the editor draws the prompt and what is being typed again below it.
fn print_status(printer: &Printer, s: &str) {
    let Some(p) = printer else { return };
    let Ok(mut p) = p.lock() else { return };
    // One terminal row exactly: a line that wrapped would leave its first row behind when
    // the next one steps up over it.
    let s: String = s.chars().take(terminal_width().saturating_sub(1)).collect();
    let replace = STATUS_ABOVE_PROMPT.swap(true, Ordering::SeqCst);
    let msg = if replace {
        format!("\x1b[1A\r\x1b[2K{s}\n")
    } else {
        format!("{s}\n")
    };
    if p.print(msg).is_err() {
        STATUS_ABOVE_PROMPT.store(false, Ordering::SeqCst);
    }
}

/// Columns of the terminal on stdout (80 when it cannot say).
fn terminal_width() -> usize {
    // SAFETY: an all-zero winsize is a valid value of this plain C struct.
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: TIOCGWINSZ only writes a winsize into the struct we pass; on failure it
    // returns -1 and leaves it as it was.
    let ok = unsafe { libc::ioctl(libc::STDOUT_FILENO, libc::TIOCGWINSZ, &mut ws) } == 0;
    if ok && ws.ws_col > 0 {
        usize::from(ws.ws_col)
    } else {
        80
    }
}

async fn run_one(node: &Node, cmd: PeerCmd, cwd: &std::path::Path, printer: &Printer) {
    let (out, mut rx) = Output::new();
    let n = node.clone();
    let cwd = cwd.to_path_buf();
    let task = tokio::spawn(async move { commands::execute(&n, cmd, &cwd, &out).await });
    let mut progress = Progress::default();
    while let Some(l) = rx.recv().await {
        match l {
            Line::Out(s) => {
                progress.clear();
                print_line(printer, s, false);
            }
            Line::Err(s) => {
                progress.clear();
                print_line(printer, s, true);
            }
            Line::Data(b64) => {
                if let Ok(bytes) = data_encoding::BASE64.decode(b64.as_bytes()) {
                    let _ = std::io::stdout().write_all(&bytes);
                }
            }
            Line::Progress(d, t) => progress.update(d, t),
            Line::ImportProgress(fd, f, d, t) => progress.update_files(fd, f, d, t),
            Line::Exit(_) => {}
        }
    }
    progress.clear();
    let _ = task.await;
}

/// While something plays, keep one status line updated in place: track, elapsed/duration,
/// buffer health, source peer.
async fn now_playing_line(node: Node, printer: Printer) {
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let mut shown = false;
    let mut last: Option<String> = None;
    while let Some(np) = node.now_playing() {
        let st = np.control.status();
        let source = np
            .source
            .map(|p| node.peer_name(&p))
            .unwrap_or_else(|| "-".into());
        let state = if np.control.is_paused() {
            "paused"
        } else {
            "playing"
        };
        // The tags say what it is; the track's name is the fallback.
        let what = node
            .track_tags(&np.name)
            .and_then(|(tags, _)| match (tags.title, tags.artist) {
                (Some(t), Some(a)) => Some(format!("{t} — {a}")),
                (Some(t), None) => Some(t),
                _ => None,
            })
            .unwrap_or_else(|| np.name.clone());
        let text = format!(
            "{state} {what}  {}/{}  buffer {:>3.0}%  from {source}  vol {}",
            clock(st.elapsed_s),
            clock(st.duration_s),
            st.buffer_fill * 100.0,
            node.volume()
        );
        if printer.is_some() {
            // Redrawn only when it changes (about once a second): each redraw also redraws
            // the line being typed, which must not flicker four times a second. The buffer
            // figure moves all the time, so it does not count as a change on its own.
            let key = format!(
                "{state} {what} {} {source} {}",
                clock(st.elapsed_s),
                node.volume()
            );
            if last.as_ref() != Some(&key) {
                print_status(&printer, &text);
                last = Some(key);
            }
        } else {
            eprint!("\r\x1b[2K{text}");
            shown = true;
        }
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
