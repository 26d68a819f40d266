//! The web face of a peer through real processes: the OpenSubsonic API used by a client
//! someone else wrote (py-sonic), the bad input the API must survive, and the web player in
//! a real headless Chromium. `scripts/deps.sh` installs chromium, chromedriver and the
//! Python clients (into target/web-test-venv).

mod common;

use common::http::{self, Reply, python, web_addr};
use common::process::*;
use serde_json::Value;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn web_of(p: &Peer) -> SocketAddr {
    let line = p
        .wait_line("web: ", Duration::from_secs(10))
        .expect("the peer prints its web: line");
    web_addr(&line)
}

fn set_password(dir: &Path, pw: &str) {
    use std::io::Write;
    let mut c = Command::new(BIN)
        .arg("--data-dir")
        .arg(dir)
        .arg("password")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(c.stdin.take().unwrap(), "{pw}").unwrap();
    let out = c.wait_with_output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("password set"));
}

fn push(dir: &Path, name: &str, file: &Path) {
    let (code, _, err) = meff(dir, &["push", name, file.to_str().unwrap()]);
    assert_eq!(code, 0, "push {name}: {err}");
}

fn names(dir: &Path) -> Vec<String> {
    let (code, out, err) = meff(dir, &["ls", "--json"]);
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_string())
        .collect()
}

fn listing(dir: &Path, name: &str) -> Value {
    let (_, out, _) = meff(dir, &["ls", "--json"]);
    let v: Value = serde_json::from_str(&out).unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == name)
        .cloned()
        .unwrap_or(Value::Null)
}

fn rest(addr: SocketAddr, call: &str, query: &str) -> Reply {
    http::get(
        addr,
        &format!("/rest/{call}?u=b&p=sesame&f=json&{query}"),
        &[],
    )
}

fn error_code(r: &Reply) -> Option<u64> {
    let v = r.json();
    v["subsonic-response"]["error"]["code"].as_u64()
}

fn rss_kib(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    s.lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap()
}

/// A WAV of `seconds` of a tone, big enough to outgrow any buffer.
fn big_wav(path: &Path, seconds: u32) {
    tone_wav(path, seconds, 440.0)
}

fn tone_wav(path: &Path, seconds: u32, freq: f32) {
    let spec = hound::WavSpec {
        channels: 2,
        sample_rate: 44100,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).unwrap();
    for i in 0..44100 * seconds {
        let v = ((i as f32 * freq * std::f32::consts::TAU / 44100.0).sin() * 8000.0) as i16;
        w.write_sample(v).unwrap();
        w.write_sample(v / 2).unwrap();
    }
    w.finalize().unwrap();
}

