//! Proof of the network key, bound to one TLS session: a keyed BLAKE3 MAC (a PRF-based MAC like
//! HMAC) over exporter keying material. The key never crosses the wire, and a proof taken from one
//! connection is worthless on any other, so a relay in the middle cannot replay it.

pub type NetworkKey = [u8; 32];
pub type Proof = [u8; 32];

const EXPORTER_LABEL: &[u8] = b"EXPORTER-meff-network-key-proof";

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Role {
    Dialer,
    Acceptor,
}

impl Role {
    fn tag(self) -> &'static [u8] {
        match self {
            Role::Dialer => b"dialer",
            Role::Acceptor => b"acceptor",
        }
    }
}

pub fn new_network_key() -> NetworkKey {
    rand::random()
}

/// The proof `role` must present on this connection.
pub fn proof(conn: &quinn::Connection, key: &NetworkKey, role: Role) -> Option<Proof> {
    let mut material = [0u8; 32];
    conn.export_keying_material(&mut material, EXPORTER_LABEL, role.tag())
        .ok()?;
    Some(proof_over(key, &material, role))
}

pub fn proof_over(key: &NetworkKey, material: &[u8; 32], role: Role) -> Proof {
    let mut h = blake3::Hasher::new_keyed(key);
    h.update(role.tag());
    h.update(material);
    *h.finalize().as_bytes()
}

/// Constant-time comparison, so timing does not leak how much of a forged proof was right.
pub fn proofs_equal(a: &Proof, b: &Proof) -> bool {
    blake3::Hash::from_bytes(*a) == blake3::Hash::from_bytes(*b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proof_depends_on_key_material_and_role() {
        let k = [7u8; 32];
        let m = [1u8; 32];
        let p = proof_over(&k, &m, Role::Dialer);
        assert!(proofs_equal(&p, &proof_over(&k, &m, Role::Dialer)));
        assert!(!proofs_equal(&p, &proof_over(&[8u8; 32], &m, Role::Dialer)));
        assert!(!proofs_equal(&p, &proof_over(&k, &[2u8; 32], Role::Dialer)));
        assert!(!proofs_equal(&p, &proof_over(&k, &m, Role::Acceptor)));
    }
}
