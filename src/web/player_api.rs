//! What the web player needs beyond the Subsonic API (which it uses for the library): its
//! page, logging in, the mesh, this peer's own playback and its controls, and uploads.

use super::capped_listener;
use super::{CSRF_HEADER, Web, csrf_ok, json_response, session_cookie, session_of};
use crate::cli::args::{PeerCmd, ShellLine};
use crate::cli::commands::{Line, Output, execute};
use axum::extract::{ConnectInfo, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use clap::Parser;
use futures_util::StreamExt;
use serde_json::json;
use std::collections::HashMap;
use tokio::io::AsyncWriteExt;

const INDEX_HTML: &str = include_str!("assets/index.html");
const APP_JS: &str = include_str!("assets/app.js");
const STYLE_CSS: &str = include_str!("assets/style.css");
/// The largest file the web player takes: bigger than any track, smaller than a mistake.
pub const MAX_UPLOAD_BYTES: u64 = 1 << 30;

fn asset(kind: &'static str, text: &'static str) -> Response {
    let mut r = text.into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r
}

/// The page; `?token=` from the `web:` line logs this browser in once.
pub async fn index(State(web): State<Web>, Query(q): Query<HashMap<String, String>>) -> Response {
    if let Some(t) = q.get("token") {
        if web.creds.take_login_token(t) {
            let (id, _) = web.creds.new_session();
            let mut r = (StatusCode::SEE_OTHER, "logged in").into_response();
            r.headers_mut()
                .insert(header::LOCATION, HeaderValue::from_static("/"));
            r.headers_mut()
                .insert(header::SET_COOKIE, session_cookie(&id));
            return r;
        }
        let mut r = asset("text/html; charset=utf-8", INDEX_HTML);
        *r.status_mut() = StatusCode::UNAUTHORIZED;
        return r;
    }
    let mut r = asset("text/html; charset=utf-8", INDEX_HTML);
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; img-src 'self' data:; media-src 'self'; style-src 'self'; script-src 'self'; frame-ancestors 'none'",
        ),
    );
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    r
}

pub async fn script() -> Response {
    asset("text/javascript; charset=utf-8", APP_JS)
}

pub async fn style() -> Response {
    asset("text/css; charset=utf-8", STYLE_CSS)
}

pub async fn session(State(web): State<Web>, headers: HeaderMap) -> Response {
    let s = session_of(&web, &headers);
    json_response(
        StatusCode::OK,
        json!({
            "user": web.creds.user(),
            "logged_in": s.is_some(),
            "csrf": s.map(|(_, c)| c),
            "has_password": web.creds.has_password(),
        }),
    )
}

pub async fn login(
    State(web): State<Web>,
    ConnectInfo(capped_listener::ClientAddr(peer)): ConnectInfo<capped_listener::ClientAddr>,
    body: axum::body::Bytes,
) -> Response {
    let p = super::params::Params::parse(None, Some(&body));
    let password = p.get("password").unwrap_or("");
    if web.creds.must_wait(peer.ip()) {
        return json_response(
            StatusCode::TOO_MANY_REQUESTS,
            json!({"error": "too many failed attempts from this address: wait a moment"}),
        );
    }
    if !web.creds.check_password(password) {
        let wait = web.creds.failed(peer.ip());
        tokio::time::sleep(wait).await;
        let why = if web.creds.has_password() {
            "wrong password"
        } else {
            "no password is set: run `meff password`, or open the link the peer printed"
        };
        return json_response(StatusCode::UNAUTHORIZED, json!({"error": why}));
    }
    web.creds.succeeded(peer.ip());
    let (id, csrf) = web.creds.new_session();
    let mut r = json_response(StatusCode::OK, json!({"csrf": csrf}));
    r.headers_mut()
        .insert(header::SET_COOKIE, session_cookie(&id));
    r
}

