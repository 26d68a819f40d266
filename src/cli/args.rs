//! Command-line grammar: the two ways to start a peer and the commands that talk to one.

use clap::{Args, Parser, Subcommand};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(
    name = "meff",
    version,
    about = "Music Entertainment For Friends: a peer-to-peer replicated music store",
    override_usage = "meff [OPTIONS] NAME PORT [PEER]\n       meff [OPTIONS] <COMMAND>",
    after_help = "Start a peer with `meff NAME PORT [PEER]` (opens the shell) or `meff up --name NAME --port PORT [--join PEER]`.\nOther commands talk to the running peer of --data-dir."
)]
pub struct Cli {
    /// Data dir of the peer (identity, database, blobs, control socket).
    #[arg(long, global = true, env = "MEFF_DATA_DIR")]
    pub data_dir: Option<PathBuf>,

    /// The running peer to talk to, by name (its data dir under the default root).
    #[arg(long, global = true, value_name = "NAME")]
    pub peer: Option<String>,

    /// More logging (-v info, -vv debug); RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,

    #[command(subcommand)]
    pub cmd: TopCmd,
}

/// Options that take a value, so the argument after them is not a command word.
const VALUE_OPTIONS: [&str; 11] = [
    "--http",
    "--peer",
    "--network-key-file",
    "--join-file",
    "--upload-limit",
    "--data-dir",
    "--network-key",
    "--replicas",
    "--capacity",
    "--repair-after",
    "--bind",
];

/// The original form `meff NAME PORT [PEER]` has no command word: insert the hidden `start`
/// so clap sees one grammar.
pub fn normalize_args(args: Vec<String>) -> Vec<String> {
    use clap::CommandFactory;
    let cmd = Cli::command();
    let mut i = 1;
    while i < args.len() {
        let a = &args[i];
        if VALUE_OPTIONS.contains(&a.as_str()) {
            i += 2;
            continue;
        }
        if a.starts_with('-') {
            i += 1;
            continue;
        }
        let known = a == "help"
            || cmd
                .get_subcommands()
                .any(|s| s.get_name() == a || s.get_all_aliases().any(|x| x == a));
        let mut out = args.clone();
        if !known {
            out.insert(1, "start".to_string());
        }
        return out;
    }
    args
}

#[derive(Args, Debug, Clone)]
pub struct PeerOpts {
    /// Network key (64 hex characters) when joining through host:port. Other local users see
    /// it in the process list: prefer MEFF_NETWORK_KEY, --network-key-file or the prompt.
    #[arg(long, env = "MEFF_NETWORK_KEY", hide_env_values = true)]
    pub network_key: Option<String>,
    /// File holding the network key (64 hex characters).
    #[arg(long, value_name = "FILE")]
    pub network_key_file: Option<PathBuf>,
    /// File holding the invite ticket to join through (instead of PEER / --join; or set
    /// MEFF_TICKET): keeps the ticket out of the process list.
    #[arg(long, value_name = "FILE")]
    pub join_file: Option<PathBuf>,
    /// Copies each track gets (or every peer where fewer).
    #[arg(long, default_value_t = 3)]
    pub replicas: usize,
    /// Storage this peer offers, e.g. 10G, 500M (default 10G, or the disk's size if smaller;
    /// more than the disk is refused).
    #[arg(long)]
    pub capacity: Option<String>,
    /// How long a holder may be unreachable before its tracks are copied elsewhere (2s, 5m, 1h).
    #[arg(long, default_value = "10m")]
    pub repair_after: String,
    /// Serve others at most this many bytes per second, e.g. 500K, 2M (default: no limit).
    #[arg(long)]
    pub upload_limit: Option<String>,
    /// Address to bind (all interfaces by default).
    #[arg(long, default_value = "0.0.0.0")]
    pub bind: std::net::IpAddr,
    /// Where the web player and Subsonic API listen: HOST:PORT, or off (default
    /// 127.0.0.1:4533, the next free port if taken, then the same port on every start).
    #[arg(
        long,
        value_name = "ADDR|off",
        default_value = "default",
        hide_default_value = true
    )]
    pub http: crate::web::HttpChoice,
}

