//! Who may use a peer's web player and API: the peer's name with the password set by
//! `meff password`, API keys from `meff apikey`, a one-time login token while no password is
//! set, and browser sessions. Kept in the data dir, readable by its owner only.
//!
//! The password is stored as typed because Subsonic's token auth (`t = md5(password + s)`)
//! needs it on the server; the file is 0600 beside the peer's identity key, which guards more.

use anyhow::{Context, Result, bail};
use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

const PASSWORD_FILE: &str = "web-password";
const APIKEYS_FILE: &str = "web-apikeys";
const MAX_PASSWORD_BYTES: usize = 256;
/// Sessions a peer keeps at once; the oldest goes first.
const MAX_SESSIONS: usize = 256;
const SESSION_LIFETIME: Duration = Duration::from_secs(30 * 24 * 3600);
/// A failed attempt costs its sender this, doubled each time, up to [`MAX_PENALTY`].
const FIRST_PENALTY: Duration = Duration::from_millis(200);
const MAX_PENALTY: Duration = Duration::from_secs(3);
/// Addresses whose failures are remembered at once (a flood of spoofed sources stays bounded).
const MAX_TRACKED_SOURCES: usize = 4096;

pub fn password_path(dir: &Path) -> PathBuf {
    dir.join(PASSWORD_FILE)
}

/// Sets the web and API password of the peer whose data dir is `dir`.
pub fn set_password(dir: &Path, password: &str) -> Result<()> {
    let password = password.trim_end_matches(['\r', '\n']);
    if password.is_empty() {
        bail!("the password is empty");
    }
    if password.len() > MAX_PASSWORD_BYTES {
        bail!("the password is longer than {MAX_PASSWORD_BYTES} bytes");
    }
    if password.chars().any(char::is_control) {
        bail!("the password holds control characters");
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    write_private(&password_path(dir), password.as_bytes())
}

/// Makes a new API key, remembers its hash, and returns the key (shown once).
pub fn new_api_key(dir: &Path) -> Result<String> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let key = random_hex(24);
    let path = dir.join(APIKEYS_FILE);
    let mut known = std::fs::read_to_string(&path).unwrap_or_default();
    known.push_str(&key_hash(&key));
    known.push('\n');
    write_private(&path, known.as_bytes())?;
    Ok(key)
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let tmp = crate::store::fsutil::temp_beside(path);
    let mut f = crate::store::fsutil::create_new_private(&tmp)?;
    let written = f.write_all(bytes).and_then(|_| f.sync_all());
    if let Err(e) = written.and_then(|_| std::fs::rename(&tmp, path)) {
        let _ = std::fs::remove_file(&tmp);
        return Err(e).with_context(|| format!("cannot write {}", path.display()));
    }
    Ok(())
}

fn key_hash(key: &str) -> String {
    blake3::hash(key.as_bytes()).to_hex().to_string()
}

pub fn random_hex(bytes: usize) -> String {
    let mut b = vec![0u8; bytes];
    rand::fill(&mut b[..]);
    data_encoding::HEXLOWER.encode(&b)
}

/// Equal without an early exit, so timing does not tell how much of a guess was right.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// What a request offered to prove who sent it (Subsonic's parameters).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Offered {
    Token {
        user: String,
        token: String,
        salt: String,
    },
    Password {
        user: String,
        password: String,
    },
    ApiKey(String),
}

/// Why credentials were refused, as Subsonic error codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// 40: wrong user name or password.
    WrongCredentials,
    /// 43: more than one way to authenticate in one request.
    Conflicting,
    /// 44: an API key nobody issued.
    BadApiKey,
}

/// Decodes Subsonic's `p` parameter: plain, or `enc:` and hex.
pub fn decode_password(p: &str) -> Option<String> {
    match p.strip_prefix("enc:") {
        Some(hex) => {
            let bytes = data_encoding::HEXLOWER_PERMISSIVE
                .decode(hex.as_bytes())
                .ok()?;
            String::from_utf8(bytes).ok()
        }
        None => Some(p.to_string()),
    }
}

struct Session {
    csrf: String,
    made: Instant,
}

pub struct Credentials {
    dir: PathBuf,
    user: String,
    login_token: Mutex<Option<String>>,
    sessions: Mutex<HashMap<String, Session>>,
    failures: Mutex<HashMap<IpAddr, (u32, Instant)>>,
}

impl Credentials {
    pub fn new(dir: &Path, user: &str) -> Self {
        Credentials {
            dir: dir.to_path_buf(),
            user: user.to_string(),
            login_token: Mutex::new(None),
            sessions: Mutex::new(HashMap::new()),
            failures: Mutex::new(HashMap::new()),
        }
    }

    pub fn user(&self) -> &str {
        &self.user
    }

    fn password(&self) -> Option<String> {
        let p = std::fs::read_to_string(password_path(&self.dir)).ok()?;
        let p = p.trim_end_matches(['\r', '\n']).to_string();
        (!p.is_empty()).then_some(p)
    }

    pub fn has_password(&self) -> bool {
        self.password().is_some()
    }