/// The session of a request that changes something, or the answer refusing it.
// A handler's early answer is a Response; boxing it would only move the cost.
#[allow(clippy::result_large_err)]
fn changing(web: &Web, headers: &HeaderMap) -> Result<String, Response> {
    match session_of(web, headers) {
        None => Err(json_response(
            StatusCode::UNAUTHORIZED,
            json!({"error": "log in first"}),
        )),
        Some((id, csrf)) if csrf_ok(headers, None, &csrf) => Ok(id),
        Some(_) => Err(json_response(
            StatusCode::FORBIDDEN,
            json!({"error": format!("the request lacks its session's {CSRF_HEADER} header")}),
        )),
    }
}

#[allow(clippy::result_large_err)]
fn reading(web: &Web, headers: &HeaderMap) -> Result<(), Response> {
    session_of(web, headers)
        .map(|_| ())
        .ok_or_else(|| json_response(StatusCode::UNAUTHORIZED, json!({"error": "log in first"})))
}

pub async fn logout(State(web): State<Web>, headers: HeaderMap) -> Response {
    match changing(&web, &headers) {
        Ok(id) => {
            web.creds.end_session(&id);
            json_response(StatusCode::OK, json!({}))
        }
        Err(r) => r,
    }
}

pub async fn mesh(State(web): State<Web>, headers: HeaderMap) -> Response {
    if let Err(r) = reading(&web, &headers) {
        return r;
    }
    let st = web.node.status();
    json_response(
        StatusCode::OK,
        serde_json::to_value(&st).unwrap_or_else(|_| json!({})),
    )
}

pub async fn now(State(web): State<Web>, headers: HeaderMap) -> Response {
    if let Err(r) = reading(&web, &headers) {
        return r;
    }
    let q = web.node.queue();
    json_response(
        StatusCode::OK,
        json!({"playing": web.node.playing(), "queue": q}),
    )
}

/// Commands the player may run on this peer's own playback.
/// `stream` only to the speakers: `--output wav:PATH` from a browser (or from a track name
/// that looks like an option) would write a file wherever it says.
fn allowed(cmd: &PeerCmd) -> bool {
    if let PeerCmd::Stream { output, stats, .. } = cmd {
        return output == "device" && stats.is_none();
    }
    matches!(
        cmd,
        PeerCmd::Pause
            | PeerCmd::Resume
            | PeerCmd::Stop
            | PeerCmd::Next
            | PeerCmd::Prev
            | PeerCmd::Seek { .. }
            | PeerCmd::Volume { .. }
    )
}

