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

impl Ticket {
    pub fn encode(&self) -> String {
        // postcard of this struct cannot fail: no maps, no unsupported types.
        let bytes = postcard::to_allocvec(self).unwrap_or_default();
        format!(
            "{PREFIX}{}",
            data_encoding::BASE32_NOPAD
                .encode(&bytes)
                .to_ascii_lowercase()
        )
    }

    pub fn decode(s: &str) -> Result<Ticket, String> {
        let body = s
            .trim()
            .strip_prefix(PREFIX)
            .ok_or_else(|| format!("malformed ticket: does not start with '{PREFIX}'"))?;
        let bytes = data_encoding::BASE32_NOPAD
            .decode(body.to_ascii_uppercase().as_bytes())
            .map_err(|_| "malformed ticket: not valid base32 (was it cut short?)".to_string())?;
        let t: Ticket = postcard::from_bytes(&bytes)
            .map_err(|_| "malformed ticket: contents unreadable (was it cut short?)".to_string())?;
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
        assert_eq!(Ticket::decode(&s), Ok(t));
        assert!(Ticket::decode("meff1").is_err());
        assert!(Ticket::decode("hello").is_err());
        assert!(Ticket::decode(&s[..s.len() / 2]).is_err());
        assert!(Ticket::decode("meff1!!!!").is_err());
    }
}