#[derive(Subcommand, Debug)]
pub enum TopCmd {
    /// The original form: meff NAME PORT [PEER], with the shell.
    #[command(
        hide = true,
        override_usage = "meff [OPTIONS] NAME PORT [PEER]",
        about = "Start peer NAME on UDP PORT, create a network or join one through PEER, and open the shell"
    )]
    Start {
        /// Peer name.
        name: String,
        /// UDP port to listen on (0 picks a free one).
        port: u16,
        /// Invite ticket (meff1…) or host:port of a member to join through.
        peer: Option<String>,
        #[command(flatten)]
        opts: PeerOpts,
    },
    /// Run a peer without the shell until `meff down`, SIGINT or SIGTERM.
    Up {
        /// This peer's name in the network (1-64 characters).
        #[arg(long)]
        name: String,
        /// UDP port to listen on (0 picks a free one).
        #[arg(long, default_value_t = 0)]
        port: u16,
        /// Invite ticket (meff1…) or host:port to join through (or --join-file / MEFF_TICKET,
        /// which keep the ticket out of the process list).
        #[arg(long)]
        join: Option<String>,
        #[command(flatten)]
        opts: PeerOpts,
    },
    /// A self-contained demo: a few peers on loopback, an embedded track pushed and streamed.
    Demo {
        /// Where the demo plays: device, null or wav:PATH (device when a sound card works).
        #[arg(long)]
        output: Option<String>,
    },
    /// Set the password of this peer's web player and Subsonic API (user: the peer's
    /// name); asks without echo on a terminal, else reads one line from stdin.
    Password,
    /// Make a new OpenSubsonic API key for this peer (printed once; keep it).
    Apikey,
    #[command(flatten)]
    Peer(PeerCmd),
}

/// Commands run by a running peer: typed in its shell or sent over its control socket.
#[derive(Subcommand, Debug, Clone, Serialize, Deserialize)]
pub enum PeerCmd {
    /// This peer: id, name, addresses, stored bytes, and every known peer.
    Status {
        /// Print it as JSON (SPEC's `status --json`).
        #[arg(long)]
        json: bool,
    },
    /// Known peers with their state, rtt and path; peers that left are listed apart.
    Peers {
        /// Print the peers as JSON (the `peers` array of `status --json`).
        #[arg(long)]
        json: bool,
    },
    /// Print the invite ticket for this network.
    Invite {
        /// Also print the network key (for joining by host:port).
        #[arg(long)]
        show_key: bool,
    },
    /// Store an audio FILE under NAME on R peers (mp3, flac, ogg/vorbis, wav, aac/m4a).
    Push {
        /// The track's name in the network (at most 200 bytes, no '/' or '\').
        name: String,
        /// The audio file to store.
        file: PathBuf,
        /// Replace the track already under NAME (pushing to a name that exists is refused).
        #[arg(long)]
        replace: bool,
    },
    /// Import audio files and folders (recursively), named `Artist - Title` from their tags.
    Import {
        /// Files or folders to import.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Say what would be imported, under which names, without storing anything.
        #[arg(long)]
        dry_run: bool,
    },
    /// Download NAME, byte-identical and verified.
    Get {
        /// The track to download.
        name: String,
        /// Where to write it: a file (replaced atomically), a directory (DIR/NAME.<ext>), a
        /// device or FIFO, or - for stdout (default ./NAME.<ext>).
        #[arg(short = 'o', long = "output", value_name = "PATH")]
        output: Option<PathBuf>,
    },
    /// Fetch NAME into memory, then play it.
    Play {
        /// The track to play.
        name: String,
        /// device, null or wav:PATH
        #[arg(long, default_value = "device")]
        output: String,
    },
    /// Play tracks while their bytes arrive (nothing touches disk): the names, an album or
    /// an artist form a queue that replaces the current one; with none of them, the
    /// current queue plays from where it is.
    Stream {
        /// The tracks to play, in order.
        names: Vec<String>,
        /// Play this album, in disc and track order.
        #[arg(long, value_name = "ALBUM")]
        album: Option<String>,
        /// Play this artist's tracks (with --album: that artist's album of that title).
        #[arg(long, value_name = "ARTIST")]
        artist: Option<String>,
        /// Play this playlist, in its order.
        #[arg(long, value_name = "PLAYLIST")]
        playlist: Option<String>,
        /// Play the queue in a random order.
        #[arg(long)]
        shuffle: bool,
        /// Start over after the last track.
        #[arg(long)]
        repeat: bool,
        /// device, null or wav:PATH
        #[arg(long, default_value = "device")]
        output: String,
        /// Print playback statistics when done (json).
        #[arg(long)]
        stats: Option<String>,
    },
    /// Show or set the playback volume (0-100), applied in the pipeline with a short glide.
    Volume {
        /// The new volume, 0 to 100 (default: show the current one).
        level: Option<String>,
    },
    /// The play queue; `queue add NAME...` appends, `queue clear` empties it (and stops).
    Queue {
        #[command(subcommand)]
        action: Option<QueueAction>,
        /// Print the queue as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Playlists shared by the whole network.
    Playlist {
        #[command(subcommand)]
        action: PlaylistAction,
    },
    /// Seek in what plays: `1:30`, `90` (seconds), `+10` or `-10` (from where it is).
    #[command(allow_hyphen_values = true)]
    Seek {
        /// M:SS, SECONDS, +SECONDS or -SECONDS.
        #[arg(allow_hyphen_values = true)]
        position: String,
    },
    /// Jump to the next track of the queue.
    Next,
    /// Jump to the previous track of the queue.
    Prev,
    /// Pause playback.
    Pause,
    /// Resume playback.
    Resume,
    /// Stop playback.
    Stop,
    /// Delete NAME network-wide, every copy.
    Remove {
        /// The track to delete.
        name: String,
        /// Delete it even though another peer pushed it.
        #[arg(long)]
        force: bool,
    },
    /// The tracks in the network, or those matching QUERY.
    Ls {
        /// Words that must each start a word of the name, title, artist or album (case and
        /// accents do not matter: `cafe del` finds `Café del Mar`).
        query: Vec<String>,
        /// Only tracks by this artist (or album artist).
        #[arg(long, value_name = "A")]
        artist: Option<String>,
        /// Only tracks of this album.
        #[arg(long, value_name = "B")]
        album: Option<String>,
        /// Print the tracks as JSON (SPEC's `ls --json`).
        #[arg(long)]
        json: bool,
    },
    /// Artists in the network, with their albums and tracks.
    Artists {
        /// Print them as JSON (SPEC's `artists --json`).
        #[arg(long)]
        json: bool,
    },
    /// Albums in the network (by album artist, else artist), optionally of one artist.
    Albums {
        /// Only albums by this artist.
        #[arg(long, value_name = "A")]
        artist: Option<String>,
        /// Print them as JSON (SPEC's `albums --json`).
        #[arg(long)]
        json: bool,
    },
    /// Leave gracefully and stop the peer.
    #[command(alias = "exit")]
    Down,
}

// One shell line (`push song a.mp3`), parsed with the same grammar as the subcommands.
#[derive(Parser, Debug)]
#[command(
    name = "",
    no_binary_name = true,
    disable_version_flag = true,
    about = "A command of the meff shell",
    override_usage = "COMMAND [ARGS]"
)]
pub struct ShellLine {
    #[command(subcommand)]
    pub cmd: PeerCmd,
}

