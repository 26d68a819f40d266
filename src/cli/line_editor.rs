//! The shell's line editor on a terminal (rustyline): history kept in the data dir, Tab
//! completion of commands, track names, artists and albums (quoted as needed), Ctrl-C clears
//! the line, Ctrl-D leaves. It runs on its own thread; the shell asks it for one line at a
//! time, so the prompt never comes back while a command is still printing.

use crate::node::Node;
use rustyline::completion::{Completer, Pair};
use rustyline::error::ReadlineError;
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::validate::Validator;
use rustyline::{Context, Editor, ExternalPrinter, Helper};
use std::path::PathBuf;
use std::sync::mpsc;

/// What the user did at the prompt.
pub enum Input {
    Line(String),
    /// Ctrl-C: the line was cleared.
    Interrupted,
    /// A line that cannot be a command (not UTF-8, too long): why.
    Refused(String),
    /// Ctrl-D, or the terminal went away.
    Eof,
}

const PROMPT: &str = "meff> ";

/// Commands the shell knows, for completion.
const COMMANDS: &[&str] = &[
    "albums", "artists", "down", "exit", "get", "help", "import", "invite", "ls", "next", "pause",
    "peers", "play", "playlist", "prev", "push", "queue", "remove", "resume", "seek", "status",
    "stop", "stream", "volume",
];

/// Commands whose arguments are track names.
const TAKES_TRACK: &[&str] = &["get", "play", "remove", "stream"];

struct ShellHelper {
    node: Node,
}

fn quoted(s: &str) -> String {
    shell_words::quote(s).into_owned()
}

impl ShellHelper {
    fn playlist_names(&self) -> Vec<String> {
        self.node.playlists().into_iter().map(|p| p.name).collect()
    }
}

impl Completer for ShellHelper {
    type Candidate = Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        let before = &line[..pos];
        // The word being typed starts after the last unquoted space (a leading quote is
        // part of it, so `stream 'caf` completes to `stream 'café del mar'`).
        let start = before.rfind(' ').map_or(0, |i| i + 1);
        let typed = before[start..].trim_start_matches(['\'', '"']);
        let words: Vec<&str> = before[..start].split_whitespace().collect();
        let candidates: Vec<String> = match words.as_slice() {
            [] => COMMANDS.iter().map(|c| c.to_string()).collect(),
            [.., "--artist"] => self.node.artists().into_iter().map(|a| a.name).collect(),
            [.., "--album"] => self
                .node
                .albums(None)
                .into_iter()
                .map(|a| a.album)
                .collect(),
            [.., "--playlist"] => self.playlist_names(),
            ["queue"] => vec!["add".to_string(), "clear".to_string()],
            ["playlist"] => ["add", "create", "ls", "mv", "rm"]
                .map(str::to_string)
                .to_vec(),
            ["playlist", "ls" | "add" | "rm" | "mv"] => self.playlist_names(),
            ["playlist", "add" | "rm", _, ..] => {
                self.node.ls().into_iter().map(|t| t.name).collect()
            }
            ["queue", "add", ..] => self.node.ls().into_iter().map(|t| t.name).collect(),
            [cmd, ..] if TAKES_TRACK.contains(cmd) => {
                self.node.ls().into_iter().map(|t| t.name).collect()
            }
            _ => Vec::new(),
        };
        let lower = typed.to_lowercase();
        let mut out: Vec<Pair> = candidates
            .into_iter()
            .filter(|c| c.to_lowercase().starts_with(&lower))
            .map(|c| Pair {
                replacement: format!("{} ", quoted(&c)),
                display: c,
            })
            .collect();
        out.dedup_by(|a, b| a.display == b.display);
        Ok((start, out))
    }
}

impl Hinter for ShellHelper {
    type Hint = String;
}
impl Highlighter for ShellHelper {}
impl Validator for ShellHelper {}
impl Helper for ShellHelper {}

/// The editor thread: `next` asks for a line, and prints go above the prompt.
pub struct LineEditor {
    ask: mpsc::Sender<String>,
    lines: tokio::sync::mpsc::UnboundedReceiver<Input>,
    printer: Option<Box<dyn ExternalPrinter + Send>>,
}

impl LineEditor {
    /// Starts the editor; None when the terminal cannot be driven (the shell falls back to
    /// plain lines).
    pub fn start(node: Node, history: PathBuf) -> Option<LineEditor> {
        let mut editor: Editor<ShellHelper, rustyline::history::DefaultHistory> =
            Editor::new().ok()?;
        editor.set_helper(Some(ShellHelper { node }));
        let _ = editor.load_history(&history);
        let printer = editor
            .create_external_printer()
            .ok()
            .map(|p| Box::new(p) as Box<dyn ExternalPrinter + Send>);
        let (ask, asked) = mpsc::channel::<String>();
        let (tx, lines) = tokio::sync::mpsc::unbounded_channel();
        std::thread::Builder::new()
            .name("meff-shell".into())
            .spawn(move || {
                while let Ok(prompt) = asked.recv() {
                    let command = prompt == PROMPT;
                    let input = match editor.readline(&prompt) {
                        Ok(line) => {
                            if command && !line.trim().is_empty() {
                                let _ = editor.add_history_entry(line.as_str());
                                let _ = editor.save_history(&history);
                            }
                            Input::Line(line)
                        }
                        Err(ReadlineError::Interrupted) => Input::Interrupted,
                        // A window resize and the like: just prompt again.
                        Err(ReadlineError::Signal(_)) => Input::Refused(String::new()),
                        Err(ReadlineError::Io(e))
                            if e.kind() == std::io::ErrorKind::InvalidData =>
                        {
                            Input::Refused("the line is not UTF-8 text; ignored".into())
                        }
                        Err(_) => Input::Eof,
                    };
                    let eof = matches!(input, Input::Eof);
                    if tx.send(input).is_err() || eof {
                        break;
                    }
                }
            })
            .ok()?;
        Some(LineEditor {
            ask,
            lines,
            printer,
        })
    }

    /// Shows the prompt and waits for what the user does there.
    pub async fn next(&mut self) -> Input {
        self.read(PROMPT.to_string()).await
    }

    /// Asks a yes/no question; only `y` or `yes` is yes.
    pub async fn confirm(&mut self, question: &str) -> bool {
        match self.read(format!("{question} [y/N] ")).await {
            Input::Line(l) => matches!(l.trim().to_lowercase().as_str(), "y" | "yes"),
            _ => false,
        }
    }

    async fn read(&mut self, prompt: String) -> Input {
        if self.ask.send(prompt).is_err() {
            return Input::Eof;
        }
        self.lines.recv().await.unwrap_or(Input::Eof)
    }

    /// A printer that writes above the prompt without touching what is being typed.
    pub fn printer(&mut self) -> Option<Box<dyn ExternalPrinter + Send>> {
        self.printer.take()
    }
}
