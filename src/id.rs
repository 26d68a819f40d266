//! Peer identity as seen by everyone else: the BLAKE3 hash of a peer's public key.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A peer id: BLAKE3 of the peer's SubjectPublicKeyInfo (DER). Shown in base32 like Syncthing device ids.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PeerId(pub [u8; 32]);

impl PeerId {
    pub fn from_public_key_der(spki: &[u8]) -> Self {
        PeerId(*blake3::hash(spki).as_bytes())
    }

    /// Full textual form (52 base32 characters, no padding).
    pub fn to_base32(&self) -> String {
        data_encoding::BASE32_NOPAD.encode(&self.0)
    }

    pub fn parse(s: &str) -> Option<Self> {
        let bytes = data_encoding::BASE32_NOPAD
            .decode(s.trim().to_ascii_uppercase().as_bytes())
            .ok()?;
        Some(PeerId(bytes.try_into().ok()?))
    }

    /// Short form for logs and tables.
    pub fn short(&self) -> String {
        self.to_base32()[..8].to_string()
    }
}

impl fmt::Display for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_base32())
    }
}

impl fmt::Debug for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PeerId({})", self.short())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base32_roundtrip() {
        let id = PeerId::from_public_key_der(b"some key");
        assert_eq!(PeerId::parse(&id.to_base32()), Some(id));
        assert_eq!(PeerId::parse("not base32!"), None);
        assert_eq!(PeerId::parse("AAAA"), None);
    }
}