/// Runs a playback command on this peer (its speakers): `{"command": "pause"}`.
pub async fn control(
    State(web): State<Web>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if let Err(r) = changing(&web, &headers) {
        return r;
    }
    let bad = |why: String| json_response(StatusCode::BAD_REQUEST, json!({"error": why}));
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(&body) else {
        return bad("the body is not JSON".into());
    };
    let Some(line) = v.get("command").and_then(|c| c.as_str()) else {
        return bad("give {\"command\": \"pause\"} or another playback command".into());
    };
    let Ok(words) = shell_words::split(line) else {
        return bad("unbalanced quotes".into());
    };
    let cmd = match ShellLine::try_parse_from(&words) {
        Ok(l) => l.cmd,
        Err(e) => return bad(e.to_string().lines().next().unwrap_or("").to_string()),
    };
    if !allowed(&cmd) {
        return bad(
            "only playback commands, to this peer's speakers, run from the web player".into(),
        );
    }
    let (out, mut rx) = Output::new();
    let node = web.node.clone();
    let background = matches!(cmd, PeerCmd::Stream { .. });
    let cwd = web.node.data_dir().to_path_buf();
    let task = tokio::spawn(async move { execute(&node, cmd, &cwd, &out).await });
    if background {
        // Playback goes on after the answer; its first lines (a failure to start) come back.
        let mut lines = Vec::new();
        let early = tokio::time::timeout(std::time::Duration::from_millis(400), async {
            while let Some(l) = rx.recv().await {
                if let Line::Err(s) = l {
                    lines.push(s);
                }
            }
        })
        .await;
        let failed = early.is_ok() && !lines.is_empty();
        let status = if failed {
            StatusCode::BAD_REQUEST
        } else {
            StatusCode::OK
        };
        return json_response(status, json!({"lines": lines, "playing": !failed}));
    }
    let mut lines = Vec::new();
    let mut failed = false;
    while let Some(l) = rx.recv().await {
        match l {
            Line::Out(s) => lines.push(s),
            Line::Err(s) => {
                failed |= s.starts_with("error:");
                lines.push(s);
            }
            _ => {}
        }
    }
    let _ = task.await;
    let status = if failed {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    json_response(status, json!({"lines": lines}))
}

/// Removes the upload's temporary file however the request ends.
struct Upload(std::path::PathBuf);

impl Drop for Upload {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A file dropped on the page: stored as a push of NAME (`?name=`, else the file's name
/// without its extension); an existing NAME is refused unless `?replace=1`.
pub async fn upload(
    State(web): State<Web>,
    Query(q): Query<HashMap<String, String>>,
    req: Request,
) -> Response {
    let headers = req.headers().clone();
    if let Err(r) = changing(&web, &headers) {
        return r;
    }
    let fail = |status: StatusCode, why: String| json_response(status, json!({"error": why}));
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_UPLOAD_BYTES) {
        return fail(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the file is larger than {} MiB", MAX_UPLOAD_BYTES >> 20),
        );
    }
    let name = q
        .get("name")
        .filter(|n| !n.trim().is_empty())
        .cloned()
        .or_else(|| {
            q.get("file").map(|f| {
                std::path::Path::new(f)
                    .file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_default()
            })
        })
        .unwrap_or_default();
    if let Err(e) = crate::store::track_name::validate_name(&name) {
        return fail(StatusCode::BAD_REQUEST, e);
    }
    let replace = q.get("replace").is_some_and(|v| v == "1" || v == "true");
    if !replace && let Err(e) = web.node.refuse_existing(&name) {
        return fail(StatusCode::CONFLICT, format!("{e:#}"));
    }
    let dir = web.node.data_dir().join("uploads");
    if let Err(e) = std::fs::create_dir_all(&dir) {
        return fail(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot store the upload: {e}"),
        );
    }
    let path = dir.join(format!("{}.part", super::credentials::random_hex(8)));
    let guard = Upload(path.clone());
    let file = match crate::store::fsutil::create_new_private(&path) {
        Ok(f) => tokio::fs::File::from_std(f),
        Err(e) => {
            return fail(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("cannot store the upload: {e:#}"),
            );
        }
    };
    let mut w = tokio::io::BufWriter::with_capacity(1 << 20, file);
    let mut stream = req.into_body().into_data_stream();
    let mut got: u64 = 0;
    while let Some(piece) = stream.next().await {
        let Ok(piece) = piece else {
            return fail(StatusCode::BAD_REQUEST, "the upload broke off".into());
        };
        got += piece.len() as u64;
        if got > MAX_UPLOAD_BYTES {
            return fail(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("the file is larger than {} MiB", MAX_UPLOAD_BYTES >> 20),
            );
        }
        if let Err(e) = w.write_all(&piece).await {
            return fail(
                StatusCode::INSUFFICIENT_STORAGE,
                format!("cannot store the upload: {e}"),
            );
        }
    }
    if let Err(e) = w.flush().await {
        return fail(
            StatusCode::INSUFFICIENT_STORAGE,
            format!("cannot store the upload: {e}"),
        );
    }
    drop(w);
    let pushed = web.node.push_with(&name, &path, replace, |_, _| {}).await;
    web.node.saved().await;
    drop(guard);
    match pushed {
        Ok(p) => json_response(
            StatusCode::OK,
            json!({"name": p.name, "copies": p.holders.len(), "already_there": p.already_there}),
        ),
        Err(e) => {
            let msg = format!("{e:#}");
            let status = if msg.contains("exists") {
                StatusCode::CONFLICT
            } else {
                StatusCode::UNPROCESSABLE_ENTITY
            };
            fail(status, msg)
        }
    }
}
