//! Front ends: argument parsing, starting a peer, the shell, the control socket. Prints and
//! parses; every decision is the node's.

pub mod args;
pub mod commands;
pub mod control;
pub mod library_view;
pub mod line_editor;
pub mod playlist_view;
pub mod progress;
pub mod shell;

use crate::net::ticket::Ticket;
use crate::node::{JoinTarget, Node, NodeConfig};
use anyhow::{Context, Result, anyhow, bail};
use args::{Cli, PeerOpts, TopCmd};
use std::io::IsTerminal;
use std::path::PathBuf;

pub async fn run(cli: Cli) -> Result<i32> {
    match cli.cmd {
        TopCmd::Up {
            name,
            port,
            join,
            opts,
        } => {
            let node = start_peer(&name, port, join.as_deref(), &opts, cli.data_dir).await?;
            let server = control::serve(node.clone())?;
            let web = start_web(&node, &opts).await?;
            announce(&node, web.as_ref());
            wait_for_signal_or_stop(&node).await;
            server.drain().await;
            if let Some(n) = node.left_handing_off() {
                say(&commands::left_line(n));
            }
            Ok(0)
        }
        TopCmd::Demo { output } => crate::demo::run(output.as_deref()).await,
        TopCmd::Password => {
            let dir = resolve_client_data_dir(cli.data_dir, cli.peer.as_deref())?;
            let password = if std::io::stdin().is_terminal() {
                let first = read_secret_line("new password: ")?;
                let again = read_secret_line("again: ")?;
                if first.trim_end_matches(['\r', '\n']) != again.trim_end_matches(['\r', '\n']) {
                    bail!("the two passwords differ; nothing was changed");
                }
                first
            } else {
                let mut line = String::new();
                std::io::stdin().read_line(&mut line)?;
                line
            };
            crate::web::credentials::set_password(&dir, &password)?;
            say("password set: log in to the web player and Subsonic apps with it");
            Ok(0)
        }
        TopCmd::Apikey => {
            let dir = resolve_client_data_dir(cli.data_dir, cli.peer.as_deref())?;
            let key = crate::web::credentials::new_api_key(&dir)?;
            say(&key);
            eprintln!("this API key is shown once: give it to a Subsonic app as its apiKey");
            Ok(0)
        }
        TopCmd::Peer(cmd) => {
            let dir = resolve_client_data_dir(cli.data_dir, cli.peer.as_deref())?;
            control::run_client(&dir, cmd).await
        }
        TopCmd::Start {
            name,
            port,
            peer,
            opts,
        } => {
            let node = start_peer(&name, port, peer.as_deref(), &opts, cli.data_dir).await?;
            let server = control::serve(node.clone())?;
            let web = start_web(&node, &opts).await?;
            announce(&node, web.as_ref());
            let n = node.clone();
            tokio::spawn(async move {
                wait_for_signal_or_stop(&n).await;
            });
            shell::run(node.clone()).await;
            server.drain().await;
            Ok(0)
        }
    }
}

/// A line on stdout for whoever reads it; a reader that went away does not stop the peer.
fn say(line: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}").and_then(|_| out.flush());
}

async fn wait_for_signal_or_stop(node: &Node) {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => {
            node.stopped().await;
            return;
        }
    };
    tokio::select! {
        _ = node.stopped() => {}
        _ = tokio::signal::ctrl_c() => { node.leave().await; }
        _ = term.recv() => { node.leave().await; }
    }
}

