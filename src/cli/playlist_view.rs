//! `playlist …`: what each subcommand prints.

use super::args::PlaylistAction;
use super::commands::{CmdError, Output};
use crate::node::Node;
use crate::store::playlists::PlaylistView;

pub fn run(node: &Node, action: PlaylistAction, out: &Output) -> Result<(), CmdError> {
    match action {
        PlaylistAction::Ls { name, json } => {
            let views = match name {
                Some(n) => vec![node.playlist(&n)?],
                None => node.playlists(),
            };
            if json {
                out.out(serde_json::to_string(&views)?);
            } else if views.is_empty() {
                out.out("no playlists; make one with `playlist create NAME`");
            } else if views.len() == 1 && !views[0].tracks.is_empty() {
                out.out(entries(&views[0]));
            } else {
                out.out(views.iter().map(summary).collect::<Vec<_>>().join("\n"));
            }
        }
        PlaylistAction::Create { name } => {
            node.playlist_create(&name)?;
            out.out(format!("created playlist '{name}'"));
        }
        PlaylistAction::Add { name, tracks } => {
            let len = node.playlist_add(&name, &tracks)?;
            out.out(format!("added {} to '{name}' ({len} tracks)", tracks.len()));
        }
        PlaylistAction::Rm { name, tracks } if tracks.is_empty() => {
            node.playlist_rm(&name, &tracks)?;
            out.out(format!("deleted playlist '{name}'"));
        }
        PlaylistAction::Rm { name, tracks } => {
            let n = node.playlist_rm(&name, &tracks)?;
            out.out(format!("removed {n} from '{name}'"));
        }
        PlaylistAction::Mv { name, from, to } => {
            node.playlist_mv(&name, from, to)?;
            out.out(format!("moved entry {from} to {to} in '{name}'"));
        }
    }
    Ok(())
}

fn summary(v: &PlaylistView) -> String {
    let missing = match v.missing.len() {
        0 => String::new(),
        n => format!(", {n} missing"),
    };
    format!("{}  ({} tracks{missing})", v.name, v.tracks.len())
}

fn entries(v: &PlaylistView) -> String {
    v.tracks
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let gone = if v.missing.contains(t) {
                "  (missing)"
            } else {
                ""
            };
            format!("{:>4}. {t}{gone}", i + 1)
        })
        .collect::<Vec<_>>()
        .join("\n")
}
