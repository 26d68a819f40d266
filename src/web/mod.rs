//! The peer's HTTP face: the web player (static files embedded in the binary), its small
//! JSON API, and the OpenSubsonic REST API under `/rest/`, so Subsonic apps play the
//! network's music from this peer. A thin async shell: the answers come from `subsonic`,
//! `media` and `model`, who may ask from `credentials`.

mod capped_listener;
pub mod credentials;
mod media;
pub mod model;
mod params;
mod player_api;
mod reply;
mod stars;
mod subsonic;

use crate::node::Node;
use anyhow::{Context, Result, bail};
use axum::Router;
use axum::extract::{ConnectInfo, Path as UrlPath, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use credentials::{Credentials, Offered, Refused};
use model::{Model, SongMeta};
use params::Params;
use reply::{ApiError, Format};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

/// Where a peer serves HTTP unless told otherwise (Subsonic servers' usual port).
pub const DEFAULT_PORT: u16 = 4533;
/// Ports tried after the default one when it is taken.
const PORTS_TRIED: u16 = 200;
const PORT_FILE: &str = "web-port";
/// A form body of a REST call: far more than any call needs.
const MAX_FORM_BYTES: usize = 1 << 20;
const SESSION_COOKIE: &str = "meff_session";
const CSRF_HEADER: &str = "x-csrf-token";

/// What `--http` asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpChoice {
    /// 127.0.0.1, on the remembered port, else 4533 or the next free one.
    Default,
    Off,
    At(SocketAddr),
}

impl std::str::FromStr for HttpChoice {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim() {
            "off" | "none" | "no" => Ok(HttpChoice::Off),
            "" | "default" => Ok(HttpChoice::Default),
            other => {
                if let Ok(a) = other.parse::<SocketAddr>() {
                    return Ok(HttpChoice::At(a));
                }
                if let Ok(port) = other.parse::<u16>() {
                    return Ok(HttpChoice::At(SocketAddr::from(([127, 0, 0, 1], port))));
                }
                Err(format!(
                    "'{other}' is not an address: give HOST:PORT (e.g. 127.0.0.1:4533), a port, or off"
                ))
            }
        }
    }
}

/// Everything a request handler reaches.
#[derive(Clone)]
pub struct Web {
    pub node: Node,
    pub creds: Arc<Credentials>,
    stars: Arc<stars::Stars>,
    model: Arc<Mutex<Arc<Model>>>,
    /// Covers being scaled at once: each decode may take 128 MiB.
    pub scaling: Arc<tokio::sync::Semaphore>,
}

impl Web {
    fn new(node: Node) -> Web {
        let dir = node.data_dir().to_path_buf();
        Web {
            creds: Arc::new(Credentials::new(&dir, node.name())),
            stars: Arc::new(stars::Stars::load(&dir)),
            model: Arc::new(Mutex::new(Arc::new(Model::default()))),
            scaling: Arc::new(tokio::sync::Semaphore::new(2)),
            node,
        }
    }

    /// The library model of the catalog as it is now (rebuilt when it changed).
    pub fn model(&self) -> Arc<Model> {
        let mut slot = self.model.lock().unwrap_or_else(|e| e.into_inner());
        let generation = self.node.catalog_generation();
        if slot.generation != generation || generation == 0 && slot.songs.is_empty() {
            let (generation, metas) = self.node.map_live(|e| SongMeta {
                name: e.name.clone(),
                hash: e.hash,
                size: e.size,
                duration_s: e.duration_s,
                codec: e.codec.clone(),
                sample_rate: e.sample_rate,
                channels: e.channels,
                tags: e.tags.clone(),
                cover: e.cover.map(|c| c.hash),
                created_ms: e.lineage.ts.ms(),
            });
            *slot = Arc::new(Model::build(generation, metas));
        }
        slot.clone()
    }
}

/// The running server: the address it got and what the `web:` line says.
pub struct WebServer {
    pub addr: SocketAddr,
    pub url: String,
}

fn bind_std(addr: SocketAddr) -> std::io::Result<std::net::TcpListener> {
    let l = std::net::TcpListener::bind(addr)?;
    l.set_nonblocking(true)?;
    Ok(l)
}