    /// A token that logs one browser in once, for the `web:` line while no password is set.
    pub fn issue_login_token(&self) -> String {
        let t = random_hex(16);
        *lock(&self.login_token) = Some(t.clone());
        t
    }

    /// Whether `token` is the one-time login token; it is used up either way it matches.
    pub fn take_login_token(&self, token: &str) -> bool {
        let mut slot = lock(&self.login_token);
        let ok = slot
            .as_deref()
            .is_some_and(|t| same(t.as_bytes(), token.as_bytes()));
        if ok {
            *slot = None;
        }
        ok
    }

    pub fn check_password(&self, password: &str) -> bool {
        self.password()
            .is_some_and(|p| same(p.as_bytes(), password.as_bytes()))
    }

    /// Checks Subsonic credentials.
    pub fn check(&self, offered: &[Offered]) -> Result<(), Refused> {
        let [one] = offered else {
            return Err(if offered.is_empty() {
                Refused::WrongCredentials
            } else {
                Refused::Conflicting
            });
        };
        match one {
            Offered::ApiKey(k) => {
                let known =
                    std::fs::read_to_string(self.dir.join(APIKEYS_FILE)).unwrap_or_default();
                let h = key_hash(k);
                if known
                    .lines()
                    .any(|l| same(l.trim().as_bytes(), h.as_bytes()))
                {
                    Ok(())
                } else {
                    Err(Refused::BadApiKey)
                }
            }
            Offered::Password { user, password } => {
                if user == &self.user && self.check_password(password) {
                    Ok(())
                } else {
                    Err(Refused::WrongCredentials)
                }
            }
            Offered::Token { user, token, salt } => {
                use md5::Digest;
                let Some(p) = self.password().filter(|_| user == &self.user) else {
                    return Err(Refused::WrongCredentials);
                };
                let want = data_encoding::HEXLOWER
                    .encode(&md5::Md5::digest(format!("{p}{salt}").as_bytes()));
                if same(want.as_bytes(), token.to_ascii_lowercase().as_bytes()) {
                    Ok(())
                } else {
                    Err(Refused::WrongCredentials)
                }
            }
        }
    }

    /// A new browser session: its id (the cookie) and its CSRF token.
    pub fn new_session(&self) -> (String, String) {
        let id = random_hex(24);
        let csrf = random_hex(16);
        let mut s = lock(&self.sessions);
        s.retain(|_, v| v.made.elapsed() < SESSION_LIFETIME);
        if s.len() >= MAX_SESSIONS
            && let Some(oldest) = s.iter().min_by_key(|(_, v)| v.made).map(|(k, _)| k.clone())
        {
            s.remove(&oldest);
        }
        s.insert(
            id.clone(),
            Session {
                csrf: csrf.clone(),
                made: Instant::now(),
            },
        );
        (id, csrf)
    }

    /// The CSRF token of a live session.
    pub fn session_csrf(&self, id: &str) -> Option<String> {
        let s = lock(&self.sessions);
        s.get(id)
            .filter(|v| v.made.elapsed() < SESSION_LIFETIME)
            .map(|v| v.csrf.clone())
    }

    pub fn end_session(&self, id: &str) {
        lock(&self.sessions).remove(id);
    }

    /// Records a failed attempt from `from` and returns how long to hold the answer back.
    pub fn failed(&self, from: IpAddr) -> Duration {
        let from = source_of(from);
        let mut f = lock(&self.failures);
        if f.len() >= MAX_TRACKED_SOURCES && !f.contains_key(&from) {
            f.retain(|_, (_, at)| at.elapsed() < Duration::from_secs(600));
            if f.len() >= MAX_TRACKED_SOURCES {
                return MAX_PENALTY;
            }
        }
        let slot = f.entry(from).or_insert((0, Instant::now()));
        if slot.1.elapsed() > Duration::from_secs(600) {
            slot.0 = 0;
        }
        slot.0 = slot.0.saturating_add(1);
        slot.1 = Instant::now();
        penalty(slot.0)
    }

    /// Whether `from` failed so recently that it must wait before it may try again: its
    /// answers are held back, and attempts it makes meanwhile in parallel are refused.
    /// A source the full table cannot follow waits too: new addresses are no way around it.
    pub fn must_wait(&self, from: IpAddr) -> bool {
        let from = source_of(from);
        let f = lock(&self.failures);
        match f.get(&from) {
            Some((n, at)) => at.elapsed() < penalty(*n),
            None => f.len() >= MAX_TRACKED_SOURCES,
        }
    }

    pub fn succeeded(&self, from: IpAddr) {
        lock(&self.failures).remove(&source_of(from));
    }
}

/// Who is counted for failed attempts: every loopback address is one machine (a local user
/// can send from any of 127.0.0.0/8), and an IPv6 host picks freely within its /64.
fn source_of(ip: IpAddr) -> IpAddr {
    let ip = ip.to_canonical();
    if ip.is_loopback() {
        return IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);
    }
    match ip {
        IpAddr::V6(v6) => {
            let s = v6.segments();
            IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
        }
        v4 => v4,
    }
}