fn default_base_dir() -> PathBuf {
    if let Some(x) = std::env::var_os("XDG_DATA_HOME") {
        return PathBuf::from(x).join("meff");
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."));
    home.join(".local/share/meff")
}

/// A command talks to the peer of --data-dir (or MEFF_DATA_DIR), else of --peer NAME under
/// the default root, else to the only peer running there.
fn resolve_client_data_dir(given: Option<PathBuf>, peer: Option<&str>) -> Result<PathBuf> {
    if let Some(d) = given {
        return Ok(d);
    }
    let base = default_base_dir();
    if let Some(name) = peer {
        return Ok(base.join(name));
    }
    let mut running: Vec<PathBuf> = std::fs::read_dir(&base)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| control::socket_path(p).exists())
                .collect()
        })
        .unwrap_or_default();
    running.sort();
    match running.as_slice() {
        [one] => Ok(one.clone()),
        [] => bail!(
            "no running peer found under {}; pass --peer NAME or --data-dir",
            base.display()
        ),
        _ => {
            let names: Vec<String> = running
                .iter()
                .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
                .collect();
            bail!(
                "several peers run under {}: {}; pick one with --peer NAME",
                base.display(),
                names.join(", ")
            )
        }
    }
}

pub fn parse_network_key(s: &str) -> Result<[u8; 32]> {
    let bytes = data_encoding::HEXLOWER_PERMISSIVE
        .decode(s.trim().as_bytes())
        .map_err(|_| anyhow!("network key must be 64 hex characters"))?;
    bytes
        .try_into()
        .map_err(|_| anyhow!("network key must be 64 hex characters (32 bytes)"))
}

/// Reads one line from the terminal without echoing it (a secret being typed).
fn read_secret_line(prompt: &str) -> Result<String> {
    use std::io::Write;
    eprint!("{prompt}");
    let _ = std::io::stderr().flush();
    let fd = libc::STDIN_FILENO;
    // SAFETY: termios is plain old data; tcgetattr fills it for a terminal fd.
    let mut old: libc::termios = unsafe { std::mem::zeroed() };
    let is_tty = unsafe { libc::tcgetattr(fd, &mut old) } == 0;
    if is_tty {
        let mut quiet = old;
        quiet.c_lflag &= !libc::ECHO;
        quiet.c_lflag |= libc::ECHONL;
        // SAFETY: a valid termios for the same fd.
        unsafe { libc::tcsetattr(fd, libc::TCSANOW, &quiet) };
    }
    let mut line = String::new();
    let read = std::io::stdin().read_line(&mut line);
    if is_tty {
        // SAFETY: restores the settings read above.
        unsafe { libc::tcsetattr(fd, libc::TCSANOW, &old) };
    }
    read?;
    Ok(line)
}

/// The network key for joining through host:port: flag, file, environment, or a prompt that
/// does not echo and asks again when what was typed is not a key.
fn network_key(opts: &PeerOpts) -> Result<[u8; 32]> {
    if let Some(path) = &opts.network_key_file {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read network key file {}", path.display()))?;
        return parse_network_key(&text)
            .with_context(|| format!("in network key file {}", path.display()));
    }
    if let Some(k) = &opts.network_key {
        return parse_network_key(k);
    }
    if !std::io::stdin().is_terminal() {
        bail!(
            "joining through host:port needs the network key: set MEFF_NETWORK_KEY or pass --network-key-file FILE, or use an invite ticket"
        );
    }
    for _ in 0..3 {
        let line = read_secret_line("network key (64 hex characters, not shown): ")?;
        if line.is_empty() {
            bail!("no network key given");
        }
        match parse_network_key(&line) {
            Ok(k) => return Ok(k),
            Err(e) => eprintln!("{e}; try again"),
        }
    }
    bail!("no valid network key after 3 tries")
}

/// Where the ticket or address to join comes from: the argument, `--join-file`, or
/// `MEFF_TICKET` (the last two keep the secret out of the process list).
fn join_source(arg: Option<&str>, opts: &PeerOpts) -> Result<Option<String>> {
    if let Some(a) = arg {
        return Ok(Some(a.to_string()));
    }
    if let Some(path) = &opts.join_file {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read ticket file {}", path.display()))?;
        return Ok(Some(text.trim().to_string()));
    }
    Ok(std::env::var("MEFF_TICKET")
        .ok()
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty()))
}