/// Binds what `choice` asks; the default remembers the port it got in the data dir.
fn bind(node: &Node, choice: &HttpChoice) -> Result<Option<std::net::TcpListener>> {
    let port_file = node.data_dir().join(PORT_FILE);
    match choice {
        HttpChoice::Off => Ok(None),
        HttpChoice::At(addr) => bind_std(*addr)
            .map(Some)
            .with_context(|| format!("cannot serve HTTP on {addr}")),
        HttpChoice::Default => {
            let remembered = std::fs::read_to_string(&port_file)
                .ok()
                .and_then(|s| s.trim().parse::<u16>().ok());
            let tries = remembered
                .into_iter()
                .chain((0..PORTS_TRIED).map(|i| DEFAULT_PORT + i));
            for port in tries {
                if let Ok(l) = bind_std(SocketAddr::from(([127, 0, 0, 1], port))) {
                    if remembered != Some(port) {
                        let _ = std::fs::write(&port_file, format!("{port}\n"));
                    }
                    return Ok(Some(l));
                }
            }
            bail!(
                "no free port for HTTP from {DEFAULT_PORT} to {}: give --http ADDR or --http off",
                DEFAULT_PORT + PORTS_TRIED - 1
            )
        }
    }
}

/// Starts serving as `choice` says; None when HTTP is off.
pub fn start(node: Node, choice: &HttpChoice) -> Result<Option<WebServer>> {
    let Some(std_listener) = bind(&node, choice)? else {
        return Ok(None);
    };
    let addr = std_listener.local_addr()?;
    let listener = capped_listener::CappedListener::new(
        tokio::net::TcpListener::from_std(std_listener)?,
        capped_listener::MAX_CONNECTIONS,
        capped_listener::IDLE,
    );
    if !addr.ip().is_loopback() {
        eprintln!(
            "warning: the web player and API on {addr} speak plain HTTP: passwords and music cross the network unencrypted (put a TLS proxy in front to reach it from elsewhere)"
        );
    }
    let web = Web::new(node.clone());
    let shown_host = if addr.ip().is_unspecified() {
        SocketAddr::new(std::net::Ipv4Addr::LOCALHOST.into(), addr.port())
    } else {
        addr
    };
    let url = if web.creds.has_password() {
        format!("http://{shown_host}/")
    } else {
        format!(
            "http://{shown_host}/?token={}",
            web.creds.issue_login_token()
        )
    };
    let app = router(web);
    node.spawn_task(async move {
        let served = axum::serve(
            listener,
            app.into_make_service_with_connect_info::<capped_listener::ClientAddr>(),
        )
        .await;
        if let Err(e) = served {
            tracing::warn!("the web server stopped: {e}");
        }
    });
    Ok(Some(WebServer { addr, url }))
}

fn router(web: Web) -> Router {
    Router::new()
        .route("/", get(player_api::index))
        .route("/app.js", get(player_api::script))
        .route("/style.css", get(player_api::style))
        .route("/favicon.ico", get(|| async { StatusCode::NO_CONTENT }))
        .route("/api/session", get(player_api::session))
        .route("/api/login", post(player_api::login))
        .route("/api/logout", post(player_api::logout))
        .route("/api/mesh", get(player_api::mesh))
        .route("/api/now", get(player_api::now))
        .route("/api/control", post(player_api::control))
        .route("/api/upload", post(player_api::upload))
        .route("/rest/{method}", any(rest))
        .fallback(|| async { (StatusCode::NOT_FOUND, "no such page") })
        .with_state(web)
}

/// The session cookie of a request, if it names a live session: (id, csrf token).
fn session_of(web: &Web, headers: &HeaderMap) -> Option<(String, String)> {
    let cookies = headers.get_all(header::COOKIE);
    for c in cookies.iter().filter_map(|v| v.to_str().ok()) {
        for part in c.split(';') {
            if let Some(id) = part.trim().strip_prefix(&format!("{SESSION_COOKIE}="))
                && let Some(csrf) = web.creds.session_csrf(id)
            {
                return Some((id.to_string(), csrf));
            }
        }
    }
    None
}

/// Whether a request carries the CSRF token of its session.
fn csrf_ok(headers: &HeaderMap, p: Option<&Params>, csrf: &str) -> bool {
    headers
        .get(CSRF_HEADER)
        .and_then(|v| v.to_str().ok())
        .or_else(|| p.and_then(|p| p.get("csrf")))
        .is_some_and(|t| t == csrf)
}

/// Calls that change what is stored: a browser session must prove it meant them.
const CHANGING_CALLS: [&str; 8] = [
    "star",
    "unstar",
    "createPlaylist",
    "updatePlaylist",
    "deletePlaylist",
    "scrobble",
    "setRating",
    "savePlayQueue",
];