/// The wait after the `n`th failure in a row.
fn penalty(n: u32) -> Duration {
    FIRST_PENALTY
        .saturating_mul(1u32 << n.saturating_sub(1).min(8))
        .min(MAX_PENALTY)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_password_and_api_key_auth() {
        let dir = tempfile::tempdir().unwrap();
        let c = Credentials::new(dir.path(), "alice");
        let tok = |pw: &str, salt: &str| {
            use md5::Digest;
            data_encoding::HEXLOWER.encode(&md5::Md5::digest(format!("{pw}{salt}").as_bytes()))
        };
        let t = |user: &str, token: String| Offered::Token {
            user: user.into(),
            token,
            salt: "c19b2d".into(),
        };
        // No password yet: nothing gets in.
        assert_eq!(
            c.check(&[t("alice", tok("", "c19b2d"))]),
            Err(Refused::WrongCredentials)
        );
        set_password(dir.path(), "sesame\n").unwrap();
        // The example of the Subsonic API documentation: sesame + c19b2d.
        assert_eq!(tok("sesame", "c19b2d"), "26719a1196d2a940705a59634eb18eab");
        assert_eq!(c.check(&[t("alice", tok("sesame", "c19b2d"))]), Ok(()));
        assert_eq!(
            c.check(&[t("alice", tok("sesame", "c19b2d").to_uppercase())]),
            Ok(())
        );
        assert!(c.check(&[t("bob", tok("sesame", "c19b2d"))]).is_err());
        assert!(c.check(&[t("alice", tok("wrong", "c19b2d"))]).is_err());
        let p = |pw: &str| Offered::Password {
            user: "alice".into(),
            password: decode_password(pw).unwrap(),
        };
        assert_eq!(c.check(&[p("sesame")]), Ok(()));
        assert_eq!(c.check(&[p("enc:736573616d65")]), Ok(()));
        assert_eq!(c.check(&[p("sesam")]), Err(Refused::WrongCredentials));
        assert_eq!(decode_password("enc:zz"), None);
        let key = new_api_key(dir.path()).unwrap();
        let key2 = new_api_key(dir.path()).unwrap();
        assert_ne!(key, key2);
        assert_eq!(c.check(&[Offered::ApiKey(key.clone())]), Ok(()));
        assert_eq!(c.check(&[Offered::ApiKey(key2)]), Ok(()));
        assert_eq!(
            c.check(&[Offered::ApiKey("nope".into())]),
            Err(Refused::BadApiKey)
        );
        assert_eq!(
            c.check(&[Offered::ApiKey(key), p("sesame")]),
            Err(Refused::Conflicting)
        );
        assert!(set_password(dir.path(), "").is_err());
        assert!(set_password(dir.path(), "a\u{7}b").is_err());
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(password_path(dir.path()))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(
            mode & 0o077,
            0,
            "password file readable by others: {mode:o}"
        );
    }

    #[test]
    fn login_token_works_once_and_sessions_carry_csrf() {
        let dir = tempfile::tempdir().unwrap();
        let c = Credentials::new(dir.path(), "alice");
        let t = c.issue_login_token();
        assert!(!c.take_login_token("wrong"));
        assert!(c.take_login_token(&t));
        assert!(!c.take_login_token(&t));
        let (id, csrf) = c.new_session();
        assert_eq!(c.session_csrf(&id), Some(csrf));
        assert_eq!(c.session_csrf("other"), None);
        c.end_session(&id);
        assert_eq!(c.session_csrf(&id), None);
    }

    #[test]
    fn failures_slow_down_and_reset() {
        let dir = tempfile::tempdir().unwrap();
        let c = Credentials::new(dir.path(), "alice");
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let waits: Vec<_> = (0..6).map(|_| c.failed(ip)).collect();
        assert!(waits.windows(2).all(|w| w[0] <= w[1]), "{waits:?}");
        assert_eq!(waits[0], FIRST_PENALTY);
        assert_eq!(*waits.last().unwrap(), MAX_PENALTY);
        assert!(c.must_wait(ip), "a guess right after a failure is refused");
        c.succeeded(ip);
        assert!(!c.must_wait(ip));
        assert_eq!(c.failed(ip), FIRST_PENALTY);
    }

    #[test]
    fn another_loopback_or_ipv6_address_is_the_same_guesser() {
        let dir = tempfile::tempdir().unwrap();
        let c = Credentials::new(dir.path(), "alice");
        c.failed("127.0.0.1".parse().unwrap());
        for other in ["127.8.9.10", "::1", "::ffff:127.0.0.2"] {
            assert!(c.must_wait(other.parse().unwrap()), "{other}");
        }
        c.failed("2001:db8:1:2::1".parse().unwrap());
        assert!(c.must_wait("2001:db8:1:2:ffff::9".parse().unwrap()));
        assert!(!c.must_wait("2001:db8:1:3::1".parse().unwrap()));
        assert!(!c.must_wait("10.0.0.2".parse().unwrap()));
    }
}