pub fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("invalid duration '{s}' (use e.g. 2s, 5m, 1h)"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "" | "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        "d" => n * 86400.0,
        _ => return Err(format!("invalid duration unit in '{s}' (use ms, s, m, h)")),
    };
    std::time::Duration::try_from_secs_f64(secs).map_err(|_| format!("invalid duration '{s}'"))
}

pub fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("invalid size '{s}' (use e.g. 500M, 10G)"))?;
    let mult = match unit
        .to_ascii_uppercase()
        .trim_end_matches("IB")
        .trim_end_matches('B')
    {
        "" => 1u64,
        "K" => 1 << 10,
        "M" => 1 << 20,
        "G" => 1 << 30,
        "T" => 1 << 40,
        _ => return Err(format!("invalid size unit in '{s}'")),
    };
    let v = n * mult as f64;
    if !v.is_finite() || v < 1.0 {
        return Err(format!("invalid size '{s}'"));
    }
    Ok(v as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn durations_and_sizes() {
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("5x").is_err());
        assert_eq!(parse_size("10G"), Ok(10 << 30));
        assert_eq!(parse_size("500M"), Ok(500 << 20));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert!(parse_size("lots").is_err());
        assert!(parse_size("0").is_err());
    }

    #[test]
    fn shell_lines_parse() {
        let l = ShellLine::try_parse_from(["status", "--json"]).unwrap();
        assert!(matches!(l.cmd, PeerCmd::Status { json: true }));
        let l = ShellLine::try_parse_from(["exit"]).unwrap();
        assert!(matches!(l.cmd, PeerCmd::Down));
        assert!(ShellLine::try_parse_from(["frobnicate"]).is_err());
    }
}

#[derive(Subcommand, Debug, Clone, Serialize, Deserialize)]
pub enum PlaylistAction {
    /// List the playlists, or the entries of one.
    Ls {
        /// The playlist to show (default: all of them, with their lengths).
        name: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Make an empty playlist.
    Create { name: String },
    /// Append tracks to a playlist (made if it does not exist).
    Add {
        name: String,
        #[arg(required = true)]
        tracks: Vec<String>,
    },
    /// Remove the entries naming these tracks; with no tracks, delete the playlist.
    Rm { name: String, tracks: Vec<String> },
    /// Move the entry at position FROM to position TO (counting from 1).
    Mv {
        name: String,
        from: usize,
        to: usize,
    },
}

#[derive(Subcommand, Debug, Clone, Serialize, Deserialize)]
pub enum QueueAction {
    /// Append tracks to the queue.
    Add {
        /// The tracks to append.
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Empty the queue and stop playback.
    Clear,
}
