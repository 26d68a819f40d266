//! A peer's persistent key pair and self-signed certificate, made once and kept in the data dir,
//! so its id (the hash of its public key) survives restarts and others can pin it.

use crate::id::PeerId;
use anyhow::{Context, Result};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use std::path::Path;

pub struct Identity {
    pub id: PeerId,
    pub cert: CertificateDer<'static>,
    key_der: Vec<u8>,
}

impl Identity {
    pub fn load_or_create(dir: &Path) -> Result<Self> {
        let key_path = dir.join("identity.key.pem");
        let cert_path = dir.join("identity.cert.der");
        if key_path.exists() && cert_path.exists() {
            let pem = std::fs::read_to_string(&key_path)
                .with_context(|| format!("cannot read {}", key_path.display()))?;
            let key = rcgen::KeyPair::from_pem(&pem)
                .with_context(|| format!("{} is not a valid key", key_path.display()))?;
            let cert = std::fs::read(&cert_path)
                .with_context(|| format!("cannot read {}", cert_path.display()))?;
            return Self::from_parts(key.serialize_der(), CertificateDer::from(cert));
        }
        let key = rcgen::KeyPair::generate().context("cannot generate a key pair")?;
        let params = rcgen::CertificateParams::new(vec!["meff".to_string()])
            .context("cannot build certificate parameters")?;
        let cert = params.self_signed(&key).context("cannot self-sign")?;
        write_private(&key_path, key.serialize_pem().as_bytes())?;
        crate::store::fsutil::write_atomic(&cert_path, cert.der())?;
        Self::from_parts(key.serialize_der(), cert.der().clone())
    }

    fn from_parts(key_der: Vec<u8>, cert: CertificateDer<'static>) -> Result<Self> {
        let id = peer_id_of_cert(&cert).context("own certificate is unreadable")?;
        Ok(Identity { id, cert, key_der })
    }

    pub fn private_key(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key_der.clone()))
    }
}

/// The id a certificate stands for: BLAKE3 of its SubjectPublicKeyInfo.
pub fn peer_id_of_cert(cert: &CertificateDer<'_>) -> Result<PeerId, rustls::Error> {
    let parsed = rustls::server::ParsedCertificate::try_from(cert)?;
    Ok(PeerId::from_public_key_der(
        parsed.subject_public_key_info().as_ref(),
    ))
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    crate::store::fsutil::write_atomic(path, bytes)
}
