//! A deliberately plain HTTP/1.1 client over a TCP socket, so tests can send what no good
//! client would (raw paths, bogus ranges, lying lengths) and see exactly what comes back.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
}

/// Sends `head` (request line and headers, without the blank line) and `body`.
pub fn send(addr: SocketAddr, head: &str, body: &[u8]) -> Reply {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let req = format!("{head}\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    parse(&raw)
}

pub fn get(addr: SocketAddr, path: &str, extra: &[&str]) -> Reply {
    let mut head = format!("GET {path} HTTP/1.1");
    for h in extra {
        head.push_str("\r\n");
        head.push_str(h);
    }
    send(addr, &head, b"")
}

pub fn post(addr: SocketAddr, path: &str, extra: &[&str], body: &[u8]) -> Reply {
    let mut head = format!("POST {path} HTTP/1.1\r\nContent-Length: {}", body.len());
    for h in extra {
        head.push_str("\r\n");
        head.push_str(h);
    }
    send(addr, &head, body)
}

fn parse(raw: &[u8]) -> Reply {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no HTTP head in {:?}", String::from_utf8_lossy(raw)));
    let head = String::from_utf8_lossy(&raw[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let mut body = raw[end + 4..].to_vec();
    let chunked = headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    if chunked {
        body = dechunk(&body);
    }
    Reply {
        status,
        headers,
        body,
    }
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(nl) = b.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let size = usize::from_str_radix(String::from_utf8_lossy(&b[..nl]).trim(), 16).unwrap_or(0);
        if size == 0 || b.len() < nl + 2 + size {
            return out;
        }
        out.extend_from_slice(&b[nl + 2..nl + 2 + size]);
        b = &b[(nl + 2 + size + 2).min(b.len())..];
    }
}

/// The address in a peer's `web: http://HOST:PORT/...` line.
pub fn web_addr(line: &str) -> SocketAddr {
    let rest = line
        .trim()
        .strip_prefix("web: http://")
        .unwrap_or_else(|| panic!("not a web line: {line}"));
    rest.split('/').next().unwrap().parse().unwrap()
}

/// The Python of the test environment `scripts/deps.sh` makes (py-sonic, selenium).
pub fn python() -> std::path::PathBuf {
    let p =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/web-test-venv/bin/python");
    assert!(
        p.exists(),
        "{} is missing: run `bash scripts/deps.sh` (it installs chromium, chromedriver and the Python test clients)",
        p.display()
    );
    p
}
