//! Invite tickets: everything a friend needs to join, in one copyable string.

use super::auth::NetworkKey;
use crate::id::PeerId;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;

const PREFIX: &str = "meff1";

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Ticket {
    pub key: NetworkKey,
    pub id: PeerId,
    pub addrs: Vec<SocketAddr>,
}

/// Bytes of BLAKE3 over the contents that end a ticket: a typo is caught before any dial.
const CHECKSUM_LEN: usize = 4;

fn checksum(body: &[u8]) -> [u8; CHECKSUM_LEN] {
    let h = blake3::hash(body);
    let mut out = [0u8; CHECKSUM_LEN];
    out.copy_from_slice(&h.as_bytes()[..CHECKSUM_LEN]);
    out
}

impl Ticket {
    pub fn encode(&self) -> String {
        // postcard of this struct cannot fail: no maps, no unsupported types.
        let mut bytes = postcard::to_allocvec(self).unwrap_or_default();
        let sum = checksum(&bytes);
        bytes.extend_from_slice(&sum);
        format!(
            "{PREFIX}{}",
            data_encoding::BASE32_NOPAD
                .encode(&bytes)
                .to_ascii_lowercase()
        )
    }

    /// Whether `s` is meant as a ticket (any case), right or not.
    pub fn looks_like(s: &str) -> bool {
        s.trim()
            .get(..PREFIX.len())
            .is_some_and(|p| p.eq_ignore_ascii_case(PREFIX))
    }

    pub fn decode(s: &str) -> Result<Ticket, String> {
        let s = s.trim();
        if !Self::looks_like(s) {
            return Err(format!("malformed ticket: does not start with '{PREFIX}'"));
        }
        let corrupt = || "ticket is corrupt (mistyped?)".to_string();
        let bytes = data_encoding::BASE32_NOPAD
            .decode(s[PREFIX.len()..].to_ascii_uppercase().as_bytes())
            .map_err(|_| corrupt())?;
        if bytes.len() <= CHECKSUM_LEN {
            return Err(corrupt());
        }
        let (body, sum) = bytes.split_at(bytes.len() - CHECKSUM_LEN);
        if checksum(body) != sum {
            return Err(corrupt());
        }
        let t: Ticket = postcard::from_bytes(body).map_err(|_| corrupt())?;
        if t.addrs.is_empty() {
            return Err("malformed ticket: it carries no address".into());
        }
        Ok(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_and_garbage() {
        let t = Ticket {
            key: [3; 32],
            id: PeerId([9; 32]),
            addrs: vec!["127.0.0.1:4000".parse().unwrap()],
        };
        let s = t.encode();
        assert!(s.starts_with("meff1"));
        assert_eq!(Ticket::decode(&s), Ok(t.clone()));
        assert!(Ticket::decode("meff1").is_err());
        assert!(Ticket::decode("hello").is_err());
        assert!(Ticket::decode(&s[..s.len() / 2]).is_err());
        assert!(Ticket::decode("meff1!!!!").is_err());
        assert_eq!(Ticket::decode(&s.to_ascii_uppercase()), Ok(t.clone()));
    }

    #[test]
    fn every_one_character_typo_is_caught() {
        let t = Ticket {
            key: [7; 32],
            id: PeerId([1; 32]),
            addrs: vec!["192.0.2.1:4000".parse().unwrap()],
        };
        let s = t.encode();
        let alphabet = "abcdefghijklmnopqrstuvwxyz234567";
        for i in "meff1".len()..s.len() {
            for c in alphabet.chars() {
                if s[i..].starts_with(c) {
                    continue;
                }
                let typo = format!("{}{c}{}", &s[..i], &s[i + 1..]);
                let e = Ticket::decode(&typo).unwrap_err();
                assert_eq!(e, "ticket is corrupt (mistyped?)", "at {i}: {typo}");
            }
        }
    }
}