async fn parse_join(peer: &str, opts: &PeerOpts) -> Result<JoinTarget> {
    if Ticket::looks_like(peer) {
        return Ticket::decode(peer)
            .map(JoinTarget::Ticket)
            .map_err(|e| anyhow!(e));
    }
    let host_port = peer
        .rsplit_once(':')
        .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok());
    if !host_port {
        bail!("'{peer}' is neither an invite ticket (meff1…) nor host:port");
    }
    let addr = tokio::net::lookup_host(peer)
        .await
        .map_err(|e| anyhow!("cannot resolve the host name in '{peer}': {e}"))?
        .next()
        .ok_or_else(|| anyhow!("'{peer}' resolves to no address"))?;
    let key = network_key(opts)?;
    Ok(JoinTarget::Addr { addr, key })
}

pub async fn start_peer(
    name: &str,
    port: u16,
    join: Option<&str>,
    opts: &PeerOpts,
    data_dir: Option<PathBuf>,
) -> Result<Node> {
    if name.is_empty() || name.len() > 64 || name.chars().any(|c| c.is_control() || c == '/') {
        bail!("peer name must be 1-64 characters, without '/' or control characters");
    }
    let data_dir = data_dir.unwrap_or_else(|| default_base_dir().join(name));
    control::check_socket_path(&data_dir)?;
    let mut cfg = NodeConfig::new(name, data_dir);
    cfg.port = port;
    cfg.bind_ip = opts.bind;
    cfg.replicas = opts.replicas.max(1);
    if let Some(c) = &opts.capacity {
        cfg.capacity = args::parse_size(c).map_err(|e| anyhow!(e))?;
        cfg.capacity_given = true;
    }
    cfg.repair_after = args::parse_duration(&opts.repair_after).map_err(|e| anyhow!(e))?;
    cfg.upload_limit = match &opts.upload_limit {
        Some(s) => Some(args::parse_size(s).map_err(|e| anyhow!(e))?),
        None => None,
    };
    cfg.join = match join_source(join, opts)? {
        Some(p) => Some(parse_join(&p, opts).await?),
        None => None,
    };
    // A first start that fails leaves nothing behind (it would make `--peer` ambiguous).
    let fresh = !cfg.data_dir.exists();
    let dir = cfg.data_dir.clone();
    let started = Node::start(cfg).await.context("cannot start peer");
    if started.is_err() && fresh {
        let _ = std::fs::remove_dir_all(&dir);
    }
    started
}

/// The web player and Subsonic API, as `--http` says; a peer that cannot serve them stops
/// (asked-for HTTP that silently is not there would be worse).
async fn start_web(node: &Node, opts: &PeerOpts) -> Result<Option<crate::web::WebServer>> {
    match crate::web::start(node.clone(), &opts.http) {
        Ok(w) => Ok(w),
        Err(e) => {
            node.leave().await;
            Err(e)
        }
    }
}

/// The start lines, printed once the control socket is up: a script that reads
/// `listening:` can use the peer at once.
fn announce(node: &Node, web: Option<&crate::web::WebServer>) {
    // Addresses a friend can dial, not the wildcard the socket is bound to; the public one
    // joins them in `status` once a peer has seen it.
    let addrs = node.addrs();
    let shown = if addrs.is_empty() {
        node.local_addr().to_string()
    } else {
        addrs.join(", ")
    };
    say(&format!("listening: {shown}"));
    // The address peers see us at (behind a NAT, the one a friend elsewhere dials) is learned
    // from the first handshakes: say it when it comes.
    let n = node.clone();
    tokio::spawn(async move {
        let mut known = addrs;
        while !n.is_stopped() {
            for a in n.addrs() {
                if !known.contains(&a) {
                    say(&format!("public address: {a} (as peers see it)"));
                    known.push(a);
                }
            }
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        }
    });
    if node.created_network() {
        say(&format!("invite: {}", node.ticket().encode()));
    }
    if let Some(w) = web {
        say(&format!("web: {}", w.url));
    }
    let n = node.clone();
    tokio::spawn(async move {
        if n.wait_synced_forever().await {
            say(&format!("joined: {} tracks", n.track_count()));
        }
    });
    eprintln!(
        "peer {} ({}) data dir {}",
        node.name(),
        node.id().short(),
        node.data_dir().display()
    );
}
