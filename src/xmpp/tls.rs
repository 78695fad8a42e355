//! TLS for the XMPP TCP door: the certificate (from `xmpp.tls_cert`/`xmpp.tls_key`, or a
//! self-signed pair generated into the data directory on first start), the rustls server
//! configuration, and a session's channel bindings for SCRAM `-PLUS`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ProtocolVersion, ServerConfig, ServerConnection};
use sha2::{Digest, Sha256};

use super::scram::ChannelBindings;
use crate::config::Config;

/// What the TCP door needs of TLS.
pub struct TlsSetup {
    pub config: Arc<ServerConfig>,
    /// `tls-server-end-point` (RFC 5929 §4.1): SHA-256 of the leaf certificate, the hash
    /// its signature uses (the generated certificate's ECDSA P-256 with SHA-256; a
    /// certificate signed with SHA-1 or MD5 is also hashed with SHA-256).
    end_point: Vec<u8>,
    /// Where the certificate was read from.
    pub cert_path: PathBuf,
    /// Set when this start generated the pair.
    pub generated: bool,
}

impl TlsSetup {
    /// Reads the configured pair, or generates (first start) or reuses the server's own.
    pub fn load(config: &Config) -> Result<TlsSetup, String> {
        let xmpp = &config.xmpp;
        let (cert_path, key_path, generated) = match (xmpp.tls_cert.trim(), xmpp.tls_key.trim()) {
            ("", "") => {
                let dir = config.server.data_dir.join("tls");
                let (cert, key) = (dir.join("xmpp-cert.pem"), dir.join("xmpp-key.pem"));
                let generated = !cert.exists() || !key.exists();
                if generated {
                    generate(&config.server.domain, &dir, &cert, &key)?;
                }
                (cert, key, generated)
            }
            ("", _) | (_, "") => return Err("xmpp.tls_cert and xmpp.tls_key are set together, or neither".into()),
            (cert, key) => (PathBuf::from(cert), PathBuf::from(key), false),
        };
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cert_path)
            .and_then(|certs| certs.collect())
            .map_err(|e| format!("cannot read the certificate {}: {e}", cert_path.display()))?;
        let leaf = chain.first().ok_or_else(|| format!("{} holds no certificate", cert_path.display()))?;
        let end_point = Sha256::digest(leaf.as_ref()).to_vec();
        let key = PrivateKeyDer::from_pem_file(&key_path)
            .map_err(|e| format!("cannot read the private key {}: {e}", key_path.display()))?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let server = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS setup: {e}"))?
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .map_err(|e| {
                format!("the certificate and key in {} do not make a TLS identity: {e}", cert_path.display())
            })?;
        Ok(TlsSetup { config: Arc::new(server), end_point, cert_path, generated })
    }

    /// The channel bindings of one established session.
    pub fn bindings(&self, connection: &ServerConnection) -> ChannelBindings {
        // RFC 9266: tls-exporter is defined for TLS 1.3 (1.2 would need the extended master
        // secret, and the other bindings serve it).
        let tls_exporter = (connection.protocol_version() == Some(ProtocolVersion::TLSv1_3))
            .then(|| connection.export_keying_material([0u8; 32], b"EXPORTER-Channel-Binding", None).ok())
            .flatten()
            .map(|key| key.to_vec());
        ChannelBindings { tls_exporter, tls_server_end_point: Some(self.end_point.clone()) }
    }
}

/// A self-signed certificate for `domain` (and `localhost`), written as PEM; the key is
/// readable by the server's user only.
fn generate(domain: &str, dir: &Path, cert: &Path, key: &Path) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let mut names = vec![domain.to_owned()];
    if domain != "localhost" {
        names.push("localhost".to_owned());
    }
    let pair = rcgen::generate_simple_self_signed(names).map_err(|e| format!("cannot make a certificate: {e}"))?;
    write_private(key, pair.key_pair.serialize_pem().as_bytes())?;
    std::fs::write(cert, pair.cert.pem()).map_err(|e| format!("cannot write {}: {e}", cert.display()))?;
    Ok(())
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<(), String> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    file.write_all(bytes).map_err(|e| format!("cannot write {}: {e}", path.display()))
}
