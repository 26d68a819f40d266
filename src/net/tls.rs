//! TLS 1.3 with mutual self-signed certificates. Trust comes from pinning peer ids (hashes of
//! public keys) and from the network-key proof after the handshake, not from a CA; these
//! verifiers still check every handshake signature and refuse chains.

use super::identity::{Identity, peer_id_of_cert};
use crate::id::PeerId;
use anyhow::{Context, Result};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, Error, SignatureScheme};
use std::sync::Arc;
use std::time::Duration;

/// The ALPN of a protocol version. Both sides offer their own and every older one, so a
/// connection between versions completes its TLS handshake, and each side, seeing which one
/// was picked, can say which must upgrade instead of failing obscurely.
pub fn alpn(version: u16) -> Vec<u8> {
    format!("meff/{version}").into_bytes()
}

fn alpn_offers() -> Vec<Vec<u8>> {
    (1..=crate::net::msg::PROTOCOL_VERSION)
        .rev()
        .map(alpn)
        .collect()
}

/// The protocol version the two sides agreed on (the lower of theirs and ours).
pub fn negotiated_version(conn: &quinn::Connection) -> Option<u16> {
    let data = conn
        .handshake_data()?
        .downcast::<quinn::crypto::rustls::HandshakeData>()
        .ok()?;
    let proto = data.protocol?;
    std::str::from_utf8(&proto)
        .ok()?
        .strip_prefix("meff/")?
        .parse()
        .ok()
}
pub const SERVER_NAME: &str = "meff";

/// ring's suites with AES-128-GCM-SHA256 first (ring's default puts AES-256-GCM-SHA384
/// first): the handshake's key schedule then hashes with SHA-256, which this CPU does in
/// hardware, where SHA-384 was 5 % of all CPU while 64 peers formed a mesh; and bulk data
/// takes 10 AES rounds instead of 14. Both sides still offer all three, so a peer preferring
/// another suite still connects.
fn provider() -> Arc<CryptoProvider> {
    use rustls::crypto::ring::cipher_suite::{
        TLS13_AES_128_GCM_SHA256, TLS13_AES_256_GCM_SHA384, TLS13_CHACHA20_POLY1305_SHA256,
    };
    let mut p = rustls::crypto::ring::default_provider();
    p.cipher_suites = vec![
        TLS13_AES_128_GCM_SHA256,
        TLS13_AES_256_GCM_SHA384,
        TLS13_CHACHA20_POLY1305_SHA256,
    ];
    Arc::new(p)
}

/// Accepts exactly one self-signed end-entity certificate, and when `expected` is set, only the
/// one whose public key hashes to that id.
#[derive(Debug)]
pub struct PeerCertVerifier {
    expected: Option<PeerId>,
    algs: WebPkiSupportedAlgorithms,
}

impl PeerCertVerifier {
    pub fn new(expected: Option<PeerId>) -> Self {
        PeerCertVerifier {
            expected,
            algs: provider().signature_verification_algorithms,
        }
    }

    fn check(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
    ) -> Result<(), Error> {
        if !intermediates.is_empty() {
            return Err(Error::General("certificate chains are not accepted".into()));
        }
        let id = peer_id_of_cert(end_entity)?;
        match self.expected {
            Some(want) if want != id => Err(Error::InvalidCertificate(
                CertificateError::ApplicationVerificationFailure,
            )),
            _ => Ok(()),
        }
    }
}

impl ServerCertVerifier for PeerCertVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        self.check(end_entity, intermediates)?;
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        Err(Error::General("TLS 1.2 is not accepted".into()))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algs)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algs.supported_schemes()
    }
}

impl ClientCertVerifier for PeerCertVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        true
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, Error> {
        self.check(end_entity, intermediates)?;
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        Err(Error::General("TLS 1.2 is not accepted".into()))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algs)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algs.supported_schemes()
    }
}

/// Bytes a stream's sender may have sent beyond what its reader has read.
pub const STREAM_WINDOW: u32 = 4 << 20;

/// Windows sized so one transfer can fill a fast link; keep-alive under common NAT timeouts.
pub fn transport_config() -> Arc<quinn::TransportConfig> {
    let mut t = quinn::TransportConfig::default();
    t.keep_alive_interval(Some(Duration::from_secs(2)));
    t.max_idle_timeout(Some(quinn::IdleTimeout::from(quinn::VarInt::from_u32(
        15_000,
    ))));
    t.stream_receive_window(quinn::VarInt::from_u32(STREAM_WINDOW));
    t.receive_window(quinn::VarInt::from_u32(32 << 20));
    t.send_window(64 << 20);
    t.max_concurrent_bidi_streams(quinn::VarInt::from_u32(256));
    t.max_concurrent_uni_streams(quinn::VarInt::from_u32(64));
    Arc::new(t)
}

pub fn server_config(identity: &Identity) -> Result<quinn::ServerConfig> {
    server_config_speaking(identity, &alpn_offers())
}

/// A server config offering only the given ALPNs (tests play older versions with it).
pub fn server_config_speaking(
    identity: &Identity,
    alpns: &[Vec<u8>],
) -> Result<quinn::ServerConfig> {
    let mut tls = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .context("TLS 1.3 unavailable")?
        .with_client_cert_verifier(Arc::new(PeerCertVerifier::new(None)))
        .with_single_cert(vec![identity.cert.clone()], identity.private_key())
        .context("own certificate rejected by TLS")?;
    tls.alpn_protocols = alpns.to_vec();
    let crypto = quinn::crypto::rustls::QuicServerConfig::try_from(tls)
        .context("TLS config unusable for QUIC")?;
    let mut cfg = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    cfg.transport_config(transport_config());
    Ok(cfg)
}

/// A client config for one dial; `expected` pins the id of the peer we mean to reach.
pub fn client_config(identity: &Identity, expected: Option<PeerId>) -> Result<quinn::ClientConfig> {
    client_config_speaking(identity, expected, &alpn_offers())
}

/// A client config offering only the given ALPNs (tests play older versions with it).
pub fn client_config_speaking(
    identity: &Identity,
    expected: Option<PeerId>,
    alpns: &[Vec<u8>],
) -> Result<quinn::ClientConfig> {
    let mut tls = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .context("TLS 1.3 unavailable")?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(PeerCertVerifier::new(expected)))
        .with_client_auth_cert(vec![identity.cert.clone()], identity.private_key())
        .context("own certificate rejected by TLS")?;
    tls.alpn_protocols = alpns.to_vec();
    let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(tls)
        .context("TLS config unusable for QUIC")?;
    let mut cfg = quinn::ClientConfig::new(Arc::new(crypto));
    cfg.transport_config(transport_config());
    Ok(cfg)
}

/// The authenticated id of the peer on the other end of a connection.
pub fn remote_peer_id(conn: &quinn::Connection) -> Option<PeerId> {
    let certs = conn
        .peer_identity()?
        .downcast::<Vec<CertificateDer<'static>>>()
        .ok()?;
    peer_id_of_cert(certs.first()?).ok()
}