#[test]
fn subsonic_api_serves_a_real_client_and_survives_bad_input() {
    let base = tempfile::tempdir().unwrap();
    let a = up("a", &base.path().join("a"), None);
    // b remembers a port outside the range other tests' peers scan from 4533, so its restart
    // below finds it free.
    let remembered = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(base.path().join("b"))
            .unwrap();
        std::fs::write(base.path().join("b/web-port"), format!("{remembered}\n")).unwrap();
    }
    let mut b = up("b", &base.path().join("b"), a.invite.as_deref());
    let c = up("c", &base.path().join("c"), a.invite.as_deref());
    let web = web_of(&b);
    assert_eq!(web.port(), remembered, "the remembered port is used");
    let cafe = fixture("tagged.mp3");
    push(&a.dir, "cafe", &cafe);
    push(&a.dir, "first-light", &fixture("web/first-light.mp3"));
    push(&a.dir, "second-wind", &fixture("web/second-wind.mp3"));
    let big = base.path().join("big.wav");
    big_wav(&big, 200);
    push(&a.dir, "big", &big);
    assert!(
        wait_for(Duration::from_secs(20), || names(&b.dir).len() == 4).is_some(),
        "b sees the pushed tracks"
    );

    // Before a password is set nothing gets in, and the failure is the API's code 40.
    let r = rest(web, "ping", "");
    assert_eq!((r.status, error_code(&r)), (200, Some(40)), "{}", r.text());
    set_password(&b.dir, "sesame");
    let (code, key, _) = meff(&b.dir, &["apikey"]);
    assert_eq!(code, 0);
    let key = key.trim().to_string();
    assert!(key.len() >= 32, "{key}");

    // py-sonic: token auth (md5 of password + salt), POST forms, then GET, then an API key.
    let out = Command::new(python())
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/web/subsonic_client.py"))
        .args([&web.port().to_string(), "b", "sesame", &key])
        .arg(&cafe)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "py-sonic failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let seen: Value = serde_json::from_slice(&out.stdout).unwrap();
    eprintln!("py-sonic saw {seen}");
    assert_eq!(
        seen["extensions"],
        serde_json::json!(["apiKeyAuthentication", "formPost"])
    );
    let artists: Vec<&str> = seen["artists"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        artists.contains(&"José Padilla") && artists.contains(&"Web Artist"),
        "{artists:?}"
    );
    assert_eq!(seen["album"], "Café del Mar Vol. 1");
    assert_eq!(seen["search_songs"], serde_json::json!(["Café del Mar"]));
    assert_eq!(seen["stream_identical"], true);
    assert_eq!(seen["download_identical"], true);
    assert_eq!(
        seen["stream_bytes"],
        std::fs::metadata(&cafe).unwrap().len()
    );
    assert!(seen["cover_bytes"].as_u64().unwrap() > 0);
    assert_eq!(seen["playlist_entries"], 1);
    assert_eq!(seen["starred"], serde_json::json!(["Café del Mar"]));
    assert_eq!(seen["get_search"], serde_json::json!(["Café del Mar"]));
    assert_eq!(seen["api_key_ping"], "ok");
    assert_eq!(seen["random_count"], 3);
    // The playlist py-sonic made is the CLI's too.
    let (code, out, _) = meff(&a.dir, &["playlist", "ls", "from py-sonic", "--json"]);
    assert_eq!(code, 0);
    assert!(out.contains("cafe"), "{out}");

    // Ids are the same on every peer: a's API (with its own API key) names songs as b's does.
    let (_, key_a, _) = meff(&a.dir, &["apikey"]);
    let ids = |addr: SocketAddr, auth: &str| -> Vec<(String, String)> {
        let r = http::get(
            addr,
            &format!("/rest/search3?{auth}&f=json&query=&songCount=500"),
            &[],
        );
        let mut v: Vec<(String, String)> = r.json()["subsonic-response"]["searchResult3"]["song"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                (
                    s["meffName"].as_str().unwrap().into(),
                    s["id"].as_str().unwrap().into(),
                )
            })
            .collect();
        v.sort();
        v
    };
    let on_b = ids(web, "u=b&p=sesame");
    assert_eq!(on_b.len(), 4);
    assert_eq!(ids(web_of(&a), &format!("apiKey={}", key_a.trim())), on_b);

    // XML is the default format.
    let r = http::get(web, "/rest/ping.view?u=b&p=sesame", &[]);
    assert!(r.text().contains("<subsonic-response") && r.text().contains("status=\"ok\""));

    // Wrong credentials: code 40, and each further failure waits longer.
    let t0 = Instant::now();
    let r = http::get(web, "/rest/ping?u=b&p=wrong&f=json", &[]);
    assert_eq!(error_code(&r), Some(40));
    let r = http::get(web, "/rest/ping?u=b&t=00&s=x&f=json", &[]);
    assert_eq!(error_code(&r), Some(40));
    assert!(
        t0.elapsed() >= Duration::from_millis(500),
        "failures are slowed down"
    );
    let r = http::get(web, "/rest/ping?apiKey=nope&f=json", &[]);
    assert_eq!(error_code(&r), Some(44));
    let r = http::get(web, &format!("/rest/ping?apiKey={key}&u=b&f=json"), &[]);
    assert_eq!(error_code(&r), Some(43));
    let r = http::get(web, "/rest/ping?u=b&p=enc:zz&f=json", &[]);
    assert_eq!(error_code(&r), Some(10));

    // Missing and malformed parameters: the API's codes, never a 500.
    for (call, q, want) in [
        ("getAlbum", "", 10),
        ("getAlbum", "id=al-nothing", 70),
        ("getSong", "id=../../etc/passwd", 70),
        ("getAlbumList2", "type=nonsense", 10),
        ("getAlbumList2", "type=newest&size=many", 10),
        ("getAlbumList2", "type=byYear&fromYear=x&toYear=2000", 10),
        ("stream", "", 10),
        ("stream", "id=tr-0000", 70),
        ("getCoverArt", "id=../../../etc/passwd", 70),
        ("getCoverArt", "id=co-zz&size=-1", 10),
        ("getPlaylist", "id=pl-zz", 70),
        ("updatePlaylist", "playlistId=pl-00&songIndexToRemove=9", 70),
    ] {
        let r = rest(web, call, q);
        assert_eq!(r.status, 200, "{call}?{q}: {}", r.text());
        assert_eq!(error_code(&r), Some(want), "{call}?{q}: {}", r.text());
    }
    let r = rest(web, "noSuchCall", "");
    assert_eq!((r.status, error_code(&r)), (404, Some(0)));

    // Ranges: one served from its first byte, a past-the-end one and a multi-range refused.
    let id = listing_id(web, "cafe");
    let bytes = std::fs::read(&cafe).unwrap();
    let r = http::get(
        web,
        &format!("/rest/stream?u=b&p=sesame&id={id}"),
        &["Range: bytes=1000-1999"],
    );
    assert_eq!(r.status, 206);
    assert_eq!(r.body, &bytes[1000..2000]);
    assert_eq!(
        r.header("content-range"),
        Some(format!("bytes 1000-1999/{}", bytes.len()).as_str())
    );
    let r = http::get(
        web,
        &format!("/rest/stream?u=b&p=sesame&id={id}"),
        &["Range: bytes=-100"],
    );
    assert_eq!(r.body, &bytes[bytes.len() - 100..]);
    for bad in ["bytes=99999999-", "bytes=0-1,5-9"] {
        let r = http::get(
            web,
            &format!("/rest/stream?u=b&p=sesame&id={id}"),
            &[&format!("Range: {bad}")],
        );
        assert_eq!(r.status, 416, "{bad}");
        assert_eq!(
            r.header("content-range"),
            Some(format!("bytes */{}", bytes.len()).as_str())
        );
    }

    // Path traversal in static paths: no file outside the embedded ones is ever served.
    for path in [
        "/../../etc/passwd",
        "/app.js/../../../etc/passwd",
        "/%2e%2e/%2e%2e/etc/passwd",
        "/static/../Cargo.toml",
    ] {
        let r = http::get(web, path, &[]);
        assert!(!r.text().contains("root:"), "{path}");
        assert_eq!(r.status, 404, "{path}");
    }

    // The web player's own API: a session, CSRF, uploads.
    let r = http::post(
        web,
        "/api/login",
        &["Content-Type: application/x-www-form-urlencoded"],
        b"password=nope",
    );
    assert_eq!(r.status, 401);
    let r = http::post(
        web,
        "/api/login",
        &["Content-Type: application/x-www-form-urlencoded"],
        b"password=sesame",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let cookie = r
        .header("set-cookie")
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    assert!(r.header("set-cookie").unwrap().contains("HttpOnly"));
    assert!(r.header("set-cookie").unwrap().contains("SameSite=Strict"));
    let csrf = r.json()["csrf"].as_str().unwrap().to_string();
    let cookie_h = format!("Cookie: {cookie}");
    let csrf_h = format!("X-CSRF-Token: {csrf}");
    let upload = std::fs::read(fixture("web/dropped-in.mp3")).unwrap();
    let r = http::post(
        web,
        "/api/upload?file=dropped-in.mp3",
        &[&cookie_h],
        &upload,
    );
    assert_eq!(r.status, 403, "no CSRF token, no upload");
    let r = http::post(web, "/api/upload?file=dropped-in.mp3", &[], &upload);
    assert_eq!(r.status, 401, "no session, no upload");
    let r = http::send(
        web,
        &format!(
            "POST /api/upload?file=huge.mp3 HTTP/1.1\r\nContent-Length: 2147483648\r\n{cookie_h}\r\n{csrf_h}"
        ),
        b"",
    );
    assert_eq!(r.status, 413, "{}", r.text());
    let text = std::fs::read(fixture("not-audio.txt")).unwrap();
    let r = http::post(
        web,
        "/api/upload?file=notes.txt",
        &[&cookie_h, &csrf_h],
        &text,
    );
    assert_eq!(r.status, 422, "{}", r.text());
    assert!(r.json()["error"].as_str().unwrap().len() > 5);
    let r = http::post(
        web,
        "/api/upload?file=dropped-in.mp3",
        &[&cookie_h, &csrf_h],
        &upload,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let r = http::post(
        web,
        "/api/upload?file=dropped-in.mp3",
        &[&cookie_h, &csrf_h],
        &upload,
    );
    assert_eq!(
        r.status,
        409,
        "an existing name is kept unless replace: {}",
        r.text()
    );
    assert!(
        wait_for(Duration::from_secs(10), || names(&a.dir)
            .contains(&"dropped-in".to_string()))
        .is_some(),
        "the upload is a push: peer a lists it"
    );
    assert!(!names(&a.dir).iter().any(|n| n.contains("notes")));
    assert_eq!(
        std::fs::read_dir(b.dir.join("uploads")).unwrap().count(),
        0,
        "no upload leaves a file behind"
    );
    // A cookie-authed state change needs the CSRF token too.
    let r = http::get(web, &format!("/rest/star?f=json&id={id}"), &[&cookie_h]);
    assert_eq!(r.status, 403);
    let r = http::get(
        web,
        &format!("/rest/star?f=json&id={id}"),
        &[&cookie_h, &csrf_h],
    );
    assert_eq!(r.json()["subsonic-response"]["status"], "ok");

    // Playback control from the browser reaches the speakers only: no `--output wav:PATH`.
    let victim = base.path().join("victim.wav");
    for cmd in [
        format!("stream cafe --output wav:{}", victim.display()),
        "stream cafe --stats json".to_string(),
        "remove cafe".to_string(),
    ] {
        let body = serde_json::json!({ "command": cmd }).to_string();
        let r = http::post(
            web,
            "/api/control",
            &[&cookie_h, &csrf_h, "Content-Type: application/json"],
            body.as_bytes(),
        );
        assert_eq!(r.status, 400, "{cmd}: {}", r.text());
        let why = r.json()["error"].as_str().unwrap_or("").to_string();
        assert!(
            why.contains("only"),
            "{cmd} is refused, not tried: {}",
            r.text()
        );
    }
    assert!(!victim.exists());
    assert!(names(&a.dir).contains(&"cafe".to_string()));
    // A playback command does run: the volume of this peer's player.
    let body = serde_json::json!({ "command": "volume 40" }).to_string();
    let r = http::post(
        web,
        "/api/control",
        &[&cookie_h, &csrf_h, "Content-Type: application/json"],
        body.as_bytes(),
    );
    eprintln!("volume 40 -> {} {}", r.status, r.text());
    assert_eq!(r.status, 200, "{}", r.text());
    // Stars only for what the library holds.
    let r = http::get(web, "/rest/star?u=b&p=sesame&f=json&id=not-a-song", &[]);
    assert_eq!(error_code(&r), Some(70));

    // Guesses sent in parallel while an address must wait are refused without a check.
    let guesses: Vec<_> = (0..8)
        .map(|i| {
            std::thread::spawn(move || {
                http::get(web, &format!("/rest/ping?u=b&p=guess{i}&f=json"), &[]).text()
            })
        })
        .collect();
    let answers: Vec<String> = guesses.into_iter().map(|t| t.join().unwrap()).collect();
    assert!(
        answers.iter().all(|a| a.contains("\"code\":40")),
        "{answers:?}"
    );
    assert!(
        answers.iter().any(|a| a.contains("wait a moment")),
        "{answers:?}"
    );
    std::thread::sleep(Duration::from_millis(3200));

    // 500 requests at once are all answered.
    let threads: Vec<_> = (0..500)
        .map(|_| {
            std::thread::spawn(move || http::get(web, "/rest/ping?u=b&p=sesame&f=json", &[]).status)
        })
        .collect();
    let statuses: Vec<u16> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");

    // Slow clients that read nothing hold a bounded amount of memory.
    let big_id = listing_id(web, "big");
    let before = rss_kib(b.child.id());
    let mut idle = Vec::new();
    for _ in 0..16 {
        use std::io::Write;
        let mut s = std::net::TcpStream::connect(web).unwrap();
        write!(
            s,
            "GET /rest/stream?u=b&p=sesame&id={big_id} HTTP/1.1\r\nHost: x\r\n\r\n"
        )
        .unwrap();
        idle.push(s);
    }
    std::thread::sleep(Duration::from_secs(3));
    let after = rss_kib(b.child.id());
    let size_kib = std::fs::metadata(&big).unwrap().len() / 1024;
    eprintln!("16 idle clients of a {size_kib} KiB track: RSS {before} -> {after} KiB");
    assert!(
        after < before + 64 * 1024,
        "RSS grew from {before} to {after} KiB"
    );
    drop(idle);
    let r = rest(web, "ping", "");
    assert_eq!(r.json()["subsonic-response"]["status"], "ok");

    // The port is remembered: after a restart the same address serves. b comes back keeping
    // one copy per track, so its repair pulls in only a track that ranks b first: the track
    // picked below, which d placed elsewhere, never reaches b however long repair runs.
    let (code, _, _) = meff(&b.dir, &["down"]);
    assert_eq!(code, 0);
    let _ = b.child.wait();
    let b = up_full(
        "b",
        &base.path().join("b"),
        None,
        false,
        &[],
        &["--replicas", "1"],
    );
    assert_eq!(web_of(&b), web, "the same port after a restart");
    assert_eq!(listing_id(web, "cafe"), id, "ids stay after a restart");

    // A track whose every holder is down gets a clear answer, and the peer keeps serving.
    let d = up_full(
        "d",
        &base.path().join("d"),
        a.invite.as_deref(),
        false,
        &[],
        &["--replicas", "1"],
    );
    let b_id = status(&b.dir)["id"].as_str().unwrap().to_string();
    // d and b see each other alive, so both rank the same peers: a track d places elsewhere
    // is one b does not rank first.
    let sees_alive = |dir: &Path, name: &str| {
        status(dir)["peers"].as_array().is_some_and(|ps| {
            ps.iter()
                .any(|p| p["name"] == name && p["state"] == "alive")
        })
    };
    assert!(
        wait_for(Duration::from_secs(10), || sees_alive(&d.dir, "b")
            && sees_alive(&b.dir, "d"))
        .is_some(),
        "d and b linked"
    );
    let mut lonely = None;
    for i in 0..6 {
        let name = format!("lonely{i}");
        let file = base.path().join(format!("{name}.wav"));
        tone_wav(&file, 1, 300.0 + 50.0 * i as f32);
        push(&d.dir, &name, &file);
        assert!(
            wait_for(Duration::from_secs(10), || listing(&b.dir, &name)
                != Value::Null)
            .is_some()
        );
        let holders = listing(&d.dir, &name)["holders"].clone();
        if !holders
            .as_array()
            .unwrap()
            .iter()
            .any(|h| h == &Value::from(b_id.clone()))
        {
            lonely = Some((name, holders));
            break;
        }
    }
    let (lonely, holders) = lonely.expect("a track held by another peer than b");
    let lonely_id = listing_id(web, &lonely);
    drop(a);
    drop(c);
    drop(d);
    eprintln!("{lonely} is held by {holders}; its holders are down");
    let r = http::get(
        web,
        &format!("/rest/stream?u=b&p=sesame&f=json&id={lonely_id}"),
        &[],
    );
    assert_eq!(r.status, 503, "{}", r.text());
    assert!(r.text().contains("cannot fetch"), "{}", r.text());
    let r = rest(web, "ping", "");
    assert_eq!(r.json()["subsonic-response"]["status"], "ok");
}

/// The Subsonic id of the track shown under `name`.
fn listing_id(web: SocketAddr, name: &str) -> String {
    let r = http::get(
        web,
        "/rest/search3?u=b&p=sesame&f=json&query=&songCount=500",
        &[],
    );
    let v = r.json();
    v["subsonic-response"]["searchResult3"]["song"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["meffName"] == name)
        .unwrap_or_else(|| panic!("no song {name} in {v}"))["id"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn web_player_plays_seeks_queues_uploads_and_shows_the_mesh_in_a_real_browser() {
    let base = tempfile::tempdir().unwrap();
    let a = up("a", &base.path().join("a"), None);
    let b = up("b", &base.path().join("b"), a.invite.as_deref());
    push(&a.dir, "first-light", &fixture("web/first-light.mp3"));
    push(&a.dir, "second-wind", &fixture("web/second-wind.mp3"));
    assert!(wait_for(Duration::from_secs(20), || names(&b.dir).len() == 2).is_some());
    let line = b.wait_line("web: ", Duration::from_secs(10)).unwrap();
    let url = line.trim().strip_prefix("web: ").unwrap().to_string();
    assert!(
        url.contains("?token="),
        "no password yet: a one-time login link ({url})"
    );
    let shots = std::env::var("MEFF_SCREENSHOTS").ok();
    let mut cmd = Command::new(python());
    cmd.arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/web/browser.py"))
        .arg(&url)
        .arg(fixture("web/dropped-in.mp3"));
    if let Some(dir) = &shots {
        cmd.arg(dir);
    }
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the browser run failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seen: Value = serde_json::from_str(stdout.trim()).unwrap();
    eprintln!("the browser saw {seen}");
    assert_eq!(seen["albums"], serde_json::json!(["Browser Album"]));
    assert_eq!(seen["played_past_2s"], true);
    assert!(seen["seeked_to"].as_f64().unwrap() >= 4.4);
    assert_eq!(seen["second_played"], true);
    assert_eq!(
        seen["queue"],
        serde_json::json!(["First Light", "Second Wind"])
    );
    assert!(
        seen["upload"]
            .as_str()
            .unwrap()
            .contains("pushed 'dropped-in'")
    );
    // The mesh view shows a as `peers` does (direct on loopback).
    let peers = status(&b.dir)["peers"].clone();
    let path_a = peers
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "a")
        .unwrap()["path"]
        .clone();
    assert_eq!(seen["mesh"]["a"], path_a);
    assert_eq!(seen["mesh"]["a"], "direct");
    assert_eq!(seen["phone_ok"], true);
    let dropped = seen["drop_upload"].as_str().unwrap();
    assert!(
        dropped.contains("pushed 'dropped-copy'") || dropped.contains("already in the network"),
        "{dropped}"
    );
    assert_eq!(seen["overlay_hidden"], true);
    // The one-time link is used up.
    let r = http::get(
        web_addr(&line),
        &format!("/{}", url.rsplit('/').next().unwrap()),
        &[],
    );
    assert_eq!(r.status, 401);
    // The upload is in the network: peer a lists it.
    assert!(
        wait_for(Duration::from_secs(10), || names(&a.dir)
            .contains(&"dropped-in".to_string()))
        .is_some()
    );
}

#[test]
fn http_stream_fails_over_when_its_holder_dies_mid_response() {
    use std::io::{Read, Write};
    let base = tempfile::tempdir().unwrap();
    let r2 = ["--replicas", "2"];
    let mut a = up_full("a", &base.path().join("a"), None, true, &[], &r2);
    let mut c = up_full(
        "c",
        &base.path().join("c"),
        a.invite.as_deref(),
        false,
        &[],
        &r2,
    );
    let b = up_full(
        "b",
        &base.path().join("b"),
        a.invite.as_deref(),
        false,
        &[],
        &["--replicas", "2", "--capacity", "1K"],
    );
    let web = web_of(&b);
    set_password(&b.dir, "sesame");
    let big = base.path().join("big.wav");
    big_wav(&big, 200);
    let want = std::fs::read(&big).unwrap();
    push(&a.dir, "big", &big);
    assert!(
        wait_for(Duration::from_secs(20), || {
            listing(&b.dir, "big")["holders"]
                .as_array()
                .is_some_and(|h| h.len() == 2)
        })
        .is_some()
    );
    let id = listing_id(web, "big");
    let mut s = std::net::TcpStream::connect(web).unwrap();
    write!(
        s,
        "GET /rest/stream?u=b&p=sesame&id={id} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut got = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    // Read slowly: the response is still far from its end when the holder goes.
    while got.len() < 6 << 20 {
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0);
        got.extend_from_slice(&buf[..n]);
        std::thread::sleep(Duration::from_millis(5));
    }
    let log = b.dir.with_extension("log");
    let source = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .filter_map(|l| l.split("HTTP bytes of 'big' from ").nth(1))
        .next_back()
        .expect("b logs the peer its HTTP bytes come from")
        .trim()
        .to_string();
    let a_id = status(&a.dir)["id"].as_str().unwrap().to_string();
    let c_id = status(&c.dir)["id"].as_str().unwrap().to_string();
    let serving = if source == c_id { &mut c } else { &mut a };
    assert!(source == a_id || source == c_id, "{source}");
    serving.child.kill().unwrap();
    s.read_to_end(&mut got).unwrap();
    let end = got.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&got[..end]).to_string();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let body = &got[end + 4..];
    assert_eq!(
        body.len(),
        want.len(),
        "the whole track despite the holder's death"
    );
    assert!(body == want.as_slice(), "byte-identical after the failover");
    let sources: Vec<String> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .filter_map(|l| l.split("HTTP bytes of 'big' from ").nth(1))
        .map(|s| s.trim().to_string())
        .collect();
    assert!(sources.len() >= 2, "a second source took over: {sources:?}");
}