fn offered(p: &Params) -> Result<Vec<Offered>, ApiError> {
    let mut out = Vec::new();
    if let Some(k) = p.get("apiKey") {
        if p.get("u").is_some() {
            return Err(ApiError::new(43, "give either apiKey or u, not both"));
        }
        out.push(Offered::ApiKey(k.to_string()));
    }
    let user = p.get("u");
    match (user, p.get("t"), p.get("s"), p.get("p")) {
        (Some(u), Some(t), Some(s), None) => out.push(Offered::Token {
            user: u.into(),
            token: t.into(),
            salt: s.into(),
        }),
        (Some(u), None, None, Some(pw)) => out.push(Offered::Password {
            user: u.into(),
            password: credentials::decode_password(pw)
                .ok_or_else(|| ApiError::bad("p", "is not valid enc: hex"))?,
        }),
        (Some(_), Some(_), _, Some(_)) => {
            return Err(ApiError::new(
                43,
                "give either a token and salt or a password",
            ));
        }
        (Some(_), _, _, _) => return Err(ApiError::missing("t and s, or p")),
        (None, ..) => {}
    }
    Ok(out)
}

async fn rest(
    State(web): State<Web>,
    ConnectInfo(capped_listener::ClientAddr(peer)): ConnectInfo<capped_listener::ClientAddr>,
    UrlPath(method): UrlPath<String>,
    req: Request,
) -> Response {
    let method = method.strip_suffix(".view").unwrap_or(&method).to_string();
    let (parts, body) = req.into_parts();
    let form = if parts.method == Method::POST {
        match axum::body::to_bytes(body, MAX_FORM_BYTES).await {
            Ok(b) => Some(b),
            Err(_) => {
                return reply::fail(
                    Format::Xml,
                    &ApiError::new(0, "the request body is larger than 1 MiB")
                        .with_status(StatusCode::PAYLOAD_TOO_LARGE),
                );
            }
        }
    } else {
        None
    };
    let p = Params::parse(parts.uri.query(), form.as_deref());
    let format = Format::from_param(p.get("f"));
    match rest_call(&web, peer, &method, &parts.headers, &p).await {
        Ok(r) => r,
        Err(e) => reply::fail(format, &e),
    }
}

async fn rest_call(
    web: &Web,
    peer: SocketAddr,
    method: &str,
    headers: &HeaderMap,
    p: &Params,
) -> Result<Response, ApiError> {
    let format = Format::from_param(p.get("f"));
    let offered = offered(p)?;
    if offered.is_empty() {
        let Some((_, csrf)) = session_of(web, headers) else {
            return Err(ApiError::new(
                10,
                "required parameter 'u' is missing (or apiKey)",
            ));
        };
        if CHANGING_CALLS.contains(&method) && !csrf_ok(headers, Some(p), &csrf) {
            return Err(
                ApiError::new(50, "the request lacks its session's CSRF token")
                    .with_status(StatusCode::FORBIDDEN),
            );
        }
    } else if web.creds.must_wait(peer.ip()) {
        return Err(ApiError::new(
            40,
            "wrong username or password (too many failed attempts from this address: wait a moment)",
        ));
    } else if let Err(why) = web.creds.check(&offered) {
        let wait = web.creds.failed(peer.ip());
        tokio::time::sleep(wait).await;
        return Err(match why {
            Refused::WrongCredentials => ApiError::new(40, "wrong username or password"),
            Refused::Conflicting => {
                ApiError::new(43, "more than one way to authenticate was given")
            }
            Refused::BadApiKey => ApiError::new(44, "invalid API key"),
        });
    } else {
        web.creds.succeeded(peer.ip());
    }
    match method {
        "stream" | "download" => {
            let id = p.require("id")?;
            let name = web
                .model()
                .song(id)
                .map(|s| s.meta.name.clone())
                .ok_or_else(|| ApiError::not_found("song"))?;
            media::track(web, &name, headers, method == "download").await
        }
        "getCoverArt" => {
            let id = p.require("id")?;
            let size = match p.get("size") {
                None | Some("") => None,
                Some(s) => Some(
                    s.trim()
                        .parse::<u32>()
                        .map_err(|_| ApiError::bad("size", "must be a whole number"))?,
                ),
            };
            media::cover(web, id, size).await
        }
        _ => match subsonic::answer(web, method, p).await {
            Some(Ok(body)) => Ok(reply::ok(format, body)),
            Some(Err(e)) => Err(e),
            None => Err(
                ApiError::new(0, format!("'{method}' is not a call this server knows"))
                    .with_status(StatusCode::NOT_FOUND),
            ),
        },
    }
}

/// A `Set-Cookie` for a new session.
fn session_cookie(id: &str) -> HeaderValue {
    HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}={id}; HttpOnly; SameSite=Strict; Path=/; Max-Age=2592000"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static(""))
}

fn json_response(status: StatusCode, v: serde_json::Value) -> Response {
    let mut r = (status, v.to_string()).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}
